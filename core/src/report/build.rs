//! `report/build`: grouping (click columns, object names, time buckets in a time zone),
//! metrics, filters on columns (SQL, values bound) and on metrics (after aggregation), sort,
//! paging and the summary.
//!
//! The store adds up [`Sums`] per group of fixed SQL expressions; time buckets are grouped in
//! SQL as `(created_at + offset) / size` with both numbers bound, so the SQL text depends only
//! on the request's field names. Buckets are then turned into local days, hours, weeks … here
//! (with the zone's rules when the range crosses an offset change), groups merged, ratios
//! computed, sorted and paged, the same way for both backends.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::metrics::{Metric, Sums, metric};
use super::query::{error, parse_filters, parse_number, parse_sort, zone_and_range};
use super::{Cell, Column, ColumnKind, Condition, Operator, ReportError, column};

/// A time bucket of the click's time in the report's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBucket {
    /// `2026`
    Year,
    /// `2026-11`
    Month,
    /// ISO week, `2026-W47`
    Week,
    /// ISO weekday, 1 (Monday) to 7
    Weekday,
    /// `2026-11-21`
    Day,
    /// 0 to 23
    Hour,
    /// `2026-11-21 14:00`
    DayHour,
}

impl TimeBucket {
    fn parse(name: &str) -> Option<TimeBucket> {
        Some(match name {
            "year" => TimeBucket::Year,
            "month" => TimeBucket::Month,
            "week" => TimeBucket::Week,
            "weekday" => TimeBucket::Weekday,
            "day" => TimeBucket::Day,
            "hour" => TimeBucket::Hour,
            "day_hour" => TimeBucket::DayHour,
            _ => return None,
        })
    }

    fn needs_hours(self) -> bool {
        matches!(self, TimeBucket::Hour | TimeBucket::DayHour)
    }

    fn cell(self, local: NaiveDateTime) -> Cell {
        match self {
            TimeBucket::Year => Cell::Int(Some(i64::from(local.year()))),
            TimeBucket::Month => Cell::Text(local.format("%Y-%m").to_string()),
            TimeBucket::Week => Cell::Text(local.format("%G-W%V").to_string()),
            TimeBucket::Weekday => Cell::Int(Some(i64::from(local.weekday().number_from_monday()))),
            TimeBucket::Day => Cell::Text(local.format("%Y-%m-%d").to_string()),
            TimeBucket::Hour => Cell::Int(Some(i64::from(local.hour()))),
            TimeBucket::DayHour => Cell::Text(local.format("%Y-%m-%d %H:00").to_string()),
        }
    }
}

/// Tables whose names a grouping can show (by the click's id column).
const NAMED: &[(&str, &str, &str)] = &[
    ("campaign", "campaigns", "campaign_id"),
    ("parent_campaign", "campaigns", "parent_campaign_id"),
    ("stream", "streams", "stream_id"),
    ("landing", "landings", "landing_id"),
    ("offer", "offers", "offer_id"),
    ("ts", "traffic_sources", "ts_id"),
];

/// One grouping of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Grouping {
    /// A click column's value.
    Column(Column),
    /// The name of the object an id column points at (`campaign`, `offer`, …): grouped by
    /// the id, shown by name. `table` is fixed text from [`NAMED`].
    Name {
        name: String,
        table: &'static str,
        id: Column,
    },
    /// A time bucket of the click's time.
    Time { name: String, bucket: TimeBucket },
}

impl Grouping {
    pub fn name(&self) -> &str {
        match self {
            Grouping::Column(c) => &c.name,
            Grouping::Name { name, .. } | Grouping::Time { name, .. } => name,
        }
    }
}

/// An expression the store groups by.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupingKey {
    Column(Column),
    /// `(created_at + offset) / size` with [`ReportSql::bucket`]'s numbers bound.
    Bucket,
}

