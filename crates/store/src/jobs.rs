//! What the jobs service persists: jobs, their executions (keyed by job, thing and
//! execution number), the things a rollout has not notified yet, and job templates.
//!
//! A separate trait from the registry's so the jobs records stay in one place; every
//! [`crate::Store`] implements it. The store keeps `jobProcessDetails` counters on the job
//! row in the same transaction as every execution write, so DescribeJob and the abort
//! check never count executions. Execution writes are compare-and-swap on `versionNumber`.

use async_trait::async_trait;
use drover_core::jobs::{
    ExecutionStatus, Job, JobExecution, JobStatus, JobTemplate, TargetSelection,
};
use drover_core::time::Timestamp;

use crate::{CasOutcome, Page, PageRequest, StoreResult};

/// How many rows one transaction writes when the store creates executions in bulk: large
/// enough to amortise the commit, small enough that device updates waiting behind it are
/// answered promptly.
pub const EXECUTION_BATCH: usize = 2_000;

/// What [`JobStore::update_execution`] did: the compare-and-swap outcome and, when it wrote,
/// the thing's pending executions after the write (empty otherwise) and whether the retry it
/// was given was queued (`false` when that execution number existed already).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionWrite {
    pub outcome: CasOutcome,
    pub pending: Vec<JobExecution>,
    pub retried: bool,
}

impl ExecutionWrite {
    /// A compare-and-swap that did not write.
    pub fn missed(outcome: CasOutcome) -> Self {
        Self {
            outcome,
            pending: Vec::new(),
            retried: false,
        }
    }
}

/// A rollout rate a release stays within: at most `per_minute` first executions of the job
/// queued at or after `since`, those already released included. The store counts and
/// releases in one serialized step, so releases racing on one node, or on several nodes
/// sharing PostgreSQL, cannot spend the same minute's allowance twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseBudget {
    pub since: Timestamp,
    pub per_minute: i64,
}

/// ListJobs filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub target_selection: Option<TargetSelection>,
    /// Jobs with this ARN among their targets.
    pub target: Option<String>,
    pub namespace_id: Option<String>,
}

/// ListJobExecutionsForThing / ListJobExecutionsForJob filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub status: Option<ExecutionStatus>,
    pub job_id: Option<String>,
}

#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job and the things its rollout will notify, in one transaction. Fails
    /// with [`crate::StoreError::AlreadyExists`] when the id is taken.
    async fn insert_job(&self, job: &Job, pending_things: &[String]) -> StoreResult<()>;
    /// The job with its current `process` counters.
    async fn get_job(&self, job_id: &str) -> StoreResult<Option<Job>>;
    /// Replaces the job's own fields (not its counters) if its version is `expected_version`.
    async fn replace_job(&self, job: &Job, expected_version: i64) -> StoreResult<CasOutcome>;
    /// Jobs in id order.
    async fn list_jobs(&self, filter: &JobFilter, page: &PageRequest) -> StoreResult<Page<Job>>;
    /// Jobs the engine still drives: SCHEDULED, IN_PROGRESS and DELETION_IN_PROGRESS.
    async fn list_active_jobs(&self) -> StoreResult<Vec<Job>>;
    /// Deletes the job with its executions and pending things; `false` if it did not exist.
    async fn delete_job(&self, job_id: &str) -> StoreResult<bool>;

    /// Adds things a rollout will notify; things already pending or with an execution of
    /// this job are skipped. Returns how many were added.
    async fn add_pending_things(&self, job_id: &str, things: &[String]) -> StoreResult<u64>;
    /// Things not notified yet, in name order, at most `limit`.
    async fn list_pending_things(&self, job_id: &str, limit: usize) -> StoreResult<Vec<String>>;
    async fn count_pending_things(&self, job_id: &str) -> StoreResult<i64>;
    /// Drops a thing from the rollout (it left a CONTINUOUS job's groups before notification).
    async fn remove_pending_thing(&self, job_id: &str, thing: &str) -> StoreResult<bool>;
    /// Drops every thing not notified yet (the rollout stopped); returns how many.
    async fn clear_pending_things(&self, job_id: &str) -> StoreResult<u64>;
    /// Turns up to `limit` pending things (name order) into QUEUED executions number 1,
    /// queued at `at`, in one transaction; returns the new executions. With a `budget`, fewer
    /// when the job's rollout rate allows fewer (see [`ReleaseBudget`]).
    async fn release_pending_things(
        &self,
        job_id: &str,
        limit: usize,
        at: Timestamp,
        budget: Option<ReleaseBudget>,
    ) -> StoreResult<Vec<JobExecution>>;

    /// Adds an execution (a retry, or a CONTINUOUS job reaching a thing directly); it becomes
    /// the thing's latest for the job. Fails with `AlreadyExists` when the key is taken.
    async fn insert_execution(&self, execution: &JobExecution) -> StoreResult<()>;
    /// An execution by number, or the thing's latest for the job when `number` is `None`.
    async fn get_execution(
        &self,
        job_id: &str,
        thing: &str,
        number: Option<i64>,
    ) -> StoreResult<Option<JobExecution>>;
    /// Replaces an execution if its stored `versionNumber` is `expected_version`. A written
    /// change also answers with the thing's pending executions (QUEUED and IN_PROGRESS, any
    /// order) as the same transaction sees them: the notifications a change causes depend on
    /// them, and reading them here saves every device update a second round trip.
    /// `retry`, the next execution number a FAILED or TIMED_OUT change earns, is queued in the
    /// same transaction (as [`JobStore::insert_execution`] would): between two transactions the
    /// job would look finished for a moment and could be completed with its retry still to come.
    async fn update_execution(
        &self,
        execution: &JobExecution,
        expected_version: i64,
        retry: Option<&JobExecution>,
    ) -> StoreResult<ExecutionWrite>;
    /// Several compare-and-swap replacements in one transaction; one outcome per input.
    async fn update_executions(
        &self,
        updates: &[(JobExecution, i64)],
    ) -> StoreResult<Vec<CasOutcome>>;
    /// Each thing's latest execution of the job, in thing-name order.
    async fn list_executions_for_job(
        &self,
        job_id: &str,
        status: Option<ExecutionStatus>,
        page: &PageRequest,
    ) -> StoreResult<Page<JobExecution>>;
    /// The thing's latest execution of each job, in job-id order.
    async fn list_executions_for_thing(
        &self,
        thing: &str,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<JobExecution>>;
    /// Every QUEUED or IN_PROGRESS execution of the given things, any order.
    async fn pending_executions(&self, things: &[String]) -> StoreResult<Vec<JobExecution>>;
    /// Up to `limit` executions of the job in one of `statuses`.
    async fn executions_in_status(
        &self,
        job_id: &str,
        statuses: &[ExecutionStatus],
        limit: usize,
    ) -> StoreResult<Vec<JobExecution>>;
    /// IN_PROGRESS executions whose earlier timer is at or before `at`, at most `limit`.
    async fn due_executions(&self, at: Timestamp, limit: usize) -> StoreResult<Vec<JobExecution>>;
    /// The earliest timer of any IN_PROGRESS execution.
    async fn next_execution_timeout(&self) -> StoreResult<Option<Timestamp>>;
    /// Deletes one execution; `false` if it did not exist.
    async fn delete_execution(&self, job_id: &str, thing: &str, number: i64) -> StoreResult<bool>;

    /// Fails with `AlreadyExists` when the id is taken.
    async fn insert_job_template(&self, template: &JobTemplate) -> StoreResult<()>;
    async fn get_job_template(&self, template_id: &str) -> StoreResult<Option<JobTemplate>>;
    async fn list_job_templates(&self, page: &PageRequest) -> StoreResult<Page<JobTemplate>>;
    async fn delete_job_template(&self, template_id: &str) -> StoreResult<bool>;
}

