//! Job executions: their statuses and AWS's transition rules, for what a device may ask
//! (UpdateJobExecution, StartNextPendingJobExecution, the MQTT `update` and `start-next`
//! topics) and for what only the service does (cancel, time out, remove), with
//! `versionNumber`, `expectedVersion` and the in-progress and step timers.
//!
//! | from → to | who |
//! |---|---|
//! | QUEUED → IN_PROGRESS, SUCCEEDED, FAILED, REJECTED | device |
//! | IN_PROGRESS → IN_PROGRESS, SUCCEEDED, FAILED, REJECTED | device |
//! | IN_PROGRESS → TIMED_OUT | service (in-progress or step timer) |
//! | QUEUED → CANCELED; IN_PROGRESS → CANCELED with force | service (cancel, abort, schedule end) |
//! | QUEUED, IN_PROGRESS → REMOVED | service (thing deleted, or left a CONTINUOUS job's group) |
//! | terminal → anything | nobody |

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::jobs::config::MAX_TIMEOUT_MINUTES;
use crate::time::Timestamp;

/// `statusDetails`: keys are `Name`s (`[a-zA-Z0-9:_-]+`, ≤128), values 1..=1024 characters
/// without control characters.
pub type StatusDetails = BTreeMap<String, String>;

/// Value length limit for `statusDetails`.
pub const MAX_STATUS_DETAIL_VALUE_LEN: usize = 1024;

/// A job execution's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
    Rejected,
    Removed,
    Canceled,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 8] = [
        Self::Queued,
        Self::InProgress,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Rejected,
        Self::Removed,
        Self::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::InProgress => "IN_PROGRESS",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Rejected => "REJECTED",
            Self::Removed => "REMOVED",
            Self::Canceled => "CANCELED",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                ValidationError::new(format!(
                    "'{value}' is not a job execution status: QUEUED, IN_PROGRESS, SUCCEEDED, \
                     FAILED, TIMED_OUT, REJECTED, REMOVED or CANCELED"
                ))
            })
    }

    /// Every status but QUEUED and IN_PROGRESS is final.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::InProgress)
    }

    /// The statuses a device may report.
    pub fn is_device_settable(self) -> bool {
        matches!(
            self,
            Self::InProgress | Self::Succeeded | Self::Failed | Self::Rejected
        )
    }

    /// The lower-case name used in `$aws/events/jobExecution/{jobId}/{status}`.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Rejected => "rejected",
            Self::Removed => "removed",
            Self::Canceled => "canceled",
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job execution: a job on one thing. A retry is a new execution with the next
/// `execution_number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobExecution {
    pub job_id: String,
    pub thing_name: String,
    pub execution_number: i64,
    pub status: ExecutionStatus,
    pub status_details: StatusDetails,
    pub force_canceled: bool,
    pub queued_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub last_updated_at: Timestamp,
    /// Starts at 1; every change adds one. The compare-and-swap key.
    pub version_number: i64,
    /// 0 for the first execution, then one more per retry.
    pub retry_attempt: i64,
    /// When the in-progress timer (`timeoutConfig`) fires; set when the execution starts.
    pub in_progress_timeout_at: Option<Timestamp>,
    /// When the step timer (`stepTimeoutInMinutes`) fires.
    pub step_timeout_at: Option<Timestamp>,
}

impl JobExecution {
    /// A new QUEUED execution.
    pub fn queued(
        job_id: &str,
        thing_name: &str,
        execution_number: i64,
        retry_attempt: i64,
        now: Timestamp,
    ) -> Self {
        JobExecution {
            job_id: job_id.to_string(),
            thing_name: thing_name.to_string(),
            execution_number,
            status: ExecutionStatus::Queued,
            status_details: StatusDetails::new(),
            force_canceled: false,
            queued_at: now,
            started_at: None,
            last_updated_at: now,
            version_number: 1,
            retry_attempt,
            in_progress_timeout_at: None,
            step_timeout_at: None,
        }
    }