/// What the store runs: group keys, the time range and the column conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSql {
    pub keys: Vec<GroupingKey>,
    /// (offset, size) in seconds of the time bucket, when a key is [`GroupingKey::Bucket`].
    pub bucket: Option<(i64, i64)>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub conditions: Vec<Condition>,
    /// The click sums the metrics need (others are not computed); `clicks` always is.
    pub click_sums: Vec<&'static str>,
    /// Whether any metric reads conversions (else their aggregate is skipped).
    pub conversions: bool,
}

/// The click sums the store can compute besides `clicks`.
pub const ALL_CLICK_SUMS: &[&str] = &[
    "campaign_unique",
    "stream_unique",
    "global_unique",
    "bots",
    "proxies",
    "empty_referrers",
    "lp_clicks",
    "lp_seconds",
    "cost",
];

/// How bucket numbers become local times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BucketMode {
    /// The zone keeps one offset over the range: buckets are already local.
    Fixed,
    /// Buckets are UTC (hours, or quarter hours for zones with such offsets); each is turned
    /// into local time by the zone's rules.
    Zoned,
}

/// A filter on a metric, applied to the aggregated groups.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFilter {
    pub metric: Metric,
    pub operator: Operator,
    pub values: Vec<f64>,
}

impl MetricFilter {
    fn keeps(&self, s: &Sums) -> bool {
        let v = self.metric.value(s).number();
        let a = self.values.first().copied().unwrap_or(0.0);
        match self.operator {
            Operator::Equals => v == a,
            Operator::NotEqual => v != a,
            Operator::GreaterThan => v > a,
            Operator::LessThan => v < a,
            Operator::EqualsOrGreaterThan => v >= a,
            Operator::EqualsOrLessThan => v <= a,
            Operator::Between => v >= a && v <= self.values.get(1).copied().unwrap_or(a),
            Operator::InList => self.values.contains(&v),
            Operator::NotInList => !self.values.contains(&v),
            _ => true,
        }
    }
}

/// A sort key: a grouping (by position) or a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Grouping(usize),
    Metric(Metric),
}

/// A parsed `report/build` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    pub groupings: Vec<Grouping>,
    pub metrics: Vec<Metric>,
    pub timezone: Tz,
    pub sql: ReportSql,
    mode: BucketMode,
    pub metric_filters: Vec<MetricFilter>,
    pub sort: Vec<(SortKey, bool)>,
    pub limit: i64,
    pub offset: i64,
    pub summary: bool,
}

/// Names `report/build` accepts as groupings: click columns, named objects and time buckets.
pub fn grouping_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = NAMED.iter().map(|(n, _, _)| *n).collect();
    names.extend([
        "year", "month", "week", "weekday", "day", "hour", "day_hour",
    ]);
    names
}

/// The keys a `report/build` request may carry.
const REPORT_KEYS: &[&str] = &[
    "range", "timezone", "grouping", "metrics", "filters", "sort", "order", "summary", "limit",
    "offset",
];

