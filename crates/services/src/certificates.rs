//! The certificate service: device certificates (issued by drover's CA or registered), CA
//! certificates and their registration code, and the certificates attached to things
//! (thing principals).
//!
//! Every change that can take a certificate's right to connect away, or change what it may
//! do, is announced as a [`PrincipalChange`] so the broker can disconnect or re-authorize.

use std::sync::Arc;

use drover_core::arn::ArnScope;
use drover_core::certificates::{
    self as rules, AutoRegistrationStatus, CaCertificateStatus, CertificateMode, CertificateStatus,
    StateRefusal,
};
use drover_core::iot_policies::{TargetRef, parse_target};
use drover_core::names::check_name;
use drover_store::{
    AttachOutcome, CaCertificateRecord, CasOutcome, CertificateRecord, DeleteOutcome, SharedStore,
    StoreError, ThingPrincipal,
};

use crate::device_ca::{CsrError, DeviceCa};
use crate::devices::{PrincipalChange, PrincipalChanges};
use crate::pagination;
use crate::registry::{Listing, new_id};
use crate::x509::{Certificate, Validity};
use crate::{Clock, ServiceError, ServiceResult};

/// The settings key of the account's CA registration code.
const REGISTRATION_CODE_KEY: &str = "ca_registration_code";
/// AWS allows ten CA certificates with the same subject per account.
const MAX_CAS_PER_SUBJECT: usize = 10;

/// CreateKeysAndCertificate's result: the certificate and the only copy of its private key.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate: CertificateRecord,
    pub public_key_pem: String,
    pub private_key_pem: String,
}

/// RegisterCACertificate input.
#[derive(Debug, Clone, Default)]
pub struct RegisterCa {
    pub ca_certificate: String,
    pub verification_certificate: Option<String>,
    pub set_as_active: bool,
    pub allow_auto_registration: bool,
    /// `registrationConfig` as given (a JSON object).
    pub registration_config: Option<serde_json::Value>,
    pub certificate_mode: Option<String>,
}

/// UpdateCACertificate input.
#[derive(Debug, Clone, Default)]
pub struct UpdateCa {
    pub new_status: Option<String>,
    pub new_auto_registration_status: Option<String>,
    pub registration_config: Option<serde_json::Value>,
    pub remove_auto_registration: bool,
}

#[derive(Clone)]
pub struct Certificates {
    store: SharedStore,
    scope: ArnScope,
    clock: Arc<dyn Clock>,
    ca: Arc<DeviceCa>,
    changes: PrincipalChanges,
}

fn certificate_not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("Certificate {id} cannot be found."))
}

fn ca_not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("CA certificate {id} cannot be found."))
}

fn refusal(r: StateRefusal) -> ServiceError {
    match r {
        StateRefusal::InvalidRequest(m) => ServiceError::InvalidRequest(m),
        StateRefusal::State(m) => ServiceError::CertificateState(m),
    }
}

/// Parses `pem` for a request member: an unusable certificate is a CertificateValidation
/// error, as AWS reports it.
fn parse(pem: &str) -> ServiceResult<Certificate> {
    Certificate::from_pem(pem).map_err(ServiceError::CertificateValidation)
}

