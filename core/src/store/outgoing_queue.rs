//! The sending worker's role ([`OutgoingQueue`]): outgoing postbacks queued with their
//! conversion, claimed, retried and finished.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::StoreError;
use super::postback_log::SentPostback;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

/// An outgoing postback waiting in the queue (`outgoing_postbacks`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedPostback {
    pub id: i64,
    /// The delivery's identity: queueing the same key again adds nothing.
    pub delivery_key: String,
    pub conversion_id: i64,
    /// `campaign` or `traffic_source`.
    pub origin: String,
    pub method: String,
    pub url: String,
    /// The JSON body of a POST ("" for a GET).
    pub body: String,
    /// Tries made so far.
    pub attempts: i64,
    /// When it may be tried next (Unix milliseconds); while a worker sends it, the end of
    /// that worker's claim.
    pub next_at: i64,
    pub created_at: i64,
}

/// The outgoing postbacks' queue: what the sending worker needs.
#[async_trait]
pub trait OutgoingQueue: Send + Sync {
    /// Queues an outgoing postback; false when its delivery was queued already.
    async fn queue_outgoing_postback(&self, postback: &QueuedPostback) -> Result<bool, StoreError>;

    /// Queued postbacks due at `now_ms`, oldest first, at most `limit`.
    async fn due_outgoing_postbacks(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<QueuedPostback>, StoreError>;

    /// Takes a queued postback for sending until `until_ms`, if it is still due at `next_at`
    /// (no other worker took it); true when taken.
    async fn claim_outgoing_postback(
        &self,
        id: i64,
        next_at: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Puts a postback back for another try at `next_at`.
    async fn retry_outgoing_postback(
        &self,
        id: i64,
        attempts: i64,
        next_at: i64,
    ) -> Result<(), StoreError>;

    /// Removes a postback from the queue and logs how it ended, in one transaction.
    async fn finish_outgoing_postback(
        &self,
        id: i64,
        entry: &SentPostback,
    ) -> Result<(), StoreError>;

    /// When the next queued postback is due (Unix milliseconds), if any is queued.
    async fn next_outgoing_postback_at(&self) -> Result<Option<i64>, StoreError>;
}

#[async_trait]
impl<DB> OutgoingQueue for SqlStore<DB>
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
    async fn queue_outgoing_postback(&self, p: &QueuedPostback) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_outgoing_postback(&mut conn, p).await
    }

    async fn due_outgoing_postbacks(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<QueuedPostback>, StoreError> {
        Ok(sqlx::query_as::<_, QueuedPostback>(
            "SELECT id, delivery_key, conversion_id, origin, method, url, body, attempts, next_at, created_at \
             FROM outgoing_postbacks WHERE next_at <= $1 ORDER BY id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn claim_outgoing_postback(
        &self,
        id: i64,
        next_at: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(
            sqlx::query(
                "UPDATE outgoing_postbacks SET next_at = $1 WHERE id = $2 AND next_at = $3",
            )
            .bind(until_ms)
            .bind(id)
            .bind(next_at)
            .execute(&self.pool)
            .await?
            .rows_affected()
                > 0,
        )
    }

    async fn retry_outgoing_postback(
        &self,
        id: i64,
        attempts: i64,
        next_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outgoing_postbacks SET attempts = $1, next_at = $2 WHERE id = $3")
            .bind(attempts)
            .bind(next_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_outgoing_postback(
        &self,
        id: i64,
        entry: &SentPostback,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM outgoing_postbacks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::insert_sent_postback(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_outgoing_postback_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(next_at) FROM outgoing_postbacks")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
