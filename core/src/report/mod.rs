//! Reports over clicks and conversions: a typed query (columns and filters from a whitelist,
//! values always bound) that the store compiles to SQL for SQLite and PostgreSQL: the click
//! and conversion logs (`clicks/log`, `conversions/log`) and `report/build` (grouping, time
//! buckets in a time zone, metrics; `build.rs`, `metrics.rs`).

mod build;
mod columns;
mod metrics;
mod query;

pub use build::{
    ALL_CLICK_SUMS, Grouping, GroupingKey, MetricFilter, ReportQuery, ReportSql, SortKey,
    TimeBucket, column_kind_name, grouping_names, parse_report_query,
};
pub use columns::{Column, ColumnKind, column, conversion_column};
pub use metrics::{METRICS, Metric, MetricKind, MetricValue, Sums, metric};
pub use query::{
    Bound, Condition, INTERVALS, LABEL_REFS, LogQuery, OPERATORS, Operator, ReportError,
    is_label_ref, parse_conversion_log_query, parse_log_query,
};

/// Unix seconds of a local time in `tz` (the earlier one when it is ambiguous).
pub fn local_time(tz: chrono_tz::Tz, at: chrono::NaiveDateTime) -> Option<i64> {
    query::local(tz, at)
}

/// One value of a report row, as the store read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cell {
    Text(String),
    Int(Option<i64>),
    Bool(bool),
    /// Micro-units.
    Money(i64),
    /// Unix seconds.
    Time(Option<i64>),
}

impl Cell {
    /// The cell as an answer shows it: times as `YYYY-MM-DD HH:MM:SS` in `timezone`, money as
    /// a decimal number.
    pub fn to_json(&self, timezone: chrono_tz::Tz) -> serde_json::Value {
        use chrono::TimeZone;
        use serde_json::Value;
        match self {
            Cell::Text(text) => Value::String(text.clone()),
            Cell::Int(number) => number.map(Value::from).unwrap_or(Value::Null),
            Cell::Bool(flag) => Value::Bool(*flag),
            Cell::Money(micros) => serde_json::to_value(crate::model::Money::from_micros(*micros))
                .unwrap_or(Value::Null),
            Cell::Time(at) => at
                .and_then(|t| timezone.timestamp_opt(t, 0).single())
                .map(|t| Value::String(t.format("%Y-%m-%d %H:%M:%S").to_string()))
                .unwrap_or(Value::Null),
        }
    }
}
