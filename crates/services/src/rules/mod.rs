//! Topic rules: the CRUD operations (`CreateTopicRule` … `DisableTopicRule`) and the engine
//! that runs enabled rules over every message the broker routes (`engine.rs`), with their
//! actions on a bounded pool of tasks (`actions.rs`).
//!
//! A rule is checked completely before it is stored: its name, its SQL (a parse error is
//! `SqlParse`, with line and column), its SQL version and every action and substitution
//! template. Each stored change is handed to the engine at once; the engine also re-reads
//! the store periodically, so rules changed through another node reach this one.
//!
//! http actions deliver only through a confirmed, enabled topic rule destination
//! (`destinations.rs`), as on AWS.

mod actions;
mod destinations;
mod engine;

use std::sync::Arc;

use drover_core::arn::ArnScope;
use drover_core::rules::actions::{
    check_rule_name, check_rules_page_size, parse_action, parse_actions,
};
use drover_core::rules::{self as sql, DEFAULT_SQL_VERSION, SQL_VERSIONS};
use drover_store::{
    CasOutcome, PageRequest, SharedStore, StoreError, TopicRuleFilter, TopicRuleRecord,
};
use serde_json::Value;

pub use destinations::{DISABLED, ENABLE_URL_PATH, ENABLED, ERROR, IN_PROGRESS};
pub use engine::{EngineConfig, RulesEngine};

use crate::registry::Listing;
use crate::{Clock, ServiceError, ServiceResult, pagination};

/// `topicRulePayload` as CreateTopicRule and ReplaceTopicRule carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicRulePayload {
    pub sql: String,
    pub description: Option<String>,
    /// The `actions` list, as AWS JSON.
    pub actions: Vec<Value>,
    pub error_action: Option<Value>,
    pub rule_disabled: Option<bool>,
    pub aws_iot_sql_version: Option<String>,
}

/// The topic rule service.
#[derive(Clone)]
pub struct TopicRules {
    store: SharedStore,
    scope: ArnScope,
    clock: Arc<dyn Clock>,
    engine: Option<RulesEngine>,
    confirmer: destinations::Confirmer,
}

fn rule_not_found(name: &str) -> ServiceError {
    // AWS answers a rule that does not exist with UnauthorizedException: the operation's
    // error list has no not-found error, and SDK users catch this one.
    ServiceError::Unauthorized(format!("Rule {name} does not exist"))
}

