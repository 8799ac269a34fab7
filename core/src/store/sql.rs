//! The `Store` role and the click, routing and trigger roles on `SqlStore<DB>`, one body for
//! both backends (see `sql_store.rs`); only connection setup and schema files differ.

use std::sync::Arc;

use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::sql_store::{
    Query, RowsAffected, Sql, SqlDb, SqlStore, is_unique_violation, placeholders,
};
use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Row};

use crate::config::Backend;
use crate::model::{
    Click, Landing, NewCampaign, NewStream, NewTarget, NewTrigger, Offer, StreamEvent,
    StreamTrigger, unix_now,
};
use crate::store::click_log::{ColumnReader, read_record};
use crate::store::migrate::{CREATE_LEDGER, MIGRATIONS, MigrationReport};
use crate::store::{
    ClickKey, ClickProfile, ClickRecord, ClickWriter, CreatedClick, DialectClick, LandingClick,
    LinkMetrics, LogQuery, LogValue, NewProfile, ProfileContact, RoutingSource, Store,
    TriggerStore,
};
use crate::traffic::RoutingData;

use crate::model::{Campaign, ObjectState, Stream, StreamFilter, StreamTarget};
use crate::store::rows::{
    CAMPAIGN_COLUMNS, CampaignRow, EventRow, FilterRow, LANDING_COLUMNS, LandingRow, OFFER_COLUMNS,
    OfferRow, STREAM_COLUMNS, StreamRow, TargetRow, TriggerRow,
};

use super::StoreError;

/// A stream's clicks this hour, today and in all.
#[derive(sqlx::FromRow)]
struct HitCounts {
    hour: i64,
    day: i64,
    total: i64,
}

/// Reads a row of the click log by column name.
struct Reader<'r, R>(&'r R);

