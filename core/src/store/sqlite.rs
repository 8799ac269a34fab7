use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::DatabaseConfig;

use super::StoreError;

/// The embedded store: one SQLite file in WAL mode.
pub type SqliteStore = super::SqlStore<sqlx::Sqlite>;

impl SqliteStore {
    pub async fn open(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::Connect(format!("{}: {e}", config.url)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Reports group millions of rows: sort in memory, keep 64 MiB of pages per connection.
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536")
            // `REGEXP` for report filters, backed by the linear-time `regex` crate.
            .with_regexp();
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Connect(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .after_release(|connection, _| Box::pin(super::release_outside_transaction(connection)))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect(format!("{}: {e}", config.url)))?;
        Ok(super::SqlStore { pool })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Connection;

    use super::*;
    use crate::config::Backend;

    async fn count(connection: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(connection)
            .await
            .expect("count")
    }

    /// SQLite can end a transaction by itself (on SQLITE_FULL, for one); the connection must
    /// not go back to the pool believing it is still inside it, or every later transaction on
    /// it nests in one that is never committed and holds the write lock.
    #[tokio::test]
    async fn a_transaction_sqlite_ended_by_itself_does_not_poison_the_pool() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let config = DatabaseConfig {
            url: url.clone(),
            backend: Backend::Sqlite,
            max_connections: 1,
        };
        let store = SqliteStore::open(&config).await.expect("open");
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&store.pool)
            .await
            .expect("create");
        {
            let mut tx = store.pool.begin().await.expect("begin");
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .expect("insert");
            // What SQLite does by itself on some errors: the transaction is gone, so the
            // ROLLBACK sqlx sends when `tx` is dropped fails.
            sqlx::query("ROLLBACK")
                .execute(&mut *tx)
                .await
                .expect("rollback");
        }
        // A write that fails and rolls back, then one that commits, on the pool's connection.
        let mut tx = store.pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.rollback().await.expect("rollback");
        let mut tx = store.pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");

        // Another connection sees the commit and is not locked out of writing.
        let options = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .busy_timeout(Duration::from_millis(200));
        let mut other = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        assert_eq!(count(&mut other).await, 1, "the committed row is visible");
        sqlx::query("INSERT INTO t VALUES (4)")
            .execute(&mut other)
            .await
            .expect("another connection can write");
        let mut pooled = store.pool.acquire().await.expect("acquire");
        assert_eq!(count(&mut pooled).await, 2);
        assert!(!pooled.is_in_transaction());
    }
}
