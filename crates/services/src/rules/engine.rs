//! The rules engine: one task per enabled rule, subscribed to the broker with the rule's
//! FROM filter, evaluating the SQL on each message and handing matches to the action pool.
//!
//! A rule's task only evaluates. Each of the rule's actions has its own worker task behind a
//! bounded queue ([`EngineConfig::action_queue`]): `republish` and the thing-attributes action
//! run in order, one message after another; `http` requests run concurrently (at most
//! [`EngineConfig::http_concurrency`] per action). A full queue drops (and counts) the action
//! rather than waiting, and the broker drops (and counts) messages to a rule that falls
//! behind, so neither a slow webhook nor a dead one ever holds up delivery to devices, the
//! rule's other actions, or other rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drover_core::rules::actions::{ActionSpec, parse_action, parse_actions};
use drover_core::rules::{self as sql, Context, Payload, Selected, Statement};
use drover_mqtt::Broker;
use drover_store::{PageRequest, SharedStore, TopicRuleFilter, TopicRuleRecord};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::actions::{ActionRunner, Matched};
use crate::Registry;

/// The engine's limits and the http action's retry policy.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Matches one action may have waiting before further ones are dropped.
    pub action_queue: usize,
    /// Requests (with their retries) one http action may have running at once.
    pub http_concurrency: usize,
    /// Attempts an http action makes before it fails and the error action runs.
    pub http_attempts: u32,
    /// The wait before the first retry; each further retry waits twice as long.
    pub http_first_backoff: Duration,
    /// One http request's limit, connection included.
    pub http_timeout: Duration,
    /// How often the store is re-read for rules other nodes changed.
    pub resync_every: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            action_queue: 1024,
            http_concurrency: 64,
            http_attempts: 4,
            http_first_backoff: Duration::from_millis(200),
            http_timeout: Duration::from_secs(3),
            resync_every: Duration::from_secs(30),
        }
    }
}

/// A rule ready to run.
pub(crate) struct CompiledRule {
    pub name: Arc<str>,
    pub statement: Statement,
    pub actions: Vec<ActionSpec>,
    pub error_action: Option<ActionSpec>,
}

