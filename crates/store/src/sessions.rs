//! What the MQTT broker persists: persistent sessions (a device's subscriptions while it is
//! away), the QoS 1 messages queued for them, and retained messages.
//!
//! A separate trait from the registry's so the broker's records stay in one place; every
//! [`crate::Store`] implements it. The broker owns the meaning of these records (the
//! subscription list is its JSON); the store keeps them durable.

use async_trait::async_trait;
use drover_core::time::Timestamp;

use crate::StoreResult;

/// A persistent session, as kept between connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSessionRecord {
    pub client_id: String,
    /// Seconds the session outlives its connection.
    pub expiry_secs: u32,
    /// The session's subscriptions, encoded by the broker.
    pub subscriptions: String,
    /// When its device disconnected; `None` while connected.
    pub disconnected_at: Option<Timestamp>,
}

/// A QoS 1 message waiting for (or in flight to) a persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttQueuedMessage {
    /// Assigned by the store; increasing in enqueue order. Ignored on insert.
    pub id: i64,
    pub client_id: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 properties, encoded by the broker.
    pub properties: Option<String>,
    pub enqueued_at: Timestamp,
}

/// A retained message: the last message published with RETAIN on its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub properties: Option<String>,
    pub updated_at: Timestamp,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Creates or replaces a session record.
    async fn put_mqtt_session(&self, session: &MqttSessionRecord) -> StoreResult<()>;
    async fn get_mqtt_session(&self, client_id: &str) -> StoreResult<Option<MqttSessionRecord>>;
    /// Deletes a session and every message queued for it.
    async fn delete_mqtt_session(&self, client_id: &str) -> StoreResult<()>;
    async fn list_mqtt_sessions(&self) -> StoreResult<Vec<MqttSessionRecord>>;

    /// Queues messages (one transaction); returns their ids in the order given.
    async fn enqueue_mqtt_messages(&self, messages: &[MqttQueuedMessage]) -> StoreResult<Vec<i64>>;
    /// A session's queued messages with ids above `after_id`, oldest first.
    async fn list_mqtt_queue(
        &self,
        client_id: &str,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<MqttQueuedMessage>>;
    /// How many messages are queued for a session.
    async fn count_mqtt_queue(&self, client_id: &str) -> StoreResult<u64>;
    /// Removes delivered messages; unknown ids are ignored.
    async fn delete_mqtt_messages(&self, ids: &[i64]) -> StoreResult<()>;

    /// Sets the retained message of its topic.
    async fn put_retained_message(&self, message: &RetainedMessage) -> StoreResult<()>;
    /// Clears a topic's retained message; `false` if there was none.
    async fn delete_retained_message(&self, topic: &str) -> StoreResult<bool>;
    async fn list_retained_messages(&self) -> StoreResult<Vec<RetainedMessage>>;
}
