//! `drover-sim mqtt idle`: open N device connections, hold them idle, and report how many the
//! broker accepted and how much resident memory each one costs it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::{Target, failure_kind};
use crate::proc;

/// What an idle run is asked to do.
pub struct IdleRun {
    pub connections: u32,
    pub client_id_prefix: String,
    /// The broker's process id, to read its memory before and after.
    pub server_pid: Option<u32>,
    /// How long the connections are held once every attempt has finished.
    pub hold: Duration,
    pub label: String,
}

/// The figures of one idle run (one JSON line on stdout).
#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub label: String,
    pub mode: &'static str,
    pub requested: u32,
    pub established: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// Connections that ended while they were supposed to be held.
    pub dropped_while_held: u64,
    /// Still open when the hold ended.
    pub held: u64,
    pub connect_seconds: f64,
    pub connects_per_second: f64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub server_bytes_per_connection: Option<f64>,
    pub client_rss_bytes: Option<u64>,
}

enum Outcome {
    Established,
    Failed(String),
}

pub async fn run(target: &Target, run: IdleRun) -> Result<IdleReport> {
    if let Some(limit) = proc::open_files_limit() {
        // Each device holds one socket; leave room for the runtime's own descriptors.
        if u64::from(run.connections) + 64 > limit {
            bail!(
                "{} connections need more open files than this process may have ({limit}); \
                 run several simulator processes, each with fewer connections",
                run.connections
            );
        }
    }
    let rss_before = match run.server_pid {
        Some(pid) => Some(proc::rss_bytes(pid)?),
        None => None,
    };

    let (stop_tx, stop) = watch::channel(false);
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(run.connections as usize);
    for i in 0..run.connections {
        let target = target.clone();
        let client_id = format!("{}-{i}", run.client_id_prefix);
        let outcomes = outcomes_tx.clone();
        let mut stop = stop.clone();
        let dropped = dropped.clone();
        let open = open.clone();
        tasks.push(tokio::spawn(async move {
            let mut device = match target.connect(&client_id, 1).await {
                Ok(device) => device,
                Err(e) => {
                    let _ = outcomes.send(Outcome::Failed(failure_kind(&e)));
                    return;
                }
            };
            open.fetch_add(1, Ordering::Relaxed);
            let _ = outcomes.send(Outcome::Established);
            // Keep polling so keep-alive pings go out; an error means the broker closed us.
            loop {
                tokio::select! {
                    event = device.events.poll() => {
                        if event.is_err() {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    drop(outcomes_tx);

    let bar = ProgressBar::new(u64::from(run.connections)).with_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} connected, {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(run.label.clone());
    let mut established = 0u64;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut finished = 0u32;
    while finished < run.connections {
        let Some(outcome) = outcomes.recv().await else {
            break;
        };
        finished += 1;
        match outcome {
            Outcome::Established => {
                established += 1;
                bar.inc(1);
            }
            Outcome::Failed(kind) => *failures.entry(kind).or_default() += 1,
        }
        bar.set_message(format!("{} failed", failures.values().sum::<u64>()));
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    bar.finish();

    // Hold: the broker's memory is read at the end, once handshake garbage has been freed.
    tokio::time::sleep(run.hold).await;
    let rss_after = match run.server_pid {
        Some(pid) => Some(proc::rss_bytes(pid)?),
        None => None,
    };
    let client_rss = proc::rss_bytes(std::process::id()).ok();
    let held = open.load(Ordering::Relaxed);
    let dropped_while_held = dropped.load(Ordering::Relaxed);

    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }

    let failed = failures.values().sum();
    let per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if held > 0 => {
            Some((after as f64 - before as f64) / held as f64)
        }
        _ => None,
    };
    Ok(IdleReport {
        label: run.label,
        mode: "idle",
        requested: run.connections,
        established,
        failed,
        failures,
        dropped_while_held,
        held,
        connect_seconds,
        connects_per_second: established as f64 / connect_seconds.max(1e-9),
        server_rss_before_bytes: rss_before,
        server_rss_after_bytes: rss_after,
        server_bytes_per_connection: per_connection,
        client_rss_bytes: client_rss,
    })
}
