//! The SQL behind [`crate::JobStore`] for PostgreSQL; it answers as SQLite's `jobs.rs` does.
//!
//! Concurrency: an execution write locks its row (`FOR UPDATE`) before the version check, and
//! the counter update then locks the job row, always in that order, so concurrent device
//! updates serialize per job without deadlocking.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use drover_core::jobs::rollout::release_allowance;
use drover_core::jobs::{ExecutionStatus, Job, JobExecution, JobTemplate, ProcessCounts};
use drover_core::time::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, backend, constraint};
use crate::codec::{tags, to_json};
use crate::jobs::codec;
use crate::jobs::*;
use crate::{CasOutcome, Page, PageRequest, StoreResult};

const JOB_COLUMNS: &str = "job_id, status, target_selection, targets, document,
    document_before_substitution, document_source, description, config, document_parameters,
    job_template_arn, namespace_id, tags, force_canceled, reason_code, comment, created_at,
    last_updated_at, completed_at, version, n_queued, n_in_progress, n_succeeded, n_failed,
    n_timed_out, n_rejected, n_removed, n_canceled";

const EXECUTION_COLUMNS: &str = "job_id, thing_name, execution_number, status, status_details,
    force_canceled, queued_at, started_at, last_updated_at, version_number, retry_attempt,
    in_progress_timeout_at, step_timeout_at";

const TEMPLATE_COLUMNS: &str = "template_id, description, document, document_source, config,
    maintenance_windows, source_job_arn, tags, created_at";

type Param<'a> = &'a (dyn ToSql + Sync);

fn job_from_row(row: &Row) -> StoreResult<Job> {
    let g = |e| backend(e);
    let mut process = ProcessCounts::default();
    for (i, status) in ExecutionStatus::ALL.into_iter().enumerate() {
        process.add(status, row.try_get(20 + i).map_err(g)?);
    }
    Ok(Job {
        job_id: row.try_get(0).map_err(g)?,
        status: codec::job_status(row.try_get(1).map_err(g)?)?,
        target_selection: codec::target_selection(row.try_get(2).map_err(g)?)?,
        targets: crate::codec::strings(row.try_get(3).map_err(g)?)?,
        document: row.try_get(4).map_err(g)?,
        document_before_substitution: row.try_get(5).map_err(g)?,
        document_source: row.try_get(6).map_err(g)?,
        description: row.try_get(7).map_err(g)?,
        config: codec::config(row.try_get(8).map_err(g)?)?,
        document_parameters: codec::parameters(row.try_get(9).map_err(g)?)?,
        job_template_arn: row.try_get(10).map_err(g)?,
        namespace_id: row.try_get(11).map_err(g)?,
        tags: tags(row.try_get(12).map_err(g)?)?,
        force_canceled: row.try_get(13).map_err(g)?,
        reason_code: row.try_get(14).map_err(g)?,
        comment: row.try_get(15).map_err(g)?,
        created_at: Timestamp(row.try_get(16).map_err(g)?),
        last_updated_at: Timestamp(row.try_get(17).map_err(g)?),
        completed_at: row.try_get::<_, Option<i64>>(18).map_err(g)?.map(Timestamp),
        version: row.try_get(19).map_err(g)?,
        process,
    })
}

fn execution_from_row(row: &Row) -> StoreResult<JobExecution> {
    let g = |e| backend(e);
    Ok(JobExecution {
        job_id: row.try_get(0).map_err(g)?,
        thing_name: row.try_get(1).map_err(g)?,
        execution_number: row.try_get(2).map_err(g)?,
        status: codec::execution_status(row.try_get(3).map_err(g)?)?,
        status_details: codec::details(row.try_get(4).map_err(g)?)?,
        force_canceled: row.try_get(5).map_err(g)?,
        queued_at: Timestamp(row.try_get(6).map_err(g)?),
        started_at: row.try_get::<_, Option<i64>>(7).map_err(g)?.map(Timestamp),
        last_updated_at: Timestamp(row.try_get(8).map_err(g)?),
        version_number: row.try_get(9).map_err(g)?,
        retry_attempt: row.try_get(10).map_err(g)?,
        in_progress_timeout_at: row.try_get::<_, Option<i64>>(11).map_err(g)?.map(Timestamp),
        step_timeout_at: row.try_get::<_, Option<i64>>(12).map_err(g)?.map(Timestamp),
    })
}

