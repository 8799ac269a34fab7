//! What reports need from the store ([`ReportStore`]): report aggregates, the conversion log,
//! the received- and sent-postback logs, labels, costs and cleaning (recording conversions is
//! `conversions.rs`), implemented once for both backends on `SqlStore<DB>`; only the
//! regular-expression operator differs (`REGEXP`, backed by the `regex` crate on SQLite, `~` on
//! PostgreSQL).

use std::sync::Arc;

use sqlx::{ColumnIndex, Encode, Executor, Type};

use super::sql_store::{RowsAffected, Sql, SqlDb, SqlStore};
use sqlx::{QueryBuilder, Row};

use crate::config::Backend;
use crate::report::{Bound, ColumnKind, Condition, GroupingKey, Operator};
use crate::store::rollups;

use async_trait::async_trait;

use crate::model::Money;
use crate::report::{Cell, LogQuery, ReportSql, Sums};

use super::StoreError;

/// A conversion's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConversionStatus {
    Lead,
    Sale,
    Rejected,
    Rebill,
}

impl ConversionStatus {
    pub const ALL: [ConversionStatus; 4] = [
        ConversionStatus::Lead,
        ConversionStatus::Sale,
        ConversionStatus::Rejected,
        ConversionStatus::Rebill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Lead => "lead",
            ConversionStatus::Sale => "sale",
            ConversionStatus::Rejected => "rejected",
            ConversionStatus::Rebill => "rebill",
        }
    }

    pub fn parse(text: &str) -> Option<ConversionStatus> {
        ConversionStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// The statuses a conversion may move to this one from: lead -> sale, lead -> rejected,
    /// sale -> rejected, rebill -> rejected. Nothing leaves `rejected`.
    pub fn predecessors(self) -> &'static [ConversionStatus] {
        match self {
            ConversionStatus::Sale => &[ConversionStatus::Lead],
            ConversionStatus::Rejected => &[
                ConversionStatus::Lead,
                ConversionStatus::Sale,
                ConversionStatus::Rebill,
            ],
            ConversionStatus::Lead | ConversionStatus::Rebill => &[],
        }
    }
}

/// What a postback needs to know about its click (and the click's offer).
#[derive(Debug, Clone, PartialEq)]
pub struct PostbackClick {
    pub click_id: i64,
    pub sub_id: String,
    pub campaign_id: i64,
    pub stream_id: Option<i64>,
    pub landing_id: Option<i64>,
    pub offer_id: Option<i64>,
    pub ts_id: Option<i64>,
    pub created_at: i64,
    pub affiliate_network_id: Option<i64>,
    /// The offer's payout (used when the postback names none) and its currency.
    pub payout: Money,
    pub payout_currency: String,
    /// The offer accepts several conversions per click (upsells, rebills), told apart by tid.
    pub upsell: bool,
}

/// A conversion to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversion {
    pub click: PostbackClick,
    /// The key of the conversion with its sub id: the transaction id for offers with upsells
    /// and for rebills, else "" (one conversion per click).
    pub tid: String,
    pub status: ConversionStatus,
    /// The status word the network sent.
    pub original_status: String,
    /// In the tracker's currency, when the postback named a payout. A transition without one
    /// keeps the conversion's revenue.
    pub revenue: Option<Money>,
    /// The revenue of a new conversion without a payout (the offer's).
    pub default_revenue: Money,
    pub cost: Money,
    /// The currency the network paid in.
    pub currency: String,
    /// `sub_id_N` values to set on the click: (N, value).
    pub sub_id_updates: Vec<(usize, String)>,
    /// The postback's parameters (JSON), for the logs.
    pub params: String,
    pub at: i64,
}

/// What recording a conversion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionOutcome {
    /// A new conversion.
    Accepted { id: i64 },
    /// The conversion moved from `from` to the new status.
    Transition { id: i64, from: ConversionStatus },
    /// The same conversion in the same status: nothing changed.
    Duplicate { id: i64 },
    /// A change the status rules forbid (`sale` -> `lead`, anything after `rejected`).
    Ignored { id: i64, current: ConversionStatus },
}

