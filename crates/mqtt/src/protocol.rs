//! The wire: MQTT 3.1.1 and 5.0 packets in and out of one connection, through `rmqtt-codec`,
//! translated to one version-neutral model so the session logic is written once.
//!
//! The protocol version is sniffed from CONNECT; after that the connection's codec is fixed.
//! MQTT 5 reason codes are the neutral vocabulary (they are a superset); for 3.1.1 clients
//! they are mapped down to what 3.1.1 can say, or to closing the connection.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rmqtt_codec::types::{Publish as CodecPublish, QoS};
use rmqtt_codec::v5::{
    self, PublishAckReason, RetainHandling, SubscribeAckReason, UnsubscribeAckReason,
};
use rmqtt_codec::version::{ProtocolVersion, VersionCodec};
use rmqtt_codec::{MqttCodec, MqttPacket, v3};
use tokio_util::codec::{Decoder, Encoder};

use crate::config::{MAX_INFLIGHT, MAX_PACKET_BYTES, TOPIC_ALIAS_MAX};
use crate::message::{Message, MessageProperties};

pub use rmqtt_codec::v5::DisconnectReasonCode as ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// A client's last will, as CONNECT carried it.
#[derive(Debug, Clone)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 Will Delay Interval.
    pub delay_secs: u32,
    pub properties: Option<MessageProperties>,
}

/// CONNECT, version-neutral.
#[derive(Debug, Clone)]
pub struct Connect {
    pub version: Version,
    pub client_id: String,
    pub clean_start: bool,
    pub keep_alive: u16,
    /// MQTT 5 Session Expiry Interval (`None` for 3.1.1, where a non-clean session lives as
    /// long as the server's default).
    pub session_expiry_secs: Option<u32>,
    pub will: Option<Will>,
    /// How many QoS 1 messages the client accepts in flight (MQTT 5 Receive Maximum).
    pub receive_max: u16,
    /// The largest packet the client accepts (MQTT 5).
    pub max_packet_size: Option<u32>,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0: send retained messages at subscribe; 1: only if the subscription is new; 2: never.
    pub retain_handling: u8,
}

/// PUBLISH from a client.
#[derive(Debug, Clone)]
pub struct InboundPublish {
    /// Empty when an MQTT 5 client uses a topic alias it set earlier.
    pub topic: String,
    pub topic_alias: Option<u16>,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub packet_id: Option<u16>,
    pub properties: Option<MessageProperties>,
}

/// A packet a client sent, version-neutral.
#[derive(Debug)]
pub enum Inbound {
    Connect(Box<Connect>),
    Publish(Box<InboundPublish>),
    PubAck(u16),
    /// QoS 2 flow packets: AWS IoT has no QoS 2, so these are protocol errors.
    QoS2Flow,
    Subscribe {
        packet_id: u16,
        filters: Vec<SubscriptionRequest>,
    },
    Unsubscribe {
        packet_id: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect {
        reason: ReasonCode,
        session_expiry_secs: Option<u32>,
    },
    /// A packet only a server sends, or AUTH: a protocol error from a client.
    Unexpected(&'static str),
}

/// Why a frame could not be decoded. The connection is closed; others are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("packet of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: u32, max: u32 },
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl WireError {
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            WireError::TooLarge { .. } => ReasonCode::PacketTooLarge,
            WireError::Malformed(_) => ReasonCode::MalformedPacket,
        }
    }
}

/// CONNACK outcome, in MQTT 5 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnAckCode {
    Accepted,
    NotAuthorized,
    ClientIdentifierNotValid,
    BadProtocol,
    ServerUnavailable,
}

/// The acknowledgement of one SUBSCRIBE filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubAckCode {
    Granted(u8),
    NotAuthorized,
    TopicFilterInvalid,
    QuotaExceeded,
    SharedSubscriptionNotSupported,
}

/// The acknowledgement of a QoS 1 PUBLISH (MQTT 5 reason codes; 3.1.1 PUBACK has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubAckCode {
    Success,
    NoMatchingSubscribers,
    NotAuthorized,
}

