//! Parsing a click-log request (Keitaro's `clicks/log` body) into a typed query. Every column
//! name is checked against the whitelist and every value is typed here; the store binds the
//! values, so request text never becomes SQL.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use super::{Column, ColumnKind, column};
use crate::model::Money;

/// A problem with a report request: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ReportError {
    pub field: String,
    pub message: String,
}

pub(crate) fn error(field: impl Into<String>, message: impl Into<String>) -> ReportError {
    ReportError {
        field: field.into(),
        message: message.into(),
    }
}

/// Keitaro's filter operators (`HAS_LABEL`/`NOT_HAS_LABEL` take a label and apply to label refs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEqual,
    GreaterThan,
    LessThan,
    EqualsOrGreaterThan,
    EqualsOrLessThan,
    Contains,
    NotContain,
    BeginsWith,
    EndsWith,
    InList,
    NotInList,
    Between,
    IsSet,
    IsNotSet,
    IsTrue,
    IsFalse,
    /// A regular expression of the `regex` crate's syntax (linear time, size-limited); the
    /// operand is the pattern, with `(?i)` in front for a `/…/i` expression.
    MatchRegexp,
    NotMatchRegexp,
    /// The value has this label (`whitelist`, `blacklist`) in the click's campaign; operands:
    /// the label and the ref name. Only on the label ref names of clicks.
    HasLabel,
    NotHasLabel,
}

/// Every filter operator by its Keitaro name (`report/definition` lists these).
pub const OPERATORS: &[(&str, Operator)] = &[
    ("EQUALS", Operator::Equals),
    ("NOT_EQUAL", Operator::NotEqual),
    ("GREATER_THAN", Operator::GreaterThan),
    ("LESS_THAN", Operator::LessThan),
    ("EQUALS_OR_GREATER_THAN", Operator::EqualsOrGreaterThan),
    ("EQUALS_OR_LESS_THAN", Operator::EqualsOrLessThan),
    ("CONTAINS", Operator::Contains),
    ("NOT_CONTAIN", Operator::NotContain),
    ("BEGINS_WITH", Operator::BeginsWith),
    ("ENDS_WITH", Operator::EndsWith),
    ("IN_LIST", Operator::InList),
    ("NOT_IN_LIST", Operator::NotInList),
    ("BETWEEN", Operator::Between),
    ("IS_SET", Operator::IsSet),
    ("IS_NOT_SET", Operator::IsNotSet),
    ("IS_TRUE", Operator::IsTrue),
    ("IS_FALSE", Operator::IsFalse),
    ("MATCH_REGEXP", Operator::MatchRegexp),
    ("NOT_MATCH_REGEXP", Operator::NotMatchRegexp),
    ("HAS_LABEL", Operator::HasLabel),
    ("NOT_HAS_LABEL", Operator::NotHasLabel),
];

impl Operator {
    pub(crate) fn parse(text: &str) -> Option<Operator> {
        OPERATORS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, operator)| *operator)
    }
}

/// A typed value to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// One filter: a column, an operator and its typed operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub column: Column,
    pub operator: Operator,
    pub values: Vec<Bound>,
}

/// A click-log query.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    pub columns: Vec<Column>,
    /// Clicks at or after `from` (Unix seconds).
    pub from: Option<i64>,
    /// Clicks before `to` (Unix seconds).
    pub to: Option<i64>,
    pub timezone: Tz,
    pub conditions: Vec<Condition>,
    /// (column, descending)
    pub sort: Vec<(Column, bool)>,
    pub limit: i64,
    pub offset: i64,
}

const DEFAULT_COLUMNS: &[&str] = &[
    "datetime",
    "sub_id",
    "campaign_id",
    "stream_id",
    "ip",
    "country_code",
    "device_type",
    "keyword",
    "source",
];

/// The keys a `clicks/log` or `conversions/log` request may carry.
const LOG_KEYS: &[&str] = &[
    "range", "timezone", "columns", "filters", "sort", "order", "limit", "offset",
];