/// Parses a `report/build` body. `now` is the current Unix time (for intervals).
pub fn parse_report_query(body: &Value, now: i64) -> Result<ReportQuery, ReportError> {
    if !body.is_object() {
        return Err(error("body", "must be a JSON object"));
    }
    super::query::only_known_keys(body, REPORT_KEYS)?;
    let (timezone, from, to) = zone_and_range(body, now)?;
    let names = |key: &str| -> Result<Vec<String>, ReportError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| error(format!("{key}[{i}]"), "must be a name"))
                })
                .collect(),
            Some(Value::String(s)) => Ok(s.split(',').map(|p| p.trim().to_string()).collect()),
            Some(_) => Err(error(key, "must be an array of names")),
        }
    };

    let mut groupings = Vec::new();
    for (i, name) in names("grouping")?.into_iter().enumerate() {
        let grouping = if let Some(bucket) = TimeBucket::parse(&name) {
            Grouping::Time { name, bucket }
        } else if let Some((_, table, id)) = NAMED.iter().find(|(n, _, _)| *n == name) {
            Grouping::Name {
                name,
                table,
                id: column(id).expect("named groupings use click columns"),
            }
        } else if let Some(column) = column(&name) {
            Grouping::Column(column)
        } else {
            return Err(error(
                format!("grouping[{i}]"),
                format!("unknown grouping `{name}`"),
            ));
        };
        if groupings
            .iter()
            .any(|g: &Grouping| g.name() == grouping.name())
        {
            return Err(error(
                format!("grouping[{i}]"),
                format!("`{}` is named twice", grouping.name()),
            ));
        }
        groupings.push(grouping);
    }

    let mut metrics = Vec::new();
    for (i, name) in names("metrics")?.into_iter().enumerate() {
        let m = metric(&name)
            .ok_or_else(|| error(format!("metrics[{i}]"), format!("unknown metric `{name}`")))?;
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    if metrics.is_empty() {
        metrics.push(metric("clicks").expect("clicks is a metric"));
    }

    let mut metric_filters = Vec::new();
    let conditions = parse_filters(body, true, timezone, column, |i, filter| {
        let name = filter.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(m) = metric(name) else {
            return Ok(false);
        };
        let field = |f: &str| format!("filters[{i}].{f}");
        let op_text = filter
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or("EQUALS");
        let operator = Operator::parse(op_text)
            .filter(|op| {
                matches!(
                    op,
                    Operator::Equals
                        | Operator::NotEqual
                        | Operator::GreaterThan
                        | Operator::LessThan
                        | Operator::EqualsOrGreaterThan
                        | Operator::EqualsOrLessThan
                        | Operator::Between
                        | Operator::InList
                        | Operator::NotInList
                )
            })
            .ok_or_else(|| {
                error(
                    field("operator"),
                    format!("`{op_text}` does not apply to the metric `{name}`"),
                )
            })?;
        let items: Vec<Value> = match filter.get("expression") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(s)) if s.contains(',') => {
                s.split(',').map(|p| Value::from(p.trim())).collect()
            }
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        let mut values = Vec::new();
        for item in &items {
            let number = item
                .as_f64()
                .or_else(|| item.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
                .filter(|n| n.is_finite())
                .ok_or_else(|| error(field("expression"), format!("`{item}` is not a number")))?;
            values.push(number);
        }
        let wanted = match operator {
            Operator::Between => values.len() == 2,
            Operator::InList | Operator::NotInList => !values.is_empty(),
            _ => values.len() == 1,
        };
        if !wanted {
            return Err(error(field("expression"), "has the wrong number of values"));
        }
        metric_filters.push(MetricFilter {
            metric: m,
            operator,
            values,
        });
        Ok(true)
    })?;

    let mut sort = Vec::new();
    for (i, (name, descending)) in parse_sort(body)?.into_iter().enumerate() {
        let key = if let Some(at) = groupings.iter().position(|g| g.name() == name) {
            SortKey::Grouping(at)
        } else if let Some(m) = metric(&name) {
            SortKey::Metric(m)
        } else {
            return Err(error(
                format!("sort[{i}].name"),
                format!("`{name}` is neither a grouping of this report nor a metric"),
            ));
        };
        sort.push((key, descending));
    }

    let summary = match body.get("summary") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) if v.as_i64().is_some() => v.as_i64() != Some(0),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        Some(_) => return Err(error("summary", "must be true or false")),
    };

    let mut keys = Vec::new();
    let mut has_time = false;
    let mut needs_hours = false;
    for grouping in &groupings {
        match grouping {
            Grouping::Column(c) | Grouping::Name { id: c, .. } => {
                keys.push(GroupingKey::Column(c.clone()))
            }
            Grouping::Time { bucket, .. } => {
                needs_hours |= bucket.needs_hours();
                if !has_time {
                    keys.push(GroupingKey::Bucket);
                }
                has_time = true;
            }
        }
    }
    let (bucket, mode) = if !has_time {
        (None, BucketMode::Fixed)
    } else if let Some(offset) = fixed_offset(timezone, from, to, now) {
        let size = if needs_hours { 3_600 } else { 86_400 };
        (Some((offset, size)), BucketMode::Fixed)
    } else {
        let offset = offset_at(timezone, now);
        let size = if offset % 3_600 == 0 { 3_600 } else { 900 };
        (Some((0, size)), BucketMode::Zoned)
    };

    let read: Vec<&Metric> = metrics
        .iter()
        .chain(metric_filters.iter().map(|f| &f.metric))
        .chain(sort.iter().filter_map(|(k, _)| match k {
            SortKey::Metric(m) => Some(m),
            SortKey::Grouping(_) => None,
        }))
        .collect();
    let click_sums: Vec<&'static str> = ALL_CLICK_SUMS
        .iter()
        .copied()
        .filter(|sum| read.iter().any(|m| m.click_sums().contains(sum)))
        .collect();
    let conversions = read.iter().any(|m| m.needs_conversions());
    Ok(ReportQuery {
        groupings,
        metrics,
        timezone,
        sql: ReportSql {
            keys,
            bucket,
            from,
            to,
            conditions,
            click_sums,
            conversions,
        },
        mode,
        metric_filters,
        sort,
        limit: parse_number(body, "limit", 1_000, 100_000)?,
        offset: parse_number(body, "offset", 0, i64::from(i32::MAX))?,
        summary,
    })
}

