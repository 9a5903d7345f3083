//! CreateTopicRule, GetTopicRule, ListTopicRules, ReplaceTopicRule, DeleteTopicRule,
//! EnableTopicRule and DisableTopicRule in botocore's shapes: the request body of create and
//! replace is the `topicRulePayload` itself. Also the topic rule destination operations
//! (Create/Get/List/Update/Delete/ConfirmTopicRuleDestination); ConfirmTopicRuleDestination
//! is the `enableUrl` of a confirmation, which `auth.rs` lets through unsigned.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_services::TopicRulePayload;
use drover_store::{TopicRuleDestinationRecord, TopicRuleRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use crate::error::ApiError;
use crate::wire::{Params, body, empty, ok, timestamp};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadWire {
    sql: Option<String>,
    description: Option<String>,
    actions: Option<Vec<Value>>,
    rule_disabled: Option<bool>,
    aws_iot_sql_version: Option<String>,
    error_action: Option<Value>,
}

fn payload(bytes: &Bytes) -> Result<TopicRulePayload, ApiError> {
    let wire: PayloadWire = body(bytes)?;
    let sql = wire
        .sql
        .ok_or_else(|| ApiError::invalid_request("topicRulePayload.sql is required"))?;
    let actions = wire
        .actions
        .ok_or_else(|| ApiError::invalid_request("topicRulePayload.actions is required"))?;
    Ok(TopicRulePayload {
        sql,
        description: wire.description,
        actions,
        error_action: wire.error_action.filter(|v| !v.is_null()),
        rule_disabled: wire.rule_disabled,
        aws_iot_sql_version: wire.aws_iot_sql_version,
    })
}

fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub async fn create(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let payload = payload(&bytes)?;
    state.rules.create_topic_rule(&name, &payload).await?;
    Ok(empty())
}

pub async fn get(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let rule = state.rules.get_topic_rule(&name).await?;
    Ok(ok(json!({
        "ruleArn": state.rules.rule_arn(&rule.name),
        "rule": {
            "ruleName": rule.name,
            "sql": rule.sql,
            "description": rule.description,
            "createdAt": timestamp(rule.created_at),
            "actions": json_text(&rule.actions),
            "ruleDisabled": rule.disabled,
            "awsIotSqlVersion": rule.aws_iot_sql_version,
            "errorAction": rule.error_action.as_deref().map(json_text),
        }
    })))
}

fn list_item(state: &ApiState, rule: &TopicRuleRecord) -> Value {
    json!({
        "ruleArn": state.rules.rule_arn(&rule.name),
        "ruleName": rule.name,
        "topicPattern": rule.topic_pattern,
        "createdAt": timestamp(rule.created_at),
        "ruleDisabled": rule.disabled,
    })
}

pub async fn list(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .rules
        .list_topic_rules(
            params.string("topic").as_deref(),
            params.bool("ruleDisabled")?,
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    let rules: Vec<Value> = listing.items.iter().map(|r| list_item(&state, r)).collect();
    Ok(ok(
        json!({ "rules": rules, "nextToken": listing.next_token }),
    ))
}

pub async fn replace(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let payload = payload(&bytes)?;
    state.rules.replace_topic_rule(&name, &payload).await?;
    Ok(empty())
}

pub async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.rules.delete_topic_rule(&name).await?;
    Ok(empty())
}

pub async fn enable(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.rules.set_enabled(&name, true).await?;
    Ok(empty())
}

pub async fn disable(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.rules.set_enabled(&name, false).await?;
    Ok(empty())
}

// -- topic rule destinations ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateDestinationWire {
    destination_configuration: Option<DestinationConfigurationWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DestinationConfigurationWire {
    http_url_configuration: Option<HttpUrlConfigurationWire>,
    vpc_configuration: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpUrlConfigurationWire {
    confirmation_url: Option<String>,
}

/// `TopicRuleDestination`; the summary has the same members with `httpUrlSummary`.
fn destination_json(d: &TopicRuleDestinationRecord, http_member: &str) -> Value {
    let mut value = json!({
        "arn": d.arn,
        "status": d.status,
        "createdAt": timestamp(d.created_at),
        "lastUpdatedAt": timestamp(d.updated_at),
        "statusReason": d.status_reason,
    });
    value[http_member] = json!({ "confirmationUrl": d.confirmation_url });
    value
}

pub async fn create_destination(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let wire: CreateDestinationWire = body(&bytes)?;
    let configuration = wire
        .destination_configuration
        .ok_or_else(|| ApiError::invalid_request("destinationConfiguration is required"))?;
    if configuration
        .vpc_configuration
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::invalid_request(
            "drover has no VPCs: only httpUrlConfiguration destinations can be created",
        ));
    }
    let url = configuration
        .http_url_configuration
        .and_then(|h| h.confirmation_url)
        .ok_or_else(|| {
            ApiError::invalid_request(
                "destinationConfiguration.httpUrlConfiguration.confirmationUrl is required",
            )
        })?;
    let created = state.rules.create_topic_rule_destination(&url).await?;
    Ok(ok(
        json!({ "topicRuleDestination": destination_json(&created, "httpUrlProperties") }),
    ))
}

pub async fn get_destination(
    State(state): State<ApiState>,
    Path(arn): Path<String>,
) -> Result<Response, ApiError> {
    let d = state.rules.get_topic_rule_destination(&arn).await?;
    Ok(ok(
        json!({ "topicRuleDestination": destination_json(&d, "httpUrlProperties") }),
    ))
}

pub async fn list_destinations(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let listing = state
        .rules
        .list_topic_rule_destinations(
            params.string("nextToken").as_deref(),
            params.i64("maxResults")?,
        )
        .await?;
    let summaries: Vec<Value> = listing
        .items
        .iter()
        .map(|d| destination_json(d, "httpUrlSummary"))
        .collect();
    Ok(ok(
        json!({ "destinationSummaries": summaries, "nextToken": listing.next_token }),
    ))
}

#[derive(Deserialize)]
struct UpdateDestinationWire {
    arn: Option<String>,
    status: Option<String>,
}

pub async fn update_destination(
    State(state): State<ApiState>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let wire: UpdateDestinationWire = body(&bytes)?;
    let arn = wire
        .arn
        .ok_or_else(|| ApiError::invalid_request("arn is required"))?;
    let status = wire
        .status
        .ok_or_else(|| ApiError::invalid_request("status is required"))?;
    state
        .rules
        .update_topic_rule_destination(&arn, &status)
        .await?;
    Ok(empty())
}

pub async fn delete_destination(
    State(state): State<ApiState>,
    Path(arn): Path<String>,
) -> Result<Response, ApiError> {
    state.rules.delete_topic_rule_destination(&arn).await?;
    Ok(empty())
}

pub async fn confirm_destination(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    state.rules.confirm_topic_rule_destination(&token).await?;
    Ok(empty())
}
