//! The broker's shared state and the operations connections and services perform on it:
//! the session table, the subscription trie, retained messages, in-process subscribers, the
//! reserved-topic handlers, routing, and persistence of sessions, queues and retained messages.
//!
//! Locks are synchronous and short, never held across `.await`. A QoS 1 message for a
//! persistent session is written to the store (durably) before it is handed to the connection
//! and before the publisher gets its PUBACK, so it survives a crash or restart; it is deleted
//! when the device acknowledges it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drover_core::mqtt_topic::{check_topic_filter, check_topic_name, topic_matches_filter};
use drover_core::time::Timestamp;
use drover_store::{MqttQueuedMessage, MqttSessionRecord, RetainedMessage, SharedStore};
use tokio::sync::{mpsc, watch};

use crate::authority::{AuthorityChange, DeviceAuthority};
use crate::config::{BrokerConfig, MAX_PAYLOAD_BYTES};
use crate::message::{Message, MessageProperties, Origin};
use crate::protocol::ReasonCode;
use crate::reserved::ReservedTopicHandler;
use crate::router::{Router, SubscriberId, SubscriptionOptions};
use crate::session::{
    ConnectionHandle, Control, Delivery, SessionState, Slot, decode_subscriptions,
    encode_subscriptions,
};

/// QoS 1 messages kept for one offline persistent session; beyond this new ones are dropped
/// (and counted), as Mosquitto's `max_queued_messages` does, so one absent device cannot
/// fill the disk.
pub(crate) const MAX_OFFLINE_QUEUE: u64 = 1000;

/// How often expired persistent sessions are looked for.
const EXPIRY_SWEEP: Duration = Duration::from_secs(30);

/// Messages an in-process subscriber may fall behind before messages to it are dropped: a
/// slow consumer (a rule's action) must never block delivery to devices.
pub const INTERNAL_QUEUE: usize = 4096;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub(crate) struct Inner {
    pub config: BrokerConfig,
    pub authority: Arc<dyn DeviceAuthority>,
    store: SharedStore,
    sessions: Mutex<HashMap<Arc<str>, Arc<Slot>>>,
    router: RwLock<Router>,
    retained: RwLock<BTreeMap<String, Arc<Message>>>,
    internal: RwLock<HashMap<u64, mpsc::Sender<Arc<Message>>>>,
    next_id: AtomicU64,
    reserved: RwLock<Vec<Arc<dyn ReservedTopicHandler>>>,
    pub shutdown: watch::Receiver<bool>,
}

/// The broker: cheap to clone; every clone is the same broker.
#[derive(Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

/// Why a server-side publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("payload of {0} bytes exceeds AWS IoT's 128 KB limit")]
    PayloadTooLarge(usize),
    #[error("store failure: {0}")]
    Store(String),
}

/// An in-process subscription (rules engine, services). Dropping it unsubscribes.
pub struct InternalSubscription {
    pub receiver: mpsc::Receiver<Arc<Message>>,
    id: u64,
    filter: String,
    broker: Weak<Inner>,
}

impl Drop for InternalSubscription {
    fn drop(&mut self) {
        if let Some(inner) = self.broker.upgrade() {
            inner
                .router
                .write()
                .expect("router lock is never poisoned")
                .unsubscribe(&self.filter, &SubscriberId::Internal(self.id));
            inner
                .internal
                .write()
                .expect("internal lock is never poisoned")
                .remove(&self.id);
        }
    }
}

/// How a connection's session was set up.
pub(crate) struct OpenedSession {
    pub slot: Arc<Slot>,
    pub session_present: bool,
}

