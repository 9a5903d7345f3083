//! The jobs MQTT API end to end: a real drover broker over TLS with the jobs handler and
//! publisher installed, the jobs service on SQLite, and rumqttc devices speaking the protocol
//! (`get`, `start-next`, `{jobId}/get`, `{jobId}/update`, `notify`, `notify-next`).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use drover_aws::jobs_data::{BrokerJobPublisher, JobsTopicHandler};
use drover_core::arn::ArnScope;
use drover_core::jobs::ExecutionStatus;
use drover_core::policy::{AuthzContext, ConnectionThing, PolicyDocument};
use drover_core::registry::{ThingGroupSpec, ThingSpec};
use drover_mqtt::{
    AuthorityChange, Broker, BrokerConfig, DeviceAuthority, DeviceGrant, PresenceRecord,
};
use drover_services::jobs::CreateJobRequest;
use drover_services::registry::NameOrArn;
use drover_services::{EventConfigurations, Jobs, Registry, SystemClock};
use drover_store::SqliteStore;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

/// Lets a device use every `$aws` topic: the jobs handler itself must keep devices apart.
const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

struct Pki {
    ca_pem: String,
    server_chain: String,
    server_key: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        Pki {
            server_chain: format!("{}{}", server.pem(), ca_pem),
            server_key: server_key.serialize_pem(),
            ca_pem,
            issuer,
        }
    }

    fn device(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// Each certificate belongs to one thing, whose name is the client id it uses.
struct Authority {
    things: Mutex<HashMap<Vec<u8>, String>>,
    changes: broadcast::Sender<AuthorityChange>,
}

#[async_trait]
impl DeviceAuthority for Authority {
    async fn authenticate(&self, der: &[u8], client_id: &str) -> Result<DeviceGrant, String> {
        let thing = self
            .things
            .lock()
            .unwrap()
            .get(der)
            .cloned()
            .ok_or("unknown")?;
        let mut context = AuthzContext::new(ArnScope::new("us-east-1", "123456789012"));
        context.client_id = Some(client_id.to_string());
        context.thing = Some(ConnectionThing {
            name: thing.clone(),
            is_attached: true,
            ..ConnectionThing::default()
        });
        Ok(DeviceGrant {
            certificate_id: format!("cert-{thing}"),
            policies: vec![("p".into(), Arc::new(PolicyDocument::parse(POLICY).unwrap()))],
            context,
        })
    }

    fn changes(&self) -> broadcast::Receiver<AuthorityChange> {
        self.changes.subscribe()
    }

    async fn record_presence(&self, _: &str, _: &PresenceRecord) -> Result<i64, String> {
        Ok(1)
    }
}

struct World {
    pki: Pki,
    authority: Arc<Authority>,
    port: u16,
    jobs: Jobs,
    registry: Registry,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("drover.db")).unwrap());
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
        let pki = Pki::new();
        let authority = Arc::new(Authority {
            things: Mutex::default(),
            changes: broadcast::channel(4).0,
        });
        let (stop, shutdown) = watch::channel(false);
        let broker = Broker::start(
            BrokerConfig::default(),
            authority.clone(),
            store,
            shutdown.clone(),
        )
        .await
        .unwrap();
        jobs.set_publisher(BrokerJobPublisher::start(broker.clone()));
        broker.add_reserved_handler(Arc::new(JobsTopicHandler::new(
            jobs.clone(),
            broker.clone(),
        )));
        let tls = Arc::new(drover_mqtt::server_config(&pki.server_chain, &pki.server_key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(drover_mqtt::serve(listener, tls, broker, shutdown));
        World {
            pki,
            authority,
            port,
            jobs,
            registry,
            _stop: stop,
            _dir: dir,
        }
    }

    async fn thing_in_group(&self, thing: &str, group: &str) {
        let _ = self
            .registry
            .create_thing_group(ThingGroupSpec {
                name: group.into(),
                ..Default::default()
            })
            .await;
        self.registry
            .create_thing(ThingSpec {
                name: thing.into(),
                type_name: None,
                attributes: Default::default(),
            })
            .await
            .unwrap();
        let name = |n: &str| NameOrArn {
            name: Some(n.into()),
            arn: None,
        };
        self.registry
            .add_thing_to_thing_group(name(group), name(thing), false)
            .await
            .unwrap();
    }

    async fn create_job(&self, id: &str, group: &str) {
        self.jobs
            .create_job(CreateJobRequest {
                job_id: id.into(),
                targets: vec![self.registry.scope().thing_group(group)],
                document: Some(r#"{"operation":"install","version":"2.0"}"#.into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// A device connected as `thing`, subscribed to `$aws/things/{subscribe}/jobs/#`.
    async fn device(&self, thing: &str, subscribe: &str) -> Device {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (cert, key) = self.pki.device();
        self.authority
            .things
            .lock()
            .unwrap()
            .insert(der(&cert), thing.to_string());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap();
        let mut options = MqttOptions::new(thing, "localhost", self.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                if tx.send(event.map_err(|e| e.to_string())).is_err() || failed {
                    return;
                }
            }
        });
        let mut device = Device {
            thing: thing.to_string(),
            client,
            events,
        };
        device
            .subscribe(&format!("$aws/things/{subscribe}/jobs/#"))
            .await;
        device
    }
}

struct Device {
    thing: String,
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
}

impl Device {
    async fn until<T>(&mut self, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("an MQTT event within 10 s")
                .expect("the event loop runs")
                .expect("the connection stays up");
            if let Event::Incoming(packet) = event
                && let Some(found) = pick(&packet)
            {
                return found;
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        self.until(|p| matches!(p, Packet::SubAck(_)).then_some(()))
            .await;
    }

    /// The next message on `topic`, as JSON.
    async fn message(&mut self, topic: &str) -> Value {
        let topic = topic.to_string();
        self.until(|p| match p {
            Packet::Publish(m) if m.topic == topic => {
                Some(serde_json::from_slice(&m.payload).expect("JSON payload"))
            }
            _ => None,
        })
        .await
    }

    /// The first message on each of `topics`, in whatever order they arrive.
    async fn messages(&mut self, topics: &[&str]) -> HashMap<String, Value> {
        let mut found = HashMap::new();
        while found.len() < topics.len() {
            let (topic, value) = self
                .until(|p| match p {
                    Packet::Publish(m) if topics.contains(&m.topic.as_str()) => Some((
                        m.topic.clone(),
                        serde_json::from_slice::<Value>(&m.payload).expect("JSON payload"),
                    )),
                    _ => None,
                })
                .await;
            found.entry(topic).or_insert(value);
        }
        found
    }

    async fn send_to(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }

    async fn send(&self, suffix: &str, payload: impl Into<Vec<u8>>) {
        self.send_to(
            &format!("$aws/things/{}/jobs/{suffix}", self.thing),
            payload,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_runs_its_job_over_mqtt() {
    let world = World::start().await;
    world.thing_in_group("a", "fleet").await;
    let mut a = world.device("a", "a").await;
    world.create_job("j1", "fleet").await;

    let next = a.message("$aws/things/a/jobs/notify-next").await;
    assert_eq!(next["execution"]["jobId"], "j1");
    assert_eq!(next["execution"]["jobDocument"]["version"], "2.0");

    a.send(
        "start-next",
        json!({"clientToken": "t-1", "stepTimeoutInMinutes": 5}).to_string(),
    )
    .await;
    let started = a.message("$aws/things/a/jobs/start-next/accepted").await;
    assert_eq!(started["clientToken"], "t-1");
    assert_eq!(started["execution"]["status"], "IN_PROGRESS");
    assert_eq!(started["execution"]["versionNumber"], 2);
    assert!(
        started["timestamp"].as_i64().unwrap() < 10_000_000_000,
        "seconds, not ms"
    );

    // Malformed JSON and a stale version are refused and change nothing.
    a.send("j1/update", "{not json").await;
    let bad = a.message("$aws/things/a/jobs/j1/update/rejected").await;
    assert_eq!(bad["code"], "InvalidJson");
    a.send(
        "j1/update",
        json!({"status": "SUCCEEDED", "expectedVersion": 7}).to_string(),
    )
    .await;
    let stale = a.message("$aws/things/a/jobs/j1/update/rejected").await;
    assert_eq!(stale["code"], "VersionMismatch");
    assert_eq!(stale["executionState"]["versionNumber"], 2);
    let status = world
        .jobs
        .describe_job_execution("j1", "a", None)
        .await
        .unwrap()
        .status;
    assert_eq!(status, ExecutionStatus::InProgress);

    a.send(
        "j1/update",
        json!({"status": "SUCCEEDED", "expectedVersion": 2, "statusDetails": {"result": "ok"},
            "includeJobExecutionState": true, "clientToken": "t-2"})
        .to_string(),
    )
    .await;
    let replies = a
        .messages(&[
            "$aws/things/a/jobs/j1/update/accepted",
            "$aws/things/a/jobs/notify-next",
        ])
        .await;
    let done = &replies["$aws/things/a/jobs/j1/update/accepted"];
    assert_eq!(done["executionState"]["status"], "SUCCEEDED");
    assert_eq!(done["clientToken"], "t-2");
    let empty = &replies["$aws/things/a/jobs/notify-next"];
    assert!(empty.get("execution").is_none(), "{empty}");

    a.send("j1/update", json!({"status": "IN_PROGRESS"}).to_string())
        .await;
    let terminal = a.message("$aws/things/a/jobs/j1/update/rejected").await;
    assert_eq!(terminal["code"], "InvalidStateTransition");
    assert_eq!(terminal["executionState"]["status"], "SUCCEEDED");
    a.send("j1/get", "{}").await;
    let described = a.message("$aws/things/a/jobs/j1/get/accepted").await;
    assert_eq!(described["execution"]["statusDetails"]["result"], "ok");
    a.send("nonsense/topic/here", "{}").await;
    let unknown = a
        .message("$aws/things/a/jobs/nonsense/topic/here/rejected")
        .await;
    assert_eq!(unknown["code"], "InvalidTopic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_only_reach_their_own_jobs_and_offline_ones_catch_up() {
    let world = World::start().await;
    world.thing_in_group("a", "fleet").await;
    world.thing_in_group("b", "fleet").await;
    world.create_job("j1", "fleet").await;

    // b was offline when the job was created; on connecting it asks and finds it.
    let mut b = world.device("b", "a").await;
    b.subscribe("$aws/things/b/jobs/#").await;
    b.send("get", json!({"clientToken": "x"}).to_string()).await;
    let pending = b.message("$aws/things/b/jobs/get/accepted").await;
    assert_eq!(pending["queuedJobs"][0]["jobId"], "j1");

    // b publishes on a's topic: refused, a's execution untouched.
    b.send_to(
        "$aws/things/a/jobs/j1/update",
        json!({"status": "FAILED"}).to_string(),
    )
    .await;
    let refused = b.message("$aws/things/a/jobs/j1/update/rejected").await;
    assert_eq!(refused["code"], "InvalidRequest");
    let status = world
        .jobs
        .describe_job_execution("j1", "a", None)
        .await
        .unwrap()
        .status;
    assert_eq!(status, ExecutionStatus::Queued);
}
