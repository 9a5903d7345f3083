//! What a change announces: `notify` when a thing's pending list changes, `notify-next` when
//! its first pending execution changes (also to "nothing left"), and, when enabled by the
//! event configuration, `$aws/events/jobExecution/...` and `$aws/events/job/...` events.
//! The transport renders them (see [`crate::jobs::JobPublisher`]).

use std::collections::HashMap;

use drover_core::jobs::pending::{next_key, next_key_before, sorted};
use drover_core::jobs::{Job, JobExecution};
use drover_core::time::Timestamp;

use super::Jobs;
use crate::ServiceResult;

/// An execution as a device receives it: with its document (placeholders filled) when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub execution: JobExecution,
    pub document: Option<String>,
    /// When it was read, for `approximateSecondsBeforeTimedOut` and `timestamp`.
    pub at: Timestamp,
}

/// The job events' operations (`$aws/events/job/{jobId}/{operation}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEventKind {
    Completed,
    Canceled,
    Deleted,
    CancellationInProgress,
    DeletionInProgress,
}

impl JobEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Canceled => "canceled",
            Self::Deleted => "deleted",
            Self::CancellationInProgress => "cancellation_in_progress",
            Self::DeletionInProgress => "deletion_in_progress",
        }
    }
}

/// One announcement, in the order changes happened.
#[derive(Debug, Clone, PartialEq)]
pub enum JobNotification {
    /// `$aws/things/{thing}/jobs/notify`: the thing's pending executions, in order.
    Notify {
        thing: String,
        pending: Vec<JobExecution>,
        at: Timestamp,
    },
    /// `$aws/things/{thing}/jobs/notify-next`: the first pending execution, or none left.
    NotifyNext {
        thing: String,
        next: Option<Delivery>,
        at: Timestamp,
    },
    /// `$aws/events/job/{jobId}/{kind}`.
    JobEvent {
        kind: JobEventKind,
        job: Box<Job>,
        job_arn: String,
        at: Timestamp,
    },
    /// `$aws/events/jobExecution/{jobId}/{status}`.
    ExecutionEvent {
        execution: JobExecution,
        thing_arn: String,
        at: Timestamp,
    },
}

impl Jobs {
    /// Announces one execution change on its thing: `notify` when the pending list changed
    /// (an execution arrived, left or changed status), `notify-next` when its head changed.
    pub(crate) async fn announce(
        &self,
        thing: &str,
        before: Option<&JobExecution>,
        after: &JobExecution,
    ) -> ServiceResult<()> {
        let pending = sorted(
            self.inner
                .store
                .pending_executions(&[thing.to_string()])
                .await?,
        );
        self.announce_with(thing, &pending, before, after).await
    }

    pub(crate) async fn announce_with(
        &self,
        thing: &str,
        pending: &[JobExecution],
        before: Option<&JobExecution>,
        after: &JobExecution,
    ) -> ServiceResult<()> {
        let at = self.now();
        if before.map(|b| b.status) != Some(after.status) {
            self.publish(JobNotification::Notify {
                thing: thing.to_string(),
                pending: pending.to_vec(),
                at,
            });
        }
        if next_key_before(pending, after, before) != next_key(pending) {
            let next = match pending.first() {
                Some(first) => Some(Delivery {
                    execution: first.clone(),
                    document: Some(self.document_for(first).await?),
                    at,
                }),
                None => None,
            };
            self.publish(JobNotification::NotifyNext {
                thing: thing.to_string(),
                next,
                at,
            });
        }
        Ok(())
    }

    /// Announces executions created in bulk (a rollout batch), reading the things' pending
    /// lists in one query.
    pub(crate) async fn announce_created(&self, created: &[JobExecution]) -> ServiceResult<()> {
        if created.is_empty() {
            return Ok(());
        }
        let things: Vec<String> = created.iter().map(|e| e.thing_name.clone()).collect();
        let mut by_thing: HashMap<String, Vec<JobExecution>> = HashMap::new();
        for e in self.inner.store.pending_executions(&things).await? {
            by_thing.entry(e.thing_name.clone()).or_default().push(e);
        }
        for e in created {
            let pending = sorted(by_thing.remove(&e.thing_name).unwrap_or_default());
            self.announce_with(&e.thing_name, &pending, None, e).await?;
        }
        Ok(())
    }

    /// A thing's pending list lost an execution that no longer exists (deleted job or
    /// execution): `notify`, and `notify-next` when it was the head.
    pub(crate) async fn announce_gone(&self, gone: &JobExecution) -> ServiceResult<()> {
        let mut after = gone.clone();
        after.status = drover_core::jobs::ExecutionStatus::Removed;
        self.announce(&gone.thing_name, Some(gone), &after).await
    }

    pub(crate) async fn execution_event(&self, execution: &JobExecution) {
        if self.inner.events.enabled("JOB_EXECUTION").await {
            self.publish(JobNotification::ExecutionEvent {
                execution: execution.clone(),
                thing_arn: self.inner.scope.thing(&execution.thing_name),
                at: self.now(),
            });
        }
    }

    pub(crate) async fn job_event(&self, kind: JobEventKind, job: &Job) {
        if self.inner.events.enabled("JOB").await {
            self.publish(JobNotification::JobEvent {
                kind,
                job: Box::new(job.clone()),
                job_arn: self.job_arn(&job.job_id),
                at: self.now(),
            });
        }
    }
}
