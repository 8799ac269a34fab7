//! The stored bot list ([`BotListStore`]): IPs and CIDR blocks the `bot` filter matches.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, Type};

use crate::model::unix_now;

use super::StoreError;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

/// The bot list's role.
#[async_trait]
pub trait BotListStore: Send + Sync {
    /// The bot list: IPs and CIDR blocks, one entry each.
    async fn bot_list(&self) -> Result<Vec<String>, StoreError>;

    /// Adds entries to the bot list (existing ones are kept once).
    async fn add_to_bot_list(&self, entries: &[String]) -> Result<u64, StoreError>;

    /// Removes entries from the bot list; returns how many were there.
    async fn remove_from_bot_list(&self, entries: &[String]) -> Result<u64, StoreError>;

    /// Replaces the whole bot list (an empty slice clears it), atomically.
    async fn replace_bot_list(&self, entries: &[String]) -> Result<u64, StoreError>;
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
    /// Adds bot list entries (an existing one is kept once); returns how many were new.
    pub(super) async fn insert_bot_entries(
        tx: &mut sqlx::Transaction<'_, DB>,
        entries: &[String],
    ) -> Result<u64, StoreError> {
        let mut added = 0;
        for entry in entries {
            added += sqlx::query("INSERT INTO bot_list (value, created_at) VALUES ($1, $2) ON CONFLICT (value) DO NOTHING")
                .bind(entry.trim().to_string())
                .bind(unix_now())
                .execute(&mut **tx)
                .await?
                .rows_affected();
        }
        Ok(added)
    }
}

#[async_trait]
impl<DB> BotListStore for SqlStore<DB>
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
    async fn bot_list(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM bot_list ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn add_to_bot_list(&self, entries: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let added = Self::insert_bot_entries(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_from_bot_list(&self, entries: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for entry in entries {
            removed += sqlx::query("DELETE FROM bot_list WHERE value = $1")
                .bind(entry.trim().to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn replace_bot_list(&self, entries: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM bot_list")
            .execute(&mut *tx)
            .await?;
        let added = Self::insert_bot_entries(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(added)
    }
}
