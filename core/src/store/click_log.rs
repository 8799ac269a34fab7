//! The click log as the listing APIs see it: stored clicks with what other tables know about
//! them (their offer, traffic source, conversions, a dialect's profile), filtered and sorted by
//! a whitelist of fields. Queries are built here as SQL text with `$N` placeholders plus the
//! values to bind, so both backends run the same statement and no value is ever spliced into
//! the text.

use crate::model::{Access, CLICK_FIELDS, Click, EXTRA_PARAM_COUNT, Money, SUB_ID_COUNT};

use super::StoreError;

/// A field of the click log that can be filtered on or sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    /// The row id (insertion order).
    Id,
    SubId,
    CampaignId,
    OfferId,
    /// The traffic source.
    TsId,
    CreativeId,
    /// The click's time.
    CreatedAt,
    Ip,
    UserAgent,
    Referrer,
    CountryCode,
    CountryName,
    Latitude,
    Longitude,
    RequestUrl,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
    /// The `uuid` a dialect gave the click.
    Uuid,
    /// When the click's record was created (a dialect's own time, else the click's).
    CreateTime,
    /// When the click's record last changed.
    UpdateTime,
    /// The tag of the click's profile.
    ProfileTag,
}

impl LogField {
    /// The SQL expression of the field in the log query (aliases: see [`LOG_FROM`]).
    fn sql(self) -> &'static str {
        match self {
            LogField::Id => "c.id",
            LogField::SubId => "c.sub_id",
            LogField::CampaignId => "c.campaign_id",
            LogField::OfferId => "c.offer_id",
            LogField::TsId => "c.ts_id",
            LogField::CreativeId => "c.creative_id",
            LogField::CreatedAt => "c.created_at",
            LogField::Ip => "c.ip",
            LogField::UserAgent => "c.user_agent",
            LogField::Referrer => "c.referrer",
            LogField::CountryCode => "c.country_code",
            LogField::CountryName => "c.country_name",
            LogField::Latitude => "c.latitude",
            LogField::Longitude => "c.longitude",
            LogField::RequestUrl => "c.request_url",
            LogField::UtmSource => "c.utm_source",
            LogField::UtmMedium => "c.utm_medium",
            LogField::UtmCampaign => "c.utm_campaign",
            LogField::UtmTerm => "c.utm_term",
            LogField::UtmContent => "c.utm_content",
            LogField::Uuid => "COALESCE(d.uuid, '')",
            LogField::CreateTime => "COALESCE(d.created_at, c.created_at)",
            LogField::UpdateTime => "COALESCE(d.updated_at, c.created_at)",
            LogField::ProfileTag => "COALESCE(p.tag, '')",
        }
    }

    /// Fields that may be NULL sort after every value, in both directions and on both backends.
    fn nullable(self) -> bool {
        matches!(
            self,
            LogField::OfferId | LogField::TsId | LogField::Latitude | LogField::Longitude
        )
    }
}

/// A value bound into a log query.
#[derive(Debug, Clone, PartialEq)]
pub enum LogValue {
    Text(String),
    Int(i64),
    Float(f64),
}

/// One condition of a log query; conditions are AND-ed.
#[derive(Debug, Clone, PartialEq)]
pub enum LogCondition {
    /// The field equals one of the values (exact, case-sensitive).
    AnyOf(LogField, Vec<LogValue>),
    /// The field is at least / at most the value.
    AtLeast(LogField, i64),
    AtMost(LogField, i64),
    /// A coordinate within 0.0005 degrees of the value (about 50 m).
    Near(LogField, f64),
    /// The click has (true) or has no (false) profile: it led to a registration.
    HasProfile(bool),
    /// The profile's full name ("first middle last") contains the text, ignoring ASCII case.
    ProfileNameContains(String),
    /// One of the profile's contacts has this value, ignoring ASCII case.
    ProfileContact(String),
    /// The profile's country name, ignoring ASCII case.
    ProfileCountry(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

impl SortOrder {
    fn sql(self) -> &'static str {
        match self {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        }
    }
}

/// A page of the click log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    pub conditions: Vec<LogCondition>,
    /// Sort keys in order; the row id (in the first key's direction) breaks ties.
    pub sort: Vec<(LogField, SortOrder)>,
    pub limit: i64,
    pub offset: i64,
}

impl LogQuery {
    /// The newest clicks first, `limit` of them.
    pub fn newest(limit: i64) -> Self {
        LogQuery {
            conditions: Vec::new(),
            sort: vec![(LogField::Id, SortOrder::Desc)],
            limit,
            offset: 0,
        }
    }

