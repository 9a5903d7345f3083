//! drover's device gateway: an MQTT 3.1.1 / 5.0 broker over TLS, speaking to devices exactly
//! as AWS IoT Core does.
//!
//! - `listener` accepts TCP, runs the TLS handshake (`tls`: a client certificate is required)
//!   and starts one task per connection (`connection`).
//! - `connection` owns one device's session while it is online: it decodes packets
//!   (`protocol`), asks the [`DeviceAuthority`] who the device is, enforces AWS IoT policies on
//!   CONNECT, SUBSCRIBE, PUBLISH and delivery, and writes what the broker routes to it
//!   (through its `mailbox`).
//! - `broker` holds the shared state behind short synchronous locks: the session table, the
//!   subscription trie (`router`), retained messages, in-process subscribers, the `$aws`
//!   handlers (`reserved`), and persistence of sessions, queues and retained messages
//!   through the store.
//!
//! It does not decide who may do what (that is the policy engine in `drover-core`, fed by the
//! services through [`DeviceAuthority`]) and it does not implement the jobs protocol (the jobs
//! service registers a [`ReservedTopicHandler`]).

mod authority;
mod broker;
mod config;
mod connection;
mod listener;
mod mailbox;
mod message;
mod presence;
pub mod protocol;
mod reserved;
mod router;
mod session;
mod tls;

pub use authority::{AuthorityChange, DeviceAuthority, DeviceGrant, PresenceRecord};
pub use broker::{Broker, InternalSubscription};
pub use config::BrokerConfig;
pub use listener::serve;
pub use message::{Message, MessageProperties, Origin};
pub use reserved::{DeviceRequest, ReservedTopicHandler};
pub use tls::{DeviceCertificateVerifier, server_config};