impl Broker {
    /// Loads retained messages and persistent sessions from the store and starts the
    /// background tasks (authority changes, session expiry). `shutdown` closes every
    /// connection when it turns true.
    pub async fn start(
        config: BrokerConfig,
        authority: Arc<dyn DeviceAuthority>,
        store: SharedStore,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Broker, String> {
        let mut retained = BTreeMap::new();
        for r in store
            .list_retained_messages()
            .await
            .map_err(|e| format!("loading retained messages: {e}"))?
        {
            let message = Message {
                topic: r.topic.as_str().into(),
                payload: r.payload.into(),
                qos: r.qos,
                retain: true,
                properties: decode_properties(r.properties.as_deref()),
                origin: Origin::System,
            };
            retained.insert(r.topic, Arc::new(message));
        }
        let inner = Arc::new(Inner {
            config,
            authority,
            store,
            sessions: Mutex::default(),
            router: RwLock::default(),
            retained: RwLock::new(retained),
            internal: RwLock::default(),
            next_id: AtomicU64::new(1),
            reserved: RwLock::default(),
            shutdown,
        });
        let broker = Broker { inner };
        broker.restore_sessions().await?;
        tokio::spawn(watch_authority(Arc::downgrade(&broker.inner)));
        tokio::spawn(sweep_expired_sessions(Arc::downgrade(&broker.inner)));
        Ok(broker)
    }

    /// Publishes a message from drover itself (jobs notifications, events, the services'
    /// publish API). It is routed like a device's message, and each subscriber's
    /// `iot:Receive` permission is checked on delivery. Returns the number of subscribers.
    pub async fn publish(&self, message: Message) -> Result<usize, PublishError> {
        check_topic_name(&message.topic).map_err(|e| PublishError::InvalidTopic(e.to_string()))?;
        if message.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(PublishError::PayloadTooLarge(message.payload.len()));
        }
        self.route(Arc::new(message)).await
    }

    /// Subscribes drover itself to `filter`. Messages arrive on the returned receiver; if it
    /// falls [`INTERNAL_QUEUE`] behind, further messages to it are dropped and counted.
    pub fn subscribe_internal(&self, filter: &str) -> Result<InternalSubscription, String> {
        check_topic_filter(filter).map_err(|e| e.to_string())?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(INTERNAL_QUEUE);
        self.inner
            .internal
            .write()
            .expect("internal lock is never poisoned")
            .insert(id, sender);
        self.inner
            .router
            .write()
            .expect("router lock is never poisoned")
            .subscribe(
                filter,
                SubscriberId::Internal(id),
                SubscriptionOptions {
                    qos: 1,
                    no_local: false,
                    retain_as_published: false,
                    subscription_id: None,
                },
            );
        Ok(InternalSubscription {
            receiver,
            id,
            filter: filter.to_string(),
            broker: Arc::downgrade(&self.inner),
        })
    }

    /// Registers a handler for device requests on reserved topics.
    pub fn add_reserved_handler(&self, handler: Arc<dyn ReservedTopicHandler>) {
        self.inner
            .reserved
            .write()
            .expect("reserved lock is never poisoned")
            .push(handler);
    }

    /// Whether a device with this client id is connected to this node.
    pub fn is_connected(&self, client_id: &str) -> bool {
        self.slot(client_id)
            .is_some_and(|slot| slot.lock().connection.is_some())
    }

    /// Number of devices connected to this node.
    pub fn connected_count(&self) -> usize {
        self.inner
            .sessions
            .lock()
            .expect("session table lock is never poisoned")
            .values()
            .filter(|s| s.lock().connection.is_some())
            .count()
    }

