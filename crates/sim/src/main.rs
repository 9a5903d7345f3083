//! `drover-sim`, the fleet simulator: many devices from one process against an MQTT broker
//! over TLS with client certificates — drover's gateway or any other broker, for side-by-side
//! benchmarks (`scripts/bench-mqtt`), and AWS IoT Jobs devices for `scripts/bench-jobs`. Each
//! run prints a human summary on stderr and one JSON
//! line of figures on stdout. Workloads live under `mqtt/`; the command line only maps flags
//! onto them.

mod jobs;
mod mqtt;
mod proc;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use tokio::sync::Semaphore;

use crate::jobs::agent::Cycle;
use crate::jobs::api::ApiArgs;
use crate::mqtt::Target;

#[derive(Debug, Parser)]
#[command(
    name = "drover-sim",
    version,
    about = "Fleet simulator: many TLS MQTT devices from one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plain MQTT workloads.
    Mqtt {
        #[command(subcommand)]
        workload: MqttWorkload,
    },
    /// AWS IoT Jobs: provision a fleet, then run a job across simulated devices.
    Jobs {
        #[command(subcommand)]
        workload: JobsWorkload,
    },
}

// Parsed once at start and matched once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum JobsWorkload {
    /// Create a thing group and N things in it through the AWS IoT API (idempotent).
    Provision {
        #[command(flatten)]
        api: ApiArgs,
        /// Things to create: PREFIX0000000 .. PREFIX{N-1}.
        #[arg(long)]
        things: u32,
        #[arg(long)]
        group: String,
        #[arg(long, default_value = "dev-")]
        prefix: String,
        /// API requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Connect devices of a provisioned group, CreateJob on the group, measure notify,
    /// start-next and SUCCEEDED on every device.
    Run {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        api: ApiArgs,
        /// Devices to connect (the first N things of the group; each a socket here and in the
        /// broker, so bounded by the open-files limit).
        #[arg(long, default_value_t = 1000)]
        devices: u32,
        /// Things in the group: the executions the job creates.
        #[arg(long)]
        things: u32,
        #[arg(long)]
        group: String,
        #[arg(long, default_value = "dev-")]
        prefix: String,
        #[arg(long)]
        job_id: String,
        /// full: start-next and SUCCEEDED on every device; notify: only wait for notify-next.
        #[arg(long, value_enum, default_value_t = CycleArg::Full)]
        cycle: CycleArg,
        /// jobExecutionsRolloutConfig.maximumPerMinute (no rollout limit when absent).
        #[arg(long)]
        rollout_per_minute: Option<i32>,
        /// Measure for this many seconds and report executions by second, instead of waiting
        /// for every device.
        #[arg(long)]
        measure_seconds: Option<u64>,
        /// Seconds to wait for every device before giving up.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// The server's process id: its resident memory is read at the end.
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CycleArg {
    Full,
    Notify,
}

#[derive(Debug, Subcommand)]
enum MqttWorkload {
    /// Open N connections, hold them idle, report how many held and the broker's memory per
    /// connection (with --server-pid).
    Idle {
        #[command(flatten)]
        target: TargetArgs,
        /// Connections to open.
        #[arg(long, default_value_t = 1000)]
        connections: u32,
        /// The broker's process id: its resident memory is read before and after.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to hold the connections after the last attempt, before memory is read.
        #[arg(long, default_value_t = 10)]
        hold: u64,
    },
    /// QoS 1 round trips: P publishers each send M messages to their own topic, P subscribers
    /// receive them; reports messages/s and latency percentiles.
    Qos1 {
        #[command(flatten)]
        target: TargetArgs,
        /// Publisher (and subscriber) devices.
        #[arg(long, default_value_t = 16)]
        publishers: u32,
        /// Messages per publisher.
        #[arg(long, default_value_t = 10_000)]
        messages: u32,
        /// Messages one publisher may have between publish and receipt.
        #[arg(long, default_value_t = 10)]
        window: u16,
        /// Payload size in bytes (at least 12: sequence and send time).
        #[arg(long, default_value_t = 64)]
        payload: usize,
        /// Topics are PREFIX/0 .. PREFIX/P-1.
        #[arg(long, default_value = "bench/qos1")]
        topic_prefix: String,
    },
}

/// The broker and the identity every simulated device presents.
#[derive(Debug, Clone, Args)]
struct TargetArgs {
    /// Broker host; the server certificate must name it.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// PEM CA certificate(s) the broker's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// PEM client certificate (chain) every device presents.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key of --cert.
    #[arg(long)]
    key: PathBuf,
    /// Client ids are PREFIX-N (qos1: PREFIX-pub-N, PREFIX-sub-N).
    #[arg(long, default_value = "sim")]
    client_id_prefix: String,
    /// MQTT keep-alive in seconds.
    #[arg(long, default_value_t = 600)]
    keep_alive: u64,
    /// TLS handshakes in progress at once.
    #[arg(long, default_value_t = 64)]
    handshakes: usize,
    /// Seconds one device may take from TCP connect to CONNACK.
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
    /// Names this run in the output (e.g. the broker's name).
    #[arg(long, default_value = "run")]
    label: String,
}

impl TargetArgs {
    fn target(&self) -> Result<Target> {
        Ok(Target {
            host: self.host.clone(),
            port: self.port,
            tls: tls::client_config(&self.ca, &self.cert, &self.key)?,
            keep_alive: Duration::from_secs(self.keep_alive),
            handshakes: Arc::new(Semaphore::new(self.handshakes.max(1))),
            connect_timeout: Duration::from_secs(self.connect_timeout),
        })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let line = match cli.command {
        Command::Jobs { workload } => jobs(workload).await?,
        Command::Mqtt { workload } => match workload {
            MqttWorkload::Idle {
                target,
                connections,
                server_pid,
                hold,
            } => {
                let report = mqtt::idle::run(
                    &target.target()?,
                    mqtt::idle::IdleRun {
                        connections,
                        client_id_prefix: target.client_id_prefix.clone(),
                        server_pid,
                        hold: Duration::from_secs(hold),
                        label: target.label.clone(),
                    },
                )
                .await?;
                eprintln!(
                    "{}: {} of {} connections established ({} failed) in {:.1}s, {} held, {} dropped; server {}",
                    report.label,
                    report.established,
                    report.requested,
                    report.failed,
                    report.connect_seconds,
                    report.held,
                    report.dropped_while_held,
                    report
                        .server_bytes_per_connection
                        .map(|b| format!("{:.1} KiB per connection", b / 1024.0))
                        .unwrap_or_else(|| "memory not measured (no --server-pid)".into()),
                );
                for (kind, n) in &report.failures {
                    eprintln!("  {n} × {kind}");
                }
                serde_json::to_string(&report)?
            }
            MqttWorkload::Qos1 {
                target,
                publishers,
                messages,
                window,
                payload,
                topic_prefix,
            } => {
                let report = mqtt::qos1::run(
                    &target.target()?,
                    mqtt::qos1::Qos1Run {
                        publishers,
                        messages,
                        window,
                        payload_bytes: payload,
                        topic_prefix,
                        client_id_prefix: target.client_id_prefix.clone(),
                        label: target.label.clone(),
                    },
                )
                .await?;
                eprintln!(
                    "{}: {} messages in {:.2}s = {:.0} msg/s; latency p50 {} µs, p99 {} µs, max {} µs",
                    report.label,
                    report.received,
                    report.seconds,
                    report.messages_per_second,
                    report.latency_us_p50,
                    report.latency_us_p99,
                    report.latency_us_max,
                );
                serde_json::to_string(&report)?
            }
        },
    };
    println!("{line}");
    Ok(())
}

async fn jobs(workload: JobsWorkload) -> Result<String> {
    Ok(match workload {
        JobsWorkload::Provision {
            api,
            things,
            group,
            prefix,
            concurrency,
        } => {
            let report = jobs::provision::run(
                &api.client()?,
                jobs::provision::Provision {
                    things,
                    group,
                    prefix,
                    concurrency,
                },
            )
            .await?;
            eprintln!(
                "provisioned {} things in group {} in {:.1}s ({:.0} API calls/s)",
                report.things, report.group, report.seconds, report.calls_per_second
            );
            serde_json::to_string(&report)?
        }
        JobsWorkload::Run {
            target,
            api,
            devices,
            things,
            group,
            prefix,
            job_id,
            cycle,
            rollout_per_minute,
            measure_seconds,
            timeout,
            server_pid,
        } => {
            let report = jobs::run::run(
                &target.target()?,
                &api.client()?,
                jobs::run::JobsRun {
                    devices,
                    things,
                    group,
                    prefix,
                    job_id,
                    cycle: match cycle {
                        CycleArg::Full => Cycle::Full,
                        CycleArg::Notify => Cycle::Notify,
                    },
                    rollout_per_minute,
                    measure: measure_seconds.map(Duration::from_secs),
                    timeout: Duration::from_secs(timeout),
                    server_pid,
                    label: target.label.clone(),
                },
            )
            .await?;
            let secs = |t: Option<f64>| t.map_or("—".to_string(), |t| format!("{t:.2}s"));
            eprintln!(
                "{}: job {} on {} things, {} devices: CreateJob {:.2}s; all executions {}; \
                 notified {} (all {}), started {} (all {}), succeeded {} (all {}); \
                 {} durable updates at {}/s; rejected {:?}, unexpected {}, dropped {}",
                report.label,
                report.job_id,
                report.things_targeted,
                report.devices_connected,
                report.create_job_seconds,
                secs(report.all_executions_seconds),
                report.notified,
                secs(report.all_notified_seconds),
                report.started,
                secs(report.all_started_seconds),
                report.succeeded,
                secs(report.all_succeeded_seconds),
                report.durable_updates,
                report
                    .updates_per_second
                    .map_or("—".to_string(), |r| format!("{r:.0}")),
                report.rejected,
                report.unexpected,
                report.dropped_connections,
            );
            serde_json::to_string(&report)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "drover-sim",
            "mqtt",
            "qos1",
            "--port",
            "8883",
            "--ca",
            "ca.pem",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--publishers",
            "4",
        ])
        .expect("parses");
        let Command::Mqtt {
            workload:
                MqttWorkload::Qos1 {
                    publishers,
                    messages,
                    ..
                },
        } = cli.command
        else {
            panic!("expected mqtt qos1");
        };
        assert_eq!((publishers, messages), (4, 10_000));
        assert!(Cli::try_parse_from(["drover-sim", "mqtt", "idle"]).is_err());

        let cli = Cli::try_parse_from([
            "drover-sim",
            "jobs",
            "run",
            "--port",
            "8883",
            "--ca",
            "ca.pem",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--endpoint",
            "https://127.0.0.1:8443",
            "--api-ca",
            "ca.pem",
            "--access-key",
            "AKIA",
            "--secret-key",
            "s",
            "--things",
            "100000",
            "--devices",
            "10000",
            "--group",
            "fleet",
            "--job-id",
            "j1",
            "--cycle",
            "notify",
        ])
        .expect("parses");
        let Command::Jobs {
            workload:
                JobsWorkload::Run {
                    things,
                    devices,
                    cycle,
                    rollout_per_minute,
                    ..
                },
        } = cli.command
        else {
            panic!("expected jobs run");
        };
        assert_eq!(
            (things, devices, rollout_per_minute),
            (100_000, 10_000, None)
        );
        assert!(matches!(cycle, CycleArg::Notify));
    }
}
