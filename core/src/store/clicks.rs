//! The click writer's role ([`ClickWriter`]): batches of clicks from the recorder, and the
//! landing -> offer stamps, with the report rollups kept in step.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

use crate::model::Click;

use super::StoreError;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

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
    /// Inserts clicks on an open connection or transaction; existing sub ids are skipped.
    /// Statements of fixed row counts and widths (see `click_insert.rs`), so they stay
    /// prepared: the clicks are grouped by the width they need.
    pub(super) async fn insert_click_rows(
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
    pub(super) fn push_sub_ids<'a>(
        builder: &mut QueryBuilder<DB>,
        sub_ids: impl Iterator<Item = &'a str>,
    ) {
        builder.push(" WHERE sub_id IN (");
        let mut list = builder.separated(", ");
        for sub_id in sub_ids {
            list.push_bind(sub_id.to_string());
        }
        builder.push(")");
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