impl ConversionOutcome {
    pub fn name(self) -> &'static str {
        match self {
            ConversionOutcome::Accepted { .. } => "accepted",
            ConversionOutcome::Transition { .. } => "transition",
            ConversionOutcome::Duplicate { .. } => "duplicate",
            ConversionOutcome::Ignored { .. } => "ignored",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            ConversionOutcome::Accepted { id }
            | ConversionOutcome::Transition { id, .. }
            | ConversionOutcome::Duplicate { id }
            | ConversionOutcome::Ignored { id, .. } => id,
        }
    }
}

/// A postback kept until its click is stored (the sub id was unknown when it came).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingPostback {
    pub id: i64,
    pub sub_id: String,
    /// Its parameters as received, a JSON object of texts.
    pub params: String,
    /// When it was received (Unix seconds): the conversion's time once applied.
    pub received_at: i64,
}

/// One entry of the received-postbacks log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceivedPostback {
    pub id: i64,
    pub sub_id: String,
    pub tid: String,
    pub status: String,
    /// accepted, transition, duplicate, ignored, invalid, pending (its click not stored yet),
    /// expired (its click never came; `unknown_sub_id` in logs from before version 7)
    pub outcome: String,
    pub message: String,
    pub conversion_id: Option<i64>,
    pub params: String,
    pub created_at: i64,
}

impl ReceivedPostback {
    /// The log entry of a postback that recorded no conversion (`outcome` says why), with the
    /// `tid` and `status` it sent; `params` are its parameters, `params_json` the same as
    /// stored.
    pub fn unrecorded(
        sub_id: &str,
        params: &std::collections::BTreeMap<String, String>,
        params_json: &str,
        outcome: &str,
        message: String,
        at: i64,
    ) -> ReceivedPostback {
        ReceivedPostback {
            id: 0,
            sub_id: sub_id.to_string(),
            tid: params.get("tid").cloned().unwrap_or_default(),
            status: params.get("status").cloned().unwrap_or_default(),
            outcome: outcome.to_string(),
            message,
            conversion_id: None,
            params: params_json.to_string(),
            created_at: at,
        }
    }
}

/// An outgoing postback waiting in the queue (`outgoing_postbacks`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedPostback {
    pub id: i64,
    /// The delivery's identity: queueing the same key again adds nothing.
    pub delivery_key: String,
    pub conversion_id: i64,
    /// `campaign` or `traffic_source`.
    pub origin: String,
    pub method: String,
    pub url: String,
    /// The JSON body of a POST ("" for a GET).
    pub body: String,
    /// Tries made so far.
    pub attempts: i64,
    /// When it may be tried next (Unix milliseconds); while a worker sends it, the end of
    /// that worker's claim.
    pub next_at: i64,
    pub created_at: i64,
}

/// One entry of the sent-postbacks log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentPostback {
    pub id: i64,
    pub conversion_id: Option<i64>,
    /// `campaign` or `traffic_source`.
    pub origin: String,
    pub method: String,
    pub url: String,
    pub body: String,
    /// The last answer's status, if any came.
    pub http_status: Option<i64>,
    pub attempts: i64,
    /// Why it failed ("" when it was delivered).
    pub error: String,
    pub created_at: i64,
}

/// Where a conversion's postbacks go: the campaign's S2S postbacks (`[{method, statuses,
/// url}]`, JSON) and its traffic source's postback URL and statuses (JSON array).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostbackTargets {
    pub campaign_postbacks: String,
    pub traffic_source: Option<(String, String)>,
}

/// A cost to spread over matching clicks (`update_costs`).
#[derive(Debug, Clone, PartialEq)]
pub struct CostSpread {
    pub campaign_ids: Vec<i64>,
    /// Clicks at or after `from` and before `to` (Unix seconds).
    pub from: i64,
    pub to: i64,
    /// The total, in the tracker's currency.
    pub total: Money,
    /// Only clicks unique in their campaign.
    pub only_uniques: bool,
    /// Further conditions on click columns (values bound).
    pub conditions: Vec<crate::report::Condition>,
}

/// Reports and conversions. Every method is one statement or one transaction.
#[async_trait]
pub trait ReportStore: Send + Sync {
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

    /// The received-postbacks log, newest first.
    async fn received_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReceivedPostback>, StoreError>;

    /// Empties the received-postbacks log; returns how many entries went.
    async fn clear_received_postbacks(&self) -> Result<u64, StoreError>;

