//! The click schema: every column of the `clicks` table, once. The insert (its columns and
//! values, `store::click_insert`), the click log's decoding (`store::click_log`), the report
//! columns (`report::columns`), the script view (`script::view`) and the URL macros
//! (`visit::macros`) are derived from [`CLICK_FIELDS`]; a new click field is one entry here
//! (plus its migration and its field on [`Click`]).

use super::{Click, Money};

/// A click value, borrowed from the click (what the insert binds, what macros format).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Text(&'a str),
    Int(i64),
    OptInt(Option<i64>),
    OptFloat(Option<f64>),
    Bool(bool),
}

/// How a field is read from and written to a [`Click`].
#[derive(Clone, Copy)]
pub enum Access {
    Text(fn(&Click) -> &String, fn(&mut Click) -> &mut String),
    Int(fn(&Click) -> i64, fn(&mut Click) -> &mut i64),
    OptInt(
        fn(&Click) -> Option<i64>,
        fn(&mut Click) -> &mut Option<i64>,
    ),
    OptFloat(
        fn(&Click) -> Option<f64>,
        fn(&mut Click) -> &mut Option<f64>,
    ),
    Bool(fn(&Click) -> bool, fn(&mut Click) -> &mut bool),
    /// Money, stored in micro-units.
    Money(fn(&Click) -> Money, fn(&mut Click) -> &mut Money),
    /// `sub_id_1` … `sub_id_30`: one column each, in this place of the insert.
    SubIds,
    /// `extra_param_1` … `extra_param_10`.
    ExtraParams,
    /// A column the recorder does not write (an id, or set later by landing clicks and
    /// conversions): reports read it, the insert leaves it to its default.
    Table,
}

/// How reports type a column (a subset of `report::ColumnKind`'s meaning, kept here so that
/// `model` does not depend on `report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Text,
    Int,
    Bool,
    Money,
    Time,
}

/// One column of `clicks`.
#[derive(Clone, Copy)]
pub struct ClickField {
    pub column: &'static str,
    pub access: Access,
    /// Keitaro's report and log name, when reports may select, filter and sort by it.
    pub report: Option<(&'static str, ReportKind)>,
    /// The URL macro names (`{ip}`) that expand to it, when it is a macro.
    pub macros: &'static [&'static str],
    /// Its getter name on a script's `Click`, when scripts see it.
    pub script: Option<&'static str>,
}

impl ClickField {
    /// Its value on `click` (`None` for the sub-id, extra-param and table-only columns).
    pub fn value<'c>(&self, click: &'c Click) -> Option<FieldValue<'c>> {
        Some(match self.access {
            Access::Text(get, _) => FieldValue::Text(get(click)),
            Access::Int(get, _) => FieldValue::Int(get(click)),
            Access::OptInt(get, _) => FieldValue::OptInt(get(click)),
            Access::OptFloat(get, _) => FieldValue::OptFloat(get(click)),
            Access::Bool(get, _) => FieldValue::Bool(get(click)),
            Access::Money(get, _) => FieldValue::Int(get(click).micros()),
            Access::SubIds | Access::ExtraParams | Access::Table => return None,
        })
    }
}

const fn field(column: &'static str, access: Access) -> ClickField {
    ClickField {
        column,
        access,
        report: None,
        macros: &[],
        script: None,
    }
}

impl ClickField {
    const fn report(mut self, name: &'static str, kind: ReportKind) -> Self {
        self.report = Some((name, kind));
        self
    }

    const fn macros(mut self, names: &'static [&'static str]) -> Self {
        self.macros = names;
        self
    }

    const fn script(mut self, name: &'static str) -> Self {
        self.script = Some(name);
        self
    }

    const fn no_script(mut self) -> Self {
        self.script = None;
        self
    }
}

/// A text column reported and seen by scripts under its own name.
const fn text(
    column: &'static str,
    get: fn(&Click) -> &String,
    get_mut: fn(&mut Click) -> &mut String,
) -> ClickField {
    field(column, Access::Text(get, get_mut))
        .report(column, ReportKind::Text)
        .script(column)
}