fn offset_at(tz: Tz, at: i64) -> i64 {
    tz.timestamp_opt(at, 0)
        .single()
        .map(|t| i64::from(t.offset().fix().local_minus_utc()))
        .unwrap_or(0)
}

/// The zone's offset if it is the same all over the range (an open end reaches 1970 or 2100),
/// sampled densely enough to see any daylight-saving period.
fn fixed_offset(tz: Tz, from: Option<i64>, to: Option<i64>, now: i64) -> Option<i64> {
    let start = from.unwrap_or(0);
    let end = to.unwrap_or(4_102_444_800).max(now.min(4_102_444_800));
    let first = offset_at(tz, start);
    let step = ((end - start) / 4_000).max(3 * 3_600);
    let mut at = start;
    while at < end {
        if offset_at(tz, at) != first {
            return None;
        }
        at += step;
    }
    (offset_at(tz, end) == first).then_some(first)
}

/// One group of the answer: its shown key and its sums.
type Groups = BTreeMap<Vec<Cell>, Sums>;

impl ReportQuery {
    /// Ids per named table that the answer needs names for.
    pub fn named_ids(&self, rows: &[(Vec<Cell>, Sums)]) -> Vec<(&'static str, Vec<i64>)> {
        let mut out: Vec<(&'static str, Vec<i64>)> = Vec::new();
        for (at, key) in self.sql.keys.iter().enumerate() {
            let GroupingKey::Column(c) = key else {
                continue;
            };
            let Some(Grouping::Name { table, .. }) = self
                .groupings
                .iter()
                .find(|g| matches!(g, Grouping::Name { id, .. } if id == c))
            else {
                continue;
            };
            let mut ids: Vec<i64> = rows
                .iter()
                .filter_map(|(cells, _)| match cells.get(at) {
                    Some(Cell::Int(Some(id))) => Some(*id),
                    _ => None,
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            match out.iter_mut().find(|(t, _)| t == table) {
                Some((_, known)) => {
                    known.extend(ids);
                    known.sort_unstable();
                    known.dedup();
                }
                None => out.push((table, ids)),
            }
        }
        out
    }

    fn local_time(&self, bucket: i64) -> NaiveDateTime {
        let (_, size) = self.sql.bucket.unwrap_or((0, 86_400));
        let at = bucket.saturating_mul(size);
        match self.mode {
            BucketMode::Fixed => DateTime::from_timestamp(at, 0)
                .map(|t| t.naive_utc())
                .unwrap_or_default(),
            BucketMode::Zoned => self
                .timezone
                .timestamp_opt(at, 0)
                .single()
                .map(|t| t.naive_local())
                .unwrap_or_default(),
        }
    }

    /// Merges the store's rows into the report's groups (shown keys).
    pub fn groups(
        &self,
        rows: Vec<(Vec<Cell>, Sums)>,
        names: &HashMap<(&'static str, i64), String>,
    ) -> Groups {
        let bucket_at = self.sql.keys.iter().position(|k| *k == GroupingKey::Bucket);
        // Where each column grouping's cell is among the store's keys (found once, not per row).
        let positions: Vec<usize> = self
            .groupings
            .iter()
            .map(|g| match g {
                Grouping::Column(c) | Grouping::Name { id: c, .. } => self
                    .sql
                    .keys
                    .iter()
                    .position(|k| matches!(k, GroupingKey::Column(k) if k == c))
                    .unwrap_or(0),
                Grouping::Time { .. } => 0,
            })
            .collect();
        // The time cells of each bucket, computed once per bucket (rows share few buckets).
        let mut times: HashMap<i64, Vec<Cell>> = HashMap::new();
        let mut groups = Groups::new();
        for (cells, sums) in rows {
            let time_cells = bucket_at.and_then(|at| match cells.get(at) {
                Some(Cell::Int(Some(b))) => Some(&*times.entry(*b).or_insert_with(|| {
                    let local = self.local_time(*b);
                    self.groupings
                        .iter()
                        .map(|g| match g {
                            Grouping::Time { bucket, .. } => bucket.cell(local),
                            _ => Cell::Text(String::new()),
                        })
                        .collect()
                })),
                _ => None,
            });
            let key: Vec<Cell> = self
                .groupings
                .iter()
                .enumerate()
                .map(|(i, g)| match g {
                    Grouping::Time { .. } => time_cells
                        .map(|t| t[i].clone())
                        .unwrap_or(Cell::Text(String::new())),
                    Grouping::Column(_) | Grouping::Name { .. } => {
                        let cell = cells
                            .get(positions[i])
                            .cloned()
                            .unwrap_or(Cell::Text(String::new()));
                        match (g, &cell) {
                            (Grouping::Name { table, .. }, Cell::Int(Some(id))) => Cell::Text(
                                names
                                    .get(&(*table, *id))
                                    .cloned()
                                    .unwrap_or_else(|| format!("#{id}")),
                            ),
                            (Grouping::Name { .. }, _) => Cell::Text(String::new()),
                            _ => cell,
                        }
                    }
                })
                .collect();
            groups.entry(key).or_default().add(&sums);
        }
        groups
    }

    /// The answer: `{rows, total, summary?}` from the store's rows and the names of objects.
    pub fn answer(
        &self,
        rows: Vec<(Vec<Cell>, Sums)>,
        names: &HashMap<(&'static str, i64), String>,
    ) -> Value {
        let groups = self.groups(rows, names);
        let mut kept: Vec<(Vec<Cell>, Sums)> = groups
            .into_iter()
            .filter(|(_, s)| self.metric_filters.iter().all(|f| f.keeps(s)))
            .collect();
        // Groups come sorted by key (ascending); sort keys then reorder stably.
        kept.sort_by(|(ka, sa), (kb, sb)| {
            for (key, descending) in &self.sort {
                let order = match key {
                    SortKey::Grouping(at) => ka.get(*at).cmp(&kb.get(*at)),
                    SortKey::Metric(m) => m.value(sa).number().total_cmp(&m.value(sb).number()),
                };
                let order = if *descending { order.reverse() } else { order };
                if order.is_ne() {
                    return order;
                }
            }
            std::cmp::Ordering::Equal
        });
        let total = kept.len();
        let mut summary = Sums::default();
        for (_, s) in &kept {
            summary.add(s);
        }
        let shown: Vec<Value> = kept
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(0))
            .take(usize::try_from(self.limit).unwrap_or(0))
            .map(|(key, sums)| {
                let mut row = Map::new();
                for (g, cell) in self.groupings.iter().zip(key) {
                    row.insert(g.name().to_string(), cell.to_json(self.timezone));
                }
                for m in &self.metrics {
                    row.insert(m.name.to_string(), m.value(&sums).to_json());
                }
                Value::Object(row)
            })
            .collect();
        let mut answer = json!({ "rows": shown, "total": total });
        if self.summary {
            let mut row = Map::new();
            for m in &self.metrics {
                row.insert(m.name.to_string(), m.value(&summary).to_json());
            }
            answer["summary"] = Value::Object(row);
        }
        answer
    }
}

/// The kind of a grouping's column, for `report/definition`.
pub fn column_kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "string",
        ColumnKind::Int => "integer",
        ColumnKind::Bool => "boolean",
        ColumnKind::Money => "money",
        ColumnKind::Time => "datetime",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_264_000; // 2026-11-21 09:46:40 UTC

    #[test]
    fn parses_groupings_metrics_and_metric_filters() {
        let q = parse_report_query(
            &json!({
                "range": {"from": "2026-11-01", "to": "2026-11-20", "timezone": "Europe/Madrid"},
                "grouping": ["campaign", "country", "day"],
                "metrics": ["clicks", "cr", "roi"],
                "filters": [
                    {"name": "country_code", "operator": "EQUALS", "expression": "DE"},
                    {"name": "clicks", "operator": "GREATER_THAN", "expression": 10}
                ],
                "sort": [{"name": "roi", "order": "desc"}],
                "summary": true
            }),
            NOW,
        )
        .unwrap();
        assert_eq!(q.sql.keys.len(), 3);
        // No offset change between 1 and 21 November in Madrid: local days in SQL.
        assert_eq!(q.sql.bucket, Some((3_600, 86_400)));
        assert_eq!(q.sql.conditions.len(), 1);
        assert_eq!(q.metric_filters.len(), 1);
        assert!(q.summary);
        // Across the October change the buckets are UTC hours.
        let q = parse_report_query(
            &json!({"range": {"from": "2026-10-01", "to": "2026-11-20", "timezone": "Europe/Madrid"}, "grouping": ["day"]}),
            NOW,
        )
        .unwrap();
        assert_eq!(q.sql.bucket, Some((0, 3_600)));
    }

    #[test]
    fn unknown_names_are_named() {
        for (body, field) in [
            (json!({"grouping": ["nope"]}), "grouping[0]"),
            (json!({"metrics": ["clicks", "bogus"]}), "metrics[1]"),
            (
                json!({"filters": [{"name": "bogus", "operator": "EQUALS", "expression": 1}]}),
                "filters[0].name",
            ),
            (
                json!({"filters": [{"name": "cr", "operator": "CONTAINS", "expression": 1}]}),
                "filters[0].operator",
            ),
            (json!({"sort": [{"name": "city"}]}), "sort[0].name"),
        ] {
            let e = parse_report_query(&body, NOW).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
    }

    #[test]
    fn zoned_buckets_become_local_days() {
        let q = parse_report_query(
            &json!({"range": {"interval": "all_time", "timezone": "Europe/Berlin"}, "grouping": ["day", "hour"], "metrics": ["clicks"]}),
            NOW,
        )
        .unwrap();
        assert_eq!(q.sql.bucket, Some((0, 3_600)));
        // 2026-11-20 23:30 UTC is 2026-11-21 00:30 in Berlin.
        let bucket = 1_795_217_400_i64 / 3_600;
        let rows = vec![(
            vec![Cell::Int(Some(bucket))],
            Sums {
                clicks: 2,
                ..Sums::default()
            },
        )];
        let answer = q.answer(rows, &HashMap::new());
        assert_eq!(answer["rows"][0]["day"], "2026-11-21");
        assert_eq!(answer["rows"][0]["hour"], 0);
        assert_eq!(answer["rows"][0]["clicks"], 2);
    }
}
