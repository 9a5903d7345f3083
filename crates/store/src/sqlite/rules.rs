//! The SQL behind [`crate::RuleStore`] for SQLite.

use async_trait::async_trait;
use drover_core::time::Timestamp;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::{SqliteStore, backend, constraint, missed_cas};
use crate::rules::*;
use crate::{CasOutcome, Page, PageRequest, StoreResult};

const COLUMNS: &str = "name, sql, topic_pattern, description, aws_iot_sql_version, disabled, \
                       actions, error_action, created_at, updated_at, version";

fn rule_from_row(row: &Row) -> rusqlite::Result<TopicRuleRecord> {
    Ok(TopicRuleRecord {
        name: row.get(0)?,
        sql: row.get(1)?,
        topic_pattern: row.get(2)?,
        description: row.get(3)?,
        aws_iot_sql_version: row.get(4)?,
        disabled: row.get(5)?,
        actions: row.get(6)?,
        error_action: row.get(7)?,
        created_at: Timestamp(row.get(8)?),
        updated_at: Timestamp(row.get(9)?),
        version: row.get(10)?,
    })
}

const DESTINATION_COLUMNS: &str = "arn, confirmation_url, status, status_reason, \
                                   confirmation_token, created_at, updated_at, version";

fn destination_from_row(row: &Row) -> rusqlite::Result<TopicRuleDestinationRecord> {
    Ok(TopicRuleDestinationRecord {
        arn: row.get(0)?,
        confirmation_url: row.get(1)?,
        status: row.get(2)?,
        status_reason: row.get(3)?,
        confirmation_token: row.get(4)?,
        created_at: Timestamp(row.get(5)?),
        updated_at: Timestamp(row.get(6)?),
        version: row.get(7)?,
    })
}

impl SqliteStore {
    /// The destination whose `column` (a unique one) is `value`.
    async fn destination_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<TopicRuleDestinationRecord>> {
        let value = value.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {DESTINATION_COLUMNS} FROM topic_rule_destinations WHERE {column} = ?1"
                ),
                [value],
                destination_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }
}

#[async_trait]
impl RuleStore for SqliteStore {
    async fn insert_topic_rule(&self, rule: &TopicRuleRecord) -> StoreResult<()> {
        let r = rule.clone();
        self.write(move |conn| {
            conn.execute(
                &format!("INSERT INTO topic_rules ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    r.name,
                    r.sql,
                    r.topic_pattern,
                    r.description,
                    r.aws_iot_sql_version,
                    r.disabled,
                    r.actions,
                    r.error_action,
                    r.created_at.0,
                    r.updated_at.0,
                    r.version
                ],
            )
            .map_err(|e| constraint(e, &r.name))?;
            Ok(())
        })
        .await
    }

