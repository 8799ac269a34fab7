//! What reports need from the store ([`ReportStore`]): report aggregates, the conversion log,
//! the received- and sent-postback logs, labels, costs and cleaning (recording conversions is
//! `conversions.rs`), implemented once for both backends on `SqlStore<DB>`; only the
//! regular-expression operator differs (`REGEXP`, backed by the `regex` crate on SQLite, `~` on
//! PostgreSQL).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Row, Type};

use crate::config::Backend;
use crate::report::{
    Bound, Cell, ColumnKind, Condition, GroupingKey, LogQuery, Operator, ReportSql, Sums,
};
use crate::store::rollups;

use super::StoreError;
use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};

/// Reports over the clicks and conversions. Every method is one statement or one transaction.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// A page of the click log (`query.limit` rows from `query.offset`, cells in
    /// `query.columns` order) and how many clicks match in all.
    async fn clicks_log(
        &self,
        query: &crate::report::LogQuery,
    ) -> Result<(Vec<Vec<crate::report::Cell>>, i64), StoreError>;

    /// Sums per group of `sql.keys` over the clicks in range that pass the conditions, and
    /// over their conversions (by the click's time); cells in `sql.keys` order.
    /// Read from a rollup (see `rollups.rs`) when the request fits one, else from the clicks.
    async fn report_rows(&self, sql: &ReportSql) -> Result<Vec<(Vec<Cell>, Sums)>, StoreError>;

    /// The same rows, always computed from the clicks and conversions (for checks and
    /// benchmarks).
    async fn report_rows_from_clicks(
        &self,
        sql: &ReportSql,
    ) -> Result<Vec<(Vec<Cell>, Sums)>, StoreError>;

    /// Recomputes every rollup from the clicks and conversions, in one transaction (after the
    /// migration that creates them, or after data was loaded behind the store's back).
    async fn rebuild_rollups(&self) -> Result<(), StoreError>;

    /// `(id, name)` of rows of a named table (`campaigns`, `offers`, … — fixed text from the
    /// report module, never from a request).
    async fn object_names(
        &self,
        table: &'static str,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, StoreError>;

    /// A page of the conversion log and how many conversions match in all.
    async fn conversions_log(&self, query: &LogQuery) -> Result<(Vec<Vec<Cell>>, i64), StoreError>;

    /// Labels of a campaign for one ref name (`ip`, `source`, `sub_id_1`, …): (value, label).
    async fn labels(
        &self,
        campaign_id: i64,
        ref_name: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Sets labels in one transaction: `Some(label)` sets, `None` removes. Returns how many
    /// values changed.
    async fn set_labels(
        &self,
        campaign_id: i64,
        ref_name: &str,
        items: &[(String, Option<String>)],
    ) -> Result<u64, StoreError>;
}

/// The click sums besides `COUNT(*) AS clicks`: (name, expression).
pub(super) const CLICK_SUMS: &[(&str, &str)] = &[
    (
        "campaign_unique",
        "COALESCE(SUM(CASE WHEN is_unique_campaign THEN 1 ELSE 0 END), 0)",
    ),
    (
        "stream_unique",
        "COALESCE(SUM(CASE WHEN is_unique_stream THEN 1 ELSE 0 END), 0)",
    ),
    (
        "global_unique",
        "COALESCE(SUM(CASE WHEN is_unique_global THEN 1 ELSE 0 END), 0)",
    ),
    (
        "bots",
        "COALESCE(SUM(CASE WHEN is_bot THEN 1 ELSE 0 END), 0)",
    ),
    (
        "proxies",
        "COALESCE(SUM(CASE WHEN is_using_proxy THEN 1 ELSE 0 END), 0)",
    ),
    (
        "empty_referrers",
        "COALESCE(SUM(CASE WHEN referrer = '' THEN 1 ELSE 0 END), 0)",
    ),
    (
        "lp_clicks",
        "COALESCE(SUM(CASE WHEN landing_clicked THEN 1 ELSE 0 END), 0)",
    ),
    (
        "lp_seconds",
        "CAST(COALESCE(SUM(CASE WHEN landing_clicked THEN COALESCE(landing_clicked_at - created_at, 0) ELSE 0 END), 0) AS BIGINT)",
    ),
    ("cost", "CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)"),
];

/// The conversion sums over [`CONVERSIONS_OF_CLICKS`]: (name, expression).
pub(super) const CONVERSION_SUMS: &[(&str, &str)] = &[
    ("conversions", "COUNT(*)"),
    (
        "leads",
        "COALESCE(SUM(CASE WHEN cv_status = 'lead' THEN 1 ELSE 0 END), 0)",
    ),
    (
        "sales",
        "COALESCE(SUM(CASE WHEN cv_status = 'sale' THEN 1 ELSE 0 END), 0)",
    ),
    (
        "rejected",
        "COALESCE(SUM(CASE WHEN cv_status = 'rejected' THEN 1 ELSE 0 END), 0)",
    ),
    (
        "rebills",
        "COALESCE(SUM(CASE WHEN cv_status = 'rebill' THEN 1 ELSE 0 END), 0)",
    ),
    (
        "lead_revenue",
        "CAST(COALESCE(SUM(CASE WHEN cv_status = 'lead' THEN cv_revenue ELSE 0 END), 0) AS BIGINT)",
    ),
    (
        "sale_revenue",
        "CAST(COALESCE(SUM(CASE WHEN cv_status IN ('sale', 'rebill') THEN cv_revenue ELSE 0 END), 0) AS BIGINT)",
    ),
    (
        "rejected_revenue",
        "CAST(COALESCE(SUM(CASE WHEN cv_status = 'rejected' THEN cv_revenue ELSE 0 END), 0) AS BIGINT)",
    ),
];

/// Conversions joined to their clicks; conversion columns renamed so that click
/// columns (the groupings and conditions) read unqualified.
pub(super) const CONVERSIONS_OF_CLICKS: &str = " FROM (SELECT sub_id AS cv_sub_id, status AS cv_status, revenue_micros AS cv_revenue FROM conversions) v \
    JOIN clicks ON clicks.sub_id = v.cv_sub_id";

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
    /// ` WHERE …` for a log query: the time range and each condition, values bound
    /// (shared with the reports, see `store/reports.rs`).
    pub(super) fn push_log_conditions(
        builder: &mut QueryBuilder<DB>,
        query: &crate::report::LogQuery,
    ) {
        Self::push_conditions(
            builder,
            "created_at",
            query.from,
            query.to,
            &query.conditions,
        );
    }

    pub(super) fn bind_value(builder: &mut QueryBuilder<DB>, value: &Bound) {
        match value {
            Bound::Text(text) => builder.push_bind(text.clone()),
            Bound::Int(number) => builder.push_bind(*number),
            Bound::Bool(flag) => builder.push_bind(*flag),
        };
    }

    /// ` WHERE …`: the time range over `time_column` and each condition, values bound.
    /// Column SQL is fixed text from the report whitelist.
    pub(crate) fn push_conditions(
        builder: &mut QueryBuilder<DB>,
        time_column: &str,
        from: Option<i64>,
        to: Option<i64>,
        conditions: &[Condition],
    ) {
        builder.push(" WHERE 1 = 1");
        if let Some(from) = from {
            builder
                .push(" AND ")
                .push(time_column)
                .push(" >= ")
                .push_bind(from);
        }
        if let Some(to) = to {
            builder
                .push(" AND ")
                .push(time_column)
                .push(" < ")
                .push_bind(to);
        }
        for condition in conditions {
            let column = condition.column.sql.as_str();
            let values = &condition.values;
            builder.push(" AND ");
            let compare = |builder: &mut QueryBuilder<DB>, op: &str| {
                builder.push(column).push(op);
                Self::bind_value(builder, &values[0]);
            };
            match condition.operator {
                Operator::Equals | Operator::IsTrue | Operator::IsFalse => compare(builder, " = "),
                Operator::NotEqual => compare(builder, " <> "),
                Operator::GreaterThan => compare(builder, " > "),
                Operator::LessThan => compare(builder, " < "),
                Operator::EqualsOrGreaterThan => compare(builder, " >= "),
                Operator::EqualsOrLessThan => compare(builder, " <= "),
                Operator::Contains | Operator::BeginsWith | Operator::EndsWith => {
                    builder.push("LOWER(").push(column).push(") LIKE ");
                    Self::bind_value(builder, &values[0]);
                    builder.push(" ESCAPE '\\'");
                }
                Operator::NotContain => {
                    builder.push("NOT (LOWER(").push(column).push(") LIKE ");
                    Self::bind_value(builder, &values[0]);
                    builder.push(" ESCAPE '\\')");
                }
                Operator::MatchRegexp | Operator::NotMatchRegexp => {
                    if condition.operator == Operator::NotMatchRegexp {
                        builder.push("NOT ");
                    }
                    builder.push("(").push(column);
                    builder.push(if DB::BACKEND == Backend::Postgres {
                        " ~ "
                    } else {
                        " REGEXP "
                    });
                    Self::bind_value(builder, &values[0]);
                    builder.push(")");
                }
                Operator::HasLabel | Operator::NotHasLabel => {
                    // values: [label, ref name]; the column is a plain click column.
                    if condition.operator == Operator::NotHasLabel {
                        builder.push("NOT ");
                    }
                    builder.push("EXISTS (SELECT 1 FROM labels l WHERE l.campaign_id = clicks.campaign_id AND l.ref_name = ");
                    Self::bind_value(builder, &values[1]);
                    builder
                        .push(" AND l.ref_value = clicks.")
                        .push(column)
                        .push(" AND l.label = ");
                    Self::bind_value(builder, &values[0]);
                    builder.push(")");
                }
                Operator::InList | Operator::NotInList => {
                    builder.push(column);
                    builder.push(if condition.operator == Operator::InList {
                        " IN ("
                    } else {
                        " NOT IN ("
                    });
                    for (i, value) in values.iter().enumerate() {
                        if i > 0 {
                            builder.push(", ");
                        }
                        Self::bind_value(builder, value);
                    }
                    builder.push(")");
                }
                Operator::Between => {
                    builder.push(column).push(" BETWEEN ");
                    Self::bind_value(builder, &values[0]);
                    builder.push(" AND ");
                    Self::bind_value(builder, &values[1]);
                }
                Operator::IsSet => {
                    builder.push(column);
                    builder.push(if condition.column.kind == ColumnKind::Text {
                        " <> ''"
                    } else {
                        " IS NOT NULL"
                    });
                }
                Operator::IsNotSet => {
                    if condition.column.kind == ColumnKind::Text {
                        builder
                            .push("(")
                            .push(column)
                            .push(" = '' OR ")
                            .push(column)
                            .push(" IS NULL)");
                    } else {
                        builder.push(column).push(" IS NULL");
                    }
                }
            }
        }
    }

    /// `SELECT <keys>, ` with the bucket's numbers bound; buckets of `time_column`.
    pub(super) fn push_keys(
        builder: &mut QueryBuilder<DB>,
        keys: &[GroupingKey],
        bucket: Option<(i64, i64)>,
        time_column: &str,
    ) {
        builder.push("SELECT ");
        for key in keys {
            match key {
                GroupingKey::Column(c) => {
                    builder.push(c.sql.as_str());
                }
                GroupingKey::Bucket => {
                    let (offset, size) = bucket.unwrap_or((0, 86_400));
                    builder
                        .push("(")
                        .push(time_column)
                        .push(" + ")
                        .push_bind(offset)
                        .push(") / ")
                        .push_bind(size.max(1));
                }
            }
            builder.push(", ");
        }
    }

    pub(super) fn push_group_by(builder: &mut QueryBuilder<DB>, keys: usize) {
        if keys == 0 {
            builder.push(" HAVING COUNT(*) > 0");
            return;
        }
        let positions: Vec<String> = (1..=keys).map(|i| i.to_string()).collect();
        builder.push(" GROUP BY ").push(positions.join(", "));
    }

    pub(super) fn read_cell(
        row: &DB::Row,
        i: usize,
        key: &GroupingKey,
    ) -> Result<Cell, StoreError> {
        match key {
            GroupingKey::Bucket => Self::cell(row, i, ColumnKind::Int),
            GroupingKey::Column(c) => Self::cell(row, i, c.kind),
        }
    }

    /// Column `i` of a row as a cell of `kind` (a NULL text is empty).
    pub(crate) fn cell(row: &DB::Row, i: usize, kind: ColumnKind) -> Result<Cell, StoreError> {
        Ok(match kind {
            ColumnKind::Text => {
                Cell::Text(row.try_get::<Option<String>, _>(i)?.unwrap_or_default())
            }
            ColumnKind::Int => Cell::Int(row.try_get(i)?),
            ColumnKind::Bool => Cell::Bool(row.try_get(i)?),
            ColumnKind::Money => Cell::Money(row.try_get(i)?),
            ColumnKind::Time => Cell::Time(row.try_get(i)?),
        })
    }

    /// `COUNT(*) AS clicks` and each click sum: computed when `needed`, else a zero.
    pub(super) fn push_click_sums(builder: &mut QueryBuilder<DB>, needed: &[&str]) {
        builder.push("COUNT(*) AS clicks");
        for (name, expression) in CLICK_SUMS {
            builder.push(", ");
            if needed.contains(name) {
                builder.push(*expression);
            } else {
                builder.push("CAST(0 AS BIGINT)");
            }
            builder.push(" AS ").push(*name);
        }
        builder.push(" FROM clicks");
    }

    pub(super) fn push_conversion_sums(builder: &mut QueryBuilder<DB>) {
        for (i, (name, expression)) in CONVERSION_SUMS.iter().enumerate() {
            if i > 0 {
                builder.push(", ");
            }
            builder.push(*expression).push(" AS ").push(*name);
        }
        builder.push(CONVERSIONS_OF_CLICKS);
    }

    /// The SQL of a report's click and conversion aggregates (for tests and benches).
    pub(crate) fn report_statements(sql: &ReportSql) -> (QueryBuilder<DB>, QueryBuilder<DB>) {
        let mut clicks: QueryBuilder<DB> = QueryBuilder::new("");
        Self::push_keys(&mut clicks, &sql.keys, sql.bucket, "created_at");
        Self::push_click_sums(&mut clicks, &sql.click_sums);
        Self::push_conditions(&mut clicks, "created_at", sql.from, sql.to, &sql.conditions);
        Self::push_group_by(&mut clicks, sql.keys.len());
        let mut conversions: QueryBuilder<DB> = QueryBuilder::new("");
        Self::push_keys(&mut conversions, &sql.keys, sql.bucket, "created_at");
        Self::push_conversion_sums(&mut conversions);
        Self::push_conditions(
            &mut conversions,
            "created_at",
            sql.from,
            sql.to,
            &sql.conditions,
        );
        Self::push_group_by(&mut conversions, sql.keys.len());
        (clicks, conversions)
    }

    /// Report rows computed from the clicks and conversions themselves.
    pub(super) async fn rows_from_clicks(
        pool: &sqlx::Pool<DB>,
        sql: &ReportSql,
    ) -> Result<Vec<(Vec<Cell>, Sums)>, StoreError> {
        let (mut clicks, mut conversions) = Self::report_statements(sql);
        let clicked = rollups::CLICK_SUM_COLUMNS;
        let mut out = Vec::new();
        for row in clicks.build().fetch_all(pool).await? {
            out.push(Self::report_row(&row, &sql.keys, 0..clicked)?);
        }
        if sql.conversions {
            for row in conversions.build().fetch_all(pool).await? {
                out.push(Self::report_row(
                    &row,
                    &sql.keys,
                    clicked..rollups::SUM_COLUMNS.len(),
                )?);
            }
        }
        Ok(out)
    }

    /// A report row: its cells in `keys` order, and the sums of [`rollups::SUM_COLUMNS`]
    /// in `sums` read by name (the others 0).
    pub(super) fn report_row(
        row: &DB::Row,
        keys: &[GroupingKey],
        sums: std::ops::Range<usize>,
    ) -> Result<(Vec<Cell>, Sums), StoreError> {
        let cells = keys
            .iter()
            .enumerate()
            .map(|(i, key)| Self::read_cell(row, i, key))
            .collect::<Result<Vec<_>, _>>()?;
        let mut values = [0i64; 18];
        for i in sums {
            values[i] = row.try_get(rollups::SUM_COLUMNS[i])?;
        }
        Ok((cells, rollups::sums_from(values)))
    }

    /// Report rows read from a rollup over the plan's whole hours.
    pub(super) async fn rows_from_rollup(
        pool: &sqlx::Pool<DB>,
        sql: &ReportSql,
        plan: &rollups::Plan,
    ) -> Result<Vec<(Vec<Cell>, Sums)>, StoreError> {
        let rollup = &rollups::ROLLUPS[plan.rollup];
        let reading = |c: &crate::report::Column| crate::report::Column {
            sql: rollups::read_expression(rollup, &c.sql),
            ..c.clone()
        };
        let keys: Vec<GroupingKey> = sql
            .keys
            .iter()
            .map(|k| match k {
                GroupingKey::Column(c) => GroupingKey::Column(reading(c)),
                GroupingKey::Bucket => GroupingKey::Bucket,
            })
            .collect();
        let conditions: Vec<Condition> = sql
            .conditions
            .iter()
            .map(|c| Condition {
                column: reading(&c.column),
                ..c.clone()
            })
            .collect();
        let mut query: QueryBuilder<DB> = QueryBuilder::new("");
        Self::push_keys(&mut query, &keys, sql.bucket, "hour");
        // Only the sums the metrics read, like the query over the clicks; 0 for others.
        for (i, name) in rollups::SUM_COLUMNS.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            let needed = if i < rollups::CLICK_SUM_COLUMNS {
                i == 0 || sql.click_sums.contains(name)
            } else {
                sql.conversions
            };
            if needed {
                query.push("CAST(SUM(").push(*name).push(") AS BIGINT)");
            } else {
                query.push("CAST(0 AS BIGINT)");
            }
            query.push(" AS ").push(*name);
        }
        query.push(" FROM ").push(rollup.table);
        Self::push_conditions(&mut query, "hour", plan.from, plan.to, &conditions);
        if !keys.is_empty() {
            let positions: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
            query.push(" GROUP BY ").push(positions.join(", "));
        }
        query.push(" HAVING SUM(clicks) > 0");
        let rows = query.build().fetch_all(pool).await?;
        rows.iter()
            .map(|row| Self::report_row(row, &keys, 0..rollups::SUM_COLUMNS.len()))
            .collect()
    }
}