    /// Logs a sent (or failed) postback.
    async fn log_sent_postback(&self, entry: &SentPostback) -> Result<(), StoreError>;

    /// The sent-postbacks log, newest first.
    async fn sent_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SentPostback>, StoreError>;

    /// Empties the sent-postbacks log; returns how many entries went.
    async fn clear_sent_postbacks(&self) -> Result<u64, StoreError>;

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

    /// Deletes the clicks in `[from, to)` (of one campaign, or all) with their conversions
    /// and what the dialects keep about them, in one transaction. Returns (clicks,
    /// conversions) deleted.
    async fn clean_clicks(
        &self,
        from: i64,
        to: i64,
        campaign_id: Option<i64>,
    ) -> Result<(u64, u64), StoreError>;

    /// For each spread in turn, sets the cost of its matching clicks so that they add up to
    /// exactly `total`: each gets `total / n` micro-units, the first `total % n` (by id) one
    /// more. All spreads in one transaction (all or none). Returns the clicks updated.
    async fn spread_costs(&self, spreads: &[CostSpread]) -> Result<u64, StoreError>;
}

/// The click sums besides `COUNT(*) AS clicks`: (name, expression).
const CLICK_SUMS: &[(&str, &str)] = &[
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
const CONVERSION_SUMS: &[(&str, &str)] = &[
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
const CONVERSIONS_OF_CLICKS: &str = " FROM (SELECT sub_id AS cv_sub_id, status AS cv_status, revenue_micros AS cv_revenue FROM conversions) v \
    JOIN clicks ON clicks.sub_id = v.cv_sub_id";

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
    fn bind_value(builder: &mut QueryBuilder<DB>, value: &Bound) {
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
    fn push_keys(
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

    fn push_group_by(builder: &mut QueryBuilder<DB>, keys: usize) {
        if keys == 0 {
            builder.push(" HAVING COUNT(*) > 0");
            return;
        }
        let positions: Vec<String> = (1..=keys).map(|i| i.to_string()).collect();
        builder.push(" GROUP BY ").push(positions.join(", "));
    }

    fn read_cell(row: &DB::Row, i: usize, key: &GroupingKey) -> Result<Cell, StoreError> {
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
    fn push_click_sums(builder: &mut QueryBuilder<DB>, needed: &[&str]) {
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

    fn push_conversion_sums(builder: &mut QueryBuilder<DB>) {
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
    async fn rows_from_clicks(
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
    fn report_row(
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

    /// Appends to the sent-postbacks log (`id` is ignored).
    pub(crate) async fn insert_sent_postback(
        conn: &mut <DB as sqlx::Database>::Connection,
        entry: &SentPostback,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sent_postbacks (conversion_id, origin, method, url, body, http_status, attempts, error, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(entry.conversion_id)
        .bind(entry.origin.clone())
        .bind(entry.method.clone())
        .bind(entry.url.clone())
        .bind(entry.body.clone())
        .bind(entry.http_status)
        .bind(entry.attempts)
        .bind(entry.error.clone())
        .bind(entry.created_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Report rows read from a rollup over the plan's whole hours.
    async fn rows_from_rollup(
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

    async fn spread_one(
        tx: &mut sqlx::Transaction<'_, DB>,
        spread: &CostSpread,
    ) -> Result<u64, StoreError> {
        if spread.campaign_ids.is_empty() {
            return Ok(0);
        }
        let matching = |builder: &mut QueryBuilder<DB>| {
            Self::push_conditions(
                builder,
                "created_at",
                Some(spread.from),
                Some(spread.to),
                &spread.conditions,
            );
            builder.push(" AND campaign_id IN (");
            let mut list = builder.separated(", ");
            for id in &spread.campaign_ids {
                list.push_bind(*id);
            }
            builder.push(")");
            if spread.only_uniques {
                builder.push(" AND is_unique_campaign = ").push_bind(true);
            }
        };
        let mut count: QueryBuilder<DB> = QueryBuilder::new("SELECT COUNT(*) FROM clicks");
        matching(&mut count);
        let n: i64 = count.build_query_scalar().fetch_one(&mut **tx).await?;
        if n == 0 {
            return Ok(0);
        }
        let total = spread.total.micros();
        let (base, rest) = (total.div_euclid(n), total.rem_euclid(n));
        // The id of the last click that gets one micro-unit more (none when rest = 0).
        let threshold: i64 = if rest == 0 {
            i64::MIN
        } else {
            let mut nth: QueryBuilder<DB> = QueryBuilder::new("SELECT id FROM clicks");
            matching(&mut nth);
            nth.push(" ORDER BY id LIMIT 1 OFFSET ").push_bind(rest - 1);
            nth.build_query_scalar().fetch_one(&mut **tx).await?
        };
        Self::adjust_rollups(&mut **tx, -1, rollups::Part::Clicks, &matching).await?;
        let mut update: QueryBuilder<DB> =
            QueryBuilder::new("UPDATE clicks SET cost_micros = CASE WHEN id <= ");
        update
            .push_bind(threshold)
            .push(" THEN ")
            .push_bind(base + 1)
            .push(" ELSE ")
            .push_bind(base)
            .push(" END");
        matching(&mut update);
        let updated = update.build().execute(&mut **tx).await?.rows_affected();
        Self::adjust_rollups(&mut **tx, 1, rollups::Part::Clicks, &matching).await?;
        Ok(updated)
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

    async fn received_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReceivedPostback>, StoreError> {
        Ok(sqlx::query_as::<_, ReceivedPostback>(
            "SELECT id, sub_id, tid, status, outcome, message, conversion_id, params, created_at \
             FROM received_postbacks ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn clear_received_postbacks(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM received_postbacks")
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn log_sent_postback(&self, entry: &SentPostback) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_sent_postback(&mut conn, entry).await
    }

    async fn sent_postbacks(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SentPostback>, StoreError> {
        Ok(sqlx::query_as::<_, SentPostback>(
            "SELECT id, conversion_id, origin, method, url, body, http_status, attempts, error, created_at \
             FROM sent_postbacks ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn clear_sent_postbacks(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sent_postbacks")
            .execute(&self.pool)
            .await?
            .rows_affected())
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

    async fn clean_clicks(
        &self,
        from: i64,
        to: i64,
        campaign_id: Option<i64>,
    ) -> Result<(u64, u64), StoreError> {
        let scope = |builder: &mut QueryBuilder<DB>| {
            builder
                .push(" WHERE created_at >= ")
                .push_bind(from)
                .push(" AND created_at < ")
                .push_bind(to);
            if let Some(id) = campaign_id {
                builder.push(" AND campaign_id = ").push_bind(id);
            }
        };
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        Self::adjust_rollups(&mut tx, -1, rollups::Part::All, &scope).await?;
        let mut conversions: QueryBuilder<DB> =
            QueryBuilder::new("DELETE FROM conversions WHERE sub_id IN (SELECT sub_id FROM clicks");
        scope(&mut conversions);
        conversions.push(")");
        let conversions = conversions.build().execute(&mut *tx).await?.rows_affected();
        for table in ["dialect_clicks", "dialect_click_keys"] {
            let mut dialect: QueryBuilder<DB> = QueryBuilder::new(format!(
                "DELETE FROM {table} WHERE sub_id IN (SELECT sub_id FROM clicks"
            ));
            scope(&mut dialect);
            dialect.push(")");
            dialect.build().execute(&mut *tx).await?;
        }
        let mut clicks: QueryBuilder<DB> = QueryBuilder::new("DELETE FROM clicks");
        scope(&mut clicks);
        let clicks = clicks.build().execute(&mut *tx).await?.rows_affected();
        sqlx::query(
            "DELETE FROM click_profiles WHERE id NOT IN \
             (SELECT profile_id FROM dialect_clicks WHERE profile_id IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        for rollup in rollups::ROLLUPS {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {} WHERE clicks = 0",
                rollup.table
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((clicks, conversions))
    }

    async fn spread_costs(&self, spreads: &[CostSpread]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_rollups(&mut tx, true).await?;
        // A write first, so that SQLite takes the write lock before the counts.
        sqlx::query("UPDATE clicks SET cost_micros = cost_micros WHERE 1 = 0")
            .execute(&mut *tx)
            .await?;
        let mut updated = 0;
        for spread in spreads {
            updated += Self::spread_one(&mut tx, spread).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }
}