/// What the server tells a client in CONNACK about its limits (MQTT 5 only).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub session_present: bool,
    /// The keep-alive the server applies, when it differs from the client's.
    pub server_keep_alive: Option<u16>,
    /// The session expiry the server applies, when it differs from the client's.
    pub session_expiry_secs: Option<u32>,
}

/// How one PUBLISH to a subscriber is sent.
#[derive(Debug, Clone, Copy)]
pub struct PublishHeader {
    pub qos: u8,
    pub retain: bool,
    pub packet_id: Option<u16>,
    /// The matching subscription's identifier (MQTT 5).
    pub subscription_id: Option<u32>,
}

/// One connection's codec.
pub struct Wire {
    codec: MqttCodec,
    version: Option<Version>,
}

impl Default for Wire {
    fn default() -> Self {
        Self::new()
    }
}

impl Wire {
    pub fn new() -> Self {
        Wire {
            codec: MqttCodec::Version(VersionCodec),
            version: None,
        }
    }

    /// Decodes the next complete packet in `buf`, if there is one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Inbound>, WireError> {
        if let MqttCodec::Version(sniffer) = &mut self.codec {
            // The sniffer only peeks at CONNECT's protocol level; it consumes nothing.
            let version = match sniffer.decode(buf) {
                Ok(Some(v)) => v,
                Ok(None) => return Ok(None),
                Err(e) => return Err(decode_error(e)),
            };
            self.codec = match version {
                ProtocolVersion::MQTT3 => {
                    self.version = Some(Version::V311);
                    MqttCodec::V3(v3::Codec::new(MAX_PACKET_BYTES))
                }
                ProtocolVersion::MQTT5 => {
                    self.version = Some(Version::V5);
                    MqttCodec::V5(v5::Codec::new(MAX_PACKET_BYTES, 0))
                }
            };
        }
        match self.codec.decode(buf) {
            Ok(Some((MqttPacket::V3(packet), _))) => Ok(Some(from_v3(packet))),
            Ok(Some((MqttPacket::V5(packet), _))) => Ok(Some(from_v5(packet))),
            Ok(Some((MqttPacket::Version(_), _))) => {
                Err(WireError::Malformed("unexpected protocol sniff".into()))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(decode_error(e)),
        }
    }

    /// Tells an MQTT 5 client the largest packet it may be sent.
    pub fn set_max_outbound(&mut self, size: u32) {
        if let MqttCodec::V5(codec) = &mut self.codec {
            codec.set_max_outbound_size(size);
        }
    }

    fn put(
        &mut self,
        v3: impl FnOnce() -> Option<v3::Packet>,
        v5: impl FnOnce() -> v5::Packet,
        out: &mut BytesMut,
    ) {
        let packet = match self.version {
            Some(Version::V5) => MqttPacket::V5(v5()),
            _ => match v3() {
                Some(p) => MqttPacket::V3(p),
                None => return,
            },
        };
        if let Err(e) = self.codec.encode(packet, out) {
            // Only an outbound size limit the client set can fail here; the packet is dropped.
            tracing::debug!(error = ?e, "packet not encoded");
        }
    }

