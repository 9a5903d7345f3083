//! `drover-sim jobs run`: N devices of a provisioned thing group connect over MQTT/TLS (client
//! id = thing name), subscribe to their jobs topics, and then one CreateJob (SNAPSHOT, the
//! group's ARN, optionally a `maximumPerMinute` rollout) goes through the AWS IoT API. From
//! that call on the run measures, relative to the moment CreateJob was sent:
//!
//! - when every connected device received `notify-next` naming the job, started it
//!   (`start-next/accepted`) and had its SUCCEEDED update accepted ([`Cycle::Full`]), or only
//!   the first ([`Cycle::Notify`]);
//! - when DescribeJob's `jobProcessDetails` first counted an execution for every targeted thing
//!   (the group can be larger than the connected fleet: executions are queued for all of them);
//! - the durable execution updates per second the devices saw (two per device: start-next and
//!   SUCCEEDED, each a compare-and-swap the server commits before it answers), over the span
//!   from the first notification to the last accepted update.
//!
//! With a rollout rate, or `--measure-seconds`, it stops after that time and reports how many
//! executions existed at each second instead of waiting for every device. Afterwards a job
//! that did not complete is force-canceled, so the next run starts with empty queues.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_iot::error::DisplayErrorContext;
use aws_sdk_iot::types::{JobExecutionsRolloutConfig, JobProcessDetails, TargetSelection};
use indicatif::{ProgressBar, ProgressStyle};
use rumqttc::{Event, Packet, QoS, SubscribeFilter, SubscribeReasonCode};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::agent::{Agent, Cycle, Milestone, Phase};
use super::provision::thing_name;
use crate::mqtt::{Target, failure_kind};

/// How often DescribeJob is read while measuring.
const DESCRIBE_EVERY: Duration = Duration::from_millis(100);
/// How often the run checks whether the devices are done.
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// The document every device receives (small, no placeholders).
const DOCUMENT: &str = r#"{"operation":"firmware-update","version":"2.4.1","url":"https://example.invalid/fw-2.4.1.bin"}"#;

/// What a jobs run is asked to do.
pub struct JobsRun {
    /// Devices to connect: things PREFIX0000000 .. PREFIX{devices-1}, all in `group`.
    pub devices: u32,
    /// Things in the group (executions the job creates).
    pub things: u32,
    pub group: String,
    pub prefix: String,
    pub job_id: String,
    pub cycle: Cycle,
    pub rollout_per_minute: Option<i32>,
    /// Stop after this long instead of waiting for every device.
    pub measure: Option<Duration>,
    /// Give up waiting after this long.
    pub timeout: Duration,
    pub server_pid: Option<u32>,
    pub label: String,
}

/// The figures of one jobs run (one JSON line on stdout). Times are seconds after CreateJob
/// was sent.
#[derive(Debug, Default, Serialize)]
pub struct JobsReport {
    pub label: String,
    pub mode: &'static str,
    pub cycle: &'static str,
    pub job_id: String,
    pub things_targeted: u32,
    pub rollout_per_minute: Option<i32>,
    pub devices_requested: u32,
    pub devices_connected: u32,
    pub connect_failures: BTreeMap<String, u32>,
    pub connect_seconds: f64,
    /// CreateJob's round trip.
    pub create_job_seconds: f64,
    /// DescribeJob first counted an execution for every targeted thing.
    pub all_executions_seconds: Option<f64>,
    pub notified: u32,
    pub started: u32,
    pub succeeded: u32,
    pub first_notified_seconds: Option<f64>,
    pub all_notified_seconds: Option<f64>,
    pub all_started_seconds: Option<f64>,
    pub all_succeeded_seconds: Option<f64>,
    pub rejected: BTreeMap<String, u32>,
    pub unexpected: u32,
    pub first_unexpected: Option<String>,
    pub dropped_connections: u32,
    /// start-next and SUCCEEDED updates accepted (durable compare-and-swap writes).
    pub durable_updates: u32,
    /// From the first notify-next to the last accepted update.
    pub update_phase_seconds: Option<f64>,
    pub updates_per_second: Option<f64>,
    /// Executions DescribeJob counted at each whole second (rate-limited runs).
    pub executions_by_second: Vec<(u32, i64)>,
    pub measured_seconds: f64,
    pub job_status_at_end: String,
    pub server_rss_bytes: Option<u64>,
}

