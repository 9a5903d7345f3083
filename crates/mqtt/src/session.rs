//! A client id's session as the broker keeps it between and during connections: its
//! subscriptions, whether it persists, and a handle to the connection serving it while online.
//!
//! The session table maps client ids to [`Slot`]s. A slot outlives connections for persistent
//! sessions (MQTT 3.1.1 clean session false; MQTT 5 session expiry > 0) and goes away with the
//! connection otherwise. Locks here are short and never held across `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::mailbox::MailboxSender;
use crate::message::Message;
use crate::protocol::ReasonCode;
use crate::router::SubscriptionOptions;

/// Something routed to a connection for delivery.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub message: Arc<Message>,
    /// The QoS to deliver at: the lower of the message's and the subscription's.
    pub qos: u8,
    /// The RETAIN flag as sent: set for retained messages sent at subscribe time, and for
    /// live messages only when the subscription asked for retain-as-published.
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// The message's row in the persistent-session queue, deleted once the client acks it.
    pub stored_id: Option<i64>,
}

/// Instructions to a connection from elsewhere in the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Close the connection; `why` is the presence event's disconnect reason.
    Close {
        reason: ReasonCode,
        why: &'static str,
    },
    /// Permissions changed: authenticate again before the next request.
    Reauthorize,
}

/// The connection currently serving a session. Dropping it (another connection took the
/// session over) ends the connection's deliveries.
#[derive(Debug)]
pub(crate) struct ConnectionHandle {
    pub id: u64,
    pub certificate_id: Arc<str>,
    pub mailbox: MailboxSender,
}

#[derive(Debug)]
pub(crate) struct SessionState {
    pub connection: Option<ConnectionHandle>,
    pub persistent: bool,
    pub expiry_secs: u32,
    pub subscriptions: BTreeMap<String, SubscriptionOptions>,
    /// Epoch ms of the disconnect, while a persistent session waits for its device.
    pub disconnected_at: Option<i64>,
    /// QoS 1 messages queued in the store while offline (enforces the queue cap).
    pub offline_queued: u64,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
}

impl Slot {
    pub fn new(client_id: Arc<str>, state: SessionState) -> Self {
        Slot {
            client_id,
            state: Mutex::new(state),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().expect("session lock is never poisoned")
    }
}

/// The persisted form of a session's subscriptions.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredSubscription {
    filter: String,
    #[serde(flatten)]
    options: SubscriptionOptions,
}

pub(crate) fn encode_subscriptions(
    subscriptions: &BTreeMap<String, SubscriptionOptions>,
) -> String {
    let list: Vec<StoredSubscription> = subscriptions
        .iter()
        .map(|(filter, options)| StoredSubscription {
            filter: filter.clone(),
            options: *options,
        })
        .collect();
    serde_json::to_string(&list).expect("subscriptions always serialize")
}

pub(crate) fn decode_subscriptions(
    text: &str,
) -> Result<BTreeMap<String, SubscriptionOptions>, String> {
    let list: Vec<StoredSubscription> =
        serde_json::from_str(text).map_err(|e| format!("corrupt session subscriptions: {e}"))?;
    Ok(list.into_iter().map(|s| (s.filter, s.options)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_round_trip() {
        let mut subs = BTreeMap::new();
        subs.insert(
            "$aws/things/t1/jobs/notify-next".to_string(),
            SubscriptionOptions {
                qos: 1,
                no_local: true,
                retain_as_published: false,
                subscription_id: Some(7),
            },
        );
        let text = encode_subscriptions(&subs);
        assert_eq!(decode_subscriptions(&text).expect("decodes"), subs);
        assert!(decode_subscriptions("{").is_err());
    }
}
