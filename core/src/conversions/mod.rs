//! Conversions in: reading a postback's parameters (Keitaro's `/{key}/postback?subid=…`) into
//! a typed request, mapping the network's status words, converting money into the tracker's
//! currency; recording it ([`ConversionDesk`], `record.rs`: the decision, with no HTTP in it)
//! with the outgoing postbacks it fires (`outgoing.rs`). The store records the result
//! idempotently (see `store::ReportStore`).

mod outgoing;
mod record;

pub use record::{Arrival, ConversionDesk, Decision, Verdict};

use std::collections::BTreeMap;

use crate::config::PostbackConfig;
use crate::model::{Money, SUB_ID_COUNT};
use crate::store::ConversionStatus;

/// A problem with a postback: the parameter and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PostbackError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> PostbackError {
    PostbackError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A postback as the network sent it, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Postback {
    pub sub_id: String,
    pub tid: String,
    /// The status word as sent (`approved`, `lead`, …); `sale` when none was sent.
    pub original_status: String,
    /// `None`: the status is one the request asks to ignore.
    pub status: Option<ConversionStatus>,
    /// The payout in the network's currency, when sent.
    pub payout: Option<Money>,
    pub cost: Money,
    /// Upper-case currency code of `payout` and `cost` ("" = the tracker's).
    pub currency: String,
    pub sub_id_updates: Vec<(usize, String)>,
    /// The body to answer with (`return`), if any.
    pub answer: Option<String>,
}

/// Status words networks use besides the four names, by status.
const ALIASES: &[(&str, ConversionStatus)] = &[
    ("approved", ConversionStatus::Sale),
    ("approve", ConversionStatus::Sale),
    ("confirmed", ConversionStatus::Sale),
    ("paid", ConversionStatus::Sale),
    ("pending", ConversionStatus::Lead),
    ("hold", ConversionStatus::Lead),
    ("created", ConversionStatus::Lead),
    ("declined", ConversionStatus::Rejected),
    ("canceled", ConversionStatus::Rejected),
    ("cancelled", ConversionStatus::Rejected),
    ("trash", ConversionStatus::Rejected),
    ("fraud", ConversionStatus::Rejected),
];

/// Longest value of a text parameter.
const MAX_TEXT: usize = 255;

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
}

/// Reads a postback from its parameters (query and form body together).
pub fn parse_postback(params: &BTreeMap<String, String>) -> Result<Postback, PostbackError> {
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let sub_id = get("subid")
        .or(get("sub_id"))
        .ok_or_else(|| error("subid", "is required"))?
        .to_string();
    for (name, value) in params {
        if value.chars().count() > MAX_TEXT && name != "return" {
            return Err(error(name, format!("is longer than {MAX_TEXT} characters")));
        }
    }
    let tid = get("tid").unwrap_or("").to_string();
    let original_status = get("status").unwrap_or("sale").to_string();
    let raw = original_status.to_ascii_lowercase();
    let ignored = params
        .get("ignore_status")
        .map(|list| words(list).any(|w| w == raw))
        .unwrap_or(false);
    let status = if ignored {
        None
    } else {
        let custom = ConversionStatus::ALL.into_iter().find(|status| {
            params
                .get(&format!("{}_status", status.as_str()))
                .is_some_and(|list| words(list).any(|w| w == raw))
        });
        Some(
            custom
                .or_else(|| ConversionStatus::parse(&raw))
                .or_else(|| ALIASES.iter().find(|(w, _)| *w == raw).map(|(_, s)| *s))
                .ok_or_else(|| {
                    error(
                        "status",
                        format!(
                            "unknown status `{original_status}` (lead, sale, rejected, rebill, or map it with lead_status, sale_status, rejected_status, rebill_status)"
                        ),
                    )
                })?,
        )
    };
    let money = |name: &str| -> Result<Option<Money>, PostbackError> {
        match get(name) {
            None => Ok(None),
            Some(text) => text
                .parse::<Money>()
                .map(Some)
                .map_err(|e| error(name, e.to_string())),
        }
    };
    let (payout_field, payout) = match money("payout")? {
        Some(p) => ("payout", Some(p)),
        None => ("revenue", money("revenue")?),
    };
    if payout.is_some_and(|p| p.micros() < 0) {
        return Err(error(payout_field, "must not be negative"));
    }
    if payout.is_some_and(|p| p > Money::MAX_PAYOUT) {
        return Err(error(
            payout_field,
            format!("must be at most {}", Money::MAX_PAYOUT),
        ));
    }
    let cost = money("cost")?.unwrap_or(Money::ZERO);
    if cost > Money::MAX_CLICK_COST {
        return Err(error(
            "cost",
            format!("must be at most {}", Money::MAX_CLICK_COST),
        ));
    }
    let currency = get("currency").unwrap_or("").to_ascii_uppercase();
    let well_formed = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
    if !currency.is_empty() && !well_formed {
        return Err(error(
            "currency",
            format!("`{currency}` is not a three-letter currency code"),
        ));
    }
    let mut sub_id_updates = Vec::new();
    for n in 1..=SUB_ID_COUNT {
        if let Some(value) = params.get(&format!("sub_id_{n}")) {
            sub_id_updates.push((n, value.clone()));
        }
    }
    Ok(Postback {
        sub_id,
        tid,
        original_status,
        status,
        payout,
        cost,
        currency,
        sub_id_updates,
        answer: params.get("return").cloned(),
    })
}

