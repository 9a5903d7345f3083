//! The jobs engine: one task that drives every job forward from what the store says, so
//! nothing it does depends on memory that a restart loses.
//!
//! Each tick (at least once a second, and whenever a change wakes it) it starts SCHEDULED
//! jobs whose start time came, applies a schedule's end (`endBehavior`), cancels jobs whose
//! abort criteria are met, releases the next rollout batch (the rate is recomputed from the
//! executions queued in the last minute; with maintenance windows, only while one is open),
//! completes SNAPSHOT jobs whose executions are all
//! terminal, finishes interrupted deletions, and times out executions whose timers fired.
//! Between ticks it follows registry changes: a thing joining a CONTINUOUS job's target group
//! becomes a rollout target; leaving (or being deleted) makes its pending execution REMOVED.
//!
//! At start, [`Jobs::recover`] repeats what a crash may have cut short: cancellations of
//! executions, retries of failed executions.

use std::time::Duration;

use drover_core::arn::ResourceKind;
use drover_core::jobs::rollout::{RolloutProgress, abort_triggered, rate_per_minute};
use drover_core::jobs::{
    EndBehavior, ExecutionStatus, Job, JobStatus, TargetSelection, remove, schedule, time_out,
};
use drover_core::time::Timestamp;
use drover_store::{EXECUTION_BATCH, JobFilter, PageRequest, ReleaseBudget};
use tokio::sync::{broadcast, watch};

use super::{JobEventKind, Jobs};
use crate::{MembershipEvent, ServiceResult};

/// The longest the engine sleeps between ticks.
const TICK: Duration = Duration::from_secs(1);
/// After a wake-up, the engine waits this long so a burst of device updates costs one tick.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// Timers expired per store round trip.
const TIMER_BATCH: usize = 1_000;
/// The reason code drover records when abort criteria cancel a job (AWS does not document
/// the one it uses).
pub const ABORT_REASON_CODE: &str = "ABORT_CRITERIA_MET";
const MINUTE_MS: i64 = 60_000;

