//! The SQL behind [`crate::RuleStore`] for PostgreSQL.

use async_trait::async_trait;
use drover_core::time::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, backend, constraint};
use crate::rules::*;
use crate::{CasOutcome, Page, PageRequest, StoreResult};

const COLUMNS: &str = "name, sql, topic_pattern, description, aws_iot_sql_version, disabled, \
                       actions, error_action, created_at, updated_at, version";

fn rule_from_row(row: &Row) -> StoreResult<TopicRuleRecord> {
    Ok(TopicRuleRecord {
        name: row.try_get(0).map_err(backend)?,
        sql: row.try_get(1).map_err(backend)?,
        topic_pattern: row.try_get(2).map_err(backend)?,
        description: row.try_get(3).map_err(backend)?,
        aws_iot_sql_version: row.try_get(4).map_err(backend)?,
        disabled: row.try_get(5).map_err(backend)?,
        actions: row.try_get(6).map_err(backend)?,
        error_action: row.try_get(7).map_err(backend)?,
        created_at: Timestamp(row.try_get(8).map_err(backend)?),
        updated_at: Timestamp(row.try_get(9).map_err(backend)?),
        version: row.try_get(10).map_err(backend)?,
    })
}

const DESTINATION_COLUMNS: &str = "arn, confirmation_url, status, status_reason, \
                                   confirmation_token, created_at, updated_at, version";

fn destination_from_row(row: &Row) -> StoreResult<TopicRuleDestinationRecord> {
    Ok(TopicRuleDestinationRecord {
        arn: row.try_get(0).map_err(backend)?,
        confirmation_url: row.try_get(1).map_err(backend)?,
        status: row.try_get(2).map_err(backend)?,
        status_reason: row.try_get(3).map_err(backend)?,
        confirmation_token: row.try_get(4).map_err(backend)?,
        created_at: Timestamp(row.try_get(5).map_err(backend)?),
        updated_at: Timestamp(row.try_get(6).map_err(backend)?),
        version: row.try_get(7).map_err(backend)?,
    })
}

impl PostgresStore {
    /// The destination whose `column` (a unique one) is `value`.
    async fn destination_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<TopicRuleDestinationRecord>> {
        self.client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {DESTINATION_COLUMNS} FROM topic_rule_destinations WHERE {column} = $1"
                ),
                &[&value],
            )
            .await
            .map_err(backend)?
            .as_ref()
            .map(destination_from_row)
            .transpose()
    }
}

