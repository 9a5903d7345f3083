//! The shared harness for driving drover with the official AWS SDK for Rust: it starts a real
//! `drover serve` on free loopback ports in a temporary data directory, waits for `/healthz`,
//! reads the admin credentials and region the server wrote, and builds `aws_sdk_iot::Client`s
//! (and `aws_sdk_iotjobsdataplane::Client`s for the jobs data plane) whose HTTPS client trusts
//! the data directory's `root-ca.pem` and nothing else.
//!
//! Used by the integration tests in `tests/` and by the `api-bench` binary. It does not talk to
//! the server itself beyond the health probe: everything else goes through the SDK.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_credential_types::Credentials;
use aws_sdk_iot::config::retry::RetryConfig;
use aws_sdk_iot::config::timeout::TimeoutConfig;
use aws_sdk_iot::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a fresh server may take to answer `/healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `drover serve` may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts at starting a server, in case another process takes a probed free port first.
const START_ATTEMPTS: usize = 3;

/// Where to reach a drover (or any AWS IoT compatible) endpoint and as whom.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://host:port`.
    pub url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// PEM root certificates to trust instead of the platform's; `None` uses the platform's.
    pub ca_pem: Option<Vec<u8>>,
}

/// Tuning of the SDK client that tests and the benchmark share.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Whole-operation timeout, so a hung server fails a test instead of stalling it.
    pub operation_timeout: Duration,
    /// Attempts per operation; 1 disables the SDK's retries so every error is seen.
    pub max_attempts: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(15),
            max_attempts: 1,
        }
    }
}

/// The SDK's own HTTPS client (hyper + rustls with aws-lc, HTTP/1.1 and HTTP/2), trusting
/// exactly the certificates in `ca_pem`, or the platform roots when `None`.
///
/// This is the supported way to add a root CA in aws-smithy-http-client 1.x: a `TrustStore`
/// inside a `TlsContext`. (Setting `SSL_CERT_FILE` also works for the default client, since it
/// loads native roots through rustls-native-certs, but only if set before the first client in
/// the process is built, and it would change trust for every client at once.)
pub fn https_client(ca_pem: Option<&[u8]>) -> Result<SharedHttpClient> {
    let trust_store = match ca_pem {
        Some(pem) => {
            // The SDK panics on unparsable PEM when it first connects; fail here instead.
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .context("parsing the CA certificate PEM")?;
            if certs.is_empty() {
                bail!("the CA PEM holds no certificate");
            }
            TrustStore::empty().with_pem_certificate(pem.to_vec())
        }
        None => TrustStore::default(),
    };
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .context("building the TLS context")?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https())
}

/// An `aws_sdk_iot::Client` for `endpoint` with static credentials. Built from the service
/// config alone (not `aws_config::defaults`), so no profile file or environment variable of
/// the machine running the tests changes what is sent.
pub fn iot_client(endpoint: &Endpoint, options: ClientOptions) -> Result<aws_sdk_iot::Client> {
    let http_client = https_client(endpoint.ca_pem.as_deref())?;
    let credentials = Credentials::new(
        &endpoint.access_key_id,
        &endpoint.secret_access_key,
        None,
        None,
        "drover-compat-sdk",
    );
    let config = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&endpoint.url)
        .region(Region::new(endpoint.region.clone()))
        .credentials_provider(credentials)
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(options.operation_timeout)
                .build(),
        )
        .build();
    Ok(aws_sdk_iot::Client::from_conf(config))
}

