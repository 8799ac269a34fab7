//! Report rollups: the report sums ([`Sums`]) of every click and its conversions, added up
//! per hour and per a few dimensions, kept exact in the same transaction as every write that
//! changes them. `report/build` reads a rollup instead of the clicks when the request fits
//! one (its groupings and filters use only the rollup's dimensions, its time buckets are whole
//! hours); the hours at the unaligned edges of its range are read from the clicks.
//!
//! How each write keeps them exact (the SQL is in `reports.rs`, `rollup_impl`):
//! - new clicks from the recorder are added up here, in Rust, from the rows being inserted
//!   ([`add_clicks`]), and upserted (`+=`) in the insert's transaction; a batch in which some
//!   sub id already existed is redone with the general method below;
//! - every other write (a conversion, a landing click, costs, a deleted click, `clicks/clean`)
//!   subtracts the sums of the clicks it touches before it writes and adds them back after,
//!   both computed by SQL from those clicks, in the write's transaction.
//!
//! On PostgreSQL, writers of the second kind hold a transaction-level advisory lock
//! exclusively and the recorder holds it shared, so no click appears or changes between the
//! subtraction and the addition; SQLite serialises write transactions by itself.
//!
//! Dimensions are stored NOT NULL (ids as 0 for none, texts as '') so that the upserts find
//! their row through a unique index; reads turn id 0 back into NULL.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::config::Backend;
use crate::model::Click;
use crate::report::{Condition, GroupingKey, Operator, ReportSql, Sums};

use super::StoreError;
use super::click_insert::ROWS_PER_STATEMENT;

/// Which sums a write changes, so that its subtraction and addition touch only those:
/// a postback changes only conversion sums; a landing click or a cost only click sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Clicks,
    Conversions,
    All,
}

/// Seconds in a rollup's time slot.
pub(crate) const HOUR: i64 = 3_600;

/// A dimension of a rollup: a click column.
#[derive(Debug)]
pub(crate) struct Dim {
    pub column: &'static str,
    /// An id (stored as 0 for NULL) rather than a text.
    pub id: bool,
}

/// A rollup table and its dimensions (besides `hour`).
#[derive(Debug)]
pub(crate) struct Rollup {
    pub table: &'static str,
    pub dims: &'static [Dim],
}

const fn id(column: &'static str) -> Dim {
    Dim { column, id: true }
}

const fn text(column: &'static str) -> Dim {
    Dim { column, id: false }
}

/// The rollups, in the order a report tries them. Their tables are created by migration 5.
pub(crate) const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "rollup_routes",
        dims: &[
            id("campaign_id"),
            id("parent_campaign_id"),
            id("stream_id"),
            id("landing_id"),
            id("offer_id"),
            id("ts_id"),
        ],
    },
    Rollup {
        table: "rollup_geo",
        dims: &[
            id("campaign_id"),
            id("ts_id"),
            text("country_code"),
            text("country_name"),
        ],
    },
];

/// The sum columns of a rollup table, in [`sums_values`] order: first the click sums, then
/// the conversion sums ([`CLICK_SUM_COLUMNS`] of them are click sums).
pub(crate) const SUM_COLUMNS: [&str; 18] = [
    "clicks",
    "campaign_unique",
    "stream_unique",
    "global_unique",
    "bots",
    "proxies",
    "empty_referrers",
    "lp_clicks",
    "lp_seconds",
    "cost",
    "conversions",
    "leads",
    "sales",
    "rejected",
    "rebills",
    "lead_revenue",
    "sale_revenue",
    "rejected_revenue",
];

/// How many of [`SUM_COLUMNS`] are sums over clicks alone.
pub(crate) const CLICK_SUM_COLUMNS: usize = 10;