/// Refuses a key of `body` that this request does not read, naming it: a field a client sent
/// is never silently dropped.
pub(crate) fn only_known_keys(body: &Value, known: &[&str]) -> Result<(), ReportError> {
    let Some(fields) = body.as_object() else {
        return Ok(());
    };
    match fields.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(error(
            key.as_str(),
            format!(
                "is not a field of this request (it takes {})",
                known.join(", ")
            ),
        )),
    }
}

/// Parses a `clicks/log` body: `range` {from, to, timezone} or {interval, timezone}, `columns`,
/// `filters` [{name, operator, expression}], `sort` (or `order`) [{name, order}], `limit`,
/// `offset`. `now` is the current Unix time (for intervals).
pub fn parse_log_query(body: &Value, now: i64) -> Result<LogQuery, ReportError> {
    parse_log_query_of(body, now, column, DEFAULT_COLUMNS, "click_id")
}

const DEFAULT_CONVERSION_COLUMNS: &[&str] = &[
    "postback_datetime",
    "sub_id",
    "tid",
    "status",
    "original_status",
    "revenue",
    "campaign_id",
    "offer_id",
];

/// Parses a `conversions/log` body: like [`parse_log_query`] over the conversion columns
/// (`range` selects by the time the postback arrived).
pub fn parse_conversion_log_query(body: &Value, now: i64) -> Result<LogQuery, ReportError> {
    parse_log_query_of(
        body,
        now,
        super::conversion_column,
        DEFAULT_CONVERSION_COLUMNS,
        "conversion_id",
    )
}

/// The request's time zone (`range.timezone`, else `timezone`, else UTC) and range.
pub(crate) fn zone_and_range(
    body: &Value,
    now: i64,
) -> Result<(Tz, Option<i64>, Option<i64>), ReportError> {
    let range = body.get("range").cloned().unwrap_or(Value::Null);
    if !(range.is_object() || range.is_null()) {
        return Err(error("range", "must be an object"));
    }
    let timezone: Tz = match range
        .get("timezone")
        .or(body.get("timezone"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        None => chrono_tz::UTC,
        Some(name) => name
            .parse()
            .map_err(|_| error("range.timezone", format!("`{name}` is not a time zone")))?,
    };
    let (from, to) = time_range(&range, timezone, now)?;
    Ok((timezone, from, to))
}

/// Parses the `filters` of a request whose names `resolve` knows.
/// Names labels are kept for.
pub const LABEL_REFS: &str =
    "ip, source, ad_campaign_id, creative_id, keyword, external_id, sub_id_1..sub_id_30";

/// Whether `name` is a ref name of labels.
pub fn is_label_ref(name: &str) -> bool {
    matches!(
        name,
        "ip" | "source" | "ad_campaign_id" | "creative_id" | "keyword" | "external_id"
    ) || name
        .strip_prefix("sub_id_")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| (1..=crate::model::SUB_ID_COUNT).contains(&n))
}

pub(crate) fn parse_filters(
    body: &Value,
    labels: bool,
    timezone: Tz,
    resolve: impl Fn(&str) -> Option<Column>,
    mut other: impl FnMut(usize, &Value) -> Result<bool, ReportError>,
) -> Result<Vec<Condition>, ReportError> {
    let filters = match body.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(error(
                "filters",
                "must be an array of {name, operator, expression}",
            ));
        }
    };
    let mut conditions = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let field = |f: &str| format!("filters[{i}].{f}");
        let name = filter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| error(field("name"), "is required"))?;
        let Some(column) = resolve(name) else {
            if other(i, filter)? {
                continue;
            }
            return Err(error(field("name"), format!("unknown column `{name}`")));
        };
        let op_text = filter
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or("EQUALS");
        if matches!(op_text, "HAS_LABEL" | "NOT_HAS_LABEL")
            && !(labels && is_label_ref(&column.name))
        {
            return Err(error(
                field("operator"),
                format!("`{op_text}` applies to the label names ({LABEL_REFS}), not `{name}`"),
            ));
        }
        let operator = Operator::parse(op_text)
            .ok_or_else(|| error(field("operator"), format!("unknown operator `{op_text}`")))?;
        let expression = filter.get("expression").cloned().unwrap_or(Value::Null);
        let values = operands(&column, operator, &expression, timezone)
            .map_err(|m| error(field("expression"), m))?;
        conditions.push(Condition {
            column,
            operator,
            values,
        });
    }
    Ok(conditions)
}

