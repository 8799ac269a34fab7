//! The received- and sent-postback logs ([`PostbackLog`]).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::StoreError;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

/// One entry of the received-postbacks log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceivedPostback {
    pub id: i64,
    pub sub_id: String,
    pub tid: String,
    pub status: String,
    /// accepted, transition, duplicate, ignored, invalid, pending (its click not stored yet),
    /// expired (its click never came; `unknown_sub_id` in logs from before version 7)
    pub outcome: String,
    pub message: String,
    pub conversion_id: Option<i64>,
    pub params: String,
    pub created_at: i64,
}

impl ReceivedPostback {
    /// The log entry of a postback that recorded no conversion (`outcome` says why), with the
    /// `tid` and `status` it sent; `params` are its parameters, `params_json` the same as
    /// stored.
    pub fn unrecorded(
        sub_id: &str,
        params: &std::collections::BTreeMap<String, String>,
        params_json: &str,
        outcome: &str,
        message: String,
        at: i64,
    ) -> ReceivedPostback {
        ReceivedPostback {
            id: 0,
            sub_id: sub_id.to_string(),
            tid: params.get("tid").cloned().unwrap_or_default(),
            status: params.get("status").cloned().unwrap_or_default(),
            outcome: outcome.to_string(),
            message,
            conversion_id: None,
            params: params_json.to_string(),
            created_at: at,
        }
    }
}

/// One entry of the sent-postbacks log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentPostback {
    pub id: i64,
    pub conversion_id: Option<i64>,
    /// `campaign` or `traffic_source`.
    pub origin: String,
    pub method: String,
    pub url: String,
    pub body: String,
    /// The last answer's status, if any came.
    pub http_status: Option<i64>,
    pub attempts: i64,
    /// Why it failed ("" when it was delivered).
    pub error: String,
    pub created_at: i64,
}

/// The postback logs: what came in and what went out.
#[async_trait]
pub trait PostbackLog: Send + Sync {
    /// The received-postbacks log, newest first.
    async fn received_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReceivedPostback>, StoreError>;

    /// Empties the received-postbacks log; returns how many entries went.
    async fn clear_received_postbacks(&self) -> Result<u64, StoreError>;

    /// The sent-postbacks log, newest first.
    async fn sent_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SentPostback>, StoreError>;

    /// Empties the sent-postbacks log; returns how many entries went.
    async fn clear_sent_postbacks(&self) -> Result<u64, StoreError>;
}

impl<DB> SqlStore<DB>
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
    /// Appends to the sent-postbacks log (`id` is ignored).
    pub(crate) async fn insert_sent_postback(
        conn: &mut <DB as sqlx::Database>::Connection,
        entry: &SentPostback,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sent_postbacks (conversion_id, origin, method, url, body, http_status, attempts, error, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(entry.conversion_id)
        .bind(entry.origin.clone())
        .bind(entry.method.clone())
        .bind(entry.url.clone())
        .bind(entry.body.clone())
        .bind(entry.http_status)
        .bind(entry.attempts)
        .bind(entry.error.clone())
        .bind(entry.created_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> PostbackLog for SqlStore<DB>
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
    async fn received_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReceivedPostback>, StoreError> {
        Ok(sqlx::query_as::<_, ReceivedPostback>(
            "SELECT id, sub_id, tid, status, outcome, message, conversion_id, params, created_at \
             FROM received_postbacks ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn clear_received_postbacks(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM received_postbacks")
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn sent_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SentPostback>, StoreError> {
        Ok(sqlx::query_as::<_, SentPostback>(
            "SELECT id, conversion_id, origin, method, url, body, http_status, attempts, error, created_at \
             FROM sent_postbacks ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn clear_sent_postbacks(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sent_postbacks")
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
