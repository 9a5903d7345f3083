//! `api-bench`: a closed-loop load generator for the AWS IoT control plane, driven by the
//! official AWS SDK for Rust (one shared client, SigV4 over HTTPS), so it measures what a real
//! SDK user gets from any AWS IoT compatible endpoint: drover, moto, or AWS itself.
//!
//! N tasks each send one request, wait for the answer, and send the next, for a fixed time (or
//! a fixed total count) after a short unmeasured warm-up. It prints one JSON line on stdout
//! (requests/s, p50/p99/max latency, error count, first error, and the CPU the client and,
//! given `--server-pid`, the server used while measuring) and a human summary on stderr.
//! It decides nothing about what is fast enough: `scripts/bench-api` compares servers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_iot::Client;
use aws_sdk_iot::error::DisplayErrorContext;
use aws_sdk_iot::types::AttributePayload;
use clap::{Parser, ValueEnum};
use drover_compat_sdk::{ClientOptions, Endpoint, iot_client};
use hdrhistogram::Histogram;
use serde_json::json;

/// Latencies are recorded in microseconds up to this bound (a minute).
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Debug, Parser)]
#[command(
    name = "api-bench",
    about = "CreateThing / DescribeThing load through the AWS SDK for Rust"
)]
struct Args {
    /// The endpoint URL, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    endpoint: String,
    /// PEM file of root certificates to trust (e.g. drover's root-ca.pem); default: the
    /// platform's roots.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Requests in flight at once (one task each, all sharing one SDK client).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Measure a fixed number of requests instead of a fixed time.
    #[arg(long)]
    requests: Option<u64>,
    /// Unmeasured load before measuring: connections, TLS sessions and caches warm up.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    #[arg(long, value_enum)]
    op: Op,
    /// Prefix of the thing names this run creates; use a new one per run against one server.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// describe-thing: how many things to create first and describe round-robin.
    #[arg(long, default_value_t = 100)]
    pool_size: usize,
    /// A name for the server under test, copied into the output (e.g. drover, moto).
    #[arg(long, default_value = "")]
    label: String,
    /// Process id of the server, when it runs on this machine: its CPU use during the
    /// measurement is reported beside the client's (Linux /proc only).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; 100 on Linux).
    #[arg(long, default_value_t = 100)]
    clk_tck: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    CreateThing,
    DescribeThing,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::CreateThing => "create-thing",
            Op::DescribeThing => "describe-thing",
        }
    }
}

/// When a phase stops: at a deadline, or when a shared request budget is spent.
#[derive(Clone)]
enum Stop {
    At(Instant),
    After(Arc<AtomicU64>),
}