    /// Only the click with this sub id.
    pub fn by_sub_id(sub_id: &str) -> Self {
        LogQuery {
            conditions: vec![LogCondition::AnyOf(
                LogField::SubId,
                vec![LogValue::Text(sub_id.to_string())],
            )],
            ..LogQuery::newest(1)
        }
    }

    /// Only the click with this row id.
    pub fn by_id(id: i64) -> Self {
        LogQuery {
            conditions: vec![LogCondition::AnyOf(LogField::Id, vec![LogValue::Int(id)])],
            ..LogQuery::newest(1)
        }
    }

    /// The WHERE clause (with a leading space, or empty) and its values from `$first` on.
    fn where_sql(&self, values: &mut Vec<LogValue>) -> String {
        let bind = |value: LogValue, values: &mut Vec<LogValue>| {
            values.push(value);
            format!("${}", values.len())
        };
        let mut parts = Vec::new();
        for condition in &self.conditions {
            let part = match condition {
                LogCondition::AnyOf(_, options) if options.is_empty() => "1 = 0".to_string(),
                LogCondition::AnyOf(field, options) => {
                    let placeholders: Vec<String> =
                        options.iter().map(|v| bind(v.clone(), values)).collect();
                    format!("{} IN ({})", field.sql(), placeholders.join(", "))
                }
                LogCondition::AtLeast(field, value) => {
                    format!("{} >= {}", field.sql(), bind(LogValue::Int(*value), values))
                }
                LogCondition::AtMost(field, value) => {
                    format!("{} <= {}", field.sql(), bind(LogValue::Int(*value), values))
                }
                LogCondition::Near(field, value) => {
                    let low = bind(LogValue::Float(value - 0.0005), values);
                    let high = bind(LogValue::Float(value + 0.0005), values);
                    format!("{} BETWEEN {low} AND {high}", field.sql())
                }
                LogCondition::HasProfile(true) => "d.profile_id IS NOT NULL".to_string(),
                LogCondition::HasProfile(false) => "d.profile_id IS NULL".to_string(),
                LogCondition::ProfileNameContains(text) => {
                    let pattern = format!("%{}%", escape_like(&text.to_ascii_lowercase()));
                    format!(
                        "LOWER(TRIM(TRIM(p.first_name || ' ' || p.middle_name) || ' ' || p.last_name)) LIKE {} ESCAPE '\\'",
                        bind(LogValue::Text(pattern), values)
                    )
                }
                LogCondition::ProfileContact(text) => format!(
                    "EXISTS (SELECT 1 FROM click_profile_contacts pc WHERE pc.profile_id = d.profile_id AND LOWER(pc.value) = {})",
                    bind(LogValue::Text(text.to_ascii_lowercase()), values)
                ),
                LogCondition::ProfileCountry(text) => format!(
                    "LOWER(p.country_name) = {}",
                    bind(LogValue::Text(text.to_ascii_lowercase()), values)
                ),
            };
            parts.push(part);
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    /// The SELECT of one page and its values.
    pub(crate) fn select_sql(&self) -> (String, Vec<LogValue>) {
        let mut values = Vec::new();
        let filter = self.where_sql(&mut values);
        let mut order: Vec<String> = Vec::new();
        for (field, direction) in &self.sort {
            if field.nullable() {
                order.push(format!(
                    "CASE WHEN {} IS NULL THEN 1 ELSE 0 END",
                    field.sql()
                ));
            }
            order.push(format!("{} {}", field.sql(), direction.sql()));
        }
        let tie = self.sort.first().map_or(SortOrder::Desc, |(_, d)| *d);
        order.push(format!("c.id {}", tie.sql()));
        values.push(LogValue::Int(self.limit.max(0)));
        let limit = values.len();
        values.push(LogValue::Int(self.offset.max(0)));
        let offset = values.len();
        let sql = format!(
            "SELECT {} {LOG_FROM}{filter} ORDER BY {} LIMIT ${limit} OFFSET ${offset}",
            log_columns(),
            order.join(", ")
        );
        (sql, values)
    }

    /// The COUNT of every matching row (ignoring limit and offset) and its values.
    pub(crate) fn count_sql(&self) -> (String, Vec<LogValue>) {
        let mut values = Vec::new();
        let filter = self.where_sql(&mut values);
        (format!("SELECT COUNT(*) AS n {COUNT_FROM}{filter}"), values)
    }
}

/// `%`, `_` and the escape character itself match literally in a LIKE pattern.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The tables of the log query: the click, a dialect's record of it and its profile, and the
/// names of its offer, the offer's network, its traffic source and its campaign.
const LOG_FROM: &str = "FROM clicks c \
    LEFT JOIN dialect_clicks d ON d.sub_id = c.sub_id \
    LEFT JOIN click_profiles p ON p.id = d.profile_id \
    LEFT JOIN offers o ON o.id = c.offer_id \
    LEFT JOIN affiliate_networks an ON an.id = o.affiliate_network_id \
    LEFT JOIN traffic_sources ts ON ts.id = c.ts_id \
    LEFT JOIN campaigns cp ON cp.id = c.campaign_id";

/// The tables conditions can name (the others only add names to a row), for counting.
const COUNT_FROM: &str = "FROM clicks c \
    LEFT JOIN dialect_clicks d ON d.sub_id = c.sub_id \
    LEFT JOIN click_profiles p ON p.id = d.profile_id";

/// What the log shows beside a click's own columns.
const LOG_EXTRAS: &str = "EXISTS (SELECT 1 FROM conversions cv WHERE cv.sub_id = c.sub_id) AS has_conversions, \
    o.name AS offer_name, o.affiliate_network_id AS advertiser_id, an.name AS advertiser_name, \
    ts.name AS traffic_source_name, cp.name AS campaign_name, cp.alias AS campaign_alias, \
    cp.state AS campaign_state, cp.group_id AS campaign_group_id, \
    d.dialect AS dialect, d.uuid AS dialect_uuid, d.profile_id AS profile_id, \
    COALESCE(d.created_at, c.created_at) AS record_created_at, \
    COALESCE(d.updated_at, c.created_at) AS record_updated_at";

/// Everything [`read_record`] reads: every column of the click schema, then [`LOG_EXTRAS`].
fn log_columns() -> &'static str {
    static COLUMNS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let mut columns = Vec::new();
        for field in CLICK_FIELDS {
            match field.access {
                Access::SubIds => {
                    columns.extend((1..=SUB_ID_COUNT).map(|i| format!("c.sub_id_{i}")))
                }
                Access::ExtraParams => {
                    columns.extend((1..=EXTRA_PARAM_COUNT).map(|i| format!("c.extra_param_{i}")))
                }
                _ => columns.push(format!("c.{}", field.column)),
            }
        }
        columns.push(LOG_EXTRAS.to_string());
        columns.join(", ")
    })
}

