//! The trigger runner's role ([`TriggerStore`]): triggers, the streams they act on, their events.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, Type};

use crate::model::{NewTrigger, ObjectState, Stream, StreamEvent, StreamTrigger, unix_now};
use crate::store::rows::STREAM_COLUMNS;

use super::StoreError;
use super::objects::{ObjectStore, ObjectWrite, SqlValue};
use super::sql_store::{Sql, SqlDb, SqlStore};
use super::tables;

/// The trigger runner's role: triggers, the streams they act on, and their events.
#[async_trait]
pub trait TriggerStore: Send + Sync {
    async fn create_trigger(&self, trigger: &NewTrigger) -> Result<StreamTrigger, StoreError>;

    /// Enabled triggers of active streams.
    async fn active_triggers(&self) -> Result<Vec<StreamTrigger>, StoreError>;

    /// A stream's current action payload and state (for trigger actions).
    async fn stream(&self, id: i64) -> Result<Option<Stream>, StoreError>;

    /// Sets the state of a stream that is active (a trigger disabling it); a stream in any
    /// other state is left as it is.
    async fn set_stream_state(
        &self,
        id: i64,
        state: crate::model::ObjectState,
    ) -> Result<(), StoreError>;

    /// Replaces a stream's action payload.
    async fn set_stream_action_payload(
        &self,
        id: i64,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError>;

    async fn add_stream_event(
        &self,
        stream_id: i64,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<StreamEvent, StoreError>;

    /// A stream's events, newest first, at most `limit`.
    async fn stream_events(
        &self,
        stream_id: i64,
        limit: i64,
    ) -> Result<Vec<StreamEvent>, StoreError>;
}

#[async_trait]
impl<DB> TriggerStore for SqlStore<DB>
where
    DB: SqlDb,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    i64: Sql<DB>,
    f64: Sql<DB>,
    bool: Sql<DB>,
    String: Sql<DB>,
    Option<i64>: Sql<DB>,
    Option<f64>: Sql<DB>,
    Option<String>: Sql<DB>,
    Option<bool>: Sql<DB>,
    Arc<str>: Sql<DB>,
{
    async fn create_trigger(&self, new: &NewTrigger) -> Result<StreamTrigger, StoreError> {
        let values = vec![
            ("stream_id", SqlValue::Int(new.stream_id)),
            ("condition", SqlValue::Text(new.condition.clone())),
            ("action", SqlValue::Text(new.action.clone())),
            ("target", SqlValue::Text(new.target.clone())),
            ("interval_seconds", SqlValue::Int(new.interval_seconds)),
            ("payload", SqlValue::Text(new.payload.to_string())),
        ];
        let id = self
            .create(&tables::STREAM_TRIGGERS, values, Vec::new())
            .await?;
        let row = sqlx::query(
            "SELECT id, stream_id, condition, action, target, interval_seconds, payload, enabled \
             FROM stream_triggers WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Self::trigger_row(&row)
    }

    async fn active_triggers(&self) -> Result<Vec<StreamTrigger>, StoreError> {
        sqlx::query(
            "SELECT t.id, t.stream_id, t.condition, t.action, t.target, t.interval_seconds, t.payload, t.enabled \
             FROM stream_triggers t JOIN streams s ON s.id = t.stream_id \
             WHERE t.enabled = $1 AND s.state = 'active' ORDER BY t.stream_id, t.position, t.id",
        )
        .bind(true)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::trigger_row)
        .collect()
    }

    async fn stream(&self, id: i64) -> Result<Option<Stream>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Self::stream_row(&row, Vec::new(), Vec::new(), Vec::new()))
            .transpose()
    }

    async fn set_stream_state(&self, id: i64, state: ObjectState) -> Result<(), StoreError> {
        // A conditional change (the object layer writes unconditionally), so its own statement.
        // Only an active stream changes: a trigger that fires while the stream is being
        // archived or disabled through the API must not bring it back as `disabled`.
        sqlx::query(
            "UPDATE streams SET state = $1, updated_at = $2 WHERE id = $3 AND state = 'active'",
        )
        .bind(state.as_str())
        .bind(unix_now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_stream_action_payload(
        &self,
        id: i64,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let write = ObjectWrite {
            table: &tables::STREAMS,
            id: Some(id),
            values: vec![
                ("action_payload", SqlValue::Text(payload.to_string())),
                ("updated_at", SqlValue::Int(unix_now())),
            ],
            children: Vec::new(),
        };
        self.object_write(&write).await?;
        Ok(())
    }

    async fn add_stream_event(
        &self,
        stream_id: i64,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<StreamEvent, StoreError> {
        let row = sqlx::query(
            "INSERT INTO stream_events (stream_id, event, data, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, stream_id, event, data, created_at",
        )
        .bind(stream_id)
        .bind(event.to_string())
        .bind(data.to_string())
        .bind(unix_now())
        .fetch_one(&self.pool)
        .await?;
        Self::event_row(&row)
    }

    async fn stream_events(
        &self,
        stream_id: i64,
        limit: i64,
    ) -> Result<Vec<StreamEvent>, StoreError> {
        sqlx::query(
            "SELECT id, stream_id, event, data, created_at FROM stream_events WHERE stream_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(stream_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::event_row)
        .collect()
    }
}