/// The values of [`SUM_COLUMNS`], in order.
pub(crate) fn sums_values(s: &Sums) -> [i64; 18] {
    [
        s.clicks,
        s.campaign_unique,
        s.stream_unique,
        s.global_unique,
        s.bots,
        s.proxies,
        s.empty_referrers,
        s.lp_clicks,
        s.lp_seconds,
        s.cost,
        s.conversions,
        s.leads,
        s.sales,
        s.rejected,
        s.rebills,
        s.lead_revenue,
        s.sale_revenue,
        s.rejected_revenue,
    ]
}

/// [`Sums`] from [`SUM_COLUMNS`] values.
pub(crate) fn sums_from(v: [i64; 18]) -> Sums {
    Sums {
        clicks: v[0],
        campaign_unique: v[1],
        stream_unique: v[2],
        global_unique: v[3],
        bots: v[4],
        proxies: v[5],
        empty_referrers: v[6],
        lp_clicks: v[7],
        lp_seconds: v[8],
        cost: v[9],
        conversions: v[10],
        leads: v[11],
        sales: v[12],
        rejected: v[13],
        rebills: v[14],
        lead_revenue: v[15],
        sale_revenue: v[16],
        rejected_revenue: v[17],
    }
}

/// The start of the hour of `at` (as SQL computes it: `created_at / 3600 * 3600`).
fn hour_of(at: i64) -> i64 {
    at / HOUR * HOUR
}

/// One dimension value of a rollup row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DimValue<'a> {
    Id(i64),
    Text(&'a str),
}

fn dim_value<'a>(click: &'a Click, column: &str) -> DimValue<'a> {
    let id = |v: Option<i64>| DimValue::Id(v.unwrap_or(0));
    match column {
        "campaign_id" => DimValue::Id(click.campaign_id),
        "parent_campaign_id" => id(click.parent_campaign_id),
        "stream_id" => id(click.stream_id),
        "landing_id" => id(click.landing_id),
        "offer_id" => id(click.offer_id),
        "ts_id" => id(click.ts_id),
        "country_code" => DimValue::Text(&click.country_code),
        "country_name" => DimValue::Text(&click.country_name),
        // A dimension this function does not know is a programming error that the
        // `every_dimension_is_read_from_clicks` test catches; never a panic at run time.
        _ => DimValue::Text(""),
    }
}

/// A rollup row's key: the hour and the dimension values.
pub(crate) type RowKey<'a> = (i64, Vec<DimValue<'a>>);

/// The sums new clicks add to `rollup`, per row, in key order (so that concurrent recorders,
/// one per tracker process, upsert shared rows in the same order and never deadlock). New
/// clicks have no conversions, no landing click, and the cost they were recorded with. A cost
/// sum that would overflow refuses the batch (the recorder then finds the click at fault).
pub(crate) fn add_clicks<'a>(
    rollup: &Rollup,
    clicks: &'a [Click],
) -> Result<Vec<(RowKey<'a>, Sums)>, StoreError> {
    let mut rows: HashMap<RowKey<'a>, Sums> = HashMap::new();
    for click in clicks {
        let key = (
            hour_of(click.created_at),
            rollup
                .dims
                .iter()
                .map(|d| dim_value(click, d.column))
                .collect(),
        );
        let sums = rows.entry(key).or_default();
        let flag = |b: bool| i64::from(b);
        sums.clicks += 1;
        sums.campaign_unique += flag(click.is_unique_campaign);
        sums.stream_unique += flag(click.is_unique_stream);
        sums.global_unique += flag(click.is_unique_global);
        sums.bots += flag(click.is_bot);
        sums.proxies += flag(click.is_using_proxy);
        sums.empty_referrers += flag(click.referrer.is_empty());
        sums.cost = sums.cost.checked_add(click.cost.micros()).ok_or_else(|| {
            StoreError::Refused(format!(
                "the cost of click {} overflows a report sum",
                click.sub_id
            ))
        })?;
    }
    let mut rows: Vec<(RowKey<'a>, Sums)> = rows.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(rows)
}

/// `INSERT INTO <table> (hour, dims, click sums) VALUES (…), … ON CONFLICT … DO UPDATE SET
/// sum = sum + excluded.sum` for `rows` rows (one of [`ROWS_PER_STATEMENT`]), built once.
pub(crate) fn upsert_statement(backend: Backend, rollup: usize, rows: usize) -> &'static str {
    type Texts = Vec<[[String; ROWS_PER_STATEMENT.len()]; 2]>;
    static TEXTS: OnceLock<Texts> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        ROLLUPS
            .iter()
            .map(|r| {
                [Backend::Sqlite, Backend::Postgres]
                    .map(|b| ROWS_PER_STATEMENT.map(|rows| build_upsert(b, r, rows)))
            })
            .collect()
    });
    let backend = usize::from(backend == Backend::Postgres);
    let at = ROWS_PER_STATEMENT
        .iter()
        .position(|r| *r == rows)
        .unwrap_or(ROWS_PER_STATEMENT.len() - 1);
    &texts[rollup.min(ROLLUPS.len() - 1)][backend][at]
}

