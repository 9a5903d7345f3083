//! drover's AWS wire compatibility: SigV4 verification and the AWS IoT control plane's
//! REST/JSON API, shaped exactly as botocore's `iot` model defines it.
//!
//! Handlers here are thin: parse the wire input, call a `drover-services` function, render the
//! wire output. AWS error names and status codes are decided in `error.rs` only.

pub mod auth;
pub mod error;
pub mod iot;
pub mod jobs_data;
pub mod sigv4;
mod wire;

pub use auth::{AuthState, Caller, ClientCertificate, Principal};
pub use error::ApiError;
pub use iot::{ApiState, Endpoints, router};
