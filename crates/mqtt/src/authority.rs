//! What the broker asks of the rest of drover about a device: who a client certificate is,
//! what its policies allow, and where to record its presence. The services implement
//! [`DeviceAuthority`] (certificates, principals and policies live there); the broker only
//! enforces the answers, on CONNECT, SUBSCRIBE, PUBLISH and every delivery.

use std::sync::Arc;

use async_trait::async_trait;
use drover_core::policy::{AuthzContext, AuthzRequest, Decision, PolicyDocument, evaluate};
use tokio::sync::broadcast;

/// A device's authorization, as of its last (re)authentication.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    /// AWS certificate id (SHA-256 of the certificate's DER, hex): the principal.
    pub certificate_id: String,
    /// The default version of every policy attached to the principal, by policy name.
    pub policies: Vec<(String, Arc<PolicyDocument>)>,
    /// What policy variables resolve to for this connection (client id, thing, certificate).
    pub context: AuthzContext,
}

impl DeviceGrant {
    /// Decides one request under the grant's policies.
    pub fn authorize(&self, request: &AuthzRequest) -> Decision {
        let policies: Vec<(&str, &PolicyDocument)> = self
            .policies
            .iter()
            .map(|(name, doc)| (name.as_str(), doc.as_ref()))
            .collect();
        evaluate(&policies, request, &self.context)
    }
}

/// A change that affects connected devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityChange {
    /// The certificate is no longer ACTIVE: its connections are closed at once.
    CertificateDeactivated { certificate_id: String },
    /// Policies or attachments changed: connections of this certificate (`None`: of any
    /// certificate) re-authenticate before their next request.
    PermissionsChanged { certificate_id: Option<String> },
}

/// One connect or disconnect, for the thing's connectivity record and presence event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceRecord {
    pub connected: bool,
    pub timestamp_ms: i64,
    pub session_identifier: String,
    pub disconnect_reason: Option<String>,
}

/// The broker's view of device identity and permissions.
#[async_trait]
pub trait DeviceAuthority: Send + Sync + 'static {
    /// Identifies the device presenting `certificate_der` (its end-entity certificate; the
    /// TLS handshake proved it holds the key) as `client_id`. `Err` carries the reason for
    /// the log line; the connection is refused.
    async fn authenticate(
        &self,
        certificate_der: &[u8],
        client_id: &str,
    ) -> Result<DeviceGrant, String>;

    /// Changes to certificates and permissions, as they happen.
    fn changes(&self) -> broadcast::Receiver<AuthorityChange>;

    /// Records a connect or disconnect of `client_id`; returns the presence version number
    /// (increasing per client id) AWS's lifecycle events carry.
    async fn record_presence(
        &self,
        client_id: &str,
        record: &PresenceRecord,
    ) -> Result<i64, String>;
}
