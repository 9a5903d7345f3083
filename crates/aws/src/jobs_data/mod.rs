//! The jobs data plane as devices speak it: the `iot-jobs-data` REST API (`http.rs`), the
//! `$aws/things/{thing}/jobs/...` MQTT topics (`mqtt.rs`, a broker reserved-topic handler),
//! and the notifications and events the jobs service announces, rendered for the broker
//! (`mqtt.rs`). `wire.rs` holds the JSON shapes both share. Every request goes to the same
//! `drover_services::Jobs` device functions.

pub mod http;
pub mod mqtt;
pub mod wire;

pub use mqtt::{BrokerJobPublisher, JobsTopicHandler};