    /// The earlier of the two timers, if any runs.
    pub fn timeout_at(&self) -> Option<Timestamp> {
        match (self.in_progress_timeout_at, self.step_timeout_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `approximateSecondsBeforeTimedOut`: whole seconds until the first timer fires.
    pub fn seconds_before_timed_out(&self, now: Timestamp) -> Option<i64> {
        self.timeout_at()
            .map(|t| ((t.millis() - now.millis()).max(0) + 999) / 1000)
    }
}

/// Why a transition was refused. Each maps to one rejection code on the device APIs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// `expectedVersion` is not the current `versionNumber`.
    #[error("expected version {expected} but the job execution is at version {current}")]
    VersionMismatch { expected: i64, current: i64 },
    /// The execution already reached a terminal status.
    #[error("the job execution is already in the terminal status {0}")]
    TerminalState(ExecutionStatus),
    /// A status change the rules do not allow.
    #[error("the job execution cannot change from {from} to {to}")]
    InvalidTransition {
        from: ExecutionStatus,
        to: ExecutionStatus,
    },
    /// Malformed content (status details, step timeout).
    #[error("{0}")]
    InvalidRequest(String),
}

/// What a device sends to change its execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceUpdate {
    pub status: Option<ExecutionStatus>,
    pub status_details: Option<StatusDetails>,
    pub expected_version: Option<i64>,
    /// 1..=10080, or -1 to stop the step timer.
    pub step_timeout_in_minutes: Option<i64>,
}

/// Checks `statusDetails` keys and values.
pub fn check_status_details(details: &StatusDetails) -> Result<(), TransitionError> {
    for (key, value) in details {
        crate::names::check_name("statusDetails key", key)
            .map_err(|e| TransitionError::InvalidRequest(e.0))?;
        if value.is_empty()
            || value.chars().count() > MAX_STATUS_DETAIL_VALUE_LEN
            || value.chars().any(char::is_control)
        {
            return Err(TransitionError::InvalidRequest(format!(
                "statusDetails value of '{key}' must be 1 to {MAX_STATUS_DETAIL_VALUE_LEN} \
                 characters without control characters"
            )));
        }
    }
    Ok(())
}

/// Checks `stepTimeoutInMinutes`: 1..=10080, or -1 (stop the step timer).
pub fn check_step_timeout(minutes: Option<i64>) -> Result<(), TransitionError> {
    match minutes {
        None | Some(-1) => Ok(()),
        Some(m) if (1..=MAX_TIMEOUT_MINUTES).contains(&m) => Ok(()),
        Some(m) => Err(TransitionError::InvalidRequest(format!(
            "stepTimeoutInMinutes must be between 1 and {MAX_TIMEOUT_MINUTES} (or -1), not {m}"
        ))),
    }
}

const MINUTE_MS: i64 = 60_000;

/// Applies a device's update: the next record, or why not. `in_progress_timeout_minutes` is
/// the job's `timeoutConfig`. The version check comes first, so a stale device learns the
/// current state before anything else.
pub fn apply_device_update(
    current: &JobExecution,
    update: &DeviceUpdate,
    in_progress_timeout_minutes: Option<i64>,
    now: Timestamp,
) -> Result<JobExecution, TransitionError> {
    if let Some(details) = &update.status_details {
        check_status_details(details)?;
    }
    check_step_timeout(update.step_timeout_in_minutes)?;
    let Some(to) = update.status else {
        return Err(TransitionError::InvalidRequest(
            "status is required".to_string(),
        ));
    };
    if let Some(expected) = update.expected_version
        && expected != current.version_number
    {
        return Err(TransitionError::VersionMismatch {
            expected,
            current: current.version_number,
        });
    }
    if current.status.is_terminal() {
        return Err(TransitionError::TerminalState(current.status));
    }
    if !to.is_device_settable() {
        return Err(TransitionError::InvalidTransition {
            from: current.status,
            to,
        });
    }
    let mut next = current.clone();
    next.status = to;
    if let Some(details) = &update.status_details {
        next.status_details = details.clone();
    }
    if to == ExecutionStatus::InProgress {
        if current.status == ExecutionStatus::Queued {
            next.started_at = Some(now);
            next.in_progress_timeout_at =
                in_progress_timeout_minutes.map(|m| Timestamp(now.millis() + m * MINUTE_MS));
        }
        match update.step_timeout_in_minutes {
            Some(-1) => next.step_timeout_at = None,
            Some(m) => next.step_timeout_at = Some(Timestamp(now.millis() + m * MINUTE_MS)),
            None => {}
        }
    } else {
        next.in_progress_timeout_at = None;
        next.step_timeout_at = None;
    }
    next.last_updated_at = now;
    next.version_number += 1;
    Ok(next)
}