/// An `aws_sdk_iotjobsdataplane::Client` (the `iot-jobs-data` HTTPS device API) for `url`, the
/// `https://` form of what DescribeEndpoint(iot:Jobs) names, signed with `endpoint`'s key pair
/// and trusting `endpoint`'s CA, built from the service config alone like [`iot_client`].
pub fn jobs_data_client(
    endpoint: &Endpoint,
    url: &str,
    options: ClientOptions,
) -> Result<aws_sdk_iotjobsdataplane::Client> {
    use aws_sdk_iotjobsdataplane::config as jobs_config;
    let http_client = https_client(endpoint.ca_pem.as_deref())?;
    let credentials = Credentials::new(
        &endpoint.access_key_id,
        &endpoint.secret_access_key,
        None,
        None,
        "drover-compat-sdk",
    );
    let config = aws_sdk_iotjobsdataplane::Config::builder()
        .behavior_version(jobs_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(jobs_config::Region::new(endpoint.region.clone()))
        .credentials_provider(credentials)
        .http_client(http_client)
        .retry_config(
            jobs_config::retry::RetryConfig::standard().with_max_attempts(options.max_attempts),
        )
        .timeout_config(
            jobs_config::timeout::TimeoutConfig::builder()
                .operation_timeout(options.operation_timeout)
                .build(),
        )
        .build();
    Ok(aws_sdk_iotjobsdataplane::Client::from_conf(config))
}

/// A running `drover serve` in its own temporary data directory; stopped (SIGTERM, then
/// SIGKILL if it lingers) and its directory removed when dropped.
///
/// Use it from a multi-thread Tokio runtime (`#[tokio::test(flavor = "multi_thread")]`): on
/// SIGTERM drover drains open connections, and the SDK's HTTP/2 connection can only answer the
/// drain while runtime workers keep running as `Drop` waits. On a current-thread runtime the
/// drain cannot finish and every drop costs the full stop timeout before the SIGKILL.
pub struct Server {
    child: Child,
    // Dropped after `child` is stopped (see `Drop`), so the server never loses its directory
    // while running.
    dir: tempfile::TempDir,
    pub http_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    pub s3_addr: SocketAddr,
    pub account_id: String,
    /// The admin key pair and region from the data directory's `credentials` and `config`.
    pub endpoint: Endpoint,
}

impl Server {
    /// Starts the binary named by `DROVER_BIN`, else the workspace's `target/debug/drover`.
    pub async fn start() -> Result<Server> {
        let binary = drover_binary();
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binary).await {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("no start attempted")))
    }

    async fn start_once(binary: &Path) -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("drover-compat-sdk-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let data_dir = dir.path().join("data");
        let [http_addr, mqtt_addr, s3_addr] = free_loopback_addrs::<3>()?;
        let log = std::fs::File::create(dir.path().join("drover.log"))?;
        let mut command = Command::new(binary);
        // A stray DROVER_DATABASE_URL or DROVER_HOSTNAMES in the caller's environment would
        // change what is under test.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DROVER_") {
                command.env_remove(key);
            }
        }
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--http-addr")
            .arg(http_addr.to_string())
            .arg("--mqtt-addr")
            .arg(mqtt_addr.to_string())
            .arg("--s3-addr")
            .arg(s3_addr.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command
            .spawn()
            .with_context(|| format!("starting {} (set DROVER_BIN?)", binary.display()))?;
        let mut server = Server {
            child,
            dir,
            http_addr,
            mqtt_addr,
            s3_addr,
            account_id: String::new(),
            endpoint: Endpoint {
                url: format!("https://{http_addr}"),
                region: String::new(),
                access_key_id: String::new(),
                secret_access_key: String::new(),
                ca_pem: None,
            },
        };
        server
            .wait_until_healthy()
            .await
            .with_context(|| format!("drover did not start; its log:\n{}", server.log()))?;
        server.read_data_dir()?;
        Ok(server)
    }

    /// Polls `/healthz` until it answers 200, the process exits, or the timeout passes.
    async fn wait_until_healthy(&mut self) -> Result<()> {
        let started = Instant::now();
        let ca_path = self.data_dir().join("root-ca.pem");
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("drover exited with {status}");
            }
            // The CA file appears before the listener is up; read it each time until it parses.
            if let Ok(pem) = std::fs::read(&ca_path)
                && let Ok(200) = healthz(self.http_addr, &pem).await
            {
                return Ok(());
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!("/healthz did not answer 200 within {STARTUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn read_data_dir(&mut self) -> Result<()> {
        let dir = self.data_dir();
        let credentials = std::fs::read_to_string(dir.join("credentials"))?;
        let config = std::fs::read_to_string(dir.join("config"))?;
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("server.json"))?)?;
        self.endpoint.access_key_id = ini_value(&credentials, "default", "aws_access_key_id")
            .context("credentials has no [default] aws_access_key_id")?;
        self.endpoint.secret_access_key =
            ini_value(&credentials, "default", "aws_secret_access_key")
                .context("credentials has no [default] aws_secret_access_key")?;
        self.endpoint.region =
            ini_value(&config, "default", "region").context("config has no [default] region")?;
        self.endpoint.ca_pem = Some(std::fs::read(dir.join("root-ca.pem"))?);
        self.account_id = info["account_id"]
            .as_str()
            .context("server.json has no account_id")?
            .to_string();
        Ok(())
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the server printed so far (stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("drover.log")).unwrap_or_default()
    }

    /// An SDK client signed with the admin key.
    pub fn client(&self) -> Result<aws_sdk_iot::Client> {
        iot_client(&self.endpoint, ClientOptions::default())
    }

    /// A jobs data plane client for this server's `iot:Jobs` endpoint (`https://host:port`),
    /// signed with the admin key, or with `keys` when given.
    pub fn jobs_data_client(
        &self,
        url: &str,
        keys: Option<(&str, &str)>,
    ) -> Result<aws_sdk_iotjobsdataplane::Client> {
        let mut endpoint = self.endpoint.clone();
        if let Some((access_key_id, secret_access_key)) = keys {
            endpoint.access_key_id = access_key_id.to_string();
            endpoint.secret_access_key = secret_access_key.to_string();
        }
        jobs_data_client(&endpoint, url, ClientOptions::default())
    }

    /// An SDK client for this server signed with another key pair.
    pub fn client_with_keys(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<aws_sdk_iot::Client> {
        let endpoint = Endpoint {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            ..self.endpoint.clone()
        };
        iot_client(&endpoint, ClientOptions::default())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM exercises the clean shutdown path; std only offers SIGKILL, so ask kill(1).
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DROVER_BIN`, or `target/debug/drover` of the workspace this crate lives in.
pub fn drover_binary() -> PathBuf {
    match std::env::var_os("DROVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/drover"),
    }
}

/// `N` distinct loopback addresses whose ports were free a moment ago.
fn free_loopback_addrs<const N: usize>() -> Result<[SocketAddr; N]> {
    // Hold all listeners until every port is chosen so the N ports differ.
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<std::io::Result<Vec<_>>>()?;
    addrs
        .try_into()
        .map_err(|_| anyhow!("expected {N} addresses"))
}

/// `GET /healthz` over TLS verified against `ca_pem`; returns the HTTP status code.
pub async fn healthz(addr: SocketAddr, ca_pem: &[u8]) -> Result<u16> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.context("parsing the CA PEM")?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut stream = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Only the status line matters; stop reading once it is complete.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed before a status line");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP status line: {line}"))
}

/// The value of `key` in `[section]` of an INI text such as an AWS credentials file.
pub fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
        } else if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_values_are_read_from_their_section_only() {
        let text = "[other]\naws_access_key_id = no\n\n[default]\naws_access_key_id = AKID\n\
                    aws_secret_access_key=secret=with=equals\n";
        assert_eq!(
            ini_value(text, "default", "aws_access_key_id").as_deref(),
            Some("AKID")
        );
        assert_eq!(
            ini_value(text, "default", "aws_secret_access_key").as_deref(),
            Some("secret=with=equals")
        );
        assert_eq!(ini_value(text, "default", "region"), None);
        assert_eq!(ini_value(text, "missing", "aws_access_key_id"), None);
    }

    #[test]
    fn free_addresses_are_distinct_loopback_ports() {
        let addrs = free_loopback_addrs::<3>().expect("loopback is available");
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() != 0));
        assert_ne!(addrs[0], addrs[1]);
        assert_ne!(addrs[1], addrs[2]);
        assert_ne!(addrs[0], addrs[2]);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(https_client(Some(b"not a pem")).is_err());
    }
}