/// What the devices report while the run measures.
#[derive(Default)]
struct Observed {
    notified: Vec<f64>,
    started: Vec<f64>,
    succeeded: Vec<f64>,
    rejected: BTreeMap<String, u32>,
    unexpected: u32,
    first_unexpected: Option<String>,
    dropped: u32,
    finished: u32,
}

/// What DescribeJob showed while the run measured.
#[derive(Default)]
struct Counted {
    all: Option<f64>,
    by_second: Vec<(u32, i64)>,
}

struct Shared {
    /// When CreateJob was sent.
    t0: OnceLock<Instant>,
    observed: Mutex<Observed>,
}

impl Shared {
    fn since_t0(&self) -> f64 {
        self.t0.get().map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    fn record(&self, milestone: Milestone, finished: bool) {
        let at = self.since_t0();
        let mut o = self.observed.lock().expect("observed lock");
        match milestone {
            Milestone::Notified => o.notified.push(at),
            Milestone::Started => o.started.push(at),
            Milestone::Succeeded => o.succeeded.push(at),
            Milestone::Rejected(code) => *o.rejected.entry(code).or_default() += 1,
            Milestone::Unexpected(what) => {
                o.unexpected += 1;
                o.first_unexpected.get_or_insert(what);
            }
        }
        if finished {
            o.finished += 1;
        }
    }
}

fn total(d: &JobProcessDetails) -> i64 {
    [
        d.number_of_queued_things(),
        d.number_of_in_progress_things(),
        d.number_of_succeeded_things(),
        d.number_of_failed_things(),
        d.number_of_rejected_things(),
        d.number_of_canceled_things(),
        d.number_of_removed_things(),
        d.number_of_timed_out_things(),
    ]
    .iter()
    .map(|n| i64::from(n.unwrap_or(0)))
    .sum()
}

/// One device: connect, subscribe, report ready, then answer the jobs protocol until told to
/// stop.
async fn device(
    target: Target,
    thing: String,
    mut agent: Agent,
    shared: Arc<Shared>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut dev = match target.connect(&thing, 10).await {
        Ok(d) => d,
        Err(e) => {
            let _ = ready.send(Err(failure_kind(&e)));
            return;
        }
    };
    let filters = agent
        .subscriptions()
        .into_iter()
        .map(|t| SubscribeFilter::new(t, QoS::AtLeastOnce))
        .collect::<Vec<_>>();
    if let Err(e) = dev.client.subscribe_many(filters).await {
        let _ = ready.send(Err(format!("subscribe: {e}")));
        return;
    }
    loop {
        match dev.events.poll().await {
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, SubscribeReasonCode::Success(_)))
                {
                    let _ = ready.send(Err("subscription refused".into()));
                    return;
                }
                break;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = ready.send(Err(failure_kind(&anyhow!("{e}"))));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            event = dev.events.poll() => match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let (milestone, request) = agent.on_message(&p.topic, &p.payload);
                    if let Some(r) = request
                        && let Err(e) = dev.client.try_publish(r.topic, QoS::AtLeastOnce, false, r.payload)
                    {
                        shared.record(Milestone::Unexpected(format!("publish: {e}")), true);
                        continue;
                    }
                    if let Some(m) = milestone {
                        let finished = matches!(agent.phase(), Phase::Done | Phase::Failed);
                        shared.record(m, finished);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    let mut o = shared.observed.lock().expect("observed lock");
                    o.dropped += 1;
                    if !matches!(agent.phase(), Phase::Done | Phase::Failed) {
                        o.finished += 1;
                    }
                    return;
                }
            }
        }
    }
}

