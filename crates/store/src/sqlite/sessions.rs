//! The SQL behind [`crate::SessionStore`] for SQLite.

use async_trait::async_trait;
use drover_core::time::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, backend};
use crate::StoreResult;
use crate::sessions::*;

fn session_from_row(row: &Row) -> rusqlite::Result<MqttSessionRecord> {
    Ok(MqttSessionRecord {
        client_id: row.get(0)?,
        expiry_secs: row.get(1)?,
        subscriptions: row.get(2)?,
        disconnected_at: row.get::<_, Option<i64>>(3)?.map(Timestamp),
    })
}

fn queued_from_row(row: &Row) -> rusqlite::Result<MqttQueuedMessage> {
    Ok(MqttQueuedMessage {
        id: row.get(0)?,
        client_id: row.get(1)?,
        topic: row.get(2)?,
        payload: row.get(3)?,
        qos: row.get(4)?,
        retain: row.get(5)?,
        properties: row.get(6)?,
        enqueued_at: Timestamp(row.get(7)?),
    })
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_mqtt_session(&self, session: &MqttSessionRecord) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO mqtt_sessions (client_id, expiry_secs, subscriptions, disconnected_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (client_id) DO UPDATE SET expiry_secs = excluded.expiry_secs,
                    subscriptions = excluded.subscriptions,
                    disconnected_at = excluded.disconnected_at",
                params![
                    s.client_id,
                    s.expiry_secs,
                    s.subscriptions,
                    s.disconnected_at.map(|t| t.0)
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_mqtt_session(&self, client_id: &str) -> StoreResult<Option<MqttSessionRecord>> {
        let client_id = client_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT client_id, expiry_secs, subscriptions, disconnected_at
                 FROM mqtt_sessions WHERE client_id = ?1",
                [client_id],
                session_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn delete_mqtt_session(&self, client_id: &str) -> StoreResult<()> {
        let client_id = client_id.to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM mqtt_queue WHERE client_id = ?1", [&client_id])
                .map_err(backend)?;
            conn.execute(
                "DELETE FROM mqtt_sessions WHERE client_id = ?1",
                [&client_id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_mqtt_sessions(&self) -> StoreResult<Vec<MqttSessionRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT client_id, expiry_secs, subscriptions, disconnected_at
                     FROM mqtt_sessions ORDER BY client_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], session_from_row)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn enqueue_mqtt_messages(&self, messages: &[MqttQueuedMessage]) -> StoreResult<Vec<i64>> {
        let messages = messages.to_vec();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO mqtt_queue
                        (client_id, topic, payload, qos, retain, properties, enqueued_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(backend)?;
            let mut ids = Vec::with_capacity(messages.len());
            for m in &messages {
                stmt.execute(params![
                    m.client_id,
                    m.topic,
                    m.payload,
                    m.qos,
                    m.retain,
                    m.properties,
                    m.enqueued_at.0
                ])
                .map_err(backend)?;
                ids.push(conn.last_insert_rowid());
            }
            Ok(ids)
        })
        .await
    }

    async fn list_mqtt_queue(
        &self,
        client_id: &str,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<MqttQueuedMessage>> {
        let client_id = client_id.to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, client_id, topic, payload, qos, retain, properties, enqueued_at
                     FROM mqtt_queue WHERE client_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![client_id, after_id, limit as i64], queued_from_row)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn count_mqtt_queue(&self, client_id: &str) -> StoreResult<u64> {
        let client_id = client_id.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM mqtt_queue WHERE client_id = ?1",
                [client_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn delete_mqtt_messages(&self, ids: &[i64]) -> StoreResult<()> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached("DELETE FROM mqtt_queue WHERE id = ?1")
                .map_err(backend)?;
            for id in ids {
                stmt.execute([id]).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn put_retained_message(&self, message: &RetainedMessage) -> StoreResult<()> {
        let m = message.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO mqtt_retained (topic, payload, qos, properties, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload,
                    qos = excluded.qos, properties = excluded.properties,
                    updated_at = excluded.updated_at",
                params![m.topic, m.payload, m.qos, m.properties, m.updated_at.0],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_retained_message(&self, topic: &str) -> StoreResult<bool> {
        let topic = topic.to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM mqtt_retained WHERE topic = ?1", [topic])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn list_retained_messages(&self) -> StoreResult<Vec<RetainedMessage>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT topic, payload, qos, properties, updated_at
                     FROM mqtt_retained ORDER BY topic",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(RetainedMessage {
                        topic: row.get(0)?,
                        payload: row.get(1)?,
                        qos: row.get(2)?,
                        properties: row.get(3)?,
                        updated_at: Timestamp(row.get(4)?),
                    })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }
}