/// A stored click with what the listing APIs show beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickRecord {
    /// The row id.
    pub id: i64,
    pub click: Click,
    pub is_lead: bool,
    pub is_sale: bool,
    pub is_rejected: bool,
    pub revenue_micros: i64,
    /// Some conversion names this click's sub id.
    pub has_conversions: bool,
    pub offer_name: Option<String>,
    /// The offer's affiliate network (the advertiser).
    pub advertiser_id: Option<i64>,
    pub advertiser_name: Option<String>,
    pub traffic_source_name: Option<String>,
    pub campaign_name: Option<String>,
    pub campaign_alias: Option<String>,
    pub campaign_state: Option<String>,
    pub campaign_group_id: Option<i64>,
    /// The dialect that created the click ("" when a dialect only annotated it).
    pub dialect: Option<String>,
    pub uuid: Option<String>,
    pub profile_id: Option<i64>,
    /// When the record was created and last changed (the click's time unless a dialect says).
    pub created_at: i64,
    pub updated_at: i64,
}

/// Reads columns of one row by name; each backend implements it over its row type.
pub(crate) trait ColumnReader {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    fn opt_float(&self, name: &str) -> Result<Option<f64>, StoreError>;
    fn boolean(&self, name: &str) -> Result<bool, StoreError>;
}

/// Decodes a row of the log query.
pub(crate) fn read_record(row: &impl ColumnReader) -> Result<ClickRecord, StoreError> {
    let mut click = Click::blank();
    for field in CLICK_FIELDS {
        let column = field.column;
        match field.access {
            Access::Text(_, set) => *set(&mut click) = row.text(column)?,
            Access::Int(_, set) => *set(&mut click) = row.int(column)?,
            Access::OptInt(_, set) => *set(&mut click) = row.opt_int(column)?,
            Access::OptFloat(_, set) => *set(&mut click) = row.opt_float(column)?,
            Access::Bool(_, set) => *set(&mut click) = row.boolean(column)?,
            Access::Money(_, set) => *set(&mut click) = Money::from_micros(row.int(column)?),
            Access::SubIds => {
                for (i, value) in click.sub_ids.iter_mut().enumerate() {
                    *value = row.text(&format!("sub_id_{}", i + 1))?;
                }
            }
            Access::ExtraParams => {
                for (i, value) in click.extra_params.iter_mut().enumerate() {
                    *value = row.text(&format!("extra_param_{}", i + 1))?;
                }
            }
            Access::Table => {}
        }
    }
    Ok(ClickRecord {
        id: row.int("id")?,
        is_lead: row.boolean("is_lead")?,
        is_sale: row.boolean("is_sale")?,
        is_rejected: row.boolean("is_rejected")?,
        revenue_micros: row.int("revenue_micros")?,
        has_conversions: row.boolean("has_conversions")?,
        offer_name: row.opt_text("offer_name")?,
        advertiser_id: row.opt_int("advertiser_id")?,
        advertiser_name: row.opt_text("advertiser_name")?,
        traffic_source_name: row.opt_text("traffic_source_name")?,
        campaign_name: row.opt_text("campaign_name")?,
        campaign_alias: row.opt_text("campaign_alias")?,
        campaign_state: row.opt_text("campaign_state")?,
        campaign_group_id: row.opt_int("campaign_group_id")?,
        dialect: row.opt_text("dialect")?,
        uuid: row.opt_text("dialect_uuid")?,
        profile_id: row.opt_int("profile_id")?,
        created_at: row.int("record_created_at")?,
        updated_at: row.int("record_updated_at")?,
        click,
    })
}