impl Jobs {
    /// Runs the engine until `shutdown` turns true.
    pub async fn run_engine(self, mut shutdown: watch::Receiver<bool>) {
        let mut memberships = self.inner.registry.membership().subscribe();
        let mut deletions = self.inner.registry.membership().subscribe_deletions();
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "jobs engine: recovery failed");
        }
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "jobs engine tick failed");
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.inner.wake.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(TICK) => {}
                event = memberships.recv() => match event {
                    Ok(event) => self.log(self.membership_changed(&event).await),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "jobs engine missed membership events; re-reading CONTINUOUS targets");
                        self.log(self.reconcile_continuous().await);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                deleted = deletions.recv() => match deleted {
                    Ok(thing) => self.log(self.thing_deleted(&thing).await),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn log(&self, result: ServiceResult<()>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "jobs engine");
        }
    }

    /// One pass over every active job and every fired timer.
    pub async fn tick(&self) -> ServiceResult<()> {
        self.inner.touched.lock().expect("touched lock").clear();
        for job in self.inner.store.list_active_jobs().await? {
            let id = job.job_id.clone();
            if let Err(e) = self.drive(job).await {
                tracing::warn!(job = %id, error = %e, "jobs engine could not advance a job");
            }
        }
        self.expire_timers().await
    }

    async fn drive(&self, mut job: Job) -> ServiceResult<()> {
        let now = self.now();
        let when = schedule::stored(job.config.scheduling_config.as_ref());
        match job.status {
            JobStatus::Scheduled => {
                if when.start.is_none_or(|start| start > now) {
                    return Ok(());
                }
                let mut next = job.clone();
                next.status = JobStatus::InProgress;
                next.last_updated_at = now;
                next.version += 1;
                if !self.write_job(&next, job.version).await? {
                    return Ok(());
                }
                job = next;
            }
            JobStatus::DeletionInProgress => return self.finish_deletion(&job).await,
            JobStatus::InProgress => {}
            JobStatus::Canceled | JobStatus::Completed => return Ok(()),
        }
        let ended = when.end.is_some_and(|end| end <= now);
        if ended {
            let behavior = job
                .config
                .scheduling_config
                .as_ref()
                .and_then(|s| s.end_behavior)
                .unwrap_or(EndBehavior::StopRollout);
            match behavior {
                EndBehavior::StopRollout => {
                    self.inner.store.clear_pending_things(&job.job_id).await?;
                }
                EndBehavior::Cancel | EndBehavior::ForceCancel => {
                    self.cancel_job(
                        &job.job_id,
                        behavior == EndBehavior::ForceCancel,
                        None,
                        Some("The job's scheduled end time was reached".into()),
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
        if let Some(criteria) = abort_triggered(job.config.abort_config.as_ref(), &job.process) {
            let comment = format!(
                "Aborted: {:?} failures reached {}% of at least {} executed things",
                criteria.failure_type,
                criteria.threshold_percentage,
                criteria.min_number_of_executed_things
            );
            self.cancel_job(
                &job.job_id,
                false,
                Some(ABORT_REASON_CODE.into()),
                Some(comment),
            )
            .await?;
            return Ok(());
        }
        if !ended {
            self.roll_out(&job, None).await?;
        }
        if job.target_selection == TargetSelection::Snapshot {
            // Not-yet-notified things first, then the counters: a rollout batch turns the
            // former into the latter in one transaction, so in this order a batch released in
            // between shows up in the counters; in the other it could be missed by both reads.
            let unreleased = self.inner.store.count_pending_things(&job.job_id).await?;
            let fresh = self.fresh_job(&job.job_id).await?;
            if fresh.status == JobStatus::InProgress
                && fresh.process.pending() == 0
                && unreleased == 0
            {
                let mut done = fresh.clone();
                done.status = JobStatus::Completed;
                done.completed_at = Some(now);
                done.last_updated_at = now;
                done.version += 1;
                if self.write_job(&done, fresh.version).await? {
                    self.job_event(JobEventKind::Completed, &done).await;
                }
            }
        }
        Ok(())
    }

    /// Releases as many of the job's not-yet-notified things as its rollout rate allows now
    /// (at most `cap`), in store batches, announcing each batch.
    /// With maintenance windows, nothing is released while every window is closed: the
    /// pending things wait (the job stays IN_PROGRESS) and the first tick inside the next
    /// window resumes the rollout.
    pub(crate) async fn roll_out(&self, job: &Job, cap: Option<usize>) -> ServiceResult<()> {
        let now = self.now();
        if !schedule::rollout_open(job.config.scheduling_config.as_ref(), now) {
            return Ok(());
        }
        let rate = rate_per_minute(
            job.config.job_executions_rollout_config.as_ref(),
            RolloutProgress {
                notified: job.process.total(),
                succeeded: job.process.succeeded,
            },
        );
        // The store spends the rate: CreateJob's first release, the engine's ticks and other
        // nodes' engines may release the same job at once.
        let budget = rate.map(|per_minute| ReleaseBudget {
            since: Timestamp(now.millis() - MINUTE_MS + 1),
            per_minute,
        });
        let mut left = cap;
        loop {
            let batch = left.map_or(EXECUTION_BATCH, |c| c.min(EXECUTION_BATCH));
            if batch == 0 {
                return Ok(());
            }
            let created = self
                .inner
                .store
                .release_pending_things(&job.job_id, batch, now, budget)
                .await?;
            self.announce_created(&created).await?;
            if created.len() < batch {
                return Ok(());
            }
            if let Some(c) = left.as_mut() {
                *c -= created.len();
            }
        }
    }

    async fn expire_timers(&self) -> ServiceResult<()> {
        loop {
            let now = self.now();
            let due = self.inner.store.due_executions(now, TIMER_BATCH).await?;
            let full = due.len() == TIMER_BATCH;
            for e in due {
                if let Some(next) = time_out(&e, now) {
                    self.commit_execution(&e, &next).await?;
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// When the next execution timer fires, if any.
    pub async fn next_timer(&self) -> ServiceResult<Option<Timestamp>> {
        Ok(self.inner.store.next_execution_timeout().await?)
    }

    /// Repeats work a crash may have cut short: executions of canceled jobs still pending,
    /// retries not yet queued.
    pub async fn recover(&self) -> ServiceResult<()> {
        let mut after = None;
        loop {
            let page = self
                .inner
                .store
                .list_jobs(
                    &JobFilter {
                        status: Some(JobStatus::Canceled),
                        ..JobFilter::default()
                    },
                    &PageRequest { after, limit: 250 },
                )
                .await?;
            for job in &page.items {
                let force_left = job.force_canceled && job.process.in_progress > 0;
                if job.process.queued > 0 || force_left {
                    self.cancel_executions(job, job.force_canceled).await?;
                }
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for job in self.inner.store.list_active_jobs().await? {
            if job.config.job_executions_retry_config.is_none() {
                continue;
            }
            for status in [ExecutionStatus::Failed, ExecutionStatus::TimedOut] {
                let mut after = None;
                loop {
                    let page = self
                        .inner
                        .store
                        .list_executions_for_job(
                            &job.job_id,
                            Some(status),
                            &PageRequest { after, limit: 1000 },
                        )
                        .await?;
                    for e in &page.items {
                        self.maybe_retry(e).await?;
                    }
                    match page.next_after {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a CONTINUOUS job targets `group` (itself, or one of its ancestors).
    async fn targets_group(&self, job: &Job, group: &str) -> ServiceResult<bool> {
        let scope = &self.inner.scope;
        if job
            .targets
            .iter()
            .any(|t| scope.parse(ResourceKind::ThingGroup, t) == Some(group))
        {
            return Ok(true);
        }
        let ancestors = match self.inner.registry.describe_thing_group(group).await {
            Ok(g) => g.ancestors,
            Err(_) => return Ok(false),
        };
        Ok(job.targets.iter().any(|t| {
            scope
                .parse(ResourceKind::ThingGroup, t)
                .is_some_and(|g| ancestors.iter().any(|a| a == g))
        }))
    }

    /// Whether `thing` is still among a job's targets by any route.
    async fn still_targeted(&self, job: &Job, thing: &str) -> ServiceResult<bool> {
        if job.targets.contains(&self.inner.scope.thing(thing)) {
            return Ok(true);
        }
        let groups = self
            .inner
            .store
            .list_groups_for_thing(
                thing,
                &PageRequest {
                    after: None,
                    limit: 250,
                },
            )
            .await?
            .items;
        for g in groups {
            if self.targets_group(job, &g).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn continuous_jobs(&self) -> ServiceResult<Vec<Job>> {
        Ok(self
            .inner
            .store
            .list_active_jobs()
            .await?
            .into_iter()
            .filter(|j| {
                j.target_selection == TargetSelection::Continuous
                    && matches!(j.status, JobStatus::InProgress | JobStatus::Scheduled)
            })
            .collect())
    }

    /// A thing joined or left a group: CONTINUOUS jobs targeting the group gain it as a
    /// target, or lose it (its pending execution becomes REMOVED).
    pub async fn membership_changed(&self, event: &MembershipEvent) -> ServiceResult<()> {
        for job in self.continuous_jobs().await? {
            if !self.targets_group(&job, &event.group).await? {
                continue;
            }
            if event.joined {
                if self
                    .inner
                    .store
                    .add_pending_things(&job.job_id, std::slice::from_ref(&event.thing))
                    .await?
                    > 0
                {
                    self.inner.wake.notify_one();
                }
            } else if !self.still_targeted(&job, &event.thing).await? {
                self.inner
                    .store
                    .remove_pending_thing(&job.job_id, &event.thing)
                    .await?;
                self.remove_execution(&job.job_id, &event.thing).await?;
            }
        }
        Ok(())
    }

    async fn remove_execution(&self, job_id: &str, thing: &str) -> ServiceResult<()> {
        loop {
            let Some(current) = self.inner.store.get_execution(job_id, thing, None).await? else {
                return Ok(());
            };
            let Some(next) = remove(&current, self.now()) else {
                return Ok(());
            };
            if self.commit_execution(&current, &next).await? {
                return Ok(());
            }
        }
    }

    /// A deleted thing's pending executions become REMOVED, and no rollout reaches it.
    pub async fn thing_deleted(&self, thing: &str) -> ServiceResult<()> {
        for job in self.inner.store.list_active_jobs().await? {
            self.inner
                .store
                .remove_pending_thing(&job.job_id, thing)
                .await?;
        }
        let pending = self
            .inner
            .store
            .pending_executions(&[thing.to_string()])
            .await?;
        for e in pending {
            self.remove_execution(&e.job_id, thing).await?;
        }
        Ok(())
    }

    /// Re-reads the targets of every CONTINUOUS job (after missed membership events): things
    /// now in a target group become targets. Leaves are caught by the next change.
    pub async fn reconcile_continuous(&self) -> ServiceResult<()> {
        for job in self.continuous_jobs().await? {
            let things = self.resolve_targets(&job.targets).await?;
            self.inner
                .store
                .add_pending_things(&job.job_id, &things)
                .await?;
        }
        self.inner.wake.notify_one();
        Ok(())
    }
}
