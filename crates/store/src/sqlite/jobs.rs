//! The SQL behind [`crate::JobStore`] for SQLite. Every execution write runs inside the
//! writer thread's group commit and adjusts the job's counters in the same savepoint.

use async_trait::async_trait;
use drover_core::jobs::rollout::release_allowance;
use drover_core::jobs::{ExecutionStatus, Job, JobExecution, JobTemplate, ProcessCounts};
use drover_core::time::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{SqliteStore, backend, constraint, missed_cas};
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

/// SQLite's default limit on bound parameters is far above this; the chunk keeps statements
/// small.
const IN_CHUNK: usize = 500;

type Raw<T> = Result<T, crate::StoreError>;

fn job_from_row(row: &Row) -> rusqlite::Result<Raw<Job>> {
    let text = |i: usize| row.get::<_, String>(i);
    let status = text(1)?;
    let selection = text(2)?;
    let targets = text(3)?;
    let config = text(8)?;
    let parameters = text(9)?;
    let tag_text = text(12)?;
    let mut process = ProcessCounts::default();
    for (i, status) in ExecutionStatus::ALL.into_iter().enumerate() {
        process.add(status, row.get(20 + i)?);
    }
    let partial = (
        row.get::<_, String>(0)?,
        row.get::<_, String>(4)?,
        row.get::<_, Option<String>>(5)?,
        row.get::<_, Option<String>>(6)?,
        row.get::<_, Option<String>>(7)?,
        row.get::<_, Option<String>>(10)?,
        row.get::<_, Option<String>>(11)?,
        row.get::<_, bool>(13)?,
        row.get::<_, Option<String>>(14)?,
        row.get::<_, Option<String>>(15)?,
        row.get::<_, i64>(16)?,
        row.get::<_, i64>(17)?,
        row.get::<_, Option<i64>>(18)?,
        row.get::<_, i64>(19)?,
    );
    Ok((|| {
        let (
            job_id,
            document,
            document_before_substitution,
            document_source,
            description,
            job_template_arn,
            namespace_id,
            force_canceled,
            reason_code,
            comment,
            created_at,
            last_updated_at,
            completed_at,
            version,
        ) = partial;
        Ok(Job {
            job_id,
            status: codec::job_status(&status)?,
            target_selection: codec::target_selection(&selection)?,
            targets: crate::codec::strings(&targets)?,
            document,
            document_before_substitution,
            document_source,
            description,
            config: codec::config(&config)?,
            document_parameters: codec::parameters(&parameters)?,
            job_template_arn,
            namespace_id,
            tags: tags(&tag_text)?,
            force_canceled,
            reason_code,
            comment,
            created_at: Timestamp(created_at),
            last_updated_at: Timestamp(last_updated_at),
            completed_at: completed_at.map(Timestamp),
            version,
            process,
        })
    })())
}

fn execution_from_row(row: &Row) -> rusqlite::Result<Raw<JobExecution>> {
    let status: String = row.get(3)?;
    let details: String = row.get(4)?;
    let e = JobExecution {
        job_id: row.get(0)?,
        thing_name: row.get(1)?,
        execution_number: row.get(2)?,
        status: ExecutionStatus::Queued,
        status_details: Default::default(),
        force_canceled: row.get(5)?,
        queued_at: Timestamp(row.get(6)?),
        started_at: row.get::<_, Option<i64>>(7)?.map(Timestamp),
        last_updated_at: Timestamp(row.get(8)?),
        version_number: row.get(9)?,
        retry_attempt: row.get(10)?,
        in_progress_timeout_at: row.get::<_, Option<i64>>(11)?.map(Timestamp),
        step_timeout_at: row.get::<_, Option<i64>>(12)?.map(Timestamp),
    };
    Ok((|| {
        Ok(JobExecution {
            status: codec::execution_status(&status)?,
            status_details: codec::details(&details)?,
            ..e
        })
    })())
}

fn collect<T>(
    stmt: &mut rusqlite::Statement,
    args: impl rusqlite::Params,
    f: fn(&Row) -> rusqlite::Result<Raw<T>>,
) -> StoreResult<Vec<T>> {
    stmt.query_map(args, f)
        .map_err(backend)?
        .map(|r| r.map_err(backend)?)
        .collect()
}

