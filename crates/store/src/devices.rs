//! The records behind device identity: certificates, CA certificates, thing principals,
//! policies with their versions and targets, and client presence (connection state).
//!
//! Like every store record these carry no rules: statuses are the strings AWS uses, checked by
//! `drover-core` before they are written.

use drover_core::time::Timestamp;

/// A device certificate (issued by drover or registered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// SHA-256 of the DER, lower-case hex.
    pub id: String,
    pub pem: String,
    pub status: String,
    /// The CA certificate that signed it, when known (drover's own CA for certificates drover
    /// issues).
    pub ca_certificate_id: Option<String>,
    pub mode: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// 1 at registration, +1 on every change (AWS's `customerVersion`); compare-and-swap key.
    pub version: i64,
    pub generation_id: String,
}

/// A registered CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificateRecord {
    pub id: String,
    pub pem: String,
    /// The subject DN as text: how RegisterCertificate finds the CA of a certificate.
    pub subject: String,
    pub status: String,
    pub auto_registration: String,
    /// `registrationConfig` as JSON text.
    pub registration_config: Option<String>,
    pub mode: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    pub generation_id: String,
}

/// A certificate attached to a thing (AttachThingPrincipal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingPrincipal {
    pub thing_name: String,
    pub certificate_id: String,
    /// `EXCLUSIVE_THING`: the certificate may be attached to this thing only.
    pub exclusive: bool,
    pub attached_at: Timestamp,
}

/// A policy with its default version's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub name: String,
    pub default_version: i64,
    pub document: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub generation_id: String,
}

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    pub policy_name: String,
    pub version: i64,
    pub document: String,
    pub is_default: bool,
    pub created_at: Timestamp,
}

/// What a policy is attached to: a certificate or a thing group, named by `arn` in listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTarget {
    pub arn: String,
    pub certificate_id: Option<String>,
    pub thing_group: Option<String>,
}

/// The outcome of a conditional delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Done,
    NotFound,
    VersionMismatch,
    /// A thing still has the certificate attached.
    AttachedToThing,
    /// Policies are still attached (to the certificate, or this policy to targets).
    PoliciesAttached,
    /// The policy has versions besides the default one.
    HasOtherVersions,
    /// The version is the policy's default.
    IsDefaultVersion,
}

/// The outcome of attaching a principal to a thing or a policy to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachOutcome {
    Attached,
    /// It was attached already; nothing changed.
    AlreadyAttached,
    /// The policy, thing, certificate or thing group does not exist.
    NotFound,
    /// The target already has the maximum number of policies.
    LimitExceeded,
    /// The certificate is attached exclusively elsewhere, or exclusivity was asked of a
    /// certificate attached to another thing.
    ExclusiveConflict,
}

/// The outcome of CreatePolicyVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionOutcome {
    Created(PolicyVersionRecord),
    NotFound,
    LimitExceeded,
}

/// The page key of listings in creation order: `{created_at}:{id}`.
pub fn created_key(created_at: Timestamp, id: &str) -> String {
    format!("{}:{id}", created_at.0)
}

/// Reads a [`created_key`]; `None` when it is not one.
pub fn parse_created_key(key: &str) -> Option<(i64, String)> {
    let (at, id) = key.split_once(':')?;
    Some((at.parse().ok()?, id.to_string()))
}
