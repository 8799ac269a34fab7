//! Persistence. [`Store`] is the only way the rest of the program reaches SQL: the union of
//! one trait per role (a file each, with its SQL), implemented once on [`SqlStore<DB>`] for
//! SQLite (the embedded default) and PostgreSQL, which differ in connection setup
//! (`sqlite.rs`, `postgres.rs`) and schema files (`schema/<backend>/`).

mod bot_list;
mod click_edits;
mod click_insert;
mod click_log;
mod clicks;
mod conversions;
mod dialect_clicks;
mod files;
mod migrate;
mod object_sql;
pub mod objects;
mod outgoing_queue;
mod postback_log;
mod postgres;
mod reports;
#[cfg(test)]
mod reports_props;
mod rollup_sql;
mod rollups;
mod routing;
mod rows;
mod sql_store;
mod sqlite;
pub mod tables;
mod triggers;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Backend, DatabaseConfig};
use crate::model::{Campaign, Landing, NewCampaign, NewStream, NewTarget, Offer, Stream};

pub use bot_list::BotListStore;
pub use click_edits::{ClickEdits, CostSpread};
/// A click's row as the insert writes it: its columns at a width and its values in that order
/// (public for `bench`'s insert-cost, which binds the same row through a direct writer).
pub use click_insert::{ClickValue, Width, click_columns, for_each_click_value};
pub use click_log::{
    ClickKey, ClickProfile, ClickRecord, CreatedClick, DialectClick, LinkMetrics, LogCondition,
    LogField, LogQuery, LogValue, NewProfile, ProfileContact, SortOrder,
};
pub use clicks::{ClickWriter, LandingClick};
pub use conversions::{
    ConversionOutcome, ConversionStatus, ConversionStore, NewConversion, Outgoing, PendingPostback,
    PostbackClick, PostbackTargets,
};
pub use dialect_clicks::DialectClickStore;
pub use files::FileStore;
pub use migrate::MigrationReport;
pub use outgoing_queue::{OutgoingQueue, QueuedPostback};
pub use postback_log::{PostbackLog, ReceivedPostback, SentPostback};
pub use postgres::PostgresStore;
pub use reports::ReportStore;
pub use routing::RoutingSource;
pub use sql_store::{SqlDb, SqlStore};
pub use sqlite::SqliteStore;
pub use triggers::TriggerStore;

/// Whether `report_rows` answers `sql` from a rollup (at least in part) rather than the clicks.
pub fn report_reads_rollup(sql: &crate::report::ReportSql) -> bool {
    rollups::plan(sql).is_some()
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration {version} ({name}) failed: {message}")]
    Migration {
        version: i64,
        name: String,
        message: String,
    },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The data cannot be stored as it is (a sum would overflow); retrying cannot help.
    #[error("refused: {0}")]
    Refused(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// A conflict named by `what` (the object the caller wrote), any other error as it is.
    pub(crate) fn conflict_named(self, what: impl FnOnce() -> String) -> StoreError {
        match self {
            StoreError::Conflict { .. } => StoreError::Conflict { what: what() },
            other => other,
        }
    }

    /// True when the error is about the data being written (a value out of range, a text the
    /// database cannot hold, a constraint), so that the same write fails again however often
    /// it is retried; false when it is about the store (unreachable, locked, out of space, a
    /// timeout), which a retry can outlive. The recorder splits a batch that fails for its
    /// data to find the rows at fault and sets those aside; other failures it retries.
    pub fn is_about_the_data(&self) -> bool {
        let error = match self {
            StoreError::Refused(_) => return true,
            StoreError::Database(error) => error,
            _ => return false,
        };
        match error {
            sqlx::Error::Encode(_) => true,
            sqlx::Error::Database(error) => {
                let code = error.code().unwrap_or_default();
                if error
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // SQLSTATE class 22 is a data exception (a number out of range, a NUL
                    // byte in a text), class 23 an integrity constraint.
                    return code.starts_with("22") || code.starts_with("23");
                }
                // SQLite's extended result code; its low byte is the primary code.
                const SQLITE_ERROR: u32 = 1;
                const SQLITE_TOOBIG: u32 = 18;
                const SQLITE_CONSTRAINT: u32 = 19;
                const SQLITE_MISMATCH: u32 = 20;
                const SQLITE_RANGE: u32 = 25;
                match code.parse::<u32>().map_or(0, |c| c & 0xff) {
                    SQLITE_TOOBIG | SQLITE_CONSTRAINT | SQLITE_MISMATCH | SQLITE_RANGE => true,
                    // `SUM()` over integers that overflow.
                    SQLITE_ERROR => error.message().contains("integer overflow"),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// The persistence contract: every role. Every method is one transaction or one statement.
/// Consumers that need one role take that role's trait (`Arc<dyn Store>` converts into any of
/// them).
#[async_trait]
pub trait Store:
    ClickWriter
    + RoutingSource
    + TriggerStore
    + DialectClickStore
    + BotListStore
    + PostbackLog
    + ClickEdits
    + ConversionStore
    + OutgoingQueue
    + FileStore
    + objects::ObjectStore
    + ReportStore
    + Send
    + Sync
{
    fn backend(&self) -> Backend;

    /// Applies the migrations this build knows and the database lacks.
    async fn migrate(&self) -> Result<MigrationReport, StoreError>;

    /// A trivial round trip, for health checks.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError>;

    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Campaigns in any state, deleted included.
    async fn count_campaigns(&self) -> Result<i64, StoreError>;

    async fn create_campaign(&self, campaign: &NewCampaign) -> Result<Campaign, StoreError>;

    async fn create_stream(&self, stream: &NewStream) -> Result<Stream, StoreError>;

    async fn create_landing(&self, landing: &NewTarget) -> Result<Landing, StoreError>;

    async fn create_offer(&self, offer: &NewTarget) -> Result<Offer, StoreError>;

    /// A campaign in any state.
    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError>;

    /// An offer in any state.
    async fn offer(&self, id: i64) -> Result<Option<Offer>, StoreError>;

    /// Closes the pool, waiting for connections to finish.
    async fn close(&self);
}

/// The pools' `after_release` check: a connection goes back to the pool only when no
/// transaction is open on it; otherwise it is closed and the pool opens a fresh one.
///
/// Why: when SQLite ends a transaction by itself (it may on SQLITE_FULL, SQLITE_IOERR or
/// SQLITE_NOMEM), the ROLLBACK sqlx sends when the transaction is dropped fails ("no
/// transaction is active") and sqlx keeps counting the connection as inside one. Reused, its
/// next `begin` becomes a SAVEPOINT, its next rollback a `ROLLBACK TO` that leaves the
/// transaction open: the connection then holds the write lock for good and later commits are
/// never made durable. Closing the connection is the one state that is known.
pub(crate) async fn release_outside_transaction<C: sqlx::Connection>(
    connection: &mut C,
) -> Result<bool, sqlx::Error> {
    if connection.is_in_transaction() {
        // The rollback of a dropped transaction is queued, not yet done: a round trip
        // behind it lets it finish before the depth is read again.
        connection.ping().await?;
        if connection.is_in_transaction() {
            tracing::warn!(
                "A database connection was still inside a transaction when released; closing it."
            );
            return Ok(false);
        }
    }
    Ok(true)
}

/// Opens the database the config names (creating a SQLite file and its directory if needed).
pub async fn open(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config.backend {
        Backend::Sqlite => Arc::new(SqliteStore::open(config).await?),
        Backend::Postgres => Arc::new(PostgresStore::open(config).await?),
    })
}