/// Starts a QUEUED execution (start-next): IN_PROGRESS with the given details and step
/// timer. An execution already IN_PROGRESS is returned unchanged.
pub fn start(
    current: &JobExecution,
    status_details: Option<&StatusDetails>,
    step_timeout_in_minutes: Option<i64>,
    in_progress_timeout_minutes: Option<i64>,
    now: Timestamp,
) -> Result<Option<JobExecution>, TransitionError> {
    if let Some(details) = status_details {
        check_status_details(details)?;
    }
    check_step_timeout(step_timeout_in_minutes)?;
    match current.status {
        ExecutionStatus::InProgress => Ok(None),
        ExecutionStatus::Queued => apply_device_update(
            current,
            &DeviceUpdate {
                status: Some(ExecutionStatus::InProgress),
                status_details: status_details.cloned(),
                expected_version: None,
                step_timeout_in_minutes,
            },
            in_progress_timeout_minutes,
            now,
        )
        .map(Some),
        terminal => Err(TransitionError::TerminalState(terminal)),
    }
}

/// CancelJob / CancelJobExecution / abort / a schedule's end: QUEUED → CANCELED; IN_PROGRESS
/// → CANCELED only with `force` (`forceCanceled`).
pub fn cancel(
    current: &JobExecution,
    force: bool,
    status_details: Option<&StatusDetails>,
    now: Timestamp,
) -> Result<JobExecution, TransitionError> {
    if let Some(details) = status_details {
        check_status_details(details)?;
    }
    match current.status {
        ExecutionStatus::Queued => {}
        ExecutionStatus::InProgress if force => {}
        from => {
            return Err(TransitionError::InvalidTransition {
                from,
                to: ExecutionStatus::Canceled,
            });
        }
    }
    let mut next = service_change(current, ExecutionStatus::Canceled, now);
    next.force_canceled = current.status == ExecutionStatus::InProgress;
    if let Some(details) = status_details {
        next.status_details = details.clone();
    }
    Ok(next)
}

/// The timer check: an IN_PROGRESS execution whose timer fired at or before `now` becomes
/// TIMED_OUT; anything else is left alone.
pub fn time_out(current: &JobExecution, now: Timestamp) -> Option<JobExecution> {
    let due = current.timeout_at().is_some_and(|t| t <= now);
    (current.status == ExecutionStatus::InProgress && due)
        .then(|| service_change(current, ExecutionStatus::TimedOut, now))
}

/// The thing was deleted (or left a CONTINUOUS job's target group): a pending execution
/// becomes REMOVED.
pub fn remove(current: &JobExecution, now: Timestamp) -> Option<JobExecution> {
    (!current.status.is_terminal()).then(|| service_change(current, ExecutionStatus::Removed, now))
}

fn service_change(current: &JobExecution, to: ExecutionStatus, now: Timestamp) -> JobExecution {
    let mut next = current.clone();
    next.status = to;
    next.in_progress_timeout_at = None;
    next.step_timeout_at = None;
    next.last_updated_at = now;
    next.version_number += 1;
    next
}