    pub(crate) fn slot(&self, client_id: &str) -> Option<Arc<Slot>> {
        self.inner
            .sessions
            .lock()
            .expect("session table lock is never poisoned")
            .get(client_id)
            .cloned()
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn reserved_handler(&self, topic: &str) -> Option<Arc<dyn ReservedTopicHandler>> {
        self.inner
            .reserved
            .read()
            .expect("reserved lock is never poisoned")
            .iter()
            .find(|h| h.claims(topic))
            .cloned()
    }

    /// Delivers `message` to every matching subscriber. QoS 1 copies for persistent sessions
    /// are stored first; the call returns once they are durable.
    pub(crate) async fn route(&self, message: Arc<Message>) -> Result<usize, PublishError> {
        if message.retain {
            self.retain(&message).await?;
        }
        let matches = self
            .inner
            .router
            .read()
            .expect("router lock is never poisoned")
            .matches(&message.topic);
        let mut delivered = 0;
        let mut to_store: Vec<(Arc<Slot>, Delivery)> = Vec::new();
        for m in matches {
            let client_id = match &m.subscriber {
                SubscriberId::Internal(id) => {
                    let sender = self
                        .inner
                        .internal
                        .read()
                        .expect("internal lock is never poisoned")
                        .get(id)
                        .cloned();
                    if let Some(sender) = sender {
                        delivered += 1;
                        if sender.try_send(message.clone()).is_err() {
                            metrics::counter!("drover_mqtt_dropped_total", "reason" => "internal_queue_full").increment(1);
                        }
                    }
                    continue;
                }
                SubscriberId::Client(id) => id,
            };
            if m.no_local && message.publisher() == Some(&**client_id) {
                continue;
            }
            let Some(slot) = self.slot(client_id) else {
                continue;
            };
            let delivery = Delivery {
                message: message.clone(),
                qos: m.qos.min(message.qos),
                retain: m.retain_as_published && message.retain,
                subscription_ids: m.subscription_ids,
                stored_id: None,
            };
            let mut state = slot.lock();
            if state.persistent && delivery.qos == 1 {
                if state.connection.is_none() {
                    if state.offline_queued >= MAX_OFFLINE_QUEUE {
                        metrics::counter!("drover_mqtt_dropped_total", "reason" => "offline_queue_full").increment(1);
                        tracing::warn!(client_id = %slot.client_id, "offline queue full: message dropped");
                        continue;
                    }
                    state.offline_queued += 1;
                }
                drop(state);
                delivered += 1;
                to_store.push((slot, delivery));
            } else if let Some(connection) = &state.connection {
                delivered += 1;
                offer(connection, delivery);
            }
            // An offline persistent session does not keep QoS 0 messages (as AWS IoT).
        }
        if !to_store.is_empty() {
            let now = Timestamp(now_ms());
            let properties = encode_properties(message.properties.as_deref());
            let rows: Vec<MqttQueuedMessage> = to_store
                .iter()
                .map(|(slot, d)| MqttQueuedMessage {
                    id: 0,
                    client_id: slot.client_id.to_string(),
                    topic: message.topic.to_string(),
                    payload: message.payload.to_vec(),
                    qos: d.qos,
                    retain: d.retain,
                    properties: properties.clone(),
                    enqueued_at: now,
                })
                .collect();
            let ids = self
                .inner
                .store
                .enqueue_mqtt_messages(&rows)
                .await
                .map_err(|e| PublishError::Store(e.to_string()))?;
            for ((slot, mut delivery), id) in to_store.into_iter().zip(ids) {
                delivery.stored_id = Some(id);
                let state = slot.lock();
                if let Some(connection) = &state.connection {
                    offer(connection, delivery);
                }
            }
        }
        metrics::counter!("drover_mqtt_messages_routed_total").increment(1);
        Ok(delivered)
    }

    /// Keeps `message` as its topic's retained message (an empty payload clears it).
    async fn retain(&self, message: &Arc<Message>) -> Result<(), PublishError> {
        let topic = message.topic.to_string();
        if message.payload.is_empty() {
            self.inner
                .store
                .delete_retained_message(&topic)
                .await
                .map_err(|e| PublishError::Store(e.to_string()))?;
            self.inner
                .retained
                .write()
                .expect("retained lock is never poisoned")
                .remove(&topic);
        } else {
            self.inner
                .store
                .put_retained_message(&RetainedMessage {
                    topic: topic.clone(),
                    payload: message.payload.to_vec(),
                    qos: message.qos,
                    properties: encode_properties(message.properties.as_deref()),
                    updated_at: Timestamp(now_ms()),
                })
                .await
                .map_err(|e| PublishError::Store(e.to_string()))?;
            self.inner
                .retained
                .write()
                .expect("retained lock is never poisoned")
                .insert(topic, message.clone());
        }
        Ok(())
    }

    /// Retained messages whose topics match `filter`.
    pub(crate) fn retained_matching(&self, filter: &str) -> Vec<Arc<Message>> {
        self.inner
            .retained
            .read()
            .expect("retained lock is never poisoned")
            .iter()
            .filter(|(topic, _)| topic_matches_filter(filter, topic))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Attaches a new connection to `client_id`'s session: takes it over from a connection
    /// still serving it, resumes it if persistent and `clean_start` is false, or starts a new
    /// one. Returns the previous connection, which the caller closes.
    pub(crate) async fn open_session(
        &self,
        client_id: &Arc<str>,
        clean_start: bool,
        expiry_secs: u32,
        handle: ConnectionHandle,
    ) -> Result<(OpenedSession, Option<ConnectionHandle>), String> {
        let persistent = expiry_secs > 0;
        // A session that lives only in the store (another node served it, or this node
        // restarted before loading it): bring it in first.
        if !clean_start && self.slot(client_id).is_none() {
            self.load_session(client_id).await?;
        }
        let (slot, previous, resumed, discard_stored, dropped_subscriptions) = {
            let mut sessions = self
                .inner
                .sessions
                .lock()
                .expect("session table lock is never poisoned");
            let existed = sessions.contains_key(client_id);
            let slot = sessions
                .entry(client_id.clone())
                .or_insert_with(|| {
                    Arc::new(Slot::new(
                        client_id.clone(),
                        SessionState {
                            connection: None,
                            persistent,
                            expiry_secs,
                            subscriptions: BTreeMap::new(),
                            disconnected_at: None,
                            offline_queued: 0,
                        },
                    ))
                })
                .clone();
            let mut state = slot.lock();
            let previous = state.connection.replace(handle);
            let resumed = existed && !clean_start && state.persistent;
            // Every stored session of this node is in the table (loaded at start, or just
            // above), so only a persistent one being replaced has records to discard.
            let discard_stored = existed && !resumed && state.persistent;
            let dropped = if resumed {
                Vec::new()
            } else {
                std::mem::take(&mut state.subscriptions)
                    .into_keys()
                    .collect()
            };
            state.persistent = persistent;
            state.expiry_secs = expiry_secs;
            state.disconnected_at = None;
            state.offline_queued = 0;
            drop(state);
            (slot, previous, resumed, discard_stored, dropped)
        };
        if !dropped_subscriptions.is_empty() {
            let mut router = self
                .inner
                .router
                .write()
                .expect("router lock is never poisoned");
            for filter in dropped_subscriptions {
                router.unsubscribe(&filter, &SubscriberId::Client(client_id.clone()));
            }
        }
        if discard_stored {
            // A clean start discards whatever the previous session stored.
            self.inner
                .store
                .delete_mqtt_session(client_id)
                .await
                .map_err(|e| e.to_string())?;
        }
        if persistent {
            self.persist_session(&slot).await?;
        }
        Ok((
            OpenedSession {
                slot,
                session_present: resumed,
            },
            previous,
        ))
    }

    /// Detaches connection `connection_id` from its session (unless another connection took
    /// it over): a persistent session waits for its device; any other is removed.
    pub(crate) async fn close_session(&self, slot: &Arc<Slot>, connection_id: u64) {
        let (owned, persistent, filters) = {
            let mut state = slot.lock();
            let owned = state
                .connection
                .as_ref()
                .is_some_and(|c| c.id == connection_id);
            if owned {
                state.connection = None;
                if state.persistent {
                    state.disconnected_at = Some(now_ms());
                }
            }
            let filters: Vec<String> = state.subscriptions.keys().cloned().collect();
            (owned, state.persistent, filters)
        };
        if !owned {
            return;
        }
        if persistent {
            if let Err(e) = self.persist_session(slot).await {
                tracing::error!(client_id = %slot.client_id, error = %e, "could not save the session");
            }
        } else {
            self.remove_session(slot, &filters);
        }
    }

    fn remove_session(&self, slot: &Arc<Slot>, filters: &[String]) {
        {
            let mut sessions = self
                .inner
                .sessions
                .lock()
                .expect("session table lock is never poisoned");
            // Only if the table still holds this very slot and nobody reconnected meanwhile.
            let current = sessions.get(&slot.client_id).cloned();
            match current {
                Some(s) if Arc::ptr_eq(&s, slot) && s.lock().connection.is_none() => {
                    sessions.remove(&slot.client_id);
                }
                _ => return,
            }
        }
        let mut router = self
            .inner
            .router
            .write()
            .expect("router lock is never poisoned");
        for filter in filters {
            router.unsubscribe(filter, &SubscriberId::Client(slot.client_id.clone()));
        }
    }

    /// Adds a subscription to a session (and the trie); `true` if it is new.
    pub(crate) fn add_subscription(
        &self,
        slot: &Arc<Slot>,
        filter: &str,
        options: SubscriptionOptions,
    ) -> bool {
        slot.lock()
            .subscriptions
            .insert(filter.to_string(), options);
        let mut router = self
            .inner
            .router
            .write()
            .expect("router lock is never poisoned");
        let new = router.subscribe(
            filter,
            SubscriberId::Client(slot.client_id.clone()),
            options,
        );
        metrics::gauge!("drover_mqtt_subscriptions").set(router.len() as f64);
        new
    }

    pub(crate) fn remove_subscription(&self, slot: &Arc<Slot>, filter: &str) -> bool {
        let existed = slot.lock().subscriptions.remove(filter).is_some();
        if existed {
            self.inner
                .router
                .write()
                .expect("router lock is never poisoned")
                .unsubscribe(filter, &SubscriberId::Client(slot.client_id.clone()));
        }
        existed
    }

    /// Writes a persistent session's record (durably).
    pub(crate) async fn persist_session(&self, slot: &Arc<Slot>) -> Result<(), String> {
        let record = {
            let state = slot.lock();
            if !state.persistent {
                return Ok(());
            }
            MqttSessionRecord {
                client_id: slot.client_id.to_string(),
                expiry_secs: state.expiry_secs,
                subscriptions: encode_subscriptions(&state.subscriptions),
                disconnected_at: state.disconnected_at.map(Timestamp),
            }
        };
        self.inner
            .store
            .put_mqtt_session(&record)
            .await
            .map_err(|e| e.to_string())
    }

    /// The QoS 1 messages stored for a session, oldest first.
    pub(crate) async fn stored_messages(
        &self,
        client_id: &str,
    ) -> Result<Vec<(i64, Delivery)>, String> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .inner
                .store
                .list_mqtt_queue(client_id, after, 500)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            for row in page {
                let message = Message {
                    topic: row.topic.as_str().into(),
                    payload: row.payload.into(),
                    qos: row.qos,
                    retain: row.retain,
                    properties: decode_properties(row.properties.as_deref()),
                    origin: Origin::System,
                };
                out.push((
                    row.id,
                    Delivery {
                        qos: row.qos,
                        retain: row.retain,
                        message: Arc::new(message),
                        subscription_ids: Vec::new(),
                        stored_id: Some(row.id),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Deletes acknowledged queue rows in the background: a lost delete only means the
    /// message is delivered again, which QoS 1 allows.
    pub(crate) fn forget_stored(&self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        let store = self.inner.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.delete_mqtt_messages(&ids).await {
                tracing::warn!(error = %e, "could not delete delivered messages");
            }
        });
    }

    /// Loads one stored session into the table (offline), unless it expired.
    async fn load_session(&self, client_id: &str) -> Result<(), String> {
        let Some(record) = self
            .inner
            .store
            .get_mqtt_session(client_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        self.install_stored_session(record).await
    }

    async fn restore_sessions(&self) -> Result<(), String> {
        let records = self
            .inner
            .store
            .list_mqtt_sessions()
            .await
            .map_err(|e| format!("loading persistent sessions: {e}"))?;
        let count = records.len();
        for record in records {
            self.install_stored_session(record).await?;
        }
        if count > 0 {
            tracing::info!(sessions = count, "restored persistent MQTT sessions");
        }
        Ok(())
    }

    async fn install_stored_session(&self, record: MqttSessionRecord) -> Result<(), String> {
        let now = now_ms();
        // A session that was connected when the server stopped counts as disconnected now.
        let disconnected_at = record.disconnected_at.map(|t| t.0).unwrap_or(now);
        if disconnected_at + i64::from(record.expiry_secs) * 1000 <= now {
            return self
                .inner
                .store
                .delete_mqtt_session(&record.client_id)
                .await
                .map_err(|e| e.to_string());
        }
        let subscriptions = decode_subscriptions(&record.subscriptions)?;
        let queued = self
            .inner
            .store
            .count_mqtt_queue(&record.client_id)
            .await
            .map_err(|e| e.to_string())?;
        let client_id: Arc<str> = record.client_id.as_str().into();
        let slot = Arc::new(Slot::new(
            client_id.clone(),
            SessionState {
                connection: None,
                persistent: true,
                expiry_secs: record.expiry_secs,
                subscriptions: subscriptions.clone(),
                disconnected_at: Some(disconnected_at),
                offline_queued: queued,
            },
        ));
        {
            let mut sessions = self
                .inner
                .sessions
                .lock()
                .expect("session table lock is never poisoned");
            if sessions.contains_key(&client_id) {
                return Ok(());
            }
            sessions.insert(client_id.clone(), slot);
        }
        let mut router = self
            .inner
            .router
            .write()
            .expect("router lock is never poisoned");
        for (filter, options) in subscriptions {
            router.subscribe(&filter, SubscriberId::Client(client_id.clone()), options);
        }
        Ok(())
    }

    /// Sends `control` to the connections whose certificate is `certificate_id` (`None`: all).
    fn signal_connections(&self, certificate_id: Option<&str>, control: Control) -> usize {
        let slots: Vec<Arc<Slot>> = self
            .inner
            .sessions
            .lock()
            .expect("session table lock is never poisoned")
            .values()
            .cloned()
            .collect();
        let mut signalled = 0;
        for slot in slots {
            let state = slot.lock();
            if let Some(connection) = &state.connection
                && certificate_id.is_none_or(|id| &*connection.certificate_id == id)
            {
                connection.mailbox.send_control(control);
                signalled += 1;
            }
        }
        signalled
    }

    async fn expire_sessions(&self) {
        let now = now_ms();
        let expired: Vec<Arc<Slot>> = self
            .inner
            .sessions
            .lock()
            .expect("session table lock is never poisoned")
            .values()
            .filter(|slot| {
                let state = slot.lock();
                state.connection.is_none()
                    && state
                        .disconnected_at
                        .is_some_and(|at| at + i64::from(state.expiry_secs) * 1000 <= now)
            })
            .cloned()
            .collect();
        for slot in expired {
            let filters: Vec<String> = slot.lock().subscriptions.keys().cloned().collect();
            self.remove_session(&slot, &filters);
            if let Err(e) = self.inner.store.delete_mqtt_session(&slot.client_id).await {
                tracing::warn!(client_id = %slot.client_id, error = %e, "could not delete an expired session");
            } else {
                tracing::debug!(client_id = %slot.client_id, "persistent session expired");
            }
        }
    }
}

/// Hands a delivery to a connection without waiting: a full outbox drops QoS 0 messages
/// (QoS 1 copies of persistent sessions are in the store and come back on reconnect).
fn offer(connection: &ConnectionHandle, delivery: Delivery) {
    if connection.mailbox.try_send(delivery).is_err() {
        metrics::counter!("drover_mqtt_dropped_total", "reason" => "slow_subscriber").increment(1);
    }
}

fn encode_properties(properties: Option<&MessageProperties>) -> Option<String> {
    properties
        .filter(|p| !p.is_empty())
        .map(|p| serde_json::to_string(p).expect("properties always serialize"))
}

fn decode_properties(text: Option<&str>) -> Option<Arc<MessageProperties>> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .map(Arc::new)
}

async fn watch_authority(inner: Weak<Inner>) {
    let mut changes = match inner.upgrade() {
        Some(inner) => inner.authority.changes(),
        None => return,
    };
    loop {
        let change = changes.recv().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let broker = Broker { inner };
        match change {
            Ok(AuthorityChange::CertificateDeactivated { certificate_id }) => {
                let closed = broker.signal_connections(
                    Some(&certificate_id),
                    Control::Close {
                        reason: ReasonCode::NotAuthorized,
                        why: crate::presence::reason::AUTH_ERROR,
                    },
                );
                if closed > 0 {
                    tracing::info!(%certificate_id, connections = closed, "certificate no longer active: disconnecting");
                }
            }
            Ok(AuthorityChange::PermissionsChanged { certificate_id }) => {
                broker.signal_connections(certificate_id.as_deref(), Control::Reauthorize);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Missed changes: every connection re-checks.
                broker.signal_connections(None, Control::Reauthorize);
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn sweep_expired_sessions(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        Broker { inner }.expire_sessions().await;
    }
}
