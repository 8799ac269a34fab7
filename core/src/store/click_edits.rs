//! Changes the Admin API makes to stored clicks ([`ClickEdits`]): costs spread over them, and
//! clicks cleaned out with what hangs on them.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

use crate::model::Money;
use crate::store::rollups;

use super::StoreError;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

/// A cost to spread over matching clicks (`update_costs`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostSpread {
    pub campaign_ids: Vec<i64>,
    /// Clicks at or after `from` and before `to` (Unix seconds).
    pub from: i64,
    pub to: i64,
    /// The total, in the tracker's currency.
    pub total: Money,
    /// Only clicks unique in their campaign.
    pub only_uniques: bool,
    /// Further conditions on click columns (values bound).
    pub conditions: Vec<crate::report::Condition>,
}

/// Costs and cleaning: each call one transaction.
#[async_trait]
pub trait ClickEdits: Send + Sync {
    /// Deletes the clicks in `[from, to)` (of one campaign, or all) with their conversions
    /// and what the dialects keep about them, in one transaction. Returns (clicks,
    /// conversions) deleted.
    async fn clean_clicks(
        &self,
        from: i64,
        to: i64,
        campaign_id: Option<i64>,
    ) -> Result<(u64, u64), StoreError>;

    /// For each spread in turn, sets the cost of its matching clicks so that they add up to
    /// exactly `total`: each gets `total / n` micro-units, the first `total % n` (by id) one
    /// more. All spreads in one transaction (all or none). Returns the clicks updated.
    async fn spread_costs(&self, spreads: &[CostSpread]) -> Result<u64, StoreError>;
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
    pub(super) async fn spread_one(
        tx: &mut sqlx::Transaction<'_, DB>,
        spread: &CostSpread,
    ) -> Result<u64, StoreError> {
        if spread.campaign_ids.is_empty() {
            return Ok(0);
        }
        let matching = |builder: &mut QueryBuilder<DB>| {
            Self::push_conditions(
                builder,
                "created_at",
                Some(spread.from),
                Some(spread.to),
                &spread.conditions,
            );
            builder.push(" AND campaign_id IN (");
            let mut list = builder.separated(", ");
            for id in &spread.campaign_ids {
                list.push_bind(*id);
            }
            builder.push(")");
            if spread.only_uniques {
                builder.push(" AND is_unique_campaign = ").push_bind(true);
            }
        };
        let mut count: QueryBuilder<DB> = QueryBuilder::new("SELECT COUNT(*) FROM clicks");
        matching(&mut count);
        let n: i64 = count.build_query_scalar().fetch_one(&mut **tx).await?;
        if n == 0 {
            return Ok(0);
        }
        let total = spread.total.micros();
        let (base, rest) = (total.div_euclid(n), total.rem_euclid(n));
        // The id of the last click that gets one micro-unit more (none when rest = 0).
        let threshold: i64 = if rest == 0 {
            i64::MIN
        } else {
            let mut nth: QueryBuilder<DB> = QueryBuilder::new("SELECT id FROM clicks");
            matching(&mut nth);
            nth.push(" ORDER BY id LIMIT 1 OFFSET ").push_bind(rest - 1);
            nth.build_query_scalar().fetch_one(&mut **tx).await?
        };
        Self::adjust_rollups(&mut **tx, -1, rollups::Part::Clicks, &matching).await?;
        let mut update: QueryBuilder<DB> =
            QueryBuilder::new("UPDATE clicks SET cost_micros = CASE WHEN id <= ");
        update
            .push_bind(threshold)
            .push(" THEN ")
            .push_bind(base + 1)
            .push(" ELSE ")
            .push_bind(base)
            .push(" END");
        matching(&mut update);
        let updated = update.build().execute(&mut **tx).await?.rows_affected();
        Self::adjust_rollups(&mut **tx, 1, rollups::Part::Clicks, &matching).await?;
        Ok(updated)
    }
}

#[async_trait]
impl<DB> ClickEdits for SqlStore<DB>
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
    async fn clean_clicks(
        &self,
        from: i64,
        to: i64,
        campaign_id: Option<i64>,
    ) -> Result<(u64, u64), StoreError> {
        let scope = |builder: &mut QueryBuilder<DB>| {
            builder
                .push(" WHERE created_at >= ")
                .push_bind(from)
                .push(" AND created_at < ")
                .push_bind(to);
            if let Some(id) = campaign_id {
                builder.push(" AND campaign_id = ").push_bind(id);
            }
        };
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        Self::adjust_rollups(&mut tx, -1, rollups::Part::All, &scope).await?;
        let mut conversions: QueryBuilder<DB> =
            QueryBuilder::new("DELETE FROM conversions WHERE sub_id IN (SELECT sub_id FROM clicks");
        scope(&mut conversions);
        conversions.push(")");
        let conversions = conversions.build().execute(&mut *tx).await?.rows_affected();
        for table in ["dialect_clicks", "dialect_click_keys"] {
            let mut dialect: QueryBuilder<DB> = QueryBuilder::new(format!(
                "DELETE FROM {table} WHERE sub_id IN (SELECT sub_id FROM clicks"
            ));
            scope(&mut dialect);
            dialect.push(")");
            dialect.build().execute(&mut *tx).await?;
        }
        let mut clicks: QueryBuilder<DB> = QueryBuilder::new("DELETE FROM clicks");
        scope(&mut clicks);
        let clicks = clicks.build().execute(&mut *tx).await?.rows_affected();
        sqlx::query(
            "DELETE FROM click_profiles WHERE id NOT IN \
             (SELECT profile_id FROM dialect_clicks WHERE profile_id IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        for rollup in rollups::ROLLUPS {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {} WHERE clicks = 0",
                rollup.table
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((clicks, conversions))
    }

    async fn spread_costs(&self, spreads: &[CostSpread]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        // A write first, so that SQLite takes the write lock before the counts.
        sqlx::query("UPDATE clicks SET cost_micros = cost_micros WHERE 1 = 0")
            .execute(&mut *tx)
            .await?;
        let mut updated = 0;
        for spread in spreads {
            updated += Self::spread_one(&mut tx, spread).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }
}