/// `sort` (or `order`): one {name, order} or an array of them, as (name, descending).
pub(crate) fn parse_sort(body: &Value) -> Result<Vec<(String, bool)>, ReportError> {
    let items = body
        .get("sort")
        .or(body.get("order"))
        .cloned()
        .unwrap_or(Value::Null);
    let items = match items {
        Value::Object(_) => vec![items],
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => return Err(error("sort", "must be an array of {name, order}")),
    };
    let mut sort = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| error(format!("sort[{i}].name"), "is required"))?;
        let descending = match item
            .get("order")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(other) => {
                return Err(error(
                    format!("sort[{i}].order"),
                    format!("must be ASC or DESC, not `{other}`"),
                ));
            }
        };
        sort.push((name.to_string(), descending));
    }
    Ok(sort)
}

/// `limit` and `offset`: whole numbers (or their text) within bounds.
pub(crate) fn parse_number(
    body: &Value,
    key: &str,
    default: i64,
    max: i64,
) -> Result<i64, ReportError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| (0..=max).contains(n))
            .ok_or_else(|| error(key, format!("must be a whole number from 0 to {max}"))),
    }
}

fn parse_log_query_of(
    body: &Value,
    now: i64,
    column: fn(&str) -> Option<Column>,
    default_columns: &[&str],
    default_sort: &str,
) -> Result<LogQuery, ReportError> {
    if !body.is_object() {
        return Err(error("body", "must be a JSON object"));
    }
    only_known_keys(body, LOG_KEYS)?;
    let (timezone, from, to) = zone_and_range(body, now)?;

    let columns = match body.get("columns") {
        None | Some(Value::Null) => default_columns.iter().filter_map(|c| column(c)).collect(),
        Some(Value::Array(names)) => {
            let mut columns = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let name = name
                    .as_str()
                    .ok_or_else(|| error(format!("columns[{i}]"), "must be a column name"))?;
                columns.push(column(name).ok_or_else(|| {
                    error(format!("columns[{i}]"), format!("unknown column `{name}`"))
                })?);
            }
            if columns.is_empty() {
                return Err(error("columns", "name at least one column"));
            }
            columns
        }
        Some(_) => return Err(error("columns", "must be an array of column names")),
    };

    let labels = default_sort == "click_id";
    let conditions = parse_filters(body, labels, timezone, column, |_, _| Ok(false))?;
    let mut sort = Vec::new();
    for (i, (name, descending)) in parse_sort(body)?.into_iter().enumerate() {
        let column = column(&name).ok_or_else(|| {
            error(
                format!("sort[{i}].name"),
                format!("unknown column `{name}`"),
            )
        })?;
        sort.push((column, descending));
    }
    if sort.is_empty() {
        sort.push((
            column(default_sort).expect("the default sort is a column"),
            true,
        ));
    }
    let number = |key: &str, default: i64, max: i64| parse_number(body, key, default, max);
    Ok(LogQuery {
        columns,
        from,
        to,
        timezone,
        conditions,
        sort,
        limit: number("limit", 100, 10_000)?,
        offset: number("offset", 0, i64::from(i32::MAX))?,
    })
}

pub(crate) fn local(tz: Tz, at: NaiveDateTime) -> Option<i64> {
    tz.from_local_datetime(&at)
        .earliest()
        .map(|t| t.timestamp())
}

