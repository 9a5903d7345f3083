//! Jobs benchmark at the service layer (no MQTT): a SNAPSHOT job on a thing group of N things
//! in SQLite (WAL, synchronous=FULL), measured from CreateJob until every execution is QUEUED
//! and its `notify`/`notify-next` handed to the publisher; then N devices' `start-next` and
//! SUCCEEDED updates issued concurrently (256 at a time), each a durable compare-and-swap.
//! Run with `cargo bench -p drover-services --bench jobs`; `JOBS_BENCH_THINGS` sets N
//! (default 10,000). Figures go to BENCHMARKS.md. The fleet simulator measures the same
//! through MQTT/TLS.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use drover_core::arn::ArnScope;
use drover_core::jobs::{DeviceUpdate, ExecutionStatus};
use drover_core::registry::{Thing, ThingGroupSpec};
use drover_core::time::Timestamp;
use drover_services::jobs::{CreateJobRequest, DeviceUpdateRequest, JobNotification, JobPublisher};
use drover_services::{EventConfigurations, Jobs, Registry, SystemClock};
use drover_store::{SharedStore, SqliteStore};

#[derive(Default)]
struct Count(AtomicUsize);

impl JobPublisher for Count {
    fn publish(&self, _: JobNotification) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("JOBS_BENCH_THINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
    let clock = Arc::new(SystemClock);
    let registry = Registry::new(
        store.clone(),
        ArnScope::new("us-east-1", "123456789012"),
        clock.clone(),
    );
    let jobs = Jobs::new(
        store.clone(),
        registry.clone(),
        clock.clone(),
        EventConfigurations::new(store.clone(), clock),
    );
    let published = Arc::new(Count::default());
    jobs.set_publisher(published.clone());
    registry
        .create_thing_group(ThingGroupSpec {
            name: "fleet".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<String> = (0..count).map(|i| format!("dev-{i:07}")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in names.chunks(count.div_ceil(64)) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for name in chunk {
                let thing = Thing {
                    name: name.clone(),
                    id: name.clone(),
                    type_name: None,
                    attributes: Default::default(),
                    version: 1,
                    created_at: Timestamp(0),
                    updated_at: Timestamp(0),
                };
                store.insert_thing(&thing).await.unwrap();
                store
                    .add_thing_to_group("fleet", &name, Timestamp(0))
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    println!("jobs benchmark: {count} things in one group, SQLite (WAL, synchronous=FULL)");

    let started = Instant::now();
    jobs.create_job(CreateJobRequest {
        job_id: "bench".into(),
        targets: vec![registry.scope().thing_group("fleet")],
        document: Some(r#"{"operation":"install","version":"2.0"}"#.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let created = started.elapsed();
    while jobs.pending_targets("bench").await.unwrap() > 0 {
        jobs.tick().await.unwrap();
    }
    let queued = started.elapsed();
    println!(
        "CreateJob returned after {:.2} s; all {count} executions QUEUED and notified after {:.2} s ({} notifications)",
        created.as_secs_f64(),
        queued.as_secs_f64(),
        published.0.load(Ordering::Relaxed)
    );

    let started = Instant::now();
    let updates = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in names.chunks(count.div_ceil(256)) {
        let (jobs, chunk, updates) = (jobs.clone(), chunk.to_vec(), updates.clone());
        tasks.spawn(async move {
            for name in chunk {
                jobs.start_next_pending_job_execution(&name, None, None)
                    .await
                    .unwrap()
                    .unwrap();
                let request = DeviceUpdateRequest {
                    update: DeviceUpdate {
                        status: Some(ExecutionStatus::Succeeded),
                        expected_version: Some(2),
                        ..DeviceUpdate::default()
                    },
                    ..DeviceUpdateRequest::default()
                };
                jobs.update_job_execution(&name, "bench", &request)
                    .await
                    .unwrap();
                updates.fetch_add(2, Ordering::Relaxed);
            }
        });
    }
    tasks.join_all().await;
    let elapsed = started.elapsed();
    let n = updates.load(Ordering::Relaxed);
    println!(
        "{n} durable execution updates (start-next + SUCCEEDED) in {:.2} s: {:.0} updates/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    jobs.tick().await.unwrap();
    let job = jobs.describe_job("bench").await.unwrap();
    println!(
        "job {} with {} SUCCEEDED",
        job.status, job.process.succeeded
    );
}
