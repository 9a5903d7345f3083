//! Topic rules against a real SQLite store and a real broker (no listener: messages are
//! published in-process, as drover's own events are): the CRUD rules, and the engine running
//! republish, http (with retries and the error action) and thing-attributes actions, and the
//! topic rule destinations http actions deliver through (confirmation, enabling, disabling).

// Test helpers panic on setup failure by design: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use drover_core::arn::ArnScope;
use drover_core::registry::{ThingGroupSpec, ThingSpec};
use drover_mqtt::{
    AuthorityChange, Broker, BrokerConfig, DeviceAuthority, DeviceGrant, Message, PresenceRecord,
};
use drover_services::dynamic_groups::DynamicGroupSpec;
use drover_services::rules::{DISABLED, ENABLED, ERROR, IN_PROGRESS};
use drover_services::{
    EngineConfig, Registry, RulesEngine, ServiceError, SystemClock, TopicRulePayload, TopicRules,
};
use drover_store::{SharedStore, SqliteStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

/// The broker here serves no devices; it only routes in-process messages.
struct NoDevices(broadcast::Sender<AuthorityChange>);

#[async_trait]
impl DeviceAuthority for NoDevices {
    async fn authenticate(&self, _: &[u8], _: &str) -> Result<DeviceGrant, String> {
        Err("no devices in this test".into())
    }
    fn changes(&self) -> broadcast::Receiver<AuthorityChange> {
        self.0.subscribe()
    }
    async fn record_presence(&self, _: &str, _: &PresenceRecord) -> Result<i64, String> {
        Ok(1)
    }
}

struct Fixture {
    rules: TopicRules,
    registry: Registry,
    broker: Broker,
    store: SharedStore,
    _shutdown: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
    let scope = ArnScope::new("us-east-1", "123456789012");
    let registry = Registry::new(store.clone(), scope.clone(), Arc::new(SystemClock));
    let (shutdown, watch) = watch::channel(false);
    let authority = Arc::new(NoDevices(broadcast::channel(4).0));
    let broker = Broker::start(BrokerConfig::default(), authority, store.clone(), watch)
        .await
        .unwrap();
    let config = EngineConfig {
        http_attempts: 3,
        http_first_backoff: Duration::from_millis(10),
        ..EngineConfig::default()
    };
    let engine = RulesEngine::new(broker.clone(), registry.clone(), config).unwrap();
    let rules = TopicRules::new(
        store.clone(),
        scope,
        Arc::new(SystemClock),
        Some(engine),
        "https://drover.test:8443",
    )
    .unwrap();
    Fixture {
        rules,
        registry,
        broker,
        store,
        _shutdown: shutdown,
        _dir: dir,
    }
}

fn payload(sql: &str, actions: Value) -> TopicRulePayload {
    TopicRulePayload {
        sql: sql.into(),
        actions: actions.as_array().unwrap().clone(),
        aws_iot_sql_version: Some("2016-03-23".into()),
        ..TopicRulePayload::default()
    }
}

fn republish(topic: &str) -> Value {
    json!({"republish": {"topic": topic, "roleArn": "arn:aws:iam::123456789012:role/r", "qos": 1}})
}

async fn publish(broker: &Broker, topic: &str, payload: Value) {
    broker
        .publish(Message::system(topic, payload.to_string(), 0))
        .await
        .unwrap();
}

async fn next_json(sub: &mut drover_mqtt::InternalSubscription) -> (String, Value) {
    let message = tokio::time::timeout(Duration::from_secs(20), sub.receiver.recv())
        .await
        .expect("a message within 20 s")
        .unwrap();
    (
        message.topic.to_string(),
        serde_json::from_slice(&message.payload).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_checks_everything_before_storing() {
    let f = fixture().await;
    let p = payload("SELECT * FROM 'a/+'", json!([republish("b")]));
    let created = f.rules.create_topic_rule("rule_1", &p).await.unwrap();
    assert_eq!(created.topic_pattern, "a/+");
    assert!(matches!(
        f.rules.create_topic_rule("rule_1", &p).await,
        Err(ServiceError::AlreadyExists { .. })
    ));

    // Bad SQL: SqlParse with its position, nothing stored.
    let bad = payload("SELECT * FROM 'a/+' WHERE", json!([]));
    match f.rules.create_topic_rule("rule_bad", &bad).await {
        Err(ServiceError::SqlParse(m)) => assert!(m.starts_with("line 1, column 26"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.rules.get_topic_rule("rule_bad").await,
        Err(ServiceError::Unauthorized(_))
    ));

    // Bad names, versions, actions and templates: refused, nothing stored.
    for (name, p) in [
        ("bad-name", p.clone()),
        (
            "rule_2",
            TopicRulePayload {
                aws_iot_sql_version: Some("2020-01-01".into()),
                ..p.clone()
            },
        ),
        (
            "rule_2",
            payload(
                "SELECT * FROM 'a'",
                json!([{"lambda": {"functionArn": "x"}}]),
            ),
        ),
        (
            "rule_2",
            payload("SELECT * FROM 'a'", json!([republish("x/${topic(}")])),
        ),
        (
            "rule_2",
            payload("SELECT * FROM 'a'", json!([{"http": {"url": "ftp://x"}}])),
        ),
    ] {
        let err = f.rules.create_topic_rule(name, &p).await.unwrap_err();
        assert!(
            matches!(err, ServiceError::InvalidRequest(_)),
            "{name}: {err:?}"
        );
    }
    assert_eq!(
        f.rules
            .list_topic_rules(None, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Replace keeps the creation time; a bad replacement changes nothing.
    let replaced = f
        .rules
        .replace_topic_rule("rule_1", &payload("SELECT x FROM 'c/#'", json!([])))
        .await
        .unwrap();
    assert_eq!(replaced.created_at, created.created_at);
    assert_eq!(replaced.topic_pattern, "c/#");
    assert!(matches!(
        f.rules
            .replace_topic_rule("rule_1", &payload("SELEC", json!([])))
            .await,
        Err(ServiceError::SqlParse(_))
    ));
    assert_eq!(
        f.rules.get_topic_rule("rule_1").await.unwrap().sql,
        "SELECT x FROM 'c/#'"
    );
    assert!(matches!(
        f.rules.replace_topic_rule("nope", &p).await,
        Err(ServiceError::Unauthorized(_))
    ));

    // Enable/disable, listing filters and pages, delete.
    f.rules.set_enabled("rule_1", false).await.unwrap();
    assert!(f.rules.get_topic_rule("rule_1").await.unwrap().disabled);
    f.rules.create_topic_rule("rule_0", &p).await.unwrap();
    let disabled = f
        .rules
        .list_topic_rules(None, Some(true), None, None)
        .await
        .unwrap();
    assert_eq!(
        disabled
            .items
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["rule_1"]
    );
    let by_topic = f
        .rules
        .list_topic_rules(Some("a/+"), None, None, None)
        .await
        .unwrap();
    assert_eq!(by_topic.items.len(), 1);
    let first = f
        .rules
        .list_topic_rules(None, None, None, Some(1))
        .await
        .unwrap();
    assert_eq!(first.items[0].name, "rule_0");
    let second = f
        .rules
        .list_topic_rules(None, None, first.next_token.as_deref(), Some(1))
        .await
        .unwrap();
    assert_eq!(second.items[0].name, "rule_1");
    assert!(second.next_token.is_none());
    for bad in [0, 10_001] {
        assert!(matches!(
            f.rules.list_topic_rules(None, None, None, Some(bad)).await,
            Err(ServiceError::InvalidRequest(_))
        ));
    }
    assert!(matches!(
        f.rules
            .list_topic_rules(None, None, Some("garbage!"), None)
            .await,
        Err(ServiceError::InvalidRequest(_))
    ));
    f.rules.delete_topic_rule("rule_1").await.unwrap();
    assert!(matches!(
        f.rules.delete_topic_rule("rule_1").await,
        Err(ServiceError::Unauthorized(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_runs_for_matching_messages_only() {
    let f = fixture().await;
    let mut out = f.broker.subscribe_internal("alerts/#").unwrap();
    f.rules
        .create_topic_rule(
            "hot",
            &payload(
                "SELECT temperature AS t, topic(2) AS device FROM 'sensors/+/data' WHERE temperature > 50",
                json!([republish("alerts/${topic(2)}")]),
            ),
        )
        .await
        .unwrap();
    publish(&f.broker, "sensors/d1/data", json!({"temperature": 20})).await;
    publish(&f.broker, "sensors/d2/data", json!({"temperature": 70})).await;
    assert_eq!(
        next_json(&mut out).await,
        ("alerts/d2".to_string(), json!({"t": 70, "device": "d2"}))
    );

    // Disabled: no output; enabled again: output again.
    f.rules.set_enabled("hot", false).await.unwrap();
    publish(&f.broker, "sensors/d3/data", json!({"temperature": 80})).await;
    f.rules.set_enabled("hot", true).await.unwrap();
    publish(&f.broker, "sensors/d4/data", json!({"temperature": 90})).await;
    assert_eq!(next_json(&mut out).await.0, "alerts/d4");

    // A restarted engine picks the stored rules up.
    let engine = RulesEngine::new(
        f.broker.clone(),
        f.registry.clone(),
        EngineConfig::default(),
    )
    .unwrap();
    engine.sync(&f.store).await.unwrap();
    assert_eq!(engine.running(), 1);
}

type Log = Arc<Mutex<Vec<(String, String)>>>;

/// A one-connection-at-a-time HTTP server. Destination confirmations (AWS's
/// `x-amz-rules-engine-message-type: DestinationConfirmation`) are logged in `confirmations`
/// and answered 200; other requests are logged in `seen` and answered with `status`, or never
/// answered when it is `None`. `close` stops listening, leaving a dead port.
struct Hook {
    url: String,
    seen: Log,
    confirmations: Log,
    stop: Arc<tokio::sync::Notify>,
}

impl Hook {
    fn close(&self) {
        self.stop.notify_one();
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some((head, text[end + 4..end + 4 + length].to_string()));
            }
        }
    }
}

async fn webhook(status: Option<u16>) -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (seen, confirmations): (Log, Log) = Default::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (log, confirm_log, stopped) = (seen.clone(), confirmations.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped.notified() => return,
            };
            let Ok((mut socket, _)) = accepted else {
                return;
            };
            let Some((head, body)) = read_request(&mut socket).await else {
                continue;
            };
            let confirmation = head
                .to_ascii_lowercase()
                .contains("x-amz-rules-engine-message-type: destinationconfirmation");
            let answer = if confirmation {
                confirm_log.lock().unwrap().push((head, body));
                Some(200)
            } else {
                log.lock().unwrap().push((head, body));
                status
            };
            match answer {
                Some(code) => {
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
                // Keeps the connection open, unanswered, until the test ends.
                None => {
                    tokio::spawn(async move {
                        let _held = socket;
                        std::future::pending::<()>().await;
                    });
                }
            }
        }
    });
    Hook {
        url,
        seen,
        confirmations,
        stop,
    }
}

/// Waits for the destination confirmation `hook` was sent, confirms it with its token (as a
/// visit to the enableUrl does) and enables the destination. Returns the destination's ARN.
async fn confirm_and_enable(rules: &TopicRules, hook: &Hook) -> String {
    let (head, body) = wait_for(|| hook.confirmations.lock().unwrap().last().cloned()).await;
    let message: Value = serde_json::from_str(&body).unwrap();
    let token = message["confirmationToken"].as_str().unwrap();
    let arn = message["arn"].as_str().unwrap().to_string();
    assert_eq!(message["messageType"], "DestinationConfirmation");
    assert_eq!(
        message["enableUrl"],
        format!("https://drover.test:8443/confirmdestination/{token}")
    );
    assert!(
        head.contains(&format!("?confirmationToken={token} ")),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-amz-rules-engine-destination-arn: {arn}")),
        "{head}"
    );
    let confirmed = rules.confirm_topic_rule_destination(token).await.unwrap();
    assert_eq!(confirmed.status, DISABLED);
    rules
        .update_topic_rule_destination(&arn, ENABLED)
        .await
        .unwrap();
    arn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_posts_the_selection_with_headers() {
    let f = fixture().await;
    let hook = webhook(Some(200)).await;
    let url = hook.url.clone();
    f.rules
        .create_topic_rule(
            "hook",
            &payload(
                "SELECT *, clientid() AS c FROM 'in/#'",
                json!([{"http": {"url": url, "headers": [{"key": "x-device", "value": "${topic(2)}"}]}}]),
            ),
        )
        .await
        .unwrap();
    // The rule created the URL's destination; it delivers once confirmed and enabled.
    confirm_and_enable(&f.rules, &hook).await;
    publish(&f.broker, "in/dev9", json!({"v": 1})).await;
    let (head, body) = wait_for(|| hook.seen.lock().unwrap().first().cloned()).await;
    assert!(head.starts_with("POST /hook "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-device: dev9"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"v": 1, "c": "n/a"})
    );
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = probe() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the condition did not hold within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_http_retries_then_runs_the_error_action() {
    let f = fixture().await;
    let hook = webhook(Some(503)).await;
    let (url, seen) = (hook.url.clone(), hook.seen.clone());
    let mut errors = f.broker.subscribe_internal("errors/#").unwrap();
    let mut p = payload("SELECT * FROM 'in/#'", json!([{"http": {"url": url}}]));
    p.error_action = Some(republish("errors/${topic(2)}"));
    f.rules.create_topic_rule("flaky", &p).await.unwrap();
    confirm_and_enable(&f.rules, &hook).await;
    publish(&f.broker, "in/dev1", json!({"v": 2})).await;
    let (topic, report) = next_json(&mut errors).await;
    assert_eq!(topic, "errors/dev1");
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "three attempts before giving up"
    );
    assert_eq!(report["ruleName"], "flaky");
    assert_eq!(report["topic"], "in/dev1");
    assert_eq!(report["failures"][0]["failedAction"], "HttpAction");
    assert_eq!(report["failures"][0]["failedResource"], url.as_str());
    assert!(
        report["failures"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert_eq!(report["base64OriginalPayload"], "eyJ2IjoyfQ==");

    // An endpoint that died after its destination was confirmed fails the same way.
    let dead = webhook(Some(200)).await;
    let dead_url = dead.url.clone();
    f.rules
        .create_topic_rule_destination(&dead_url)
        .await
        .unwrap();
    confirm_and_enable(&f.rules, &dead).await;
    dead.close();
    let mut p = payload(
        "SELECT * FROM 'dead/#'",
        json!([{"http": {"url": dead_url}}]),
    );
    p.error_action = Some(republish("errors/dead"));
    f.rules.create_topic_rule("dead", &p).await.unwrap();
    publish(&f.broker, "dead/x", json!({})).await;
    let (topic, report) = next_json(&mut errors).await;
    assert_eq!(topic, "errors/dead");
    assert!(
        report["failures"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("after 3 attempts")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_does_not_hold_up_other_rules() {
    let f = fixture().await;
    // Answers its confirmation, then accepts connections and never answers.
    let silent = webhook(None).await;
    let url = silent.url.clone();
    f.rules.create_topic_rule_destination(&url).await.unwrap();
    confirm_and_enable(&f.rules, &silent).await;
    f.rules
        .create_topic_rule(
            "slow",
            &payload("SELECT * FROM 'in/#'", json!([{"http": {"url": url}}])),
        )
        .await
        .unwrap();
    f.rules
        .create_topic_rule(
            "fast",
            &payload("SELECT * FROM 'in/#'", json!([republish("out/x")])),
        )
        .await
        .unwrap();
    let mut out = f.broker.subscribe_internal("out/#").unwrap();
    for i in 0..300 {
        publish(&f.broker, "in/a", json!({"i": i})).await;
    }
    for i in 0..300 {
        assert_eq!(next_json(&mut out).await.1, json!({"i": i}));
    }
    // The http action did reach the endpoint (through its enabled destination) and hangs there.
    wait_for(|| silent.seen.lock().unwrap().first().cloned()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thing_attributes_action_moves_the_thing_out_of_its_dynamic_group() {
    let f = fixture().await;
    let index = drover_services::FleetIndex::new(f.store.clone(), f.registry.membership().clone());
    let mut configuration = drover_core::indexing::IndexingConfiguration::default();
    configuration
        .thing_indexing_configuration
        .thing_indexing_mode = "REGISTRY".into();
    index.update_configuration(configuration).await.unwrap();
    f.registry
        .create_thing(ThingSpec {
            name: "dev1".into(),
            type_name: None,
            attributes: [("app_version".to_string(), "1.0".to_string())].into(),
        })
        .await
        .unwrap();
    f.registry
        .create_dynamic_thing_group(DynamicGroupSpec {
            group: ThingGroupSpec {
                name: "outdated".into(),
                ..Default::default()
            },
            query_string: "attributes.app_version < 2.0".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        f.registry
            .membership()
            .all_members("outdated")
            .await
            .unwrap(),
        ["dev1"]
    );

    let action = json!({"http": {
        "url": "drover:thing-attributes/${thingArn}",
        "headers": [{"key": "app_version", "value": "${statusDetails.appVersion}"}]
    }});
    let mut p = payload(
        "SELECT topic(4) as job_id, * FROM '$aws/events/jobExecution/+/succeeded'",
        json!([action]),
    );
    p.error_action = Some(republish("errors/attrs"));
    f.rules.create_topic_rule("app_version", &p).await.unwrap();
    let mut errors = f.broker.subscribe_internal("errors/#").unwrap();

    // An event without the field fails the action (an empty value would delete the
    // attribute) and runs the error action; the thing keeps its version.
    let event = |details: Value| {
        json!({
            "eventType": "JOB_EXECUTION", "operation": "succeeded", "jobId": "job-1",
            "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/dev1",
            "status": "SUCCEEDED", "statusDetails": details
        })
    };
    publish(
        &f.broker,
        "$aws/events/jobExecution/job-1/succeeded",
        event(json!({})),
    )
    .await;
    let (_, report) = next_json(&mut errors).await;
    assert!(
        report["failures"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Undefined")
    );

    publish(
        &f.broker,
        "$aws/events/jobExecution/job-1/succeeded",
        event(json!({"appVersion": "2.0"})),
    )
    .await;
    // The action runs on its own worker: wait until its update has returned, which is when
    // both the attribute and the membership it causes are stored (the attribute is written
    // first, so seeing it alone would race the membership change).
    let registry = f.registry.clone();
    let left_group = || async {
        let thing = registry.describe_thing("dev1").await.unwrap();
        let members = registry.membership().all_members("outdated").await.unwrap();
        thing.attributes.get("app_version").map(String::as_str) == Some("2.0") && members.is_empty()
    };
    for _ in 0..400 {
        if left_group().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let thing = registry.describe_thing("dev1").await.unwrap();
    assert_eq!(thing.attributes["app_version"], "2.0");
    assert!(
        f.registry
            .membership()
            .all_members("outdated")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_checked_confirmed_and_gate_delivery() {
    let f = fixture().await;
    // Bad confirmation URLs: refused, nothing stored.
    let long = format!("https://h/{}", "x".repeat(2000));
    for bad in ["", "not a url", "ftp://h/x", "https://", long.as_str()] {
        assert!(
            matches!(
                f.rules.create_topic_rule_destination(bad).await,
                Err(ServiceError::InvalidRequest(_))
            ),
            "{bad:?}"
        );
    }
    assert!(
        f.rules
            .list_topic_rule_destinations(None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let hook = webhook(Some(200)).await;
    let base = hook.url.trim_end_matches("hook").to_string();
    let created = f.rules.create_topic_rule_destination(&base).await.unwrap();
    assert_eq!(created.status, IN_PROGRESS);
    assert!(
        created
            .arn
            .starts_with("arn:aws:iot:us-east-1:123456789012:ruledestination/http/")
    );
    assert!(matches!(
        f.rules.create_topic_rule_destination(&base).await,
        Err(ServiceError::AlreadyExists { ref resource_arn, .. }) if *resource_arn == created.arn
    ));
    // Not confirmed yet: it cannot be enabled or disabled; ERROR is not a status to set.
    for status in [ENABLED, DISABLED, ERROR, "DELETING", "nonsense"] {
        assert!(matches!(
            f.rules
                .update_topic_rule_destination(&created.arn, status)
                .await,
            Err(ServiceError::InvalidRequest(_))
        ));
    }
    assert_eq!(
        f.rules
            .get_topic_rule_destination(&created.arn)
            .await
            .unwrap()
            .status,
        IN_PROGRESS
    );

    // A rule whose http action the destination covers: nothing is sent while it is not
    // ENABLED, and the error action says why.
    let mut errors = f.broker.subscribe_internal("errors/#").unwrap();
    let mut p = payload(
        "SELECT * FROM 'in/#'",
        json!([{"http": {"url": hook.url, "confirmationUrl": base}}]),
    );
    p.error_action = Some(republish("errors/gate"));
    f.rules.create_topic_rule("gated", &p).await.unwrap();
    // The rule did not create a second destination: the base covers its URL.
    assert_eq!(
        f.rules
            .list_topic_rule_destinations(None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    publish(&f.broker, "in/a", json!({"n": 1})).await;
    let (_, report) = next_json(&mut errors).await;
    let message = report["failures"][0]["errorMessage"].as_str().unwrap();
    assert!(message.contains("IN_PROGRESS, not ENABLED"), "{message}");
    assert!(hook.seen.lock().unwrap().is_empty());

    // A new confirmation replaces the token: the first one no longer confirms.
    let first_token = wait_for(|| hook.confirmations.lock().unwrap().first().cloned()).await;
    let first: Value = serde_json::from_str(&first_token.1).unwrap();
    f.rules
        .update_topic_rule_destination(&created.arn, IN_PROGRESS)
        .await
        .unwrap();
    wait_for(|| (hook.confirmations.lock().unwrap().len() == 2).then_some(())).await;
    for bad in [first["confirmationToken"].as_str().unwrap(), "unknown", ""] {
        assert!(matches!(
            f.rules.confirm_topic_rule_destination(bad).await,
            Err(ServiceError::InvalidRequest(_))
        ));
    }
    assert_eq!(
        f.rules
            .get_topic_rule_destination(&created.arn)
            .await
            .unwrap()
            .status,
        IN_PROGRESS
    );
    confirm_and_enable(&f.rules, &hook).await;
    publish(&f.broker, "in/b", json!({"n": 2})).await;
    wait_for(|| hook.seen.lock().unwrap().first().cloned()).await;

    // Disabled: nothing is sent again, until it is enabled (no new confirmation needed).
    f.rules
        .update_topic_rule_destination(&created.arn, DISABLED)
        .await
        .unwrap();
    publish(&f.broker, "in/c", json!({"n": 3})).await;
    let (_, report) = next_json(&mut errors).await;
    assert!(
        report["failures"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("DISABLED, not ENABLED")
    );
    f.rules
        .update_topic_rule_destination(&created.arn, ENABLED)
        .await
        .unwrap();
    publish(&f.broker, "in/d", json!({"n": 4})).await;
    wait_for(|| (hook.seen.lock().unwrap().len() == 2).then_some(())).await;

    // Deleted: the rule stays, its action fails for want of a destination.
    f.rules
        .delete_topic_rule_destination(&created.arn)
        .await
        .unwrap();
    for result in [
        f.rules
            .delete_topic_rule_destination(&created.arn)
            .await
            .map(|_| ()),
        f.rules
            .get_topic_rule_destination(&created.arn)
            .await
            .map(|_| ()),
        f.rules
            .update_topic_rule_destination(&created.arn, ENABLED)
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(result, Err(ServiceError::InvalidRequest(_))));
    }
    publish(&f.broker, "in/e", json!({"n": 5})).await;
    let (_, report) = next_json(&mut errors).await;
    assert!(
        report["failures"][0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("no topic rule destination covers")
    );

    // A confirmation that cannot be delivered leaves the destination in ERROR, with why.
    hook.close();
    let dead = f.rules.create_topic_rule_destination(&base).await.unwrap();
    let mut reason = None;
    for _ in 0..400 {
        let d = f.rules.get_topic_rule_destination(&dead.arn).await.unwrap();
        if d.status == ERROR {
            reason = d.status_reason;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reason = reason.expect("the destination went to ERROR");
    assert!(reason.contains("confirmation request failed"), "{reason}");
}
