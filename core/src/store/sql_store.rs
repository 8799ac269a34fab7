//! The one SQL implementation of the store roles, generic over sqlx's [`Database`]:
//! [`SqlStore<DB>`] with `DB` = [`sqlx::Sqlite`] (the embedded default) or [`sqlx::Postgres`].
//! Both accept the same SQL text for nearly everything (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`); where a statement differs, the body reads [`SqlDb::BACKEND`].
//!
//! # The bound bundle
//! A generic body needs sqlx to know that `DB` runs statements on a connection, binds and
//! decodes the value types used here, and finds columns by name. Rust does not carry a
//! trait's `where` clauses to its users (only supertraits), so these bounds cannot be folded
//! into `SqlDb`; each `impl` block over `SqlStore<DB>` states them, in this order:
//!
//! ```text
//! where
//!     DB: SqlDb,
//!     for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
//!     for<'n> &'n str: ColumnIndex<DB::Row>,
//!     usize: ColumnIndex<DB::Row>,
//!     for<'q> &'q str: Encode<'q, DB> + Type<DB>,
//!     i64: Sql<DB>, f64: Sql<DB>, bool: Sql<DB>, String: Sql<DB>,
//!     Option<i64>: Sql<DB>, Option<f64>: Sql<DB>, Option<String>: Sql<DB>, Option<bool>: Sql<DB>,
//!     Arc<str>: Sql<DB>,
//! ```
//!
//! Both backends satisfy it; a third sqlx backend would be one `impl SqlDb`.
//!
//! The `Store` role itself (migrations, health, meta values, the first objects, single-object
//! lookups) is implemented here; every other role has its own file.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type,
};

use crate::config::Backend;
use crate::model::{
    Campaign, Landing, NewCampaign, NewStream, NewTarget, Offer, Stream, StreamEvent, StreamFilter,
    StreamTarget, StreamTrigger, unix_now,
};
use crate::store::Store;
use crate::store::migrate::{CREATE_LEDGER, MIGRATIONS, MigrationReport};
use crate::store::rows::{
    CAMPAIGN_COLUMNS, CampaignRow, EventRow, FilterRow, LANDING_COLUMNS, LandingRow, OFFER_COLUMNS,
    OfferRow, STREAM_COLUMNS, StreamRow, TargetRow, TriggerRow,
};

use super::StoreError;
use super::objects::{ChildRows, ObjectWrite, SqlValue, Table};
use super::tables;

/// A SQL backend of the store: what differs between SQLite and PostgreSQL besides the text
/// both accept.
pub trait SqlDb: Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected> {
    const BACKEND: Backend;
}

impl SqlDb for sqlx::Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
}

impl SqlDb for sqlx::Postgres {
    const BACKEND: Backend = Backend::Postgres;
}

/// How many rows a statement changed (each backend's result type has it as its own method).
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// A Rust type a backend binds, decodes and types (the bundle names each one used).
pub trait Sql<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

impl<DB: Database, T> Sql<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

/// The store on a SQL database: a pool of connections.
pub struct SqlStore<DB: Database> {
    pub(crate) pool: sqlx::Pool<DB>,
}

/// A statement with its bound values.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments>;

/// `$first, $first+1, …` for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when a statement failed on a unique constraint.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// A row that was just written and cannot be read back.
fn gone(what: &str, id: i64) -> StoreError {
    StoreError::Corrupt(format!("{what} {id} was written but cannot be read back"))
}

