//! AWS IoT Jobs workloads: `provision` creates the fleet through the AWS IoT API (not measured),
//! `run` connects simulated devices that speak the jobs MQTT protocol (`agent.rs`), creates one
//! job on their thing group and measures how fast it reaches them and how fast they finish it
//! (`run.rs`). The control-plane client is the official AWS SDK (`api.rs`).

pub mod agent;
pub mod api;
pub mod provision;
pub mod run;