impl Stop {
    /// Claims the right to send one more request.
    fn another(&self) -> bool {
        match self {
            Stop::At(deadline) => Instant::now() < *deadline,
            Stop::After(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// What one task (or, merged, the whole run) observed.
struct Tally {
    latencies_us: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latencies_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us
            .add(&other.latencies_us)
            .expect("histograms share bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Everything one worker needs; cloned into each task.
#[derive(Clone)]
struct Load {
    client: Client,
    op: Op,
    /// Thing-name prefix for this phase (CreateThing).
    prefix: String,
    /// Things to describe round-robin (DescribeThing).
    pool: Arc<Vec<String>>,
    concurrency: usize,
}

impl Load {
    async fn one(&self, worker: usize, seq: u64) -> Result<(), String> {
        match self.op {
            Op::CreateThing => self
                .client
                .create_thing()
                .thing_name(format!("{}-{worker}-{seq}", self.prefix))
                .attribute_payload(
                    AttributePayload::builder()
                        .attributes("app_version", "1.0")
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| DisplayErrorContext(e).to_string()),
            Op::DescribeThing => {
                let index = (worker + seq as usize * self.concurrency) % self.pool.len();
                self.client
                    .describe_thing()
                    .thing_name(&self.pool[index])
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| DisplayErrorContext(e).to_string())
            }
        }
    }

    async fn worker(self, worker: usize, stop: Stop) -> Tally {
        let mut tally = Tally::new();
        let mut seq = 0u64;
        while stop.another() {
            let started = Instant::now();
            let outcome = self.one(worker, seq).await;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            tally
                .latencies_us
                .saturating_record(micros.clamp(1, MAX_LATENCY_US));
            match outcome {
                Ok(()) => tally.ok += 1,
                Err(message) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(message);
                }
            }
            seq += 1;
        }
        tally
    }

    /// Runs `concurrency` workers until `stop`; returns the merged tally and the wall time.
    async fn phase(&self, stop: Stop) -> Result<(Tally, Duration)> {
        let started = Instant::now();
        let tasks: Vec<_> = (0..self.concurrency)
            .map(|worker| tokio::spawn(self.clone().worker(worker, stop.clone())))
            .collect();
        let mut total = Tally::new();
        for task in tasks {
            total.merge(task.await.context("a load task panicked")?);
        }
        Ok((total, started.elapsed()))
    }
}

/// Creates the things DescribeThing will read, a few at a time.
async fn create_pool(client: &Client, prefix: &str, size: usize) -> Result<Vec<String>> {
    let names: Vec<String> = (0..size).map(|i| format!("{prefix}-pool-{i}")).collect();
    for chunk in names.chunks(16) {
        let mut creates = tokio::task::JoinSet::new();
        for name in chunk {
            let client = client.clone();
            let name = name.clone();
            creates.spawn(async move {
                client
                    .create_thing()
                    .thing_name(&name)
                    .attribute_payload(
                        AttributePayload::builder()
                            .attributes("app_version", "1.0")
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("creating {name} for the pool: {}", DisplayErrorContext(e))
                    })
            });
        }
        while let Some(created) = creates.join_next().await {
            created.context("a pool task panicked")??;
        }
    }
    Ok(names)
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`; `None`
/// where there is no such file (not Linux, or the process is gone).
fn cpu_seconds(pid: &str, clk_tck: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' start at field 3.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) as f64 / f64::from(clk_tck.max(1)))
}

/// CPU seconds of the client and, if given, the server, read together.
fn cpu_now(server_pid: Option<u32>, clk_tck: u32) -> (Option<f64>, Option<f64>) {
    (
        cpu_seconds("self", clk_tck),
        server_pid.and_then(|pid| cpu_seconds(&pid.to_string(), clk_tck)),
    )
}

fn cores(before: Option<f64>, after: Option<f64>, seconds: f64) -> Option<f64> {
    Some(((after? - before?) / seconds * 100.0).round() / 100.0)
}

fn millis(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.op == Op::DescribeThing && args.pool_size == 0 {
        bail!("--pool-size must be at least 1 for describe-thing");
    }
    let ca_pem = args
        .ca_file
        .as_ref()
        .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()?;
    let endpoint = Endpoint {
        url: args.endpoint.clone(),
        region: args.region.clone(),
        access_key_id: args.access_key.clone(),
        secret_access_key: args.secret_key.clone(),
        ca_pem,
    };
    // No retries: every failed request is counted, none is hidden behind a second attempt.
    let client = iot_client(
        &endpoint,
        ClientOptions {
            operation_timeout: Duration::from_secs(30),
            max_attempts: 1,
        },
    )?;

    let pool = match args.op {
        Op::DescribeThing => create_pool(&client, &args.prefix, args.pool_size).await?,
        Op::CreateThing => Vec::new(),
    };
    let mut load = Load {
        client,
        op: args.op,
        prefix: format!("{}-warmup", args.prefix),
        pool: Arc::new(pool),
        concurrency: args.concurrency,
    };
    if args.warmup_secs > 0 {
        let deadline = Instant::now() + Duration::from_secs(args.warmup_secs);
        load.phase(Stop::At(deadline)).await?;
    }
    load.prefix = args.prefix.clone();
    let stop = match args.requests {
        Some(n) => Stop::After(Arc::new(AtomicU64::new(n))),
        None => Stop::At(Instant::now() + Duration::from_secs(args.duration_secs)),
    };
    let (client_before, server_before) = cpu_now(args.server_pid, args.clk_tck);
    let (tally, elapsed) = load.phase(stop).await?;
    let (client_after, server_after) = cpu_now(args.server_pid, args.clk_tck);

    let seconds = elapsed.as_secs_f64();
    let rps = tally.ok as f64 / seconds;
    let h = &tally.latencies_us;
    let (p50, p99, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            millis(h.value_at_quantile(0.50)),
            millis(h.value_at_quantile(0.99)),
            millis(h.max()),
        )
    };
    let line = json!({
        "label": args.label,
        "endpoint": args.endpoint,
        "op": args.op.name(),
        "concurrency": args.concurrency,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "ok": tally.ok,
        "errors": tally.errors,
        "rps": (rps * 10.0).round() / 10.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "first_error": tally.first_error,
        // Cores busy during the measurement (CPU seconds / wall seconds).
        "client_cpu_cores": cores(client_before, client_after, seconds),
        "server_cpu_cores": cores(server_before, server_after, seconds),
    });
    println!("{line}");
    eprintln!(
        "{label}{op} x{c}: {rps:.0} req/s over {seconds:.1} s ({ok} ok, {errors} errors), \
         latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        label = if args.label.is_empty() {
            String::new()
        } else {
            format!("{}: ", args.label)
        },
        op = args.op.name(),
        c = args.concurrency,
        ok = tally.ok,
        errors = tally.errors,
    );
    let show = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:.2}"));
    eprintln!(
        "  CPU cores during the measurement: client {}, server {}",
        show(cores(client_before, client_after, seconds)),
        show(cores(server_before, server_after, seconds)),
    );
    if let Some(error) = &tally.first_error {
        eprintln!("  first error: {error}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_budget_is_spent_exactly() {
        let stop = Stop::After(Arc::new(AtomicU64::new(3)));
        let granted = (0..10).filter(|_| stop.another()).count();
        assert_eq!(granted, 3);
        assert!(!Stop::At(Instant::now()).another());
    }

    #[test]
    fn cpu_use_is_read_from_proc_where_there_is_one() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let used = cpu_seconds("self", 100).expect("own /proc/self/stat parses");
            assert!(used >= 0.0);
        }
        assert_eq!(cpu_seconds("no-such-process", 100), None);
        assert_eq!(cores(Some(1.0), Some(2.0), 2.0), Some(0.5));
        assert_eq!(cores(None, Some(2.0), 2.0), None);
    }
}
