//! What a script sees of a click: the read-only `Click` type and a small helper API.
//!
//! Getters (all strings unless noted): `ip`, `user_agent`, `referrer`, `language`, `country`
//! (ISO code), `region`, `city`, `isp`, `operator`, `connection_type`, `device_type`,
//! `device_brand`, `device_model`, `os`, `os_version`, `browser`, `browser_version`, `keyword`,
//! `source`, `search_engine`, `sub_id`, `campaign_id` (int), `stream_id` (int, 0 when none),
//! `is_bot` (bool), `is_unique` (bool, in the campaign), `time` (int, Unix seconds).
//! Methods: `click.param("name")` (a query parameter, "" when absent), `click.sub_id_n(n)`,
//! `click.extra_param(n)`, `click.header("name")`.
//! Functions: `hash(text)` (a stable non-negative int, for bucketing), `ip_in(ip, "cidr")`.

use std::sync::Arc;

use rhai::{Dynamic, Engine, ImmutableString};

use crate::model::{CLICK_FIELDS, Click, ClickField, FieldValue};
use crate::net::IpNet;

/// A click as scripts see it. Cheap to clone (shared strings).
#[derive(Debug, Clone, Default)]
pub struct ScriptClick {
    fields: Arc<Fields>,
    pub stream_id: i64,
}

#[derive(Debug, Default)]
struct Fields {
    /// The values of [`script_fields`], in that order.
    values: Vec<Dynamic>,
    sub_ids: Vec<ImmutableString>,
    extra_params: Vec<ImmutableString>,
    params: Vec<(String, ImmutableString)>,
    headers: Vec<(String, ImmutableString)>,
}

/// The click fields scripts see, from the click schema (`model::CLICK_FIELDS`).
fn script_fields() -> impl Iterator<Item = (&'static str, &'static ClickField)> {
    CLICK_FIELDS
        .iter()
        .filter_map(|field| Some((field.script?, field)))
}

impl ScriptClick {
    /// The view of an enriched click with its query parameters and request headers.
    pub fn new(click: &Click, params: &[(String, String)], headers: &[(String, String)]) -> Self {
        let s = |text: &str| ImmutableString::from(text);
        let values = script_fields()
            .map(|(_, field)| match field.value(click) {
                Some(FieldValue::Text(text)) => Dynamic::from(s(text)),
                Some(FieldValue::Int(n)) => Dynamic::from(n),
                Some(FieldValue::OptInt(n)) => Dynamic::from(n.unwrap_or_default()),
                Some(FieldValue::OptFloat(x)) => Dynamic::from(x.unwrap_or_default()),
                Some(FieldValue::Bool(b)) => Dynamic::from(b),
                None => Dynamic::UNIT,
            })
            .collect();
        ScriptClick {
            fields: Arc::new(Fields {
                values,
                sub_ids: click.sub_ids.iter().map(|v| s(v)).collect(),
                extra_params: click.extra_params.iter().map(|v| s(v)).collect(),
                params: params.iter().map(|(k, v)| (k.clone(), s(v))).collect(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), s(v)))
                    .collect(),
            }),
            stream_id: click.stream_id.unwrap_or_default(),
        }
    }
}

fn lookup(list: &[(String, ImmutableString)], name: &str) -> ImmutableString {
    list.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn nth(list: &[ImmutableString], n: i64) -> ImmutableString {
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| list.get(i).cloned())
        .unwrap_or_default()
}

/// Registers the `Click` type and the helper functions.
pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptClick>("Click");
    for (i, (name, _)) in script_fields().enumerate() {
        engine.register_get(name, move |c: &mut ScriptClick| c.fields.values[i].clone());
    }
    engine.register_get("stream_id", |c: &mut ScriptClick| c.stream_id);
    engine.register_fn("param", |c: &mut ScriptClick, name: &str| {
        lookup(&c.fields.params, name)
    });
    engine.register_fn("header", |c: &mut ScriptClick, name: &str| {
        lookup(&c.fields.headers, &name.to_ascii_lowercase())
    });
    engine.register_fn("sub_id_n", |c: &mut ScriptClick, n: i64| {
        nth(&c.fields.sub_ids, n)
    });
    engine.register_fn("extra_param", |c: &mut ScriptClick, n: i64| {
        nth(&c.fields.extra_params, n)
    });
    engine.register_fn("hash", |text: &str| {
        // FNV-1a: stable across processes and versions (unlike the std hasher).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash >> 1) as i64
    });
    engine.register_fn("ip_in", |ip: &str, net: &str| -> bool {
        match (ip.parse(), net.parse::<IpNet>()) {
            (Ok(ip), Ok(net)) => net.contains(ip),
            _ => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The getters the module's documentation (and the README) promise are the schema's.
    #[test]
    fn the_documented_getters_come_from_the_schema() {
        let mut names: Vec<&str> = script_fields().map(|(name, _)| name).collect();
        names.sort_unstable();
        let mut documented = vec![
            "ip",
            "user_agent",
            "referrer",
            "language",
            "country",
            "region",
            "city",
            "isp",
            "operator",
            "connection_type",
            "device_type",
            "device_brand",
            "device_model",
            "os",
            "os_version",
            "browser",
            "browser_version",
            "keyword",
            "source",
            "search_engine",
            "sub_id",
            "campaign_id",
            "is_bot",
            "is_unique",
            "time",
        ];
        documented.sort_unstable();
        assert_eq!(names, documented);
    }
}
