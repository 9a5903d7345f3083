//! Certificate and CA-certificate rules: the statuses AWS IoT knows, which status changes
//! UpdateCertificate allows, what DeleteCertificate and DeleteCACertificate require, and the
//! identifiers' patterns.
//!
//! Parsing X.509 and signing live in the services (they need crypto and randomness); this
//! module only decides.

use std::fmt;

use crate::ValidationError;

/// A device certificate's status (`CertificateStatus` in the botocore model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    /// Deprecated by AWS; still accepted where the model accepts it.
    RegisterInactive,
    PendingActivation,
}

impl CertificateStatus {
    pub const ALL: [CertificateStatus; 6] = [
        CertificateStatus::Active,
        CertificateStatus::Inactive,
        CertificateStatus::Revoked,
        CertificateStatus::PendingTransfer,
        CertificateStatus::RegisterInactive,
        CertificateStatus::PendingActivation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Inactive => "INACTIVE",
            CertificateStatus::Revoked => "REVOKED",
            CertificateStatus::PendingTransfer => "PENDING_TRANSFER",
            CertificateStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertificateStatus::PendingActivation => "PENDING_ACTIVATION",
        }
    }

    /// The status named `value`, or a validation error quoting the model's enum.
    pub fn parse(member: &str, value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| enum_error(member, value, &Self::ALL.map(Self::as_str)))
    }

    /// PENDING_TRANSFER and PENDING_ACTIVATION are AWS's internal statuses: no caller may set
    /// them (UpdateCertificate's documentation says so; registration likewise).
    fn settable(self) -> bool {
        !matches!(
            self,
            CertificateStatus::PendingTransfer | CertificateStatus::PendingActivation
        )
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CA certificate's status (`CACertificateStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaCertificateStatus {
    Active,
    Inactive,
}

impl CaCertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaCertificateStatus::Active => "ACTIVE",
            CaCertificateStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(member: &str, value: &str) -> Result<Self, ValidationError> {
        match value {
            "ACTIVE" => Ok(CaCertificateStatus::Active),
            "INACTIVE" => Ok(CaCertificateStatus::Inactive),
            other => Err(enum_error(member, other, &["ACTIVE", "INACTIVE"])),
        }
    }
}

/// `certificateMode`: DEFAULT, or SNI_ONLY (registered without proof of the CA key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateMode {
    Default,
    SniOnly,
}

impl CertificateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateMode::Default => "DEFAULT",
            CertificateMode::SniOnly => "SNI_ONLY",
        }
    }

    pub fn parse(member: &str, value: &str) -> Result<Self, ValidationError> {
        match value {
            "DEFAULT" => Ok(CertificateMode::Default),
            "SNI_ONLY" => Ok(CertificateMode::SniOnly),
            other => Err(enum_error(member, other, &["DEFAULT", "SNI_ONLY"])),
        }
    }
}

/// `autoRegistrationStatus` of a CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoRegistrationStatus {
    Enable,
    Disable,
}

impl AutoRegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoRegistrationStatus::Enable => "ENABLE",
            AutoRegistrationStatus::Disable => "DISABLE",
        }
    }

    pub fn parse(member: &str, value: &str) -> Result<Self, ValidationError> {
        match value {
            "ENABLE" => Ok(AutoRegistrationStatus::Enable),
            "DISABLE" => Ok(AutoRegistrationStatus::Disable),
            other => Err(enum_error(member, other, &["ENABLE", "DISABLE"])),
        }
    }
}

fn enum_error(member: &str, value: &str, allowed: &[&str]) -> ValidationError {
    ValidationError::new(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    ))
}

/// A rule a certificate's current state forbids (`CertificateStateException`), or a request
/// no state allows (`InvalidRequestException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRefusal {
    InvalidRequest(String),
    State(String),
}

/// `certificateId`: 64 hex characters (the SHA-256 of the certificate's DER). Returns the id in
/// lower case, as AWS issues them.
pub fn check_certificate_id(member: &str, value: &str) -> Result<String, ValidationError> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
             constraint: Member must have length 64 and satisfy regular expression pattern: \
             (0x)?[a-fA-F0-9]+"
        )));
    }
    Ok(value.to_ascii_lowercase())
}

