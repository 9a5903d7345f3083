//! CreateTopicRule, GetTopicRule, ListTopicRules, ReplaceTopicRule, DeleteTopicRule,
//! EnableTopicRule and DisableTopicRule in botocore's shapes: the request body of create and
//! replace is the `topicRulePayload` itself.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use drover_services::TopicRulePayload;
use drover_store::TopicRuleRecord;
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