fn bump(conn: &Connection, job_id: &str, status: ExecutionStatus, delta: i64) -> StoreResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let column = codec::counter_column(status);
    conn.prepare_cached(&format!(
        "UPDATE jobs SET {column} = {column} + ?2 WHERE job_id = ?1"
    ))
    .map_err(backend)?
    .execute(params![job_id, delta])
    .map_err(backend)?;
    Ok(())
}

/// Moves one execution from `from`'s counter to `to`'s in a single UPDATE: the jobs row
/// carries the document, and every device update that changes a status rewrites it.
fn move_counter(
    conn: &Connection,
    job_id: &str,
    from: ExecutionStatus,
    to: ExecutionStatus,
) -> StoreResult<()> {
    let (from, to) = (codec::counter_column(from), codec::counter_column(to));
    conn.prepare_cached(&format!(
        "UPDATE jobs SET {from} = {from} - 1, {to} = {to} + 1 WHERE job_id = ?1"
    ))
    .map_err(backend)?
    .execute(params![job_id])
    .map_err(backend)?;
    Ok(())
}

fn insert_execution_row(conn: &Connection, e: &JobExecution) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO job_executions (job_id, thing_name, execution_number, latest, status,
            status_details, force_canceled, queued_at, started_at, last_updated_at, version_number,
            retry_attempt, in_progress_timeout_at, step_timeout_at, timeout_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        e.job_id,
        e.thing_name,
        e.execution_number,
        e.status.as_str(),
        to_json(&e.status_details),
        e.force_canceled,
        e.queued_at.0,
        e.started_at.map(|t| t.0),
        e.last_updated_at.0,
        e.version_number,
        e.retry_attempt,
        e.in_progress_timeout_at.map(|t| t.0),
        e.step_timeout_at.map(|t| t.0),
        codec::timeout_at(e),
    ])
}

fn update_one(conn: &Connection, e: &JobExecution, expected: i64) -> StoreResult<CasOutcome> {
    let current: Option<(String, i64, bool)> = conn
        .prepare_cached(
            "SELECT status, version_number, latest FROM job_executions
             WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
        )
        .map_err(backend)?
        .query_row(params![e.job_id, e.thing_name, e.execution_number], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(backend)?;
    let Some((old_status, version, latest)) = current else {
        return Ok(CasOutcome::NotFound);
    };
    if version != expected {
        return Ok(CasOutcome::VersionMismatch);
    }
    conn.prepare_cached(
        "UPDATE job_executions SET status = ?4, status_details = ?5, force_canceled = ?6,
            started_at = ?7, last_updated_at = ?8, version_number = ?9,
            in_progress_timeout_at = ?10, step_timeout_at = ?11, timeout_at = ?12
         WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
    )
    .map_err(backend)?
    .execute(params![
        e.job_id,
        e.thing_name,
        e.execution_number,
        e.status.as_str(),
        to_json(&e.status_details),
        e.force_canceled,
        e.started_at.map(|t| t.0),
        e.last_updated_at.0,
        e.version_number,
        e.in_progress_timeout_at.map(|t| t.0),
        e.step_timeout_at.map(|t| t.0),
        codec::timeout_at(e),
    ])
    .map_err(backend)?;
    let old = codec::execution_status(&old_status)?;
    if latest && old != e.status {
        move_counter(conn, &e.job_id, old, e.status)?;
    }
    Ok(CasOutcome::Done)
}

/// Adds `e` as its thing's latest execution of the job (a retry or a direct reach), moving
/// the job's counters from the previous latest; `false` when that execution number exists.
fn insert_latest(conn: &Connection, e: &JobExecution) -> StoreResult<bool> {
    let previous: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT execution_number, status FROM job_executions
             WHERE job_id = ?1 AND thing_name = ?2 AND latest = 1",
        )
        .map_err(backend)?
        .query_row(params![e.job_id, e.thing_name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?;
    let taken = conn
        .prepare_cached(
            "SELECT 1 FROM job_executions
             WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
        )
        .map_err(backend)?
        .exists(params![e.job_id, e.thing_name, e.execution_number])
        .map_err(backend)?;
    // Checked before anything changes: a caller that goes on after `false` commits.
    if taken {
        return Ok(false);
    }
    if let Some((number, status)) = &previous {
        conn.execute(
            "UPDATE job_executions SET latest = 0
             WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
            params![e.job_id, e.thing_name, number],
        )
        .map_err(backend)?;
        bump(conn, &e.job_id, codec::execution_status(status)?, -1)?;
    }
    insert_execution_row(conn, e).map_err(|x| constraint(x, &e.job_id))?;
    conn.execute(
        "DELETE FROM job_pending_things WHERE job_id = ?1 AND thing_name = ?2",
        params![e.job_id, e.thing_name],
    )
    .map_err(backend)?;
    bump(conn, &e.job_id, e.status, 1)?;
    Ok(true)
}

/// How many first executions of the job were queued at or after `since`.
fn released_since(conn: &Connection, job_id: &str, since: Timestamp) -> StoreResult<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM job_executions
         WHERE job_id = ?1 AND execution_number = 1 AND queued_at >= ?2",
    )
    .map_err(backend)?
    .query_row(params![job_id, since.0], |r| r.get(0))
    .map_err(backend)
}

