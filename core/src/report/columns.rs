//! The click columns a report may select, filter and sort by: Keitaro's names mapped onto the
//! `clicks` table (from the click schema, `model::CLICK_FIELDS`). Only these names ever reach
//! SQL.

use crate::model::{CLICK_FIELDS, ReportKind};

/// How a column's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    Int,
    Bool,
    /// Micro-units in the database, a decimal in answers.
    Money,
    /// Unix seconds in the database, `YYYY-MM-DD HH:MM:SS` in the report's time zone in answers.
    Time,
}

/// A selectable column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Keitaro's name (`sub_id`, `country_code`, `datetime`, …).
    pub name: String,
    /// The SQL expression over `clicks` (fixed text from this file, never from a request).
    pub sql: String,
    pub kind: ColumnKind,
}

/// The click columns reports may use: those the click schema (`model::CLICK_FIELDS`) gives a
/// report name, and the profit computed from two of them.
fn click_columns() -> &'static [(&'static str, &'static str, ColumnKind)] {
    static COLUMNS: std::sync::OnceLock<Vec<(&str, &str, ColumnKind)>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let mut columns: Vec<_> = CLICK_FIELDS
            .iter()
            .filter_map(|field| {
                let (name, kind) = field.report?;
                let kind = match kind {
                    ReportKind::Text => ColumnKind::Text,
                    ReportKind::Int => ColumnKind::Int,
                    ReportKind::Bool => ColumnKind::Bool,
                    ReportKind::Money => ColumnKind::Money,
                    ReportKind::Time => ColumnKind::Time,
                };
                Some((name, field.column, kind))
            })
            .collect();
        columns.push((
            "profit",
            "(revenue_micros - cost_micros)",
            ColumnKind::Money,
        ));
        columns
    })
}

/// The columns of `conversions/log` (over the `conversions` table). `datetime` and
/// `postback_datetime` are when the postback arrived, `click_datetime` the click's time.
const CONVERSION: &[(&str, &str, ColumnKind)] = &[
    ("conversion_id", "id", ColumnKind::Int),
    ("sub_id", "sub_id", ColumnKind::Text),
    ("tid", "tid", ColumnKind::Text),
    ("status", "status", ColumnKind::Text),
    ("previous_status", "previous_status", ColumnKind::Text),
    ("original_status", "original_status", ColumnKind::Text),
    ("revenue", "revenue_micros", ColumnKind::Money),
    ("cost", "cost_micros", ColumnKind::Money),
    (
        "profit",
        "(revenue_micros - cost_micros)",
        ColumnKind::Money,
    ),
    ("currency", "currency", ColumnKind::Text),
    ("click_id", "click_id", ColumnKind::Int),
    ("campaign_id", "campaign_id", ColumnKind::Int),
    ("stream_id", "stream_id", ColumnKind::Int),
    ("landing_id", "landing_id", ColumnKind::Int),
    ("offer_id", "offer_id", ColumnKind::Int),
    ("ts_id", "ts_id", ColumnKind::Int),
    (
        "affiliate_network_id",
        "affiliate_network_id",
        ColumnKind::Int,
    ),
    ("datetime", "created_at", ColumnKind::Time),
    ("postback_datetime", "created_at", ColumnKind::Time),
    ("click_datetime", "click_created_at", ColumnKind::Time),
    ("params", "params", ColumnKind::Text),
];

/// The conversion column named `name`, if `conversions/log` may use it.
pub fn conversion_column(name: &str) -> Option<Column> {
    CONVERSION
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(name, sql, kind)| Column {
            name: name.to_string(),
            sql: sql.to_string(),
            kind: *kind,
        })
}