    pub fn connack(&mut self, code: ConnAckCode, limits: ServerLimits, out: &mut BytesMut) {
        let session_present = limits.session_present && code == ConnAckCode::Accepted;
        self.put(
            || {
                Some(v3::Packet::ConnectAck(v3::ConnectAck {
                    session_present,
                    return_code: match code {
                        ConnAckCode::Accepted => v3::ConnectAckReason::ConnectionAccepted,
                        ConnAckCode::NotAuthorized => v3::ConnectAckReason::NotAuthorized,
                        ConnAckCode::ClientIdentifierNotValid => {
                            v3::ConnectAckReason::IdentifierRejected
                        }
                        ConnAckCode::BadProtocol => {
                            v3::ConnectAckReason::UnacceptableProtocolVersion
                        }
                        ConnAckCode::ServerUnavailable => v3::ConnectAckReason::ServiceUnavailable,
                    },
                }))
            },
            || {
                v5::Packet::ConnectAck(Box::new(v5::ConnectAck {
                    session_present,
                    reason_code: match code {
                        ConnAckCode::Accepted => v5::ConnectAckReason::Success,
                        ConnAckCode::NotAuthorized => v5::ConnectAckReason::NotAuthorized,
                        ConnAckCode::ClientIdentifierNotValid => {
                            v5::ConnectAckReason::ClientIdentifierNotValid
                        }
                        ConnAckCode::BadProtocol => v5::ConnectAckReason::ProtocolError,
                        ConnAckCode::ServerUnavailable => v5::ConnectAckReason::ServerUnavailable,
                    },
                    session_expiry_interval_secs: limits.session_expiry_secs,
                    receive_max: NonZeroU16::new(MAX_INFLIGHT).expect("non-zero constant"),
                    max_qos: QoS::AtLeastOnce,
                    max_packet_size: Some(MAX_PACKET_BYTES),
                    topic_alias_max: TOPIC_ALIAS_MAX,
                    retain_available: true,
                    wildcard_subscription_available: true,
                    subscription_identifiers_available: true,
                    shared_subscription_available: false,
                    server_keepalive_sec: limits.server_keep_alive,
                    ..v5::ConnectAck::default()
                }))
            },
            out,
        );
    }

    /// PUBLISH to a subscriber.
    pub fn publish(&mut self, message: &Message, header: PublishHeader, out: &mut BytesMut) {
        let PublishHeader {
            qos,
            retain,
            packet_id,
            subscription_id,
        } = header;
        let qos = if qos >= 1 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        let packet_id = packet_id.and_then(NonZeroU16::new);
        let base = CodecPublish {
            dup: false,
            retain,
            qos,
            topic: ByteString::from(&*message.topic),
            packet_id,
            payload: message.payload.clone(),
            properties: None,
        };
        self.put(
            || Some(v3::Packet::Publish(Box::new(base.clone()))),
            || {
                let mut publish = base.clone();
                let mut properties = message
                    .properties
                    .as_deref()
                    .map(to_codec_properties)
                    .unwrap_or_default();
                if let Some(id) = subscription_id.and_then(NonZeroU32::new) {
                    properties.subscription_ids.push(id);
                }
                publish.properties = Some(properties);
                v5::Packet::Publish(Box::new(publish))
            },
            out,
        );
    }

    pub fn puback(&mut self, packet_id: u16, code: PubAckCode, out: &mut BytesMut) {
        let Some(packet_id) = NonZeroU16::new(packet_id) else {
            return;
        };
        self.put(
            || Some(v3::Packet::PublishAck { packet_id }),
            || {
                v5::Packet::PublishAck(v5::PublishAck {
                    packet_id,
                    reason_code: match code {
                        PubAckCode::Success => PublishAckReason::Success,
                        PubAckCode::NoMatchingSubscribers => {
                            PublishAckReason::NoMatchingSubscribers
                        }
                        PubAckCode::NotAuthorized => PublishAckReason::NotAuthorized,
                    },
                    ..v5::PublishAck::default()
                })
            },
            out,
        );
    }

    pub fn suback(&mut self, packet_id: u16, codes: &[SubAckCode], out: &mut BytesMut) {
        let Some(packet_id) = NonZeroU16::new(packet_id) else {
            return;
        };
        self.put(
            || {
                Some(v3::Packet::SubscribeAck {
                    packet_id,
                    status: codes
                        .iter()
                        .map(|c| match c {
                            SubAckCode::Granted(q) => v3::SubscribeReturnCode::Success(qos_of(*q)),
                            _ => v3::SubscribeReturnCode::Failure,
                        })
                        .collect(),
                })
            },
            || {
                v5::Packet::SubscribeAck(v5::SubscribeAck {
                    packet_id,
                    properties: Vec::new(),
                    reason_string: None,
                    status: codes
                        .iter()
                        .map(|c| match c {
                            SubAckCode::Granted(0) => SubscribeAckReason::GrantedQos0,
                            SubAckCode::Granted(_) => SubscribeAckReason::GrantedQos1,
                            SubAckCode::NotAuthorized => SubscribeAckReason::NotAuthorized,
                            SubAckCode::TopicFilterInvalid => {
                                SubscribeAckReason::TopicFilterInvalid
                            }
                            SubAckCode::QuotaExceeded => SubscribeAckReason::QuotaExceeded,
                            SubAckCode::SharedSubscriptionNotSupported => {
                                SubscribeAckReason::SharedSubscriptionNotSupported
                            }
                        })
                        .collect(),
                })
            },
            out,
        );
    }