/// The named `range.interval`s (what `report/definition` lists; a test holds every one to
/// parse).
pub const INTERVALS: &[&str] = &[
    "today",
    "yesterday",
    "7_days_ago",
    "first_day_of_this_week",
    "1_month_ago",
    "first_day_of_this_month",
    "1_year_ago",
    "first_day_of_this_year",
    "all_time",
];

/// `range`: explicit `from`/`to` (a date includes its whole day) or a named `interval`.
fn time_range(range: &Value, tz: Tz, now: i64) -> Result<(Option<i64>, Option<i64>), ReportError> {
    let today = tz
        .timestamp_opt(now, 0)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let day_start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).and_then(|t| local(tz, t));
    if let Some(interval) = range.get("interval").and_then(Value::as_str) {
        let start = match interval {
            "all_time" => return Ok((None, None)),
            "today" => today,
            "yesterday" => {
                let day = today - Duration::days(1);
                return Ok((day_start(day), day_start(today)));
            }
            "7_days_ago" => today - Duration::days(6),
            "first_day_of_this_week" => {
                today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
            }
            "1_month_ago" => today
                .checked_sub_months(chrono::Months::new(1))
                .unwrap_or(today),
            "first_day_of_this_month" => today.with_day(1).unwrap_or(today),
            "1_year_ago" => today
                .checked_sub_months(chrono::Months::new(12))
                .unwrap_or(today),
            "first_day_of_this_year" => today.with_ordinal(1).unwrap_or(today),
            other => {
                return Err(error(
                    "range.interval",
                    format!(
                        "unknown interval `{other}` (one of {})",
                        INTERVALS.join(", ")
                    ),
                ));
            }
        };
        return Ok((day_start(start), None));
    }
    let moment = |key: &str, end: bool| -> Result<Option<i64>, ReportError> {
        let Some(text) = range
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        else {
            return Ok(None);
        };
        let text = text.trim();
        let bad = || {
            error(
                format!("range.{key}"),
                format!(
                    "`{text}` is not a date (YYYY-MM-DD) or date and time (YYYY-MM-DD HH:MM[:SS])"
                ),
            )
        };
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let date = if end {
                date.succ_opt().ok_or_else(bad)?
            } else {
                date
            };
            return Ok(day_start(date));
        }
        let at = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .ok_or_else(bad)?;
        Ok(local(tz, at))
    };
    Ok((moment("from", false)?, moment("to", true)?))
}

