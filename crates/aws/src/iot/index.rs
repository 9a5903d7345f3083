//! Fleet indexing over REST/JSON: Get/UpdateIndexingConfiguration, SearchIndex,
//! GetStatistics, GetCardinality, and the dynamic thing group operations
//! (Create/Update/DeleteDynamicThingGroup).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_core::indexing::{IndexingConfiguration, ThingGroupIndexingConfiguration};
use drover_core::query::IndexedThing;
use drover_services::dynamic_groups::{DynamicGroupSpec, DynamicGroupUpdate};
use drover_services::index::IndexQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::groups::{WireThingGroupProperties, group_spec, group_update};
use super::thing_types::WireTag;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateIndexingConfigurationRequest {
    thing_indexing_configuration: Option<drover_core::indexing::ThingIndexingConfiguration>,
    thing_group_indexing_configuration: Option<ThingGroupIndexingConfiguration>,
}

pub async fn get_configuration(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let configuration = state.index.configuration().await?;
    Ok(ok(
        serde_json::to_value(configuration).map_err(|_| ApiError::internal())?
    ))
}

/// UpdateIndexingConfiguration: a member left out keeps its current value, as on AWS.
pub async fn update_configuration(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateIndexingConfigurationRequest = body(&bytes)?;
    let current = state.index.configuration().await?;
    let next = IndexingConfiguration {
        thing_indexing_configuration: request
            .thing_indexing_configuration
            .unwrap_or(current.thing_indexing_configuration),
        thing_group_indexing_configuration: request
            .thing_group_indexing_configuration
            .unwrap_or(current.thing_group_indexing_configuration),
    };
    state.index.update_configuration(next).await?;
    Ok(empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    index_name: Option<String>,
    query_string: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    query_version: Option<String>,
    aggregation_field: Option<String>,
}

impl SearchRequest {
    fn query(&self) -> Result<IndexQuery, ApiError> {
        let query_string = self
            .query_string
            .clone()
            .ok_or_else(|| ApiError::invalid_request("queryString is required"))?;
        Ok(IndexQuery {
            index_name: self.index_name.clone(),
            query_string,
            query_version: self.query_version.clone(),
        })
    }
}

fn document(thing: &IndexedThing, connectivity_indexed: bool) -> Value {
    let connectivity = connectivity_indexed.then(|| match &thing.connectivity {
        Some(c) => json!({
            "connected": c.connected,
            "timestamp": c.timestamp,
            "disconnectReason": c.disconnect_reason,
        }),
        None => json!({ "connected": false }),
    });
    json!({
        "thingName": thing.name,
        "thingId": thing.id,
        "thingTypeName": thing.type_name,
        "thingGroupNames": thing.group_names,
        "attributes": thing.attributes,
        "connectivity": connectivity,
    })
}

pub async fn search(State(state): State<ApiState>, bytes: Bytes) -> Result<Response, ApiError> {
    let request: SearchRequest = body(&bytes)?;
    let page = state
        .index
        .search(
            &request.query()?,
            request.next_token.as_deref(),
            request.max_results,
        )
        .await?;
    let things: Vec<Value> = page
        .things
        .iter()
        .map(|t| document(t, page.connectivity_indexed))
        .collect();
    Ok(ok(
        json!({ "things": things, "nextToken": page.next_token }),
    ))
}

pub async fn statistics(State(state): State<ApiState>, bytes: Bytes) -> Result<Response, ApiError> {
    let request: SearchRequest = body(&bytes)?;
    let stats = state
        .index
        .statistics(&request.query()?, request.aggregation_field.as_deref())
        .await?;
    Ok(ok(json!({
        "statistics": {
            "count": stats.count,
            "average": stats.average,
            "sum": stats.sum,
            "minimum": stats.minimum,
            "maximum": stats.maximum,
            "sumOfSquares": stats.sum_of_squares,
            "variance": stats.variance,
            "stdDeviation": stats.std_deviation,
        }
    })))
}

pub async fn cardinality(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: SearchRequest = body(&bytes)?;
    let cardinality = state
        .index
        .cardinality(&request.query()?, request.aggregation_field.as_deref())
        .await?;
    Ok(ok(json!({ "cardinality": cardinality })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateDynamicThingGroupRequest {
    thing_group_properties: Option<WireThingGroupProperties>,
    index_name: Option<String>,
    query_string: Option<String>,
    query_version: Option<String>,
    tags: Option<Vec<WireTag>>,
}

pub async fn create_dynamic_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateDynamicThingGroupRequest = body(&bytes)?;
    let query_string = request
        .query_string
        .ok_or_else(|| ApiError::invalid_request("queryString is required"))?;
    let group = state
        .registry
        .create_dynamic_thing_group(DynamicGroupSpec {
            group: group_spec(name, None, request.thing_group_properties, request.tags),
            query_string,
            index_name: request.index_name,
            query_version: request.query_version,
        })
        .await?;
    let dynamic = group.dynamic.as_ref();
    Ok(ok(json!({
        "thingGroupName": group.name,
        "thingGroupArn": state.registry.scope().thing_group(&group.name),
        "thingGroupId": group.id,
        "indexName": dynamic.map(|d| &d.index_name),
        "queryString": dynamic.map(|d| &d.query_string),
        "queryVersion": dynamic.map(|d| &d.query_version),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateDynamicThingGroupRequest {
    thing_group_properties: Option<WireThingGroupProperties>,
    expected_version: Option<i64>,
    index_name: Option<String>,
    query_string: Option<String>,
    query_version: Option<String>,
}

pub async fn update_dynamic_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateDynamicThingGroupRequest = body(&bytes)?;
    let properties = group_update(request.thing_group_properties, request.expected_version)?;
    let version = state
        .registry
        .update_dynamic_thing_group(
            &name,
            DynamicGroupUpdate {
                properties,
                query_string: request.query_string,
                index_name: request.index_name,
                query_version: request.query_version,
            },
        )
        .await?;
    Ok(ok(json!({ "version": version })))
}

pub async fn delete_dynamic_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let expected_version = Params::parse(query.as_deref()).i64("expectedVersion")?;
    state
        .registry
        .delete_dynamic_thing_group(&name, expected_version)
        .await?;
    Ok(empty())
}
