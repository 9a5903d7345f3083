//! drover's services: the behaviour behind every transport.
//!
//! A transport (the AWS REST API, the CLI, the MQTT broker, later the console) parses its input, calls
//! one function here and renders the result. Each domain rule is applied here once, using the
//! pure rules of `drover-core` and the records of `drover-store`.

pub mod certificates;
pub mod clock;
pub mod device_ca;
pub mod devices;
pub mod dynamic_groups;
pub mod error;
pub mod event_configurations;
pub mod index;
pub mod jobs;
pub mod keys;
pub mod membership;
pub mod pagination;
pub mod policies;
pub mod registry;
pub mod x509;

pub use certificates::Certificates;
pub use clock::{Clock, SystemClock};
pub use device_ca::DeviceCa;
pub use devices::{
    DeviceCredentials, DeviceDirectory, DeviceRefusal, DeviceServices, PresenceUpdate,
    PrincipalChange, PrincipalChanges,
};
pub use error::{ServiceError, ServiceResult};
pub use event_configurations::EventConfigurations;
pub use index::FleetIndex;
pub use jobs::Jobs;
pub use keys::AccessKeys;
pub use membership::{DynamicMembership, MembershipEvent};
pub use policies::Policies;
pub use registry::Registry;
