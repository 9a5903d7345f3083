//! drover's CA as the certificate services use it: issuing device certificates for
//! CreateKeysAndCertificate (with a fresh RSA-2048 key, as AWS does) and
//! CreateCertificateFromCsr.
//!
//! The CA itself (creating it, where its files live) belongs to the server's data directory;
//! the server hands its certificate and key here as PEM.

use drover_core::time::Timestamp;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

use crate::x509::Certificate;

/// AWS's device certificates are valid until the end of 2049; drover's until then or until
/// its CA expires, whichever comes first.
const NOT_AFTER_EPOCH_SECONDS: i64 = 2_524_607_999; // 2049-12-31T23:59:59Z
/// The subject of a certificate drover generates a key for: the one AWS uses.
const ISSUED_COMMON_NAME: &str = "AWS IoT Certificate";

/// The CA that signs the device certificates drover issues.
pub struct DeviceCa {
    certificate: Certificate,
    cert_pem: String,
    key_pem: String,
}

/// A certificate drover issued with a new key pair.
pub struct IssuedKeys {
    pub certificate_pem: String,
    pub public_key_pem: String,
    pub private_key_pem: String,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa")
            .field("id", &self.certificate.id)
            .finish_non_exhaustive()
    }
}

impl DeviceCa {
    /// The CA from its certificate and private key (PEM). Fails when either does not parse or
    /// the key does not sign for the certificate.
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let certificate = Certificate::from_pem(cert_pem)?;
        let ca = DeviceCa {
            certificate,
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        };
        ca.issuer()?;
        Ok(ca)
    }

    /// The CA certificate's id (SHA-256 of its DER): the `caCertificateId` of every
    /// certificate drover issues.
    pub fn id(&self) -> &str {
        &self.certificate.id
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, String> {
        let key = KeyPair::from_pem(&self.key_pem).map_err(|e| format!("invalid CA key: {e}"))?;
        Issuer::from_ca_cert_pem(&self.cert_pem, key)
            .map_err(|e| format!("invalid CA certificate: {e}"))
    }

    /// The parameters of every certificate drover issues: a random serial, validity from `now`
    /// to the end of 2049 (or the CA's end), client authentication.
    fn params(
        &self,
        now: Timestamp,
        subject: DistinguishedName,
    ) -> Result<CertificateParams, String> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        let mut serial: [u8; 16] = rand::random();
        serial[0] &= 0x7f; // positive
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let seconds = |ms: i64| {
            OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
                .map_err(|e| format!("timestamp out of range: {e}"))
        };
        params.not_before = seconds(now.0)?;
        let end = (NOT_AFTER_EPOCH_SECONDS * 1000).min(self.certificate.not_after.0);
        params.not_after = seconds(end)?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    /// CreateKeysAndCertificate: a new RSA-2048 key pair (what AWS issues, and what every AWS
    /// device SDK accepts) and a certificate for it. CPU-bound (key generation); run it on
    /// the blocking pool.
    pub fn issue_with_new_key(&self, now: Timestamp) -> Result<IssuedKeys, String> {
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| format!("generating an RSA key: {e}"))?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, ISSUED_COMMON_NAME);
        let cert = self
            .params(now, subject)?
            .signed_by(&key, &self.issuer()?)
            .map_err(|e| format!("signing the certificate: {e}"))?;
        Ok(IssuedKeys {
            certificate_pem: cert.pem(),
            public_key_pem: key.public_key_pem(),
            private_key_pem: key.serialize_pem(),
        })
    }

    /// CreateCertificateFromCsr: a certificate for the CSR's key and subject. `Err` carries a
    /// message for the caller when the CSR is unusable.
    pub fn issue_for_csr(&self, csr_pem: &str, now: Timestamp) -> Result<String, CsrError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
            CsrError::Invalid(format!("The certificate signing request is not valid: {e}"))
        })?;
        let subject = csr.params.distinguished_name.clone();
        csr.params = self.params(now, subject).map_err(CsrError::Internal)?;
        let issuer = self.issuer().map_err(CsrError::Internal)?;
        let cert = csr
            .signed_by(&issuer)
            .map_err(|e| CsrError::Internal(format!("signing the certificate: {e}")))?;
        Ok(cert.pem())
    }
}

/// Why a CSR was not signed.
#[derive(Debug)]
pub enum CsrError {
    /// The caller's CSR is unusable.
    Invalid(String),
    /// drover's CA failed.
    Internal(String),
}
