//! AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals(V2),
//! ListPrincipalThings(V2). The principal travels in the `x-amzn-principal` header.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use drover_store::ThingPrincipal;
use serde_json::{Value, json};

use super::ApiState;
use crate::error::ApiError;
use crate::wire::{Params, empty, ok};

/// A required header, as text.
pub(super) fn header(headers: &HeaderMap, name: &str, member: &str) -> Result<String, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid_request(format!("{member} is required (header {name})")))
}

fn principal_type(p: &ThingPrincipal) -> &'static str {
    if p.exclusive {
        "EXCLUSIVE_THING"
    } else {
        "NON_EXCLUSIVE_THING"
    }
}

pub async fn attach(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = header(&headers, "x-amzn-principal", "principal")?;
    let kind = Params::parse(query.as_deref()).string("thingPrincipalType");
    state
        .certificates
        .attach_thing_principal(&thing, &principal, kind.as_deref())
        .await?;
    Ok(empty())
}

pub async fn detach(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = header(&headers, "x-amzn-principal", "principal")?;
    state
        .certificates
        .detach_thing_principal(&thing, &principal)
        .await?;
    Ok(empty())
}

async fn thing_principals(
    state: &ApiState,
    thing: &str,
    query: Option<&str>,
) -> Result<(Vec<ThingPrincipal>, Option<String>), ApiError> {
    let params = Params::parse(query);
    let listing = state
        .certificates
        .list_thing_principals(
            thing,
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    let filter = params.string("thingPrincipalType");
    let items = listing
        .items
        .into_iter()
        .filter(|p| filter.as_deref().is_none_or(|f| f == principal_type(p)))
        .collect();
    Ok((items, listing.next_token))
}

pub async fn list_for_thing(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (items, next_token) = thing_principals(&state, &thing, query.as_deref()).await?;
    let scope = state.certificates.scope();
    let principals: Vec<String> = items
        .iter()
        .map(|p| scope.certificate(&p.certificate_id))
        .collect();
    Ok(ok(
        json!({ "principals": principals, "nextToken": next_token }),
    ))
}

pub async fn list_for_thing_v2(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (items, next_token) = thing_principals(&state, &thing, query.as_deref()).await?;
    let scope = state.certificates.scope();
    let objects: Vec<Value> = items
        .iter()
        .map(|p| {
            json!({
                "principal": scope.certificate(&p.certificate_id),
                "thingPrincipalType": principal_type(p),
            })
        })
        .collect();
    Ok(ok(
        json!({ "thingPrincipalObjects": objects, "nextToken": next_token }),
    ))
}

async fn principal_things(
    state: &ApiState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Vec<ThingPrincipal>, Option<String>), ApiError> {
    let principal = header(headers, "x-amzn-principal", "principal")?;
    let params = Params::parse(query);
    let listing = state
        .certificates
        .list_principal_things(
            &principal,
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    let filter = params.string("thingPrincipalType");
    let items = listing
        .items
        .into_iter()
        .filter(|p| filter.as_deref().is_none_or(|f| f == principal_type(p)))
        .collect();
    Ok((items, listing.next_token))
}

pub async fn list_things(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (items, next_token) = principal_things(&state, &headers, query.as_deref()).await?;
    let things: Vec<&str> = items.iter().map(|p| p.thing_name.as_str()).collect();
    Ok(ok(json!({ "things": things, "nextToken": next_token })))
}

pub async fn list_things_v2(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (items, next_token) = principal_things(&state, &headers, query.as_deref()).await?;
    let objects: Vec<Value> = items
        .iter()
        .map(|p| json!({ "thingName": p.thing_name, "thingPrincipalType": principal_type(p) }))
        .collect();
    Ok(ok(
        json!({ "principalThingObjects": objects, "nextToken": next_token }),
    ))
}
