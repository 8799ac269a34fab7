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

use rhai::{Engine, ImmutableString};

use crate::model::Click;
use crate::net::IpNet;

/// A click as scripts see it. Cheap to clone (shared strings).
#[derive(Debug, Clone, Default)]
pub struct ScriptClick {
    fields: Arc<Fields>,
    pub stream_id: i64,
}

#[derive(Debug, Default)]
struct Fields {
    ip: ImmutableString,
    user_agent: ImmutableString,
    referrer: ImmutableString,
    language: ImmutableString,
    country: ImmutableString,
    region: ImmutableString,
    city: ImmutableString,
    isp: ImmutableString,
    operator: ImmutableString,
    connection_type: ImmutableString,
    device_type: ImmutableString,
    device_brand: ImmutableString,
    device_model: ImmutableString,
    os: ImmutableString,
    os_version: ImmutableString,
    browser: ImmutableString,
    browser_version: ImmutableString,
    keyword: ImmutableString,
    source: ImmutableString,
    search_engine: ImmutableString,
    sub_id: ImmutableString,
    campaign_id: i64,
    is_bot: bool,
    is_unique: bool,
    time: i64,
    sub_ids: Vec<ImmutableString>,
    extra_params: Vec<ImmutableString>,
    params: Vec<(String, ImmutableString)>,
    headers: Vec<(String, ImmutableString)>,
}

impl ScriptClick {
    /// The view of an enriched click with its query parameters and request headers.
    pub fn new(click: &Click, params: &[(String, String)], headers: &[(String, String)]) -> Self {
        let s = |text: &str| ImmutableString::from(text);
        ScriptClick {
            fields: Arc::new(Fields {
                ip: s(&click.ip),
                user_agent: s(&click.user_agent),
                referrer: s(&click.referrer),
                language: s(&click.language),
                country: s(&click.country_code),
                region: s(&click.region),
                city: s(&click.city),
                isp: s(&click.isp),
                operator: s(&click.operator),
                connection_type: s(&click.connection_type),
                device_type: s(&click.device_type),
                device_brand: s(&click.device_brand),
                device_model: s(&click.device_model),
                os: s(&click.os),
                os_version: s(&click.os_version),
                browser: s(&click.browser),
                browser_version: s(&click.browser_version),
                keyword: s(&click.keyword),
                source: s(&click.source),
                search_engine: s(&click.search_engine),
                sub_id: s(&click.sub_id),
                campaign_id: click.campaign_id,
                is_bot: click.is_bot,
                is_unique: click.is_unique_campaign,
                time: click.created_at,
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
    macro_rules! text_getters {
        ($($name:ident),*) => {
            $(engine.register_get(stringify!($name), |c: &mut ScriptClick| c.fields.$name.clone());)*
        };
    }
    text_getters!(
        ip,
        user_agent,
        referrer,
        language,
        country,
        region,
        city,
        isp,
        operator,
        connection_type,
        device_type,
        device_brand,
        device_model,
        os,
        os_version,
        browser,
        browser_version,
        keyword,
        source,
        search_engine,
        sub_id
    );
    engine.register_get("campaign_id", |c: &mut ScriptClick| c.fields.campaign_id);
    engine.register_get("stream_id", |c: &mut ScriptClick| c.stream_id);
    engine.register_get("is_bot", |c: &mut ScriptClick| c.fields.is_bot);
    engine.register_get("is_unique", |c: &mut ScriptClick| c.fields.is_unique);
    engine.register_get("time", |c: &mut ScriptClick| c.fields.time);
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
