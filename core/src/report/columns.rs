//! The click columns a report may select, filter and sort by: Keitaro's names mapped onto the
//! `clicks` table. Only these names ever reach SQL.

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

const FIXED: &[(&str, &str, ColumnKind)] = &[
    ("click_id", "id", ColumnKind::Int),
    ("sub_id", "sub_id", ColumnKind::Text),
    ("visitor_code", "visitor_code", ColumnKind::Text),
    ("campaign_id", "campaign_id", ColumnKind::Int),
    ("parent_campaign_id", "parent_campaign_id", ColumnKind::Int),
    ("stream_id", "stream_id", ColumnKind::Int),
    ("landing_id", "landing_id", ColumnKind::Int),
    ("offer_id", "offer_id", ColumnKind::Int),
    ("ts_id", "ts_id", ColumnKind::Int),
    ("datetime", "created_at", ColumnKind::Time),
    (
        "landing_clicked_datetime",
        "landing_clicked_at",
        ColumnKind::Time,
    ),
    ("ip", "ip", ColumnKind::Text),
    ("user_agent", "user_agent", ColumnKind::Text),
    ("referrer", "referrer", ColumnKind::Text),
    ("language", "language", ColumnKind::Text),
    ("country_code", "country_code", ColumnKind::Text),
    ("country", "country_name", ColumnKind::Text),
    ("region", "region", ColumnKind::Text),
    ("city", "city", ColumnKind::Text),
    ("isp", "isp", ColumnKind::Text),
    ("operator", "operator", ColumnKind::Text),
    ("connection_type", "connection_type", ColumnKind::Text),
    ("device_type", "device_type", ColumnKind::Text),
    ("device_model", "device_model", ColumnKind::Text),
    ("os", "os", ColumnKind::Text),
    ("os_version", "os_version", ColumnKind::Text),
    ("browser", "browser", ColumnKind::Text),
    ("browser_version", "browser_version", ColumnKind::Text),
    ("source", "source", ColumnKind::Text),
    ("keyword", "keyword", ColumnKind::Text),
    ("search_engine", "search_engine", ColumnKind::Text),
    ("x_requested_with", "x_requested_with", ColumnKind::Text),
    ("ad_campaign_id", "ad_campaign_id", ColumnKind::Text),
    ("external_id", "external_id", ColumnKind::Text),
    ("creative_id", "creative_id", ColumnKind::Text),
    ("destination", "destination", ColumnKind::Text),
    ("is_unique_campaign", "is_unique_campaign", ColumnKind::Bool),
    ("is_unique_stream", "is_unique_stream", ColumnKind::Bool),
    ("is_unique_global", "is_unique_global", ColumnKind::Bool),
    ("is_bot", "is_bot", ColumnKind::Bool),
    ("is_using_proxy", "is_using_proxy", ColumnKind::Bool),
    ("is_lead", "is_lead", ColumnKind::Bool),
    ("is_sale", "is_sale", ColumnKind::Bool),
    ("is_rejected", "is_rejected", ColumnKind::Bool),
    ("cost", "cost_micros", ColumnKind::Money),
    ("revenue", "revenue_micros", ColumnKind::Money),
    (
        "profit",
        "(revenue_micros - cost_micros)",
        ColumnKind::Money,
    ),
];

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
    if let Some((name, sql, kind)) = FIXED.iter().find(|(n, _, _)| *n == name) {
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
