//! CreateThingType, DescribeThingType, ListThingTypes, DeprecateThingType, DeleteThingType.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_core::arn::ArnScope;
use drover_core::registry::{Tag, ThingType, ThingTypeSpec};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok, timestamp};

/// AWS's `Tag` on the wire (capitalized members).
#[derive(Debug, Deserialize)]
pub struct WireTag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

pub fn tags(wire: Option<Vec<WireTag>>) -> Vec<Tag> {
    wire.unwrap_or_default()
        .into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireThingTypeProperties {
    thing_type_description: Option<String>,
    searchable_attributes: Option<Vec<String>>,
    mqtt5_configuration: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingTypeRequest {
    thing_type_properties: Option<WireThingTypeProperties>,
    tags: Option<Vec<WireTag>>,
}

pub async fn create(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateThingTypeRequest = body(&bytes)?;
    let properties = request.thing_type_properties.unwrap_or_default();
    if let Some(config) = &properties.mqtt5_configuration
        && !config.is_object()
    {
        return Err(ApiError::invalid_request(
            "mqtt5Configuration must be an object",
        ));
    }
    let thing_type = state
        .registry
        .create_thing_type(ThingTypeSpec {
            name,
            description: properties.thing_type_description,
            searchable_attributes: properties.searchable_attributes.unwrap_or_default(),
            mqtt5_configuration: properties.mqtt5_configuration,
            tags: tags(request.tags),
        })
        .await?;
    Ok(ok(json!({
        "thingTypeName": thing_type.name,
        "thingTypeArn": state.registry.scope().thing_type(&thing_type.name),
        "thingTypeId": thing_type.id,
    })))
}

fn definition(scope: &ArnScope, t: &ThingType) -> Value {
    json!({
        "thingTypeName": t.name,
        "thingTypeArn": scope.thing_type(&t.name),
        "thingTypeProperties": {
            "thingTypeDescription": t.description,
            "searchableAttributes": t.searchable_attributes,
            "mqtt5Configuration": t.mqtt5_configuration,
        },
        "thingTypeMetadata": {
            "deprecated": t.deprecated,
            "deprecationDate": t.deprecation_date.map(timestamp),
            "creationDate": timestamp(t.created_at),
        },
    })
}

pub async fn describe(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let thing_type = state.registry.describe_thing_type(&name).await?;
    let mut value = definition(state.registry.scope(), &thing_type);
    value["thingTypeId"] = json!(thing_type.id);
    Ok(ok(value))
}

pub async fn list(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .registry
        .list_thing_types(
            params.string("thingTypeName").as_deref(),
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    let scope = state.registry.scope();
    let types: Vec<Value> = listing.items.iter().map(|t| definition(scope, t)).collect();
    Ok(ok(
        json!({ "thingTypes": types, "nextToken": listing.next_token }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeprecateRequest {
    undo_deprecate: Option<bool>,
}

pub async fn deprecate(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: DeprecateRequest = body(&bytes)?;
    state
        .registry
        .deprecate_thing_type(&name, request.undo_deprecate.unwrap_or(false))
        .await?;
    Ok(empty())
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.registry.delete_thing_type(&name).await?;
    Ok(empty())
}
