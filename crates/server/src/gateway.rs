//! The device gateway's wiring: the MQTT broker asks the services who a device is through
//! [`drover_mqtt::DeviceAuthority`]; this adapter answers from the certificate, principal and
//! policy registry (`drover_services::DeviceDirectory`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use drover_mqtt::{
    AuthorityChange, Broker, BrokerConfig, DeviceAuthority, DeviceGrant, PresenceRecord,
};
use drover_services::{DeviceDirectory, PresenceUpdate, PrincipalChange};
use drover_store::SharedStore;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::cli::ServeArgs;
use crate::pki::ServerIdentity;

/// The running gateway: the broker (the services publish through it) and its listener task.
pub struct Gateway {
    pub broker: Broker,
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds `--mqtt-addr`, restores the broker's persistent sessions and retained messages, and
/// starts serving devices until `shutdown`.
pub async fn start(
    args: &ServeArgs,
    identity: &ServerIdentity,
    directory: DeviceDirectory,
    store: SharedStore,
    shutdown: watch::Receiver<bool>,
) -> Result<Gateway> {
    let listener = TcpListener::bind(args.mqtt_addr)
        .await
        .with_context(|| format!("binding --mqtt-addr {}", args.mqtt_addr))?;
    let addr = listener.local_addr()?;
    let tls = Arc::new(
        drover_mqtt::server_config(&identity.cert_chain_pem, &identity.key_pem)
            .map_err(anyhow::Error::msg)?,
    );
    let config = BrokerConfig {
        publish_rate_per_connection: args.mqtt_publish_rate,
        min_keep_alive_secs: args.mqtt_min_keepalive,
        ..BrokerConfig::default()
    };
    let broker = Broker::start(
        config,
        Arc::new(RegistryAuthority::new(directory)),
        store,
        shutdown.clone(),
    )
    .await
    .map_err(anyhow::Error::msg)
    .context("starting the MQTT broker")?;
    let task = tokio::spawn(drover_mqtt::serve(listener, tls, broker.clone(), shutdown));
    Ok(Gateway { broker, addr, task })
}

/// [`DeviceDirectory`] as the broker's authority.
pub struct RegistryAuthority {
    directory: DeviceDirectory,
    changes: broadcast::Sender<AuthorityChange>,
}

impl RegistryAuthority {
    /// Starts forwarding the directory's change events in the broker's terms.
    pub fn new(directory: DeviceDirectory) -> Self {
        let (changes, _) = broadcast::channel(1024);
        let mut source = directory.changes();
        let sink = changes.clone();
        tokio::spawn(async move {
            loop {
                let change = match source.recv().await {
                    Ok(PrincipalChange::CertificateDeactivated { certificate_id }) => {
                        AuthorityChange::CertificateDeactivated { certificate_id }
                    }
                    Ok(PrincipalChange::PermissionsChanged { certificate_id }) => {
                        AuthorityChange::PermissionsChanged { certificate_id }
                    }
                    // Missed events: every connection re-checks its permissions.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        AuthorityChange::PermissionsChanged {
                            certificate_id: None,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let _ = sink.send(change);
            }
        });
        RegistryAuthority { directory, changes }
    }
}

#[async_trait]
impl DeviceAuthority for RegistryAuthority {
    async fn authenticate(
        &self,
        certificate_der: &[u8],
        client_id: &str,
    ) -> Result<DeviceGrant, String> {
        let credentials = self
            .directory
            .authenticate(certificate_der, client_id)
            .await
            .map_err(|refusal| refusal.to_string())?;
        Ok(DeviceGrant {
            certificate_id: credentials.certificate_id,
            policies: credentials.policies,
            context: credentials.context,
        })
    }

    fn changes(&self) -> broadcast::Receiver<AuthorityChange> {
        self.changes.subscribe()
    }

    async fn record_presence(
        &self,
        client_id: &str,
        record: &PresenceRecord,
    ) -> Result<i64, String> {
        self.directory
            .record_presence(
                client_id,
                PresenceUpdate {
                    connected: record.connected,
                    timestamp_ms: record.timestamp_ms,
                    session_identifier: record.session_identifier.clone(),
                    disconnect_reason: record.disconnect_reason.clone(),
                },
            )
            .await
            .map_err(|e| e.to_string())
    }
}
