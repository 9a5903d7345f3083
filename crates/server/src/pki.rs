//! drover's own PKI: the root CA kept in the data directory (it also signs the device
//! certificates drover issues, through `drover_services::DeviceCa`) and the server certificate
//! the HTTPS (and later MQTT and S3) listeners present.
//!
//! The CA is created once and never replaced (devices and clients trust it). The server
//! certificate is reissued by the same CA whenever it no longer covers every requested host
//! name or is close to expiry, so adding `--hostname` later just works.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::datadir::DataDir;

/// Server certificates are valid this long and reissued when less than `RENEW_BEFORE` remains.
const SERVER_CERT_VALIDITY: Duration = Duration::days(397);
const RENEW_BEFORE: Duration = Duration::days(30);
const CA_VALIDITY: Duration = Duration::days(365 * 20);

/// The server's TLS identity: certificate chain and private key, PEM.
pub struct ServerIdentity {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

/// Loads the CA, creating it on first start.
pub fn ensure_ca(dir: &DataDir) -> Result<()> {
    if dir.ca_cert().exists() && dir.ca_key().exists() {
        return Ok(());
    }
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "drover root CA");
    name.push(DnType::OrganizationName, "drover");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key).context("self-signing the CA")?;
    crate::datadir::write_private(&dir.ca_key(), key.serialize_pem().as_bytes())?;
    crate::datadir::write_atomic(&dir.ca_cert(), cert.pem().as_bytes())?;
    tracing::info!(path = %dir.ca_cert().display(), "created the root CA");
    Ok(())
}

/// drover's CA as the certificate services use it (to issue device certificates).
pub fn device_ca(dir: &DataDir) -> Result<drover_services::DeviceCa> {
    let cert = std::fs::read_to_string(dir.ca_cert()).context("reading root-ca.pem")?;
    let key = std::fs::read_to_string(dir.ca_key()).context("reading the CA key")?;
    drover_services::DeviceCa::new(&cert, &key).map_err(anyhow::Error::msg)
}

/// The server certificate for `hostnames` (plus localhost and loopback addresses), reusing the
/// stored one when it still fits.
pub fn ensure_server_identity(dir: &DataDir, hostnames: &[String]) -> Result<ServerIdentity> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for name in hostnames {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let ca_pem = std::fs::read_to_string(dir.ca_cert()).context("reading root-ca.pem")?;
    if let (Ok(cert_pem), Ok(key_pem)) = (
        std::fs::read_to_string(dir.server_cert()),
        std::fs::read_to_string(dir.server_key()),
    ) && covers(&cert_pem, &names)?
    {
        return Ok(ServerIdentity {
            cert_chain_pem: format!("{cert_pem}{ca_pem}"),
            key_pem,
        });
    }
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(dir.ca_key()).context("reading the CA key")?)
            .context("parsing the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("parsing root-ca.pem")?;
    let key = KeyPair::generate().context("generating the server key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "drover server");
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .with_context(|| format!("invalid host name {n}")),
        })
        .collect::<Result<_>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + SERVER_CERT_VALIDITY;
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    crate::datadir::write_private(&dir.server_key(), key_pem.as_bytes())?;
    crate::datadir::write_atomic(&dir.server_cert(), cert_pem.as_bytes())?;
    tracing::info!(names = ?names, "issued the server certificate");
    Ok(ServerIdentity {
        cert_chain_pem: format!("{cert_pem}{ca_pem}"),
        key_pem,
    })
}

/// Does the stored certificate name every host and stay valid long enough?
fn covers(cert_pem: &str, names: &[String]) -> Result<bool> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).context("parsing server-cert.pem")?;
    let cert = pem.parse_x509().context("parsing server-cert.pem")?;
    let remaining =
        cert.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
    if remaining < RENEW_BEFORE.whole_seconds() {
        return Ok(false);
    }
    let mut present: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => present.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).expect("length checked")),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).expect("length checked")),
                        _ => continue,
                    };
                    present.push(ip.to_string());
                }
                _ => {}
            }
        }
    }
    Ok(names.iter().all(|n| {
        let n = n
            .parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .unwrap_or_else(|_| n.clone());
        present.contains(&n)
    }))
}

/// A rustls server configuration from `identity`.
pub fn server_config(identity: &ServerIdentity, alpn: &[&[u8]]) -> Result<rustls::ServerConfig> {
    server_config_with(identity, alpn, false)
}

/// The API listener's configuration: as [`server_config`], but the server also asks for a
/// client certificate, which SigV4 clients may leave out (devices calling the jobs data plane
/// send theirs; `drover_mqtt::tls` explains why any well-formed one passes the handshake).
pub fn api_server_config(
    identity: &ServerIdentity,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig> {
    server_config_with(identity, alpn, true)
}

fn server_config_with(
    identity: &ServerIdentity,
    alpn: &[&[u8]],
    request_client_certificate: bool,
) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(identity.cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the server certificate chain")?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .context("parsing the server key")?;
    let builder = rustls::ServerConfig::builder();
    let builder = if request_client_certificate {
        builder
            .with_client_cert_verifier(Arc::new(drover_mqtt::DeviceCertificateVerifier::optional()))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("building the TLS configuration")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
