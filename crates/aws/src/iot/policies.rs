//! CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, CreatePolicyVersion,
//! GetPolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion, DeletePolicyVersion,
//! AttachPolicy, DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy, and the legacy
//! AttachPrincipalPolicy, DetachPrincipalPolicy, ListPrincipalPolicies, ListPolicyPrincipals.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use drover_services::registry::Listing;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::principals::header;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok, timestamp};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentRequest {
    policy_document: Option<String>,
}

fn document(bytes: &Bytes) -> Result<String, ApiError> {
    let request: DocumentRequest = body(bytes)?;
    request
        .policy_document
        .ok_or_else(|| ApiError::invalid_request("policyDocument is required"))
}

pub async fn create(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let document = document(&bytes)?;
    let policy = state.policies.create_policy(&name, &document).await?;
    Ok(ok(json!({
        "policyName": policy.name,
        "policyArn": state.policies.scope().policy(&policy.name),
        "policyDocument": policy.document,
        "policyVersionId": policy.default_version.to_string(),
    })))
}

pub async fn get(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let policy = state.policies.get_policy(&name).await?;
    Ok(ok(json!({
        "policyName": policy.name,
        "policyArn": state.policies.scope().policy(&policy.name),
        "policyDocument": policy.document,
        "defaultVersionId": policy.default_version.to_string(),
        "creationDate": timestamp(policy.created_at),
        "lastModifiedDate": timestamp(policy.updated_at),
        "generationId": policy.generation_id,
    })))
}

fn policy_list(state: &ApiState, listing: Listing<String>) -> Response {
    let policies: Vec<Value> = listing
        .items
        .iter()
        .map(|name| json!({ "policyName": name, "policyArn": state.policies.scope().policy(name) }))
        .collect();
    ok(json!({ "policies": policies, "nextMarker": listing.next_token }))
}

pub async fn list(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .policies
        .list_policies(
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
            params.bool("isAscendingOrder")?.unwrap_or(true),
        )
        .await?;
    Ok(policy_list(&state, listing))
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.policies.delete_policy(&name).await?;
    Ok(empty())
}

pub async fn create_version(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let set_as_default = Params::parse(query.as_deref())
        .bool("setAsDefault")?
        .unwrap_or(false);
    let document = document(&bytes)?;
    let version = state
        .policies
        .create_policy_version(&name, &document, set_as_default)
        .await?;
    Ok(ok(json!({
        "policyArn": state.policies.scope().policy(&name),
        "policyDocument": version.document,
        "policyVersionId": version.version.to_string(),
        "isDefaultVersion": version.is_default,
    })))
}

pub async fn get_version(
    State(state): State<ApiState>,
    Path((name, version_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let version = state
        .policies
        .get_policy_version(&name, &version_id)
        .await?;
    let policy = state.policies.get_policy(&name).await?;
    Ok(ok(json!({
        "policyArn": state.policies.scope().policy(&name),
        "policyName": name,
        "policyDocument": version.document,
        "policyVersionId": version.version.to_string(),
        "isDefaultVersion": version.is_default,
        "creationDate": timestamp(version.created_at),
        "lastModifiedDate": timestamp(version.created_at),
        "generationId": policy.generation_id,
    })))
}

pub async fn list_versions(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let versions = state.policies.list_policy_versions(&name).await?;
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "versionId": v.version.to_string(),
                "isDefaultVersion": v.is_default,
                "createDate": timestamp(v.created_at),
            })
        })
        .collect();
    Ok(ok(json!({ "policyVersions": versions })))
}

pub async fn set_default_version(
    State(state): State<ApiState>,
    Path((name, version_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .policies
        .set_default_policy_version(&name, &version_id)
        .await?;
    Ok(empty())
}

pub async fn delete_version(
    State(state): State<ApiState>,
    Path((name, version_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .policies
        .delete_policy_version(&name, &version_id)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct TargetRequest {
    target: Option<String>,
}

fn target(bytes: &Bytes) -> Result<String, ApiError> {
    let request: TargetRequest = body(bytes)?;
    request
        .target
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid_request("target is required"))
}

pub async fn attach(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let target = target(&bytes)?;
    state.policies.attach_policy(&name, &target).await?;
    Ok(empty())
}

pub async fn detach(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let target = target(&bytes)?;
    state.policies.detach_policy(&name, &target).await?;
    Ok(empty())
}

pub async fn list_attached(
    State(state): State<ApiState>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .policies
        .list_attached_policies(
            &target,
            params.bool("recursive")?.unwrap_or(false),
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
        )
        .await?;
    Ok(policy_list(&state, listing))
}

pub async fn list_targets(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .policies
        .list_targets_for_policy(
            &name,
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
        )
        .await?;
    Ok(ok(
        json!({ "targets": listing.items, "nextMarker": listing.next_token }),
    ))
}

// ---- legacy principal-policy operations -------------------------------------------------

pub async fn attach_principal(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = header(&headers, "x-amzn-iot-principal", "principal")?;
    state.policies.attach_policy(&name, &principal).await?;
    Ok(empty())
}

pub async fn detach_principal(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = header(&headers, "x-amzn-iot-principal", "principal")?;
    state
        .policies
        .detach_principal_policy(&name, &principal)
        .await?;
    Ok(empty())
}

pub async fn list_principal_policies(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = header(&headers, "x-amzn-iot-principal", "principal")?;
    let params = Params::parse(query.as_deref());
    let listing = state
        .policies
        .list_attached_policies(
            &principal,
            false,
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
        )
        .await?;
    Ok(policy_list(&state, listing))
}

pub async fn list_policy_principals(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = header(&headers, "x-amzn-iot-policy", "policyName")?;
    let params = Params::parse(query.as_deref());
    let listing = state
        .policies
        .list_targets_for_policy(
            &name,
            params.string("marker").as_deref(),
            params.i64("pageSize")?,
        )
        .await?;
    Ok(ok(
        json!({ "principals": listing.items, "nextMarker": listing.next_token }),
    ))
}
