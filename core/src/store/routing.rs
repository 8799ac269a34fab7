//! What a routing snapshot is built from ([`RoutingSource`]): the active objects, and the
//! counts (stream hits, offers' conversions) a rebuild restores.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, Row, Type};

use crate::model::{StreamFilter, StreamTarget};
use crate::store::rows::{CAMPAIGN_COLUMNS, LANDING_COLUMNS, OFFER_COLUMNS, STREAM_COLUMNS};
use crate::traffic::RoutingData;

use super::StoreError;
use super::sql_store::{Sql, SqlDb, SqlStore};

/// What a routing snapshot is built from (`reload::SnapshotCell::rebuild`), with the counts
/// of the offers' caps it restores.
#[async_trait]
pub trait RoutingSource: Send + Sync {
    /// Active campaigns, streams (with filters, landings, offers), landings and offers: what the
    /// routing snapshot is built from.
    async fn routing_data(&self) -> Result<RoutingData, StoreError>;

    /// Conversions of an offer since `since` that were not rejected (its conversion cap).
    async fn offer_conversions_since(&self, offer_id: i64, since: i64) -> Result<i64, StoreError>;

    /// Clicks per stream since `hour_start`, since `day_start` and in total, for `streams`.
    async fn stream_hit_counts(
        &self,
        streams: &[i64],
        hour_start: i64,
        day_start: i64,
    ) -> Result<Vec<(i64, crate::traffic::Hits)>, StoreError>;
}

/// A stream's clicks this hour, today and in all.
#[derive(sqlx::FromRow)]
struct HitCounts {
    hour: i64,
    day: i64,
    total: i64,
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
        for target in self.stream_targets("landing", "", None).await? {
            landing_targets
                .entry(target.stream_id)
                .or_default()
                .push(target);
        }
        let mut offer_targets: std::collections::HashMap<i64, Vec<StreamTarget>> =
            std::collections::HashMap::new();
        for target in self.stream_targets("offer", "", None).await? {
            offer_targets
                .entry(target.stream_id)
                .or_default()
                .push(target);
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
}
