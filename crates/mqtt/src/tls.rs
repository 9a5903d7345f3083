//! TLS for the device port: the server presents drover's certificate and requires a client
//! certificate.
//!
//! Which client certificates are acceptable changes at run time (RegisterCACertificate,
//! RegisterCertificateWithoutCA, UpdateCertificate), and AWS identifies a device by the exact
//! certificate it registered, so the handshake only checks that the client holds the key of a
//! well-formed certificate; the broker then looks the certificate up (by its SHA-256, AWS's
//! certificate id) before it answers CONNECT. A client without a certificate fails the
//! handshake.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Accepts any well-formed client certificate whose key the client proves it holds.
#[derive(Debug)]
pub struct DeviceCertificateVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    mandatory: bool,
}

impl DeviceCertificateVerifier {
    /// A certificate is required (the device port).
    pub fn new() -> Self {
        DeviceCertificateVerifier {
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
            mandatory: true,
        }
    }

    /// A certificate is requested but a client may send none: the HTTPS API, where SigV4
    /// clients (awscli, boto3, the SDKs) present none and devices calling the jobs data plane
    /// present theirs. A certificate that is sent must still be well formed and its key proven.
    pub fn optional() -> Self {
        DeviceCertificateVerifier {
            mandatory: false,
            ..Self::new()
        }
    }
}

impl Default for DeviceCertificateVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCertVerifier for DeviceCertificateVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Validity, status and issuer are the registry's decision (see the module docs); here
        // the certificate only has to parse.
        x509_parse_ok(end_entity)
            .then(ClientCertVerified::assertion)
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
}

fn x509_parse_ok(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref()).is_ok_and(|(rest, _)| rest.is_empty())
}

/// The device port's TLS configuration: `cert_chain_pem`/`key_pem` are the server identity.
/// No ALPN is advertised, so clients offering AWS's `x-amzn-mqtt-ca` still connect.
pub fn server_config(cert_chain_pem: &str, key_pem: &str) -> Result<rustls::ServerConfig, String> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("parsing the server certificate chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("parsing the server key: {e}"))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(DeviceCertificateVerifier::new()))
        .with_single_cert(chain, key)
        .map_err(|e| format!("building the device TLS configuration: {e}"))?;
    // Idle devices hold their connection for hours: session tickets only cost memory.
    config.send_tls13_tickets = 0;
    Ok(config)
}