impl<R> ColumnReader for Reader<'_, R>
where
    R: sqlx::Row,
    for<'n> &'n str: ColumnIndex<R>,
    i64: Sql<R::Database>,
    bool: Sql<R::Database>,
    String: Sql<R::Database>,
    Option<i64>: Sql<R::Database>,
    Option<f64>: Sql<R::Database>,
    Option<String>: Sql<R::Database>,
{
    fn text(&self, name: &str) -> Result<String, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn opt_float(&self, name: &str) -> Result<Option<f64>, StoreError> {
        Ok(self.0.try_get(name)?)
    }
    fn boolean(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.0.try_get(name)?)
    }
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
    fn campaign_row(row: &DB::Row) -> Result<Campaign, StoreError> {
        CampaignRow::from_row(row)?.into_campaign()
    }

    fn stream_row(
        row: &DB::Row,
        filters: Vec<StreamFilter>,
        landings: Vec<StreamTarget>,
        offers: Vec<StreamTarget>,
    ) -> Result<Stream, StoreError> {
        StreamRow::from_row(row)?.into_stream(filters, landings, offers)
    }

    fn landing_row(row: &DB::Row) -> Result<Landing, StoreError> {
        LandingRow::from_row(row)?.into_landing()
    }

    fn offer_row(row: &DB::Row) -> Result<Offer, StoreError> {
        OfferRow::from_row(row)?.into_offer()
    }

    fn target_row(row: &DB::Row) -> Result<StreamTarget, StoreError> {
        TargetRow::from_row(row)?.into_target()
    }

    fn trigger_row(row: &DB::Row) -> Result<StreamTrigger, StoreError> {
        TriggerRow::from_row(row)?.into_trigger()
    }

    fn event_row(row: &DB::Row) -> Result<StreamEvent, StoreError> {
        EventRow::from_row(row)?.into_event()
    }

    fn filter_row(row: &DB::Row) -> Result<StreamFilter, StoreError> {
        FilterRow::from_row(row)?.into_filter()
    }

    fn bind_log_values(mut query: Query<'_, DB>, values: Vec<LogValue>) -> Query<'_, DB> {
        for value in values {
            query = match value {
                LogValue::Text(v) => query.bind(v),
                LogValue::Int(v) => query.bind(v),
                LogValue::Float(v) => query.bind(v),
            };
        }
        query
    }

    /// ` WHERE …` for a log query: the time range and each condition, values bound
    /// (shared with the reports, see `store/reports.rs`).
    fn push_log_conditions(builder: &mut QueryBuilder<DB>, query: &crate::report::LogQuery) {
        Self::push_conditions(
            builder,
            "created_at",
            query.from,
            query.to,
            &query.conditions,
        );
    }

    /// Adds bot list entries (an existing one is kept once); returns how many were new.
    async fn insert_bot_entries(
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

    /// Inserts clicks on an open connection or transaction; existing sub ids are skipped.
    /// Statements of fixed row counts and widths (see `click_insert.rs`), so they stay
    /// prepared: the clicks are grouped by the width they need.
    async fn insert_click_rows(
        conn: &mut <DB as sqlx::Database>::Connection,
        clicks: &[Click],
    ) -> Result<u64, StoreError> {
        use crate::store::click_insert::{
            ClickValue, Width, for_each_click_value, insert_statement, statement_rows,
        };
        use sqlx::Arguments;
        let mut by_width: Vec<(Width, Vec<&Click>)> = Vec::new();
        for click in clicks {
            let width = Width::of(click);
            match by_width.iter_mut().find(|(w, _)| *w == width) {
                Some((_, group)) => group.push(click),
                None => by_width.push((width, vec![click])),
            }
        }
        let mut inserted = 0;
        for (width, group) in &by_width {
            let mut rest = group.as_slice();
            for rows in statement_rows(group.len()) {
                let (chunk, tail) = rest.split_at(rows);
                rest = tail;
                // Arguments sized once: a full-width 64-row statement binds 5 632 values.
                let mut arguments = <DB as sqlx::Database>::Arguments::default();
                arguments.reserve(rows * width.columns(), 0);
                let mut bound = Ok(());
                for click in chunk {
                    for_each_click_value(click, *width, |value| {
                        let result = match value {
                            // NULL for '' (the statement coalesces): nothing to copy.
                            ClickValue::Text("") => arguments.add(None::<String>),
                            // PostgreSQL cannot store NUL in text: both backends drop it.
                            ClickValue::Text(v) if v.contains('\0') => {
                                let clean = v.replace('\0', "");
                                arguments.add((!clean.is_empty()).then_some(clean))
                            }
                            // One allocation (SQLite keeps an `Arc<str>` as is; a
                            // `String` would be copied and then boxed in an `Arc`).
                            ClickValue::Text(v) => arguments.add(std::sync::Arc::<str>::from(v)),
                            ClickValue::Int(v) => arguments.add(v),
                            ClickValue::OptInt(v) => arguments.add(v),
                            ClickValue::OptFloat(v) => arguments.add(v),
                            ClickValue::Bool(v) => arguments.add(v),
                        };
                        if bound.is_ok() {
                            bound = result;
                        }
                    });
                }
                bound.map_err(sqlx::Error::Encode)?;
                let query =
                    sqlx::query_with(insert_statement(DB::BACKEND, *width, rows), arguments);
                inserted += query.execute(&mut *conn).await?.rows_affected();
            }
        }
        Ok(inserted)
    }

    /// ` WHERE sub_id IN (…)` with the sub ids bound.
    fn push_sub_ids<'a>(builder: &mut QueryBuilder<DB>, sub_ids: impl Iterator<Item = &'a str>) {
        builder.push(" WHERE sub_id IN (");
        let mut list = builder.separated(", ");
        for sub_id in sub_ids {
            list.push_bind(sub_id.to_string());
        }
        builder.push(")");
    }

    /// Deletes a profile that no click uses any more.
    async fn delete_orphan_profile(
        conn: &mut <DB as sqlx::Database>::Connection,
        profile_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM click_profiles WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM dialect_clicks WHERE profile_id = $1)",
        )
        .bind(profile_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
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
        let sql = format!(
            "INSERT INTO campaigns (alias, name, type, state, cookies_ttl, token, bind_visitors, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {CAMPAIGN_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.alias.clone())
            .bind(new.name.clone())
            .bind(new.campaign_type.as_str())
            .bind(new.state.as_str())
            .bind(new.cookies_ttl)
            .bind(new.token.clone())
            .bind(new.bind_visitors.clone())
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: format!("a campaign with alias `{}` or the same token", new.alias),
                    }
                } else {
                    e.into()
                }
            })?;
        Self::campaign_row(&row)
    }

    async fn create_stream(&self, new: &NewStream) -> Result<Stream, StoreError> {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO streams (campaign_id, type, name, position, weight, schema, action_type, \
             action_payload, collect_clicks, filter_or, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {STREAM_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.campaign_id)
            .bind(new.stream_type.as_str())
            .bind(new.name.clone())
            .bind(new.position)
            .bind(new.weight)
            .bind(new.schema.as_str())
            .bind(new.action_type.clone())
            .bind(new.action_payload.to_string())
            .bind(new.collect_clicks)
            .bind(new.filter_or)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let stream_id: i64 = row.try_get("id")?;
        let mut filters = Vec::new();
        for (position, (name, mode, payload)) in new.filters.iter().enumerate() {
            let filter = sqlx::query(
                "INSERT INTO stream_filters (stream_id, position, name, mode, payload) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id, stream_id, name, mode, payload",
            )
            .bind(stream_id)
            .bind(position as i64)
            .bind(name.clone())
            .bind(mode.clone())
            .bind(payload.to_string())
            .fetch_one(&mut *tx)
            .await?;
            filters.push(Self::filter_row(&filter)?);
        }
        let mut landings = Vec::new();
        for (landing_id, share) in &new.landings {
            let target = sqlx::query(
                "INSERT INTO stream_landings (stream_id, landing_id, share, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id, stream_id, landing_id AS target_id, share, state",
            )
            .bind(stream_id)
            .bind(*landing_id)
            .bind(*share)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            landings.push(Self::target_row(&target)?);
        }
        let mut offers = Vec::new();
        for (offer_id, share) in &new.offers {
            let target = sqlx::query(
                "INSERT INTO stream_offers (stream_id, offer_id, share, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id, stream_id, offer_id AS target_id, share, state",
            )
            .bind(stream_id)
            .bind(*offer_id)
            .bind(*share)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            offers.push(Self::target_row(&target)?);
        }
        let stream = Self::stream_row(&row, filters, landings, offers)?;
        tx.commit().await?;
        Ok(stream)
    }

    async fn create_landing(&self, new: &NewTarget) -> Result<Landing, StoreError> {
        let sql = format!(
            "INSERT INTO landings (name, url, action_type, action_payload, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {LANDING_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.name.clone())
            .bind(new.url.clone())
            .bind(new.action_type.clone())
            .bind(new.action_payload.to_string())
            .bind(unix_now())
            .fetch_one(&self.pool)
            .await?;
        Self::landing_row(&row)
    }

    async fn create_offer(&self, new: &NewTarget) -> Result<Offer, StoreError> {
        let sql = format!(
            "INSERT INTO offers (name, url, action_type, action_payload, payout_value_micros, country, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {OFFER_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.name.clone())
            .bind(new.url.clone())
            .bind(new.action_type.clone())
            .bind(new.action_payload.to_string())
            .bind(new.payout_value.micros())
            .bind(serde_json::to_string(&new.country).unwrap_or_else(|_| "[]".into()))
            .bind(unix_now())
            .fetch_one(&self.pool)
            .await?;
        Self::offer_row(&row)
    }

    async fn stream_hit_counts(
        &self,
        streams: &[i64],
        hour_start: i64,
        day_start: i64,
    ) -> Result<Vec<(i64, crate::traffic::Hits)>, StoreError> {
        let mut counts = Vec::new();
        for stream in streams {
            let hits = sqlx::query_as::<_, HitCounts>(
                "SELECT COALESCE(SUM(CASE WHEN created_at >= $1 THEN 1 ELSE 0 END), 0) AS hour, \
                 COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS day, COUNT(*) AS total \
                 FROM clicks WHERE stream_id = $3",
            )
            .bind(hour_start)
            .bind(day_start)
            .bind(*stream)
            .fetch_one(&self.pool)
            .await?;
            let count = |n: i64| n.max(0) as u64;
            counts.push((
                *stream,
                crate::traffic::Hits {
                    this_hour: count(hits.hour),
                    today: count(hits.day),
                    total: count(hits.total),
                },
            ));
        }
        Ok(counts)
    }

    async fn clicks_log(
        &self,
        query: &crate::report::LogQuery,
    ) -> Result<(Vec<Vec<crate::report::Cell>>, i64), StoreError> {
        let mut count: QueryBuilder<DB> = QueryBuilder::new("SELECT COUNT(*) FROM clicks");
        Self::push_log_conditions(&mut count, query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let select = query
            .columns
            .iter()
            .map(|c| c.sql.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut page: QueryBuilder<DB> = QueryBuilder::new(format!("SELECT {select} FROM clicks"));
        Self::push_log_conditions(&mut page, query);
        page.push(" ORDER BY ");
        for (column, descending) in &query.sort {
            page.push(column.sql.as_str())
                .push(if *descending { " DESC, " } else { " ASC, " });
        }
        page.push("id DESC LIMIT ")
            .push_bind(query.limit)
            .push(" OFFSET ")
            .push_bind(query.offset);
        let rows = page.build().fetch_all(&self.pool).await?;
        let rows = rows
            .iter()
            .map(|row| {
                let cells = query.columns.iter().enumerate();
                cells.map(|(i, c)| Self::cell(row, i, c.kind)).collect()
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((rows, total))
    }

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

    async fn click_log(&self, query: &LogQuery) -> Result<Vec<ClickRecord>, StoreError> {
        let (sql, values) = query.select_sql();
        Self::bind_log_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| read_record(&Reader(row)))
            .collect()
    }

    async fn count_click_log(&self, query: &LogQuery) -> Result<i64, StoreError> {
        let (sql, values) = query.count_sql();
        let row = Self::bind_log_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn create_dialect_click(
        &self,
        new: &DialectClick,
        key: Option<&ClickKey>,
    ) -> Result<CreatedClick, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The rollup lock first (PostgreSQL), before any row lock: writers that
        // delete keys take it first too.
        Self::lock_rollups(&mut tx, true).await?;
        if let Some(key) = key {
            // Take the key unless an unexpired claim holds it; a concurrent claim of
            // the same key waits for this transaction and then loses.
            let claimed: Option<String> = sqlx::query_scalar(
                "INSERT INTO dialect_click_keys (dialect, key, sub_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (dialect, key) DO UPDATE SET sub_id = excluded.sub_id, created_at = excluded.created_at \
                 WHERE dialect_click_keys.created_at < $5 RETURNING sub_id",
            )
            .bind(new.dialect.clone())
            .bind(key.key.clone())
            .bind(new.click.sub_id.clone())
            .bind(new.created_at)
            .bind(key.window_start)
            .fetch_optional(&mut *tx)
            .await?;
            if claimed.is_none() {
                let sub_id: String = sqlx::query_scalar(
                    "SELECT sub_id FROM dialect_click_keys WHERE dialect = $1 AND key = $2",
                )
                .bind(new.dialect.clone())
                .bind(key.key.clone())
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(CreatedClick {
                    sub_id,
                    existed: true,
                });
            }
        }
        let this_click = |builder: &mut QueryBuilder<DB>| {
            builder
                .push(" WHERE sub_id = ")
                .push_bind(new.click.sub_id.clone());
        };
        Self::adjust_rollups(&mut tx, -1, crate::store::rollups::Part::All, &this_click).await?;
        Self::insert_click_rows(&mut tx, std::slice::from_ref(&new.click)).await?;
        Self::adjust_rollups(&mut tx, 1, crate::store::rollups::Part::All, &this_click).await?;
        sqlx::query(
            "INSERT INTO dialect_clicks (sub_id, dialect, uuid, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (sub_id) DO NOTHING",
        )
        .bind(new.click.sub_id.clone())
        .bind(new.dialect.clone())
        .bind(new.uuid.clone())
        .bind(new.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CreatedClick {
            sub_id: new.click.sub_id.clone(),
            existed: false,
        })
    }

    async fn click_by_key(
        &self,
        dialect: &str,
        key: &ClickKey,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sub_id FROM dialect_click_keys WHERE dialect = $1 AND key = $2 AND created_at >= $3",
        )
        .bind(dialect.to_string())
        .bind(key.key.clone())
        .bind(key.window_start)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn prune_click_keys(&self, before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM dialect_click_keys WHERE created_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn delete_click(&self, sub_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        Self::adjust_rollups(
            &mut tx,
            -1,
            crate::store::rollups::Part::All,
            &|builder: &mut QueryBuilder<DB>| {
                builder
                    .push(" WHERE sub_id = ")
                    .push_bind(sub_id.to_string());
            },
        )
        .await?;
        let profile: Option<Option<i64>> =
            sqlx::query_scalar("SELECT profile_id FROM dialect_clicks WHERE sub_id = $1")
                .bind(sub_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        for sql in [
            "DELETE FROM dialect_clicks WHERE sub_id = $1",
            "DELETE FROM dialect_click_keys WHERE sub_id = $1",
        ] {
            sqlx::query(sql)
                .bind(sub_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM clicks WHERE sub_id = $1")
            .bind(sub_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let Some(Some(profile_id)) = profile {
            Self::delete_orphan_profile(&mut tx, profile_id).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn set_click_profile(
        &self,
        sub_id: &str,
        profile: &NewProfile,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let clicked_at: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM clicks WHERE sub_id = $1")
                .bind(sub_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(clicked_at) = clicked_at else {
            return Ok(None);
        };
        let current: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT profile_id FROM dialect_clicks WHERE sub_id = $1",
        )
        .bind(sub_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let same_uuid: Option<i64> = match &profile.uuid {
            Some(uuid) => {
                sqlx::query_scalar("SELECT id FROM click_profiles WHERE uuid = $1")
                    .bind(uuid.clone())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        let now = unix_now();
        let conflict = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                StoreError::Conflict {
                    what: "a profile with this uuid".to_string(),
                }
            } else {
                e.into()
            }
        };
        let profile_id: i64 = match same_uuid.or(current) {
            Some(id) => {
                sqlx::query(
                    "UPDATE click_profiles SET uuid = $1, first_name = $2, last_name = $3, middle_name = $4, \
                     enabled = $5, country_name = $6, tag = $7, updated_at = $8 WHERE id = $9",
                )
                .bind(profile.uuid.clone())
                .bind(profile.first_name.clone())
                .bind(profile.last_name.clone())
                .bind(profile.middle_name.clone())
                .bind(profile.enabled)
                .bind(profile.country_name.clone())
                .bind(profile.tag.clone())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(conflict)?;
                id
            }
            None => sqlx::query_scalar(
                "INSERT INTO click_profiles (uuid, first_name, last_name, middle_name, enabled, country_name, tag, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(profile.uuid.clone())
            .bind(profile.first_name.clone())
            .bind(profile.last_name.clone())
            .bind(profile.middle_name.clone())
            .bind(profile.enabled)
            .bind(profile.country_name.clone())
            .bind(profile.tag.clone())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict)?,
        };
        sqlx::query("DELETE FROM click_profile_contacts WHERE profile_id = $1")
            .bind(profile_id)
            .execute(&mut *tx)
            .await?;
        for (position, contact) in profile.contacts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO click_profile_contacts (profile_id, position, kind, value, uuid) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(profile_id)
            .bind(position as i64)
            .bind(contact.key.clone())
            .bind(contact.value.clone())
            .bind(contact.uuid.clone())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO dialect_clicks (sub_id, dialect, profile_id, created_at, updated_at) VALUES ($1, '', $2, $3, $4) \
             ON CONFLICT (sub_id) DO UPDATE SET profile_id = excluded.profile_id, updated_at = excluded.updated_at",
        )
        .bind(sub_id.to_string())
        .bind(profile_id)
        .bind(clicked_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(previous) = current.filter(|previous| *previous != profile_id) {
            Self::delete_orphan_profile(&mut tx, previous).await?;
        }
        tx.commit().await?;
        Ok(Some(profile_id))
    }

    async fn click_profiles(&self, ids: &[i64]) -> Result<Vec<ClickProfile>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(1, ids.len());
        let mut contacts: std::collections::HashMap<i64, Vec<ProfileContact>> =
            std::collections::HashMap::new();
        let sql = format!(
            "SELECT profile_id, kind, value, uuid FROM click_profile_contacts WHERE profile_id IN ({list}) \
             ORDER BY profile_id, position, id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&self.pool).await? {
            let contact = ProfileContact::from_row(&row)?;
            contacts
                .entry(row.try_get("profile_id")?)
                .or_default()
                .push(contact);
        }
        let sql = format!(
            "SELECT id, uuid, first_name, last_name, middle_name, enabled, country_name, tag, created_at, updated_at \
             FROM click_profiles WHERE id IN ({list}) ORDER BY id"
        );
        let mut query = sqlx::query_as::<_, ClickProfile>(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let mut profiles = query.fetch_all(&self.pool).await?;
        for profile in &mut profiles {
            profile.contacts = contacts.remove(&profile.id).unwrap_or_default();
        }
        Ok(profiles)
    }

    async fn link_metrics(
        &self,
        campaign_ids: &[i64],
    ) -> Result<Vec<(i64, LinkMetrics)>, StoreError> {
        let mut out = Vec::with_capacity(campaign_ids.len());
        for id in campaign_ids {
            let mut metrics = sqlx::query_as::<_, LinkMetrics>(
                "SELECT COUNT(*) AS clicks, \
                 COALESCE(SUM(CASE WHEN c.is_unique_campaign THEN 1 ELSE 0 END), 0) AS unique_clicks, \
                 COALESCE(SUM(CASE WHEN d.profile_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS registrations \
                 FROM clicks c LEFT JOIN dialect_clicks d ON d.sub_id = c.sub_id WHERE c.campaign_id = $1",
            )
            .bind(*id)
            .fetch_one(&self.pool)
            .await?;
            metrics.conversions =
                sqlx::query_scalar("SELECT COUNT(*) FROM conversions WHERE campaign_id = $1")
                    .bind(*id)
                    .fetch_one(&self.pool)
                    .await?;
            out.push((*id, metrics));
        }
        Ok(out)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl<DB> RoutingSource for SqlStore<DB>
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
    async fn routing_data(&self) -> Result<RoutingData, StoreError> {
        let campaigns = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE state = 'active' ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::campaign_row)
        .collect::<Result<Vec<_>, _>>()?;
        let mut filters: std::collections::HashMap<i64, Vec<StreamFilter>> =
            std::collections::HashMap::new();
        for row in sqlx::query(
            "SELECT f.id, f.stream_id, f.name, f.mode, f.payload FROM stream_filters f \
             JOIN streams s ON s.id = f.stream_id WHERE s.state = 'active' \
             ORDER BY f.stream_id, f.position, f.id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let filter = Self::filter_row(&row)?;
            filters.entry(filter.stream_id).or_default().push(filter);
        }
        let mut landing_targets: std::collections::HashMap<i64, Vec<StreamTarget>> =
            std::collections::HashMap::new();
        for row in sqlx::query(
            "SELECT id, stream_id, landing_id AS target_id, share, state FROM stream_landings ORDER BY stream_id, id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let target = Self::target_row(&row)?;
            landing_targets.entry(target.stream_id).or_default().push(target);
        }
        let mut offer_targets: std::collections::HashMap<i64, Vec<StreamTarget>> =
            std::collections::HashMap::new();
        for row in sqlx::query(
            "SELECT id, stream_id, offer_id AS target_id, share, state FROM stream_offers ORDER BY stream_id, id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let target = Self::target_row(&row)?;
            offer_targets.entry(target.stream_id).or_default().push(target);
        }
        let streams = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE state = 'active' ORDER BY campaign_id, position, id"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Self::stream_row(
                row,
                filters.remove(&id).unwrap_or_default(),
                landing_targets.remove(&id).unwrap_or_default(),
                offer_targets.remove(&id).unwrap_or_default(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
        let landings = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LANDING_COLUMNS} FROM landings WHERE state = 'active' ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::landing_row)
        .collect::<Result<Vec<_>, _>>()?;
        let offers = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE state = 'active' ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::offer_row)
        .collect::<Result<Vec<_>, _>>()?;
        let traffic_sources = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, name FROM traffic_sources WHERE state = 'active' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(RoutingData {
            campaigns,
            streams,
            landings,
            offers,
            traffic_sources,
        })
    }

    async fn offer_conversions_since(&self, offer_id: i64, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM conversions WHERE offer_id = $1 AND created_at >= $2 AND status <> 'rejected'",
        )
        .bind(offer_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }
}

#[async_trait]
impl<DB> ClickWriter for SqlStore<DB>
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
    async fn insert_clicks(&self, clicks: &[Click]) -> Result<u64, StoreError> {
        if clicks.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, false).await?;
        let inserted = Self::insert_click_rows(&mut tx, clicks).await?;
        if inserted == clicks.len() as u64 {
            Self::add_new_clicks(&mut tx, clicks).await?;
            tx.commit().await?;
            return Ok(inserted);
        }
        // Some sub ids existed already: redo the batch, with the rollups updated
        // from what the clicks table holds before and after.
        tx.rollback().await?;
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        let batch = |builder: &mut QueryBuilder<DB>| {
            Self::push_sub_ids(builder, clicks.iter().map(|c| c.sub_id.as_str()));
        };
        Self::adjust_rollups(&mut tx, -1, crate::store::rollups::Part::All, &batch).await?;
        let inserted = Self::insert_click_rows(&mut tx, clicks).await?;
        Self::adjust_rollups(&mut tx, 1, crate::store::rollups::Part::All, &batch).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn mark_landing_clicks(&self, clicks: &[LandingClick]) -> Result<u64, StoreError> {
        if clicks.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        let these = |builder: &mut QueryBuilder<DB>| {
            Self::push_sub_ids(builder, clicks.iter().map(|c| c.sub_id.as_str()));
        };
        // All sums: the landing click can change the offer, a dimension.
        Self::adjust_rollups(&mut tx, -1, crate::store::rollups::Part::All, &these).await?;
        let mut changed = 0;
        for click in clicks {
            changed += sqlx::query(
                "UPDATE clicks SET landing_clicked = $1, \
                 landing_clicked_at = COALESCE(landing_clicked_at, $2), offer_id = $3, destination = $4 \
                 WHERE sub_id = $5",
            )
            .bind(true)
            .bind(click.at)
            .bind(click.offer_id)
            .bind(click.destination.clone())
            .bind(click.sub_id.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        Self::adjust_rollups(&mut tx, 1, crate::store::rollups::Part::All, &these).await?;
        tx.commit().await?;
        Ok(changed)
    }
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
        let row = sqlx::query(
            "INSERT INTO stream_triggers (stream_id, condition, action, target, interval_seconds, payload) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, stream_id, condition, action, target, interval_seconds, payload, enabled",
        )
        .bind(new.stream_id)
        .bind(new.condition.clone())
        .bind(new.action.clone())
        .bind(new.target.clone())
        .bind(new.interval_seconds)
        .bind(new.payload.to_string())
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
        sqlx::query("UPDATE streams SET action_payload = $1, updated_at = $2 WHERE id = $3")
            .bind(payload.to_string())
            .bind(unix_now())
            .bind(id)
            .execute(&self.pool)
            .await?;
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