/// Both backends' encodings of the jobs columns.
pub(crate) mod codec {
    use drover_core::jobs::{
        ExecutionStatus, JobConfig, JobExecution, JobStatus, MaintenanceWindow, StatusDetails,
        TargetSelection,
    };

    use crate::StoreError;

    /// The error for an execution whose (job, thing, number) key is taken.
    pub fn execution_exists(e: &JobExecution) -> StoreError {
        StoreError::AlreadyExists(format!(
            "{}/{}/{}",
            e.job_id, e.thing_name, e.execution_number
        ))
    }

    fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend(format!("corrupt {what}: {e}"))
    }

    pub fn job_status(text: &str) -> Result<JobStatus, StoreError> {
        JobStatus::parse(text).map_err(|e| corrupt("job status", e))
    }

    pub fn execution_status(text: &str) -> Result<ExecutionStatus, StoreError> {
        ExecutionStatus::parse(text).map_err(|e| corrupt("execution status", e))
    }

    pub fn target_selection(text: &str) -> Result<TargetSelection, StoreError> {
        TargetSelection::parse(text).map_err(|e| corrupt("target selection", e))
    }

    pub fn config(text: &str) -> Result<JobConfig, StoreError> {
        serde_json::from_str(text).map_err(|e| corrupt("job configuration", e))
    }

    pub fn details(text: &str) -> Result<StatusDetails, StoreError> {
        serde_json::from_str(text).map_err(|e| corrupt("status details", e))
    }

    pub fn parameters(
        text: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        serde_json::from_str(text).map_err(|e| corrupt("document parameters", e))
    }

    pub fn windows(text: &str) -> Result<Vec<MaintenanceWindow>, StoreError> {
        serde_json::from_str(text).map_err(|e| corrupt("maintenance windows", e))
    }

    /// The column names of the counters, in [`ExecutionStatus::ALL`] order.
    pub const COUNTER_COLUMNS: [&str; 8] = [
        "n_queued",
        "n_in_progress",
        "n_succeeded",
        "n_failed",
        "n_timed_out",
        "n_rejected",
        "n_removed",
        "n_canceled",
    ];

    pub fn counter_column(status: ExecutionStatus) -> &'static str {
        let i = ExecutionStatus::ALL
            .iter()
            .position(|s| *s == status)
            .expect("ALL lists every status");
        COUNTER_COLUMNS[i]
    }

    /// The earlier of an execution's two timers, kept in its own indexed column.
    pub fn timeout_at(e: &drover_core::jobs::JobExecution) -> Option<i64> {
        e.timeout_at().map(|t| t.0)
    }
}
