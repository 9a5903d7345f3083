//! Simulated devices speaking MQTT 3.1.1 over TLS with a client certificate (rumqttc): the
//! target broker, connecting one device with bounded concurrent handshakes, and the workloads
//! built on them (`idle`, `qos1`). A workload that needs devices — such as a future AWS IoT
//! jobs agent — connects them with [`Target::connect`] and drives their event loops itself.

pub mod idle;
pub mod qos1;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, TlsConfiguration,
    Transport,
};
use tokio::sync::Semaphore;

/// Where the devices connect and how.
#[derive(Clone)]
pub struct Target {
    /// Host name or address: also the name the broker's certificate is checked against.
    pub host: String,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
    pub keep_alive: Duration,
    /// Limits TLS handshakes in progress, so a burst of thousands of devices does not time out
    /// in the broker's accept backlog (both brokers get the same arrival pattern).
    pub handshakes: Arc<Semaphore>,
    /// How long one device may take from TCP connect to CONNACK.
    pub connect_timeout: Duration,
}

/// A device after a successful CONNACK: its request handle and the event loop that must be
/// polled for anything to happen (keep-alive, acknowledgements, deliveries).
pub struct Device {
    pub client: AsyncClient,
    pub events: EventLoop,
}

impl Target {
    /// Opens one clean-session connection for `client_id` and waits for its CONNACK.
    /// `inflight` bounds rumqttc's outgoing unacknowledged QoS 1 publishes.
    pub async fn connect(&self, client_id: &str, inflight: u16) -> Result<Device> {
        let mut options = MqttOptions::new(client_id, self.host.clone(), self.port);
        options.set_keep_alive(self.keep_alive);
        options.set_clean_session(true);
        options.set_inflight(inflight.max(1));
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            self.tls.clone(),
        )));
        let (client, mut events) = AsyncClient::new(options, usize::from(inflight).max(10) * 2);
        let _permit = self
            .handshakes
            .acquire()
            .await
            .map_err(|_| anyhow!("handshake limiter closed"))?;
        let acked = tokio::time::timeout(self.connect_timeout, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        return if ack.code == ConnectReturnCode::Success {
                            Ok(())
                        } else {
                            Err(anyhow!("CONNACK refused: {:?}", ack.code))
                        };
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(anyhow!("{e}")),
                }
            }
        })
        .await;
        match acked {
            Ok(Ok(())) => Ok(Device { client, events }),
            Ok(Err(e)) => Err(e),
            Err(_) => bail!("no CONNACK within {:?}", self.connect_timeout),
        }
    }
}

/// A short, stable label for a connection failure, so thousands of them summarise into a few
/// counted kinds.
pub fn failure_kind(error: &anyhow::Error) -> String {
    let text = error.to_string();
    let cut = text.find([':', '(']).unwrap_or(text.len()).min(60);
    text[..cut].trim().to_string()
}
