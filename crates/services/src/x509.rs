//! Reading X.509 certificates the way AWS IoT identifies them: the certificate id is the
//! SHA-256 of the DER, the facts the policy variables read come from the subject and issuer,
//! and "signed by this CA" is a signature check against the CA's public key.
//!
//! Parsing is x509-parser; digests and signature checks are aws-lc-rs, the crypto provider
//! rustls and rcgen already use.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use drover_core::policy::{CertificateFacts, DistinguishedName, DnAttribute};
use drover_core::time::Timestamp;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// A certificate, parsed once, with what the services need of it.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lower-case hex: the AWS certificate id.
    pub id: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// The subject and issuer names' DER, hex: exact keys for "which CA issued this".
    pub subject_key: String,
    pub issuer_key: String,
    /// Serial, subject and issuer as the `iot:Certificate.*` policy variables see them.
    pub facts: CertificateFacts,
}

impl Certificate {
    /// The first `CERTIFICATE` block of `pem`.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|_| "The certificate is not a valid PEM certificate".to_string())?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "Expected a PEM CERTIFICATE block, found {}",
                block.label
            ));
        }
        Self::from_der(&block.contents)
    }

    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("The certificate is not a valid X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("The certificate has trailing data".into());
        }
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        let validity = cert.validity();
        let id = certificate_id(der);
        Ok(Certificate {
            der: der.to_vec(),
            not_before: Timestamp(validity.not_before.timestamp().saturating_mul(1000)),
            not_after: Timestamp(validity.not_after.timestamp().saturating_mul(1000)),
            is_ca,
            subject_key: hex::encode(cert.subject().as_raw()),
            issuer_key: hex::encode(cert.issuer().as_raw()),
            facts: CertificateFacts {
                id: id.clone(),
                serial_number: Some(cert.tbs_certificate.serial.to_string()),
                subject: distinguished_name(cert.subject()),
                issuer: distinguished_name(cert.issuer()),
            },
            id,
        })
    }

    /// The certificate as PEM (64-column base64, as AWS returns it).
    pub fn pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        let (Ok((_, cert)), Ok((_, ca))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// The subject's common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.facts.subject.get(DnAttribute::CommonName)
    }

    /// Whether the certificate is valid at `now`.
    pub fn validity_at(&self, now: Timestamp) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }
}

/// Where `now` falls in a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    NotYetValid,
    Valid,
    Expired,
}

/// The AWS certificate id of a DER certificate.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// PEM text of `der` under `label`.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn distinguished_name(name: &X509Name) -> DistinguishedName {
    let mut dn = DistinguishedName::default();
    for attribute in name.iter_attributes() {
        let Some(kind) = dn_attribute(&attribute.attr_type().to_id_string()) else {
            continue;
        };
        let Ok(value) = attribute.as_str() else {
            continue;
        };
        // The first value of a repeated attribute, as AWS documents.
        dn.0.entry(kind).or_insert_with(|| value.to_string());
    }
    dn
}

/// The X.520 attribute behind each `iot:Certificate.Subject.*` name.
fn dn_attribute(oid: &str) -> Option<DnAttribute> {
    Some(match oid {
        "2.5.4.6" => DnAttribute::Country,
        "2.5.4.10" => DnAttribute::Organization,
        "2.5.4.11" => DnAttribute::OrganizationalUnit,
        "2.5.4.46" => DnAttribute::DistinguishedNameQualifier,
        "2.5.4.8" => DnAttribute::State,
        "2.5.4.3" => DnAttribute::CommonName,
        "2.5.4.5" => DnAttribute::SerialNumber,
        "2.5.4.12" => DnAttribute::Title,
        "2.5.4.4" => DnAttribute::Surname,
        "2.5.4.42" => DnAttribute::GivenName,
        "2.5.4.43" => DnAttribute::Initials,
        "2.5.4.65" => DnAttribute::Pseudonym,
        "2.5.4.44" => DnAttribute::GenerationQualifier,
        _ => return None,
    })
}
