//! The macro catalogue: every value a URL template can use for a click being routed.

use std::borrow::Cow;

use chrono::TimeZone;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::ClickContext;
use crate::model::{Access, Click, macro_field};
use crate::template::MacroSource;

/// Macro values of a click, after enrichment (see `ClickContext::finish_enrichment`).
pub struct ClickMacros<'c, 'a> {
    pub ctx: &'c ClickContext<'a>,
    /// The landing -> offer link (`{offer}`), when the click is on a landing.
    pub offer_link: Option<&'c str>,
}

impl<'c, 'a> MacroSource for ClickMacros<'c, 'a> {
    fn value(&self, name: &str, args: &str) -> Option<Cow<'_, str>> {
        let ctx = self.ctx;
        let click = &ctx.click;
        let text = |s: &'c str| Some(Cow::Borrowed(s));
        match name {
            "campaign_name" => text(&ctx.campaign.name),
            "traffic_source_name" => text(&ctx.traffic_source_name),
            "token" => text(&ctx.campaign.token),
            "current_domain" => text(&ctx.visit.host),
            "offer" => match (self.offer_link, args.trim()) {
                (Some(link), "") => Some(Cow::Borrowed(link)),
                (Some(link), id) => Some(Cow::Owned(format!("{link}&offer_id={id}"))),
                (None, _) => Some(Cow::Borrowed("")),
            },
            "country_name" => Some(Cow::Owned(
                ctx.geo_cached()
                    .map(|g| g.country_name.clone())
                    .unwrap_or_default(),
            )),
            "revenue" | "profit" => Some(Cow::Borrowed("0")),
            "date" => Some(Cow::Owned(date(ctx.now, args))),
            "random" => Some(Cow::Owned(random(args))),
            "sample" => {
                let choices: Vec<&str> = args
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                Some(Cow::Owned(
                    choices
                        .choose(&mut rand::rng())
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                ))
            }
            "from_file" => Some(Cow::Owned(
                ctx.env.macro_files.pick(args).unwrap_or_default(),
            )),
            "debug" => Some(Cow::Owned(format!(
                "sub_id={} campaign={} stream={} ip={} country={} device={} bot={}",
                click.sub_id,
                click.campaign_id,
                click.stream_id.unwrap_or_default(),
                click.ip,
                click.country_code,
                click.device_type,
                click.is_bot
            ))),
            // Templates lower-case macro names, so a parameter like `clickId` is found by
            // its exact name first, then regardless of case.
            _ => click_field(click, name)
                .or_else(|| indexed(name, "sub_id_", &click.sub_ids))
                .or_else(|| indexed(name, "extra_param_", &click.extra_params))
                .or_else(|| ctx.visit.param(name).map(Cow::Borrowed))
                .or_else(|| {
                    ctx.visit
                        .query
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| Cow::Borrowed(v.as_str()))
                }),
        }
    }
}

/// The click field a macro name expands to (the names come from the click schema,
/// `model::CLICK_FIELDS`): texts as they are, numbers in decimal ("" when unset), flags as 1
/// or 0, money as a decimal.
fn click_field<'c>(click: &'c Click, name: &str) -> Option<Cow<'c, str>> {
    let field = macro_field(name)?;
    Some(match field.access {
        Access::Text(get, _) => Cow::Borrowed(get(click).as_str()),
        Access::Int(get, _) => Cow::Owned(get(click).to_string()),
        Access::OptInt(get, _) => Cow::Owned(get(click).map(|v| v.to_string()).unwrap_or_default()),
        Access::OptFloat(get, _) => {
            Cow::Owned(get(click).map(|v| v.to_string()).unwrap_or_default())
        }
        Access::Bool(get, _) => Cow::Borrowed(if get(click) { "1" } else { "0" }),
        Access::Money(get, _) => Cow::Owned(get(click).to_string()),
        Access::SubIds | Access::ExtraParams | Access::Table => return None,
    })
}

fn indexed<'v>(name: &str, prefix: &str, values: &'v [String]) -> Option<Cow<'v, str>> {
    let n: usize = name.strip_prefix(prefix)?.parse().ok()?;
    values
        .get(n.checked_sub(1)?)
        .map(|v| Cow::Borrowed(v.as_str()))
}

/// `{random:min,max}`: a whole number in [min, max] (default 0..=100).
fn random(args: &str) -> String {
    let mut bounds = args.split(',').map(|a| a.trim().parse::<i64>());
    let (min, max) = match (bounds.next(), bounds.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a.min(b), a.max(b)),
        _ => (0, 100),
    };
    rand::rng().random_range(min..=max).to_string()
}

/// `{date:FORMAT,TZ}` with PHP-style letters: Y y m n d j H G i s U; default `Y-m-d`, UTC.
fn date(now: i64, args: &str) -> String {
    let (format, zone) = match args.rsplit_once(',') {
        Some((f, z)) if z.trim().parse::<chrono_tz::Tz>().is_ok() => (f, z.trim()),
        _ => (args, "UTC"),
    };
    let format = if format.trim().is_empty() {
        "Y-m-d"
    } else {
        format
    };
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let Some(at) = tz.timestamp_opt(now, 0).single() else {
        return String::new();
    };
    let mut out = String::new();
    for c in format.chars() {
        let piece = match c {
            'Y' => at.format("%Y").to_string(),
            'y' => at.format("%y").to_string(),
            'm' => at.format("%m").to_string(),
            'n' => at.format("%-m").to_string(),
            'd' => at.format("%d").to_string(),
            'j' => at.format("%-d").to_string(),
            'H' => at.format("%H").to_string(),
            'G' => at.format("%-H").to_string(),
            'i' => at.format("%M").to_string(),
            's' => at.format("%S").to_string(),
            'U' => now.to_string(),
            other => other.to_string(),
        };
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_randoms() {
        assert_eq!(date(1_490_705_142, ""), "2017-03-28");
        assert_eq!(date(1_490_705_142, "Y-m-d H:i:s"), "2017-03-28 12:45:42");
        assert_eq!(date(1_490_705_142, "H,Asia/Tokyo"), "21");
        for _ in 0..50 {
            let v: i64 = random("5,7").parse().unwrap();
            assert!((5..=7).contains(&v));
        }
    }
}
