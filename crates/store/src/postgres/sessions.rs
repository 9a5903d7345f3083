//! The SQL behind [`crate::SessionStore`] for PostgreSQL.

use async_trait::async_trait;
use drover_core::time::Timestamp;
use tokio_postgres::Row;

use super::{PostgresStore, backend};
use crate::sessions::*;
use crate::{StoreError, StoreResult};

fn session_from_row(row: &Row) -> StoreResult<MqttSessionRecord> {
    Ok(MqttSessionRecord {
        client_id: row.try_get(0).map_err(backend)?,
        expiry_secs: u32::try_from(row.try_get::<_, i64>(1).map_err(backend)?)
            .map_err(|_| StoreError::Backend("corrupt session expiry".into()))?,
        subscriptions: row.try_get(2).map_err(backend)?,
        disconnected_at: row
            .try_get::<_, Option<i64>>(3)
            .map_err(backend)?
            .map(Timestamp),
    })
}

fn queued_from_row(row: &Row) -> StoreResult<MqttQueuedMessage> {
    Ok(MqttQueuedMessage {
        id: row.try_get(0).map_err(backend)?,
        client_id: row.try_get(1).map_err(backend)?,
        topic: row.try_get(2).map_err(backend)?,
        payload: row.try_get(3).map_err(backend)?,
        qos: row.try_get::<_, i16>(4).map_err(backend)? as u8,
        retain: row.try_get(5).map_err(backend)?,
        properties: row.try_get(6).map_err(backend)?,
        enqueued_at: Timestamp(row.try_get(7).map_err(backend)?),
    })
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn put_mqtt_session(&self, s: &MqttSessionRecord) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO mqtt_sessions (client_id, expiry_secs, subscriptions, disconnected_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (client_id) DO UPDATE SET expiry_secs = excluded.expiry_secs,
                    subscriptions = excluded.subscriptions,
                    disconnected_at = excluded.disconnected_at",
                &[
                    &s.client_id,
                    &i64::from(s.expiry_secs),
                    &s.subscriptions,
                    &s.disconnected_at.map(|t| t.0),
                ],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_mqtt_session(&self, client_id: &str) -> StoreResult<Option<MqttSessionRecord>> {
        self.client()
            .await?
            .query_opt(
                "SELECT client_id, expiry_secs, subscriptions, disconnected_at
                 FROM mqtt_sessions WHERE client_id = $1",
                &[&client_id],
            )
            .await
            .map_err(backend)?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn delete_mqtt_session(&self, client_id: &str) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("DELETE FROM mqtt_queue WHERE client_id = $1", &[&client_id])
            .await
            .map_err(backend)?;
        tx.execute(
            "DELETE FROM mqtt_sessions WHERE client_id = $1",
            &[&client_id],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn list_mqtt_sessions(&self) -> StoreResult<Vec<MqttSessionRecord>> {
        self.client()
            .await?
            .query(
                "SELECT client_id, expiry_secs, subscriptions, disconnected_at
                 FROM mqtt_sessions ORDER BY client_id",
                &[],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(session_from_row)
            .collect()
    }

    async fn enqueue_mqtt_messages(&self, messages: &[MqttQueuedMessage]) -> StoreResult<Vec<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO mqtt_queue
                    (client_id, topic, payload, qos, retain, properties, enqueued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .await
            .map_err(backend)?;
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let row = tx
                .query_one(
                    &stmt,
                    &[
                        &m.client_id,
                        &m.topic,
                        &m.payload,
                        &i16::from(m.qos),
                        &m.retain,
                        &m.properties,
                        &m.enqueued_at.0,
                    ],
                )
                .await
                .map_err(backend)?;
            ids.push(row.try_get(0).map_err(backend)?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(ids)
    }

    async fn list_mqtt_queue(
        &self,
        client_id: &str,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<MqttQueuedMessage>> {
        self.client()
            .await?
            .query(
                "SELECT id, client_id, topic, payload, qos, retain, properties, enqueued_at
                 FROM mqtt_queue WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&client_id, &after_id, &(limit as i64)],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(queued_from_row)
            .collect()
    }

    async fn count_mqtt_queue(&self, client_id: &str) -> StoreResult<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM mqtt_queue WHERE client_id = $1",
                &[&client_id],
            )
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        Ok(n as u64)
    }

    async fn delete_mqtt_messages(&self, ids: &[i64]) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM mqtt_queue WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn put_retained_message(&self, m: &RetainedMessage) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO mqtt_retained (topic, payload, qos, properties, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload,
                    qos = excluded.qos, properties = excluded.properties,
                    updated_at = excluded.updated_at",
                &[
                    &m.topic,
                    &m.payload,
                    &i16::from(m.qos),
                    &m.properties,
                    &m.updated_at.0,
                ],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_retained_message(&self, topic: &str) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute("DELETE FROM mqtt_retained WHERE topic = $1", &[&topic])
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn list_retained_messages(&self) -> StoreResult<Vec<RetainedMessage>> {
        self.client()
            .await?
            .query(
                "SELECT topic, payload, qos, properties, updated_at
                 FROM mqtt_retained ORDER BY topic",
                &[],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|row| {
                Ok(RetainedMessage {
                    topic: row.try_get(0).map_err(backend)?,
                    payload: row.try_get(1).map_err(backend)?,
                    qos: row.try_get::<_, i16>(2).map_err(backend)? as u8,
                    properties: row.try_get(3).map_err(backend)?,
                    updated_at: Timestamp(row.try_get(4).map_err(backend)?),
                })
            })
            .collect()
    }
}