impl Certificates {
    pub fn new(
        store: SharedStore,
        scope: ArnScope,
        clock: Arc<dyn Clock>,
        ca: Arc<DeviceCa>,
        changes: PrincipalChanges,
    ) -> Self {
        Self {
            store,
            scope,
            clock,
            ca,
            changes,
        }
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// A new record for a certificate: version 1, a fresh generation id.
    fn record(
        &self,
        certificate: &Certificate,
        status: CertificateStatus,
        ca_certificate_id: Option<String>,
        mode: CertificateMode,
    ) -> CertificateRecord {
        let now = self.clock.now();
        CertificateRecord {
            id: certificate.id.clone(),
            pem: certificate.pem(),
            status: status.as_str().to_string(),
            ca_certificate_id,
            mode: mode.as_str().to_string(),
            not_before: certificate.not_before,
            not_after: certificate.not_after,
            created_at: now,
            updated_at: now,
            version: 1,
            generation_id: new_id(),
        }
    }

    async fn insert(&self, record: CertificateRecord) -> ServiceResult<CertificateRecord> {
        match self.store.insert_certificate(&record).await {
            Ok(()) => Ok(record),
            Err(StoreError::AlreadyExists(_)) => Err(ServiceError::AlreadyExists {
                message: "The certificate is already provisioned or registered".into(),
                resource_arn: self.scope.certificate(&record.id),
                resource_id: record.id,
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn status_of(set_as_active: bool) -> CertificateStatus {
        if set_as_active {
            CertificateStatus::Active
        } else {
            CertificateStatus::Inactive
        }
    }

    // ---- issuing ------------------------------------------------------------------------

    /// CreateKeysAndCertificate.
    pub async fn create_keys_and_certificate(
        &self,
        set_as_active: bool,
    ) -> ServiceResult<IssuedCertificate> {
        let ca = self.ca.clone();
        let now = self.clock.now();
        let issued = tokio::task::spawn_blocking(move || ca.issue_with_new_key(now))
            .await
            .map_err(|e| ServiceError::Internal(format!("issuing task failed: {e}")))?
            .map_err(ServiceError::Internal)?;
        let certificate = Certificate::from_pem(&issued.certificate_pem)
            .map_err(|e| ServiceError::Internal(format!("issued certificate unreadable: {e}")))?;
        let record = self.record(
            &certificate,
            Self::status_of(set_as_active),
            Some(self.ca.id().to_string()),
            CertificateMode::Default,
        );
        let certificate = self.insert(record).await?;
        Ok(IssuedCertificate {
            certificate,
            public_key_pem: issued.public_key_pem,
            private_key_pem: issued.private_key_pem,
        })
    }

    /// CreateCertificateFromCsr.
    pub async fn create_certificate_from_csr(
        &self,
        csr: &str,
        set_as_active: bool,
    ) -> ServiceResult<CertificateRecord> {
        if csr.is_empty() || csr.len() > 4096 {
            return Err(ServiceError::InvalidRequest(
                "1 validation error detected: Value at 'certificateSigningRequest' failed to \
                 satisfy constraint: Member must have length between 1 and 4096"
                    .into(),
            ));
        }
        let pem = self
            .ca
            .issue_for_csr(csr, self.clock.now())
            .map_err(|e| match e {
                CsrError::Invalid(m) => ServiceError::InvalidRequest(m),
                CsrError::Internal(m) => ServiceError::Internal(m),
            })?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| ServiceError::Internal(format!("issued certificate unreadable: {e}")))?;
        let record = self.record(
            &certificate,
            Self::status_of(set_as_active),
            Some(self.ca.id().to_string()),
            CertificateMode::Default,
        );
        self.insert(record).await
    }

    // ---- registering --------------------------------------------------------------------

    /// RegisterCertificate: a certificate signed by a registered CA (the one given, or the
    /// registered CA whose subject is the certificate's issuer and whose key signed it).
    pub async fn register_certificate(
        &self,
        certificate_pem: &str,
        ca_certificate_pem: Option<&str>,
        set_as_active: Option<bool>,
        status: Option<&str>,
    ) -> ServiceResult<CertificateRecord> {
        let status = status
            .map(|s| CertificateStatus::parse("status", s))
            .transpose()?;
        let status = rules::registration_status(set_as_active, status)?;
        let certificate = parse(certificate_pem)?;
        self.check_current(&certificate)?;
        let (ca_id, mode) = match ca_certificate_pem {
            Some(ca_pem) => {
                let ca = parse(ca_pem)?;
                let (id, mode) = self.registered_ca(&ca).await?.ok_or_else(|| {
                    ServiceError::CertificateValidation(format!(
                        "The CA certificate {} is not registered",
                        ca.id
                    ))
                })?;
                if !certificate.is_signed_by(&ca) {
                    return Err(ServiceError::CertificateValidation(
                        "The certificate is not signed by the given CA certificate".into(),
                    ));
                }
                (id, mode)
            }
            None => self.find_issuer(&certificate).await?.ok_or_else(|| {
                ServiceError::CertificateValidation(
                    "The certificate is not signed by a registered CA certificate".into(),
                )
            })?,
        };
        let record = self.record(&certificate, status, Some(ca_id), mode);
        self.insert(record).await
    }

    /// RegisterCertificateWithoutCA.
    pub async fn register_certificate_without_ca(
        &self,
        certificate_pem: &str,
        status: Option<&str>,
    ) -> ServiceResult<CertificateRecord> {
        let status = status
            .map(|s| CertificateStatus::parse("status", s))
            .transpose()?;
        let status = rules::registration_status(None, status)?;
        let certificate = parse(certificate_pem)?;
        self.check_current(&certificate)?;
        let record = self.record(&certificate, status, None, CertificateMode::SniOnly);
        self.insert(record).await
    }

    /// AWS refuses to register a certificate outside its validity period.
    fn check_current(&self, certificate: &Certificate) -> ServiceResult<()> {
        match certificate.validity_at(self.clock.now()) {
            Validity::Valid => Ok(()),
            Validity::Expired => Err(ServiceError::CertificateValidation(
                "The certificate has expired".into(),
            )),
            Validity::NotYetValid => Err(ServiceError::CertificateValidation(
                "The certificate is not yet valid".into(),
            )),
        }
    }

    /// The id and mode of `ca` if it is registered (drover's own CA counts as registered).
    async fn registered_ca(
        &self,
        ca: &Certificate,
    ) -> ServiceResult<Option<(String, CertificateMode)>> {
        if ca.id == self.ca.id() {
            return Ok(Some((ca.id.clone(), CertificateMode::Default)));
        }
        Ok(self
            .store
            .get_ca_certificate(&ca.id)
            .await?
            .map(|record| (record.id, mode_of(&record.mode))))
    }

    /// The registered CA (or drover's own) that signed `certificate`.
    async fn find_issuer(
        &self,
        certificate: &Certificate,
    ) -> ServiceResult<Option<(String, CertificateMode)>> {
        if certificate.issuer_key == self.ca.certificate().subject_key
            && certificate.is_signed_by(self.ca.certificate())
        {
            return Ok(Some((self.ca.id().to_string(), CertificateMode::Default)));
        }
        for candidate in self
            .store
            .find_ca_certificates(&certificate.issuer_key)
            .await?
        {
            let Ok(ca) = Certificate::from_pem(&candidate.pem) else {
                continue;
            };
            if certificate.is_signed_by(&ca) {
                return Ok(Some((candidate.id, mode_of(&candidate.mode))));
            }
        }
        Ok(None)
    }

    // ---- reading and changing -----------------------------------------------------------

    pub async fn describe_certificate(&self, id: &str) -> ServiceResult<CertificateRecord> {
        let id = rules::check_certificate_id("certificateId", id)?;
        self.store
            .get_certificate(&id)
            .await?
            .ok_or_else(|| certificate_not_found(&id))
    }

    /// ListCertificates (`ca` = None) and ListCertificatesByCA.
    pub async fn list_certificates(
        &self,
        ca: Option<&str>,
        marker: Option<&str>,
        page_size: Option<i64>,
        ascending: bool,
    ) -> ServiceResult<Listing<CertificateRecord>> {
        let ca = ca
            .map(|ca| rules::check_certificate_id("caCertificateId", ca))
            .transpose()?;
        let page = pagination::marker_request(marker, page_size)?;
        let page = self
            .store
            .list_certificates(ca.as_deref(), &page, ascending)
            .await?;
        Ok(Listing {
            items: page.items,
            next_token: page.next_after.as_deref().map(pagination::encode_marker),
        })
    }

    /// UpdateCertificate.
    pub async fn update_certificate(&self, id: &str, new_status: &str) -> ServiceResult<()> {
        let id = rules::check_certificate_id("certificateId", id)?;
        let new_status = CertificateStatus::parse("newStatus", new_status)?;
        loop {
            let current = self
                .store
                .get_certificate(&id)
                .await?
                .ok_or_else(|| certificate_not_found(&id))?;
            let current_status = CertificateStatus::parse("status", &current.status)
                .map_err(|e| ServiceError::Internal(format!("stored certificate status: {e}")))?;
            rules::check_status_change(&id, current_status, new_status).map_err(refusal)?;
            if current_status == new_status {
                return Ok(());
            }
            let mut next = current.clone();
            next.status = new_status.as_str().to_string();
            next.version += 1;
            next.updated_at = self.clock.now();
            next.generation_id = new_id();
            match self
                .store
                .replace_certificate(&next, current.version)
                .await?
            {
                CasOutcome::Done => {
                    if current_status == CertificateStatus::Active {
                        self.changes.send(PrincipalChange::CertificateDeactivated {
                            certificate_id: id.clone(),
                        });
                    }
                    return Ok(());
                }
                CasOutcome::NotFound => return Err(certificate_not_found(&id)),
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    /// DeleteCertificate. `force_delete` detaches the certificate's policies; things must
    /// always be detached first, and an ACTIVE certificate deactivated.
    pub async fn delete_certificate(&self, id: &str, force_delete: bool) -> ServiceResult<()> {
        let id = rules::check_certificate_id("certificateId", id)?;
        loop {
            let current = self
                .store
                .get_certificate(&id)
                .await?
                .ok_or_else(|| certificate_not_found(&id))?;
            let status = CertificateStatus::parse("status", &current.status)
                .map_err(|e| ServiceError::Internal(format!("stored certificate status: {e}")))?;
            rules::check_deletable(&id, status).map_err(refusal)?;
            let arn = self.scope.certificate(&id);
            match self
                .store
                .delete_certificate(&id, current.version, force_delete)
                .await?
            {
                DeleteOutcome::Done => {
                    self.changes.send(PrincipalChange::CertificateDeactivated {
                        certificate_id: id.clone(),
                    });
                    return Ok(());
                }
                DeleteOutcome::NotFound => return Err(certificate_not_found(&id)),
                DeleteOutcome::AttachedToThing => {
                    return Err(ServiceError::DeleteConflict(format!(
                        "Things must be detached before deletion (arn: {arn})"
                    )));
                }
                DeleteOutcome::PoliciesAttached => {
                    return Err(ServiceError::DeleteConflict(format!(
                        "Certificate policies must be detached before deletion (arn: {arn})"
                    )));
                }
                // The status changed in between: check it again.
                _ => continue,
            }
        }
    }

    // ---- CA certificates ----------------------------------------------------------------

    /// GetRegistrationCode: one code per account, created on first use.
    pub async fn registration_code(&self) -> ServiceResult<String> {
        let fresh: [u8; 32] = rand::random();
        Ok(self
            .store
            .setting_or_insert(REGISTRATION_CODE_KEY, &hex::encode(fresh))
            .await?)
    }

    /// RegisterCACertificate.
    pub async fn register_ca_certificate(
        &self,
        request: RegisterCa,
    ) -> ServiceResult<CaCertificateRecord> {
        let mode = request
            .certificate_mode
            .as_deref()
            .map(|m| CertificateMode::parse("certificateMode", m))
            .transpose()?
            .unwrap_or(CertificateMode::Default);
        let config = registration_config(request.registration_config)?;
        let ca = parse(&request.ca_certificate)?;
        if !ca.is_ca {
            return Err(ServiceError::CertificateValidation(
                "The certificate is not a CA certificate (basicConstraints CA:TRUE is required)"
                    .into(),
            ));
        }
        if ca.validity_at(self.clock.now()) != Validity::Valid {
            return Err(ServiceError::CertificateValidation(
                "The CA certificate is expired or not yet valid".into(),
            ));
        }
        match (mode, request.verification_certificate.as_deref()) {
            (CertificateMode::Default, None | Some("")) => {
                return Err(ServiceError::InvalidRequest(
                    "verificationCertificate is required unless certificateMode is SNI_ONLY".into(),
                ));
            }
            (CertificateMode::Default, Some(pem)) => {
                let verification = parse(pem)?;
                if !verification.is_signed_by(&ca) {
                    return Err(ServiceError::CertificateValidation(
                        "The verification certificate is not signed by the CA certificate".into(),
                    ));
                }
                let code = self.registration_code().await?;
                if verification.common_name() != Some(code.as_str()) {
                    return Err(ServiceError::RegistrationCodeValidation(
                        "The verification certificate's common name is not the registration code"
                            .into(),
                    ));
                }
            }
            (CertificateMode::SniOnly, Some(pem)) if !pem.is_empty() => {
                return Err(ServiceError::InvalidRequest(
                    "verificationCertificate must be empty when certificateMode is SNI_ONLY".into(),
                ));
            }
            (CertificateMode::SniOnly, _) => {}
        }
        if self
            .store
            .find_ca_certificates(&ca.subject_key)
            .await?
            .len()
            >= MAX_CAS_PER_SUBJECT
        {
            return Err(ServiceError::LimitExceeded(format!(
                "At most {MAX_CAS_PER_SUBJECT} CA certificates may share one subject"
            )));
        }
        let now = self.clock.now();
        let record = CaCertificateRecord {
            id: ca.id.clone(),
            pem: ca.pem(),
            subject: ca.subject_key.clone(),
            status: if request.set_as_active {
                CaCertificateStatus::Active
            } else {
                CaCertificateStatus::Inactive
            }
            .as_str()
            .to_string(),
            auto_registration: if request.allow_auto_registration {
                AutoRegistrationStatus::Enable
            } else {
                AutoRegistrationStatus::Disable
            }
            .as_str()
            .to_string(),
            registration_config: config,
            mode: mode.as_str().to_string(),
            not_before: ca.not_before,
            not_after: ca.not_after,
            created_at: now,
            updated_at: now,
            version: 1,
            generation_id: new_id(),
        };
        match self.store.insert_ca_certificate(&record).await {
            Ok(()) => Ok(record),
            Err(StoreError::AlreadyExists(_)) => Err(ServiceError::AlreadyExists {
                message: "The CA certificate is already registered".into(),
                resource_arn: self.scope.ca_certificate(&record.id),
                resource_id: record.id,
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn describe_ca_certificate(&self, id: &str) -> ServiceResult<CaCertificateRecord> {
        let id = rules::check_certificate_id("caCertificateId", id)?;
        self.store
            .get_ca_certificate(&id)
            .await?
            .ok_or_else(|| ca_not_found(&id))
    }

    /// ListCACertificates. drover's own CA is not listed (AWS does not list its own either).
    pub async fn list_ca_certificates(
        &self,
        marker: Option<&str>,
        page_size: Option<i64>,
        ascending: bool,
        template_name: Option<&str>,
    ) -> ServiceResult<Listing<CaCertificateRecord>> {
        let page = pagination::marker_request(marker, page_size)?;
        let page = self.store.list_ca_certificates(&page, ascending).await?;
        let mut items = page.items;
        if let Some(template) = template_name {
            items.retain(|ca| {
                ca.registration_config
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                    .is_some_and(|c| c["templateName"] == template)
            });
        }
        Ok(Listing {
            items,
            next_token: page.next_after.as_deref().map(pagination::encode_marker),
        })
    }

    /// UpdateCACertificate. Deactivating a CA deactivates every certificate it signed as far
    /// as connecting goes: each is announced.
    pub async fn update_ca_certificate(&self, id: &str, update: UpdateCa) -> ServiceResult<()> {
        let id = rules::check_certificate_id("caCertificateId", id)?;
        let new_status = update
            .new_status
            .as_deref()
            .map(|s| CaCertificateStatus::parse("newStatus", s))
            .transpose()?;
        let new_auto = update
            .new_auto_registration_status
            .as_deref()
            .map(|s| AutoRegistrationStatus::parse("newAutoRegistrationStatus", s))
            .transpose()?;
        let config = registration_config(update.registration_config)?;
        loop {
            let current = self.describe_ca_certificate(&id).await?;
            let mut next = current.clone();
            if let Some(status) = new_status {
                next.status = status.as_str().to_string();
            }
            if let Some(auto) = new_auto {
                next.auto_registration = auto.as_str().to_string();
            }
            if update.remove_auto_registration {
                next.registration_config = None;
            } else if config.is_some() {
                next.registration_config = config.clone();
            }
            if next == current {
                return Ok(());
            }
            next.version += 1;
            next.updated_at = self.clock.now();
            next.generation_id = new_id();
            match self
                .store
                .replace_ca_certificate(&next, current.version)
                .await?
            {
                CasOutcome::Done => {
                    if current.status == "ACTIVE" && next.status != "ACTIVE" {
                        self.announce_ca_deactivated(&id).await?;
                    }
                    return Ok(());
                }
                CasOutcome::NotFound => return Err(ca_not_found(&id)),
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    async fn announce_ca_deactivated(&self, ca: &str) -> ServiceResult<()> {
        let mut after = None;
        loop {
            let page = self
                .store
                .list_certificates(
                    Some(ca),
                    &drover_store::PageRequest {
                        after,
                        limit: 1_000,
                    },
                    true,
                )
                .await?;
            for certificate in page.items {
                self.changes.send(PrincipalChange::CertificateDeactivated {
                    certificate_id: certificate.id,
                });
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// DeleteCACertificate: only an INACTIVE one. The certificates it signed stay registered
    /// but cannot connect while their CA is missing.
    pub async fn delete_ca_certificate(&self, id: &str) -> ServiceResult<()> {
        let id = rules::check_certificate_id("caCertificateId", id)?;
        loop {
            let current = self.describe_ca_certificate(&id).await?;
            let status = CaCertificateStatus::parse("status", &current.status)
                .map_err(|e| ServiceError::Internal(format!("stored CA status: {e}")))?;
            rules::check_ca_deletable(&id, status).map_err(refusal)?;
            match self
                .store
                .delete_ca_certificate(&id, current.version)
                .await?
            {
                CasOutcome::Done => return Ok(()),
                CasOutcome::NotFound => return Err(ca_not_found(&id)),
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    // ---- thing principals ---------------------------------------------------------------

    /// The certificate id a principal names. drover's principals are certificates; other
    /// principal kinds (Cognito identities) are refused as unsupported.
    fn principal_certificate(&self, principal: &str) -> ServiceResult<String> {
        match parse_target(&self.scope, principal) {
            Ok(TargetRef::Certificate(id)) => Ok(id),
            Ok(TargetRef::Foreign) => Err(ServiceError::NotFound(format!(
                "Principal {principal} cannot be found."
            ))),
            _ => Err(ServiceError::InvalidRequest(format!(
                "Principal {principal} is not a certificate ARN \
                 (arn:aws:iot:{}:{}:cert/ID); drover supports certificate principals only",
                self.scope.region, self.scope.account_id
            ))),
        }
    }

    /// AttachThingPrincipal.
    pub async fn attach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
        principal_type: Option<&str>,
    ) -> ServiceResult<()> {
        check_name("thingName", thing)?;
        let exclusive = match principal_type {
            None | Some("NON_EXCLUSIVE_THING") => false,
            Some("EXCLUSIVE_THING") => true,
            Some(other) => {
                return Err(ServiceError::InvalidRequest(format!(
                    "1 validation error detected: Value '{other}' at 'thingPrincipalType' failed \
                     to satisfy constraint: Member must satisfy enum value set: \
                     [EXCLUSIVE_THING, NON_EXCLUSIVE_THING]"
                )));
            }
        };
        let id = self.principal_certificate(principal)?;
        match self
            .store
            .attach_thing_principal(thing, &id, exclusive, self.clock.now())
            .await?
        {
            AttachOutcome::Attached => {
                self.changes.send(PrincipalChange::PermissionsChanged {
                    certificate_id: Some(id),
                });
                Ok(())
            }
            AttachOutcome::AlreadyAttached => Ok(()),
            AttachOutcome::ExclusiveConflict => Err(ServiceError::InvalidRequest(format!(
                "Principal {principal} is attached exclusively to another thing, or cannot be \
                 attached exclusively while it is attached to other things"
            ))),
            _ => Err(self.missing_thing_or_certificate(thing, &id).await),
        }
    }

    async fn missing_thing_or_certificate(&self, thing: &str, id: &str) -> ServiceError {
        match self.store.get_thing(thing).await {
            Ok(None) => ServiceError::NotFound(format!("Thing {thing} cannot be found.")),
            Ok(Some(_)) => certificate_not_found(id),
            Err(e) => e.into(),
        }
    }

    /// DetachThingPrincipal.
    pub async fn detach_thing_principal(&self, thing: &str, principal: &str) -> ServiceResult<()> {
        check_name("thingName", thing)?;
        let id = self.principal_certificate(principal)?;
        if self.store.detach_thing_principal(thing, &id).await? {
            self.changes.send(PrincipalChange::PermissionsChanged {
                certificate_id: Some(id),
            });
            return Ok(());
        }
        if self.store.get_thing(thing).await?.is_none() {
            return Err(ServiceError::NotFound(format!(
                "Thing {thing} cannot be found."
            )));
        }
        if self.store.get_certificate(&id).await?.is_none() {
            return Err(certificate_not_found(&id));
        }
        // Detaching what is not attached changes nothing, as on AWS.
        Ok(())
    }

    /// ListThingPrincipals (and V2, which also reports the attachment type).
    pub async fn list_thing_principals(
        &self,
        thing: &str,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<ThingPrincipal>> {
        check_name("thingName", thing)?;
        let page = pagination::request(next_token, max_results)?;
        if self.store.get_thing(thing).await?.is_none() {
            return Err(ServiceError::NotFound(format!(
                "Failed to list principals for thing {thing} because the thing does not exist \
                 in your account"
            )));
        }
        Ok(self.store.list_thing_principals(thing, &page).await?.into())
    }

    /// ListPrincipalThings (and V2).
    pub async fn list_principal_things(
        &self,
        principal: &str,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<ThingPrincipal>> {
        let id = self.principal_certificate(principal)?;
        let page = pagination::request(next_token, max_results)?;
        if self.store.get_certificate(&id).await?.is_none() {
            return Err(certificate_not_found(&id));
        }
        Ok(self.store.list_principal_things(&id, &page).await?.into())
    }
}

fn mode_of(text: &str) -> CertificateMode {
    CertificateMode::parse("certificateMode", text).unwrap_or(CertificateMode::Default)
}

/// Checks a `registrationConfig` and returns it as stored JSON text.
fn registration_config(config: Option<serde_json::Value>) -> ServiceResult<Option<String>> {
    let Some(config) = config else {
        return Ok(None);
    };
    let Some(object) = config.as_object() else {
        return Err(ServiceError::InvalidRequest(
            "registrationConfig must be an object".into(),
        ));
    };
    let text = |key: &str| object.get(key).and_then(|v| v.as_str());
    if let Some(body) = object.get("templateBody") {
        let body = body.as_str().unwrap_or_default();
        if body.len() > 10_240 {
            return Err(ServiceError::InvalidRequest(
                "registrationConfig.templateBody must be at most 10240 characters".into(),
            ));
        }
    }
    if let Some(role) = text("roleArn")
        && !(20..=2048).contains(&role.len())
    {
        return Err(ServiceError::InvalidRequest(
            "registrationConfig.roleArn must have length between 20 and 2048".into(),
        ));
    }
    if let Some(name) = text("templateName")
        && (name.is_empty()
            || name.len() > 36
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(ServiceError::InvalidRequest(
            "registrationConfig.templateName must match ^[0-9A-Za-z_-]+$ (1..36 characters)".into(),
        ));
    }
    Ok(Some(config.to_string()))
}
