//! Keitaro's stream filter catalogue, with the payload shapes real clients send.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use serde_json::{Value, json};

use super::payload::{IpMatcher, TextMatcher, VersionMatcher, strings};
use crate::model::{EXTRA_PARAM_COUNT, SUB_ID_COUNT};
use crate::registry::{Filter, FilterError, FilterFactory, KindInfo, Origin, PayloadDoc, Registry};
use crate::visit::ClickContext;

type BuildFn = dyn Fn(&Value) -> Result<Box<dyn Filter>, String> + Send + Sync;

struct BuiltinFilter {
    info: KindInfo,
    build: Box<BuildFn>,
}

impl FilterFactory for BuiltinFilter {
    fn info(&self) -> &KindInfo {
        &self.info
    }

    fn build(&self, payload: &Value) -> Result<Box<dyn Filter>, String> {
        (self.build)(payload)
    }
}

struct FnFilter<F>(F);

impl<F: Fn(&mut ClickContext<'_>) -> bool + Send + Sync> Filter for FnFilter<F> {
    fn matches(&self, ctx: &mut ClickContext<'_>) -> Result<bool, FilterError> {
        Ok((self.0)(ctx))
    }
}

fn boxed(f: impl Fn(&mut ClickContext<'_>) -> bool + Send + Sync + 'static) -> Box<dyn Filter> {
    Box::new(FnFilter(f))
}

/// Filters whose accept/reject mode Keitaro's catalogue does not apply.
const MODELESS: &[&str] = &["limit"];

fn add(
    registry: &mut Registry,
    name: &str,
    group: &str,
    description: &str,
    payload: (&str, Value, &str),
    build: impl Fn(&Value) -> Result<Box<dyn Filter>, String> + Send + Sync + 'static,
) {
    let factory = BuiltinFilter {
        info: KindInfo {
            name: name.to_string(),
            origin: Origin::Builtin,
            group: group.to_string(),
            description: description.to_string(),
            payload: PayloadDoc {
                kind: payload.0.to_string(),
                example: payload.1,
                notes: payload.2.to_string(),
            },
            aliases: Vec::new(),
            modes: !MODELESS.contains(&name),
        },
        build: Box::new(build),
    };
    registry
        .add_filter(Arc::new(factory))
        .expect("built-in filter names are unique");
}

const LIST_NOTES: &str = "An array of values (or one string, one value per line or comma). `*` and `?` are wildcards; `/regex/i` is a regular expression.";

/// A text filter: the click's value (from `get`) against a list of values, masks and regexes.
fn text_filter(
    registry: &mut Registry,
    name: &str,
    group: &str,
    description: &str,
    example: Value,
    get: TextGet,
) {
    add(
        registry,
        name,
        group,
        description,
        ("array", example, LIST_NOTES),
        move |payload| {
            let matcher = TextMatcher::from_payload(payload)?;
            Ok(boxed(move |ctx| {
                get(ctx, &mut |text| matcher.matches(text))
            }))
        },
    );
}

fn version_filter(
    registry: &mut Registry,
    name: &str,
    description: &str,
    get: fn(&mut ClickContext<'_>) -> String,
) {
    add(
        registry,
        name,
        "device",
        description,
        (
            "array",
            json!(["14", ">=10.3", "<9"]),
            "Versions: `14` matches 14.x; `>=`, `>`, `<=`, `<` compare by components; masks and `/regex/` also work.",
        ),
        move |payload| {
            let matcher = VersionMatcher::from_payload(payload)?;
            Ok(boxed(move |ctx| matcher.matches(&get(ctx))))
        },
    );
}

/// `PREFIX_1` … `PREFIX_COUNT`: text filters on the click's numbered fields.
fn indexed_filters(
    registry: &mut Registry,
    prefix: &str,
    count: usize,
    field: fn(&crate::model::Click, usize) -> &String,
) {
    for n in 1..=count {
        let name = format!("{prefix}_{n}");
        let description = format!("The click's {name}.");
        add(
            registry,
            &name,
            "traffic",
            &description,
            ("array", json!(["value"]), LIST_NOTES),
            move |payload| {
                let matcher = TextMatcher::from_payload(payload)?;
                Ok(boxed(move |ctx| matcher.matches(field(&ctx.click, n - 1))))
            },
        );
    }
}

fn no_payload(payload: &Value, name: &str) -> Result<(), String> {
    match payload {
        Value::Null | Value::Bool(_) => Ok(()),
        Value::String(s) if s.is_empty() || s == "1" || s == "true" => Ok(()),
        Value::Array(a) if a.is_empty() => Ok(()),
        Value::Object(o) if o.is_empty() => Ok(()),
        other => Err(format!("the `{name}` filter takes no payload, got {other}")),
    }
}

/// Filters that match one text of the click against a list (values, masks, `/regex/`).
struct TextKind {
    name: &'static str,
    group: &'static str,
    description: &'static str,
    example: &'static str,
    get: TextGet,
}

/// Hands a click's text (country, os, …) to a test without copying it: every text filter of
/// every stream the click is checked against reads one.
type TextGet = fn(&mut ClickContext<'_>, &mut dyn FnMut(&str) -> bool) -> bool;

const TEXT_KINDS: &[TextKind] = &[
    TextKind {
        name: "country",
        group: "geo",
        description: "Country of the visitor's IP (ISO 3166-1 alpha-2 codes).",
        example: r#"["US", "DE"]"#,
        get: |ctx, test| test(&ctx.geo().country_code),
    },
    TextKind {
        name: "city",
        group: "geo",
        description: "City of the visitor's IP (English names).",
        example: r#"["Berlin"]"#,
        get: |ctx, test| test(&ctx.geo().city),
    },
    TextKind {
        name: "isp",
        group: "geo",
        description: "Internet service provider (needs an ISP or ASN database).",
        example: r#"["Comcast*"]"#,
        get: |ctx, test| test(&ctx.geo().isp),
    },
    TextKind {
        name: "operator",
        group: "geo",
        description: "Mobile carrier (needs an ISP database).",
        example: r#"["T-Mobile*"]"#,
        get: |ctx, test| test(&ctx.geo().operator),
    },
    TextKind {
        name: "connection_type",
        group: "geo",
        description: "Connection type: cable, dialup, cellular, corporate, satellite (needs a connection-type database).",
        example: r#"["cellular"]"#,
        get: |ctx, test| test(&ctx.geo().connection_type),
    },
    TextKind {
        name: "os",
        group: "device",
        description: "Operating system family (`iOS`, `Android`, `Windows`, `Mac OS X`, `Linux`).",
        example: r#"["iOS", "Android"]"#,
        get: |ctx, test| test(&ctx.device().os),
    },
    TextKind {
        name: "browser",
        group: "device",
        description: "Browser family (`Chrome`, `Mobile Safari`, `Firefox`, …).",
        example: r#"["Chrome*", "Firefox"]"#,
        get: |ctx, test| test(&ctx.device().browser),
    },
    TextKind {
        name: "user_agent",
        group: "device",
        description: "The raw User-Agent header.",
        example: r#"["*Android*", "/iphone|ipad/i"]"#,
        get: |ctx, test| test(&ctx.visit.user_agent),
    },
    TextKind {
        name: "language",
        group: "device",
        description: "Browser language (ISO 639-1, from Accept-Language).",
        example: r#"["en", "de"]"#,
        get: |ctx, test| test(&ctx.click.language),
    },
    TextKind {
        name: "referrer",
        group: "traffic",
        description: "The referrer URL. `@empty` matches an empty referrer.",
        example: r#"["*facebook.com*", "@empty"]"#,
        get: |ctx, test| test(&ctx.click.referrer),
    },
    TextKind {
        name: "keyword",
        group: "traffic",
        description: "The click's keyword.",
        example: r#"["buy*"]"#,
        get: |ctx, test| test(&ctx.click.keyword),
    },
    TextKind {
        name: "source",
        group: "traffic",
        description: "The click's source.",
        example: r#"["site1.com"]"#,
        get: |ctx, test| test(&ctx.click.source),
    },
    TextKind {
        name: "search_engine",
        group: "traffic",
        description: "Search engine recognised from the referrer (`google`, `bing`, `yandex`, …).",
        example: r#"["google"]"#,
        get: |ctx, test| test(&ctx.click.search_engine),
    },
    TextKind {
        name: "ad_campaign_id",
        group: "traffic",
        description: "The ad campaign id passed by the traffic source.",
        example: r#"["123"]"#,
        get: |ctx, test| test(&ctx.click.ad_campaign_id),
    },
    TextKind {
        name: "creative_id",
        group: "traffic",
        description: "The creative id passed by the traffic source.",
        example: r#"["banner-1"]"#,
        get: |ctx, test| test(&ctx.click.creative_id),
    },
    TextKind {
        name: "x_requested_with",
        group: "traffic",
        description: "The X-Requested-With header (an app's package name in WebView traffic).",
        example: r#"["com.example.app"]"#,
        get: |ctx, test| test(&ctx.click.x_requested_with),
    },
];

/// Registers every built-in filter.
pub fn register(registry: &mut Registry) {
    for kind in TEXT_KINDS {
        let example = serde_json::from_str(kind.example).unwrap_or(Value::Null);
        text_filter(
            registry,
            kind.name,
            kind.group,
            kind.description,
            example,
            kind.get,
        );
    }
    geo(registry);
    network(registry);
    device(registry);
    traffic(registry);
    visitor(registry);
    time(registry);
}

fn geo(registry: &mut Registry) {
    add(
        registry,
        "region",
        "geo",
        "Region (first subdivision) of the visitor's IP: its English name, its ISO code (`BY`) or `COUNTRY-CODE` (`DE-BY`).",
        ("array", json!(["Bavaria", "DE-BE"]), LIST_NOTES),
        |payload| {
            let matcher = TextMatcher::from_payload(payload)?;
            Ok(boxed(move |ctx| {
                let geo = ctx.geo();
                matcher.matches(&geo.region)
                    || (!geo.region_code.is_empty()
                        && (matcher.matches(&geo.region_code)
                            || matcher
                                .matches(&format!("{}-{}", geo.country_code, geo.region_code))))
            }))
        },
    );
}

fn network(registry: &mut Registry) {
    add(
        registry,
        "ip",
        "network",
        "The visitor's IP: single addresses, CIDR blocks, ranges `a-b` and IPv4 masks `22.33.0-20.*`.",
        (
            "array",
            json!(["10.0.0.0/8", "22.33.0-20.*", "1.2.3.4-1.2.3.9"]),
            "One entry per line or array item.",
        ),
        |payload| {
            let matcher = IpMatcher::from_payload(payload)?;
            Ok(boxed(move |ctx| matcher.matches(ctx.visit.ip)))
        },
    );
    add(
        registry,
        "ipv_6",
        "network",
        "Matches visitors connecting over IPv6.",
        ("null", Value::Null, "No payload."),
        |payload| {
            no_payload(payload, "ipv_6")?;
            Ok(boxed(|ctx| {
                crate::net::normalise_ip(ctx.visit.ip).is_ipv6()
            }))
        },
    );
    add(
        registry,
        "bot",
        "network",
        "Matches bots: crawler signatures, an empty User-Agent, the bot IP list, prefetch requests. Accept = only bots; reject = only people.",
        ("null", Value::Null, "No payload."),
        |payload| {
            no_payload(payload, "bot")?;
            Ok(boxed(|ctx| ctx.is_bot()))
        },
    );
    add(
        registry,
        "proxy",
        "network",
        "Matches visitors whose request carries proxy headers (Via, Forwarded, X-Forwarded-For from an untrusted peer).",
        ("null", Value::Null, "No payload."),
        |payload| {
            no_payload(payload, "proxy")?;
            Ok(boxed(|ctx| ctx.is_using_proxy()))
        },
    );
}

fn device(registry: &mut Registry) {
    add(
        registry,
        "device_type",
        "device",
        "Device type: desktop, mobile, tablet, tv, console, wearable, bot.",
        ("array", json!(["mobile", "tablet"]), LIST_NOTES),
        |payload| {
            let matcher = TextMatcher::from_payload(payload)?;
            Ok(boxed(move |ctx| matcher.matches(&ctx.device().device_type)))
        },
    );
    add(
        registry,
        "device_model",
        "device",
        "Device model, or brand and model (`Apple iPhone`, `Samsung*`).",
        ("array", json!(["iPhone", "Samsung*"]), LIST_NOTES),
        |payload| {
            let matcher = TextMatcher::from_payload(payload)?;
            Ok(boxed(move |ctx| {
                let device = ctx.device();
                matcher.matches(&device.device_model)
                    || matcher.matches(&device.device_brand)
                    || matcher.matches(&format!("{} {}", device.device_brand, device.device_model))
            }))
        },
    );
    version_filter(registry, "os_version", "Operating system version.", |ctx| {
        ctx.device().os_version.clone()
    });
    version_filter(registry, "browser_version", "Browser version.", |ctx| {
        ctx.device().browser_version.clone()
    });
}

fn traffic(registry: &mut Registry) {
    add(
        registry,
        "empty_referrer",
        "traffic",
        "Matches clicks without a referrer.",
        ("null", Value::Null, "No payload."),
        |payload| {
            no_payload(payload, "empty_referrer")?;
            Ok(boxed(|ctx| ctx.click.referrer.trim().is_empty()))
        },
    );
    indexed_filters(registry, "sub_id", SUB_ID_COUNT, |click, i| {
        &click.sub_ids[i]
    });
    indexed_filters(registry, "extra_param", EXTRA_PARAM_COUNT, |click, i| {
        &click.extra_params[i]
    });
    add(
        registry,
        "parameter",
        "traffic",
        "Any query parameter: `{\"name\": \"utm_source\", \"value\": [\"fb\", \"ig*\"]}`. An absent parameter is the empty string.",
        (
            "object",
            json!({"name": "utm_source", "value": ["fb", "ig*"]}),
            LIST_NOTES,
        ),
        |payload| {
            let name = payload
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or("the `parameter` filter needs `name` (the query parameter)")?
                .to_string();
            let matcher = TextMatcher::new(&strings(payload.get("value").unwrap_or(&Value::Null)))?;
            Ok(boxed(move |ctx| {
                matcher.matches(ctx.visit.param(&name).unwrap_or(""))
            }))
        },
    );
}

fn visitor(registry: &mut Registry) {
    add(
        registry,
        "uniqueness",
        "visitor",
        "Matches visitors new to the scope within the campaign's cookies_ttl: `stream`, `campaign` or `global`.",
        (
            "string",
            json!("stream"),
            "One of `stream`, `campaign`, `global`.",
        ),
        |payload| {
            let scope = strings(payload)
                .first()
                .cloned()
                .unwrap_or_else(|| "stream".into());
            match scope.as_str() {
                "stream" => Ok(boxed(|ctx| match ctx.checking_stream {
                    Some(stream) => ctx.is_unique_stream(stream),
                    None => ctx.is_unique_campaign(),
                })),
                "campaign" => Ok(boxed(|ctx| ctx.is_unique_campaign())),
                "global" => Ok(boxed(|ctx| ctx.is_unique_global())),
                other => Err(format!(
                    "uniqueness scope must be stream, campaign or global, not `{other}`"
                )),
            }
        },
    );
    add(
        registry,
        "limit",
        "visitor",
        "Passes while the stream has had fewer clicks than each given limit (per hour and per day in UTC, and in total). Modes do not apply.",
        (
            "object",
            json!({"per_hour": 100, "per_day": 1000, "total": 0}),
            "0 or absent = no limit.",
        ),
        |payload| {
            if !matches!(payload, Value::Null | Value::Object(_)) {
                return Err(format!(
                    "the `limit` filter takes an object {{per_hour, per_day, total}}, got {payload}"
                ));
            }
            let limit = |key: &str| -> Result<u64, String> {
                match payload.get(key) {
                    None | Some(Value::Null) => Ok(0),
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .ok_or_else(|| format!("limit `{key}` must be a whole number ≥ 0")),
                    Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
                    Some(Value::String(s)) => s.trim().parse().map_err(|_| {
                        format!("limit `{key}` must be a whole number ≥ 0, not `{s}`")
                    }),
                    Some(other) => Err(format!("limit `{key}` must be a number, not {other}")),
                }
            };
            let (hour, day, total) = (limit("per_hour")?, limit("per_day")?, limit("total")?);
            Ok(boxed(move |ctx| {
                let Some(stream) = ctx.checking_stream else {
                    return true;
                };
                let hits = ctx.hits(stream);
                (hour == 0 || hits.this_hour < hour)
                    && (day == 0 || hits.today < day)
                    && (total == 0 || hits.total < total)
            }))
        },
    );
}

fn timezone(payload: &Value) -> Result<chrono_tz::Tz, String> {
    match payload
        .get("timezone")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        None => Ok(chrono_tz::UTC),
        Some(name) => name.parse().map_err(|_| {
            format!("`{name}` is not a time zone (use names like Europe/Berlin or UTC)")
        }),
    }
}

fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M:%S"))
        .map_err(|_| format!("`{text}` is not a time of day (HH:MM)"))
}

fn time(registry: &mut Registry) {
    add(
        registry,
        "interval",
        "time",
        "Passes between two moments (`YYYY-MM-DD HH:MM`) in a time zone. Either end may be empty.",
        (
            "object",
            json!({"from": "2026-01-01 00:00", "to": "2026-02-01 00:00", "timezone": "Europe/Berlin"}),
            "The end is exclusive.",
        ),
        |payload| {
            if !matches!(payload, Value::Null | Value::Object(_)) {
                return Err(format!(
                    "the `interval` filter takes an object {{from, to, timezone}}, got {payload}"
                ));
            }
            let tz = timezone(payload)?;
            let moment = |key: &str| -> Result<Option<i64>, String> {
                match payload.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
                    Some(Value::String(text)) => {
                        let local = parse_datetime(text).ok_or_else(|| {
                            format!("`{key}` = `{text}` is not a date and time (YYYY-MM-DD HH:MM)")
                        })?;
                        tz.from_local_datetime(&local)
                            .earliest()
                            .map(|t| Some(t.timestamp()))
                            .ok_or_else(|| format!("`{text}` does not exist in {tz}"))
                    }
                    Some(other) => Err(format!(
                        "`{key}` must be a date and time text (YYYY-MM-DD HH:MM), not {other}"
                    )),
                }
            };
            let (from, to) = (moment("from")?, moment("to")?);
            Ok(boxed(move |ctx| {
                from.is_none_or(|f| ctx.now >= f) && to.is_none_or(|t| ctx.now < t)
            }))
        },
    );
    add(
        registry,
        "schedule",
        "time",
        "Passes on the given days (0 = Monday … 6 = Sunday) between the given times, in a time zone.",
        (
            "object",
            json!({"timezone": "UTC", "intervals": [{"day": [0, 4], "time": ["09:00", "18:00"]}]}),
            "`day` is an inclusive range of weekdays; `time` a range of times of day (an end before the start wraps past midnight).",
        ),
        |payload| {
            let tz = timezone(payload)?;
            let mut windows = Vec::new();
            for (i, interval) in payload
                .get("intervals")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let weekday = |v: &Value| -> Result<u32, String> {
                    v.as_u64()
                        .or_else(|| v.as_str()?.trim().parse().ok())
                        .filter(|d| *d <= 6)
                        .map(|d| d as u32)
                        .ok_or_else(|| {
                            format!(
                                "intervals[{i}].day must hold weekdays 0 (Monday) to 6 (Sunday), not {v}"
                            )
                        })
                };
                let days: Vec<u32> = match interval.get("day") {
                    Some(Value::Array(d)) => d.iter().map(weekday).collect::<Result<_, _>>()?,
                    Some(v) => v
                        .as_u64()
                        .map(|d| vec![d as u32, d as u32])
                        .unwrap_or_default(),
                    None => vec![0, 6],
                };
                let (first, last) = match days.as_slice() {
                    [d] => (*d, *d),
                    [a, b, ..] => (*a, *b),
                    [] => {
                        return Err(format!(
                            "intervals[{i}].day must be [from, to] weekdays (0 = Monday)"
                        ));
                    }
                };
                if first > 6 || last > 6 {
                    return Err(format!(
                        "intervals[{i}].day must be between 0 (Monday) and 6 (Sunday)"
                    ));
                }
                let times: Vec<String> = interval.get("time").map(strings).unwrap_or_default();
                let (start, end) = match times.as_slice() {
                    [] => (NaiveTime::MIN, None),
                    [a, b, ..] => (parse_time(a)?, Some(parse_time(b)?)),
                    [a] => (parse_time(a)?, None),
                };
                windows.push((first, last, start, end));
            }
            if windows.is_empty() {
                return Err("the `schedule` filter needs `intervals`".into());
            }
            Ok(boxed(move |ctx| {
                let Some(local) = tz.timestamp_opt(ctx.now, 0).single() else {
                    return false;
                };
                let day = local.weekday().num_days_from_monday();
                let at = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second())
                    .unwrap_or(NaiveTime::MIN);
                windows.iter().any(|(first, last, start, end)| {
                    let day_ok = if first <= last {
                        (*first..=*last).contains(&day)
                    } else {
                        day >= *first || day <= *last
                    };
                    let time_ok = match end {
                        None => at >= *start,
                        Some(end) if start <= end => at >= *start && at < *end,
                        Some(end) => at >= *start || at < *end,
                    };
                    day_ok && time_ok
                })
            }))
        },
    );
}
