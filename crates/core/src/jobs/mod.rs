//! AWS IoT Jobs, the pure half: jobs and job executions as records, their statuses and the
//! exact transition rules between them, the job's configuration (rollout, abort, timeouts,
//! retries, scheduling, presigned URLs) with AWS's limits, job documents and template
//! parameters, and the order of a thing's pending executions that `notify-next` follows.
//!
//! Nothing here reads a clock or the store: the services pass `now` and records in and
//! persist what comes out. Every rule about what a job or an execution may become lives here
//! once; the MQTT, HTTPS and control-plane paths all reach it through the jobs service.

pub mod config;
pub mod cron;
pub mod document;
pub mod execution;
pub mod pending;
pub mod rollout;
pub mod schedule;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::registry::Tag;
use crate::time::Timestamp;

pub use config::*;
pub use execution::*;

/// `jobId` / `jobTemplateId`: 1..=64 characters of `[a-zA-Z0-9_-]`.
pub const MAX_JOB_ID_LEN: usize = 64;
/// `targets`: at most 100 thing or thing-group ARNs per job.
pub const MAX_TARGETS: usize = 100;
/// Each target ARN: at most 2048 characters.
pub const MAX_TARGET_LEN: usize = 2048;
/// `description` and `comment`: at most 2028 characters without control characters.
pub const MAX_JOB_DESCRIPTION_LEN: usize = 2028;
/// `reasonCode`: at most 128 characters of `[\p{Upper}\p{Digit}_]`.
pub const MAX_REASON_CODE_LEN: usize = 128;
/// `documentSource`: at most 1350 characters.
pub const MAX_DOCUMENT_SOURCE_LEN: usize = 1350;

/// Checks a `jobId` (or `jobTemplateId`, same shape).
pub fn check_job_id(member: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.len() > MAX_JOB_ID_LEN {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
             constraint: Member must have length between 1 and {MAX_JOB_ID_LEN}"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
        )));
    }
    Ok(())
}

/// `description` and `comment`: `[^\p{C}]+`, at most 2028 characters.
pub fn check_job_text(member: &str, value: &str) -> Result<(), ValidationError> {
    if value.chars().count() > MAX_JOB_DESCRIPTION_LEN {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_JOB_DESCRIPTION_LEN}"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [^\\p{{C}}]+"
        )));
    }
    Ok(())
}

/// `reasonCode`: `[\p{Upper}\p{Digit}_]+`, at most 128 characters.
pub fn check_reason_code(value: &str) -> Result<(), ValidationError> {
    if value.len() > MAX_REASON_CODE_LEN
        || !value
            .chars()
            .all(|c| c.is_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ValidationError::new(format!(
            "1 validation error detected: Value '{value}' at 'reasonCode' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [\\p{{Upper}}\\p{{Digit}}_]+"
        )));
    }
    Ok(())
}