/// The column list `hour, dim…`.
pub(crate) fn key_columns(rollup: &Rollup) -> String {
    let mut columns = vec!["hour"];
    columns.extend(rollup.dims.iter().map(|d| d.column));
    columns.join(", ")
}

/// ` ON CONFLICT (hour, dims) DO UPDATE SET s = t.s + excluded.s, …` over every sum.
pub(crate) fn on_conflict_add(rollup: &Rollup) -> String {
    let sets: Vec<String> = SUM_COLUMNS
        .iter()
        .map(|s| format!("{s} = {}.{s} + excluded.{s}", rollup.table))
        .collect();
    format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        key_columns(rollup),
        sets.join(", ")
    )
}

fn build_upsert(backend: Backend, rollup: &Rollup, rows: usize) -> String {
    let per_row = 1 + rollup.dims.len() + CLICK_SUM_COLUMNS;
    let mut sql = format!(
        "INSERT INTO {} ({}, {}) VALUES ",
        rollup.table,
        key_columns(rollup),
        SUM_COLUMNS[..CLICK_SUM_COLUMNS].join(", ")
    );
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..per_row {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${n}")),
            }
        }
        sql.push(')');
    }
    sql.push_str(&on_conflict_add(rollup));
    sql
}

/// Where a report reads its sums from: a rollup over whole hours, and the clicks over the
/// unaligned edges of the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// An index into [`ROLLUPS`].
    pub rollup: usize,
    /// The whole hours the rollup answers for.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Ranges read from the clicks.
    pub raw: Vec<(Option<i64>, Option<i64>)>,
}

/// The rollup that can answer `sql`, if any: every grouping column and filter column is one
/// of its dimensions (no label filters), time buckets are whole hours, and the range holds
/// at least one whole hour. Ranges that start or end in 1970's first hour or before read the
/// clicks: a rollup's hour of a click before 1970 is rounded towards zero, like the report's
/// buckets, not down like the range.
pub(crate) fn plan(sql: &ReportSql) -> Option<Plan> {
    if [sql.from, sql.to].iter().flatten().any(|t| *t < HOUR) {
        return None;
    }
    if let Some((offset, size)) = sql.bucket
        && sql.keys.contains(&GroupingKey::Bucket)
        && (size <= 0 || size % HOUR != 0 || offset % HOUR != 0)
    {
        return None;
    }
    let labels = |c: &Condition| matches!(c.operator, Operator::HasLabel | Operator::NotHasLabel);
    if sql.conditions.iter().any(labels) {
        return None;
    }
    let rollup = ROLLUPS.iter().position(|r| {
        let has = |column: &str| r.dims.iter().any(|d| d.column == column);
        sql.keys.iter().all(|k| match k {
            GroupingKey::Bucket => true,
            GroupingKey::Column(c) => has(&c.sql),
        }) && sql.conditions.iter().all(|c| has(&c.column.sql))
    })?;
    let from = sql
        .from
        .map(|t| t.div_euclid(HOUR) * HOUR + if t.rem_euclid(HOUR) == 0 { 0 } else { HOUR });
    let to = sql.to.map(|t| t.div_euclid(HOUR) * HOUR);
    if let (Some(a), Some(b)) = (from, to)
        && a >= b
    {
        return None;
    }
    let mut raw = Vec::new();
    if sql.from != from {
        raw.push((sql.from, from));
    }
    if sql.to != to {
        raw.push((to, sql.to));
    }
    Some(Plan {
        rollup,
        from,
        to,
        raw,
    })
}

