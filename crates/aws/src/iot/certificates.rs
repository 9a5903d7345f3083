//! CreateKeysAndCertificate, CreateCertificateFromCsr, DescribeCertificate, ListCertificates,
//! ListCertificatesByCA, UpdateCertificate, DeleteCertificate, RegisterCertificate,
//! RegisterCertificateWithoutCA, GetRegistrationCode, RegisterCACertificate,
//! DescribeCACertificate, ListCACertificates, UpdateCACertificate, DeleteCACertificate.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_services::certificates::{RegisterCa, UpdateCa};
use drover_store::{CaCertificateRecord, CertificateRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok, timestamp};

fn validity(
    not_before: drover_core::time::Timestamp,
    not_after: drover_core::time::Timestamp,
) -> Value {
    json!({ "notBefore": timestamp(not_before), "notAfter": timestamp(not_after) })
}

pub async fn create_keys_and_certificate(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let set_as_active = Params::parse(query.as_deref())
        .bool("setAsActive")?
        .unwrap_or(false);
    let issued = state
        .certificates
        .create_keys_and_certificate(set_as_active)
        .await?;
    let c = &issued.certificate;
    Ok(ok(json!({
        "certificateArn": state.certificates.scope().certificate(&c.id),
        "certificateId": c.id,
        "certificatePem": c.pem,
        "keyPair": {
            "PublicKey": issued.public_key_pem,
            "PrivateKey": issued.private_key_pem,
        },
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsrRequest {
    certificate_signing_request: Option<String>,
}

pub async fn create_from_csr(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let set_as_active = Params::parse(query.as_deref())
        .bool("setAsActive")?
        .unwrap_or(false);
    let request: CsrRequest = body(&bytes)?;
    let csr = request
        .certificate_signing_request
        .ok_or_else(|| ApiError::invalid_request("certificateSigningRequest is required"))?;
    let c = state
        .certificates
        .create_certificate_from_csr(&csr, set_as_active)
        .await?;
    Ok(ok(json!({
        "certificateArn": state.certificates.scope().certificate(&c.id),
        "certificateId": c.id,
        "certificatePem": c.pem,
    })))
}

pub async fn describe(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = state.certificates.describe_certificate(&id).await?;
    let scope = state.certificates.scope();
    Ok(ok(json!({
        "certificateDescription": {
            "certificateArn": scope.certificate(&c.id),
            "certificateId": c.id,
            "caCertificateId": c.ca_certificate_id,
            "status": c.status,
            "certificatePem": c.pem,
            "ownedBy": scope.account_id,
            "creationDate": timestamp(c.created_at),
            "lastModifiedDate": timestamp(c.updated_at),
            "customerVersion": c.version,
            "generationId": c.generation_id,
            "validity": validity(c.not_before, c.not_after),
            "certificateMode": c.mode,
        }
    })))
}

fn summary(state: &ApiState, c: &CertificateRecord) -> Value {
    json!({
        "certificateArn": state.certificates.scope().certificate(&c.id),
        "certificateId": c.id,
        "status": c.status,
        "certificateMode": c.mode,
        "creationDate": timestamp(c.created_at),
    })
}

async fn listing(
    state: &ApiState,
    ca: Option<&str>,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let params = Params::parse(query);
    let listing = state
        .certificates
        .list_certificates(
            ca,
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
            params.bool("isAscendingOrder")?.unwrap_or(false),
        )
        .await?;
    let certificates: Vec<Value> = listing.items.iter().map(|c| summary(state, c)).collect();
    Ok(ok(
        json!({ "certificates": certificates, "nextMarker": listing.next_token }),
    ))
}

pub async fn list(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    listing(&state, None, query.as_deref()).await
}

pub async fn list_by_ca(
    State(state): State<ApiState>,
    Path(ca): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    listing(&state, Some(&ca), query.as_deref()).await
}

pub async fn update(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let new_status = Params::parse(query.as_deref())
        .string("newStatus")
        .ok_or_else(|| ApiError::invalid_request("newStatus is required"))?;
    state
        .certificates
        .update_certificate(&id, &new_status)
        .await?;
    Ok(empty())
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let force = Params::parse(query.as_deref())
        .bool("forceDelete")?
        .unwrap_or(false);
    state.certificates.delete_certificate(&id, force).await?;
    Ok(empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    certificate_pem: Option<String>,
    ca_certificate_pem: Option<String>,
    status: Option<String>,
}

fn registered(state: &ApiState, c: &CertificateRecord) -> Response {
    ok(json!({
        "certificateArn": state.certificates.scope().certificate(&c.id),
        "certificateId": c.id,
    }))
}

fn required(value: Option<String>, member: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_request(format!("{member} is required")))
}

pub async fn register(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let set_as_active = Params::parse(query.as_deref()).bool("setAsActive")?;
    let request: RegisterRequest = body(&bytes)?;
    let pem = required(request.certificate_pem, "certificatePem")?;
    let c = state
        .certificates
        .register_certificate(
            &pem,
            request.ca_certificate_pem.as_deref(),
            set_as_active,
            request.status.as_deref(),
        )
        .await?;
    Ok(registered(&state, &c))
}

pub async fn register_without_ca(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: RegisterRequest = body(&bytes)?;
    let pem = required(request.certificate_pem, "certificatePem")?;
    let c = state
        .certificates
        .register_certificate_without_ca(&pem, request.status.as_deref())
        .await?;
    Ok(registered(&state, &c))
}

pub async fn registration_code(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let code = state.certificates.registration_code().await?;
    Ok(ok(json!({ "registrationCode": code })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterCaRequest {
    ca_certificate: Option<String>,
    verification_certificate: Option<String>,
    registration_config: Option<Value>,
    certificate_mode: Option<String>,
}

pub async fn register_ca(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let request: RegisterCaRequest = body(&bytes)?;
    let ca = state
        .certificates
        .register_ca_certificate(RegisterCa {
            ca_certificate: required(request.ca_certificate, "caCertificate")?,
            verification_certificate: request.verification_certificate,
            set_as_active: params.bool("setAsActive")?.unwrap_or(false),
            allow_auto_registration: params.bool("allowAutoRegistration")?.unwrap_or(false),
            registration_config: request.registration_config,
            certificate_mode: request.certificate_mode,
        })
        .await?;
    Ok(ok(json!({
        "certificateArn": state.certificates.scope().ca_certificate(&ca.id),
        "certificateId": ca.id,
    })))
}

fn stored_config(ca: &CaCertificateRecord) -> Value {
    ca.registration_config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null)
}

pub async fn describe_ca(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ca = state.certificates.describe_ca_certificate(&id).await?;
    let scope = state.certificates.scope();
    Ok(ok(json!({
        "certificateDescription": {
            "certificateArn": scope.ca_certificate(&ca.id),
            "certificateId": ca.id,
            "status": ca.status,
            "certificatePem": ca.pem,
            "ownedBy": scope.account_id,
            "creationDate": timestamp(ca.created_at),
            "autoRegistrationStatus": ca.auto_registration,
            "lastModifiedDate": timestamp(ca.updated_at),
            "customerVersion": ca.version,
            "generationId": ca.generation_id,
            "validity": validity(ca.not_before, ca.not_after),
            "certificateMode": ca.mode,
        },
        "registrationConfig": stored_config(&ca),
    })))
}

pub async fn list_ca(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .certificates
        .list_ca_certificates(
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
            params.bool("isAscendingOrder")?.unwrap_or(false),
            params.string("templateName").as_deref(),
        )
        .await?;
    let scope = state.certificates.scope();
    let certificates: Vec<Value> = listing
        .items
        .iter()
        .map(|ca| {
            json!({
                "certificateArn": scope.ca_certificate(&ca.id),
                "certificateId": ca.id,
                "status": ca.status,
                "creationDate": timestamp(ca.created_at),
            })
        })
        .collect();
    Ok(ok(
        json!({ "certificates": certificates, "nextMarker": listing.next_token }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateCaRequest {
    registration_config: Option<Value>,
    remove_auto_registration: Option<bool>,
}

pub async fn update_ca(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let request: UpdateCaRequest = body(&bytes)?;
    state
        .certificates
        .update_ca_certificate(
            &id,
            UpdateCa {
                new_status: params.string("newStatus"),
                new_auto_registration_status: params.string("newAutoRegistrationStatus"),
                registration_config: request.registration_config,
                remove_auto_registration: request.remove_auto_registration.unwrap_or(false),
            },
        )
        .await?;
    Ok(empty())
}

pub async fn delete_ca(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.certificates.delete_ca_certificate(&id).await?;
    Ok(empty())
}
