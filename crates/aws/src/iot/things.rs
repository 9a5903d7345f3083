//! CreateThing, DescribeThing, UpdateThing, DeleteThing, ListThings.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_core::registry::{AttributePayload, Attributes, Thing, ThingSpec, ThingUpdate};
use drover_services::registry::ListThingsQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok};

/// AWS's `AttributePayload` on the wire.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAttributePayload {
    pub attributes: Option<Attributes>,
    pub merge: Option<bool>,
}

impl From<WireAttributePayload> for AttributePayload {
    fn from(w: WireAttributePayload) -> Self {
        AttributePayload {
            attributes: w.attributes,
            merge: w.merge.unwrap_or(false),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingRequest {
    thing_type_name: Option<String>,
    attribute_payload: Option<WireAttributePayload>,
    billing_group_name: Option<String>,
}

pub async fn create(
    State(state): State<ApiState>,
    Path(thing_name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateThingRequest = body(&bytes)?;
    if let Some(billing_group) = request.billing_group_name {
        // drover has no billing groups, so any named one does not exist.
        return Err(ApiError::not_found(format!(
            "Billing group {billing_group} cannot be found."
        )));
    }
    let spec = ThingSpec {
        name: thing_name,
        type_name: request.thing_type_name,
        attributes: request
            .attribute_payload
            .and_then(|p| p.attributes)
            .unwrap_or_default(),
    };
    let thing = state.registry.create_thing(spec).await?;
    Ok(ok(json!({
        "thingName": thing.name,
        "thingArn": state.registry.scope().thing(&thing.name),
        "thingId": thing.id,
    })))
}

pub async fn describe(
    State(state): State<ApiState>,
    Path(thing_name): Path<String>,
) -> Result<Response, ApiError> {
    let thing = state.registry.describe_thing(&thing_name).await?;
    Ok(ok(json!({
        "defaultClientId": thing.name,
        "thingName": thing.name,
        "thingId": thing.id,
        "thingArn": state.registry.scope().thing(&thing.name),
        "thingTypeName": thing.type_name,
        "attributes": thing.attributes,
        "version": thing.version,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateThingRequest {
    thing_type_name: Option<String>,
    attribute_payload: Option<WireAttributePayload>,
    expected_version: Option<i64>,
    remove_thing_type: Option<bool>,
}

pub async fn update(
    State(state): State<ApiState>,
    Path(thing_name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateThingRequest = body(&bytes)?;
    let update = ThingUpdate {
        type_name: request.thing_type_name,
        remove_thing_type: request.remove_thing_type.unwrap_or(false),
        attribute_payload: request.attribute_payload.map(Into::into),
        expected_version: request.expected_version,
    };
    state.registry.update_thing(&thing_name, update).await?;
    Ok(empty())
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(thing_name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let expected_version = Params::parse(query.as_deref()).i64("expectedVersion")?;
    state
        .registry
        .delete_thing(&thing_name, expected_version)
        .await?;
    Ok(empty())
}

pub async fn list(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .registry
        .list_things(ListThingsQuery {
            attribute_name: params.string("attributeName"),
            attribute_value: params.string("attributeValue"),
            use_prefix_attribute_value: params.bool("usePrefixAttributeValue")?.unwrap_or(false),
            thing_type_name: params.string("thingTypeName"),
            next_token: params.string("nextToken"),
            max_results: params.i64("maxResults")?,
        })
        .await?;
    let scope = state.registry.scope();
    let things: Vec<Value> = listing
        .items
        .iter()
        .map(|t: &Thing| {
            json!({
                "thingName": t.name,
                "thingTypeName": t.type_name,
                "thingArn": scope.thing(&t.name),
                "attributes": t.attributes,
                "version": t.version,
            })
        })
        .collect();
    Ok(ok(
        json!({ "things": things, "nextToken": listing.next_token }),
    ))
}
