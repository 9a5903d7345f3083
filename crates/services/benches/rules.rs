//! Rules-engine throughput: messages per second through one rule with a WHERE clause and a
//! republish action, on the real broker and engine (in-process publishers, so the figure is
//! the engine's, not TLS's). Half the messages match.
//!
//! The publisher keeps at most `WINDOW` matching messages in flight (published, not yet
//! republished), because the broker drops messages to an in-process subscriber that falls
//! more than 4096 behind; the run checks that nothing was lost. Run with
//! `cargo bench -p drover-services --bench rules`; `RULES_BENCH_MESSAGES` sets the count.
//! Figures go to BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use drover_core::arn::ArnScope;
use drover_mqtt::{
    AuthorityChange, Broker, BrokerConfig, DeviceAuthority, DeviceGrant, Message, PresenceRecord,
};
use drover_services::{
    EngineConfig, Registry, RulesEngine, SystemClock, TopicRulePayload, TopicRules,
};
use drover_store::{SharedStore, SqliteStore};
use serde_json::json;
use tokio::sync::{broadcast, watch};

const WINDOW: u64 = 512;

struct NoDevices(broadcast::Sender<AuthorityChange>);

#[async_trait]
impl DeviceAuthority for NoDevices {
    async fn authenticate(&self, _: &[u8], _: &str) -> Result<DeviceGrant, String> {
        Err("benchmark".into())
    }
    fn changes(&self) -> broadcast::Receiver<AuthorityChange> {
        self.0.subscribe()
    }
    async fn record_presence(&self, _: &str, _: &PresenceRecord) -> Result<i64, String> {
        Ok(1)
    }
}

fn main() {
    let messages: u64 = std::env::var("RULES_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(messages));
}

async fn run(messages: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
    let scope = ArnScope::new("us-east-1", "123456789012");
    let registry = Registry::new(store.clone(), scope.clone(), Arc::new(SystemClock));
    let (_shutdown, watch) = watch::channel(false);
    let broker = Broker::start(
        BrokerConfig::default(),
        Arc::new(NoDevices(broadcast::channel(4).0)),
        store.clone(),
        watch,
    )
    .await
    .unwrap();
    let engine = RulesEngine::new(broker.clone(), registry, EngineConfig::default()).unwrap();
    let rules = TopicRules::new(
        store,
        scope,
        Arc::new(SystemClock),
        Some(engine),
        "https://localhost:8443",
    )
    .unwrap();
    rules
        .create_topic_rule(
            "bench",
            &TopicRulePayload {
                sql: "SELECT temperature AS t, topic(2) AS device FROM 'sensors/+/data' \
                      WHERE temperature > 50 AND isString(unit)"
                    .into(),
                actions: vec![
                    json!({"republish": {"topic": "alerts/${topic(2)}", "roleArn": "r"}}),
                ],
                aws_iot_sql_version: Some("2016-03-23".into()),
                ..TopicRulePayload::default()
            },
        )
        .await
        .unwrap();
    let mut out = broker.subscribe_internal("alerts/#").unwrap();

    let started = Instant::now();
    let (mut matched_sent, mut received) = (0u64, 0u64);
    for i in 0..messages {
        let hot = i % 2 == 0;
        let payload = json!({"temperature": if hot { 70 } else { 20 }, "unit": "C", "seq": i});
        let topic = format!("sensors/dev{}/data", i % 1000);
        broker
            .publish(Message::system(topic, payload.to_string(), 0))
            .await
            .unwrap();
        if hot {
            matched_sent += 1;
        }
        while matched_sent - received >= WINDOW {
            out.receiver.recv().await.unwrap();
            received += 1;
        }
    }
    while received < matched_sent {
        out.receiver.recv().await.unwrap();
        received += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rules bench: {messages} messages ({matched_sent} matched and republished) in {elapsed:.2} s: \
         {:.0} messages/s through the rule, {:.0} republished/s",
        messages as f64 / elapsed,
        matched_sent as f64 / elapsed
    );
}
