//! drover's services: the behaviour behind every transport.
//!
//! A transport (the AWS REST API, the CLI, later MQTT and the console) parses its input, calls
//! one function here and renders the result. Each domain rule is applied here once, using the
//! pure rules of `drover-core` and the records of `drover-store`.

pub mod clock;
pub mod dynamic_groups;
pub mod error;
pub mod index;
pub mod keys;
pub mod membership;
pub mod pagination;
pub mod registry;

pub use clock::{Clock, SystemClock};
pub use error::{ServiceError, ServiceResult};
pub use index::FleetIndex;
pub use keys::AccessKeys;
pub use membership::{DynamicMembership, MembershipEvent};
pub use registry::Registry;
