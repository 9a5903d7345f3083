//! The message the broker routes: one published application message, shared by every
//! subscriber it fans out to, whatever protocol version it arrived with or leaves with.

use std::sync::Arc;

use bytes::Bytes;

/// Where a message came from: a device connection, or drover itself (jobs notifications,
/// lifecycle events, the services' publish API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Client(Arc<str>),
    System,
}

/// MQTT 5 properties that travel with a message from publisher to subscriber. MQTT 3.1.1
/// subscribers never see them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub correlation_data: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_utf8: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<(String, String)>,
}

impl MessageProperties {
    pub fn is_empty(&self) -> bool {
        *self == MessageProperties::default()
    }
}

/// One application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    /// The QoS it was published with (0 or 1: AWS IoT has no QoS 2).
    pub qos: u8,
    pub retain: bool,
    pub properties: Option<Arc<MessageProperties>>,
    pub origin: Origin,
}

impl Message {
    /// A message drover publishes itself.
    pub fn system(topic: impl Into<Arc<str>>, payload: impl Into<Bytes>, qos: u8) -> Self {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos: qos.min(1),
            retain: false,
            properties: None,
            origin: Origin::System,
        }
    }

    /// The publishing client's id, if a client published it.
    pub fn publisher(&self) -> Option<&str> {
        match &self.origin {
            Origin::Client(id) => Some(id),
            Origin::System => None,
        }
    }
}

/// Correlation data is binary; stored as hex in the persisted properties JSON.
mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| hex::decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
