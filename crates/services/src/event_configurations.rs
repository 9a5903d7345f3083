//! UpdateEventConfigurations / DescribeEventConfigurations: which `$aws/events/...` kinds
//! drover publishes (all off by default, as on AWS). Kept as one JSON setting so every node
//! sharing a database agrees; each node caches it after the first read.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use drover_core::time::Timestamp;
use drover_store::SharedStore;
use serde::{Deserialize, Serialize};

use crate::{Clock, ServiceError, ServiceResult};

const SETTING: &str = "event_configurations";

/// The event kinds AWS IoT names in `eventConfigurations`.
pub const EVENT_TYPES: [&str; 11] = [
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConfigurationState {
    pub enabled: BTreeMap<String, bool>,
    pub created_at: Option<Timestamp>,
    pub last_modified_at: Option<Timestamp>,
}

#[derive(Clone)]
pub struct EventConfigurations {
    store: SharedStore,
    clock: Arc<dyn Clock>,
    cache: Arc<RwLock<Option<EventConfigurationState>>>,
}

impl EventConfigurations {
    pub fn new(store: SharedStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            cache: Arc::default(),
        }
    }

    /// Every event kind with whether it is on.
    pub async fn describe(&self) -> ServiceResult<EventConfigurationState> {
        if let Some(state) = self.cache.read().expect("cache lock").clone() {
            return Ok(state);
        }
        let mut state: EventConfigurationState = match self.store.get_setting(SETTING).await? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| ServiceError::Internal(format!("corrupt event configuration: {e}")))?,
            None => EventConfigurationState::default(),
        };
        for kind in EVENT_TYPES {
            state.enabled.entry(kind.to_string()).or_insert(false);
        }
        *self.cache.write().expect("cache lock") = Some(state.clone());
        Ok(state)
    }

    /// Turns the named kinds on or off; unknown kinds are refused and change nothing.
    pub async fn update(&self, changes: &BTreeMap<String, bool>) -> ServiceResult<()> {
        for kind in changes.keys() {
            if !EVENT_TYPES.contains(&kind.as_str()) {
                return Err(ServiceError::InvalidRequest(format!(
                    "'{kind}' is not an event type: {}",
                    EVENT_TYPES.join(", ")
                )));
            }
        }
        let mut state = self.describe().await?;
        let now = self.clock.now();
        state.enabled.extend(changes.clone());
        state.created_at.get_or_insert(now);
        state.last_modified_at = Some(now);
        let text = serde_json::to_string(&state).expect("event configuration serializes");
        self.store.put_setting(SETTING, &text).await?;
        *self.cache.write().expect("cache lock") = Some(state);
        Ok(())
    }

    /// Whether events of `kind` are published.
    pub async fn enabled(&self, kind: &str) -> bool {
        match self.describe().await {
            Ok(state) => state.enabled.get(kind).copied().unwrap_or(false),
            Err(_) => false,
        }
    }
}