/// Types the operands of a filter by its column.
pub(crate) fn operands(
    column: &Column,
    operator: Operator,
    expression: &Value,
    tz: Tz,
) -> Result<Vec<Bound>, String> {
    use Operator::*;
    let items: Vec<String> = match expression {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        Value::Null => Vec::new(),
        Value::String(s) if matches!(operator, InList | NotInList | Between) => {
            s.split(',').map(|p| p.trim().to_string()).collect()
        }
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    let typed =
        |text: &str| -> Result<Bound, String> {
            match column.kind {
                ColumnKind::Text => Ok(Bound::Text(text.to_string())),
                ColumnKind::Int => text.trim().parse().map(Bound::Int).map_err(|_| {
                    format!("`{text}` is not a whole number (column `{}`)", column.name)
                }),
                ColumnKind::Money => text
                    .parse::<Money>()
                    .map(|m| Bound::Int(m.micros()))
                    .map_err(|e| e.to_string()),
                ColumnKind::Bool => match text.trim() {
                    "1" | "true" => Ok(Bound::Bool(true)),
                    "0" | "false" => Ok(Bound::Bool(false)),
                    other => Err(format!("`{other}` is not a boolean")),
                },
                ColumnKind::Time => ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(text.trim(), f).ok())
                    .or_else(|| {
                        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                            .ok()
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                    })
                    .and_then(|at| local(tz, at))
                    .map(Bound::Int)
                    .ok_or_else(|| format!("`{text}` is not a date and time")),
            }
        };
    match operator {
        IsSet | IsNotSet => Ok(Vec::new()),
        IsTrue | IsFalse => {
            if column.kind != ColumnKind::Bool {
                return Err(format!(
                    "IS_TRUE and IS_FALSE apply to flag columns, not `{}`",
                    column.name
                ));
            }
            Ok(vec![Bound::Bool(operator == IsTrue)])
        }
        HasLabel | NotHasLabel => {
            let label = items
                .first()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .ok_or("needs a label (whitelist or blacklist)")?;
            Ok(vec![Bound::Text(label), Bound::Text(column.name.clone())])
        }
        MatchRegexp | NotMatchRegexp => {
            if column.kind != ColumnKind::Text {
                return Err(format!(
                    "regular expressions apply to text columns, not `{}`",
                    column.name
                ));
            }
            let text = items.first().cloned().ok_or("needs a value")?;
            Ok(vec![Bound::Text(regex_pattern(&text)?)])
        }
        Contains | NotContain | BeginsWith | EndsWith => {
            if column.kind != ColumnKind::Text {
                return Err(format!(
                    "text operators apply to text columns, not `{}`",
                    column.name
                ));
            }
            let text = items.first().cloned().ok_or("needs a value")?;
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            Ok(vec![Bound::Text(match operator {
                BeginsWith => format!("{escaped}%"),
                EndsWith => format!("%{escaped}"),
                _ => format!("%{escaped}%"),
            })])
        }
        InList | NotInList => {
            if items.is_empty() || items.len() > 1_000 {
                return Err("needs between 1 and 1000 values".into());
            }
            items.iter().map(|i| typed(i)).collect()
        }
        Between => {
            if items.len() != 2 {
                return Err("BETWEEN needs two values".into());
            }
            items.iter().map(|i| typed(i)).collect()
        }
        _ => {
            let text = items.first().ok_or("needs a value")?;
            Ok(vec![typed(text)?])
        }
    }
}

/// Longest regular expression a filter may use.
const MAX_REGEX_LEN: usize = 1_000;

