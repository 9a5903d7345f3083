//! The AWS IoT control plane as the simulator uses it: an `aws_sdk_iot::Client` (the official
//! SDK, SigV4 over HTTPS) trusting the server's CA, built by the compat crate's harness so the
//! simulator signs and speaks exactly as the compatibility tests do.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use drover_compat_sdk::{ClientOptions, Endpoint, iot_client};

/// Where the AWS IoT API is and whose key signs the requests.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The control-plane endpoint, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    pub endpoint: String,
    /// PEM root certificate(s) the endpoint's certificate chains to (drover's root-ca.pem).
    #[arg(long)]
    pub api_ca: PathBuf,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

impl ApiArgs {
    /// A client that retries throttling and transient errors (provisioning tens of thousands
    /// of things must not fail on one slow answer) with a generous per-operation timeout.
    pub fn client(&self) -> Result<aws_sdk_iot::Client> {
        let ca_pem = std::fs::read(&self.api_ca)
            .with_context(|| format!("reading {}", self.api_ca.display()))?;
        iot_client(
            &Endpoint {
                url: self.endpoint.clone(),
                region: self.region.clone(),
                access_key_id: self.access_key.clone(),
                secret_access_key: self.secret_key.clone(),
                ca_pem: Some(ca_pem),
            },
            ClientOptions {
                operation_timeout: Duration::from_secs(120),
                max_attempts: 3,
            },
        )
    }
}
