//! Bot signals: the crawler-user-agents pattern list (vendored in
//! `core/data/crawler-user-agents/`) compiled into one regex, a configured list of bot
//! networks, and browser prefetch/preview requests.

use std::net::IpAddr;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::EnrichError;
use crate::net::IpNet;

/// Bot list entries as networks; entries that do not parse are skipped with a warning.
pub fn bot_networks(entries: &[String]) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for entry in entries {
        match entry.parse::<IpNet>() {
            Ok(net) => nets.push(net),
            Err(error) => tracing::warn!(entry, %error, "Skipping a bot list entry."),
        }
    }
    nets
}

/// crawler-user-agents.json as published (patterns plus sample `instances`).
const CRAWLER_JSON: &str = include_str!("../../data/crawler-user-agents/crawler-user-agents.json");

/// The union of ~1,500 patterns needs a far larger lazy DFA than the regex crate's default
/// (2 MiB): with the default the cache thrashes on crawler UAs and a match costs ≈290 µs
/// instead of well under 1 µs (release build, the list's own samples). The memory is per
/// matching thread, and only what is touched is used.
const DFA_SIZE_LIMIT: usize = 64 << 20;
/// Limit on the compiled program. The regex crate's 10 MiB default is enough for list 1.60.0;
/// the headroom keeps a longer list from failing start-up.
const SIZE_LIMIT: usize = 64 << 20;

#[derive(Deserialize)]
pub(super) struct CrawlerEntry {
    pub(super) pattern: String,
    /// Sample UAs, read by the tests only.
    #[serde(default)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) instances: Vec<String>,
}

pub(super) fn crawler_entries() -> Result<Vec<CrawlerEntry>, EnrichError> {
    serde_json::from_str(CRAWLER_JSON).map_err(|e| EnrichError::BundledData {
        dataset: "crawler-user-agents.json",
        reason: e.to_string(),
    })
}

/// How many distinct User-Agents the crawler verdicts are remembered for. Matching the union
/// of ~1,500 patterns costs several microseconds of lazy-DFA work per UA (the largest part of
/// `finish_enrichment` in bench/callgrind.sh); real traffic repeats a small set of UAs.
const VERDICT_CACHE: usize = 20_000;
/// Longer UAs are matched every time, so a flood of huge unique UAs cannot grow the cache.
const MAX_CACHED_UA_BYTES: usize = 1024;

/// Decides whether a visit comes from a robot rather than a person. Build one per process and
/// share it.
pub struct BotDetector {
    crawlers: Regex,
    /// UA -> whether it matches a crawler pattern.
    verdicts: quick_cache::sync::Cache<String, bool>,
    /// The stored bot list; replaced whole when the Admin API changes it.
    networks: arc_swap::ArcSwap<Vec<IpNet>>,
}

impl std::fmt::Debug for BotDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotDetector")
            .field("cached_verdicts", &self.verdicts.len())
            .field("networks", &self.networks.load().len())
            .finish_non_exhaustive()
    }
}

impl BotDetector {
    /// Compiles the bundled crawler patterns; `extra_ips` are networks whose every visit is a
    /// bot (the configured list).
    pub fn new(extra_ips: &[IpNet]) -> Result<BotDetector, EnrichError> {
        let entries = crawler_entries()?;
        let union = entries
            .iter()
            .map(|e| format!("(?:{})", e.pattern))
            .collect::<Vec<_>>()
            .join("|");
        let crawlers = RegexBuilder::new(&union)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| EnrichError::BundledData {
                dataset: "crawler-user-agents.json",
                reason: e.to_string(),
            })?;
        Ok(BotDetector {
            crawlers,
            verdicts: quick_cache::sync::Cache::new(VERDICT_CACHE),
            networks: arc_swap::ArcSwap::from_pointee(extra_ips.to_vec()),
        })
    }

    /// True for an empty or blank UA, or one matching a known crawler pattern
    /// (case-sensitive, as the list is written).
    pub fn is_bot_user_agent(&self, ua: &str) -> bool {
        if ua.trim().is_empty() {
            return true;
        }
        if ua.len() > MAX_CACHED_UA_BYTES {
            return self.crawlers.is_match(ua);
        }
        let Ok(verdict) = self.verdicts.get_or_insert_with(ua, || {
            Ok::<_, std::convert::Infallible>(self.crawlers.is_match(ua))
        });
        verdict
    }

    /// True when `ip` is in one of the configured bot networks (a linear scan: the list is
    /// meant to be short).
    pub fn is_bot_ip(&self, ip: IpAddr) -> bool {
        self.networks.load().iter().any(|net| net.contains(ip))
    }

    /// Replaces the bot list (clicks routed after this call see the new one).
    pub fn set_networks(&self, networks: Vec<IpNet>) {
        self.networks.store(std::sync::Arc::new(networks));
    }
}