/// Converts `amount` in `currency` into the tracker's currency with the configured rates
/// (exact, rounded to micro-units). `None` when no rate is known.
pub fn convert(amount: Money, currency: &str, config: &PostbackConfig) -> Option<Money> {
    let currency = currency.trim().to_ascii_uppercase();
    if currency.is_empty() || currency == config.currency {
        return Some(amount);
    }
    let (_, rate) = config.rates.iter().find(|(c, _)| *c == currency)?;
    let product = i128::from(amount.micros()) * i128::from(rate.micros());
    let rounded = (product + 500_000 * product.signum()) / 1_000_000;
    i64::try_from(rounded).ok().map(Money::from_micros)
}

/// The conversions and revenue a sequence of postbacks for one click leads to, by the rules
/// the store applies (the reference model for property tests): a new (sub id, key) is a new
/// conversion; a known one moves only along [`ConversionStatus::predecessors`], taking the
/// payout when one is sent.
#[cfg(test)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversionModel {
    /// key -> (status, revenue micros)
    pub conversions: BTreeMap<String, (ConversionStatus, i64)>,
}

#[cfg(test)]
impl ConversionModel {
    pub fn apply(&mut self, key: &str, status: ConversionStatus, payout: Option<i64>) {
        match self.conversions.get_mut(key) {
            None => {
                self.conversions
                    .insert(key.to_string(), (status, payout.unwrap_or(0)));
            }
            Some((current, revenue)) => {
                if status.predecessors().contains(current) {
                    *current = status;
                    if let Some(p) = payout {
                        *revenue = p;
                    }
                }
            }
        }
    }

    /// Revenue as reports count it (leads, sales, rebills).
    pub fn revenue(&self) -> i64 {
        self.conversions
            .values()
            .filter(|(s, _)| *s != ConversionStatus::Rejected)
            .map(|(_, r)| *r)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_statuses_maps_and_money() {
        let p = parse_postback(&params(&[
            ("subid", "abc"),
            ("tid", "t1"),
            ("status", "Approved"),
            ("payout", "12.5"),
            ("currency", "eur"),
            ("sub_id_3", "x"),
        ]))
        .unwrap();
        assert_eq!(p.status, Some(ConversionStatus::Sale));
        assert_eq!(p.original_status, "Approved");
        assert_eq!(p.payout, Some(Money::from_micros(12_500_000)));
        assert_eq!(p.currency, "EUR");
        assert_eq!(p.sub_id_updates, vec![(3, "x".to_string())]);
        let custom = parse_postback(&params(&[
            ("subid", "abc"),
            ("status", "2"),
            ("rejected_status", "2,3"),
        ]))
        .unwrap();
        assert_eq!(custom.status, Some(ConversionStatus::Rejected));
        let ignored = parse_postback(&params(&[
            ("subid", "abc"),
            ("status", "hold"),
            ("ignore_status", "hold"),
        ]))
        .unwrap();
        assert_eq!(ignored.status, None);
        assert_eq!(
            parse_postback(&params(&[("subid", "a")])).unwrap().status,
            Some(ConversionStatus::Sale)
        );
        let largest = parse_postback(&params(&[
            ("subid", "a"),
            ("payout", "1000000000"),
            ("cost", "1000000"),
        ]))
        .unwrap();
        assert_eq!(largest.payout, Some(Money::MAX_PAYOUT));
        assert_eq!(largest.cost, Money::MAX_CLICK_COST);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (pairs, field) in [
            (vec![("tid", "1")], "subid"),
            (vec![("subid", "a"), ("status", "weird")], "status"),
            (vec![("subid", "a"), ("payout", "1e5")], "payout"),
            (vec![("subid", "a"), ("payout", "-1")], "payout"),
            (
                vec![("subid", "a"), ("payout", "1000000000.000001")],
                "payout",
            ),
            (
                vec![("subid", "a"), ("revenue", "9223372036854")],
                "revenue",
            ),
            (vec![("subid", "a"), ("cost", "1000000.5")], "cost"),
            (vec![("subid", "a"), ("currency", "EURO")], "currency"),
        ] {
            assert_eq!(parse_postback(&params(&pairs)).unwrap_err().field, field);
        }
    }

    #[test]
    fn converts_with_rates() {
        let config = PostbackConfig {
            keyless: false,
            currency: "USD".into(),
            rates: vec![("EUR".into(), "1.08".parse().unwrap())],
            retry_base: std::time::Duration::from_secs(1),
            max_attempts: 4,
            pending_retention: std::time::Duration::from_secs(3_600),
        };
        assert_eq!(
            convert("10".parse().unwrap(), "eur", &config),
            Some("10.8".parse().unwrap())
        );
        assert_eq!(
            convert(Money::units(3), "USD", &config),
            Some(Money::units(3))
        );
        assert_eq!(convert(Money::units(3), "GBP", &config), None);
    }
}