/// A job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    InProgress,
    Canceled,
    DeletionInProgress,
    Completed,
    Scheduled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Canceled => "CANCELED",
            Self::DeletionInProgress => "DELETION_IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Scheduled => "SCHEDULED",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Ok(match value {
            "IN_PROGRESS" => Self::InProgress,
            "CANCELED" => Self::Canceled,
            "DELETION_IN_PROGRESS" => Self::DeletionInProgress,
            "COMPLETED" => Self::Completed,
            "SCHEDULED" => Self::Scheduled,
            other => {
                return Err(ValidationError::new(format!(
                    "'{other}' is not a job status: IN_PROGRESS, CANCELED, COMPLETED, \
                     DELETION_IN_PROGRESS or SCHEDULED"
                )));
            }
        })
    }

    /// A job that will not create or change executions any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Canceled | Self::Completed | Self::DeletionInProgress
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `targetSelection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetSelection {
    #[default]
    Snapshot,
    Continuous,
}

impl TargetSelection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "SNAPSHOT",
            Self::Continuous => "CONTINUOUS",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "SNAPSHOT" => Ok(Self::Snapshot),
            "CONTINUOUS" => Ok(Self::Continuous),
            other => Err(ValidationError::new(format!(
                "'{other}' is not a target selection: SNAPSHOT or CONTINUOUS"
            ))),
        }
    }
}

/// `jobProcessDetails`: how many things' latest executions are in each status. A retried
/// thing counts once, by its newest execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCounts {
    pub queued: i64,
    pub in_progress: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub rejected: i64,
    pub canceled: i64,
    pub removed: i64,
    pub timed_out: i64,
}

impl ProcessCounts {
    /// Adds `delta` things in `status`.
    pub fn add(&mut self, status: ExecutionStatus, delta: i64) {
        let slot = match status {
            ExecutionStatus::Queued => &mut self.queued,
            ExecutionStatus::InProgress => &mut self.in_progress,
            ExecutionStatus::Succeeded => &mut self.succeeded,
            ExecutionStatus::Failed => &mut self.failed,
            ExecutionStatus::Rejected => &mut self.rejected,
            ExecutionStatus::Canceled => &mut self.canceled,
            ExecutionStatus::Removed => &mut self.removed,
            ExecutionStatus::TimedOut => &mut self.timed_out,
        };
        *slot += delta;
    }

    pub fn get(&self, status: ExecutionStatus) -> i64 {
        match status {
            ExecutionStatus::Queued => self.queued,
            ExecutionStatus::InProgress => self.in_progress,
            ExecutionStatus::Succeeded => self.succeeded,
            ExecutionStatus::Failed => self.failed,
            ExecutionStatus::Rejected => self.rejected,
            ExecutionStatus::Canceled => self.canceled,
            ExecutionStatus::Removed => self.removed,
            ExecutionStatus::TimedOut => self.timed_out,
        }
    }

    /// Things whose execution is still QUEUED or IN_PROGRESS.
    pub fn pending(&self) -> i64 {
        self.queued + self.in_progress
    }

    /// Things whose execution reached a terminal status.
    pub fn terminal(&self) -> i64 {
        self.succeeded + self.failed + self.rejected + self.canceled + self.removed + self.timed_out
    }

    /// Every thing that has an execution.
    pub fn total(&self) -> i64 {
        self.pending() + self.terminal()
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub status: JobStatus,
    pub target_selection: TargetSelection,
    /// Thing and thing-group ARNs, as given.
    pub targets: Vec<String>,
    /// The document devices receive (template parameters already substituted).
    pub document: String,
    /// The document before `${aws:iot:parameter:...}` substitution, when it had parameters.
    pub document_before_substitution: Option<String>,
    pub document_source: Option<String>,
    pub description: Option<String>,
    pub config: JobConfig,
    pub document_parameters: BTreeMap<String, String>,
    pub job_template_arn: Option<String>,
    pub namespace_id: Option<String>,
    pub tags: Vec<Tag>,
    pub force_canceled: bool,
    pub reason_code: Option<String>,
    pub comment: Option<String>,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Incremented by every change to the job record; the store's compare-and-swap key.
    pub version: i64,
    /// Maintained by the store from the executions; ignored on writes.
    pub process: ProcessCounts,
}

impl Job {
    /// The in-progress timeout executions of this job get, in minutes.
    pub fn in_progress_timeout_minutes(&self) -> Option<i64> {
        self.config
            .timeout_config
            .as_ref()
            .and_then(|t| t.in_progress_timeout_in_minutes)
    }

    /// Whether a thing's failed execution should be queued again, and as which attempt.
    pub fn retry_after(&self, status: ExecutionStatus, retry_attempt: i64) -> bool {
        rollout::should_retry(
            self.config.job_executions_retry_config.as_ref(),
            status,
            retry_attempt,
        )
    }
}

/// A job template as stored (CreateJobTemplate).
#[derive(Debug, Clone, PartialEq)]
pub struct JobTemplate {
    pub template_id: String,
    pub description: String,
    pub document: Option<String>,
    pub document_source: Option<String>,
    pub config: JobConfig,
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// The job this template was made from, when `jobArn` was given.
    pub source_job_arn: Option<String>,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_follow_the_pattern() {
        for ok in ["a", "job-1_x", &"x".repeat(64)] {
            assert!(check_job_id("jobId", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a.b", &"x".repeat(65), "é"] {
            assert!(check_job_id("jobId", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_and_reason_codes() {
        assert!(check_job_text("description", "Update to 2.0 (safe)").is_ok());
        assert!(check_job_text("description", "line\nbreak").is_err());
        assert!(check_job_text("comment", &"x".repeat(2029)).is_err());
        assert!(check_reason_code("TOO_MANY_FAILURES_2").is_ok());
        assert!(check_reason_code("lower").is_err());
        assert!(check_reason_code(&"A".repeat(129)).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            JobStatus::InProgress,
            JobStatus::Canceled,
            JobStatus::DeletionInProgress,
            JobStatus::Completed,
            JobStatus::Scheduled,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(JobStatus::parse("DONE").is_err());
        assert_eq!(
            TargetSelection::parse("CONTINUOUS").unwrap(),
            TargetSelection::Continuous
        );
        assert!(TargetSelection::parse("snapshot").is_err());
    }

    #[test]
    fn process_counts_follow_latest_statuses() {
        let mut c = ProcessCounts::default();
        c.add(ExecutionStatus::Queued, 3);
        c.add(ExecutionStatus::Queued, -1);
        c.add(ExecutionStatus::Succeeded, 1);
        assert_eq!(c.pending(), 2);
        assert_eq!(c.terminal(), 1);
        assert_eq!(c.total(), 3);
        assert_eq!(c.get(ExecutionStatus::Succeeded), 1);
    }
}
