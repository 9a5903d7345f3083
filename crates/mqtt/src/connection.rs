//! One device connection, from CONNECT to close: authentication and the `iot:Connect` check,
//! session set-up (new, resumed or taken over), then the packet loop that enforces AWS IoT
//! policies on SUBSCRIBE, PUBLISH and every delivery, keeps QoS 1 in-flight state, throttles
//! publishes, and watches the keep-alive. On close it publishes the will when due, hands a
//! persistent session back to the broker and emits the presence event.
//!
//! A malformed packet, an oversize payload or a refused request closes this connection only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use drover_core::mqtt_topic::{check_topic_filter, check_topic_name};
use drover_core::policy::AuthzRequest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use crate::authority::{DeviceGrant, PresenceRecord};
use crate::broker::{Broker, now_ms};
use crate::config::{
    DEFAULT_SESSION_EXPIRY_SECS, MAX_CLIENT_ID_BYTES, MAX_FILTERS_PER_SUBSCRIBE, MAX_INFLIGHT,
    MAX_PAYLOAD_BYTES, MAX_SESSION_EXPIRY_SECS, MAX_SUBSCRIPTIONS_PER_CONNECTION, OUTBOX_CAPACITY,
};
use crate::mailbox::{Mailbox, mailbox};
use crate::message::{Message, Origin};
use crate::presence::{self, PresenceEvent, reason};
use crate::protocol::{
    ConnAckCode, Connect, Inbound, InboundPublish, PubAckCode, PublishHeader, ReasonCode,
    ServerLimits, SubAckCode, SubscriptionRequest, Version, Will, Wire,
};
use crate::reserved::{DeviceRequest, is_server_only};
use crate::router::SubscriptionOptions;
use crate::session::{ConnectionHandle, Control, Delivery, Slot};

/// A transport a device connects over: bytes both ways plus the certificate the client
/// presented (the TLS layer has verified the client holds its key).
pub trait DeviceStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn peer_certificate(&self) -> Option<&[u8]>;
}

impl DeviceStream for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn peer_certificate(&self) -> Option<&[u8]> {
        self.get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.as_ref())
    }
}

/// Bytes read from the socket at a time; a larger packet grows the buffer while it arrives.
const READ_CHUNK: usize = 2048;
/// An output buffer grown past this by a large packet is released once empty, so idle
/// connections stay small.
const KEEP_BUFFER: usize = 16 * 1024;

/// Why the packet loop ended: the DISCONNECT reason for MQTT 5 clients (if the server ends
/// it) and the presence event's `disconnectReason`.
struct Ending {
    reason: Option<ReasonCode>,
    why: &'static str,
    publish_will: bool,
}

impl Ending {
    fn server(reason: ReasonCode, why: &'static str) -> Self {
        Ending {
            reason: Some(reason),
            why,
            publish_will: true,
        }
    }

    fn lost() -> Self {
        Ending {
            reason: None,
            why: reason::CONNECTION_LOST,
            publish_will: true,
        }
    }
}

/// Serves one device connection to the end.
pub(crate) async fn serve<S: DeviceStream>(broker: Broker, mut stream: S, peer: SocketAddr) {
    let mut wire = Wire::new();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let connect = match tokio::time::timeout(
        broker.inner.config.connect_timeout,
        read_connect(&mut stream, &mut wire, &mut buf),
    )
    .await
    {
        Ok(Ok(connect)) => connect,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "closing connection before CONNECT");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "no CONNECT within the connect timeout");
            return;
        }
    };
    // The task lives as long as the device stays connected and is as large as its largest
    // state, so the one-off phases (CONNECT checks, the ending) and the handlers the packet
    // loop awaits are boxed: an idle connection's task then holds only the loop's own state
    // (issue 4's memory-per-connection goal; heaptrack showed about 14.5 KB per task before).
    let Some(mut connection) = Box::pin(accept(broker, stream, wire, buf, *connect, peer)).await
    else {
        return;
    };
    let ending = connection.run().await;
    Box::pin(connection.finish(ending)).await;
}