/// The things' QUEUED and IN_PROGRESS executions.
fn pending_of(conn: &Connection, things: &[String]) -> StoreResult<Vec<JobExecution>> {
    let mut out = Vec::new();
    for chunk in things.chunks(IN_CHUNK) {
        let marks = (1..=chunk.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM job_executions
                 WHERE thing_name IN ({marks}) AND status IN ('QUEUED', 'IN_PROGRESS')"
            ))
            .map_err(backend)?;
        out.extend(collect(
            &mut stmt,
            params_from_iter(chunk),
            execution_from_row,
        )?);
    }
    Ok(out)
}

fn page_args(page: &PageRequest) -> usize {
    page.limit + 1
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn insert_job(&self, job: &Job, pending_things: &[String]) -> StoreResult<()> {
        let job = job.clone();
        let things = pending_things.to_vec();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO jobs (job_id, status, target_selection, targets, document,
                    document_before_substitution, document_source, description, config,
                    document_parameters, job_template_arn, namespace_id, tags, force_canceled,
                    reason_code, comment, created_at, last_updated_at, completed_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20)",
                params![
                    job.job_id,
                    job.status.as_str(),
                    job.target_selection.as_str(),
                    to_json(&job.targets),
                    job.document,
                    job.document_before_substitution,
                    job.document_source,
                    job.description,
                    to_json(&job.config),
                    to_json(&job.document_parameters),
                    job.job_template_arn,
                    job.namespace_id,
                    to_json(&job.tags),
                    job.force_canceled,
                    job.reason_code,
                    job.comment,
                    job.created_at.0,
                    job.last_updated_at.0,
                    job.completed_at.map(|t| t.0),
                    job.version,
                ],
            )
            .map_err(|e| constraint(e, &job.job_id))?;
            let mut stmt = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO job_pending_things (job_id, thing_name) VALUES (?1, ?2)",
                )
                .map_err(backend)?;
            for thing in &things {
                stmt.execute(params![job.job_id, thing]).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_job(&self, job_id: &str) -> StoreResult<Option<Job>> {
        let job_id = job_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1"),
                [job_id],
                job_from_row,
            )
            .optional()
            .map_err(backend)?
            .transpose()
        })
        .await
    }

    async fn replace_job(&self, job: &Job, expected_version: i64) -> StoreResult<CasOutcome> {
        let job = job.clone();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE jobs SET status = ?2, description = ?3, config = ?4,
                        force_canceled = ?5, reason_code = ?6, comment = ?7,
                        last_updated_at = ?8, completed_at = ?9, version = ?10
                     WHERE job_id = ?1 AND version = ?11",
                    params![
                        job.job_id,
                        job.status.as_str(),
                        job.description,
                        to_json(&job.config),
                        job.force_canceled,
                        job.reason_code,
                        job.comment,
                        job.last_updated_at.0,
                        job.completed_at.map(|t| t.0),
                        job.version,
                        expected_version,
                    ],
                )
                .map_err(backend)?;
            if changed == 1 {
                return Ok(CasOutcome::Done);
            }
            missed_cas(conn, "SELECT 1 FROM jobs WHERE job_id = ?1", &job.job_id)
        })
        .await
    }

    async fn list_jobs(&self, filter: &JobFilter, page: &PageRequest) -> StoreResult<Page<Job>> {
        let filter = filter.clone();
        let page = page.clone();
        self.read(move |conn| {
            let mut conditions = Vec::new();
            let mut args: Vec<Value> = Vec::new();
            if let Some(s) = filter.status {
                args.push(Value::Text(s.as_str().into()));
                conditions.push(format!("status = ?{}", args.len()));
            }
            if let Some(t) = filter.target_selection {
                args.push(Value::Text(t.as_str().into()));
                conditions.push(format!("target_selection = ?{}", args.len()));
            }
            if let Some(target) = &filter.target {
                // The JSON list quotes each ARN, so the quoted ARN matches only whole entries.
                args.push(Value::Text(to_json(target)));
                conditions.push(format!("instr(targets, ?{}) > 0", args.len()));
            }
            if let Some(ns) = &filter.namespace_id {
                args.push(Value::Text(ns.clone()));
                conditions.push(format!("namespace_id = ?{}", args.len()));
            }
            if let Some(after) = &page.after {
                args.push(Value::Text(after.clone()));
                conditions.push(format!("job_id > ?{}", args.len()));
            }
            let filter = if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            };
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs {filter} ORDER BY job_id LIMIT {}",
                    page_args(&page)
                ))
                .map_err(backend)?;
            let rows = collect(&mut stmt, params_from_iter(args), job_from_row)?;
            Ok(Page::from_rows(rows, page.limit, |j| j.job_id.clone()))
        })
        .await
    }

    async fn list_active_jobs(&self) -> StoreResult<Vec<Job>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs
                     WHERE status IN ('SCHEDULED', 'IN_PROGRESS', 'DELETION_IN_PROGRESS')
                     ORDER BY job_id"
                ))
                .map_err(backend)?;
            collect(&mut stmt, [], job_from_row)
        })
        .await
    }

    async fn delete_job(&self, job_id: &str) -> StoreResult<bool> {
        let job_id = job_id.to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM job_executions WHERE job_id = ?1", [&job_id])
                .map_err(backend)?;
            conn.execute(
                "DELETE FROM job_pending_things WHERE job_id = ?1",
                [&job_id],
            )
            .map_err(backend)?;
            Ok(conn
                .execute("DELETE FROM jobs WHERE job_id = ?1", [&job_id])
                .map_err(backend)?
                == 1)
        })
        .await
    }

    async fn add_pending_things(&self, job_id: &str, things: &[String]) -> StoreResult<u64> {
        let job_id = job_id.to_string();
        let things = things.to_vec();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO job_pending_things (job_id, thing_name)
                     SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM job_executions
                        WHERE job_id = ?1 AND thing_name = ?2)",
                )
                .map_err(backend)?;
            let mut added = 0;
            for thing in &things {
                added += stmt
                    .execute(params![job_id, thing])
                    .map_err(|e| constraint(e, &job_id))? as u64;
            }
            Ok(added)
        })
        .await
    }

    async fn list_pending_things(&self, job_id: &str, limit: usize) -> StoreResult<Vec<String>> {
        let job_id = job_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT thing_name FROM job_pending_things WHERE job_id = ?1
                     ORDER BY thing_name LIMIT ?2",
                )
                .map_err(backend)?;
            stmt.query_map(params![job_id, limit as i64], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn count_pending_things(&self, job_id: &str) -> StoreResult<i64> {
        let job_id = job_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM job_pending_things WHERE job_id = ?1",
                [job_id],
                |r| r.get(0),
            )
            .map_err(backend)
        })
        .await
    }

    async fn remove_pending_thing(&self, job_id: &str, thing: &str) -> StoreResult<bool> {
        let (job_id, thing) = (job_id.to_string(), thing.to_string());
        self.write(move |conn| {
            Ok(conn
                .execute(
                    "DELETE FROM job_pending_things WHERE job_id = ?1 AND thing_name = ?2",
                    params![job_id, thing],
                )
                .map_err(backend)?
                == 1)
        })
        .await
    }

    async fn clear_pending_things(&self, job_id: &str) -> StoreResult<u64> {
        let job_id = job_id.to_string();
        self.write(move |conn| {
            Ok(conn
                .execute("DELETE FROM job_pending_things WHERE job_id = ?1", [job_id])
                .map_err(backend)? as u64)
        })
        .await
    }

    async fn release_pending_things(
        &self,
        job_id: &str,
        limit: usize,
        at: Timestamp,
        budget: Option<ReleaseBudget>,
    ) -> StoreResult<Vec<JobExecution>> {
        let job_id = job_id.to_string();
        // The single writer thread serializes the count with the release.
        self.write(move |conn| {
            let limit = match budget {
                Some(b) => {
                    let recent = released_since(conn, &job_id, b.since)?;
                    limit.min(release_allowance(b.per_minute, recent))
                }
                None => limit,
            };
            if limit == 0 {
                return Ok(Vec::new());
            }
            let things: Vec<String> = conn
                .prepare_cached(
                    "SELECT thing_name FROM job_pending_things WHERE job_id = ?1
                     ORDER BY thing_name LIMIT ?2",
                )
                .map_err(backend)?
                .query_map(params![job_id, limit as i64], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            let mut created = Vec::with_capacity(things.len());
            let mut delete = conn
                .prepare_cached(
                    "DELETE FROM job_pending_things WHERE job_id = ?1 AND thing_name = ?2",
                )
                .map_err(backend)?;
            for thing in things {
                let e = JobExecution::queued(&job_id, &thing, 1, 0, at);
                if insert_execution_row(conn, &e).map_err(backend)? == 1 {
                    created.push(e);
                }
                delete.execute(params![job_id, thing]).map_err(backend)?;
            }
            bump(conn, &job_id, ExecutionStatus::Queued, created.len() as i64)?;
            Ok(created)
        })
        .await
    }

    async fn insert_execution(&self, execution: &JobExecution) -> StoreResult<()> {
        let e = execution.clone();
        self.write(move |conn| {
            if insert_latest(conn, &e)? {
                Ok(())
            } else {
                Err(codec::execution_exists(&e))
            }
        })
        .await
    }

    async fn get_execution(
        &self,
        job_id: &str,
        thing: &str,
        number: Option<i64>,
    ) -> StoreResult<Option<JobExecution>> {
        let (job_id, thing) = (job_id.to_string(), thing.to_string());
        self.read(move |conn| {
            let result = match number {
                Some(n) => conn
                    .prepare_cached(&format!(
                        "SELECT {EXECUTION_COLUMNS} FROM job_executions
                         WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3"
                    ))
                    .map_err(backend)?
                    .query_row(params![job_id, thing, n], execution_from_row),
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {EXECUTION_COLUMNS} FROM job_executions
                         WHERE job_id = ?1 AND thing_name = ?2 AND latest = 1"
                    ))
                    .map_err(backend)?
                    .query_row(params![job_id, thing], execution_from_row),
            };
            result.optional().map_err(backend)?.transpose()
        })
        .await
    }

    async fn update_execution(
        &self,
        execution: &JobExecution,
        expected_version: i64,
        retry: Option<&JobExecution>,
    ) -> StoreResult<ExecutionWrite> {
        let e = execution.clone();
        let retry = retry.cloned();
        self.write(move |conn| {
            let outcome = update_one(conn, &e, expected_version)?;
            if outcome != CasOutcome::Done {
                return Ok(ExecutionWrite::missed(outcome));
            }
            let retried = match &retry {
                Some(r) => insert_latest(conn, r)?,
                None => false,
            };
            let pending = pending_of(conn, std::slice::from_ref(&e.thing_name))?;
            Ok(ExecutionWrite {
                outcome,
                pending,
                retried,
            })
        })
        .await
    }

    async fn update_executions(
        &self,
        updates: &[(JobExecution, i64)],
    ) -> StoreResult<Vec<CasOutcome>> {
        let updates = updates.to_vec();
        self.write(move |conn| {
            updates
                .iter()
                .map(|(e, expected)| update_one(conn, e, *expected))
                .collect()
        })
        .await
    }

    async fn list_executions_for_job(
        &self,
        job_id: &str,
        status: Option<ExecutionStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<JobExecution>> {
        let job_id = job_id.to_string();
        let page = page.clone();
        self.read(move |conn| {
            let mut args: Vec<Value> = vec![Value::Text(job_id)];
            let mut conditions = vec!["job_id = ?1".to_string(), "latest = 1".to_string()];
            if let Some(s) = status {
                args.push(Value::Text(s.as_str().into()));
                conditions.push(format!("status = ?{}", args.len()));
            }
            if let Some(after) = &page.after {
                args.push(Value::Text(after.clone()));
                conditions.push(format!("thing_name > ?{}", args.len()));
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM job_executions WHERE {}
                     ORDER BY thing_name LIMIT {}",
                    conditions.join(" AND "),
                    page_args(&page)
                ))
                .map_err(backend)?;
            let rows = collect(&mut stmt, params_from_iter(args), execution_from_row)?;
            Ok(Page::from_rows(rows, page.limit, |e| e.thing_name.clone()))
        })
        .await
    }

    async fn list_executions_for_thing(
        &self,
        thing: &str,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<JobExecution>> {
        let thing = thing.to_string();
        let filter = filter.clone();
        let page = page.clone();
        self.read(move |conn| {
            let mut args: Vec<Value> = vec![Value::Text(thing)];
            let mut conditions = vec!["thing_name = ?1".to_string(), "latest = 1".to_string()];
            if let Some(s) = filter.status {
                args.push(Value::Text(s.as_str().into()));
                conditions.push(format!("status = ?{}", args.len()));
            }
            if let Some(job) = &filter.job_id {
                args.push(Value::Text(job.clone()));
                conditions.push(format!("job_id = ?{}", args.len()));
            }
            if let Some(after) = &page.after {
                args.push(Value::Text(after.clone()));
                conditions.push(format!("job_id > ?{}", args.len()));
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM job_executions WHERE {}
                     ORDER BY job_id LIMIT {}",
                    conditions.join(" AND "),
                    page_args(&page)
                ))
                .map_err(backend)?;
            let rows = collect(&mut stmt, params_from_iter(args), execution_from_row)?;
            Ok(Page::from_rows(rows, page.limit, |e| e.job_id.clone()))
        })
        .await
    }

    async fn pending_executions(&self, things: &[String]) -> StoreResult<Vec<JobExecution>> {
        let things = things.to_vec();
        self.read(move |conn| pending_of(conn, &things)).await
    }

    async fn executions_in_status(
        &self,
        job_id: &str,
        statuses: &[ExecutionStatus],
        limit: usize,
    ) -> StoreResult<Vec<JobExecution>> {
        let job_id = job_id.to_string();
        let statuses: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        self.read(move |conn| {
            let marks = (2..statuses.len() + 2)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut args = vec![Value::Text(job_id)];
            args.extend(statuses.iter().map(|s| Value::Text(s.to_string())));
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM job_executions
                     WHERE job_id = ?1 AND status IN ({marks}) ORDER BY thing_name LIMIT {limit}"
                ))
                .map_err(backend)?;
            collect(&mut stmt, params_from_iter(args), execution_from_row)
        })
        .await
    }

    async fn due_executions(&self, at: Timestamp, limit: usize) -> StoreResult<Vec<JobExecution>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM job_executions
                     WHERE timeout_at IS NOT NULL AND timeout_at <= ?1 AND status = 'IN_PROGRESS'
                     ORDER BY timeout_at LIMIT ?2"
                ))
                .map_err(backend)?;
            collect(&mut stmt, params![at.0, limit as i64], execution_from_row)
        })
        .await
    }

    async fn next_execution_timeout(&self) -> StoreResult<Option<Timestamp>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT MIN(timeout_at) FROM job_executions WHERE timeout_at IS NOT NULL",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|t| t.map(Timestamp))
            .map_err(backend)
        })
        .await
    }

    async fn delete_execution(&self, job_id: &str, thing: &str, number: i64) -> StoreResult<bool> {
        let (job_id, thing) = (job_id.to_string(), thing.to_string());
        self.write(move |conn| {
            let current: Option<(String, bool)> = conn
                .query_row(
                    "SELECT status, latest FROM job_executions
                     WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
                    params![job_id, thing, number],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((status, latest)) = current else {
                return Ok(false);
            };
            conn.execute(
                "DELETE FROM job_executions
                 WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
                params![job_id, thing, number],
            )
            .map_err(backend)?;
            if latest {
                bump(conn, &job_id, codec::execution_status(&status)?, -1)?;
                // The thing's previous execution, if any, becomes its latest again.
                let previous: Option<(i64, String)> = conn
                    .query_row(
                        "SELECT execution_number, status FROM job_executions
                         WHERE job_id = ?1 AND thing_name = ?2
                         ORDER BY execution_number DESC LIMIT 1",
                        params![job_id, thing],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(backend)?;
                if let Some((n, s)) = previous {
                    conn.execute(
                        "UPDATE job_executions SET latest = 1
                         WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
                        params![job_id, thing, n],
                    )
                    .map_err(backend)?;
                    bump(conn, &job_id, codec::execution_status(&s)?, 1)?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn insert_job_template(&self, template: &JobTemplate) -> StoreResult<()> {
        let t = template.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO job_templates (template_id, description, document, document_source,
                    config, maintenance_windows, source_job_arn, tags, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    t.template_id,
                    t.description,
                    t.document,
                    t.document_source,
                    to_json(&t.config),
                    to_json(&t.maintenance_windows),
                    t.source_job_arn,
                    to_json(&t.tags),
                    t.created_at.0,
                ],
            )
            .map_err(|e| constraint(e, &t.template_id))?;
            Ok(())
        })
        .await
    }

    async fn get_job_template(&self, template_id: &str) -> StoreResult<Option<JobTemplate>> {
        let id = template_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {TEMPLATE_COLUMNS} FROM job_templates WHERE template_id = ?1"),
                [id],
                template_from_row,
            )
            .optional()
            .map_err(backend)?
            .transpose()
        })
        .await
    }

    async fn list_job_templates(&self, page: &PageRequest) -> StoreResult<Page<JobTemplate>> {
        let page = page.clone();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM job_templates WHERE template_id > ?1
                     ORDER BY template_id LIMIT {}",
                    page_args(&page)
                ))
                .map_err(backend)?;
            let rows = collect(
                &mut stmt,
                [page.after.clone().unwrap_or_default()],
                template_from_row,
            )?;
            Ok(Page::from_rows(rows, page.limit, |t| t.template_id.clone()))
        })
        .await
    }

    async fn delete_job_template(&self, template_id: &str) -> StoreResult<bool> {
        let id = template_id.to_string();
        self.write(move |conn| {
            Ok(conn
                .execute("DELETE FROM job_templates WHERE template_id = ?1", [id])
                .map_err(backend)?
                == 1)
        })
        .await
    }
}

const TEMPLATE_COLUMNS: &str = "template_id, description, document, document_source, config,
    maintenance_windows, source_job_arn, tags, created_at";

fn template_from_row(row: &Row) -> rusqlite::Result<Raw<JobTemplate>> {
    let config: String = row.get(4)?;
    let windows: String = row.get(5)?;
    let tag_text: String = row.get(7)?;
    let template_id: String = row.get(0)?;
    let description: String = row.get(1)?;
    let document: Option<String> = row.get(2)?;
    let document_source: Option<String> = row.get(3)?;
    let source_job_arn: Option<String> = row.get(6)?;
    let created_at: i64 = row.get(8)?;
    Ok((|| {
        Ok(JobTemplate {
            template_id,
            description,
            document,
            document_source,
            config: codec::config(&config)?,
            maintenance_windows: codec::windows(&windows)?,
            source_job_arn,
            tags: tags(&tag_text)?,
            created_at: Timestamp(created_at),
        })
    })())
}
