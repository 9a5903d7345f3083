//! What the MQTT broker (the device gateway) asks of the services: who a connecting device is
//! and what its policies allow ([`DeviceDirectory::authenticate`]), which principals just lost
//! their right to connect or changed permissions ([`PrincipalChange`]), and where each client's
//! connection state is recorded ([`DeviceDirectory::record_presence`]).
//!
//! Authentication is on the hot path of every connect, so it makes a handful of indexed reads
//! (the certificate, its CA when registered, the thing named by the client id and whether the
//! certificate is attached to it, the policies) and caches only parsed policy documents, keyed
//! by their text: a cached entry can never be stale, so nothing needs invalidating.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drover_core::arn::ArnScope;
use drover_core::policy::{AuthzContext, ConnectionThing, PolicyDocument};
use drover_core::presence::{self, PresenceEvent};
use drover_store::{CasOutcome, SharedStore};
use tokio::sync::broadcast;

use crate::certificates::Certificates;
use crate::device_ca::DeviceCa;
use crate::membership::DynamicMembership;
use crate::policies::Policies;
use crate::x509::{Certificate, Validity};
use crate::{Clock, ServiceError, ServiceResult};

/// Changes a subscriber may fall behind by before it sees `Lagged` (and must then treat every
/// session as changed).
const CHANGE_BUFFER: usize = 4_096;
/// Parsed policy documents kept; beyond this the cache starts over.
const MAX_CACHED_DOCUMENTS: usize = 4_096;

/// What the broker needs to authorize one connection.
#[derive(Debug, Clone)]
pub struct DeviceCredentials {
    pub certificate_id: String,
    pub certificate_arn: String,
    /// The principal's policies: the default version of each policy attached to the
    /// certificate and, when the certificate is attached to the thing the client id names,
    /// of each policy attached to that thing's groups and their ancestors. In name order.
    pub policies: Vec<(String, Arc<PolicyDocument>)>,
    /// `client_id` set; `thing` = the registry thing named by the client id, with
    /// `is_attached` telling whether this certificate is attached to it; `certificate` = the
    /// certificate's id, serial and names.
    pub context: AuthzContext,
}

/// Why a device may not connect. The broker logs the text as the reason.
#[derive(Debug, thiserror::Error)]
pub enum DeviceRefusal {
    #[error("the certificate is not a valid X.509 certificate: {0}")]
    Malformed(String),
    #[error("certificate {certificate_id} is not registered")]
    NotRegistered { certificate_id: String },
    #[error("certificate {certificate_id} is {status}, not ACTIVE")]
    NotActive {
        certificate_id: String,
        status: String,
    },
    #[error(
        "the CA certificate {ca_certificate_id} of certificate {certificate_id} is not registered and ACTIVE"
    )]
    CaNotActive {
        certificate_id: String,
        ca_certificate_id: String,
    },
    #[error("certificate {certificate_id} has expired")]
    Expired { certificate_id: String },
    #[error("certificate {certificate_id} is not yet valid")]
    NotYetValid { certificate_id: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<drover_store::StoreError> for DeviceRefusal {
    fn from(e: drover_store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure while authenticating a device");
        DeviceRefusal::Internal(e.to_string())
    }
}

/// A change the broker must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalChange {
    /// The certificate is no longer ACTIVE (UpdateCertificate to INACTIVE/REVOKED, its CA
    /// deactivated, or deleted): the broker disconnects its sessions at once.
    CertificateDeactivated { certificate_id: String },
    /// Policies, policy versions, attachments or thing-principal links changed: sessions of
    /// this certificate (None = possibly any certificate, e.g. a policy's default version
    /// changed) must re-authorize (call authenticate again).
    PermissionsChanged { certificate_id: Option<String> },
}

/// The channel every certificate and policy change is announced on.
#[derive(Clone)]
pub struct PrincipalChanges(broadcast::Sender<PrincipalChange>);

impl Default for PrincipalChanges {
    fn default() -> Self {
        Self(broadcast::channel(CHANGE_BUFFER).0)
    }
}

