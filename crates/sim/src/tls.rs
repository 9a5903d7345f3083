//! The devices' TLS identity: the CA that signs the broker's certificate, and the client
//! certificate and key every simulated device presents, read from PEM files into one shared
//! rustls client configuration (TLS 1.2 and 1.3, aws-lc-rs, as drover itself builds).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// One client configuration shared by every connection, so the simulator's own memory stays
/// small and handshakes reuse nothing but the configuration (no session resumption: each
/// device connects as a fresh device would).
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca_certs = CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading {}", ca.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", ca.display()))?;
    if ca_certs.is_empty() {
        bail!("{} holds no certificate", ca.display());
    }
    for c in ca_certs {
        roots.add(c).context("adding a CA certificate")?;
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .context("the client certificate and key do not match")?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