/// A filter's regular expression as the database runs it: `/pattern/flags` (Keitaro's form,
/// flags `i`, `m`, `s`, `u`, `x` ignored but `i`) or a bare pattern, checked by the `regex` crate
/// with size limits so that the SQLite `REGEXP` function (the same crate) never compiles
/// anything large.
pub(crate) fn regex_pattern(text: &str) -> Result<String, String> {
    let mut pattern = text.trim();
    let mut insensitive = false;
    if pattern.len() >= 2
        && pattern.starts_with('/')
        && let Some(end) = pattern.rfind('/')
        && end > 0
    {
        let flags = &pattern[end + 1..];
        if flags.chars().all(|c| "imsux".contains(c)) {
            insensitive = flags.contains('i');
            pattern = &pattern[1..end];
        }
    }
    if pattern.is_empty() {
        return Err("needs a regular expression".into());
    }
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!(
            "the regular expression is longer than {MAX_REGEX_LEN} characters"
        ));
    }
    let full = if insensitive {
        format!("(?i){pattern}")
    } else {
        pattern.to_string()
    };
    regex::RegexBuilder::new(&full)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(32)
        .build()
        .map_err(|e| format!("`{pattern}` is not a valid regular expression: {e}"))?;
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    /// A key the request does not read is refused by name, never dropped.
    #[test]
    fn an_unknown_key_is_named() {
        let refused =
            parse_log_query(&json!({"columns": ["sub_id"], "colums": ["ip"]}), 0).unwrap_err();
        assert_eq!(refused.field, "colums", "{refused:?}");
        let refused =
            crate::report::parse_report_query(&json!({"dimensions": ["country"]}), 0).unwrap_err();
        assert_eq!(refused.field, "dimensions", "{refused:?}");
        crate::report::parse_report_query(
            &json!({"grouping": ["country"], "metrics": ["clicks"], "range": {"interval": "today"},
                    "filters": [], "sort": [], "summary": true, "limit": 5, "offset": 0}),
            0,
        )
        .unwrap();
    }

    const NOW: i64 = 1_795_264_000; // 2026-11-21 09:46:40 UTC

    #[test]
    fn parses_a_full_request() {
        let query = parse_log_query(
            &json!({
                "range": {"from": "2026-11-01", "to": "2026-11-20", "timezone": "Europe/Berlin"},
                "columns": ["sub_id", "country_code", "cost"],
                "filters": [
                    {"name": "country_code", "operator": "IN_LIST", "expression": ["GB", "DE"]},
                    {"name": "keyword", "operator": "CONTAINS", "expression": "50%_off"},
                    {"name": "is_bot", "operator": "IS_FALSE"},
                    {"name": "cost", "operator": "EQUALS_OR_GREATER_THAN", "expression": "0.5"}
                ],
                "order": [{"name": "datetime", "order": "desc"}],
                "limit": 10
            }),
            NOW,
        )
        .unwrap();
        assert_eq!(query.columns.len(), 3);
        assert_eq!(query.from, Some(1_793_487_600)); // 2026-11-01 00:00 CET
        assert_eq!(query.to, Some(1_795_215_600)); // 2026-11-21 00:00 CET (the 20th included)
        assert_eq!(
            query.conditions[1].values,
            vec![Bound::Text("%50\\%\\_off%".into())]
        );
        assert_eq!(query.conditions[3].values, vec![Bound::Int(500_000)]);
        assert_eq!(query.sort[0].0.name, "datetime");
        assert!(query.sort[0].1);
    }

    #[test]
    fn unknown_names_and_bad_values_are_named() {
        for (body, field) in [
            (json!({"columns": ["nope"]}), "columns[0]"),
            (
                json!({"filters": [{"name": "x; DROP", "operator": "EQUALS", "expression": "1"}]}),
                "filters[0].name",
            ),
            (
                json!({"filters": [{"name": "ip", "operator": "LIKE", "expression": "1"}]}),
                "filters[0].operator",
            ),
            (
                json!({"filters": [{"name": "campaign_id", "operator": "EQUALS", "expression": "abc"}]}),
                "filters[0].expression",
            ),
            (
                json!({"filters": [{"name": "ip", "operator": "MATCH_REGEXP", "expression": "(a"}]}),
                "filters[0].expression",
            ),
            (
                json!({"filters": [{"name": "country", "operator": "HAS_LABEL", "expression": "white"}]}),
                "filters[0].operator",
            ),
            (
                json!({"range": {"interval": "fortnight"}}),
                "range.interval",
            ),
            (
                json!({"range": {"timezone": "Mars/Olympus"}}),
                "range.timezone",
            ),
            (json!({"limit": -1}), "limit"),
            (
                json!({"sort": [{"name": "ip", "order": "sideways"}]}),
                "sort[0].order",
            ),
        ] {
            let error = parse_log_query(&body, NOW).unwrap_err();
            assert_eq!(error.field, field, "{body}: {error}");
        }
    }

    #[test]
    fn intervals() {
        let range = |interval: &str| {
            parse_log_query(&json!({"range": {"interval": interval}}), NOW).unwrap()
        };
        assert_eq!(range("today").from, Some(1_795_219_200));
        let yesterday = range("yesterday");
        assert_eq!(
            (yesterday.from, yesterday.to),
            (Some(1_795_132_800), Some(1_795_219_200))
        );
        assert_eq!(range("all_time").from, None);
        assert_eq!(range("first_day_of_this_month").from, Some(1_793_491_200));
        for interval in INTERVALS {
            let body = json!({"range": {"interval": interval}});
            assert!(parse_log_query(&body, NOW).is_ok(), "{interval}");
        }
        let unknown = parse_log_query(&json!({"range": {"interval": "fortnight"}}), NOW);
        assert_eq!(unknown.unwrap_err().field, "range.interval");
    }
}