impl PrincipalChanges {
    pub fn subscribe(&self) -> broadcast::Receiver<PrincipalChange> {
        self.0.subscribe()
    }

    pub(crate) fn send(&self, change: PrincipalChange) {
        // No subscriber (no broker running) is fine: nothing needs to act.
        let _ = self.0.send(change);
    }
}

/// One connect or disconnect, as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceUpdate {
    pub connected: bool,
    pub timestamp_ms: i64,
    pub session_identifier: String,
    pub disconnect_reason: Option<String>,
}

#[derive(Clone)]
pub struct DeviceDirectory {
    store: SharedStore,
    scope: ArnScope,
    clock: Arc<dyn Clock>,
    /// drover's own CA: implicitly registered and ACTIVE.
    own_ca_id: String,
    changes: PrincipalChanges,
    membership: DynamicMembership,
    documents: Arc<Mutex<HashMap<String, Arc<PolicyDocument>>>>,
}

impl DeviceDirectory {
    pub fn new(
        store: SharedStore,
        scope: ArnScope,
        clock: Arc<dyn Clock>,
        own_ca_id: String,
        changes: PrincipalChanges,
        membership: DynamicMembership,
    ) -> Self {
        Self {
            store,
            scope,
            clock,
            own_ca_id,
            changes,
            membership,
            documents: Arc::default(),
        }
    }

    /// `certificate_der`: the end-entity certificate the client presented in the TLS
    /// handshake (the handshake already proved the client holds its key; the broker accepted
    /// any syntactically valid certificate there). Checks: registered (certificateId =
    /// sha256(der)), status ACTIVE, its CA (if any) ACTIVE, within its validity period at the
    /// injected Clock's now.
    pub async fn authenticate(
        &self,
        certificate_der: &[u8],
        client_id: &str,
    ) -> Result<DeviceCredentials, DeviceRefusal> {
        self.authenticate_for_thing(certificate_der, client_id, Some(client_id))
            .await
    }

    /// The same checks for a device calling the jobs data plane over HTTPS with its client
    /// certificate. There is no client id, so the thing the request names (`thing_name`, from
    /// `/things/{thingName}/jobs...`) plays its part: when the certificate is attached to that
    /// thing, the thing policy variables resolve to it and its groups' policies apply, as they
    /// would for an MQTT connection whose client id names it. AWS documents those variables
    /// for MQTT only; without them a thing-scoped HTTPS policy would have to name every thing.
    pub async fn authenticate_https(
        &self,
        certificate_der: &[u8],
        thing_name: &str,
    ) -> Result<DeviceCredentials, DeviceRefusal> {
        self.authenticate_for_thing(certificate_der, thing_name, None)
            .await
    }

    async fn authenticate_for_thing(
        &self,
        certificate_der: &[u8],
        thing_name: &str,
        client_id: Option<&str>,
    ) -> Result<DeviceCredentials, DeviceRefusal> {
        let presented = Certificate::from_der(certificate_der).map_err(DeviceRefusal::Malformed)?;
        let id = presented.id.clone();
        let record =
            self.store
                .get_certificate(&id)
                .await?
                .ok_or_else(|| DeviceRefusal::NotRegistered {
                    certificate_id: id.clone(),
                })?;
        if record.status != "ACTIVE" {
            return Err(DeviceRefusal::NotActive {
                certificate_id: id,
                status: record.status,
            });
        }
        if let Some(ca) = record.ca_certificate_id.as_deref()
            && ca != self.own_ca_id
        {
            let active = self
                .store
                .get_ca_certificate(ca)
                .await?
                .is_some_and(|c| c.status == "ACTIVE");
            if !active {
                return Err(DeviceRefusal::CaNotActive {
                    certificate_id: id,
                    ca_certificate_id: ca.to_string(),
                });
            }
        }
        match presented.validity_at(self.clock.now()) {
            Validity::Valid => {}
            Validity::Expired => return Err(DeviceRefusal::Expired { certificate_id: id }),
            Validity::NotYetValid => {
                return Err(DeviceRefusal::NotYetValid { certificate_id: id });
            }
        }

        // A client id that is not a valid thing name names no thing.
        let names_thing = drover_core::names::check_name("thingName", thing_name).is_ok();
        let (thing, attachment) = if names_thing {
            tokio::try_join!(
                self.store.get_thing(thing_name),
                self.store.get_thing_principal(thing_name, &id)
            )?
        } else {
            (None, None)
        };
        let is_attached = thing.is_some() && attachment.is_some();
        let policies = self
            .store
            .principal_policies(&id, is_attached.then_some(thing_name))
            .await?;
        let policies = policies
            .into_iter()
            .filter_map(|(name, text)| Some((name.clone(), self.parsed(&name, &text)?)))
            .collect();

        let mut context = AuthzContext::new(self.scope.clone());
        context.client_id = client_id.map(str::to_string);
        context.thing = thing.map(|t| ConnectionThing {
            name: t.name,
            type_name: t.type_name,
            attributes: t.attributes.into_iter().collect(),
            is_attached,
        });
        context.certificate = Some(presented.facts);
        Ok(DeviceCredentials {
            certificate_arn: self.scope.certificate(&id),
            certificate_id: id,
            policies,
            context,
        })
    }