/// A click created through a dialect, with what the dialect keeps beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct DialectClick {
    pub click: Click,
    /// The dialect's name (`hoqu`, …).
    pub dialect: String,
    pub uuid: Option<String>,
    /// When the API created the record (the click's own time may be earlier).
    pub created_at: i64,
}

/// "Identical requests within a window return the same click": the request's key and the
/// start of the window (a key claimed before it has expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickKey {
    pub key: String,
    pub window_start: i64,
}

/// What `create_dialect_click` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedClick {
    pub sub_id: String,
    /// The key was taken: this is an earlier click, nothing was written.
    pub existed: bool,
}

/// A client profile and its contacts (seed 004).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClickProfile {
    pub id: i64,
    pub uuid: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub middle_name: String,
    pub enabled: bool,
    pub country_name: String,
    pub tag: String,
    #[sqlx(skip)]
    pub contacts: Vec<ProfileContact>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A profile as a client sets it (every field replaces the stored one).
#[derive(Debug, Clone, PartialEq)]
pub struct NewProfile {
    pub uuid: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub middle_name: String,
    pub enabled: bool,
    pub country_name: String,
    pub tag: String,
    pub contacts: Vec<ProfileContact>,
}

/// One contact of a profile: `email` or `phone` and its value.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileContact {
    #[sqlx(rename = "kind")]
    pub key: String,
    pub value: String,
    pub uuid: Option<String>,
}

/// Counts of a campaign's clicks (seed 004's link metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkMetrics {
    pub clicks: i64,
    pub unique_clicks: i64,
    /// Clicks with a profile.
    pub registrations: i64,
    /// Counted by a second statement.
    #[sqlx(default)]
    pub conversions: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_never_spliced() {
        let query = LogQuery {
            conditions: vec![
                LogCondition::AnyOf(
                    LogField::UtmCampaign,
                    vec![
                        LogValue::Text("x' OR 1=1 --".into()),
                        LogValue::Text("b".into()),
                    ],
                ),
                LogCondition::AtLeast(LogField::CreatedAt, 10),
                LogCondition::Near(LogField::Latitude, 37.751),
                LogCondition::ProfileNameContains("50%_off".into()),
            ],
            sort: vec![(LogField::Latitude, SortOrder::Desc)],
            limit: 10,
            offset: 20,
        };
        let (sql, values) = query.select_sql();
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(sql.contains("c.utm_campaign IN ($1, $2)"), "{sql}");
        assert!(sql.contains("c.created_at >= $3"), "{sql}");
        assert!(sql.contains("c.latitude BETWEEN $4 AND $5"), "{sql}");
        assert!(sql.contains("LIKE $6 ESCAPE"), "{sql}");
        assert!(
            sql.ends_with(
                "ORDER BY CASE WHEN c.latitude IS NULL THEN 1 ELSE 0 END, c.latitude DESC, c.id DESC LIMIT $7 OFFSET $8"
            ),
            "{sql}"
        );
        assert_eq!(values.len(), 8);
        assert_eq!(values[5], LogValue::Text("%50\\%\\_off%".into()));
        assert_eq!(values[6], LogValue::Int(10));
        assert_eq!(values[7], LogValue::Int(20));
        let (count, count_values) = query.count_sql();
        assert!(
            count.starts_with("SELECT COUNT(*) AS n FROM clicks c"),
            "{count}"
        );
        assert_eq!(count_values.len(), 6);
    }

    #[test]
    fn empty_any_of_matches_nothing() {
        let query = LogQuery {
            conditions: vec![LogCondition::AnyOf(LogField::Ip, Vec::new())],
            ..LogQuery::newest(5)
        };
        assert!(query.count_sql().0.ends_with(" WHERE 1 = 0"));
    }
}