impl CompiledRule {
    /// Compiles a stored rule; the services checked it before storing, so a failure here
    /// means a record written by a different drover version, which is logged and skipped.
    fn compile(record: &TopicRuleRecord) -> Result<CompiledRule, String> {
        let statement = sql::parse(&record.sql).map_err(|e| e.to_string())?;
        let actions: Vec<Value> =
            serde_json::from_str(&record.actions).map_err(|e| e.to_string())?;
        let actions = parse_actions(&actions).map_err(|e| e.to_string())?;
        let error_action = match &record.error_action {
            Some(text) => {
                let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                Some(parse_action(&v).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(CompiledRule {
            name: record.name.as_str().into(),
            statement,
            actions,
            error_action,
        })
    }
}

struct Installed {
    version: i64,
    task: JoinHandle<()>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        // Dropping the task's future drops its subscription, which unsubscribes it.
        self.task.abort();
    }
}

struct Inner {
    broker: Broker,
    runner: Arc<ActionRunner>,
    config: EngineConfig,
    installed: Mutex<HashMap<String, Installed>>,
    /// Held from reading the store to applying what was read, by the periodic re-sync and by
    /// each change the API hands over: a re-sync that read before a change must not apply
    /// its older view after it (remove a rule just created, or bring back one just deleted).
    applying: tokio::sync::Mutex<()>,
}

/// The running rules. Cheap to clone.
#[derive(Clone)]
pub struct RulesEngine {
    inner: Arc<Inner>,
}

impl RulesEngine {
    pub fn new(broker: Broker, registry: Registry, config: EngineConfig) -> Result<Self, String> {
        let runner = ActionRunner::new(broker.clone(), registry, &config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                broker,
                runner: Arc::new(runner),
                config,
                installed: Mutex::default(),
                applying: tokio::sync::Mutex::default(),
            }),
        })
    }

    /// Loads every rule from the store, then keeps re-reading it every
    /// `config.resync_every` (rules changed through other nodes).
    pub async fn start(&self, store: SharedStore, every: Duration) -> Result<(), String> {
        self.sync(&store).await?;
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let engine = RulesEngine { inner };
                if let Err(e) = engine.sync(&store).await {
                    tracing::warn!(error = %e, "re-reading topic rules failed");
                }
            }
        });
        Ok(())
    }

    /// Reloads the topic rule destinations http actions deliver through.
    pub async fn sync_destinations(&self, store: &SharedStore) -> Result<(), String> {
        let _applying = self.inner.applying.lock().await;
        self.load_destinations(store).await
    }

    async fn load_destinations(&self, store: &SharedStore) -> Result<(), String> {
        let all = super::destinations::all_destinations(store)
            .await
            .map_err(|e| e.to_string())?;
        self.inner.runner.set_destinations(all);
        Ok(())
    }

    /// Makes the running rules (and the destinations they deliver through) match the store.
    pub async fn sync(&self, store: &SharedStore) -> Result<(), String> {
        let _applying = self.inner.applying.lock().await;
        self.load_destinations(store).await?;
        let mut records = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: 250,
        };
        loop {
            let batch = store
                .list_topic_rules(&TopicRuleFilter::default(), &page)
                .await
                .map_err(|e| e.to_string())?;
            records.extend(batch.items);
            match batch.next_after {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
        let names: std::collections::HashSet<&str> =
            records.iter().map(|r| r.name.as_str()).collect();
        let stale: Vec<String> = self
            .lock()
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for name in stale {
            self.lock().remove(&name);
        }
        for record in &records {
            self.start_rule(record);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Installed>> {
        self.inner
            .installed
            .lock()
            .expect("the rules table lock is never poisoned")
    }

    /// Runs (or stops, when disabled) a rule as stored; a version already running is left
    /// alone.
    pub async fn install(&self, record: &TopicRuleRecord) {
        let _applying = self.inner.applying.lock().await;
        self.start_rule(record);
    }

    fn start_rule(&self, record: &TopicRuleRecord) {
        let mut installed = self.lock();
        if installed
            .get(&record.name)
            .is_some_and(|i| i.version >= record.version)
            && !record.disabled
        {
            return;
        }
        installed.remove(&record.name);
        if record.disabled {
            return;
        }
        let rule = match CompiledRule::compile(record) {
            Ok(rule) => rule,
            Err(e) => {
                tracing::error!(rule = %record.name, error = %e, "a stored topic rule cannot run");
                return;
            }
        };
        let subscription = match self.inner.broker.subscribe_internal(&rule.statement.from) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(rule = %record.name, error = %e, "cannot subscribe a topic rule");
                return;
            }
        };
        let rule = Arc::new(rule);
        let config = &self.inner.config;
        let queues = (0..rule.actions.len())
            .map(|index| {
                let (queue, matches) = mpsc::channel(config.action_queue.max(1));
                let concurrency = config.http_concurrency.max(1);
                let runner = self.inner.runner.clone();
                tokio::spawn(action_worker(
                    rule.clone(),
                    index,
                    matches,
                    runner,
                    concurrency,
                ));
                queue
            })
            .collect();
        // The workers end when the rule's task (holding their queues) ends.
        let task = tokio::spawn(run_rule(rule, subscription, queues));
        installed.insert(
            record.name.clone(),
            Installed {
                version: record.version,
                task,
            },
        );
    }

    /// Stops a rule.
    pub async fn remove(&self, name: &str) {
        let _applying = self.inner.applying.lock().await;
        self.lock().remove(name);
    }

    /// How many rules are running.
    pub fn running(&self) -> usize {
        self.lock().len()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn run_rule(
    rule: Arc<CompiledRule>,
    mut subscription: drover_mqtt::InternalSubscription,
    queues: Vec<mpsc::Sender<Arc<Matched>>>,
) {
    let matched_total =
        metrics::counter!("drover_rule_matched_total", "rule" => rule.name.to_string());
    let dropped =
        metrics::counter!("drover_rule_actions_dropped_total", "rule" => rule.name.to_string());
    while let Some(message) = subscription.receiver.recv().await {
        let payload = Payload::parse(&message.payload);
        let timestamp_ms = now_ms();
        let client_id: Option<Arc<str>> = message.publisher().map(Arc::from);
        let selected: Option<Selected> = {
            let ctx = Context {
                topic: &message.topic,
                client_id: client_id.as_deref(),
                principal: None,
                timestamp_ms,
                new_uuid: &new_uuid,
            };
            sql::evaluate(&rule.statement, &ctx, &payload)
        };
        let Some(selected) = selected else { continue };
        matched_total.increment(1);
        let matched = Arc::new(Matched {
            topic: message.topic.clone(),
            client_id,
            original: message.payload.clone(),
            payload,
            selected: selected.to_bytes(),
            timestamp_ms,
        });
        for queue in &queues {
            if queue.try_send(matched.clone()).is_err() {
                dropped.increment(1);
                tracing::warn!(rule = %rule.name, "an action's queue is full; a match was dropped");
            }
        }
    }
}

/// Runs one action of a rule for each match, in order; http requests concurrently.
async fn action_worker(
    rule: Arc<CompiledRule>,
    index: usize,
    mut matches: mpsc::Receiver<Arc<Matched>>,
    runner: Arc<ActionRunner>,
    concurrency: usize,
) {
    let concurrent = matches!(rule.actions[index], ActionSpec::Http { .. });
    let permits = Arc::new(Semaphore::new(concurrency));
    while let Some(matched) = matches.recv().await {
        if !concurrent {
            runner.execute(&rule, index, &matched).await;
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (runner, rule) = (runner.clone(), rule.clone());
        tokio::spawn(async move {
            runner.execute(&rule, index, &matched).await;
            drop(permit);
        });
    }
}
