//! Keeping the report rollups in step with the clicks and conversions (see `rollups.rs` for
//! their dimensions and plans): a lock that orders writers, and signed adjustments of the sums
//! of a set of clicks.

use std::sync::Arc;

use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

use crate::config::Backend;
use crate::store::rollups;

use super::StoreError;
use super::reports::{CLICK_SUMS, CONVERSION_SUMS, CONVERSIONS_OF_CLICKS};
use super::sql_store::{Sql, SqlDb, SqlStore};

/// The advisory lock (PostgreSQL) of rollup writers: exclusive for the writes that
/// subtract and add back, shared for the recorder's inserts (see `rollups.rs`).
const ROLLUP_LOCK: i64 = 0x5357_524F_4C55;

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
    pub(crate) async fn lock_rollups(
        conn: &mut <DB as sqlx::Database>::Connection,
        exclusive: bool,
    ) -> Result<(), StoreError> {
        if DB::BACKEND == Backend::Postgres {
            let sql = if exclusive {
                "SELECT pg_advisory_xact_lock($1)"
            } else {
                "SELECT pg_advisory_xact_lock_shared($1)"
            };
            sqlx::query(sql)
                .bind(ROLLUP_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Adds (`sign` 1) or subtracts (-1) the sums of the clicks that `matching` selects
    /// (it pushes ` WHERE …` over unqualified click columns) and of their conversions
    /// to every rollup. Callers hold the exclusive rollup lock (PostgreSQL) or have
    /// written first (SQLite), so the clicks cannot change between a subtraction and
    /// the addition that follows it.
    pub(crate) async fn adjust_rollups(
        conn: &mut <DB as sqlx::Database>::Connection,
        sign: i64,
        part: rollups::Part,
        matching: &(dyn Fn(&mut QueryBuilder<DB>) + Send + Sync),
    ) -> Result<(), StoreError> {
        let factor = if sign < 0 { "-1 * " } else { "" };
        for rollup in rollups::ROLLUPS {
            let dims: Vec<String> = rollup.dims.iter().map(rollups::store_expression).collect();
            let groups: Vec<String> = (1..=1 + dims.len()).map(|i| i.to_string()).collect();
            let head = |columns: &[&str]| {
                format!(
                    "INSERT INTO {} ({}, {}) SELECT created_at / {} * {}, {}",
                    rollup.table,
                    rollups::key_columns(rollup),
                    columns.join(", "),
                    rollups::HOUR,
                    rollups::HOUR,
                    dims.join(", ")
                )
            };
            if part != rollups::Part::Conversions {
                let mut columns = vec!["clicks"];
                columns.extend(CLICK_SUMS.iter().map(|(name, _)| *name));
                let mut clicks: QueryBuilder<DB> = QueryBuilder::new(head(&columns));
                clicks.push(", ").push(factor).push("COUNT(*)");
                for (_, expression) in CLICK_SUMS {
                    clicks
                        .push(", ")
                        .push(factor)
                        .push("(")
                        .push(*expression)
                        .push(")");
                }
                clicks.push(" FROM clicks");
                matching(&mut clicks);
                clicks
                    .push(" GROUP BY ")
                    .push(groups.join(", "))
                    .push(rollups::on_conflict_add(rollup));
                clicks.build().execute(&mut *conn).await?;
            }
            if part == rollups::Part::Clicks {
                continue;
            }
            let columns: Vec<&str> = CONVERSION_SUMS.iter().map(|(name, _)| *name).collect();
            let mut conversions: QueryBuilder<DB> = QueryBuilder::new(head(&columns));
            for (_, expression) in CONVERSION_SUMS {
                conversions
                    .push(", ")
                    .push(factor)
                    .push("(")
                    .push(*expression)
                    .push(")");
            }
            conversions.push(CONVERSIONS_OF_CLICKS);
            matching(&mut conversions);
            conversions
                .push(" GROUP BY ")
                .push(groups.join(", "))
                .push(rollups::on_conflict_add(rollup));
            conversions.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Adds new clicks (all of them just inserted) to every rollup, summed in Rust.
    pub(crate) async fn add_new_clicks(
        conn: &mut <DB as sqlx::Database>::Connection,
        clicks: &[crate::model::Click],
    ) -> Result<(), StoreError> {
        use crate::store::click_insert::statement_rows;
        use crate::store::rollups::{
            CLICK_SUM_COLUMNS, DimValue, add_clicks, sums_values, upsert_statement,
        };
        use sqlx::Arguments;
        for (index, rollup) in rollups::ROLLUPS.iter().enumerate() {
            let rows = add_clicks(rollup, clicks)?;
            let mut rest = rows.as_slice();
            for count in statement_rows(rows.len()) {
                let (chunk, tail) = rest.split_at(count);
                rest = tail;
                let mut arguments = <DB as sqlx::Database>::Arguments::default();
                let mut bound = Ok(());
                let mut keep = |result: Result<(), sqlx::error::BoxDynError>| {
                    if bound.is_ok() {
                        bound = result;
                    }
                };
                for ((hour, dims), sums) in chunk {
                    keep(arguments.add(*hour));
                    for dim in dims {
                        keep(match dim {
                            DimValue::Id(id) => arguments.add(*id),
                            DimValue::Text(text) => arguments.add(text.to_string()),
                        });
                    }
                    for value in &sums_values(sums)[..CLICK_SUM_COLUMNS] {
                        keep(arguments.add(*value));
                    }
                }
                bound.map_err(sqlx::Error::Encode)?;
                sqlx::query_with(upsert_statement(DB::BACKEND, index, count), arguments)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}