    async fn get_topic_rule(&self, name: &str) -> StoreResult<Option<TopicRuleRecord>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM topic_rules WHERE name = ?1"),
                [name],
                rule_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn replace_topic_rule(
        &self,
        rule: &TopicRuleRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        let r = rule.clone();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE topic_rules SET sql = ?2, topic_pattern = ?3, description = ?4,
                        aws_iot_sql_version = ?5, disabled = ?6, actions = ?7, error_action = ?8,
                        updated_at = ?9, version = ?10
                     WHERE name = ?1 AND version = ?11",
                    params![
                        r.name,
                        r.sql,
                        r.topic_pattern,
                        r.description,
                        r.aws_iot_sql_version,
                        r.disabled,
                        r.actions,
                        r.error_action,
                        r.updated_at.0,
                        r.version,
                        expected_version
                    ],
                )
                .map_err(backend)?;
            if changed == 1 {
                return Ok(CasOutcome::Done);
            }
            missed_cas(conn, "SELECT 1 FROM topic_rules WHERE name = ?1", &r.name)
        })
        .await
    }

    async fn delete_topic_rule(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM topic_rules WHERE name = ?1", [name])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_topic_rules(
        &self,
        filter: &TopicRuleFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<TopicRuleRecord>> {
        let filter = filter.clone();
        let page = page.clone();
        self.read(move |conn| {
            let mut conditions = Vec::new();
            let mut args: Vec<Value> = Vec::new();
            if let Some(after) = &page.after {
                args.push(Value::Text(after.clone()));
                conditions.push(format!("name > ?{}", args.len()));
            }
            if let Some(topic) = &filter.topic {
                args.push(Value::Text(topic.clone()));
                conditions.push(format!("topic_pattern = ?{}", args.len()));
            }
            if let Some(disabled) = filter.disabled {
                args.push(Value::Integer(i64::from(disabled)));
                conditions.push(format!("disabled = ?{}", args.len()));
            }
            let mut sql = format!("SELECT {COLUMNS} FROM topic_rules");
            if !conditions.is_empty() {
                sql += &format!(" WHERE {}", conditions.join(" AND "));
            }
            args.push(Value::Integer(
                i64::try_from(page.limit)
                    .unwrap_or(i64::MAX - 1)
                    .min(i64::MAX - 1)
                    + 1,
            ));
            sql += &format!(" ORDER BY name LIMIT ?{}", args.len());
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(args), rule_from_row)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(Page::from_rows(rows, page.limit, |r| r.name.clone()))
        })
        .await
    }

    async fn insert_topic_rule_destination(
        &self,
        destination: &TopicRuleDestinationRecord,
    ) -> StoreResult<()> {
        let d = destination.clone();
        self.write(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO topic_rule_destinations ({DESTINATION_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    d.arn,
                    d.confirmation_url,
                    d.status,
                    d.status_reason,
                    d.confirmation_token,
                    d.created_at.0,
                    d.updated_at.0,
                    d.version
                ],
            )
            .map_err(|e| constraint(e, &d.confirmation_url))?;
            Ok(())
        })
        .await
    }

    async fn get_topic_rule_destination(
        &self,
        arn: &str,
    ) -> StoreResult<Option<TopicRuleDestinationRecord>> {
        self.destination_where("arn", arn).await
    }

    async fn find_topic_rule_destination_by_token(
        &self,
        token: &str,
    ) -> StoreResult<Option<TopicRuleDestinationRecord>> {
        self.destination_where("confirmation_token", token).await
    }

    async fn replace_topic_rule_destination(
        &self,
        destination: &TopicRuleDestinationRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        let d = destination.clone();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE topic_rule_destinations SET status = ?2, status_reason = ?3,
                        confirmation_token = ?4, updated_at = ?5, version = ?6
                     WHERE arn = ?1 AND version = ?7",
                    params![
                        d.arn,
                        d.status,
                        d.status_reason,
                        d.confirmation_token,
                        d.updated_at.0,
                        d.version,
                        expected_version
                    ],
                )
                .map_err(|e| constraint(e, &d.arn))?;
            if changed == 1 {
                return Ok(CasOutcome::Done);
            }
            missed_cas(
                conn,
                "SELECT 1 FROM topic_rule_destinations WHERE arn = ?1",
                &d.arn,
            )
        })
        .await
    }

    async fn delete_topic_rule_destination(&self, arn: &str) -> StoreResult<bool> {
        let arn = arn.to_string();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM topic_rule_destinations WHERE arn = ?1", [arn])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_topic_rule_destinations(
        &self,
        page: &PageRequest,
    ) -> StoreResult<Page<TopicRuleDestinationRecord>> {
        let page = page.clone();
        self.read(move |conn| {
            let limit = Value::Integer(
                i64::try_from(page.limit)
                    .unwrap_or(i64::MAX - 1)
                    .min(i64::MAX - 1)
                    + 1,
            );
            let after = Value::Text(page.after.clone().unwrap_or_default());
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {DESTINATION_COLUMNS} FROM topic_rule_destinations \
                     WHERE arn > ?1 ORDER BY arn LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter([after, limit]), destination_from_row)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(Page::from_rows(rows, page.limit, |d| d.arn.clone()))
        })
        .await
    }
}