/// The execution a retry queues after `failed` ended in a status the retry config covers.
pub fn retry(failed: &JobExecution, now: Timestamp) -> JobExecution {
    JobExecution::queued(
        &failed.job_id,
        &failed.thing_name,
        failed.execution_number + 1,
        failed.retry_attempt + 1,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::ExecutionStatus::*;
    use super::*;

    fn exec(status: ExecutionStatus) -> JobExecution {
        let mut e = JobExecution::queued("j", "t", 1, 0, Timestamp(1_000));
        e.status = status;
        e
    }

    fn update(status: ExecutionStatus) -> DeviceUpdate {
        DeviceUpdate {
            status: Some(status),
            ..DeviceUpdate::default()
        }
    }

    #[test]
    fn every_device_transition_follows_the_table() {
        for from in ExecutionStatus::ALL {
            for to in ExecutionStatus::ALL {
                let result = apply_device_update(&exec(from), &update(to), None, Timestamp(2_000));
                let allowed = !from.is_terminal() && to.is_device_settable();
                assert_eq!(result.is_ok(), allowed, "{from} -> {to}: {result:?}");
                match result {
                    Ok(next) => {
                        assert_eq!(next.status, to);
                        assert_eq!(next.version_number, 2);
                        assert_eq!(next.last_updated_at, Timestamp(2_000));
                    }
                    Err(TransitionError::TerminalState(s)) => {
                        assert!(from.is_terminal());
                        assert_eq!(s, from)
                    }
                    Err(TransitionError::InvalidTransition { from: f, to: t }) => {
                        assert_eq!((f, t), (from, to));
                        assert!(!to.is_device_settable());
                    }
                    Err(e) => panic!("{from} -> {to}: unexpected {e:?}"),
                }
            }
        }
    }

    #[test]
    fn expected_version_is_checked_before_anything_else() {
        let mut e = exec(InProgress);
        e.version_number = 3;
        let mut u = update(Succeeded);
        u.expected_version = Some(2);
        assert_eq!(
            apply_device_update(&e, &u, None, Timestamp(0)),
            Err(TransitionError::VersionMismatch {
                expected: 2,
                current: 3
            })
        );
        let done = exec(Succeeded);
        let mut u = update(InProgress);
        u.expected_version = Some(7);
        assert!(matches!(
            apply_device_update(&done, &u, None, Timestamp(0)),
            Err(TransitionError::VersionMismatch { .. })
        ));
        u.expected_version = Some(1);
        assert_eq!(
            apply_device_update(&done, &u, None, Timestamp(0)),
            Err(TransitionError::TerminalState(Succeeded))
        );
        u.expected_version = Some(3);
        u.status = Some(InProgress);
        assert!(apply_device_update(&e, &u, None, Timestamp(0)).is_ok());
    }

    #[test]
    fn starting_sets_the_in_progress_timer_once_and_the_step_timer_each_time() {
        let started = apply_device_update(
            &exec(Queued),
            &DeviceUpdate {
                status: Some(InProgress),
                step_timeout_in_minutes: Some(2),
                ..DeviceUpdate::default()
            },
            Some(10),
            Timestamp(0),
        )
        .unwrap();
        assert_eq!(started.started_at, Some(Timestamp(0)));
        assert_eq!(started.in_progress_timeout_at, Some(Timestamp(600_000)));
        assert_eq!(started.step_timeout_at, Some(Timestamp(120_000)));
        assert_eq!(started.timeout_at(), Some(Timestamp(120_000)));
        assert_eq!(
            started.seconds_before_timed_out(Timestamp(60_500)),
            Some(60)
        );

        // A later IN_PROGRESS update resets the step timer but never the in-progress timer.
        let later = apply_device_update(
            &started,
            &DeviceUpdate {
                status: Some(InProgress),
                step_timeout_in_minutes: Some(5),
                ..DeviceUpdate::default()
            },
            Some(10),
            Timestamp(100_000),
        )
        .unwrap();
        assert_eq!(later.started_at, Some(Timestamp(0)));
        assert_eq!(later.in_progress_timeout_at, Some(Timestamp(600_000)));
        assert_eq!(later.step_timeout_at, Some(Timestamp(400_000)));
        assert_eq!(later.version_number, 3);

        let stopped = apply_device_update(
            &later,
            &DeviceUpdate {
                status: Some(InProgress),
                step_timeout_in_minutes: Some(-1),
                ..DeviceUpdate::default()
            },
            Some(10),
            Timestamp(100_000),
        )
        .unwrap();
        assert_eq!(stopped.step_timeout_at, None);
        assert_eq!(stopped.timeout_at(), Some(Timestamp(600_000)));

        let done = apply_device_update(&stopped, &update(Succeeded), Some(10), Timestamp(1))
            .expect("IN_PROGRESS -> SUCCEEDED");
        assert_eq!(done.timeout_at(), None);
    }

    #[test]
    fn bad_content_is_refused() {
        let mut u = update(InProgress);
        u.step_timeout_in_minutes = Some(0);
        assert!(matches!(
            apply_device_update(&exec(Queued), &u, None, Timestamp(0)),
            Err(TransitionError::InvalidRequest(_))
        ));
        u.step_timeout_in_minutes = Some(10_081);
        assert!(apply_device_update(&exec(Queued), &u, None, Timestamp(0)).is_err());
        let mut u = update(InProgress);
        u.status_details = Some(StatusDetails::from([("bad key".into(), "v".into())]));
        assert!(apply_device_update(&exec(Queued), &u, None, Timestamp(0)).is_err());
        u.status_details = Some(StatusDetails::from([("k".into(), String::new())]));
        assert!(apply_device_update(&exec(Queued), &u, None, Timestamp(0)).is_err());
        u.status_details = Some(StatusDetails::from([("k".into(), "x".repeat(1025))]));
        assert!(apply_device_update(&exec(Queued), &u, None, Timestamp(0)).is_err());
        assert!(matches!(
            apply_device_update(&exec(Queued), &DeviceUpdate::default(), None, Timestamp(0)),
            Err(TransitionError::InvalidRequest(_))
        ));
    }

    #[test]
    fn status_details_replace_when_given_and_stay_otherwise() {
        let mut u = update(InProgress);
        u.status_details = Some(StatusDetails::from([("step".into(), "download".into())]));
        let a = apply_device_update(&exec(Queued), &u, None, Timestamp(0)).unwrap();
        let b = apply_device_update(&a, &update(Succeeded), None, Timestamp(0)).unwrap();
        assert_eq!(b.status_details["step"], "download");
    }

    #[test]
    fn start_next_starts_queued_and_leaves_in_progress_alone() {
        let started = start(&exec(Queued), None, Some(3), None, Timestamp(5))
            .unwrap()
            .unwrap();
        assert_eq!(started.status, InProgress);
        assert_eq!(started.step_timeout_at, Some(Timestamp(180_005)));
        assert_eq!(start(&started, None, None, None, Timestamp(6)), Ok(None));
        assert_eq!(
            start(&exec(Failed), None, None, None, Timestamp(6)),
            Err(TransitionError::TerminalState(Failed))
        );
    }

    #[test]
    fn cancel_needs_force_for_in_progress() {
        let c = cancel(&exec(Queued), false, None, Timestamp(9)).unwrap();
        assert_eq!((c.status, c.force_canceled), (Canceled, false));
        assert_eq!(
            cancel(&exec(InProgress), false, None, Timestamp(9)),
            Err(TransitionError::InvalidTransition {
                from: InProgress,
                to: Canceled
            })
        );
        let f = cancel(&exec(InProgress), true, None, Timestamp(9)).unwrap();
        assert_eq!((f.status, f.force_canceled), (Canceled, true));
        for terminal in ExecutionStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(cancel(&exec(terminal), true, None, Timestamp(9)).is_err());
        }
    }

    #[test]
    fn timers_fire_only_on_in_progress_at_or_after_their_time() {
        let mut e = exec(InProgress);
        e.step_timeout_at = Some(Timestamp(100));
        assert_eq!(time_out(&e, Timestamp(99)), None);
        let t = time_out(&e, Timestamp(100)).unwrap();
        assert_eq!(
            (t.status, t.version_number, t.timeout_at()),
            (TimedOut, 2, None)
        );
        let mut q = exec(Queued);
        q.step_timeout_at = Some(Timestamp(1));
        assert_eq!(time_out(&q, Timestamp(100)), None);
        assert_eq!(time_out(&exec(InProgress), Timestamp(i64::MAX)), None);
    }

    #[test]
    fn removal_and_retry() {
        assert_eq!(remove(&exec(Queued), Timestamp(3)).unwrap().status, Removed);
        assert_eq!(
            remove(&exec(InProgress), Timestamp(3)).unwrap().status,
            Removed
        );
        assert_eq!(remove(&exec(Succeeded), Timestamp(3)), None);
        let r = retry(&exec(Failed), Timestamp(50));
        assert_eq!(
            (
                r.execution_number,
                r.retry_attempt,
                r.status,
                r.version_number
            ),
            (2, 1, Queued, 1)
        );
    }

    #[test]
    fn statuses_parse_and_name_their_events() {
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(s.as_str()).unwrap(), s);
            assert_eq!(s.event_name(), s.as_str().to_ascii_lowercase());
        }
        assert!(ExecutionStatus::parse("queued").is_err());
    }
}
