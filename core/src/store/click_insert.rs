//! The click insert's SQL and values, shared by both backends (`insert_click_rows` in
//! `sql.rs` runs them).
//!
//! Why it is shaped this way (measured with `bench/callgrind.sh`): a batch is split into
//! statements of a fixed set of row counts ([`ROWS_PER_STATEMENT`]), so there are only four
//! statement texts per backend, built once, and the per-connection statement cache of sqlx
//! finds them prepared. Before, every batch built a text for its own size; SQLite re-parsed a
//! 90-row, 7 920-parameter statement for nearly every batch, which was a third of the
//! recording's cost. Values are visited in place (no per-click `Vec`). Most text columns are
//! empty on most clicks (sub_id_N, extra_param_N, utm_*, …): the statement reads every text
//! value as `COALESCE(?, '')`, and an empty text is bound as NULL, which neither side has to
//! allocate or copy; the stored value is the same ''.

use std::sync::OnceLock;

use crate::config::Backend;
use crate::model::{Click, EXTRA_PARAM_COUNT, SUB_ID_COUNT};

/// Row counts of the insert statements, largest first; a batch of n clicks runs as a greedy
/// sum of these (200 = 3 × 64 + 2 × 4). 64 rows × 88 columns stays below SQLite's parameter
/// limit and far below PostgreSQL's 65 535.
pub(crate) const ROWS_PER_STATEMENT: [usize; 4] = [64, 16, 4, 1];

/// How many columns [`click_columns`] lists (and values [`for_each_click_value`] gives).
pub(crate) const CLICK_COLUMN_COUNT: usize = 9 + 33 + SUB_ID_COUNT + EXTRA_PARAM_COUNT + 9;

/// For each column of [`click_columns`], whether it holds text (taken from the values
/// [`for_each_click_value`] gives, so the two cannot disagree).
fn text_columns() -> Vec<bool> {
    let mut kinds = Vec::new();
    for_each_click_value(&Click::blank(), |value| {
        kinds.push(matches!(value, ClickValue::Text(_)));
    });
    kinds
}

/// The click columns in insert order; [`for_each_click_value`] visits values in exactly this
/// order.
pub(crate) fn click_columns() -> Vec<String> {
    let mut columns: Vec<String> = [
        "sub_id",
        "visitor_code",
        "campaign_id",
        "parent_campaign_id",
        "stream_id",
        "landing_id",
        "offer_id",
        "ts_id",
        "created_at",
        "ip",
        "user_agent",
        "referrer",
        "language",
        "country_code",
        "region",
        "city",
        "isp",
        "operator",
        "connection_type",
        "device_type",
        "device_model",
        "device_brand",
        "os",
        "os_version",
        "browser",
        "browser_version",
        "source",
        "keyword",
        "search_engine",
        "x_requested_with",
        "ad_campaign_id",
        "external_id",
        "creative_id",
        "destination",
        "country_name",
        "region_code",
        "request_url",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    columns.extend((1..=SUB_ID_COUNT).map(|i| format!("sub_id_{i}")));
    columns.extend((1..=EXTRA_PARAM_COUNT).map(|i| format!("extra_param_{i}")));
    columns.extend(
        [
            "is_unique_campaign",
            "is_unique_stream",
            "is_unique_global",
            "is_bot",
            "is_using_proxy",
            "cost_micros",
            "params",
            "latitude",
            "longitude",
        ]
        .iter()
        .map(|c| c.to_string()),
    );
    columns
}

/// One click value to bind, borrowed from the click.
pub(crate) enum ClickValue<'a> {
    Text(&'a str),
    Int(i64),
    OptInt(Option<i64>),
    OptFloat(Option<f64>),
    Bool(bool),
}

/// Calls `bind` with the click's values in [`click_columns`] order.
pub(crate) fn for_each_click_value<'a>(click: &'a Click, mut bind: impl FnMut(ClickValue<'a>)) {
    use ClickValue::{Bool, Int, OptFloat, OptInt, Text};
    bind(Text(&click.sub_id));
    bind(Text(&click.visitor_code));
    bind(Int(click.campaign_id));
    bind(OptInt(click.parent_campaign_id));
    bind(OptInt(click.stream_id));
    bind(OptInt(click.landing_id));
    bind(OptInt(click.offer_id));
    bind(OptInt(click.ts_id));
    bind(Int(click.created_at));
    for text in [
        &click.ip,
        &click.user_agent,
        &click.referrer,
        &click.language,
        &click.country_code,
        &click.region,
        &click.city,
        &click.isp,
        &click.operator,
        &click.connection_type,
        &click.device_type,
        &click.device_model,
        &click.device_brand,
        &click.os,
        &click.os_version,
        &click.browser,
        &click.browser_version,
        &click.source,
        &click.keyword,
        &click.search_engine,
        &click.x_requested_with,
        &click.ad_campaign_id,
        &click.external_id,
        &click.creative_id,
        &click.destination,
        &click.country_name,
        &click.region_code,
        &click.request_url,
        &click.utm_source,
        &click.utm_medium,
        &click.utm_campaign,
        &click.utm_term,
        &click.utm_content,
    ] {
        bind(Text(text));
    }
    for i in 0..SUB_ID_COUNT {
        bind(Text(click.sub_ids.get(i).map_or("", String::as_str)));
    }
    for i in 0..EXTRA_PARAM_COUNT {
        bind(Text(click.extra_params.get(i).map_or("", String::as_str)));
    }
    bind(Bool(click.is_unique_campaign));
    bind(Bool(click.is_unique_stream));
    bind(Bool(click.is_unique_global));
    bind(Bool(click.is_bot));
    bind(Bool(click.is_using_proxy));
    bind(Int(click.cost.micros()));
    bind(Text(&click.params));
    bind(OptFloat(click.latitude));
    bind(OptFloat(click.longitude));
}

/// The row counts of the statements that insert `n` clicks, largest first.
pub(crate) fn statement_rows(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let rows = ROWS_PER_STATEMENT.into_iter().find(|rows| *rows <= n)?;
        n -= rows;
        Some(rows)
    })
}