/// True when one request header marks a browser's speculative request (link prefetch,
/// prerender, a Safari Top Sites preview): `Purpose: prefetch`, `Sec-Purpose:
/// prefetch[;prerender]`, `X-Moz: prefetch` or `X-Purpose: preview` (the first item of the value,
/// any case). Such a request is not a visit by a person.
pub fn is_prefetch_header(name: &str, value: &str) -> bool {
    let named = |wanted: &str| name.eq_ignore_ascii_case(wanted);
    let wanted = if named("purpose") || named("sec-purpose") || named("x-moz") {
        "prefetch"
    } else if named("x-purpose") {
        "preview"
    } else {
        return false;
    };
    let first = value.split([',', ';']).next().unwrap_or_default().trim();
    first.eq_ignore_ascii_case(wanted)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::enrich::device::tests::CASES;

    fn detector() -> BotDetector {
        BotDetector::new(&[]).unwrap()
    }

    #[test]
    fn every_sample_shipped_with_the_list_is_a_bot() {
        let bots = detector();
        let entries = crawler_entries().unwrap();
        let samples: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.instances.iter().map(String::as_str))
            .collect();
        let missed: Vec<&str> = samples
            .iter()
            .copied()
            .filter(|ua| !bots.is_bot_user_agent(ua))
            .collect();
        assert!(samples.len() > 2000, "{} samples", samples.len());
        assert!(
            missed.is_empty(),
            "{} of {} missed: {missed:#?}",
            missed.len(),
            samples.len()
        );
    }

    #[test]
    fn browsers_are_not_bots_and_known_bots_are() {
        let bots = detector();
        // Twice: the second round answers from the verdict cache.
        for case in CASES.iter().chain(CASES) {
            assert_eq!(bots.is_bot_user_agent(case.ua), case.bot, "{:?}", case.ua);
        }
        let long_bot = format!("Googlebot/2.1 {}", "x".repeat(MAX_CACHED_UA_BYTES));
        assert!(bots.is_bot_user_agent(&long_bot));
        assert!(bots.is_bot_user_agent(&long_bot));
        assert!(bots.is_bot_user_agent(" \t"));
    }

    #[test]
    fn configured_networks_are_bots() {
        let nets: Vec<IpNet> = ["66.249.64.0/19", "2001:4860:4801::/48", "203.0.113.7"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let bots = BotDetector::new(&nets).unwrap();
        for ip in [
            "66.249.66.1",
            "::ffff:66.249.70.3",
            "2001:4860:4801:10::1",
            "203.0.113.7",
        ] {
            assert!(bots.is_bot_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["66.249.96.1", "2001:4860:4802::1", "203.0.113.8", "8.8.8.8"] {
            assert!(!bots.is_bot_ip(ip.parse().unwrap()), "{ip}");
        }
        assert!(!detector().is_bot_ip("66.249.66.1".parse().unwrap()));
    }

    #[test]
    fn prefetch_headers() {
        // Through the visit, as the click path asks.
        let with = |name: &str, value: &str| {
            let mut visit = crate::visit::Visit::new("203.0.113.1".parse().unwrap(), "UA");
            visit.headers = vec![(name.to_string(), value.to_string())];
            visit
        };
        for (name, value) in [
            ("purpose", "prefetch"),
            ("sec-purpose", "prefetch"),
            ("sec-purpose", "prefetch;prerender"),
            ("sec-purpose", "Prefetch; anonymous-client-ip"),
            ("x-moz", "prefetch"),
            ("x-purpose", "preview"),
        ] {
            assert!(with(name, value).is_prefetch(), "{name}: {value}");
        }
        for (name, value) in [
            ("purpose", "navigate"),
            ("sec-purpose", "prerender"),
            ("x-moz", "other"),
            ("x-purpose", "prefetch"),
            ("sec-fetch-dest", "document"),
        ] {
            assert!(!with(name, value).is_prefetch(), "{name}: {value}");
        }
        assert!(!crate::visit::Visit::new("203.0.113.1".parse().unwrap(), "UA").is_prefetch());
    }

    /// `cargo test -p switchyard --lib enrich::bot -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, not a check"]
    fn timing() {
        let start = Instant::now();
        let bots = detector();
        println!("BotDetector::new: {:?}", start.elapsed());
        let browsers: Vec<&str> = CASES.iter().filter(|c| !c.bot).map(|c| c.ua).collect();
        let entries = crawler_entries().unwrap();
        let samples: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.instances.iter().map(String::as_str))
            .collect();
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .map(str::to_owned)
                })
                .unwrap_or_default()
        };
        println!("before matching: {}", rss());
        for (name, uas, rounds) in [
            ("browsers", &browsers, 2000),
            ("crawler samples", &samples, 20),
        ] {
            // The first pass fills the lazy DFA; measure the later ones.
            for ua in uas.iter() {
                bots.is_bot_user_agent(ua);
            }
            let start = Instant::now();
            for _ in 0..rounds {
                for ua in uas.iter() {
                    std::hint::black_box(bots.is_bot_user_agent(ua));
                }
            }
            let per = start.elapsed() / (rounds * uas.len()) as u32;
            println!("{name} ({}): {per:?} per UA; {}", uas.len(), rss());
        }
    }
}