    /// `existed[i]`: whether the i-th filter was subscribed.
    pub fn unsuback(&mut self, packet_id: u16, existed: &[bool], out: &mut BytesMut) {
        let Some(packet_id) = NonZeroU16::new(packet_id) else {
            return;
        };
        self.put(
            || Some(v3::Packet::UnsubscribeAck { packet_id }),
            || {
                v5::Packet::UnsubscribeAck(v5::UnsubscribeAck {
                    packet_id,
                    properties: Vec::new(),
                    reason_string: None,
                    status: existed
                        .iter()
                        .map(|e| {
                            if *e {
                                UnsubscribeAckReason::Success
                            } else {
                                UnsubscribeAckReason::NoSubscriptionExisted
                            }
                        })
                        .collect(),
                })
            },
            out,
        );
    }

    pub fn pingresp(&mut self, out: &mut BytesMut) {
        self.put(
            || Some(v3::Packet::PingResponse),
            || v5::Packet::PingResponse,
            out,
        );
    }

    /// A server DISCONNECT with a reason: MQTT 5 only (3.1.1 servers just close).
    pub fn disconnect(&mut self, reason: ReasonCode, out: &mut BytesMut) {
        self.put(
            || None,
            || {
                v5::Packet::Disconnect(v5::Disconnect {
                    reason_code: reason,
                    ..v5::Disconnect::default()
                })
            },
            out,
        );
    }
}

fn qos_of(q: u8) -> QoS {
    if q >= 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    }
}

fn decode_error(e: rmqtt_codec::error::DecodeError) -> WireError {
    match e {
        rmqtt_codec::error::DecodeError::MaxSizeExceeded { size, max } => {
            WireError::TooLarge { size, max }
        }
        other => WireError::Malformed(other.to_string()),
    }
}

fn from_v3(packet: v3::Packet) -> Inbound {
    match packet {
        v3::Packet::Connect(c) => Inbound::Connect(Box::new(Connect {
            version: Version::V311,
            client_id: c.client_id.to_string(),
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            session_expiry_secs: None,
            will: c.last_will.map(|w| Will {
                topic: w.topic.to_string(),
                payload: w.message,
                qos: w.qos.value(),
                retain: w.retain,
                delay_secs: 0,
                properties: None,
            }),
            receive_max: MAX_INFLIGHT,
            max_packet_size: None,
        })),
        v3::Packet::Publish(p) => Inbound::Publish(Box::new(InboundPublish {
            topic: p.topic.to_string(),
            topic_alias: None,
            payload: p.payload,
            qos: p.qos.value(),
            retain: p.retain,
            packet_id: p.packet_id.map(NonZeroU16::get),
            properties: None,
        })),
        v3::Packet::PublishAck { packet_id } => Inbound::PubAck(packet_id.get()),
        v3::Packet::PublishReceived { .. }
        | v3::Packet::PublishRelease { .. }
        | v3::Packet::PublishComplete { .. } => Inbound::QoS2Flow,
        v3::Packet::Subscribe {
            packet_id,
            topic_filters,
        } => Inbound::Subscribe {
            packet_id: packet_id.get(),
            filters: topic_filters
                .into_iter()
                .map(|(filter, qos)| SubscriptionRequest {
                    filter: filter.to_string(),
                    qos: qos.value(),
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: 0,
                })
                .collect(),
        },
        v3::Packet::Unsubscribe {
            packet_id,
            topic_filters,
        } => Inbound::Unsubscribe {
            packet_id: packet_id.get(),
            filters: topic_filters.into_iter().map(|f| f.to_string()).collect(),
        },
        v3::Packet::PingRequest => Inbound::PingReq,
        v3::Packet::Disconnect => Inbound::Disconnect {
            reason: ReasonCode::NormalDisconnection,
            session_expiry_secs: None,
        },
        v3::Packet::ConnectAck(_) => Inbound::Unexpected("CONNACK"),
        v3::Packet::SubscribeAck { .. } => Inbound::Unexpected("SUBACK"),
        v3::Packet::UnsubscribeAck { .. } => Inbound::Unexpected("UNSUBACK"),
        v3::Packet::PingResponse => Inbound::Unexpected("PINGRESP"),
    }
}