#[async_trait]
impl RuleStore for PostgresStore {
    async fn insert_topic_rule(&self, r: &TopicRuleRecord) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO topic_rules ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                &[
                    &r.name,
                    &r.sql,
                    &r.topic_pattern,
                    &r.description,
                    &r.aws_iot_sql_version,
                    &r.disabled,
                    &r.actions,
                    &r.error_action,
                    &r.created_at.0,
                    &r.updated_at.0,
                    &r.version,
                ],
            )
            .await
            .map_err(|e| constraint(e, &r.name))?;
        Ok(())
    }

    async fn get_topic_rule(&self, name: &str) -> StoreResult<Option<TopicRuleRecord>> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM topic_rules WHERE name = $1"),
                &[&name],
            )
            .await
            .map_err(backend)?
            .as_ref()
            .map(rule_from_row)
            .transpose()
    }

    async fn replace_topic_rule(
        &self,
        r: &TopicRuleRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE topic_rules SET sql = $2, topic_pattern = $3, description = $4,
                    aws_iot_sql_version = $5, disabled = $6, actions = $7, error_action = $8,
                    updated_at = $9, version = $10
                 WHERE name = $1 AND version = $11",
                &[
                    &r.name,
                    &r.sql,
                    &r.topic_pattern,
                    &r.description,
                    &r.aws_iot_sql_version,
                    &r.disabled,
                    &r.actions,
                    &r.error_action,
                    &r.updated_at.0,
                    &r.version,
                    &expected_version,
                ],
            )
            .await
            .map_err(backend)?;
        if changed == 1 {
            return Ok(CasOutcome::Done);
        }
        let exists = client
            .query_opt("SELECT 1 FROM topic_rules WHERE name = $1", &[&r.name])
            .await
            .map_err(backend)?;
        Ok(match exists {
            Some(_) => CasOutcome::VersionMismatch,
            None => CasOutcome::NotFound,
        })
    }

    async fn delete_topic_rule(&self, name: &str) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute("DELETE FROM topic_rules WHERE name = $1", &[&name])
            .await
            .map_err(backend)?;
        Ok(n == 1)
    }

    async fn list_topic_rules(
        &self,
        filter: &TopicRuleFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<TopicRuleRecord>> {
        let limit = i64::try_from(page.limit)
            .unwrap_or(i64::MAX - 1)
            .min(i64::MAX - 1)
            + 1;
        let mut conditions = Vec::new();
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(after) = &page.after {
            args.push(after);
            conditions.push(format!("name > ${}", args.len()));
        }
        if let Some(topic) = &filter.topic {
            args.push(topic);
            conditions.push(format!("topic_pattern = ${}", args.len()));
        }
        if let Some(disabled) = &filter.disabled {
            args.push(disabled);
            conditions.push(format!("disabled = ${}", args.len()));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM topic_rules");
        if !conditions.is_empty() {
            sql += &format!(" WHERE {}", conditions.join(" AND "));
        }
        args.push(&limit);
        sql += &format!(" ORDER BY name LIMIT ${}", args.len());
        let rows = self
            .client()
            .await?
            .query(&sql, &args)
            .await
            .map_err(backend)?
            .iter()
            .map(rule_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit, |r| r.name.clone()))
    }

    async fn insert_topic_rule_destination(
        &self,
        d: &TopicRuleDestinationRecord,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO topic_rule_destinations ({DESTINATION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &d.arn,
                    &d.confirmation_url,
                    &d.status,
                    &d.status_reason,
                    &d.confirmation_token,
                    &d.created_at.0,
                    &d.updated_at.0,
                    &d.version,
                ],
            )
            .await
            .map_err(|e| constraint(e, &d.confirmation_url))?;
        Ok(())
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
        d: &TopicRuleDestinationRecord,
        expected_version: i64,
    ) -> StoreResult<CasOutcome> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE topic_rule_destinations SET status = $2, status_reason = $3,
                    confirmation_token = $4, updated_at = $5, version = $6
                 WHERE arn = $1 AND version = $7",
                &[
                    &d.arn,
                    &d.status,
                    &d.status_reason,
                    &d.confirmation_token,
                    &d.updated_at.0,
                    &d.version,
                    &expected_version,
                ],
            )
            .await
            .map_err(|e| constraint(e, &d.arn))?;
        if changed == 1 {
            return Ok(CasOutcome::Done);
        }
        let exists = client
            .query_opt(
                "SELECT 1 FROM topic_rule_destinations WHERE arn = $1",
                &[&d.arn],
            )
            .await
            .map_err(backend)?;
        Ok(match exists {
            Some(_) => CasOutcome::VersionMismatch,
            None => CasOutcome::NotFound,
        })
    }

    async fn delete_topic_rule_destination(&self, arn: &str) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM topic_rule_destinations WHERE arn = $1",
                &[&arn],
            )
            .await
            .map_err(backend)?;
        Ok(n == 1)
    }

    async fn list_topic_rule_destinations(
        &self,
        page: &PageRequest,
    ) -> StoreResult<Page<TopicRuleDestinationRecord>> {
        let limit = i64::try_from(page.limit)
            .unwrap_or(i64::MAX - 1)
            .min(i64::MAX - 1)
            + 1;
        let after = page.after.clone().unwrap_or_default();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {DESTINATION_COLUMNS} FROM topic_rule_destinations \
                     WHERE arn > $1 ORDER BY arn LIMIT $2"
                ),
                &[&after, &limit],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(destination_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit, |d| d.arn.clone()))
    }
}
