//! Thing groups and membership: Create/Describe/Update/Delete/ListThingGroups,
//! AddThingToThingGroup, RemoveThingFromThingGroup, UpdateThingGroupsForThing,
//! ListThingsInThingGroup, ListThingGroupsForThing.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_core::registry::{ThingGroupSpec, ThingGroupUpdate};
use drover_services::registry::{ListThingGroupsQuery, NameOrArn};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::thing_types::{WireTag, tags};
use super::things::WireAttributePayload;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok, timestamp};

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireThingGroupProperties {
    pub(super) thing_group_description: Option<String>,
    pub(super) attribute_payload: Option<WireAttributePayload>,
}

/// The group CreateThingGroup and CreateDynamicThingGroup ask for (properties are optional).
pub(super) fn group_spec(
    name: String,
    parent: Option<String>,
    properties: Option<WireThingGroupProperties>,
    wire_tags: Option<Vec<WireTag>>,
) -> ThingGroupSpec {
    let properties = properties.unwrap_or_default();
    ThingGroupSpec {
        name,
        parent,
        description: properties.thing_group_description,
        attributes: properties
            .attribute_payload
            .and_then(|p| p.attributes)
            .unwrap_or_default(),
        tags: tags(wire_tags),
        dynamic: None,
    }
}

/// The update UpdateThingGroup and UpdateDynamicThingGroup ask for; both require the
/// properties.
pub(super) fn group_update(
    properties: Option<WireThingGroupProperties>,
    expected_version: Option<i64>,
) -> Result<ThingGroupUpdate, ApiError> {
    let properties =
        properties.ok_or_else(|| ApiError::invalid_request("thingGroupProperties is required"))?;
    Ok(ThingGroupUpdate {
        description: properties.thing_group_description,
        attribute_payload: properties.attribute_payload.map(Into::into),
        expected_version,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingGroupRequest {
    parent_group_name: Option<String>,
    thing_group_properties: Option<WireThingGroupProperties>,
    tags: Option<Vec<WireTag>>,
}

pub async fn create(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateThingGroupRequest = body(&bytes)?;
    let spec = group_spec(
        name,
        request.parent_group_name,
        request.thing_group_properties,
        request.tags,
    );
    let group = state.registry.create_thing_group(spec).await?;
    Ok(ok(json!({
        "thingGroupName": group.name,
        "thingGroupArn": state.registry.scope().thing_group(&group.name),
        "thingGroupId": group.id,
    })))
}

fn name_and_arn(state: &ApiState, name: &str) -> Value {
    json!({ "groupName": name, "groupArn": state.registry.scope().thing_group(name) })
}

pub async fn describe(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let described = state.registry.describe_thing_group(&name).await?;
    let group = &described.group;
    let ancestors: Vec<Value> = described
        .ancestors
        .iter()
        .map(|a| name_and_arn(&state, a))
        .collect();
    let dynamic = group.dynamic.as_ref();
    Ok(ok(json!({
        "thingGroupName": group.name,
        "thingGroupId": group.id,
        "thingGroupArn": state.registry.scope().thing_group(&group.name),
        "version": group.version,
        "thingGroupProperties": {
            "thingGroupDescription": group.description,
            "attributePayload": { "attributes": group.attributes },
        },
        "thingGroupMetadata": {
            "parentGroupName": group.parent,
            "rootToParentThingGroups": ancestors,
            "creationDate": timestamp(group.created_at),
        },
        "indexName": dynamic.map(|d| &d.index_name),
        "queryString": dynamic.map(|d| &d.query_string),
        "queryVersion": dynamic.map(|d| &d.query_version),
        "status": dynamic.map(|d| &d.status),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateThingGroupRequest {
    thing_group_properties: Option<WireThingGroupProperties>,
    expected_version: Option<i64>,
}

pub async fn update(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateThingGroupRequest = body(&bytes)?;
    let update = group_update(request.thing_group_properties, request.expected_version)?;
    let version = state.registry.update_thing_group(&name, update).await?;
    Ok(ok(json!({ "version": version })))
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let expected_version = Params::parse(query.as_deref()).i64("expectedVersion")?;
    state
        .registry
        .delete_thing_group(&name, expected_version)
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
        .list_thing_groups(ListThingGroupsQuery {
            parent_group: params.string("parentGroup"),
            name_prefix_filter: params.string("namePrefixFilter"),
            recursive: params.bool("recursive")?,
            next_token: params.string("nextToken"),
            max_results: params.i64("maxResults")?,
        })
        .await?;
    let groups: Vec<Value> = listing
        .items
        .iter()
        .map(|g| name_and_arn(&state, &g.name))
        .collect();
    Ok(ok(
        json!({ "thingGroups": groups, "nextToken": listing.next_token }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipRequest {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
    override_dynamic_groups: Option<bool>,
}

impl MembershipRequest {
    fn refs(self) -> (NameOrArn, NameOrArn, bool) {
        (
            NameOrArn {
                name: self.thing_group_name,
                arn: self.thing_group_arn,
            },
            NameOrArn {
                name: self.thing_name,
                arn: self.thing_arn,
            },
            self.override_dynamic_groups.unwrap_or(false),
        )
    }
}

pub async fn add_thing(State(state): State<ApiState>, bytes: Bytes) -> Result<Response, ApiError> {
    let (group, thing, override_dynamic) = body::<MembershipRequest>(&bytes)?.refs();
    state
        .registry
        .add_thing_to_thing_group(group, thing, override_dynamic)
        .await?;
    Ok(empty())
}

pub async fn remove_thing(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (group, thing, _) = body::<MembershipRequest>(&bytes)?.refs();
    state
        .registry
        .remove_thing_from_thing_group(group, thing)
        .await?;
    Ok(empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateGroupsForThingRequest {
    thing_name: Option<String>,
    thing_groups_to_add: Option<Vec<String>>,
    thing_groups_to_remove: Option<Vec<String>>,
    override_dynamic_groups: Option<bool>,
}

pub async fn update_groups_for_thing(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateGroupsForThingRequest = body(&bytes)?;
    let thing_name = request
        .thing_name
        .ok_or_else(|| ApiError::invalid_request("thingName is required"))?;
    state
        .registry
        .update_thing_groups_for_thing(
            &thing_name,
            &request.thing_groups_to_add.unwrap_or_default(),
            &request.thing_groups_to_remove.unwrap_or_default(),
            request.override_dynamic_groups.unwrap_or(false),
        )
        .await?;
    Ok(empty())
}

pub async fn list_things(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .registry
        .list_things_in_thing_group(
            &name,
            params.bool("recursive")?.unwrap_or(false),
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    Ok(ok(
        json!({ "things": listing.items, "nextToken": listing.next_token }),
    ))
}

pub async fn list_for_thing(
    State(state): State<ApiState>,
    Path(thing_name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .registry
        .list_thing_groups_for_thing(
            &thing_name,
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    let groups: Vec<Value> = listing
        .items
        .iter()
        .map(|g| name_and_arn(&state, g))
        .collect();
    Ok(ok(
        json!({ "thingGroups": groups, "nextToken": listing.next_token }),
    ))
}
