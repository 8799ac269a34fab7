use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::DatabaseConfig;

use super::StoreError;

/// The embedded store: one SQLite file in WAL mode.
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
}

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
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect(format!("{}: {e}", config.url)))?;
        Ok(SqliteStore { pool })
    }
}

super::sql::impl_store!(SqliteStore, sqlx::Sqlite, Backend::Sqlite, sqlite);
super::files::impl_file_store!(SqliteStore, sqlx::Sqlite);
super::objects::impl_object_store!(SqliteStore, sqlx::Sqlite);
super::reports::impl_report_store!(SqliteStore, sqlx::Sqlite, Backend::Sqlite);