async fn read_connect<S: DeviceStream>(
    stream: &mut S,
    wire: &mut Wire,
    buf: &mut BytesMut,
) -> Result<Box<Connect>, String> {
    loop {
        match wire.decode(buf).map_err(|e| e.to_string())? {
            Some(Inbound::Connect(connect)) => return Ok(connect),
            Some(_) => return Err("the first packet was not CONNECT".into()),
            None => {}
        }
        buf.reserve(READ_CHUNK);
        let n = stream.read_buf(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
    }
}

/// Reads what `stream` has ready and appends it to `buf`, through a buffer on the stack: the
/// packet loop waits for input with `buf` released (it holds only a partial packet, if any),
/// so an idle connection keeps no read buffer (READ_CHUNK bytes each before, issue 4's
/// memory-per-connection goal). Costs one copy of the bytes read; 0 means end of stream.
async fn read_some<S: DeviceStream>(stream: &mut S, buf: &mut BytesMut) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut chunk = [0u8; READ_CHUNK];
        let mut read = ReadBuf::new(&mut chunk);
        std::task::ready!(std::pin::Pin::new(&mut *stream).poll_read(cx, &mut read))?;
        buf.extend_from_slice(read.filled());
        std::task::Poll::Ready(Ok(read.filled().len()))
    })
    .await
}