#[async_trait]
impl<DB> ReportStore for SqlStore<DB>
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

    async fn report_rows(&self, sql: &ReportSql) -> Result<Vec<(Vec<Cell>, Sums)>, StoreError> {
        let Some(plan) = rollups::plan(sql) else {
            return Self::rows_from_clicks(&self.pool, sql).await;
        };
        let mut out = Self::rows_from_rollup(&self.pool, sql, &plan).await?;
        for (from, to) in &plan.raw {
            let edge = ReportSql {
                from: *from,
                to: *to,
                ..sql.clone()
            };
            out.extend(Self::rows_from_clicks(&self.pool, &edge).await?);
        }
        Ok(out)
    }

    async fn report_rows_from_clicks(
        &self,
        sql: &ReportSql,
    ) -> Result<Vec<(Vec<Cell>, Sums)>, StoreError> {
        Self::rows_from_clicks(&self.pool, sql).await
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        for rollup in rollups::ROLLUPS {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {}", rollup.table)))
                .execute(&mut *tx)
                .await?;
        }
        Self::adjust_rollups(&mut tx, 1, rollups::Part::All, &|b| {
            b.push(" WHERE 1 = 1");
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn object_names(
        &self,
        table: &'static str,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let mut query: QueryBuilder<DB> = QueryBuilder::new("SELECT id, name FROM ");
            query.push(table).push(" WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            out.extend(
                query
                    .build_query_as::<(i64, String)>()
                    .fetch_all(&self.pool)
                    .await?,
            );
        }
        Ok(out)
    }

    async fn conversions_log(&self, query: &LogQuery) -> Result<(Vec<Vec<Cell>>, i64), StoreError> {
        let mut count: QueryBuilder<DB> = QueryBuilder::new("SELECT COUNT(*) FROM conversions");
        Self::push_conditions(
            &mut count,
            "created_at",
            query.from,
            query.to,
            &query.conditions,
        );
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let select = query
            .columns
            .iter()
            .map(|c| c.sql.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut page: QueryBuilder<DB> =
            QueryBuilder::new(format!("SELECT {select} FROM conversions"));
        Self::push_conditions(
            &mut page,
            "created_at",
            query.from,
            query.to,
            &query.conditions,
        );
        page.push(" ORDER BY ");
        for (column, descending) in &query.sort {
            page.push(column.sql.as_str())
                .push(if *descending { " DESC, " } else { " ASC, " });
        }
        page.push("id DESC LIMIT ")
            .push_bind(query.limit)
            .push(" OFFSET ")
            .push_bind(query.offset);
        let mut rows = Vec::new();
        for row in page.build().fetch_all(&self.pool).await? {
            let mut cells = Vec::with_capacity(query.columns.len());
            for (i, column) in query.columns.iter().enumerate() {
                cells.push(Self::read_cell(
                    &row,
                    i,
                    &GroupingKey::Column(column.clone()),
                )?);
            }
            rows.push(cells);
        }
        Ok((rows, total))
    }

    async fn labels(
        &self,
        campaign_id: i64,
        ref_name: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT ref_value, label FROM labels WHERE campaign_id = $1 AND ref_name = $2 ORDER BY ref_value",
        )
        .bind(campaign_id)
        .bind(ref_name.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_labels(
        &self,
        campaign_id: i64,
        ref_name: &str,
        items: &[(String, Option<String>)],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (value, label) in items {
            changed += match label {
                Some(label) => sqlx::query(
                    "INSERT INTO labels (campaign_id, ref_name, ref_value, label, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (campaign_id, ref_name, ref_value) DO UPDATE SET label = excluded.label",
                )
                .bind(campaign_id)
                .bind(ref_name.to_string())
                .bind(value.clone())
                .bind(label.clone())
                .bind(crate::model::unix_now())
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None => sqlx::query("DELETE FROM labels WHERE campaign_id = $1 AND ref_name = $2 AND ref_value = $3")
                    .bind(campaign_id)
                    .bind(ref_name.to_string())
                    .bind(value.clone())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
            };
        }
        tx.commit().await?;
        Ok(changed)
    }
}