impl TopicRules {
    /// `engine` runs the rules; `None` keeps definitions only (tests, tools).
    /// `api_base` (`https://host:port`) is where drover's AWS API serves
    /// `/confirmdestination/{token}`: the base of the `enableUrl` in destination confirmations.
    pub fn new(
        store: SharedStore,
        scope: ArnScope,
        clock: Arc<dyn Clock>,
        engine: Option<RulesEngine>,
        api_base: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            store,
            scope,
            clock,
            engine,
            confirmer: destinations::Confirmer::new(api_base)?,
        })
    }

    pub fn rule_arn(&self, name: &str) -> String {
        self.scope.rule(name)
    }

    /// Checks a payload and builds the record version `version` of rule `name` would be.
    fn record(
        &self,
        name: &str,
        payload: &TopicRulePayload,
        created_at: Option<drover_core::time::Timestamp>,
        version: i64,
    ) -> ServiceResult<TopicRuleRecord> {
        check_rule_name(name)?;
        let statement =
            sql::parse(&payload.sql).map_err(|e| ServiceError::SqlParse(e.to_string()))?;
        let sql_version = payload
            .aws_iot_sql_version
            .clone()
            .unwrap_or_else(|| DEFAULT_SQL_VERSION.to_string());
        if !SQL_VERSIONS.contains(&sql_version.as_str()) {
            return Err(ServiceError::InvalidRequest(format!(
                "Unsupported awsIotSqlVersion {sql_version}; use one of {}",
                SQL_VERSIONS.join(", ")
            )));
        }
        if let Some(d) = &payload.description
            && d.chars().count() > 2028
        {
            return Err(ServiceError::InvalidRequest(
                "The description is longer than 2028 characters".into(),
            ));
        }
        parse_actions(&payload.actions)?;
        if let Some(error_action) = &payload.error_action {
            parse_action(error_action)?;
        }
        let now = self.clock.now();
        Ok(TopicRuleRecord {
            name: name.to_string(),
            sql: payload.sql.clone(),
            topic_pattern: statement.from,
            description: payload.description.clone(),
            aws_iot_sql_version: sql_version,
            disabled: payload.rule_disabled.unwrap_or(false),
            actions: Value::Array(payload.actions.clone()).to_string(),
            error_action: payload.error_action.as_ref().map(Value::to_string),
            created_at: created_at.unwrap_or(now),
            updated_at: now,
            version,
        })
    }

    async fn changed(&self, rule: &TopicRuleRecord) {
        if let Some(engine) = &self.engine {
            engine.install(rule).await;
        }
    }

    /// CreateTopicRule.
    pub async fn create_topic_rule(
        &self,
        name: &str,
        payload: &TopicRulePayload,
    ) -> ServiceResult<TopicRuleRecord> {
        let record = self.record(name, payload, None, 1)?;
        match self.store.insert_topic_rule(&record).await {
            Ok(()) => {
                self.ensure_destinations(&payload.actions, payload.error_action.as_ref())
                    .await;
                self.changed(&record).await;
                Ok(record)
            }
            Err(StoreError::AlreadyExists(_)) => Err(ServiceError::AlreadyExists {
                message: format!("Rule {name} already exists"),
                resource_id: name.to_string(),
                resource_arn: self.rule_arn(name),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// GetTopicRule.
    pub async fn get_topic_rule(&self, name: &str) -> ServiceResult<TopicRuleRecord> {
        check_rule_name(name)?;
        self.store
            .get_topic_rule(name)
            .await?
            .ok_or_else(|| rule_not_found(name))
    }

    /// ListTopicRules, in name order.
    pub async fn list_topic_rules(
        &self,
        topic: Option<&str>,
        disabled: Option<bool>,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> ServiceResult<Listing<TopicRuleRecord>> {
        let page = PageRequest {
            after: next_token
                .filter(|t| !t.is_empty())
                .map(pagination::decode)
                .transpose()?,
            limit: check_rules_page_size(max_results)?,
        };
        let filter = TopicRuleFilter {
            topic: topic.map(str::to_string),
            disabled,
        };
        Ok(self.store.list_topic_rules(&filter, &page).await?.into())
    }

    /// ReplaceTopicRule: a new definition, keeping the creation time.
    pub async fn replace_topic_rule(
        &self,
        name: &str,
        payload: &TopicRulePayload,
    ) -> ServiceResult<TopicRuleRecord> {
        check_rule_name(name)?;
        // Validate before reading, so bad SQL is reported even for a missing rule.
        self.record(name, payload, None, 1)?;
        let replaced = self
            .update(name, |current, now| {
                let mut next =
                    self.record(name, payload, Some(current.created_at), current.version + 1)?;
                next.updated_at = now;
                Ok(next)
            })
            .await?;
        self.ensure_destinations(&payload.actions, payload.error_action.as_ref())
            .await;
        Ok(replaced)
    }

    /// EnableTopicRule / DisableTopicRule.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> ServiceResult<TopicRuleRecord> {
        check_rule_name(name)?;
        self.update(name, |current, now| {
            let mut next = current.clone();
            next.disabled = !enabled;
            next.updated_at = now;
            next.version = current.version + 1;
            Ok(next)
        })
        .await
    }

    /// Read, change, compare-and-swap; retried when another writer got there first.
    async fn update(
        &self,
        name: &str,
        change: impl Fn(
            &TopicRuleRecord,
            drover_core::time::Timestamp,
        ) -> ServiceResult<TopicRuleRecord>,
    ) -> ServiceResult<TopicRuleRecord> {
        loop {
            let current = self
                .store
                .get_topic_rule(name)
                .await?
                .ok_or_else(|| rule_not_found(name))?;
            let next = change(&current, self.clock.now())?;
            match self
                .store
                .replace_topic_rule(&next, current.version)
                .await?
            {
                CasOutcome::Done => {
                    self.changed(&next).await;
                    return Ok(next);
                }
                CasOutcome::NotFound => return Err(rule_not_found(name)),
                CasOutcome::VersionMismatch => continue,
            }
        }
    }

    /// DeleteTopicRule.
    pub async fn delete_topic_rule(&self, name: &str) -> ServiceResult<()> {
        check_rule_name(name)?;
        if !self.store.delete_topic_rule(name).await? {
            return Err(rule_not_found(name));
        }
        if let Some(engine) = &self.engine {
            engine.remove(name).await;
        }
        Ok(())
    }
}