/// UpdateCertificate: may `current` become `new`? Setting the current status again is allowed
/// (the operation is idempotent).
pub fn check_status_change(
    id: &str,
    current: CertificateStatus,
    new: CertificateStatus,
) -> Result<(), StateRefusal> {
    if !new.settable() {
        return Err(StateRefusal::InvalidRequest(format!(
            "The status {new} cannot be set by UpdateCertificate"
        )));
    }
    if current == new {
        return Ok(());
    }
    match current {
        // Revocation is final: AWS never reactivates a revoked certificate, and allowing
        // REVOKED -> INACTIVE would open a two-step way back to ACTIVE.
        CertificateStatus::Revoked => Err(StateRefusal::State(format!(
            "Certificate {id} is REVOKED; a revoked certificate cannot change status"
        ))),
        CertificateStatus::PendingTransfer => Err(StateRefusal::State(format!(
            "Certificate {id} has a transfer pending; its status cannot change"
        ))),
        _ => Ok(()),
    }
}

/// The status a registered certificate starts in: `setAsActive` wins, then `status`, then
/// INACTIVE (AWS's default).
pub fn registration_status(
    set_as_active: Option<bool>,
    status: Option<CertificateStatus>,
) -> Result<CertificateStatus, ValidationError> {
    if set_as_active == Some(true) {
        return Ok(CertificateStatus::Active);
    }
    match status {
        None => Ok(CertificateStatus::Inactive),
        Some(s) if s.settable() => Ok(s),
        Some(s) => Err(ValidationError::new(format!(
            "The status {s} cannot be set when registering a certificate"
        ))),
    }
}

/// DeleteCertificate: an ACTIVE certificate must be deactivated first.
pub fn check_deletable(id: &str, status: CertificateStatus) -> Result<(), StateRefusal> {
    match status {
        CertificateStatus::Active => Err(StateRefusal::State(format!(
            "Certificate must be deactivated (not ACTIVE) before deletion. Id: {id}"
        ))),
        CertificateStatus::PendingTransfer => Err(StateRefusal::State(format!(
            "Certificate {id} has a transfer pending and cannot be deleted"
        ))),
        _ => Ok(()),
    }
}

/// DeleteCACertificate: an ACTIVE CA certificate must be deactivated first.
pub fn check_ca_deletable(id: &str, status: CaCertificateStatus) -> Result<(), StateRefusal> {
    match status {
        CaCertificateStatus::Active => Err(StateRefusal::State(format!(
            "CA certificate must be deactivated (not ACTIVE) before deletion. Id: {id}"
        ))),
        CaCertificateStatus::Inactive => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateStatus::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_refused() {
        for s in CertificateStatus::ALL {
            assert_eq!(CertificateStatus::parse("newStatus", s.as_str()), Ok(s));
        }
        let e = CertificateStatus::parse("newStatus", "active").unwrap_err();
        assert!(e.0.contains("enum value set"));
        assert!(CaCertificateStatus::parse("newStatus", "REVOKED").is_err());
        assert_eq!(
            CertificateMode::parse("m", "SNI_ONLY"),
            Ok(CertificateMode::SniOnly)
        );
    }

    #[test]
    fn revoked_is_final_and_internal_statuses_cannot_be_set() {
        assert!(check_status_change("c", Active, Inactive).is_ok());
        assert!(check_status_change("c", Inactive, Active).is_ok());
        assert!(check_status_change("c", Active, Revoked).is_ok());
        assert!(check_status_change("c", Revoked, Revoked).is_ok());
        assert!(matches!(
            check_status_change("c", Revoked, Active),
            Err(StateRefusal::State(_))
        ));
        assert!(matches!(
            check_status_change("c", Revoked, Inactive),
            Err(StateRefusal::State(_))
        ));
        assert!(matches!(
            check_status_change("c", Active, PendingTransfer),
            Err(StateRefusal::InvalidRequest(_))
        ));
        assert!(matches!(
            check_status_change("c", PendingTransfer, Active),
            Err(StateRefusal::State(_))
        ));
    }

    #[test]
    fn registration_and_deletion_rules() {
        assert_eq!(registration_status(None, None), Ok(Inactive));
        assert_eq!(registration_status(Some(true), Some(Revoked)), Ok(Active));
        assert_eq!(registration_status(Some(false), Some(Active)), Ok(Active));
        assert!(registration_status(None, Some(PendingActivation)).is_err());
        assert!(check_deletable("c", Active).is_err());
        assert!(check_deletable("c", Inactive).is_ok());
        assert!(check_deletable("c", Revoked).is_ok());
        assert!(check_ca_deletable("c", CaCertificateStatus::Active).is_err());
        assert!(check_ca_deletable("c", CaCertificateStatus::Inactive).is_ok());
    }

    #[test]
    fn certificate_ids_are_64_hex_characters() {
        let id = "AB".repeat(32);
        assert_eq!(
            check_certificate_id("certificateId", &id),
            Ok("ab".repeat(32))
        );
        assert!(check_certificate_id("certificateId", "abc").is_err());
        assert!(check_certificate_id("certificateId", &"g".repeat(64)).is_err());
    }
}