/// The objects' rows decoded into the model (see `rows.rs`).
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
    /// Inserts one row with its children through the object layer (the one writer of the
    /// managed tables), in its own transaction; returns its id.
    pub(super) async fn create(
        &self,
        table: &'static Table,
        values: Vec<(&'static str, SqlValue)>,
        children: Vec<ChildRows>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let write = ObjectWrite {
            table,
            id: None,
            values,
            children,
        };
        let id = Self::write_object(&mut tx, &write).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("an insert into {} gave no id", table.name))
        })?;
        tx.commit().await?;
        Ok(id)
    }

    /// A stream with its filters, landings and offers.
    async fn stream_with_targets(&self, id: i64) -> Result<Stream, StoreError> {
        let sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| gone("stream", id))?;
        let filters = sqlx::query(
            "SELECT id, stream_id, name, mode, payload FROM stream_filters WHERE stream_id = $1 \
             ORDER BY position, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::filter_row)
        .collect::<Result<_, _>>()?;
        let one = "WHERE stream_id = $1";
        let landings = self.stream_targets("landing", one, Some(id)).await?;
        let offers = self.stream_targets("offer", one, Some(id)).await?;
        Self::stream_row(&row, filters, landings, offers)
    }

    /// Streams' landings (`kind` = `landing`) or offers matching `condition` (fixed text; `$1`
    /// is `stream` when given), by stream and id.
    pub(super) async fn stream_targets(
        &self,
        kind: &'static str,
        condition: &'static str,
        stream: Option<i64>,
    ) -> Result<Vec<StreamTarget>, StoreError> {
        let sql = format!(
            "SELECT id, stream_id, {kind}_id AS target_id, share, state FROM stream_{kind}s \
             {condition} ORDER BY stream_id, id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(stream) = stream {
            query = query.bind(stream);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(Self::target_row).collect()
    }

    pub(super) fn campaign_row(row: &DB::Row) -> Result<Campaign, StoreError> {
        CampaignRow::from_row(row)?.into_campaign()
    }

    pub(super) fn stream_row(
        row: &DB::Row,
        filters: Vec<StreamFilter>,
        landings: Vec<StreamTarget>,
        offers: Vec<StreamTarget>,
    ) -> Result<Stream, StoreError> {
        StreamRow::from_row(row)?.into_stream(filters, landings, offers)
    }

    pub(super) fn landing_row(row: &DB::Row) -> Result<Landing, StoreError> {
        LandingRow::from_row(row)?.into_landing()
    }

    pub(super) fn offer_row(row: &DB::Row) -> Result<Offer, StoreError> {
        OfferRow::from_row(row)?.into_offer()
    }

    pub(super) fn target_row(row: &DB::Row) -> Result<StreamTarget, StoreError> {
        TargetRow::from_row(row)?.into_target()
    }

    pub(super) fn trigger_row(row: &DB::Row) -> Result<StreamTrigger, StoreError> {
        TriggerRow::from_row(row)?.into_trigger()
    }

    pub(super) fn event_row(row: &DB::Row) -> Result<StreamEvent, StoreError> {
        EventRow::from_row(row)?.into_event()
    }

    pub(super) fn filter_row(row: &DB::Row) -> Result<StreamFilter, StoreError> {
        FilterRow::from_row(row)?.into_filter()
    }
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
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
    fn backend(&self) -> Backend {
        DB::BACKEND
    }

    async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        sqlx::query(CREATE_LEDGER).execute(&self.pool).await?;
        let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&self.pool)
            .await?;
        let mut report = MigrationReport::default();
        for migration in MIGRATIONS {
            if done.contains(&migration.version) {
                continue;
            }
            let failed = |e: sqlx::Error| StoreError::Migration {
                version: migration.version,
                name: migration.name.to_string(),
                message: e.to_string(),
            };
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(migration.schema(DB::BACKEND))
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            if migration.version == crate::store::migrate::ROLLUPS_VERSION {
                // The rollups of the clicks already stored, in the migration's own
                // transaction: the schema never says 5 with empty rollups.
                tracing::info!("computing the report rollups of the clicks already stored");
                Self::adjust_rollups(
                    &mut tx,
                    1,
                    crate::store::rollups::Part::All,
                    &|builder: &mut QueryBuilder<DB>| {
                        builder.push(" WHERE 1 = 1");
                    },
                )
                .await
                .map_err(|e| StoreError::Migration {
                    version: migration.version,
                    name: migration.name.to_string(),
                    message: e.to_string(),
                })?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(unix_now())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            report.applied.push(migration.version);
        }
        report.current = MIGRATIONS.last().map_or(0, |m| m.version);
        Ok(report)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key.to_string())
        .bind(value.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn count_campaigns(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM campaigns")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_campaign(&self, new: &NewCampaign) -> Result<Campaign, StoreError> {
        let now = unix_now();
        let values = vec![
            ("alias", SqlValue::Text(new.alias.clone())),
            ("name", SqlValue::Text(new.name.clone())),
            ("type", SqlValue::Text(new.campaign_type.as_str().into())),
            ("state", SqlValue::Text(new.state.as_str().into())),
            ("cookies_ttl", SqlValue::Int(new.cookies_ttl)),
            ("token", SqlValue::Text(new.token.clone())),
            (
                "bind_visitors",
                new.bind_visitors
                    .clone()
                    .map_or(SqlValue::Null, SqlValue::Text),
            ),
            ("created_at", SqlValue::Int(now)),
            ("updated_at", SqlValue::Int(now)),
        ];
        let id = self
            .create(&tables::CAMPAIGNS, values, Vec::new())
            .await
            .map_err(|e| {
                e.conflict_named(|| {
                    format!("a campaign with alias `{}` or the same token", new.alias)
                })
            })?;
        self.campaign(id).await?.ok_or_else(|| gone("campaign", id))
    }

    async fn create_stream(&self, new: &NewStream) -> Result<Stream, StoreError> {
        let now = unix_now();
        let values = vec![
            ("campaign_id", SqlValue::Int(new.campaign_id)),
            ("type", SqlValue::Text(new.stream_type.as_str().into())),
            ("name", SqlValue::Text(new.name.clone())),
            ("position", SqlValue::Int(new.position)),
            ("weight", SqlValue::Int(new.weight)),
            ("schema", SqlValue::Text(new.schema.as_str().into())),
            ("action_type", SqlValue::Text(new.action_type.clone())),
            (
                "action_payload",
                SqlValue::Text(new.action_payload.to_string()),
            ),
            ("collect_clicks", SqlValue::Bool(new.collect_clicks)),
            ("filter_or", SqlValue::Bool(new.filter_or)),
            ("created_at", SqlValue::Int(now)),
            ("updated_at", SqlValue::Int(now)),
        ];
        let filters = new
            .filters
            .iter()
            .enumerate()
            .map(|(position, (name, mode, payload))| {
                vec![
                    ("position", SqlValue::Int(position as i64)),
                    ("name", SqlValue::Text(name.clone())),
                    ("mode", SqlValue::Text(mode.clone())),
                    ("payload", SqlValue::Text(payload.to_string())),
                ]
            });
        let targets =
            |column: &'static str, list: &[(i64, i64)]| -> Vec<Vec<(&'static str, SqlValue)>> {
                list.iter()
                    .map(|(id, share)| {
                        vec![
                            (column, SqlValue::Int(*id)),
                            ("share", SqlValue::Int(*share)),
                            ("created_at", SqlValue::Int(now)),
                            ("updated_at", SqlValue::Int(now)),
                        ]
                    })
                    .collect()
            };
        let children = vec![
            ChildRows::of_stream(&tables::STREAM_FILTERS, filters.collect()),
            ChildRows::of_stream(
                &tables::STREAM_LANDINGS,
                targets("landing_id", &new.landings),
            ),
            ChildRows::of_stream(&tables::STREAM_OFFERS, targets("offer_id", &new.offers)),
        ];
        let id = self.create(&tables::STREAMS, values, children).await?;
        self.stream_with_targets(id).await
    }

    async fn create_landing(&self, new: &NewTarget) -> Result<Landing, StoreError> {
        let now = unix_now();
        let values = vec![
            ("name", SqlValue::Text(new.name.clone())),
            ("url", SqlValue::Text(new.url.clone())),
            ("action_type", SqlValue::Text(new.action_type.clone())),
            (
                "action_payload",
                SqlValue::Text(new.action_payload.to_string()),
            ),
            ("created_at", SqlValue::Int(now)),
            ("updated_at", SqlValue::Int(now)),
        ];
        let id = self.create(&tables::LANDINGS, values, Vec::new()).await?;
        let sql = format!("SELECT {LANDING_COLUMNS} FROM landings WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Self::landing_row(&row)
    }

    async fn create_offer(&self, new: &NewTarget) -> Result<Offer, StoreError> {
        let now = unix_now();
        let values = vec![
            ("name", SqlValue::Text(new.name.clone())),
            ("url", SqlValue::Text(new.url.clone())),
            ("action_type", SqlValue::Text(new.action_type.clone())),
            (
                "action_payload",
                SqlValue::Text(new.action_payload.to_string()),
            ),
            (
                "payout_value_micros",
                SqlValue::Int(new.payout_value.micros()),
            ),
            (
                "country",
                SqlValue::Text(serde_json::to_string(&new.country).unwrap_or_else(|_| "[]".into())),
            ),
            ("created_at", SqlValue::Int(now)),
            ("updated_at", SqlValue::Int(now)),
        ];
        let id = self.create(&tables::OFFERS, values, Vec::new()).await?;
        self.offer(id).await?.ok_or_else(|| gone("offer", id))
    }

    async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(Self::campaign_row)
        .transpose()
    }

    async fn offer(&self, id: i64) -> Result<Option<Offer>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(Self::offer_row)
        .transpose()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