    /// The parsed form of a stored document. Stored documents were checked when stored; one a
    /// newer drover no longer accepts is left out (so it grants nothing) and logged.
    fn parsed(&self, name: &str, text: &str) -> Option<Arc<PolicyDocument>> {
        let mut documents = self
            .documents
            .lock()
            .expect("document cache lock is never poisoned");
        if let Some(document) = documents.get(text) {
            return Some(document.clone());
        }
        match PolicyDocument::parse(text) {
            Ok(document) => {
                if documents.len() >= MAX_CACHED_DOCUMENTS {
                    documents.clear();
                }
                let document = Arc::new(document);
                documents.insert(text.to_string(), document.clone());
                Some(document)
            }
            Err(e) => {
                tracing::warn!(policy = %name, error = %e, "stored policy no longer parses; ignoring it");
                None
            }
        }
    }

    /// Certificate and policy changes from now on.
    pub fn changes(&self) -> broadcast::Receiver<PrincipalChange> {
        self.changes.subscribe()
    }

    /// Records a connect/disconnect of `client_id` and returns the new versionNumber for the
    /// presence event. When a dynamic group's query reads `connectivity.*`, the thing named
    /// by the client id is re-evaluated against the dynamic groups.
    pub async fn record_presence(
        &self,
        client_id: &str,
        update: PresenceUpdate,
    ) -> ServiceResult<i64> {
        if client_id.is_empty() {
            return Err(ServiceError::InvalidRequest("client id is empty".into()));
        }
        let event = PresenceEvent {
            connected: update.connected,
            timestamp_ms: update.timestamp_ms,
            session_identifier: update.session_identifier,
            disconnect_reason: update.disconnect_reason,
        };
        let version = loop {
            let current = self.store.get_presence(client_id).await?;
            let next = presence::next(client_id, current.as_ref(), &event);
            match self.store.put_presence(&next).await? {
                CasOutcome::Done => break next.version,
                _ => continue,
            }
        };
        self.membership.connectivity_changed(client_id).await?;
        Ok(version)
    }
}

/// The device-identity services, built together because they share the change channel.
#[derive(Clone)]
pub struct DeviceServices {
    pub certificates: Certificates,
    pub policies: Policies,
    pub directory: DeviceDirectory,
}

impl DeviceServices {
    pub fn new(
        store: SharedStore,
        scope: ArnScope,
        clock: Arc<dyn Clock>,
        ca: DeviceCa,
        membership: DynamicMembership,
    ) -> Self {
        let changes = PrincipalChanges::default();
        let own_ca_id = ca.id().to_string();
        let ca = Arc::new(ca);
        Self {
            certificates: Certificates::new(
                store.clone(),
                scope.clone(),
                clock.clone(),
                ca,
                changes.clone(),
            ),
            policies: Policies::new(store.clone(), scope.clone(), clock.clone(), changes.clone()),
            directory: DeviceDirectory::new(store, scope, clock, own_ca_id, changes, membership),
        }
    }
}