/// Every column of `clicks`, in the insert's order.
pub static CLICK_FIELDS: &[ClickField] = &[
    field("id", Access::Table).report("click_id", ReportKind::Int),
    field("sub_id", Access::Text(|c| &c.sub_id, |c| &mut c.sub_id))
        .report("sub_id", ReportKind::Text)
        .macros(&["subid", "sub_id"])
        .script("sub_id"),
    field(
        "visitor_code",
        Access::Text(|c| &c.visitor_code, |c| &mut c.visitor_code),
    )
    .report("visitor_code", ReportKind::Text)
    .macros(&["visitor_code"]),
    field(
        "campaign_id",
        Access::Int(|c| c.campaign_id, |c| &mut c.campaign_id),
    )
    .report("campaign_id", ReportKind::Int)
    .macros(&["campaign_id"])
    .script("campaign_id"),
    field(
        "parent_campaign_id",
        Access::OptInt(|c| c.parent_campaign_id, |c| &mut c.parent_campaign_id),
    )
    .report("parent_campaign_id", ReportKind::Int)
    .macros(&["parent_campaign_id"]),
    // Scripts read the stream being evaluated (`ScriptClick::stream_id`), not this column.
    field(
        "stream_id",
        Access::OptInt(|c| c.stream_id, |c| &mut c.stream_id),
    )
    .report("stream_id", ReportKind::Int)
    .macros(&["stream_id"]),
    field(
        "landing_id",
        Access::OptInt(|c| c.landing_id, |c| &mut c.landing_id),
    )
    .report("landing_id", ReportKind::Int)
    .macros(&["landing_id"]),
    field(
        "offer_id",
        Access::OptInt(|c| c.offer_id, |c| &mut c.offer_id),
    )
    .report("offer_id", ReportKind::Int)
    .macros(&["offer_id"]),
    field("ts_id", Access::OptInt(|c| c.ts_id, |c| &mut c.ts_id))
        .report("ts_id", ReportKind::Int)
        .macros(&["ts_id"]),
    field(
        "created_at",
        Access::Int(|c| c.created_at, |c| &mut c.created_at),
    )
    .report("datetime", ReportKind::Time)
    .script("time"),
    field("landing_clicked_at", Access::Table).report("landing_clicked_datetime", ReportKind::Time),
    text("ip", |c| &c.ip, |c| &mut c.ip).macros(&["ip"]),
    text("user_agent", |c| &c.user_agent, |c| &mut c.user_agent).macros(&[
        "user_agent",
        "ua",
        "useragent",
    ]),
    text("referrer", |c| &c.referrer, |c| &mut c.referrer).macros(&["referrer", "referer"]),
    text("language", |c| &c.language, |c| &mut c.language).macros(&["language"]),
    text("country_code", |c| &c.country_code, |c| &mut c.country_code)
        .macros(&["country", "country_code"])
        .script("country"),
    text("region", |c| &c.region, |c| &mut c.region).macros(&["region"]),
    text("city", |c| &c.city, |c| &mut c.city).macros(&["city"]),
    text("isp", |c| &c.isp, |c| &mut c.isp).macros(&["isp"]),
    text("operator", |c| &c.operator, |c| &mut c.operator).macros(&["operator", "carrier"]),
    text(
        "connection_type",
        |c| &c.connection_type,
        |c| &mut c.connection_type,
    )
    .macros(&["connection_type"]),
    text("device_type", |c| &c.device_type, |c| &mut c.device_type).macros(&["device_type"]),
    text("device_model", |c| &c.device_model, |c| &mut c.device_model).macros(&["device_model"]),
    field(
        "device_brand",
        Access::Text(|c| &c.device_brand, |c| &mut c.device_brand),
    )
    .macros(&["device_brand"])
    .script("device_brand"),
    text("os", |c| &c.os, |c| &mut c.os).macros(&["os"]),
    text("os_version", |c| &c.os_version, |c| &mut c.os_version).macros(&["os_version"]),
    text("browser", |c| &c.browser, |c| &mut c.browser).macros(&["browser"]),
    text(
        "browser_version",
        |c| &c.browser_version,
        |c| &mut c.browser_version,
    )
    .macros(&["browser_version"]),
    text("source", |c| &c.source, |c| &mut c.source).macros(&["source"]),
    text("keyword", |c| &c.keyword, |c| &mut c.keyword).macros(&["keyword"]),
    text(
        "search_engine",
        |c| &c.search_engine,
        |c| &mut c.search_engine,
    )
    .macros(&["search_engine", "se"]),
    text(
        "x_requested_with",
        |c| &c.x_requested_with,
        |c| &mut c.x_requested_with,
    )
    .macros(&["x_requested_with"])
    .no_script(),
    text(
        "ad_campaign_id",
        |c| &c.ad_campaign_id,
        |c| &mut c.ad_campaign_id,
    )
    .macros(&["ad_campaign_id"])
    .no_script(),
    text("external_id", |c| &c.external_id, |c| &mut c.external_id)
        .macros(&["external_id"])
        .no_script(),
    text("creative_id", |c| &c.creative_id, |c| &mut c.creative_id)
        .macros(&["creative_id"])
        .no_script(),
    text("destination", |c| &c.destination, |c| &mut c.destination)
        .macros(&["destination"])
        .no_script(),
    // The `{country_name}` macro reads GeoIP's English name at routing time.
    field(
        "country_name",
        Access::Text(|c| &c.country_name, |c| &mut c.country_name),
    )
    .report("country", ReportKind::Text),
    field(
        "region_code",
        Access::Text(|c| &c.region_code, |c| &mut c.region_code),
    ),
    field(
        "request_url",
        Access::Text(|c| &c.request_url, |c| &mut c.request_url),
    ),
    field(
        "utm_source",
        Access::Text(|c| &c.utm_source, |c| &mut c.utm_source),
    ),
    field(
        "utm_medium",
        Access::Text(|c| &c.utm_medium, |c| &mut c.utm_medium),
    ),
    field(
        "utm_campaign",
        Access::Text(|c| &c.utm_campaign, |c| &mut c.utm_campaign),
    ),
    field(
        "utm_term",
        Access::Text(|c| &c.utm_term, |c| &mut c.utm_term),
    ),
    field(
        "utm_content",
        Access::Text(|c| &c.utm_content, |c| &mut c.utm_content),
    ),
    field("sub_id_N", Access::SubIds),
    field("extra_param_N", Access::ExtraParams),
    field(
        "is_unique_campaign",
        Access::Bool(|c| c.is_unique_campaign, |c| &mut c.is_unique_campaign),
    )
    .report("is_unique_campaign", ReportKind::Bool)
    .script("is_unique"),
    field(
        "is_unique_stream",
        Access::Bool(|c| c.is_unique_stream, |c| &mut c.is_unique_stream),
    )
    .report("is_unique_stream", ReportKind::Bool),
    field(
        "is_unique_global",
        Access::Bool(|c| c.is_unique_global, |c| &mut c.is_unique_global),
    )
    .report("is_unique_global", ReportKind::Bool),
    field("is_bot", Access::Bool(|c| c.is_bot, |c| &mut c.is_bot))
        .report("is_bot", ReportKind::Bool)
        .macros(&["is_bot"])
        .script("is_bot"),
    field(
        "is_using_proxy",
        Access::Bool(|c| c.is_using_proxy, |c| &mut c.is_using_proxy),
    )
    .report("is_using_proxy", ReportKind::Bool)
    .macros(&["is_using_proxy"]),
    field("cost_micros", Access::Money(|c| c.cost, |c| &mut c.cost))
        .report("cost", ReportKind::Money)
        .macros(&["cost"]),
    field("params", Access::Text(|c| &c.params, |c| &mut c.params)),
    field(
        "latitude",
        Access::OptFloat(|c| c.latitude, |c| &mut c.latitude),
    ),
    field(
        "longitude",
        Access::OptFloat(|c| c.longitude, |c| &mut c.longitude),
    ),
    field("is_lead", Access::Table).report("is_lead", ReportKind::Bool),
    field("is_sale", Access::Table).report("is_sale", ReportKind::Bool),
    field("is_rejected", Access::Table).report("is_rejected", ReportKind::Bool),
    field("revenue_micros", Access::Table).report("revenue", ReportKind::Money),
];

/// The field a URL macro name expands to (one lookup in a table built once; macros expand on
/// the click path).
pub fn macro_field(name: &str) -> Option<&'static ClickField> {
    static BY_MACRO: std::sync::OnceLock<std::collections::HashMap<&str, &ClickField>> =
        std::sync::OnceLock::new();
    BY_MACRO
        .get_or_init(|| {
            let fields = CLICK_FIELDS.iter();
            fields
                .flat_map(|f| f.macros.iter().map(move |name| (*name, f)))
                .collect()
        })
        .get(name)
        .copied()
}

/// How many columns the insert binds one value each for (all but the numbered sub-id and
/// extra-param columns and the ones it leaves to their defaults).
pub fn single_value_columns() -> usize {
    CLICK_FIELDS
        .iter()
        .filter(|f| {
            !matches!(
                f.access,
                Access::SubIds | Access::ExtraParams | Access::Table
            )
        })
        .count()
}
