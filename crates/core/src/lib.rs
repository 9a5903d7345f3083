//! drover's domain core: the nouns of AWS IoT (things, thing types, thing groups, ARNs) and the
//! rules that govern them: name patterns and limits, attribute merging and versioning, the
//! fleet-index query language and indexing configuration, MQTT topic rules, policy evaluation,
//! and the job-document placeholders for presigned artifact URLs.
//!
//! Everything here is pure and synchronous: no I/O, no async, no clock. Transports and services
//! call into these functions so that each rule has exactly one home.

pub mod arn;
pub mod certificates;
pub mod error;
pub mod indexing;
pub mod iot_policies;
pub mod jobs;
pub mod limits;
pub mod mqtt_topic;
pub mod names;
pub mod placeholder;
pub mod policy;
pub mod presence;
pub mod query;
pub mod registry;
pub mod time;

pub use error::ValidationError;
