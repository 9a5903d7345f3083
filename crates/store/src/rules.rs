//! What the rules engine persists: topic rules and their http destinations. A separate trait from the registry's so the
//! rules' records stay in one place; every [`crate::Store`] implements it.
//!
//! The store keeps a rule's definition as the services hand it over (the SQL text, and the
//! actions as their AWS JSON); parsing and validation happen before anything is written.

use async_trait::async_trait;
use drover_core::time::Timestamp;

use crate::{CasOutcome, Page, PageRequest, StoreResult};

/// A topic rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRuleRecord {
    pub name: String,
    pub sql: String,
    /// The FROM clause's topic filter, kept apart so ListTopicRules can filter by it.
    pub topic_pattern: String,
    pub description: Option<String>,
    pub aws_iot_sql_version: String,
    pub disabled: bool,
    /// The `actions` list as AWS JSON text.
    pub actions: String,
    /// The `errorAction` as AWS JSON text.
    pub error_action: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// 1 at creation, +1 on every change; compare-and-swap key.
    pub version: i64,
}

/// A topic rule destination (http only: drover has no VPCs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRuleDestinationRecord {
    pub arn: String,
    /// The URL confirmations go to; http actions whose URL starts with it may deliver while
    /// the destination is `ENABLED`. Unique.
    pub confirmation_url: String,
    /// `ENABLED`, `IN_PROGRESS`, `DISABLED` or `ERROR`.
    pub status: String,
    pub status_reason: Option<String>,
    /// The token of the confirmation in flight (`IN_PROGRESS` only); unique when present.
    pub confirmation_token: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// 1 at creation, +1 on every change; compare-and-swap key.
    pub version: i64,
}

/// ListTopicRules filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicRuleFilter {
    /// Only rules whose FROM topic filter is exactly this.
    pub topic: Option<String>,
    pub disabled: Option<bool>,
}

#[async_trait]
pub trait RuleStore: Send + Sync + 'static {
    /// Fails with [`crate::StoreError::AlreadyExists`] when the name is taken.
    async fn insert_topic_rule(&self, rule: &TopicRuleRecord) -> StoreResult<()>;
    async fn get_topic_rule(&self, name: &str) -> StoreResult<Option<TopicRuleRecord>>;
    /// Replaces the rule if its stored version is still `expected_version`.
    async fn replace_topic_rule(
        &self,
        rule: &TopicRuleRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome>;
    /// `false` when there was no such rule.
    async fn delete_topic_rule(&self, name: &str) -> StoreResult<bool>;
    /// A page of rules in name order.
    async fn list_topic_rules(
        &self,
        filter: &TopicRuleFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<TopicRuleRecord>>;

    /// Fails with [`crate::StoreError::AlreadyExists`] when the ARN or the confirmation URL
    /// is taken.
    async fn insert_topic_rule_destination(
        &self,
        destination: &TopicRuleDestinationRecord,
    ) -> StoreResult<()>;
    async fn get_topic_rule_destination(
        &self,
        arn: &str,
    ) -> StoreResult<Option<TopicRuleDestinationRecord>>;
    /// The destination whose pending confirmation carries `token`.
    async fn find_topic_rule_destination_by_token(
        &self,
        token: &str,
    ) -> StoreResult<Option<TopicRuleDestinationRecord>>;
    /// Replaces the destination if its stored version is still `expected_version`.
    async fn replace_topic_rule_destination(
        &self,
        destination: &TopicRuleDestinationRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome>;
    /// `false` when there was no such destination.
    async fn delete_topic_rule_destination(&self, arn: &str) -> StoreResult<bool>;
    /// A page of destinations in ARN order.
    async fn list_topic_rule_destinations(
        &self,
        page: &PageRequest,
    ) -> StoreResult<Page<TopicRuleDestinationRecord>>;
}