/// The latest of `times` when there are `expected` of them.
fn all_of(times: &[f64], expected: u32) -> Option<f64> {
    (times.len() as u32 >= expected && expected > 0)
        .then(|| times.iter().copied().fold(0.0, f64::max))
}

pub async fn run(
    target: &Target,
    client: &aws_sdk_iot::Client,
    run: JobsRun,
) -> Result<JobsReport> {
    if run.devices == 0 || run.devices > run.things {
        bail!("--devices must be between 1 and --things");
    }
    if let Some(limit) = crate::proc::open_files_limit()
        && u64::from(run.devices) + 100 > limit
    {
        bail!(
            "{} devices do not fit this process's open-files limit {limit} (one socket each)",
            run.devices
        );
    }
    let group_arn = client
        .describe_thing_group()
        .thing_group_name(&run.group)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "DescribeThingGroup {}: {}",
                run.group,
                DisplayErrorContext(e)
            )
        })?
        .thing_group_arn
        .ok_or_else(|| anyhow!("DescribeThingGroup returned no ARN"))?;

    // Connect and subscribe every device before the job exists.
    let shared = Arc::new(Shared {
        t0: OnceLock::new(),
        observed: Mutex::default(),
    });
    let (stop_tx, stop) = watch::channel(false);
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(run.devices as usize);
    for i in 0..run.devices {
        let thing = thing_name(&run.prefix, i);
        let agent = Agent::new(&thing, &run.job_id, run.cycle);
        tasks.push(tokio::spawn(device(
            target.clone(),
            thing,
            agent,
            shared.clone(),
            ready_tx.clone(),
            stop.clone(),
        )));
    }
    drop(ready_tx);
    let bar = ProgressBar::new(u64::from(run.devices)).with_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{} connect+subscribe", run.label));
    let mut report = JobsReport {
        label: run.label.clone(),
        mode: "jobs",
        cycle: match run.cycle {
            Cycle::Full => "full",
            Cycle::Notify => "notify",
        },
        job_id: run.job_id.clone(),
        things_targeted: run.things,
        rollout_per_minute: run.rollout_per_minute,
        devices_requested: run.devices,
        ..JobsReport::default()
    };
    // Each device keeps its sender while it runs, so count answers rather than wait for close.
    for _ in 0..run.devices {
        let Some(outcome) = ready.recv().await else {
            break;
        };
        match outcome {
            Ok(()) => report.devices_connected += 1,
            Err(kind) => *report.connect_failures.entry(kind).or_default() += 1,
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.connect_seconds = connect_started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} of {} devices connected and subscribed in {:.1}s",
        run.label, report.devices_connected, run.devices, report.connect_seconds
    );
    if report.devices_connected == 0 {
        bail!("no device connected: {:?}", report.connect_failures);
    }
    // Let the last SUBACKed subscriptions settle before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // CreateJob: the clock starts when it is sent.
    let mut create = client
        .create_job()
        .job_id(&run.job_id)
        .targets(&group_arn)
        .document(DOCUMENT)
        .target_selection(TargetSelection::Snapshot);
    if let Some(rate) = run.rollout_per_minute {
        create = create.job_executions_rollout_config(
            JobExecutionsRolloutConfig::builder()
                .maximum_per_minute(rate)
                .build(),
        );
    }
    let t0 = Instant::now();
    shared.t0.set(t0).expect("the clock starts once");
    create
        .send()
        .await
        .map_err(|e| anyhow!("CreateJob: {}", DisplayErrorContext(e)))?;
    report.create_job_seconds = t0.elapsed().as_secs_f64();

    // DescribeJob, read throughout: when every target has an execution, and the count by second.
    let counted = Arc::new(Mutex::new(Counted::default()));
    let poller = {
        let (client, job_id, mut stop, things, counted) = (
            client.clone(),
            run.job_id.clone(),
            stop.clone(),
            run.things,
            counted.clone(),
        );
        tokio::spawn(async move {
            loop {
                let answer = client.describe_job().job_id(&job_id).send().await;
                let at = t0.elapsed().as_secs_f64();
                if let Ok(out) = answer
                    && let Some(details) = out.job.as_ref().and_then(|j| j.job_process_details())
                {
                    let n = total(details);
                    let mut c = counted.lock().expect("counted lock");
                    if c.all.is_none() && n >= i64::from(things) {
                        c.all = Some(at);
                    }
                    let second = at as u32;
                    match c.by_second.last_mut() {
                        Some(last) if last.0 == second => last.1 = n,
                        _ => c.by_second.push((second, n)),
                    }
                }
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(DESCRIBE_EVERY) => {}
                }
            }
        })
    };

    let bar = ProgressBar::new(u64::from(report.devices_connected)).with_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{} job", run.label));
    let deadline = t0 + run.measure.unwrap_or(run.timeout);
    loop {
        let (notified, started, succeeded, finished) = {
            let o = shared.observed.lock().expect("observed lock");
            (
                o.notified.len(),
                o.started.len(),
                o.succeeded.len(),
                o.finished,
            )
        };
        let all_counted = counted.lock().expect("counted lock").all.is_some();
        bar.set_position(u64::from(finished));
        bar.set_message(format!(
            "notified {notified}, started {started}, succeeded {succeeded}, all executions {}",
            if all_counted { "counted" } else { "not yet" }
        ));
        if run.measure.is_none() && finished >= report.devices_connected && all_counted {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
    bar.finish_and_clear();
    report.measured_seconds = t0.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    poller.await.context("the DescribeJob poller")?;
    {
        let mut c = counted.lock().expect("counted lock");
        report.all_executions_seconds = c.all;
        if run.measure.is_some() {
            report.executions_by_second = std::mem::take(&mut c.by_second);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    report.server_rss_bytes = run.server_pid.and_then(|p| crate::proc::rss_bytes(p).ok());

    let o = shared
        .observed
        .lock()
        .map(|mut o| std::mem::take(&mut *o))
        .map_err(|_| anyhow!("observed lock poisoned"))?;
    let connected = report.devices_connected;
    report.notified = o.notified.len() as u32;
    report.started = o.started.len() as u32;
    report.succeeded = o.succeeded.len() as u32;
    report.first_notified_seconds = o.notified.iter().copied().reduce(f64::min);
    report.all_notified_seconds = all_of(&o.notified, connected);
    report.all_started_seconds = all_of(&o.started, connected);
    report.all_succeeded_seconds = all_of(&o.succeeded, connected);
    report.rejected = o.rejected;
    report.unexpected = o.unexpected;
    report.first_unexpected = o.first_unexpected;
    report.dropped_connections = o.dropped;
    report.durable_updates = report.started + report.succeeded;
    if run.cycle == Cycle::Full
        && let (Some(first), Some(last)) = (
            report.first_notified_seconds,
            o.succeeded.iter().copied().reduce(f64::max),
        )
        && last > first
    {
        report.update_phase_seconds = Some(last - first);
        report.updates_per_second = Some(f64::from(report.durable_updates) / (last - first));
    }

    // Leave no pending execution behind for the next run (not measured).
    let status = client
        .describe_job()
        .job_id(&run.job_id)
        .send()
        .await
        .ok()
        .and_then(|o| o.job)
        .and_then(|j| j.status)
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    report.job_status_at_end = status.clone();
    if status != "COMPLETED" && status != "CANCELED" {
        client
            .cancel_job()
            .job_id(&run.job_id)
            .force(true)
            .send()
            .await
            .map_err(|e| anyhow!("CancelJob: {}", DisplayErrorContext(e)))?;
    }
    Ok(report)
}