/// `INSERT INTO clicks (…) VALUES (…), … ON CONFLICT (sub_id) DO NOTHING` for `rows` rows
/// (one of [`ROWS_PER_STATEMENT`]), built once per process. SQLite gets anonymous `?`
/// placeholders (sqlx binds them without looking up a parameter name), PostgreSQL `$N`.
pub(crate) fn insert_statement(backend: Backend, rows: usize) -> &'static str {
    static TEXTS: OnceLock<[[String; ROWS_PER_STATEMENT.len()]; 2]> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        let build = |backend: Backend| ROWS_PER_STATEMENT.map(|rows| build_insert(backend, rows));
        [build(Backend::Sqlite), build(Backend::Postgres)]
    });
    let set = match backend {
        Backend::Sqlite => &texts[0],
        Backend::Postgres => &texts[1],
    };
    let at = ROWS_PER_STATEMENT
        .iter()
        .position(|r| *r == rows)
        .expect("insert_statement takes one of ROWS_PER_STATEMENT");
    &set[at]
}

fn build_insert(backend: Backend, rows: usize) -> String {
    use std::fmt::Write;
    let columns = click_columns();
    let texts = text_columns();
    let mut sql = format!("INSERT INTO clicks ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for (column, &text) in texts.iter().enumerate() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if text {
                sql.push_str("COALESCE(");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${n}");
                }
            }
            if text {
                sql.push_str(", '')");
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (sub_id) DO NOTHING");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_the_fixed_sizes() {
        let split = |n| statement_rows(n).collect::<Vec<_>>();
        assert_eq!(split(0), Vec::<usize>::new());
        assert_eq!(split(1), vec![1]);
        assert_eq!(split(200), vec![64, 64, 64, 4, 4]);
        assert_eq!(split(63), vec![16, 16, 16, 4, 4, 4, 1, 1, 1]);
        for n in 0..300 {
            assert_eq!(statement_rows(n).sum::<usize>(), n);
        }
    }

    #[test]
    fn every_column_gets_one_value_and_one_placeholder() {
        let click = Click::blank();
        let mut values = 0;
        for_each_click_value(&click, |_| values += 1);
        assert_eq!(values, click_columns().len());
        assert_eq!(values, CLICK_COLUMN_COUNT);
        for rows in ROWS_PER_STATEMENT {
            let sqlite = insert_statement(Backend::Sqlite, rows);
            assert_eq!(sqlite.matches('?').count(), rows * values);
            let postgres = insert_statement(Backend::Postgres, rows);
            assert!(postgres.contains(&format!("${}) ON CONFLICT", rows * values)));
            assert!(!postgres.contains(&format!("${}", rows * values + 1)));
        }
    }

    #[test]
    fn text_values_go_to_the_coalesced_placeholders() {
        let columns = click_columns();
        let texts = text_columns();
        assert_eq!(texts.len(), columns.len());
        let text = |name: &str| texts[columns.iter().position(|c| c == name).unwrap()];
        for name in [
            "sub_id",
            "visitor_code",
            "ip",
            "sub_id_30",
            "extra_param_10",
            "params",
        ] {
            assert!(text(name), "{name}");
        }
        for name in [
            "campaign_id",
            "created_at",
            "is_bot",
            "cost_micros",
            "longitude",
        ] {
            assert!(!text(name), "{name}");
        }
        let sql = insert_statement(Backend::Sqlite, 1);
        assert_eq!(
            sql.matches("COALESCE(?, '')").count(),
            texts.iter().filter(|t| **t).count()
        );
    }
}
