//! The broker end to end over real TLS, driven by a third-party MQTT client (rumqttc), with a
//! stand-in `DeviceAuthority` so these tests exercise the broker alone: policies, sessions,
//! persistence across a restart, retained messages, wills, takeover, revocation, and bad
//! input closing only the offending connection. The full stack (certificates from the real
//! control plane, the AWS device SDKs) is tested in tests/compat.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use drover_core::arn::ArnScope;
use drover_core::policy::{AuthzContext, ConnectionThing, PolicyDocument};
use drover_mqtt::{
    AuthorityChange, Broker, BrokerConfig, DeviceAuthority, DeviceGrant, Message, PresenceRecord,
};
use drover_store::SqliteStore;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

const THING_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"], "Resource": "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:Subscribe"], "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/$aws/*", "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/*"]}
  ]
}"#;

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

/// A device identity: certificate and key PEM, and the thing it is attached to.
#[derive(Clone)]
struct Device {
    cert_pem: String,
    key_pem: String,
    thing: String,
}

struct Pki {
    ca_pem: String,
    server_chain: String,
    server_key: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).expect("ca");
        let ca_pem = ca.pem();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).expect("issuer");
        let server_key = KeyPair::generate().expect("key");
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&server_key, &issuer)
            .expect("server cert");
        Pki {
            server_chain: format!("{}{}", server.pem(), ca_pem),
            server_key: server_key.serialize_pem(),
            ca_pem,
            issuer,
        }
    }

    fn device(&self, thing: &str) -> Device {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("device cert");
        Device {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            thing: thing.to_string(),
        }
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .to_vec()
}

/// Stand-in for the services: known certificates (by DER) with their policy and thing.
struct FakeAuthority {
    devices: Mutex<HashMap<Vec<u8>, (String, String, String)>>,
    changes: broadcast::Sender<AuthorityChange>,
    presence: Mutex<Vec<(String, PresenceRecord)>>,
}

impl FakeAuthority {
    fn new() -> Arc<FakeAuthority> {
        Arc::new(FakeAuthority {
            devices: Mutex::default(),
            changes: broadcast::channel(16).0,
            presence: Mutex::default(),
        })
    }

    fn register(&self, device: &Device, policy: &str) -> String {
        let id = format!("cert-{}", device.thing);
        self.devices.lock().unwrap().insert(
            der_of(&device.cert_pem),
            (id.clone(), policy.to_string(), device.thing.clone()),
        );
        id
    }

    fn revoke(&self, device: &Device) {
        let (id, ..) = self
            .devices
            .lock()
            .unwrap()
            .remove(&der_of(&device.cert_pem))
            .expect("registered");
        let _ = self
            .changes
            .send(AuthorityChange::CertificateDeactivated { certificate_id: id });
    }
}

#[async_trait]
impl DeviceAuthority for FakeAuthority {
    async fn authenticate(&self, der: &[u8], client_id: &str) -> Result<DeviceGrant, String> {
        let (id, policy, thing) = self
            .devices
            .lock()
            .unwrap()
            .get(der)
            .cloned()
            .ok_or("certificate not registered")?;
        let mut context = AuthzContext::new(ArnScope::new("us-east-1", "123456789012"));
        context.client_id = Some(client_id.to_string());
        if client_id == thing {
            context.thing = Some(ConnectionThing {
                name: thing,
                is_attached: true,
                ..ConnectionThing::default()
            });
        }
        Ok(DeviceGrant {
            certificate_id: id,
            policies: vec![(
                "p".to_string(),
                Arc::new(PolicyDocument::parse(&policy).expect("policy")),
            )],
            context,
        })
    }

    fn changes(&self) -> broadcast::Receiver<AuthorityChange> {
        self.changes.subscribe()
    }

    async fn record_presence(
        &self,
        client_id: &str,
        record: &PresenceRecord,
    ) -> Result<i64, String> {
        let mut presence = self.presence.lock().unwrap();
        presence.push((client_id.to_string(), record.clone()));
        Ok(presence.len() as i64)
    }
}

/// A broker on a free port over a store in `dir`.
struct Server {
    addr: SocketAddr,
    broker: Broker,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(pki: &Pki, authority: Arc<FakeAuthority>, dir: &std::path::Path) -> Server {
        Self::start_with(pki, authority, dir, BrokerConfig::default()).await
    }

    async fn start_with(
        pki: &Pki,
        authority: Arc<FakeAuthority>,
        dir: &std::path::Path,
        config: BrokerConfig,
    ) -> Server {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let store = Arc::new(SqliteStore::open(&dir.join("drover.db")).expect("store"));
        let (stop, shutdown) = watch::channel(false);
        let broker = Broker::start(config, authority, store, shutdown.clone())
            .await
            .expect("broker");
        let tls =
            Arc::new(drover_mqtt::server_config(&pki.server_chain, &pki.server_key).expect("tls"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(drover_mqtt::serve(listener, tls, broker.clone(), shutdown));
        Server {
            addr,
            broker,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        // Let connection tasks see the shutdown and save their sessions.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn client_config(pki: &Pki, device: &Device) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca"))
        .expect("root");
    let chain = vec![CertificateDer::from_pem_slice(device.cert_pem.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(device.key_pem.as_bytes()).expect("key");
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client config"),
    )
}

/// A connected rumqttc client whose events arrive on a channel.
struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
}

fn options(
    server: &Server,
    pki: &Pki,
    device: &Device,
    client_id: &str,
    clean: bool,
) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "localhost", server.addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        client_config(pki, device),
    )));
    options
}

fn spawn(options: MqttOptions) -> Client {
    let (client, eventloop) = AsyncClient::new(options, 64);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(drive(eventloop, tx));
    Client { client, events }
}

async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Result<Event, String>>) {
    loop {
        let event = eventloop.poll().await;
        let failed = event.is_err();
        if tx.send(event.map_err(|e| e.to_string())).is_err() || failed {
            return;
        }
    }
}

impl Client {
    /// Waits for CONNACK; `Err` if the connection fails first.
    async fn connected(&mut self) -> Result<bool, String> {
        loop {
            match self.next().await? {
                Event::Incoming(Packet::ConnAck(ack)) => {
                    return if ack.code == rumqttc::ConnectReturnCode::Success {
                        Ok(ack.session_present)
                    } else {
                        Err(format!("refused: {:?}", ack.code))
                    };
                }
                _ => continue,
            }
        }
    }

    async fn next(&mut self) -> Result<Event, String> {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .map_err(|_| "timed out".to_string())?
            .ok_or_else(|| "event loop ended".to_string())?
    }

    /// The next incoming packet matching `pick`, skipping others.
    async fn expect<T>(&mut self, mut pick: impl FnMut(&Packet) -> Option<T>) -> Result<T, String> {
        loop {
            if let Event::Incoming(packet) = self.next().await?
                && let Some(found) = pick(&packet)
            {
                return Ok(found);
            }
        }
    }

    async fn publish_received(&mut self) -> Result<rumqttc::Publish, String> {
        self.expect(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    async fn suback(&mut self) -> Result<Vec<rumqttc::SubscribeReasonCode>, String> {
        self.expect(|p| match p {
            Packet::SubAck(s) => Some(s.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// Whether the connection ends (an error event) within a few seconds.
    async fn closes(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.events.recv()).await {
                Ok(Some(Err(_))) | Ok(None) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }

    /// No PUBLISH arrives within `wait`.
    async fn quiet(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return true,
                Ok(Some(Ok(Event::Incoming(Packet::Publish(_))))) => return false,
                Ok(Some(Ok(_))) => continue,
                Ok(_) => return true,
            }
        }
    }
}

async fn connect(server: &Server, pki: &Pki, device: &Device) -> Client {
    let mut client = spawn(options(server, pki, device, &device.thing, true));
    client.connected().await.expect("connects");
    client
}

#[tokio::test]
async fn devices_round_trip_on_their_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    authority.register(&a, THING_POLICY);
    let server = Server::start(&pki, authority.clone(), dir.path()).await;

    // Room for the large payload below (rumqttc allows 10 KB each way by default).
    let mut sub_options = options(&server, &pki, &a, &a.thing, true);
    sub_options.set_max_packet_size(256 * 1024, 256 * 1024);
    let mut sub = spawn(sub_options);
    sub.connected().await.expect("connects");
    sub.client
        .subscribe("things/thing-a/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(
        sub.suback().await.unwrap(),
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    sub.client
        .publish("things/thing-a/telemetry", QoS::AtLeastOnce, false, "21.5")
        .await
        .unwrap();
    let got = sub.publish_received().await.unwrap();
    assert_eq!(got.topic, "things/thing-a/telemetry");
    assert_eq!(&got.payload[..], b"21.5");
    assert_eq!(got.qos, QoS::AtLeastOnce);

    // A payload near AWS's 128 KB limit arrives over many reads and TLS records; the
    // connection reassembles it from partial packets and delivers it intact.
    let large: Vec<u8> = (0..120 * 1024).map(|i| (i % 251) as u8).collect();
    sub.client
        .publish(
            "things/thing-a/blob",
            QoS::AtLeastOnce,
            false,
            large.clone(),
        )
        .await
        .unwrap();
    let got = sub.publish_received().await.unwrap();
    assert_eq!(got.topic, "things/thing-a/blob");
    assert_eq!(&got.payload[..], &large[..]);
    assert!(server.broker.is_connected("thing-a"));
    let presence = authority.presence.lock().unwrap().clone();
    assert_eq!(presence[0].0, "thing-a");
    assert!(presence[0].1.connected);
}

#[tokio::test]
async fn a_thing_policy_keeps_devices_off_each_others_topics() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    let b = pki.device("thing-b");
    authority.register(&a, THING_POLICY);
    authority.register(&b, THING_POLICY);
    let server = Server::start(&pki, authority, dir.path()).await;

    let mut device_b = connect(&server, &pki, &b).await;
    device_b
        .client
        .subscribe("things/thing-b/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    device_b.suback().await.unwrap();

    // A may not subscribe to B's topics: SUBACK failure, and the connection stays up.
    let mut device_a = connect(&server, &pki, &a).await;
    device_a
        .client
        .subscribe("things/thing-b/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(
        device_a.suback().await.unwrap(),
        vec![rumqttc::SubscribeReasonCode::Failure]
    );
    // A may not publish to B's topics: AWS closes the connection; B receives nothing.
    device_a
        .client
        .publish("things/thing-b/cmd", QoS::AtLeastOnce, false, "reboot")
        .await
        .unwrap();
    assert!(device_a.closes().await, "A is disconnected");
    assert!(device_b.quiet(Duration::from_millis(500)).await);

    // A cannot connect with B's client id either (iot:Connect names the thing).
    let mut impostor = spawn(options(&server, &pki, &a, "thing-b", true));
    assert!(impostor.connected().await.is_err());
    assert!(
        server.broker.is_connected("thing-b"),
        "B was not taken over"
    );
}

#[tokio::test]
async fn reserved_event_topics_and_unknown_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let admin = pki.device("admin");
    authority.register(&admin, ALLOW_ALL);
    let server = Server::start(&pki, authority, dir.path()).await;

    // Even an allow-all policy cannot publish into $aws/events.
    let mut client = connect(&server, &pki, &admin).await;
    client
        .client
        .publish(
            "$aws/events/presence/connected/x",
            QoS::AtLeastOnce,
            false,
            "{}",
        )
        .await
        .unwrap();
    assert!(client.closes().await);

    // A certificate the registry does not know is refused at CONNECT.
    let stranger = pki.device("stranger");
    let mut client = spawn(options(&server, &pki, &stranger, "stranger", true));
    let refused = client.connected().await.expect_err("refused");
    assert!(
        refused.contains("NotAuthorized") || refused.contains("refused"),
        "{refused}"
    );
}

#[tokio::test]
async fn revoking_a_certificate_disconnects_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    authority.register(&a, THING_POLICY);
    let server = Server::start(&pki, authority.clone(), dir.path()).await;
    let mut client = connect(&server, &pki, &a).await;
    authority.revoke(&a);
    assert!(client.closes().await);
    let mut again = spawn(options(&server, &pki, &a, "thing-a", true));
    assert!(again.connected().await.is_err());
}

#[tokio::test]
async fn queued_qos1_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    let admin = pki.device("admin");
    authority.register(&a, THING_POLICY);
    authority.register(&admin, ALLOW_ALL);

    let server = Server::start(&pki, authority.clone(), dir.path()).await;
    let mut device = spawn(options(&server, &pki, &a, "thing-a", false));
    assert!(!device.connected().await.unwrap(), "new session");
    device
        .client
        .subscribe("things/thing-a/cmd", QoS::AtLeastOnce)
        .await
        .unwrap();
    device.suback().await.unwrap();
    device.client.disconnect().await.unwrap();
    assert!(device.closes().await);

    // While the device is away, a message arrives for it; then the server restarts.
    let mut sender = connect(&server, &pki, &admin).await;
    sender
        .client
        .publish("things/thing-a/cmd", QoS::AtLeastOnce, false, "update-now")
        .await
        .unwrap();
    sender
        .expect(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await
        .unwrap();
    server.stop().await;

    let server = Server::start(&pki, authority, dir.path()).await;
    let mut device = spawn(options(&server, &pki, &a, "thing-a", false));
    assert!(device.connected().await.unwrap(), "session present");
    let got = device.publish_received().await.unwrap();
    assert_eq!(&got.payload[..], b"update-now");
    // Acknowledged: it is not delivered again on the next reconnect.
    tokio::time::sleep(Duration::from_millis(300)).await;
    device.client.disconnect().await.unwrap();
    assert!(device.closes().await);
    let mut device = spawn(options(&server, &pki, &a, "thing-a", false));
    assert!(device.connected().await.unwrap());
    assert!(device.quiet(Duration::from_millis(500)).await);
}

#[tokio::test]
async fn retained_messages_and_wills() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    let admin = pki.device("admin");
    authority.register(&a, THING_POLICY);
    authority.register(&admin, ALLOW_ALL);
    let server = Server::start(&pki, authority, dir.path()).await;

    let mut publisher = connect(&server, &pki, &a).await;
    publisher
        .client
        .publish("things/thing-a/state", QoS::AtLeastOnce, true, "on")
        .await
        .unwrap();
    publisher
        .expect(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await
        .unwrap();

    let mut watcher = connect(&server, &pki, &admin).await;
    watcher
        .client
        .subscribe("things/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = watcher.publish_received().await.unwrap();
    assert!(retained.retain);
    assert_eq!(&retained.payload[..], b"on");

    // A device that drops off without DISCONNECT has its will published.
    let mut opts = options(&server, &pki, &a, "thing-a", true);
    opts.set_last_will(rumqttc::LastWill::new(
        "things/thing-a/status",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 8);
    loop {
        if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await.unwrap() {
            break;
        }
    }
    drop(client);
    drop(eventloop); // the socket closes without DISCONNECT
    let will = watcher.publish_received().await.unwrap();
    assert_eq!(will.topic, "things/thing-a/status");
    assert_eq!(&will.payload[..], b"gone");
}

#[tokio::test]
async fn a_second_connection_takes_the_session_over() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    authority.register(&a, THING_POLICY);
    let server = Server::start(&pki, authority, dir.path()).await;
    let mut first = spawn(options(&server, &pki, &a, "thing-a", false));
    first.connected().await.unwrap();
    first
        .client
        .subscribe("things/thing-a/x", QoS::AtLeastOnce)
        .await
        .unwrap();
    first.suback().await.unwrap();
    let mut second = spawn(options(&server, &pki, &a, "thing-a", false));
    assert!(
        second.connected().await.unwrap(),
        "the session carries over"
    );
    assert!(first.closes().await, "the first connection is closed");
    second
        .client
        .publish("things/thing-a/x", QoS::AtLeastOnce, false, "hi")
        .await
        .unwrap();
    assert_eq!(&second.publish_received().await.unwrap().payload[..], b"hi");
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    let admin = pki.device("admin");
    authority.register(&a, THING_POLICY);
    authority.register(&admin, ALLOW_ALL);
    let server = Server::start(&pki, authority, dir.path()).await;
    let mut healthy = connect(&server, &pki, &a).await;
    healthy
        .client
        .subscribe("things/thing-a/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    healthy.suback().await.unwrap();

    // Garbage instead of CONNECT, over a valid TLS session.
    let connector = tokio_rustls::TlsConnector::from(client_config(&pki, &admin));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"\xff\xff\xff\xff\xffnot mqtt")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut tls, &mut buf),
    )
    .await
    .expect("closed promptly");
    assert!(matches!(n, Ok(0) | Err(_)), "the server closed it");

    // An oversize payload (over AWS's 128 KB) closes the sender only.
    let mut big = connect(&server, &pki, &admin).await;
    big.client
        .publish(
            "things/thing-a/blob",
            QoS::AtMostOnce,
            false,
            vec![0u8; 130 * 1024],
        )
        .await
        .unwrap();
    assert!(big.closes().await);
    assert!(healthy.quiet(Duration::from_millis(300)).await);

    // The healthy device is still served.
    healthy
        .client
        .publish("things/thing-a/ok", QoS::AtLeastOnce, false, "still here")
        .await
        .unwrap();
    assert_eq!(
        &healthy.publish_received().await.unwrap().payload[..],
        b"still here"
    );
}

#[tokio::test]
async fn services_publish_through_the_same_routing_and_receive_checks() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    authority.register(&a, THING_POLICY);
    let server = Server::start(&pki, authority, dir.path()).await;
    let mut device = connect(&server, &pki, &a).await;
    device
        .client
        .subscribe("things/thing-a/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    device.suback().await.unwrap();
    let mut internal = server
        .broker
        .subscribe_internal("things/+/notes")
        .expect("filter");
    let n = server
        .broker
        .publish(Message::system("things/thing-a/notes", "from drover", 1))
        .await
        .expect("published");
    assert_eq!(n, 2, "the device and the internal subscriber");
    assert_eq!(
        &device.publish_received().await.unwrap().payload[..],
        b"from drover"
    );
    let got = internal.receiver.recv().await.expect("internal copy");
    assert_eq!(&got.payload[..], b"from drover");
    assert!(
        server
            .broker
            .publish(Message::system("bad/+/topic", "x", 0))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn silent_sockets_do_not_lock_devices_out() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let authority = FakeAuthority::new();
    let a = pki.device("thing-a");
    authority.register(&a, THING_POLICY);
    // Few handshake slots, so sockets holding slots would show at once.
    let config = BrokerConfig {
        max_concurrent_handshakes: 2,
        ..BrokerConfig::default()
    };
    let server = Server::start_with(&pki, authority, dir.path(), config).await;
    let mut silent = Vec::new();
    for i in 0..200 {
        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        if i % 2 == 0 {
            // The first bytes of a TLS record, then nothing.
            socket.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        }
        silent.push(socket);
    }
    // Served while the silent sockets wait out their 10 s connect timeout.
    let mut device = connect(&server, &pki, &a).await;
    device
        .client
        .subscribe("things/thing-a/x", QoS::AtLeastOnce)
        .await
        .unwrap();
    device.suback().await.unwrap();
    drop(silent);
}
