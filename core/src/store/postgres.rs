use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

use super::StoreError;

/// The production store: PostgreSQL.
pub type PostgresStore = super::SqlStore<sqlx::Postgres>;

impl PostgresStore {
    pub async fn open(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_release(|connection, _| Box::pin(super::release_outside_transaction(connection)))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        Ok(super::SqlStore { pool })
    }
}
