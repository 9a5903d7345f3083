//! The jobs service against a real SQLite store with an injected clock: rollouts, device
//! transitions, timers, retries, aborts, CONTINUOUS targeting, cancellation, schedules and
//! what each change announces. The engine is driven by calling `tick` directly, so time only
//! moves when a test moves it.

// Test helpers panic on setup failure by design: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use drover_core::arn::ArnScope;
use drover_core::jobs::{DeviceUpdate, ExecutionStatus, JobConfig, JobStatus, TargetSelection};
use drover_core::registry::{ThingGroupSpec, ThingSpec};
use drover_core::time::Timestamp;
use drover_services::jobs::{
    CreateJobRequest, DeviceError, DeviceUpdateRequest, JobNotification, JobPublisher,
};
use drover_services::registry::NameOrArn;
use drover_services::{Clock, EventConfigurations, Jobs, Registry, ServiceError};
use drover_store::SqliteStore;

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<JobNotification>>);

impl JobPublisher for Recorder {
    fn publish(&self, n: JobNotification) {
        self.0.lock().unwrap().push(n);
    }
}

impl Recorder {
    fn take(&self) -> Vec<JobNotification> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// 2030-01-01T00:00Z.
const START: i64 = 1_893_456_000_000;
const MINUTE: i64 = 60_000;

struct Fixture {
    jobs: Jobs,
    registry: Registry,
    clock: Arc<TestClock>,
    recorder: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
        let clock = Arc::new(TestClock(AtomicI64::new(START)));
        let registry = Registry::new(
            store.clone(),
            ArnScope::new("us-east-1", "123456789012"),
            clock.clone(),
        );
        let events = EventConfigurations::new(store.clone(), clock.clone());
        let jobs = Jobs::new(store, registry.clone(), clock.clone(), events);
        let recorder = Arc::new(Recorder::default());
        jobs.set_publisher(recorder.clone());
        Fixture {
            jobs,
            registry,
            clock,
            recorder,
            _dir: dir,
        }
    }

    fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    async fn things_in_group(&self, group: &str, things: &[&str]) {
        self.registry
            .create_thing_group(ThingGroupSpec {
                name: group.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        for t in things {
            self.thing(t).await;
            self.registry
                .add_thing_to_thing_group(by_name(group), by_name(t), false)
                .await
                .unwrap();
        }
    }

    async fn thing(&self, name: &str) {
        self.registry
            .create_thing(ThingSpec {
                name: name.into(),
                type_name: None,
                attributes: Default::default(),
            })
            .await
            .unwrap();
    }

    fn group_arn(&self, group: &str) -> String {
        self.registry.scope().thing_group(group)
    }

    async fn create(&self, id: &str, group: &str, config: serde_json::Value) {
        self.jobs
            .create_job(CreateJobRequest {
                job_id: id.into(),
                targets: vec![self.group_arn(group)],
                document: Some(r#"{"operation":"install"}"#.into()),
                config: serde_json::from_value::<JobConfig>(config).unwrap(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    async fn status_of(&self, job: &str, thing: &str) -> ExecutionStatus {
        self.jobs
            .describe_job_execution(job, thing, None)
            .await
            .unwrap()
            .status
    }

    async fn update(&self, thing: &str, job: &str, status: ExecutionStatus) {
        self.jobs
            .update_job_execution(thing, job, &request(status))
            .await
            .unwrap();
    }
}

fn by_name(name: &str) -> NameOrArn {
    NameOrArn {
        name: Some(name.into()),
        arn: None,
    }
}

fn request(status: ExecutionStatus) -> DeviceUpdateRequest {
    DeviceUpdateRequest {
        update: DeviceUpdate {
            status: Some(status),
            ..DeviceUpdate::default()
        },
        ..DeviceUpdateRequest::default()
    }
}

#[tokio::test]
async fn a_job_rolls_out_runs_and_completes_with_notifications_and_events() {
    let f = Fixture::new().await;
    f.jobs
        .event_configurations()
        .update(&BTreeMap::from([
            ("JOB".to_string(), true),
            ("JOB_EXECUTION".to_string(), true),
        ]))
        .await
        .unwrap();
    f.things_in_group("fleet", &["a", "b"]).await;
    f.create("j1", "fleet", serde_json::json!({})).await;
    let job = f.jobs.describe_job("j1").await.unwrap();
    assert_eq!(job.status, JobStatus::InProgress);
    assert_eq!(job.process.queued, 2);

    let notes = f.recorder.take();
    let next_for_a = notes.iter().find_map(|n| match n {
        JobNotification::NotifyNext { thing, next, .. } if thing == "a" => next.clone(),
        _ => None,
    });
    let delivered = next_for_a.expect("a gets notify-next");
    assert_eq!(delivered.execution.job_id, "j1");
    assert_eq!(
        delivered.document.as_deref(),
        Some(r#"{"operation":"install"}"#)
    );
    assert!(notes.iter().any(
        |n| matches!(n, JobNotification::Notify { thing, pending, .. }
        if thing == "b" && pending.len() == 1)
    ));

    let started = f
        .jobs
        .start_next_pending_job_execution("a", None, Some(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.execution.status, ExecutionStatus::InProgress);
    assert_eq!(started.execution.version_number, 2);
    f.update("a", "j1", ExecutionStatus::Succeeded).await;
    let notes = f.recorder.take();
    // The queue emptied: notify-next without an execution, and an execution event.
    assert!(notes.iter().any(
        |n| matches!(n, JobNotification::NotifyNext { thing, next: None, .. } if thing == "a")
    ));
    assert!(notes.iter().any(
        |n| matches!(n, JobNotification::ExecutionEvent { execution, .. }
        if execution.status == ExecutionStatus::Succeeded)
    ));
    assert!(
        f.jobs
            .start_next_pending_job_execution("a", None, None)
            .await
            .unwrap()
            .is_none()
    );

    f.jobs.tick().await.unwrap();
    assert_eq!(
        f.jobs.describe_job("j1").await.unwrap().status,
        JobStatus::InProgress
    );
    f.update("b", "j1", ExecutionStatus::Rejected).await;
    f.jobs.tick().await.unwrap();
    let done = f.jobs.describe_job("j1").await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!((done.process.succeeded, done.process.rejected), (1, 1));
    assert!(done.completed_at.is_some());
    assert!(
        f.recorder
            .take()
            .iter()
            .any(|n| matches!(n, JobNotification::JobEvent { job, .. }
        if job.status == JobStatus::Completed))
    );
}

#[tokio::test]
async fn device_updates_follow_the_rules_and_stay_on_their_own_thing() {
    let f = Fixture::new().await;
    f.things_in_group("fleet", &["a", "b"]).await;
    f.create("j1", "fleet", serde_json::json!({})).await;

    // b cannot read or change a's execution: it only ever names itself, and has its own.
    let mut stale = request(ExecutionStatus::InProgress);
    stale.update.expected_version = Some(5);
    match f.jobs.update_job_execution("a", "j1", &stale).await {
        Err(DeviceError::VersionMismatch { state, .. }) => assert_eq!(state.version_number, 1),
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    assert_eq!(f.status_of("j1", "a").await, ExecutionStatus::Queued);
    stale.update.expected_version = Some(1);
    f.jobs
        .update_job_execution("a", "j1", &stale)
        .await
        .unwrap();
    assert_eq!(f.status_of("j1", "b").await, ExecutionStatus::Queued);
    assert!(matches!(
        f.jobs
            .update_job_execution("c", "j1", &request(ExecutionStatus::Succeeded))
            .await,
        Err(DeviceError::NotFound(_))
    ));

    for bad in [
        ExecutionStatus::Queued,
        ExecutionStatus::Canceled,
        ExecutionStatus::TimedOut,
    ] {
        assert!(matches!(
            f.jobs.update_job_execution("a", "j1", &request(bad)).await,
            Err(DeviceError::InvalidStateTransition { .. })
        ));
    }
    f.update("a", "j1", ExecutionStatus::Failed).await;
    assert!(matches!(
        f.jobs
            .update_job_execution("a", "j1", &request(ExecutionStatus::InProgress))
            .await,
        Err(DeviceError::InvalidStateTransition { state: Some(_), .. })
    ));
    let described = f
        .jobs
        .describe_job_execution_for_device("a", "j1", None, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(described.execution.status, ExecutionStatus::Failed);
    assert!(matches!(
        f.jobs
            .describe_job_execution_for_device("a", "bad/id", None, false)
            .await,
        Err(DeviceError::InvalidRequest(_))
    ));
    let next = f
        .jobs
        .describe_job_execution_for_device("b", "$next", None, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.execution.thing_name, "b");
}

#[tokio::test]
async fn timeouts_fire_on_the_clock_and_retries_queue_a_new_execution() {
    let f = Fixture::new().await;
    f.things_in_group("fleet", &["a"]).await;
    f.create(
        "j1",
        "fleet",
        serde_json::json!({
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10},
            "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]}
        }),
    )
    .await;
    f.jobs
        .start_next_pending_job_execution("a", None, Some(2))
        .await
        .unwrap();
    f.advance(2 * MINUTE - 1);
    f.jobs.tick().await.unwrap();
    assert_eq!(f.status_of("j1", "a").await, ExecutionStatus::InProgress);
    // A step update resets the step timer (but not the 10-minute in-progress timer).
    let mut step = request(ExecutionStatus::InProgress);
    step.update.step_timeout_in_minutes = Some(3);
    f.jobs.update_job_execution("a", "j1", &step).await.unwrap();
    f.advance(3 * MINUTE);
    f.jobs.tick().await.unwrap();
    let first = f
        .jobs
        .describe_job_execution("j1", "a", Some(1))
        .await
        .unwrap();
    assert_eq!(first.status, ExecutionStatus::TimedOut);
    let retry = f
        .jobs
        .describe_job_execution("j1", "a", None)
        .await
        .unwrap();
    assert_eq!(
        (retry.execution_number, retry.retry_attempt, retry.status),
        (2, 1, ExecutionStatus::Queued)
    );

    // The retry's in-progress timer; after it, no retries are left.
    f.jobs
        .start_next_pending_job_execution("a", None, None)
        .await
        .unwrap();
    f.advance(10 * MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(f.status_of("j1", "a").await, ExecutionStatus::TimedOut);
    f.jobs.tick().await.unwrap();
    let job = f.jobs.describe_job("j1").await.unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.process.timed_out, 1);
    assert_eq!(job.process.total(), 1);
}

#[tokio::test]
async fn abort_criteria_cancel_the_job_as_results_arrive() {
    let f = Fixture::new().await;
    f.things_in_group("fleet", &["a", "b", "c", "d", "e"]).await;
    f.create(
        "j1",
        "fleet",
        serde_json::json!({"abortConfig": {"criteriaList": [{"failureType": "FAILED",
            "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]}}),
    )
    .await;
    f.update("a", "j1", ExecutionStatus::Failed).await;
    f.jobs.tick().await.unwrap();
    assert_eq!(
        f.jobs.describe_job("j1").await.unwrap().status,
        JobStatus::InProgress
    );
    f.update("b", "j1", ExecutionStatus::InProgress).await;
    f.update("c", "j1", ExecutionStatus::Failed).await;
    f.jobs.tick().await.unwrap();
    let job = f.jobs.describe_job("j1").await.unwrap();
    assert_eq!(job.status, JobStatus::Canceled);
    assert_eq!(job.reason_code.as_deref(), Some("ABORT_CRITERIA_MET"));
    assert_eq!(f.status_of("j1", "d").await, ExecutionStatus::Canceled);
    // Not forced: the IN_PROGRESS execution keeps running.
    assert_eq!(f.status_of("j1", "b").await, ExecutionStatus::InProgress);
}

#[tokio::test]
async fn rollout_rate_limits_notifications_per_minute() {
    let f = Fixture::new().await;
    let things: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = things.iter().map(String::as_str).collect();
    f.things_in_group("fleet", &names).await;
    f.create(
        "j1",
        "fleet",
        serde_json::json!({"jobExecutionsRolloutConfig": {"maximumPerMinute": 2}}),
    )
    .await;
    let counts = |j: drover_core::jobs::Job| j.process.total();
    assert_eq!(counts(f.jobs.describe_job("j1").await.unwrap()), 2);
    assert_eq!(f.jobs.pending_targets("j1").await.unwrap(), 3);
    f.advance(MINUTE - 1);
    f.jobs.tick().await.unwrap();
    assert_eq!(counts(f.jobs.describe_job("j1").await.unwrap()), 2);
    f.advance(1);
    f.jobs.tick().await.unwrap();
    assert_eq!(counts(f.jobs.describe_job("j1").await.unwrap()), 4);
    f.advance(MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(counts(f.jobs.describe_job("j1").await.unwrap()), 5);
    assert_eq!(f.jobs.pending_targets("j1").await.unwrap(), 0);
}

#[tokio::test]
async fn continuous_jobs_reach_things_that_join_later_and_remove_those_that_leave() {
    let f = Fixture::new().await;
    f.things_in_group("line", &["a"]).await;
    f.jobs
        .create_job(CreateJobRequest {
            job_id: "j1".into(),
            targets: vec![f.group_arn("line")],
            document: Some("{}".into()),
            target_selection: Some(TargetSelection::Continuous),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut events = f.registry.membership().subscribe();
    f.thing("late").await;
    f.registry
        .add_thing_to_thing_group(by_name("line"), by_name("late"), false)
        .await
        .unwrap();
    let event = events.recv().await.unwrap();
    assert!(event.joined);
    f.jobs.membership_changed(&event).await.unwrap();
    f.jobs.tick().await.unwrap();
    assert_eq!(f.status_of("j1", "late").await, ExecutionStatus::Queued);

    f.registry
        .remove_thing_from_thing_group(by_name("line"), by_name("late"))
        .await
        .unwrap();
    let event = events.recv().await.unwrap();
    assert!(!event.joined);
    f.jobs.membership_changed(&event).await.unwrap();
    assert_eq!(f.status_of("j1", "late").await, ExecutionStatus::Removed);

    // A deleted thing's pending execution is REMOVED too; CONTINUOUS jobs never complete.
    let mut deletions = f.registry.membership().subscribe_deletions();
    f.registry.delete_thing("a", None).await.unwrap();
    let deleted = deletions.recv().await.unwrap();
    f.jobs.thing_deleted(&deleted).await.unwrap();
    assert_eq!(f.status_of("j1", "a").await, ExecutionStatus::Removed);
    f.jobs.tick().await.unwrap();
    assert_eq!(
        f.jobs.describe_job("j1").await.unwrap().status,
        JobStatus::InProgress
    );
}

#[tokio::test]
async fn cancel_with_and_without_force() {
    let f = Fixture::new().await;
    f.things_in_group("fleet", &["a", "b"]).await;
    f.create("j1", "fleet", serde_json::json!({})).await;
    f.create("j2", "fleet", serde_json::json!({})).await;
    f.update("a", "j1", ExecutionStatus::InProgress).await;
    f.update("a", "j2", ExecutionStatus::InProgress).await;

    f.jobs
        .cancel_job("j1", false, Some("OPS_1".into()), Some("stop".into()))
        .await
        .unwrap();
    assert_eq!(f.status_of("j1", "a").await, ExecutionStatus::InProgress);
    assert_eq!(f.status_of("j1", "b").await, ExecutionStatus::Canceled);
    let j1 = f.jobs.describe_job("j1").await.unwrap();
    assert_eq!((j1.status, j1.force_canceled), (JobStatus::Canceled, false));
    assert_eq!(j1.reason_code.as_deref(), Some("OPS_1"));

    f.jobs.cancel_job("j2", true, None, None).await.unwrap();
    let forced = f
        .jobs
        .describe_job_execution("j2", "a", None)
        .await
        .unwrap();
    assert_eq!(
        (forced.status, forced.force_canceled),
        (ExecutionStatus::Canceled, true)
    );
    assert!(f.jobs.describe_job("j2").await.unwrap().force_canceled);

    // Execution-level cancel: IN_PROGRESS needs force; expectedVersion is checked.
    assert!(matches!(
        f.jobs
            .cancel_job_execution("j1", "a", false, None, None)
            .await,
        Err(ServiceError::InvalidStateTransition(_))
    ));
    assert!(matches!(
        f.jobs
            .cancel_job_execution("j1", "a", true, Some(99), None)
            .await,
        Err(ServiceError::VersionConflict(_))
    ));
    f.jobs
        .cancel_job_execution("j1", "a", true, Some(2), None)
        .await
        .unwrap();
    assert_eq!(f.status_of("j1", "a").await, ExecutionStatus::Canceled);

    // DeleteJob needs force while a job runs.
    f.create("j3", "fleet", serde_json::json!({})).await;
    assert!(matches!(
        f.jobs.delete_job("j3", false).await,
        Err(ServiceError::InvalidStateTransition(_))
    ));
    f.jobs.delete_job("j3", true).await.unwrap();
    assert!(matches!(
        f.jobs.describe_job("j3").await,
        Err(ServiceError::NotFound(_))
    ));
    f.jobs.delete_job("j1", false).await.unwrap();
}

#[tokio::test]
async fn scheduled_jobs_wait_for_their_start_and_bad_input_changes_nothing() {
    let f = Fixture::new().await;
    f.things_in_group("fleet", &["a"]).await;
    f.create(
        "later",
        "fleet",
        serde_json::json!({"schedulingConfig": {"startTime": "2030-01-01T01:00"}}),
    )
    .await;
    assert_eq!(
        f.jobs.describe_job("later").await.unwrap().status,
        JobStatus::Scheduled
    );
    assert!(
        f.jobs
            .describe_job_execution("later", "a", None)
            .await
            .is_err()
    );
    f.advance(60 * MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(
        f.jobs.describe_job("later").await.unwrap().status,
        JobStatus::InProgress
    );
    assert_eq!(f.status_of("later", "a").await, ExecutionStatus::Queued);

    let bad = [
        CreateJobRequest {
            job_id: "bad id".into(),
            ..Default::default()
        },
        CreateJobRequest {
            job_id: "x".into(),
            targets: vec![f.group_arn("fleet")],
            document: Some("[1]".into()),
            ..Default::default()
        },
        CreateJobRequest {
            job_id: "x".into(),
            targets: vec![f.group_arn("nope")],
            document: Some("{}".into()),
            ..Default::default()
        },
        CreateJobRequest {
            job_id: "x".into(),
            targets: vec![f.group_arn("fleet")],
            document: Some("{}".into()),
            config: serde_json::from_value(
                serde_json::json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}),
            )
            .unwrap(),
            ..Default::default()
        },
        CreateJobRequest {
            job_id: "later".into(),
            targets: vec![f.group_arn("fleet")],
            document: Some("{}".into()),
            ..Default::default()
        },
    ];
    for request in bad {
        assert!(f.jobs.create_job(request).await.is_err());
    }
    assert!(f.jobs.describe_job("x").await.is_err());
}

#[tokio::test]
async fn templates_fill_jobs_and_a_taken_id_is_a_conflict() {
    use drover_services::jobs::CreateJobTemplateRequest;
    let f = Fixture::new().await;
    f.things_in_group("fleet", &["a"]).await;
    let template = CreateJobTemplateRequest {
        template_id: "fw".into(),
        description: "firmware".into(),
        document: Some(r#"{"version":"${aws:iot:parameter:version}"}"#.into()),
        ..Default::default()
    };
    f.jobs.create_job_template(template.clone()).await.unwrap();
    assert!(matches!(
        f.jobs.create_job_template(template).await,
        Err(ServiceError::Conflict(_))
    ));
    let job = f
        .jobs
        .create_job(CreateJobRequest {
            job_id: "from-template".into(),
            targets: vec![f.group_arn("fleet")],
            job_template_arn: Some(f.jobs.template_arn("fw")),
            document_parameters: BTreeMap::from([("version".to_string(), "2.0".to_string())]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(job.document, r#"{"version":"2.0"}"#);
    assert_eq!(
        f.jobs
            .get_job_document("from-template", true)
            .await
            .unwrap(),
        r#"{"version":"${aws:iot:parameter:version}"}"#
    );
}

/// Maintenance windows: a scheduled job with windows (2030-01-01 is a Tuesday; the window is
/// Wednesdays 22:00-23:00) creates executions only inside a window, pauses when it closes and
/// resumes in the next one; an invalid cron expression is refused and stores nothing.
#[tokio::test]
async fn maintenance_windows_gate_the_rollout_and_it_resumes_in_the_next_window() {
    let f = Fixture::new().await;
    let things: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let names: Vec<&str> = things.iter().map(String::as_str).collect();
    f.things_in_group("fleet", &names).await;
    f.create(
        "windowed",
        "fleet",
        serde_json::json!({
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 2},
            "schedulingConfig": {
                "startTime": "2030-01-01T01:00",
                "endTime": "2030-01-10T00:00",
                "endBehavior": "STOP_ROLLOUT",
                "maintenanceWindows": [{"startTime": "cron(0 22 ? * WED *)", "durationInMinutes": 60}]
            }
        }),
    )
    .await;
    let notified = |j: drover_core::jobs::Job| j.process.total();
    let job = f.jobs.describe_job("windowed").await.unwrap();
    assert_eq!(job.status, JobStatus::Scheduled);
    // Only the windows before the end time are announced.
    assert_eq!(
        f.jobs.scheduled_job_rollouts(&job),
        ["2030-01-02T22:00", "2030-01-09T22:00"]
    );

    // The start time passes: the job is IN_PROGRESS, but no window is open.
    f.advance(60 * MINUTE);
    f.jobs.tick().await.unwrap();
    let job = f.jobs.describe_job("windowed").await.unwrap();
    assert_eq!(job.status, JobStatus::InProgress);
    assert_eq!(notified(job), 0);
    assert!(
        f.jobs
            .describe_job_execution("windowed", "m0", None)
            .await
            .is_err()
    );
    // One minute before the window: still nothing.
    f.advance((46 - 1) * 60 * MINUTE - MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(notified(f.jobs.describe_job("windowed").await.unwrap()), 0);

    // The window opens (22:00): the rollout runs at its rate.
    f.advance(MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(notified(f.jobs.describe_job("windowed").await.unwrap()), 2);
    f.advance(MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(notified(f.jobs.describe_job("windowed").await.unwrap()), 4);

    // It closes at 23:00 with one thing still pending: the rollout pauses.
    f.advance(59 * MINUTE);
    f.jobs.tick().await.unwrap();
    let job = f.jobs.describe_job("windowed").await.unwrap();
    assert_eq!(job.status, JobStatus::InProgress);
    assert_eq!(notified(job.clone()), 4);
    assert_eq!(f.jobs.pending_targets("windowed").await.unwrap(), 1);
    assert_eq!(f.jobs.scheduled_job_rollouts(&job), ["2030-01-09T22:00"]);
    f.advance(6 * 24 * 60 * MINUTE + 22 * 60 * MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(notified(f.jobs.describe_job("windowed").await.unwrap()), 4);

    // The next Wednesday's window resumes it.
    f.advance(60 * MINUTE);
    f.jobs.tick().await.unwrap();
    assert_eq!(notified(f.jobs.describe_job("windowed").await.unwrap()), 5);
    assert_eq!(f.jobs.pending_targets("windowed").await.unwrap(), 0);

    // An invalid expression (both day fields given) is refused at CreateJob; nothing stored.
    let bad = f
        .jobs
        .create_job(CreateJobRequest {
            job_id: "bad-window".into(),
            targets: vec![f.group_arn("fleet")],
            document: Some("{}".into()),
            config: serde_json::from_value(serde_json::json!({"schedulingConfig": {
                "maintenanceWindows": [{"startTime": "cron(0 22 * * WED *)", "durationInMinutes": 60}]
            }}))
            .unwrap(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(bad, Err(ServiceError::InvalidRequest(ref m)) if m.contains("cron")),
        "{bad:?}"
    );
    assert!(f.jobs.describe_job("bad-window").await.is_err());
}
