//! Persistence. [`Store`] is the only way the rest of the program reaches SQL; it has a
//! SQLite implementation (the embedded default) and a PostgreSQL one, sharing their SQL text
//! (see `sql.rs`) and differing in connection setup and schema files.

mod click_insert;
mod click_log;
mod conversions;
mod files;
mod migrate;
pub mod objects;
mod postgres;
mod reports;
#[cfg(test)]
mod reports_props;
mod rollups;
mod rows;
mod sql;
mod sql_store;
mod sqlite;
pub mod tables;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Backend, DatabaseConfig};
use crate::model::{
    Campaign, Click, Landing, NewCampaign, NewStream, NewTarget, NewTrigger, Offer, Stream,
    StreamEvent, StreamTrigger,
};
use crate::traffic::RoutingData;

/// A click's row as the insert writes it: its columns at a width and its values in that order
/// (public for `bench`'s insert-cost, which binds the same row through a direct writer).
pub use click_insert::{ClickValue, Width, click_columns, for_each_click_value};
pub use click_log::{
    ClickKey, ClickProfile, ClickRecord, CreatedClick, DialectClick, LinkMetrics, LogCondition,
    LogField, LogQuery, LogValue, NewProfile, ProfileContact, SortOrder,
};
pub use conversions::{ConversionStore, Outgoing, OutgoingQueue};
pub use files::FileStore;
pub use migrate::MigrationReport;
pub use postgres::PostgresStore;
pub use reports::{
    ConversionOutcome, ConversionStatus, CostSpread, NewConversion, PendingPostback, PostbackClick,
    PostbackTargets, QueuedPostback, ReceivedPostback, ReportStore, SentPostback,
};
pub use sql_store::{SqlDb, SqlStore};
pub use sqlite::SqliteStore;

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

/// A click that went from its landing to an offer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LandingClick {
    pub sub_id: String,
    pub offer_id: i64,
    pub at: i64,
    /// Where the offer sent the visitor.
    pub destination: String,
}

/// The click writer's role: what the recorder needs of a store (another implementation of it
/// is one type implementing these two methods).
#[async_trait]
pub trait ClickWriter: Send + Sync {
    /// Inserts clicks; a click whose sub id is already stored is skipped, so retrying a batch
    /// never duplicates. Returns how many rows were new.
    async fn insert_clicks(&self, clicks: &[Click]) -> Result<u64, StoreError>;

    /// Stamps landing -> offer clicks on their clicks (landing_clicked, its time, the offer).
    /// Repeating an update changes nothing more.
    async fn mark_landing_clicks(&self, clicks: &[LandingClick]) -> Result<u64, StoreError>;
}

/// What a routing snapshot is built from (`reload::SnapshotCell::rebuild`), with the counts
/// of the offers' caps it restores.
#[async_trait]
pub trait RoutingSource: Send + Sync {
    /// Active campaigns, streams (with filters, landings, offers), landings and offers: what the
    /// routing snapshot is built from.
    async fn routing_data(&self) -> Result<RoutingData, StoreError>;

    /// Conversions of an offer since `since` that were not rejected (its conversion cap).
    async fn offer_conversions_since(&self, offer_id: i64, since: i64) -> Result<i64, StoreError>;
}

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

/// The persistence contract: every role. Every method is one transaction or one statement.
/// Consumers that need one role take that role's trait (`Arc<dyn Store>` converts into any of
/// them).
#[async_trait]
pub trait Store:
    ClickWriter
    + RoutingSource
    + TriggerStore
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

    /// Clicks per stream since `hour_start`, since `day_start` and in total, for `streams`.
    async fn stream_hit_counts(
        &self,
        streams: &[i64],
        hour_start: i64,
        day_start: i64,
    ) -> Result<Vec<(i64, crate::traffic::Hits)>, StoreError>;

    /// A page of the click log (`query.limit` rows from `query.offset`, cells in
    /// `query.columns` order) and how many clicks match in all.
    async fn clicks_log(
        &self,
        query: &crate::report::LogQuery,
    ) -> Result<(Vec<Vec<crate::report::Cell>>, i64), StoreError>;

    /// The bot list: IPs and CIDR blocks, one entry each.
    async fn bot_list(&self) -> Result<Vec<String>, StoreError>;

    /// Adds entries to the bot list (existing ones are kept once).
    async fn add_to_bot_list(&self, entries: &[String]) -> Result<u64, StoreError>;

    /// Removes entries from the bot list; returns how many were there.
    async fn remove_from_bot_list(&self, entries: &[String]) -> Result<u64, StoreError>;

    /// Replaces the whole bot list (an empty slice clears it), atomically.
    async fn replace_bot_list(&self, entries: &[String]) -> Result<u64, StoreError>;

    /// A campaign in any state.
    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError>;

    /// An offer in any state.
    async fn offer(&self, id: i64) -> Result<Option<Offer>, StoreError>;

    /// A page of the click log (clicks with their offer, traffic source, conversions and what
    /// the dialects keep about them).
    async fn click_log(&self, query: &LogQuery) -> Result<Vec<ClickRecord>, StoreError>;

    /// How many clicks match the query's conditions (limit and offset ignored).
    async fn count_click_log(&self, query: &LogQuery) -> Result<i64, StoreError>;

    /// Writes a click now, in one transaction with the dialect's record of it (the click
    /// dialects answer with a stored click). With a `key`, an unexpired claim of the same key
    /// wins: nothing is written and its click is returned with `existed`.
    async fn create_dialect_click(
        &self,
        new: &DialectClick,
        key: Option<&ClickKey>,
    ) -> Result<CreatedClick, StoreError>;

    /// The sub id an unexpired claim of `key` names.
    async fn click_by_key(
        &self,
        dialect: &str,
        key: &ClickKey,
    ) -> Result<Option<String>, StoreError>;

    /// Forgets key claims made before `before`.
    async fn prune_click_keys(&self, before: i64) -> Result<u64, StoreError>;

    /// Deletes a click and what the dialects keep about it (a profile no other click uses
    /// goes too). False when there is no such click.
    async fn delete_click(&self, sub_id: &str) -> Result<bool, StoreError>;

    /// Sets the profile of a click: the profile with the same `uuid` if there is one, else the
    /// click's current profile, else a new one; its contacts are replaced. Returns the
    /// profile's id, or `None` when there is no such click.
    async fn set_click_profile(
        &self,
        sub_id: &str,
        profile: &NewProfile,
    ) -> Result<Option<i64>, StoreError>;

    /// Profiles with their contacts.
    async fn click_profiles(&self, ids: &[i64]) -> Result<Vec<ClickProfile>, StoreError>;

    /// Click, unique click, registration and conversion counts of campaigns.
    async fn link_metrics(
        &self,
        campaign_ids: &[i64],
    ) -> Result<Vec<(i64, LinkMetrics)>, StoreError>;

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