/// The rollup's SQL expression for a click column: ids read back as NULL for 0.
pub(crate) fn read_expression(rollup: &Rollup, column: &str) -> String {
    match rollup.dims.iter().find(|d| d.column == column) {
        Some(d) if d.id => format!("NULLIF({column}, 0)"),
        _ => column.to_string(),
    }
}

/// The SQL that stores a click column as a rollup dimension: NULL ids as 0, NULL texts as ''.
pub(crate) fn store_expression(dim: &Dim) -> String {
    if dim.id {
        format!("COALESCE({}, 0)", dim.column)
    } else {
        format!("COALESCE({}, '')", dim.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Bound, Column, ColumnKind, column};

    fn sql(keys: Vec<GroupingKey>, bucket: Option<(i64, i64)>) -> ReportSql {
        ReportSql {
            keys,
            bucket,
            from: None,
            to: None,
            conditions: Vec::new(),
            click_sums: Vec::new(),
            conversions: true,
        }
    }

    fn key(name: &str) -> GroupingKey {
        GroupingKey::Column(column(name).unwrap())
    }

    #[test]
    fn the_click_sums_are_the_reports() {
        assert_eq!(
            &SUM_COLUMNS[1..CLICK_SUM_COLUMNS],
            crate::report::ALL_CLICK_SUMS
        );
        let mut every = Sums::default();
        every.add(&sums_from(std::array::from_fn(|i| i as i64 + 1)));
        assert_eq!(sums_values(&every), std::array::from_fn(|i| i as i64 + 1));
    }

    #[test]
    fn every_dimension_is_read_from_clicks() {
        let mut click = Click::blank();
        click.campaign_id = 1;
        click.parent_campaign_id = Some(2);
        click.stream_id = Some(3);
        click.landing_id = Some(4);
        click.offer_id = Some(5);
        click.ts_id = Some(6);
        click.country_code = "DE".into();
        click.country_name = "Germany".into();
        let mut seen = Vec::new();
        for rollup in ROLLUPS {
            for dim in rollup.dims {
                let value = dim_value(&click, dim.column);
                assert_ne!(value, DimValue::Text(""), "{}", dim.column);
                assert_eq!(matches!(value, DimValue::Id(_)), dim.id, "{}", dim.column);
                assert!(column(dim.column).is_some() || dim.column == "country_name");
                seen.push(value);
            }
        }
        assert!(seen.contains(&DimValue::Id(6)));
    }

    #[test]
    fn a_report_fits_the_first_rollup_with_its_columns() {
        let by_campaign_day = sql(
            vec![key("campaign_id"), GroupingKey::Bucket],
            Some((0, 86_400)),
        );
        assert_eq!(plan(&by_campaign_day).unwrap().rollup, 0);
        let by_country = sql(vec![key("campaign_id"), key("country")], None);
        assert_eq!(plan(&by_country).unwrap().rollup, 1);
        // A column no rollup has, or a bucket that is not whole hours.
        assert!(plan(&sql(vec![key("os")], None)).is_none());
        assert!(plan(&sql(vec![key("stream_id"), key("country")], None)).is_none());
        assert!(plan(&sql(vec![GroupingKey::Bucket], Some((1_800, 3_600)))).is_none());
        assert!(plan(&sql(vec![GroupingKey::Bucket], Some((0, 900)))).is_none());
        // Filters count as columns; label filters never fit.
        let mut filtered = sql(vec![key("campaign_id")], None);
        filtered.conditions.push(Condition {
            column: column("country_code").unwrap(),
            operator: Operator::Equals,
            values: vec![Bound::Text("DE".into())],
        });
        assert_eq!(plan(&filtered).unwrap().rollup, 1);
        filtered.conditions[0].operator = Operator::HasLabel;
        assert!(plan(&filtered).is_none());
        filtered.conditions[0] = Condition {
            column: Column {
                name: "datetime".into(),
                sql: "created_at".into(),
                kind: ColumnKind::Time,
            },
            operator: Operator::GreaterThan,
            values: vec![Bound::Int(5)],
        };
        assert!(plan(&filtered).is_none());
    }

    #[test]
    fn unaligned_edges_of_the_range_are_read_from_the_clicks() {
        let mut q = sql(vec![key("campaign_id")], None);
        q.from = Some(10 * HOUR + 5);
        q.to = Some(20 * HOUR + 7);
        let p = plan(&q).unwrap();
        assert_eq!((p.from, p.to), (Some(11 * HOUR), Some(20 * HOUR)));
        assert_eq!(
            p.raw,
            vec![
                (Some(10 * HOUR + 5), Some(11 * HOUR)),
                (Some(20 * HOUR), Some(20 * HOUR + 7))
            ]
        );
        q.from = Some(10 * HOUR);
        q.to = None;
        let p = plan(&q).unwrap();
        assert!(p.raw.is_empty());
        // Less than a whole hour: the clicks answer alone.
        q.from = Some(10 * HOUR + 1);
        q.to = Some(11 * HOUR + 1);
        assert!(plan(&q).is_none());
        // Ranges bounded in 1970's first hour or before read the clicks.
        q.from = Some(-5 * HOUR);
        q.to = Some(20 * HOUR);
        assert!(plan(&q).is_none());
        q.from = None;
        q.to = Some(HOUR - 1);
        assert!(plan(&q).is_none());
    }

    #[test]
    fn new_clicks_add_up_per_hour_and_dimensions() {
        let mut a = Click::blank();
        a.campaign_id = 1;
        a.created_at = 7_200 + 10;
        a.is_unique_campaign = true;
        a.cost = crate::model::Money::from_micros(5);
        let mut b = a.clone();
        b.is_bot = true;
        b.referrer = "https://r.test/".into();
        let mut c = a.clone();
        c.created_at = 10_800;
        let clicks = [a, b, c];
        let rows = add_clicks(&ROLLUPS[0], &clicks).unwrap();
        assert_eq!(rows.len(), 2);
        let first = rows.iter().find(|(k, _)| k.0 == 7_200).unwrap();
        assert_eq!(first.1.clicks, 2);
        assert_eq!(first.1.bots, 1);
        assert_eq!(first.1.empty_referrers, 1);
        assert_eq!(first.1.campaign_unique, 2);
        assert_eq!(first.1.cost, 10);
        assert_eq!(first.0.1[0], DimValue::Id(1));
        assert_eq!(first.0.1[2], DimValue::Id(0));

        let mut huge = clicks[0].clone();
        huge.cost = crate::model::Money::from_micros(i64::MAX - 1);
        let refused = add_clicks(&ROLLUPS[0], &[huge.clone(), huge]).unwrap_err();
        assert!(refused.is_about_the_data(), "{refused}");
    }

    #[test]
    fn upserts_bind_one_value_per_placeholder() {
        for (i, rollup) in ROLLUPS.iter().enumerate() {
            let per_row = 1 + rollup.dims.len() + CLICK_SUM_COLUMNS;
            for rows in ROWS_PER_STATEMENT {
                let sqlite = upsert_statement(Backend::Sqlite, i, rows);
                assert_eq!(sqlite.matches('?').count(), rows * per_row);
                let postgres = upsert_statement(Backend::Postgres, i, rows);
                assert!(postgres.contains(&format!("${})", rows * per_row)));
                assert!(!postgres.contains(&format!("${}", rows * per_row + 1)));
            }
        }
    }
}