fn template_from_row(row: &Row) -> StoreResult<JobTemplate> {
    let g = |e| backend(e);
    Ok(JobTemplate {
        template_id: row.try_get(0).map_err(g)?,
        description: row.try_get(1).map_err(g)?,
        document: row.try_get(2).map_err(g)?,
        document_source: row.try_get(3).map_err(g)?,
        config: codec::config(row.try_get(4).map_err(g)?)?,
        maintenance_windows: codec::windows(row.try_get(5).map_err(g)?)?,
        source_job_arn: row.try_get(6).map_err(g)?,
        tags: tags(row.try_get(7).map_err(g)?)?,
        created_at: Timestamp(row.try_get(8).map_err(g)?),
    })
}

async fn rows<C: GenericClient, T>(
    client: &C,
    sql: &str,
    args: &[Param<'_>],
    f: fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    client
        .query(sql, args)
        .await
        .map_err(backend)?
        .iter()
        .map(f)
        .collect()
}

/// The things' QUEUED and IN_PROGRESS executions.
async fn pending_of<C: GenericClient>(
    client: &C,
    things: &[String],
) -> StoreResult<Vec<JobExecution>> {
    rows(
        client,
        &format!(
            "SELECT {EXECUTION_COLUMNS} FROM job_executions
             WHERE thing_name = ANY($1) AND status IN ('QUEUED', 'IN_PROGRESS')"
        ),
        &[&things],
        execution_from_row,
    )
    .await
}

async fn bump<C: GenericClient>(
    client: &C,
    job_id: &str,
    status: ExecutionStatus,
    delta: i64,
) -> StoreResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let column = codec::counter_column(status);
    client
        .execute(
            &format!("UPDATE jobs SET {column} = {column} + $2 WHERE job_id = $1"),
            &[&job_id, &delta],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

async fn insert_execution_row<C: GenericClient>(
    client: &C,
    e: &JobExecution,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO job_executions (job_id, thing_name, execution_number, latest, status,
                status_details, force_canceled, queued_at, started_at, last_updated_at,
                version_number, retry_attempt, in_progress_timeout_at, step_timeout_at, timeout_at)
             VALUES ($1, $2, $3, TRUE, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT DO NOTHING",
            &[
                &e.job_id,
                &e.thing_name,
                &e.execution_number,
                &e.status.as_str(),
                &to_json(&e.status_details),
                &e.force_canceled,
                &e.queued_at.0,
                &e.started_at.map(|t| t.0),
                &e.last_updated_at.0,
                &e.version_number,
                &e.retry_attempt,
                &e.in_progress_timeout_at.map(|t| t.0),
                &e.step_timeout_at.map(|t| t.0),
                &codec::timeout_at(e),
            ],
        )
        .await
}

/// Adds `e` as its thing's latest execution of the job (a retry or a direct reach), moving
/// the job's counters from the previous latest; `false` when that execution number exists.
async fn insert_latest<C: GenericClient>(client: &C, e: &JobExecution) -> StoreResult<bool> {
    let previous = client
        .query_opt(
            "SELECT execution_number, status FROM job_executions
             WHERE job_id = $1 AND thing_name = $2 AND latest FOR UPDATE",
            &[&e.job_id, &e.thing_name],
        )
        .await
        .map_err(backend)?;
    let taken = client
        .query_opt(
            "SELECT 1 FROM job_executions
             WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3",
            &[&e.job_id, &e.thing_name, &e.execution_number],
        )
        .await
        .map_err(backend)?
        .is_some();
    // Checked before anything changes: a caller that goes on after `false` commits.
    if taken {
        return Ok(false);
    }
    if let Some(row) = &previous {
        let number: i64 = row.try_get(0).map_err(backend)?;
        let status: String = row.try_get(1).map_err(backend)?;
        client
            .execute(
                "UPDATE job_executions SET latest = FALSE
                 WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3",
                &[&e.job_id, &e.thing_name, &number],
            )
            .await
            .map_err(backend)?;
        bump(client, &e.job_id, codec::execution_status(&status)?, -1).await?;
    }
    // The row lock on the previous latest serializes inserts for this thing and job, so
    // the check above still holds; a conflict here would be another writer's bug.
    if insert_execution_row(client, e)
        .await
        .map_err(|x| constraint(x, &e.job_id))?
        == 0
    {
        return Err(codec::execution_exists(e));
    }
    client
        .execute(
            "DELETE FROM job_pending_things WHERE job_id = $1 AND thing_name = $2",
            &[&e.job_id, &e.thing_name],
        )
        .await
        .map_err(backend)?;
    bump(client, &e.job_id, e.status, 1).await?;
    Ok(true)
}

async fn update_one<C: GenericClient>(
    client: &C,
    e: &JobExecution,
    expected: i64,
) -> StoreResult<CasOutcome> {
    let current = client
        .query_opt(
            "SELECT status, version_number, latest FROM job_executions
             WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3 FOR UPDATE",
            &[&e.job_id, &e.thing_name, &e.execution_number],
        )
        .await
        .map_err(backend)?;
    let Some(row) = current else {
        return Ok(CasOutcome::NotFound);
    };
    let old: String = row.try_get(0).map_err(backend)?;
    let version: i64 = row.try_get(1).map_err(backend)?;
    let latest: bool = row.try_get(2).map_err(backend)?;
    if version != expected {
        return Ok(CasOutcome::VersionMismatch);
    }
    client
        .execute(
            "UPDATE job_executions SET status = $4, status_details = $5, force_canceled = $6,
                started_at = $7, last_updated_at = $8, version_number = $9,
                in_progress_timeout_at = $10, step_timeout_at = $11, timeout_at = $12
             WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3",
            &[
                &e.job_id,
                &e.thing_name,
                &e.execution_number,
                &e.status.as_str(),
                &to_json(&e.status_details),
                &e.force_canceled,
                &e.started_at.map(|t| t.0),
                &e.last_updated_at.0,
                &e.version_number,
                &e.in_progress_timeout_at.map(|t| t.0),
                &e.step_timeout_at.map(|t| t.0),
                &codec::timeout_at(e),
            ],
        )
        .await
        .map_err(backend)?;
    let old = codec::execution_status(&old)?;
    if latest && old != e.status {
        bump(client, &e.job_id, old, -1).await?;
        bump(client, &e.job_id, e.status, 1).await?;
    }
    Ok(CasOutcome::Done)
}

/// How many first executions of the job were queued at or after `since`.
async fn released_since<C: GenericClient>(
    client: &C,
    job_id: &str,
    since: Timestamp,
) -> StoreResult<i64> {
    client
        .query_one(
            "SELECT COUNT(*) FROM job_executions
             WHERE job_id = $1 AND execution_number = 1 AND queued_at >= $2",
            &[&job_id, &since.0],
        )
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn insert_job(&self, job: &Job, pending_things: &[String]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute(
            "INSERT INTO jobs (job_id, status, target_selection, targets, document,
                document_before_substitution, document_source, description, config,
                document_parameters, job_template_arn, namespace_id, tags, force_canceled,
                reason_code, comment, created_at, last_updated_at, completed_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20)",
            &[
                &job.job_id,
                &job.status.as_str(),
                &job.target_selection.as_str(),
                &to_json(&job.targets),
                &job.document,
                &job.document_before_substitution,
                &job.document_source,
                &job.description,
                &to_json(&job.config),
                &to_json(&job.document_parameters),
                &job.job_template_arn,
                &job.namespace_id,
                &to_json(&job.tags),
                &job.force_canceled,
                &job.reason_code,
                &job.comment,
                &job.created_at.0,
                &job.last_updated_at.0,
                &job.completed_at.map(|t| t.0),
                &job.version,
            ],
        )
        .await
        .map_err(|e| constraint(e, &job.job_id))?;
        for chunk in pending_things.chunks(EXECUTION_BATCH) {
            tx.execute(
                "INSERT INTO job_pending_things (job_id, thing_name)
                 SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
                &[&job.job_id, &chunk],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_job(&self, job_id: &str) -> StoreResult<Option<Job>> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"),
                &[&job_id],
            )
            .await
            .map_err(backend)?
            .map(|r| job_from_row(&r))
            .transpose()
    }

    async fn replace_job(&self, job: &Job, expected_version: i64) -> StoreResult<CasOutcome> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE jobs SET status = $2, description = $3, config = $4,
                    force_canceled = $5, reason_code = $6, comment = $7,
                    last_updated_at = $8, completed_at = $9, version = $10
                 WHERE job_id = $1 AND version = $11",
                &[
                    &job.job_id,
                    &job.status.as_str(),
                    &job.description,
                    &to_json(&job.config),
                    &job.force_canceled,
                    &job.reason_code,
                    &job.comment,
                    &job.last_updated_at.0,
                    &job.completed_at.map(|t| t.0),
                    &job.version,
                    &expected_version,
                ],
            )
            .await
            .map_err(backend)?;
        if changed == 1 {
            return Ok(CasOutcome::Done);
        }
        let exists = client
            .query_opt("SELECT 1 FROM jobs WHERE job_id = $1", &[&job.job_id])
            .await
            .map_err(backend)?
            .is_some();
        Ok(if exists {
            CasOutcome::VersionMismatch
        } else {
            CasOutcome::NotFound
        })
    }

    async fn list_jobs(&self, filter: &JobFilter, page: &PageRequest) -> StoreResult<Page<Job>> {
        let client = self.client().await?;
        let status = filter.status.map(|s| s.as_str());
        let selection = filter.target_selection.map(|s| s.as_str());
        let target = filter.target.as_ref().map(to_json);
        let limit = (page.limit + 1) as i64;
        let jobs = rows(
            &client,
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE ($1::text IS NULL OR status = $1)
                   AND ($2::text IS NULL OR target_selection = $2)
                   AND ($3::text IS NULL OR strpos(targets, $3) > 0)
                   AND ($4::text IS NULL OR namespace_id = $4)
                   AND ($5::text IS NULL OR job_id > $5)
                 ORDER BY job_id LIMIT $6"
            ),
            &[
                &status,
                &selection,
                &target,
                &filter.namespace_id,
                &page.after,
                &limit,
            ],
            job_from_row,
        )
        .await?;
        Ok(Page::from_rows(jobs, page.limit, |j| j.job_id.clone()))
    }

    async fn list_active_jobs(&self) -> StoreResult<Vec<Job>> {
        let client = self.client().await?;
        rows(
            &client,
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE status IN ('SCHEDULED', 'IN_PROGRESS', 'DELETION_IN_PROGRESS')
                 ORDER BY job_id"
            ),
            &[],
            job_from_row,
        )
        .await
    }

    async fn delete_job(&self, job_id: &str) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("DELETE FROM job_executions WHERE job_id = $1", &[&job_id])
            .await
            .map_err(backend)?;
        tx.execute(
            "DELETE FROM job_pending_things WHERE job_id = $1",
            &[&job_id],
        )
        .await
        .map_err(backend)?;
        let n = tx
            .execute("DELETE FROM jobs WHERE job_id = $1", &[&job_id])
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(n == 1)
    }

    async fn add_pending_things(&self, job_id: &str, things: &[String]) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let mut added = 0;
        for chunk in things.chunks(EXECUTION_BATCH) {
            added += tx
                .execute(
                    "INSERT INTO job_pending_things (job_id, thing_name)
                     SELECT $1, t FROM unnest($2::text[]) AS t
                     WHERE NOT EXISTS (SELECT 1 FROM job_executions
                        WHERE job_id = $1 AND thing_name = t)
                     ON CONFLICT DO NOTHING",
                    &[&job_id, &chunk],
                )
                .await
                .map_err(|e| constraint(e, job_id))?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(added)
    }

    async fn list_pending_things(&self, job_id: &str, limit: usize) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT thing_name FROM job_pending_things WHERE job_id = $1
                 ORDER BY thing_name LIMIT $2",
                &[&job_id, &(limit as i64)],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.try_get(0).map_err(backend))
            .collect()
    }

    async fn count_pending_things(&self, job_id: &str) -> StoreResult<i64> {
        let client = self.client().await?;
        client
            .query_one(
                "SELECT COUNT(*) FROM job_pending_things WHERE job_id = $1",
                &[&job_id],
            )
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)
    }

    async fn remove_pending_thing(&self, job_id: &str, thing: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM job_pending_things WHERE job_id = $1 AND thing_name = $2",
                &[&job_id, &thing],
            )
            .await
            .map_err(backend)?
            == 1)
    }

    async fn clear_pending_things(&self, job_id: &str) -> StoreResult<u64> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM job_pending_things WHERE job_id = $1",
                &[&job_id],
            )
            .await
            .map_err(backend)
    }

    async fn release_pending_things(
        &self,
        job_id: &str,
        limit: usize,
        at: Timestamp,
        budget: Option<ReleaseBudget>,
    ) -> StoreResult<Vec<JobExecution>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let limit = match budget {
            Some(b) => {
                // A transaction-scoped advisory lock per job serializes budgeted releases
                // across nodes; the count below then sees every release committed before it.
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&format!("drover/rollout/{job_id}")],
                )
                .await
                .map_err(backend)?;
                let recent = released_since(&tx, job_id, b.since).await?;
                limit.min(release_allowance(b.per_minute, recent))
            }
            None => limit,
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Deleting first (with SKIP LOCKED) makes two nodes releasing the same job take
        // disjoint things.
        let things: Vec<String> = tx
            .query(
                "DELETE FROM job_pending_things WHERE (job_id, thing_name) IN (
                    SELECT job_id, thing_name FROM job_pending_things WHERE job_id = $1
                    ORDER BY thing_name LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING thing_name",
                &[&job_id, &(limit as i64)],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.try_get(0).map_err(backend))
            .collect::<StoreResult<_>>()?;
        let mut things = things;
        things.sort();
        let inserted: Vec<String> = tx
            .query(
                "INSERT INTO job_executions (job_id, thing_name, execution_number, latest, status,
                    status_details, force_canceled, queued_at, last_updated_at, version_number,
                    retry_attempt)
                 SELECT $1, t, 1, TRUE, 'QUEUED', '{}', FALSE, $3, $3, 1, 0
                 FROM unnest($2::text[]) AS t
                 ON CONFLICT DO NOTHING RETURNING thing_name",
                &[&job_id, &things, &at.0],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.try_get(0).map_err(backend))
            .collect::<StoreResult<_>>()?;
        let mut inserted = inserted;
        inserted.sort();
        bump(&tx, job_id, ExecutionStatus::Queued, inserted.len() as i64).await?;
        tx.commit().await.map_err(backend)?;
        Ok(inserted
            .iter()
            .map(|thing| JobExecution::queued(job_id, thing, 1, 0, at))
            .collect())
    }

    async fn insert_execution(&self, e: &JobExecution) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        if !insert_latest(&tx, e).await? {
            return Err(codec::execution_exists(e));
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_execution(
        &self,
        job_id: &str,
        thing: &str,
        number: Option<i64>,
    ) -> StoreResult<Option<JobExecution>> {
        let client = self.client().await?;
        let row = match number {
            Some(n) => client
                .query_opt(
                    &format!(
                        "SELECT {EXECUTION_COLUMNS} FROM job_executions
                         WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3"
                    ),
                    &[&job_id, &thing, &n],
                )
                .await
                .map_err(backend)?,
            None => client
                .query_opt(
                    &format!(
                        "SELECT {EXECUTION_COLUMNS} FROM job_executions
                         WHERE job_id = $1 AND thing_name = $2 AND latest"
                    ),
                    &[&job_id, &thing],
                )
                .await
                .map_err(backend)?,
        };
        row.map(|r| execution_from_row(&r)).transpose()
    }

    async fn update_execution(
        &self,
        execution: &JobExecution,
        expected_version: i64,
        retry: Option<&JobExecution>,
    ) -> StoreResult<ExecutionWrite> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let outcome = update_one(&tx, execution, expected_version).await?;
        if outcome != CasOutcome::Done {
            tx.commit().await.map_err(backend)?;
            return Ok(ExecutionWrite::missed(outcome));
        }
        let retried = match retry {
            Some(r) => insert_latest(&tx, r).await?,
            None => false,
        };
        let pending = pending_of(&tx, std::slice::from_ref(&execution.thing_name)).await?;
        tx.commit().await.map_err(backend)?;
        Ok(ExecutionWrite {
            outcome,
            pending,
            retried,
        })
    }

    async fn update_executions(
        &self,
        updates: &[(JobExecution, i64)],
    ) -> StoreResult<Vec<CasOutcome>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let mut outcomes = Vec::with_capacity(updates.len());
        for (e, expected) in updates {
            outcomes.push(update_one(&tx, e, *expected).await?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(outcomes)
    }

    async fn list_executions_for_job(
        &self,
        job_id: &str,
        status: Option<ExecutionStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<JobExecution>> {
        let client = self.client().await?;
        let status = status.map(|s| s.as_str());
        let limit = (page.limit + 1) as i64;
        let list = rows(
            &client,
            &format!(
                "SELECT {EXECUTION_COLUMNS} FROM job_executions
                 WHERE job_id = $1 AND latest
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR thing_name > $3)
                 ORDER BY thing_name LIMIT $4"
            ),
            &[&job_id, &status, &page.after, &limit],
            execution_from_row,
        )
        .await?;
        Ok(Page::from_rows(list, page.limit, |e| e.thing_name.clone()))
    }

    async fn list_executions_for_thing(
        &self,
        thing: &str,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<JobExecution>> {
        let client = self.client().await?;
        let status = filter.status.map(|s| s.as_str());
        let limit = (page.limit + 1) as i64;
        let list = rows(
            &client,
            &format!(
                "SELECT {EXECUTION_COLUMNS} FROM job_executions
                 WHERE thing_name = $1 AND latest
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR job_id = $3)
                   AND ($4::text IS NULL OR job_id > $4)
                 ORDER BY job_id LIMIT $5"
            ),
            &[&thing, &status, &filter.job_id, &page.after, &limit],
            execution_from_row,
        )
        .await?;
        Ok(Page::from_rows(list, page.limit, |e| e.job_id.clone()))
    }

    async fn pending_executions(&self, things: &[String]) -> StoreResult<Vec<JobExecution>> {
        let client = self.client().await?;
        pending_of(&client, things).await
    }

    async fn executions_in_status(
        &self,
        job_id: &str,
        statuses: &[ExecutionStatus],
        limit: usize,
    ) -> StoreResult<Vec<JobExecution>> {
        let client = self.client().await?;
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        rows(
            &client,
            &format!(
                "SELECT {EXECUTION_COLUMNS} FROM job_executions
                 WHERE job_id = $1 AND status = ANY($2) ORDER BY thing_name LIMIT $3"
            ),
            &[&job_id, &statuses, &(limit as i64)],
            execution_from_row,
        )
        .await
    }

    async fn due_executions(&self, at: Timestamp, limit: usize) -> StoreResult<Vec<JobExecution>> {
        let client = self.client().await?;
        rows(
            &client,
            &format!(
                "SELECT {EXECUTION_COLUMNS} FROM job_executions
                 WHERE timeout_at IS NOT NULL AND timeout_at <= $1 AND status = 'IN_PROGRESS'
                 ORDER BY timeout_at LIMIT $2"
            ),
            &[&at.0, &(limit as i64)],
            execution_from_row,
        )
        .await
    }

    async fn next_execution_timeout(&self) -> StoreResult<Option<Timestamp>> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT MIN(timeout_at) FROM job_executions WHERE timeout_at IS NOT NULL",
                &[],
            )
            .await
            .map_err(backend)?;
        Ok(row
            .try_get::<_, Option<i64>>(0)
            .map_err(backend)?
            .map(Timestamp))
    }

    async fn delete_execution(&self, job_id: &str, thing: &str, number: i64) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let current = tx
            .query_opt(
                "DELETE FROM job_executions
                 WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3
                 RETURNING status, latest",
                &[&job_id, &thing, &number],
            )
            .await
            .map_err(backend)?;
        let Some(row) = current else {
            return Ok(false);
        };
        let status: String = row.try_get(0).map_err(backend)?;
        let latest: bool = row.try_get(1).map_err(backend)?;
        if latest {
            bump(&tx, job_id, codec::execution_status(&status)?, -1).await?;
            let previous = tx
                .query_opt(
                    "UPDATE job_executions SET latest = TRUE
                     WHERE job_id = $1 AND thing_name = $2 AND execution_number = (
                        SELECT MAX(execution_number) FROM job_executions
                        WHERE job_id = $1 AND thing_name = $2)
                     RETURNING status",
                    &[&job_id, &thing],
                )
                .await
                .map_err(backend)?;
            if let Some(row) = previous {
                let s: String = row.try_get(0).map_err(backend)?;
                bump(&tx, job_id, codec::execution_status(&s)?, 1).await?;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn insert_job_template(&self, t: &JobTemplate) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO job_templates (template_id, description, document, document_source,
                    config, maintenance_windows, source_job_arn, tags, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &t.template_id,
                    &t.description,
                    &t.document,
                    &t.document_source,
                    &to_json(&t.config),
                    &to_json(&t.maintenance_windows),
                    &t.source_job_arn,
                    &to_json(&t.tags),
                    &t.created_at.0,
                ],
            )
            .await
            .map_err(|e| constraint(e, &t.template_id))?;
        Ok(())
    }

    async fn get_job_template(&self, template_id: &str) -> StoreResult<Option<JobTemplate>> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {TEMPLATE_COLUMNS} FROM job_templates WHERE template_id = $1"),
                &[&template_id],
            )
            .await
            .map_err(backend)?
            .map(|r| template_from_row(&r))
            .transpose()
    }

    async fn list_job_templates(&self, page: &PageRequest) -> StoreResult<Page<JobTemplate>> {
        let client = self.client().await?;
        let after = page.after.clone().unwrap_or_default();
        let list = rows(
            &client,
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM job_templates WHERE template_id > $1
                 ORDER BY template_id LIMIT $2"
            ),
            &[&after, &((page.limit + 1) as i64)],
            template_from_row,
        )
        .await?;
        Ok(Page::from_rows(list, page.limit, |t| t.template_id.clone()))
    }

    async fn delete_job_template(&self, template_id: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM job_templates WHERE template_id = $1",
                &[&template_id],
            )
            .await
            .map_err(backend)?
            == 1)
    }
}
