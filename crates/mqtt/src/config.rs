//! The broker's limits and tunables, with AWS IoT Core's documented values as defaults so a
//! device that works against AWS works here, and AWS-style limits protect the server.

use std::time::Duration;

/// AWS IoT: the maximum message payload.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
/// The largest MQTT packet accepted on the wire: a maximal payload plus a maximal topic and
/// properties. Anything larger is refused before it is buffered.
pub const MAX_PACKET_BYTES: u32 = (MAX_PAYLOAD_BYTES + 64 * 1024) as u32;
/// AWS IoT: client ids are at most 128 bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 128;
/// AWS IoT: topic filters in one SUBSCRIBE packet.
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = 8;
/// AWS IoT: subscriptions per connection.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 50;
/// AWS IoT: keep-alive is clamped to 30..=1200 seconds; 0 (no keep-alive) becomes 1200.
pub const MAX_KEEP_ALIVE_SECS: u16 = 1200;
/// AWS IoT: a persistent session lives one hour after its device disconnects (MQTT 3.1.1, and
/// the longest an MQTT 5 client may ask for here is AWS's 7-day maximum).
pub const DEFAULT_SESSION_EXPIRY_SECS: u32 = 3600;
pub const MAX_SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;
/// AWS IoT: unacknowledged QoS 1 messages in flight to one client. Further messages wait.
pub const MAX_INFLIGHT: u16 = 100;
/// Inbound topic aliases an MQTT 5 client may use (AWS IoT allows 8).
pub const TOPIC_ALIAS_MAX: u16 = 8;
/// Messages waiting in a connection's outbox before QoS 0 messages to it are dropped (a slow
/// consumer must not hold memory without bound).
pub const OUTBOX_CAPACITY: usize = 1024;

/// Tunables the operator may change (`drover serve` flags); defaults are AWS's.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Publishes per second one connection may send (AWS: 100); 0 = unlimited.
    pub publish_rate_per_connection: u32,
    /// The smallest keep-alive honoured (AWS: 30 s). Tests lower it.
    pub min_keep_alive_secs: u16,
    /// How long a client has to finish the TLS handshake and send CONNECT.
    pub connect_timeout: Duration,
    /// TLS handshakes (after ClientHello) computing at once; more wait their turn, so a burst
    /// of connects cannot starve the connections already served.
    pub max_concurrent_handshakes: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            publish_rate_per_connection: 100,
            min_keep_alive_secs: 30,
            connect_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 256,
        }
    }
}

impl BrokerConfig {
    /// The keep-alive the broker applies for a client's requested value.
    pub fn effective_keep_alive(&self, requested: u16) -> u16 {
        if requested == 0 {
            MAX_KEEP_ALIVE_SECS
        } else {
            requested.clamp(
                self.min_keep_alive_secs.min(MAX_KEEP_ALIVE_SECS),
                MAX_KEEP_ALIVE_SECS,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_is_clamped_as_aws_does() {
        let config = BrokerConfig::default();
        assert_eq!(config.effective_keep_alive(0), 1200);
        assert_eq!(config.effective_keep_alive(5), 30);
        assert_eq!(config.effective_keep_alive(60), 60);
        assert_eq!(config.effective_keep_alive(5000), 1200);
        let lowered = BrokerConfig {
            min_keep_alive_secs: 2,
            ..BrokerConfig::default()
        };
        assert_eq!(lowered.effective_keep_alive(3), 3);
    }
}