/// The column named `name`, if reports may use it.
pub fn column(name: &str) -> Option<Column> {
    if let Some((name, sql, kind)) = click_columns().iter().find(|(n, _, _)| *n == name) {
        return Some(Column {
            name: name.to_string(),
            sql: sql.to_string(),
            kind: *kind,
        });
    }
    let numbered = |prefix: &str, count: usize| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=count).contains(n))
            .map(|n| format!("{prefix}{n}"))
    };
    numbered("sub_id_", crate::model::SUB_ID_COUNT)
        .or_else(|| numbered("extra_param_", crate::model::EXTRA_PARAM_COUNT))
        .map(|sql| Column {
            name: sql.clone(),
            sql,
            kind: ColumnKind::Text,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names reports have always accepted, each with its SQL and kind: the schema-derived
    /// list must give exactly these (a new reportable field is added here on purpose).
    #[test]
    fn the_report_columns_are_the_documented_ones() {
        use ColumnKind::{Bool, Int, Money, Text, Time};
        let expected = [
            ("click_id", "id", Int),
            ("sub_id", "sub_id", Text),
            ("visitor_code", "visitor_code", Text),
            ("campaign_id", "campaign_id", Int),
            ("parent_campaign_id", "parent_campaign_id", Int),
            ("stream_id", "stream_id", Int),
            ("landing_id", "landing_id", Int),
            ("offer_id", "offer_id", Int),
            ("ts_id", "ts_id", Int),
            ("datetime", "created_at", Time),
            ("landing_clicked_datetime", "landing_clicked_at", Time),
            ("ip", "ip", Text),
            ("user_agent", "user_agent", Text),
            ("referrer", "referrer", Text),
            ("language", "language", Text),
            ("country_code", "country_code", Text),
            ("country", "country_name", Text),
            ("region", "region", Text),
            ("city", "city", Text),
            ("isp", "isp", Text),
            ("operator", "operator", Text),
            ("connection_type", "connection_type", Text),
            ("device_type", "device_type", Text),
            ("device_model", "device_model", Text),
            ("os", "os", Text),
            ("os_version", "os_version", Text),
            ("browser", "browser", Text),
            ("browser_version", "browser_version", Text),
            ("source", "source", Text),
            ("keyword", "keyword", Text),
            ("search_engine", "search_engine", Text),
            ("x_requested_with", "x_requested_with", Text),
            ("ad_campaign_id", "ad_campaign_id", Text),
            ("external_id", "external_id", Text),
            ("creative_id", "creative_id", Text),
            ("destination", "destination", Text),
            ("is_unique_campaign", "is_unique_campaign", Bool),
            ("is_unique_stream", "is_unique_stream", Bool),
            ("is_unique_global", "is_unique_global", Bool),
            ("is_bot", "is_bot", Bool),
            ("is_using_proxy", "is_using_proxy", Bool),
            ("is_lead", "is_lead", Bool),
            ("is_sale", "is_sale", Bool),
            ("is_rejected", "is_rejected", Bool),
            ("cost", "cost_micros", Money),
            ("revenue", "revenue_micros", Money),
            ("profit", "(revenue_micros - cost_micros)", Money),
        ];
        let mut got: Vec<_> = click_columns().to_vec();
        let mut want: Vec<_> = expected.to_vec();
        got.sort_by_key(|(name, _, _)| *name);
        want.sort_by_key(|(name, _, _)| *name);
        assert_eq!(got, want);
    }

    #[test]
    fn only_whitelisted_names_resolve() {
        assert_eq!(column("country").unwrap().sql, "country_name");
        assert_eq!(column("sub_id_30").unwrap().sql, "sub_id_30");
        for bad in [
            "sub_id_31",
            "sub_id_0",
            "extra_param_11",
            "id; DROP TABLE clicks",
            "params",
            "",
        ] {
            assert!(column(bad).is_none(), "{bad}");
        }
        for bad in ["sub_id_1", "id; DROP TABLE conversions", "", "country"] {
            assert!(conversion_column(bad).is_none(), "{bad}");
        }
        assert_eq!(
            conversion_column("click_datetime").unwrap().sql,
            "click_created_at"
        );
    }
}
