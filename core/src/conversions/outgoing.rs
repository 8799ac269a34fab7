//! The outgoing postbacks a conversion fires: the campaign's S2S postbacks and its traffic
//! source's postback URL, for the conversion's new status, with the conversion's macros
//! expanded. They are planned before the conversion is recorded and queued by the store in
//! the conversion's own transaction ([`crate::store::ConversionStore::record_conversion`]), so a
//! crash can never keep one without the other; the sending worker then delivers them.

use serde_json::Value;

use crate::model::unix_now;
use crate::outbound::{Macros, OutgoingPostback, expand, fires};
use crate::store::{NewConversion, PostbackTargets, QueuedPostback};

/// One configured postback that fires for the conversion: its method and URL template.
struct Target {
    origin: &'static str,
    method: &'static str,
    url: String,
}

/// The postbacks to queue for `new` once its id is known: `plan(targets, …)(conversion_id)`.
pub(super) fn plan(
    targets: &PostbackTargets,
    new: &NewConversion,
    currency: &str,
) -> impl Fn(i64) -> Vec<QueuedPostback> + Send + Sync + use<> {
    let status = new.status.as_str();
    let mut fired = Vec::new();
    let campaign: Vec<Value> =
        serde_json::from_str(&targets.campaign_postbacks).unwrap_or_default();
    for postback in campaign {
        let url = postback.get("url").and_then(Value::as_str).unwrap_or("");
        let statuses: Vec<String> = postback
            .get("statuses")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if url.is_empty() || !fires(&statuses, status) {
            continue;
        }
        let post = postback
            .get("method")
            .and_then(Value::as_str)
            .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
        fired.push(Target {
            origin: "campaign",
            method: if post { "POST" } else { "GET" },
            url: url.to_string(),
        });
    }
    if let Some((url, statuses)) = &targets.traffic_source
        && !url.trim().is_empty()
    {
        let statuses: Vec<String> = serde_json::from_str(statuses).unwrap_or_default();
        if fires(&statuses, status) {
            fired.push(Target {
                origin: "traffic_source",
                method: "GET",
                url: url.trim().to_string(),
            });
        }
    }
    let macros = macros(new, currency);
    move |conversion_id| {
        if fired.is_empty() {
            return Vec::new();
        }
        let mut macros = macros.clone();
        macros.push(("conversion_id", conversion_id.to_string()));
        let body: Value = macros
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        fired
            .iter()
            .map(|target| {
                OutgoingPostback {
                    conversion_id,
                    origin: target.origin,
                    method: target.method.to_string(),
                    url: expand(&target.url, &macros),
                    body: body.clone(),
                }
                .queued(unix_now())
            })
            .collect()
    }
}

/// The conversion's values a postback URL may use as `{name}` (`conversion_id` is added once
/// the conversion has its id).
fn macros(new: &NewConversion, currency: &str) -> Macros {
    let click = &new.click;
    let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let revenue = new.revenue.unwrap_or(new.default_revenue).to_string();
    vec![
        ("subid", click.sub_id.clone()),
        ("sub_id", click.sub_id.clone()),
        ("tid", new.tid.clone()),
        ("status", new.status.as_str().to_string()),
        ("original_status", new.original_status.clone()),
        ("payout", revenue.clone()),
        ("revenue", revenue),
        ("cost", new.cost.to_string()),
        ("currency", currency.to_string()),
        ("click_id", click.click_id.to_string()),
        ("campaign_id", click.campaign_id.to_string()),
        ("stream_id", id(click.stream_id)),
        ("landing_id", id(click.landing_id)),
        ("offer_id", id(click.offer_id)),
        ("ts_id", id(click.ts_id)),
    ]
}