/// Refuses a CONNECT with `code`, flushing the CONNACK before closing.
async fn refuse<S: DeviceStream>(stream: &mut S, wire: &mut Wire, code: ConnAckCode) {
    let mut out = BytesMut::new();
    wire.connack(
        code,
        ServerLimits {
            session_present: false,
            server_keep_alive: None,
            session_expiry_secs: None,
        },
        &mut out,
    );
    let _ = stream.write_all(&out).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// Authenticates and authorizes CONNECT and sets up the session; `None` if refused.
async fn accept<S: DeviceStream>(
    broker: Broker,
    mut stream: S,
    mut wire: Wire,
    buf: BytesMut,
    connect: Connect,
    peer: SocketAddr,
) -> Option<Connection<S>> {
    let client_id = connect.client_id.clone();
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_BYTES {
        tracing::info!(%peer, "refused CONNECT: client id must be 1 to {MAX_CLIENT_ID_BYTES} bytes");
        refuse(
            &mut stream,
            &mut wire,
            ConnAckCode::ClientIdentifierNotValid,
        )
        .await;
        return None;
    }
    let Some(certificate) = stream.peer_certificate().map(<[u8]>::to_vec) else {
        refuse(&mut stream, &mut wire, ConnAckCode::NotAuthorized).await;
        return None;
    };
    let grant = match broker
        .inner
        .authority
        .authenticate(&certificate, &client_id)
        .await
    {
        Ok(grant) => Arc::new(grant),
        Err(why) => {
            tracing::warn!(%peer, client_id = %client_id.escape_debug(), reason = %why, "refused CONNECT: certificate not accepted");
            metrics::counter!("drover_mqtt_refused_total", "reason" => "certificate").increment(1);
            refuse(&mut stream, &mut wire, ConnAckCode::NotAuthorized).await;
            return None;
        }
    };
    let decision = grant.authorize(&AuthzRequest::Connect {
        client_id: client_id.clone(),
    });
    if !decision.is_allowed() {
        tracing::warn!(%peer, certificate_id = %grant.certificate_id, "refused CONNECT: {decision}");
        metrics::counter!("drover_mqtt_refused_total", "reason" => "policy").increment(1);
        refuse(&mut stream, &mut wire, ConnAckCode::NotAuthorized).await;
        return None;
    }
    if let Some(will) = &connect.will
        && let Err(why) = check_will(will)
    {
        tracing::info!(%peer, client_id = %client_id.escape_debug(), "refused CONNECT: {why}");
        refuse(&mut stream, &mut wire, ConnAckCode::BadProtocol).await;
        return None;
    }

    // MQTT 3.1.1: a non-clean session lives AWS's default hour; MQTT 5: as asked, capped.
    let requested_expiry = match connect.session_expiry_secs {
        Some(secs) => secs,
        None if connect.clean_start => 0,
        None => DEFAULT_SESSION_EXPIRY_SECS,
    };
    let expiry_secs = requested_expiry.min(MAX_SESSION_EXPIRY_SECS);
    let keep_alive = broker.inner.config.effective_keep_alive(connect.keep_alive);

    let connection_id = broker.next_connection_id();
    let (mailbox_sender, mailbox) = mailbox();
    let client_id: Arc<str> = client_id.as_str().into();
    let handle = ConnectionHandle {
        id: connection_id,
        certificate_id: grant.certificate_id.as_str().into(),
        mailbox: mailbox_sender,
    };
    let (opened, previous) = match broker
        .open_session(&client_id, connect.clean_start, expiry_secs, handle)
        .await
    {
        Ok(opened) => opened,
        Err(e) => {
            tracing::error!(client_id = %client_id, error = %e, "could not open the session");
            refuse(&mut stream, &mut wire, ConnAckCode::ServerUnavailable).await;
            return None;
        }
    };
    if let Some(previous) = previous {
        tracing::info!(client_id = %client_id, "a new connection takes the session over");
        previous.mailbox.send_control(Control::Close {
            reason: ReasonCode::SessionTakenOver,
            why: reason::DUPLICATE_CLIENTID,
        });
    }

    let mut out = BytesMut::new();
    if let Some(max) = connect.max_packet_size {
        wire.set_max_outbound(max);
    }
    wire.connack(
        ConnAckCode::Accepted,
        ServerLimits {
            session_present: opened.session_present,
            server_keep_alive: (keep_alive != connect.keep_alive).then_some(keep_alive),
            session_expiry_secs: (connect.session_expiry_secs.is_some()
                && expiry_secs != requested_expiry)
                .then_some(expiry_secs),
        },
        &mut out,
    );
    let session_identifier = uuid::Uuid::new_v4().simple().to_string();
    let mut connection = Connection {
        broker,
        stream,
        wire,
        buf,
        out,
        peer,
        client_id,
        slot: opened.slot,
        connection_id,
        grant,
        version: connect.version,
        keep_alive: Duration::from_secs(u64::from(keep_alive)),
        inflight: BTreeMap::new(),
        pending: VecDeque::new(),
        next_packet_id: 1,
        receive_max: connect.receive_max.clamp(1, MAX_INFLIGHT),
        topic_aliases: HashMap::new(),
        tokens: 0.0,
        last_refill: Instant::now(),
        acked_stored: Vec::new(),
        replayed_up_to: 0,
        will: connect.will,
        session_identifier,
        mailbox,
    };
    connection.tokens = f64::from(connection.broker.inner.config.publish_rate_per_connection);
    if connection.flush().await.is_err() {
        connection.finish(Ending::lost()).await;
        return None;
    }
    metrics::gauge!("drover_mqtt_connections").increment(1.0);
    tracing::debug!(client_id = %connection.client_id, %peer, session_present = opened.session_present, "device connected");
    connection.announce_connected().await;
    if opened.session_present
        && let Err(e) = connection.replay_stored().await
    {
        tracing::error!(client_id = %connection.client_id, error = %e, "could not load queued messages");
    }
    Some(connection)
}

/// A will's topic must be one the device could publish to.
fn check_will(will: &Will) -> Result<(), String> {
    check_topic_name(&will.topic).map_err(|e| format!("will topic: {e}"))?;
    if is_server_only(&will.topic) {
        return Err(format!(
            "will topic {} is reserved",
            will.topic.escape_debug()
        ));
    }
    if will.payload.len() > MAX_PAYLOAD_BYTES {
        return Err("will payload exceeds 128 KB".into());
    }
    if will.qos > 1 {
        return Err("will QoS 2 is not supported".into());
    }
    Ok(())
}

struct Connection<S> {
    broker: Broker,
    stream: S,
    wire: Wire,
    buf: BytesMut,
    out: BytesMut,
    peer: SocketAddr,
    client_id: Arc<str>,
    slot: Arc<Slot>,
    connection_id: u64,
    grant: Arc<DeviceGrant>,
    version: Version,
    keep_alive: Duration,
    /// QoS 1 messages sent and not yet acknowledged, by packet id.
    inflight: BTreeMap<u16, Delivery>,
    /// Messages waiting for room in the in-flight window.
    pending: VecDeque<Delivery>,
    next_packet_id: u16,
    receive_max: u16,
    topic_aliases: HashMap<u16, String>,
    /// Publish-rate token bucket.
    tokens: f64,
    last_refill: Instant,
    /// Queue rows acknowledged since the last flush.
    acked_stored: Vec<i64>,
    /// Stored messages up to this id were loaded at connect; copies routed meanwhile are
    /// duplicates.
    replayed_up_to: i64,
    will: Option<Will>,
    session_identifier: String,
    mailbox: Mailbox,
}

impl<S: DeviceStream> Connection<S> {
    async fn run(&mut self) -> Ending {
        let mut shutdown = self.broker.inner.shutdown.clone();
        let mut last_heard = Instant::now();
        // MQTT: the server closes after one and a half keep-alive periods of silence.
        let grace = self.keep_alive + self.keep_alive / 2;
        let keep_alive = tokio::time::sleep(grace);
        tokio::pin!(keep_alive);
        if self.buf.is_empty() {
            // The CONNECT's read buffer; `read_some` needs none while waiting.
            self.buf = BytesMut::new();
        }
        loop {
            self.send_pending();
            if self.flush().await.is_err() {
                return Ending::lost();
            }
            tokio::select! {
                // Instructions first: a takeover's Close must win over the deliveries ending.
                biased;
                control = self.mailbox.control() => {
                    match control {
                        Control::Close { reason, why } => {
                            return Ending { reason: Some(reason), why, publish_will: true };
                        }
                        Control::Reauthorize => {
                            if let Some(ending) = Box::pin(self.reauthorize()).await {
                                return ending;
                            }
                        }
                    }
                }
                read = read_some(&mut self.stream, &mut self.buf) => {
                    match read {
                        Ok(0) | Err(_) => return Ending::lost(),
                        Ok(_) => {}
                    }
                    last_heard = Instant::now();
                    if let Some(ending) = Box::pin(self.handle_input()).await {
                        return ending;
                    }
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new();
                    }
                }
                // A client that does not acknowledge stops being fed: its outbox fills and
                // the broker drops (QoS 0) or keeps in the store (persistent QoS 1) the rest.
                delivery = self.mailbox.recv(), if self.pending.len() < OUTBOX_CAPACITY => {
                    let Some(delivery) = delivery else {
                        // The session dropped this connection's handle: another connection
                        // took the client id over.
                        return Ending::server(ReasonCode::SessionTakenOver, reason::DUPLICATE_CLIENTID);
                    };
                    self.enqueue(delivery);
                    while self.pending.len() < OUTBOX_CAPACITY {
                        match self.mailbox.try_recv() {
                            Some(d) => self.enqueue(d),
                            None => break,
                        }
                    }
                }
                _ = &mut keep_alive => {
                    let deadline = last_heard + grace;
                    if Instant::now() >= deadline {
                        tracing::info!(client_id = %self.client_id, "keep-alive timeout");
                        return Ending::server(ReasonCode::KeepAliveTimeout, reason::MQTT_KEEP_ALIVE_TIMEOUT);
                    }
                    keep_alive.as_mut().reset(deadline);
                }
                _ = shutdown.changed() => {
                    return Ending::server(ReasonCode::ServerShuttingDown, reason::SERVER_INITIATED_DISCONNECT);
                }
            }
        }
    }

    /// Decodes and handles every complete packet in the read buffer.
    async fn handle_input(&mut self) -> Option<Ending> {
        loop {
            let packet = match self.wire.decode(&mut self.buf) {
                Ok(Some(packet)) => packet,
                Ok(None) => return None,
                Err(e) => {
                    tracing::info!(client_id = %self.client_id, error = %e, "closing: bad packet");
                    metrics::counter!("drover_mqtt_protocol_errors_total").increment(1);
                    return Some(Ending::server(e.reason_code(), reason::CLIENT_ERROR));
                }
            };
            let ending = match packet {
                Inbound::Publish(publish) => self.on_publish(*publish).await,
                Inbound::PubAck(packet_id) => {
                    if let Some(delivery) = self.inflight.remove(&packet_id)
                        && let Some(id) = delivery.stored_id
                    {
                        self.acked_stored.push(id);
                    }
                    None
                }
                Inbound::Subscribe { packet_id, filters } => {
                    self.on_subscribe(packet_id, filters).await
                }
                Inbound::Unsubscribe { packet_id, filters } => {
                    self.on_unsubscribe(packet_id, filters).await
                }
                Inbound::PingReq => {
                    self.wire.pingresp(&mut self.out);
                    None
                }
                Inbound::Disconnect {
                    reason,
                    session_expiry_secs,
                } => Some(self.on_disconnect(reason, session_expiry_secs).await),
                Inbound::QoS2Flow => Some(Ending::server(
                    ReasonCode::QosNotSupported,
                    reason::CLIENT_ERROR,
                )),
                Inbound::Connect(_) => {
                    tracing::info!(client_id = %self.client_id, "closing: second CONNECT");
                    Some(Ending::server(
                        ReasonCode::ProtocolError,
                        reason::CLIENT_ERROR,
                    ))
                }
                Inbound::Unexpected(kind) => {
                    tracing::info!(client_id = %self.client_id, "closing: a client sent {kind}");
                    Some(Ending::server(
                        ReasonCode::ProtocolError,
                        reason::CLIENT_ERROR,
                    ))
                }
            };
            if ending.is_some() {
                return ending;
            }
        }
    }

    async fn on_publish(&mut self, mut publish: InboundPublish) -> Option<Ending> {
        if publish.qos > 1 {
            tracing::info!(client_id = %self.client_id, "closing: QoS 2 is not supported (as on AWS IoT)");
            return Some(Ending::server(
                ReasonCode::QosNotSupported,
                reason::CLIENT_ERROR,
            ));
        }
        if let Some(alias) = publish.topic_alias {
            if alias == 0 || alias > crate::config::TOPIC_ALIAS_MAX {
                return Some(Ending::server(
                    ReasonCode::TopicAliasInvalid,
                    reason::CLIENT_ERROR,
                ));
            }
            if publish.topic.is_empty() {
                match self.topic_aliases.get(&alias) {
                    Some(topic) => publish.topic = topic.clone(),
                    None => {
                        return Some(Ending::server(
                            ReasonCode::TopicAliasInvalid,
                            reason::CLIENT_ERROR,
                        ));
                    }
                }
            } else {
                self.topic_aliases.insert(alias, publish.topic.clone());
            }
        }
        if publish.payload.len() > MAX_PAYLOAD_BYTES {
            tracing::info!(client_id = %self.client_id, bytes = publish.payload.len(), "closing: payload exceeds 128 KB");
            return Some(Ending::server(
                ReasonCode::PacketTooLarge,
                reason::CLIENT_ERROR,
            ));
        }
        if let Err(e) = check_topic_name(&publish.topic) {
            tracing::info!(client_id = %self.client_id, error = %e, "closing: invalid topic");
            return Some(Ending::server(
                ReasonCode::TopicNameInvalid,
                reason::CLIENT_ERROR,
            ));
        }
        if let Some(refusal) = self.publish_refusal(&publish) {
            tracing::warn!(client_id = %self.client_id, certificate_id = %self.grant.certificate_id, "refused PUBLISH: {refusal}");
            metrics::counter!("drover_mqtt_denied_total", "action" => "publish").increment(1);
            // MQTT 5 can say no to a QoS 1 publish; otherwise AWS IoT closes the connection.
            if let (Version::V5, Some(packet_id)) = (self.version, publish.packet_id) {
                self.wire
                    .puback(packet_id, PubAckCode::NotAuthorized, &mut self.out);
                return None;
            }
            return Some(Ending::server(
                ReasonCode::NotAuthorized,
                reason::FORBIDDEN_ACCESS,
            ));
        }
        self.throttle().await;
        metrics::counter!("drover_mqtt_messages_received_total").increment(1);
        let code = if let Some(handler) = self.broker.reserved_handler(&publish.topic) {
            handler
                .handle(DeviceRequest {
                    client_id: self.client_id.clone(),
                    topic: publish.topic.clone(),
                    payload: publish.payload.clone(),
                    grant: self.grant.clone(),
                })
                .await;
            PubAckCode::Success
        } else {
            let message = Message {
                topic: publish.topic.as_str().into(),
                payload: publish.payload,
                qos: publish.qos,
                retain: publish.retain,
                properties: publish.properties.map(Arc::new),
                origin: Origin::Client(self.client_id.clone()),
            };
            match self.broker.route(Arc::new(message)).await {
                Ok(0) => PubAckCode::NoMatchingSubscribers,
                Ok(_) => PubAckCode::Success,
                Err(e) => {
                    // Not acknowledged: the client sends it again.
                    tracing::error!(client_id = %self.client_id, error = %e, "could not route a message");
                    return Some(Ending::server(
                        ReasonCode::UnspecifiedError,
                        reason::SERVER_INITIATED_DISCONNECT,
                    ));
                }
            }
        };
        if let Some(packet_id) = publish.packet_id {
            self.wire.puback(packet_id, code, &mut self.out);
        }
        None
    }

    /// Why this publish is not allowed, if it is not.
    fn publish_refusal(&self, publish: &InboundPublish) -> Option<String> {
        if is_server_only(&publish.topic) {
            return Some(format!(
                "{} is a reserved topic only drover publishes to",
                publish.topic.escape_debug()
            ));
        }
        let decision = self.grant.authorize(&AuthzRequest::Publish {
            topic: publish.topic.clone(),
        });
        if !decision.is_allowed() {
            return Some(decision.to_string());
        }
        if publish.retain {
            let decision = self.grant.authorize(&AuthzRequest::RetainPublish {
                topic: publish.topic.clone(),
            });
            if !decision.is_allowed() {
                return Some(decision.to_string());
            }
        }
        None
    }

    /// Waits while the connection is over its publish rate (AWS: 100 per second): slowing a
    /// fast publisher down loses nothing, unlike dropping its messages.
    async fn throttle(&mut self) {
        let rate = f64::from(self.broker.inner.config.publish_rate_per_connection);
        if rate == 0.0 {
            return;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last_refill).as_secs_f64() * rate).min(rate);
        self.last_refill = now;
        if self.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
            metrics::counter!("drover_mqtt_throttled_total").increment(1);
            tokio::time::sleep(wait).await;
            self.tokens = 1.0;
            self.last_refill = Instant::now();
        }
        self.tokens -= 1.0;
    }

    async fn on_subscribe(
        &mut self,
        packet_id: u16,
        filters: Vec<SubscriptionRequest>,
    ) -> Option<Ending> {
        let mut codes = Vec::with_capacity(filters.len());
        let mut granted: Vec<(String, u8, bool)> = Vec::new();
        for (index, request) in filters.into_iter().enumerate() {
            let code = self.subscribe_one(index, &request);
            if let SubAckCode::Granted(qos) = code {
                let options = SubscriptionOptions {
                    qos,
                    no_local: request.no_local,
                    retain_as_published: request.retain_as_published,
                    subscription_id: None,
                };
                let new = self
                    .broker
                    .add_subscription(&self.slot, &request.filter, options);
                let send_retained = match request.retain_handling {
                    0 => true,
                    1 => new,
                    _ => false,
                };
                granted.push((request.filter, qos, send_retained));
            }
            codes.push(code);
        }
        if !granted.is_empty()
            && let Some(ending) = self.save_subscriptions().await
        {
            return Some(ending);
        }
        self.wire.suback(packet_id, &codes, &mut self.out);
        for (filter, qos, send_retained) in granted {
            if !send_retained {
                continue;
            }
            for message in self.broker.retained_matching(&filter) {
                self.enqueue(Delivery {
                    qos: qos.min(message.qos),
                    retain: true,
                    message,
                    subscription_ids: Vec::new(),
                    stored_id: None,
                });
            }
        }
        None
    }

    fn subscribe_one(&self, index: usize, request: &SubscriptionRequest) -> SubAckCode {
        if index >= MAX_FILTERS_PER_SUBSCRIBE {
            return SubAckCode::QuotaExceeded;
        }
        if request.filter.starts_with("$share/") {
            return SubAckCode::SharedSubscriptionNotSupported;
        }
        if let Err(e) = check_topic_filter(&request.filter) {
            tracing::info!(client_id = %self.client_id, error = %e, "refused a topic filter");
            return SubAckCode::TopicFilterInvalid;
        }
        let decision = self.grant.authorize(&AuthzRequest::Subscribe {
            topic_filter: request.filter.clone(),
        });
        if !decision.is_allowed() {
            tracing::warn!(client_id = %self.client_id, certificate_id = %self.grant.certificate_id, "refused SUBSCRIBE: {decision}");
            metrics::counter!("drover_mqtt_denied_total", "action" => "subscribe").increment(1);
            return SubAckCode::NotAuthorized;
        }
        let state = self.slot.lock();
        if !state.subscriptions.contains_key(&request.filter)
            && state.subscriptions.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION
        {
            return SubAckCode::QuotaExceeded;
        }
        // AWS IoT has no QoS 2: it grants QoS 1 instead.
        SubAckCode::Granted(request.qos.min(1))
    }

    async fn on_unsubscribe(&mut self, packet_id: u16, filters: Vec<String>) -> Option<Ending> {
        let existed: Vec<bool> = filters
            .iter()
            .map(|f| self.broker.remove_subscription(&self.slot, f))
            .collect();
        if existed.iter().any(|e| *e)
            && let Some(ending) = self.save_subscriptions().await
        {
            return Some(ending);
        }
        self.wire.unsuback(packet_id, &existed, &mut self.out);
        None
    }

    /// Saves a persistent session's subscriptions before SUBACK/UNSUBACK, so an acknowledged
    /// subscription survives a restart; if the store fails, the connection closes unanswered
    /// and the client subscribes again.
    async fn save_subscriptions(&mut self) -> Option<Ending> {
        let e = self.broker.persist_session(&self.slot).await.err()?;
        tracing::error!(client_id = %self.client_id, error = %e, "could not save subscriptions");
        Some(Ending::server(
            ReasonCode::UnspecifiedError,
            reason::SERVER_INITIATED_DISCONNECT,
        ))
    }

    async fn on_disconnect(
        &mut self,
        reason_code: ReasonCode,
        session_expiry_secs: Option<u32>,
    ) -> Ending {
        if let Some(expiry) = session_expiry_secs {
            let changed = {
                let mut state = self.slot.lock();
                // MQTT 5 §3.14.2.2.2: a session that was not persistent cannot become so here.
                if state.persistent {
                    state.expiry_secs = expiry.min(MAX_SESSION_EXPIRY_SECS);
                    state.persistent = expiry > 0;
                    true
                } else {
                    false
                }
            };
            if changed && let Err(e) = self.broker.persist_session(&self.slot).await {
                tracing::error!(client_id = %self.client_id, error = %e, "could not save the session");
            }
        }
        Ending {
            reason: None,
            why: reason::CLIENT_INITIATED_DISCONNECT,
            publish_will: reason_code == ReasonCode::DisconnectWithWillMessage,
        }
    }

    /// Authenticates again after a permissions change; closes if no longer allowed.
    async fn reauthorize(&mut self) -> Option<Ending> {
        let certificate = self.stream.peer_certificate()?.to_vec();
        match self
            .broker
            .inner
            .authority
            .authenticate(&certificate, &self.client_id)
            .await
        {
            Ok(grant) => {
                let grant = Arc::new(grant);
                let decision = grant.authorize(&AuthzRequest::Connect {
                    client_id: self.client_id.to_string(),
                });
                self.grant = grant;
                if decision.is_allowed() {
                    None
                } else {
                    tracing::warn!(client_id = %self.client_id, "disconnecting after a policy change: {decision}");
                    Some(Ending::server(
                        ReasonCode::NotAuthorized,
                        reason::AUTH_ERROR,
                    ))
                }
            }
            Err(why) => {
                tracing::warn!(client_id = %self.client_id, reason = %why, "disconnecting: the certificate is no longer accepted");
                Some(Ending::server(
                    ReasonCode::NotAuthorized,
                    reason::AUTH_ERROR,
                ))
            }
        }
    }

    fn enqueue(&mut self, delivery: Delivery) {
        if delivery
            .stored_id
            .is_some_and(|id| id <= self.replayed_up_to)
        {
            return;
        }
        self.pending.push_back(delivery);
    }

    /// Loads the messages stored for a resumed session, ahead of anything routed since.
    async fn replay_stored(&mut self) -> Result<(), String> {
        let stored = self.broker.stored_messages(&self.client_id).await?;
        if let Some((last, _)) = stored.last() {
            self.replayed_up_to = *last;
        }
        let routed: Vec<Delivery> = self.pending.drain(..).collect();
        self.pending.extend(stored.into_iter().map(|(_, d)| d));
        for d in routed {
            self.enqueue(d);
        }
        Ok(())
    }

    /// Moves messages from the pending queue into the in-flight window and encodes them,
    /// checking the device's `iot:Receive` permission on each.
    fn send_pending(&mut self) {
        while let Some(front) = self.pending.front() {
            if front.qos == 1 && self.inflight.len() >= usize::from(self.receive_max) {
                break;
            }
            let delivery = self.pending.pop_front().expect("front exists");
            let decision = self.grant.authorize(&AuthzRequest::Receive {
                topic: delivery.message.topic.to_string(),
            });
            if !decision.is_allowed() {
                tracing::info!(client_id = %self.client_id, "not delivered: {decision}");
                metrics::counter!("drover_mqtt_denied_total", "action" => "receive").increment(1);
                if let Some(id) = delivery.stored_id {
                    self.acked_stored.push(id);
                }
                continue;
            }
            let subscription_id = delivery.subscription_ids.first().copied();
            if delivery.qos == 0 {
                self.wire.publish(
                    &delivery.message,
                    PublishHeader {
                        qos: 0,
                        retain: delivery.retain,
                        packet_id: None,
                        subscription_id,
                    },
                    &mut self.out,
                );
            } else {
                let packet_id = self.allocate_packet_id();
                self.wire.publish(
                    &delivery.message,
                    PublishHeader {
                        qos: 1,
                        retain: delivery.retain,
                        packet_id: Some(packet_id),
                        subscription_id,
                    },
                    &mut self.out,
                );
                self.inflight.insert(packet_id, delivery);
            }
            metrics::counter!("drover_mqtt_messages_delivered_total").increment(1);
        }
    }

    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&id) {
                return id;
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.broker
            .forget_stored(std::mem::take(&mut self.acked_stored));
        if self.out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.out).await?;
        self.stream.flush().await?;
        self.out.clear();
        if self.out.capacity() > KEEP_BUFFER {
            self.out = BytesMut::new();
        }
        Ok(())
    }

    async fn announce_connected(&mut self) {
        let timestamp_ms = now_ms();
        let record = PresenceRecord {
            connected: true,
            timestamp_ms,
            session_identifier: self.session_identifier.clone(),
            disconnect_reason: None,
        };
        let version = self.record_presence(&record).await;
        let payload = presence::connected_payload(&PresenceEvent {
            client_id: &self.client_id,
            timestamp_ms,
            session_identifier: &self.session_identifier,
            principal_identifier: &self.grant.certificate_id,
            ip_address: &self.peer.ip().to_string(),
            version_number: version,
        });
        self.publish_event(presence::connected_topic(&self.client_id), payload)
            .await;
    }

    async fn record_presence(&mut self, record: &PresenceRecord) -> i64 {
        match self
            .broker
            .inner
            .authority
            .record_presence(&self.client_id, record)
            .await
        {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(client_id = %self.client_id, error = %e, "could not record connectivity");
                0
            }
        }
    }

    async fn publish_event(&mut self, topic: String, payload: String) {
        if let Err(e) = self
            .broker
            .publish(Message::system(topic, payload, 0))
            .await
        {
            tracing::warn!(error = %e, "could not publish a lifecycle event");
        }
    }

    /// Closes the connection: tells an MQTT 5 client why, publishes the will when due,
    /// releases the session and announces the disconnect.
    async fn finish(mut self, ending: Ending) {
        if let Some(reason) = ending.reason {
            self.wire.disconnect(reason, &mut self.out);
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.flush().await;
            let _ = self.stream.shutdown().await;
        })
        .await;
        // Messages still in flight for a persistent session are in the store; anything else
        // goes with the connection, as MQTT allows for QoS 0 and clean sessions.
        self.broker
            .forget_stored(std::mem::take(&mut self.acked_stored));
        if ending.publish_will
            && let Some(will) = self.will.take()
        {
            self.publish_will(will).await;
        }
        self.broker
            .close_session(&self.slot, self.connection_id)
            .await;
        metrics::gauge!("drover_mqtt_connections").decrement(1.0);
        tracing::debug!(client_id = %self.client_id, reason = ending.why, "device disconnected");
        let timestamp_ms = now_ms();
        let record = PresenceRecord {
            connected: false,
            timestamp_ms,
            session_identifier: self.session_identifier.clone(),
            disconnect_reason: Some(ending.why.to_string()),
        };
        let version = self.record_presence(&record).await;
        let payload = presence::disconnected_payload(
            &PresenceEvent {
                client_id: &self.client_id,
                timestamp_ms,
                session_identifier: &self.session_identifier,
                principal_identifier: &self.grant.certificate_id,
                ip_address: &self.peer.ip().to_string(),
                version_number: version,
            },
            ending.why,
        );
        self.publish_event(presence::disconnected_topic(&self.client_id), payload)
            .await;
    }

    async fn publish_will(&mut self, will: Will) {
        let publish = InboundPublish {
            topic: will.topic.clone(),
            topic_alias: None,
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            packet_id: None,
            properties: will.properties.clone(),
        };
        if let Some(refusal) = self.publish_refusal(&publish) {
            tracing::warn!(client_id = %self.client_id, "will not published: {refusal}");
            return;
        }
        let message = Message {
            topic: will.topic.as_str().into(),
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: will.properties.map(Arc::new),
            origin: Origin::Client(self.client_id.clone()),
        };
        let broker = self.broker.clone();
        let slot = self.slot.clone();
        let delay = Duration::from_secs(u64::from(will.delay_secs));
        let publish = async move {
            // A delayed will is dropped if the device reconnected meanwhile.
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
                if slot.lock().connection.is_some() {
                    return;
                }
            }
            if let Err(e) = broker.route(Arc::new(message)).await {
                tracing::warn!(error = %e, "could not publish a will");
            }
        };
        if delay.is_zero() {
            publish.await;
        } else {
            tokio::spawn(publish);
        }
    }
}