fn from_v5(packet: v5::Packet) -> Inbound {
    match packet {
        v5::Packet::Connect(c) => Inbound::Connect(Box::new(Connect {
            version: Version::V5,
            client_id: c.client_id.to_string(),
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            session_expiry_secs: Some(c.session_expiry_interval_secs),
            will: c.last_will.map(|w| Will {
                topic: w.topic.to_string(),
                qos: w.qos.value(),
                retain: w.retain,
                delay_secs: w.will_delay_interval_sec.unwrap_or(0),
                properties: Some(MessageProperties {
                    content_type: w.content_type.map(|s| s.to_string()),
                    response_topic: w.response_topic.map(|s| s.to_string()),
                    correlation_data: w.correlation_data.map(|b| b.to_vec()),
                    payload_format_utf8: None,
                    user_properties: w
                        .user_properties
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
                .filter(|p| !p.is_empty()),
                payload: w.message,
            }),
            receive_max: c.receive_max.map(NonZeroU16::get).unwrap_or(u16::MAX),
            max_packet_size: c.max_packet_size.map(NonZeroU32::get),
        })),
        v5::Packet::Publish(p) => {
            let properties = p.properties.as_ref();
            Inbound::Publish(Box::new(InboundPublish {
                topic: p.topic.to_string(),
                topic_alias: properties.and_then(|pr| pr.topic_alias.map(NonZeroU16::get)),
                qos: p.qos.value(),
                retain: p.retain,
                packet_id: p.packet_id.map(NonZeroU16::get),
                properties: properties
                    .map(from_codec_properties)
                    .filter(|p| !p.is_empty()),
                payload: p.payload,
            }))
        }
        v5::Packet::PublishAck(ack) => Inbound::PubAck(ack.packet_id.get()),
        v5::Packet::PublishReceived(_)
        | v5::Packet::PublishRelease(_)
        | v5::Packet::PublishComplete(_) => Inbound::QoS2Flow,
        v5::Packet::Subscribe(s) => Inbound::Subscribe {
            packet_id: s.packet_id.get(),
            filters: s
                .topic_filters
                .into_iter()
                .map(|(filter, o)| SubscriptionRequest {
                    filter: filter.to_string(),
                    qos: o.qos.value(),
                    no_local: o.no_local,
                    retain_as_published: o.retain_as_published,
                    retain_handling: match o.retain_handling {
                        RetainHandling::AtSubscribe => 0,
                        RetainHandling::AtSubscribeNew => 1,
                        RetainHandling::NoAtSubscribe => 2,
                    },
                })
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            packet_id: u.packet_id.get(),
            filters: u.topic_filters.into_iter().map(|f| f.to_string()).collect(),
        },
        v5::Packet::PingRequest => Inbound::PingReq,
        v5::Packet::Disconnect(d) => Inbound::Disconnect {
            reason: d.reason_code,
            session_expiry_secs: d.session_expiry_interval_secs,
        },
        v5::Packet::Auth(_) => Inbound::Unexpected("AUTH"),
        v5::Packet::ConnectAck(_) => Inbound::Unexpected("CONNACK"),
        v5::Packet::SubscribeAck(_) => Inbound::Unexpected("SUBACK"),
        v5::Packet::UnsubscribeAck(_) => Inbound::Unexpected("UNSUBACK"),
        v5::Packet::PingResponse => Inbound::Unexpected("PINGRESP"),
    }
}

fn from_codec_properties(p: &v5::PublishProperties) -> MessageProperties {
    MessageProperties {
        content_type: p.content_type.as_ref().map(|s| s.to_string()),
        response_topic: p.response_topic.as_ref().map(|s| s.to_string()),
        correlation_data: p.correlation_data.as_ref().map(|b| b.to_vec()),
        payload_format_utf8: p.is_utf8_payload.then_some(true),
        user_properties: p
            .user_properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn to_codec_properties(p: &MessageProperties) -> v5::PublishProperties {
    v5::PublishProperties {
        content_type: p.content_type.as_deref().map(ByteString::from),
        response_topic: p.response_topic.as_deref().map(ByteString::from),
        correlation_data: p.correlation_data.clone().map(Bytes::from),
        is_utf8_payload: p.payload_format_utf8.unwrap_or(false),
        user_properties: p
            .user_properties
            .iter()
            .map(|(k, v)| (ByteString::from(k.as_str()), ByteString::from(v.as_str())))
            .collect(),
        ..v5::PublishProperties::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v311_connect(client_id: &str, clean: bool) -> BytesMut {
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 4]);
        body.extend_from_slice(b"MQTT");
        body.push(4);
        body.push(if clean { 0x02 } else { 0x00 });
        body.extend_from_slice(&60u16.to_be_bytes());
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        let mut frame = vec![0x10, body.len() as u8];
        frame.extend_from_slice(&body);
        BytesMut::from(&frame[..])
    }

    #[test]
    fn sniffs_311_connect_and_decodes_following_packets() {
        let mut wire = Wire::new();
        let mut buf = v311_connect("dev1", false);
        buf.extend_from_slice(&[0xC0, 0x00]); // PINGREQ
        let Some(Inbound::Connect(c)) = wire.decode(&mut buf).expect("decodes") else {
            panic!("expected CONNECT");
        };
        assert_eq!(c.client_id, "dev1");
        assert!(!c.clean_start);
        assert_eq!(c.version, Version::V311);
        assert!(matches!(wire.decode(&mut buf), Ok(Some(Inbound::PingReq))));
        assert!(matches!(wire.decode(&mut buf), Ok(None)));
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut wire = Wire::new();
        let full = v311_connect("dev1", true);
        let mut buf = BytesMut::from(&full[..5]);
        assert!(matches!(wire.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(&full[5..]);
        assert!(matches!(
            wire.decode(&mut buf),
            Ok(Some(Inbound::Connect(_)))
        ));
    }

    #[test]
    fn garbage_and_oversize_frames_are_errors() {
        let mut wire = Wire::new();
        let mut buf = BytesMut::from(&b"\x30\x05hello"[..]);
        assert!(wire.decode(&mut buf).is_err(), "PUBLISH before CONNECT");

        let mut wire = Wire::new();
        let mut buf = v311_connect("dev1", true);
        assert!(matches!(
            wire.decode(&mut buf),
            Ok(Some(Inbound::Connect(_)))
        ));
        // PUBLISH claiming 1 MiB of remaining length.
        let mut big = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x40][..]);
        let err = wire.decode(&mut big).expect_err("too large");
        assert!(matches!(err, WireError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn encodes_311_acks() {
        let mut wire = Wire::new();
        let mut buf = v311_connect("dev1", true);
        wire.decode(&mut buf).expect("connect");
        let mut out = BytesMut::new();
        wire.connack(
            ConnAckCode::Accepted,
            ServerLimits {
                session_present: false,
                server_keep_alive: None,
                session_expiry_secs: None,
            },
            &mut out,
        );
        assert_eq!(&out[..], &[0x20, 0x02, 0x00, 0x00]);
        out.clear();
        wire.suback(
            7,
            &[SubAckCode::Granted(1), SubAckCode::NotAuthorized],
            &mut out,
        );
        assert_eq!(&out[..], &[0x90, 0x04, 0x00, 0x07, 0x01, 0x80]);
        out.clear();
        wire.disconnect(ReasonCode::NotAuthorized, &mut out);
        assert!(out.is_empty(), "3.1.1 has no server DISCONNECT");
    }
}
