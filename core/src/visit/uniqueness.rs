//! Visitor memory: the signed visitor cookie (per-campaign and per-stream first-seen times,
//! stream/landing/offer binding) and the server-side IP / IP+UA record, kept in a bounded
//! in-memory cache behind [`UniquenessStore`] so that a shared implementation can follow.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Signer;

/// Most campaigns and streams one cookie remembers; the oldest entries go first.
const COOKIE_ENTRIES: usize = 64;

/// Which stream, landing and offer a visitor was bound to in one campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "s")]
    pub stream: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "l")]
    pub landing: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "o")]
    pub offer: Option<i64>,
}

/// What the visitor cookie (and the Click API's `uniqueness_cookie`) carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VisitorCookie {
    /// Stream id -> when the visitor was first counted there (Unix seconds).
    #[serde(default)]
    pub streams: BTreeMap<i64, i64>,
    /// Campaign id -> when the visitor was first counted there.
    #[serde(default)]
    pub campaigns: BTreeMap<i64, i64>,
    /// When the visitor was first seen by this tracker.
    #[serde(default)]
    pub time: i64,
    /// Campaign id -> binding.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bind: BTreeMap<i64, Binding>,
    /// The visitor's code (the `{visitor_code}` macro), stable while the cookie lives.
    #[serde(default, skip_serializing_if = "String::is_empty", rename = "v")]
    pub visitor: String,
}

impl VisitorCookie {
    /// Reads a signed cookie; tampered, foreign or malformed text is a new visitor (`None`).
    pub fn decode(signer: &Signer, text: &str) -> Option<VisitorCookie> {
        let payload = signer.verify(text.trim())?;
        let data = payload.get("data")?.as_str()?;
        serde_json::from_str(data).ok()
    }

    /// Signs the cookie in Keitaro's shape: `{"data": "<json>"}` inside an HS256 token.
    pub fn encode(&self, signer: &Signer) -> String {
        signer.sign_json(&self.payload())
    }

    /// The token's payload, `{"data":"<the cookie as JSON>"}`, written in one pass (every
    /// click sends a cookie): apart from the visitor code the cookie holds only numbers, so
    /// only that code needs escaping, as a JSON string inside a JSON string. The same text as
    /// serialising the cookie and then the payload with serde (a property test holds it).
    fn payload(&self) -> String {
        // Numbers through `itoa`, not `write!`: the formatting machinery was a tenth of the
        // cookie's cost.
        fn number(out: &mut String, value: i64) {
            out.push_str(itoa::Buffer::new().format(value));
        }
        // `\"key\":` (keys are ids or one-letter names: nothing to escape).
        fn key(out: &mut String, key: &str) {
            out.push_str(r#"\""#);
            out.push_str(key);
            out.push_str(r#"\":"#);
        }
        fn times(out: &mut String, map: &BTreeMap<i64, i64>) {
            for (i, (id, at)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                key(out, itoa::Buffer::new().format(*id));
                number(out, *at);
            }
        }
        let entries = self.streams.len() + self.campaigns.len() + self.bind.len();
        let mut out = String::with_capacity(80 + 40 * entries + 2 * self.visitor.len());
        out.push_str(r#"{"data":"{\"streams\":{"#);
        times(&mut out, &self.streams);
        out.push_str(r#"},\"campaigns\":{"#);
        times(&mut out, &self.campaigns);
        out.push_str(r#"},\"time\":"#);
        number(&mut out, self.time);
        if !self.bind.is_empty() {
            out.push_str(r#",\"bind\":{"#);
            for (i, (campaign, binding)) in self.bind.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                key(&mut out, itoa::Buffer::new().format(*campaign));
                out.push('{');
                let parts = [
                    ("s", binding.stream),
                    ("l", binding.landing),
                    ("o", binding.offer),
                ];
                let mut first = true;
                for (name, value) in parts {
                    if let Some(value) = value {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        key(&mut out, name);
                        number(&mut out, value);
                    }
                }
                out.push('}');
            }
            out.push('}');
        }
        if !self.visitor.is_empty() {
            out.push_str(r#",\"v\":"#);
            if self
                .visitor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                out.push_str(r#"\""#);
                out.push_str(&self.visitor);
                out.push_str(r#"\""#);
            } else {
                // JSON inside JSON: the code's JSON string, itself escaped without its quotes.
                let inner = serde_json::to_string(&self.visitor).unwrap_or_default();
                let outer = serde_json::to_string(&inner).unwrap_or_default();
                out.push_str(
                    outer
                        .get(1..outer.len().saturating_sub(1))
                        .unwrap_or_default(),
                );
            }
        }
        out.push_str(r#"}"}"#);
        out
    }

    /// Whether the visitor was counted in `campaign` less than `ttl_seconds` ago.
    pub fn seen_campaign(&self, campaign: i64, now: i64, ttl_seconds: i64) -> bool {
        self.campaigns
            .get(&campaign)
            .is_some_and(|at| now - at < ttl_seconds)
    }

    pub fn seen_stream(&self, stream: i64, now: i64, ttl_seconds: i64) -> bool {
        self.streams
            .get(&stream)
            .is_some_and(|at| now - at < ttl_seconds)
    }

    pub fn seen_globally(&self, now: i64, ttl_seconds: i64) -> bool {
        self.time > 0 && now - self.time < ttl_seconds
    }

    /// Records a visit, restarting the window of expired entries, and keeps the cookie small.
    pub fn mark(&mut self, campaign: i64, stream: Option<i64>, now: i64, ttl_seconds: i64) {
        let refresh = |slot: &mut i64| {
            if now - *slot >= ttl_seconds {
                *slot = now;
            }
        };
        refresh(self.campaigns.entry(campaign).or_insert(now));
        if let Some(stream) = stream {
            refresh(self.streams.entry(stream).or_insert(now));
        }
        if self.time == 0 || now - self.time >= ttl_seconds {
            self.time = now;
        }
        trim_oldest(&mut self.campaigns);
        trim_oldest(&mut self.streams);
        while self.bind.len() > COOKIE_ENTRIES {
            let Some(first) = self.bind.keys().next().copied() else {
                break;
            };
            self.bind.remove(&first);
        }
    }
}

fn trim_oldest(map: &mut BTreeMap<i64, i64>) {
    while map.len() > COOKIE_ENTRIES {
        let Some((&oldest, _)) = map.iter().min_by_key(|(_, at)| **at) else {
            break;
        };
        map.remove(&oldest);
    }
}

/// What a uniqueness record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Campaign(i64),
    Stream(i64),
    Global,
}

/// Most scopes one server-side visitor record keeps (as many as the cookie's maps): past it,
/// the least recently marked go first, except the global mark, which stays.
const RECORD_SCOPES: usize = 64;

/// What the server remembers of one visitor (one IP, or one IP+UA): when it was last marked
/// in each scope. One record per visitor, not one per (scope, visitor): a click reads it with
/// a single lookup however many campaigns, streams and uniqueness filters it checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorRecord {
    seen: Arc<[(Scope, i64)]>,
}

impl VisitorRecord {
    /// When the visitor was last marked in `scope`.
    pub fn last_seen(&self, scope: Scope) -> Option<i64> {
        self.seen
            .iter()
            .find(|(s, _)| *s == scope)
            .map(|(_, at)| *at)
    }

    /// How many scopes the record holds.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// This record with every one of `scopes` marked at `at`, keeping the global mark and the
    /// most recently marked other scopes, [`RECORD_SCOPES`] in all.
    pub fn marked(&self, scopes: &[Scope], at: i64) -> VisitorRecord {
        let mut seen: Vec<(Scope, i64)> = Vec::with_capacity(self.seen.len() + scopes.len());
        seen.extend(self.seen.iter().filter(|(s, _)| !scopes.contains(s)));
        for scope in scopes {
            if !seen.iter().any(|(s, _)| s == scope) {
                seen.push((*scope, at));
            }
        }
        if seen.len() > RECORD_SCOPES {
            // Global first (it is marked once per window, so it is often the oldest), then
            // newest first; the sort is stable, so equal times keep their order.
            seen.sort_by_key(|(scope, at)| (*scope != Scope::Global, std::cmp::Reverse(*at)));
            seen.truncate(RECORD_SCOPES);
        }
        VisitorRecord { seen: seen.into() }
    }
}

/// Server-side visitor records keyed by fingerprint (IP or IP+UA). Bounded: old records are
/// evicted, so memory stays flat whatever the traffic.
pub trait UniquenessStore: Send + Sync {
    /// What the store remembers of this visitor (empty for a visitor it does not know).
    fn visitor(&self, fingerprint: u64) -> VisitorRecord;
    /// Marks the visitor in each of `scopes` at `at` and returns the record as stored. Marks
    /// of concurrent clicks of one visitor all stay.
    fn mark(&self, fingerprint: u64, scopes: &[Scope], at: i64) -> VisitorRecord;
}

/// Weighs a record by its scopes, so the store's capacity counts (scope, visitor) pairs.
#[derive(Debug, Clone, Copy)]
struct ScopeWeight;

impl quick_cache::Weighter<u64, VisitorRecord> for ScopeWeight {
    fn weight(&self, _: &u64, record: &VisitorRecord) -> u64 {
        record.len().max(1) as u64
    }
}

/// The single-node implementation: a concurrent bounded cache of visitor records.
pub struct MemoryUniqueness {
    records: quick_cache::sync::Cache<u64, VisitorRecord, ScopeWeight>,
}

/// The fewest of the largest records one shard of the cache can hold. The cache splits its
/// capacity between shards, and a record heavier than its shard's share would not be kept.
const SHARD_RECORDS: usize = 16;

impl MemoryUniqueness {
    /// Remembers at most `capacity` (scope, visitor) pairs (at least 1 024).
    pub fn new(capacity: usize) -> Self {
        let largest = RECORD_SCOPES * SHARD_RECORDS;
        let capacity = capacity.max(largest);
        let cores = std::thread::available_parallelism().map_or(4, usize::from);
        let options = quick_cache::OptionsBuilder::new()
            // A visitor is usually marked in a campaign, a stream and globally.
            .estimated_items_capacity(capacity / 3)
            .weight_capacity(capacity as u64)
            .shards((cores * 4).min(capacity / largest).max(1))
            .build()
            .expect("the capacities and shard count are set");
        MemoryUniqueness {
            records: quick_cache::sync::Cache::with_options(
                options,
                ScopeWeight,
                Default::default(),
                Default::default(),
            ),
        }
    }
}

impl UniquenessStore for MemoryUniqueness {
    fn visitor(&self, fingerprint: u64) -> VisitorRecord {
        self.records.get(&fingerprint).unwrap_or_default()
    }

    fn mark(&self, fingerprint: u64, scopes: &[Scope], at: i64) -> VisitorRecord {
        use quick_cache::sync::{EntryAction, EntryResult};
        if scopes.is_empty() {
            return self.visitor(fingerprint);
        }
        // Read, change and store under the shard's lock, so that concurrent clicks of one
        // visitor keep each other's marks (a visitor not yet known is a placeholder that a
        // second click waits on).
        let update = |_: &u64, record: &mut VisitorRecord| {
            *record = record.marked(scopes, at);
            EntryAction::Retain(record.clone())
        };
        match self.records.entry(&fingerprint, None, update) {
            EntryResult::Retained(record) => record,
            EntryResult::Vacant(slot) => {
                let record = VisitorRecord::default().marked(scopes, at);
                // Err only when the placeholder was evicted meanwhile: the mark is lost as if
                // the record had been evicted just after.
                let _ = slot.insert(record.clone());
                record
            }
            // Neither happens: the update always retains, and there is no timeout.
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => {
                VisitorRecord::default().marked(scopes, at)
            }
        }
    }
}

/// The visitor fingerprint for IP-based uniqueness: the IP, plus the UA for `ip_ua`.
pub fn fingerprint(hasher: &impl BuildHasher, ip: &str, user_agent: Option<&str>) -> u64 {
    let mut state = hasher.build_hasher();
    ip.hash(&mut state);
    if let Some(ua) = user_agent {
        ua.hash(&mut state);
    }
    state.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_and_windows() {
        let signer = Signer::new("unit-test-signing-key");
        let mut cookie = VisitorCookie::default();
        cookie.mark(2, Some(1117), 1_490_705_142, 86_400);
        cookie.bind.insert(
            2,
            Binding {
                stream: Some(1117),
                landing: None,
                offer: Some(9),
            },
        );
        let text = cookie.encode(&signer);
        let back = VisitorCookie::decode(&signer, &text).unwrap();
        assert_eq!(back, cookie);
        assert!(back.seen_campaign(2, 1_490_705_142 + 100, 86_400));
        assert!(!back.seen_campaign(2, 1_490_705_142 + 86_400, 86_400));
        assert!(!back.seen_campaign(3, 1_490_705_142, 86_400));
        assert!(back.seen_stream(1117, 1_490_705_142 + 1, 86_400));
        assert!(VisitorCookie::decode(&Signer::new("another-key-xx"), &text).is_none());
        assert!(VisitorCookie::decode(&signer, "garbage").is_none());
    }

    proptest::proptest! {
        /// The hand-written payload is exactly what serde writes for the same cookie.
        #[test]
        fn payload_is_the_serde_text(
            streams in proptest::collection::btree_map(proptest::num::i64::ANY, proptest::num::i64::ANY, 0..4),
            campaigns in proptest::collection::btree_map(proptest::num::i64::ANY, proptest::num::i64::ANY, 0..4),
            time in proptest::num::i64::ANY,
            bind in proptest::collection::btree_map(
                proptest::num::i64::ANY,
                (proptest::option::of(proptest::num::i64::ANY), proptest::option::of(proptest::num::i64::ANY), proptest::option::of(proptest::num::i64::ANY)),
                0..3,
            ),
            visitor in proptest::prop_oneof!["[a-z0-9]{0,12}", "\\PC{0,8}", "[\"\\\\\u{1}/]{0,4}"],
        ) {
            let cookie = VisitorCookie {
                streams,
                campaigns,
                time,
                bind: bind
                    .into_iter()
                    .map(|(id, (stream, landing, offer))| (id, Binding { stream, landing, offer }))
                    .collect(),
                visitor,
            };
            #[derive(Serialize)]
            struct Payload<'a> {
                data: &'a str,
            }
            let data = serde_json::to_string(&cookie).unwrap();
            let expected = serde_json::to_string(&Payload { data: &data }).unwrap();
            proptest::prop_assert_eq!(cookie.payload(), expected);
        }
    }

    #[test]
    fn cookie_stays_small() {
        let mut cookie = VisitorCookie::default();
        for i in 0..500 {
            cookie.mark(i, Some(i), 1_000 + i, 10);
        }
        assert!(cookie.campaigns.len() <= COOKIE_ENTRIES);
        assert!(cookie.streams.len() <= COOKIE_ENTRIES);
        assert!(
            cookie.campaigns.contains_key(&499),
            "the newest entries stay"
        );
    }

    #[test]
    fn memory_store_is_bounded() {
        let store = MemoryUniqueness::new(4_096);
        for i in 0..100_000u64 {
            store.mark(i, &[Scope::Global], 1);
        }
        assert!(store.records.len() <= 4_500, "{}", store.records.len());
        // Weighed by scopes: visitors marked in three scopes each fill it three times as fast.
        for i in 0..100_000u64 {
            store.mark(i, &[Scope::Global, Scope::Campaign(1), Scope::Stream(2)], 1);
        }
        let weight = store.records.weight();
        assert!(weight <= 4_500, "{weight}");
        assert!(store.records.len() <= 1_500, "{}", store.records.len());
        store.mark(42, &[Scope::Campaign(1)], 7);
        assert_eq!(store.visitor(42).last_seen(Scope::Campaign(1)), Some(7));
        assert_eq!(store.visitor(42).last_seen(Scope::Campaign(2)), None);
        assert!(store.visitor(43_000_000).is_empty());
    }

    #[test]
    fn the_smallest_store_keeps_a_full_record() {
        let store = MemoryUniqueness::new(0);
        let scopes: Vec<Scope> = (0..RECORD_SCOPES as i64).map(Scope::Stream).collect();
        let stored = store.mark(5, &scopes, 10);
        assert_eq!(stored.len(), RECORD_SCOPES);
        assert_eq!(store.visitor(5), stored, "kept, not refused as too heavy");
        // Nothing to mark: nothing stored for an unknown visitor.
        assert!(store.mark(6, &[], 10).is_empty());
        assert_eq!(store.records.len(), 1);
    }

    #[test]
    fn marks_add_and_restart_scopes_of_one_record() {
        let store = MemoryUniqueness::new(1_000);
        store.mark(7, &[Scope::Campaign(1), Scope::Global], 100);
        store.mark(7, &[Scope::Stream(3)], 200);
        let stored = store.mark(7, &[Scope::Campaign(1)], 300);
        let record = store.visitor(7);
        assert_eq!(record, stored, "mark returns the record as stored");
        assert_eq!(record.last_seen(Scope::Campaign(1)), Some(300));
        assert_eq!(record.last_seen(Scope::Global), Some(100));
        assert_eq!(record.last_seen(Scope::Stream(3)), Some(200));
        assert_eq!(record.len(), 3);
        assert!(store.visitor(8).is_empty(), "records are per fingerprint");
    }

    #[test]
    fn concurrent_marks_of_one_visitor_all_stay() {
        let store = Arc::new(MemoryUniqueness::new(1 << 16));
        let threads: Vec<_> = (0..4i64)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..12 {
                        store.mark(99, &[Scope::Stream(t * 100 + i)], 1_000);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(store.visitor(99).len(), 48, "no mark was overwritten");
    }

    #[test]
    fn a_record_keeps_its_most_recent_scopes_and_the_global_mark() {
        let mut record = VisitorRecord::default().marked(&[Scope::Global], 500);
        for i in 0..200 {
            record = record.marked(&[Scope::Stream(i)], 1_000 + i);
        }
        assert_eq!(record.len(), RECORD_SCOPES);
        assert_eq!(
            record.last_seen(Scope::Global),
            Some(500),
            "the oldest, but kept"
        );
        // The newest 63 streams: 137..=199.
        let oldest_kept = 200 - (RECORD_SCOPES as i64 - 1);
        assert_eq!(record.last_seen(Scope::Stream(199)), Some(1_199));
        assert_eq!(
            record.last_seen(Scope::Stream(oldest_kept)),
            Some(1_000 + oldest_kept)
        );
        assert_eq!(record.last_seen(Scope::Stream(oldest_kept - 1)), None);
        // Marking the oldest stream again saves it; the two next-oldest make room.
        record = record.marked(&[Scope::Stream(oldest_kept)], 5_000);
        record = record.marked(&[Scope::Stream(1_000), Scope::Stream(1_001)], 6_000);
        assert_eq!(record.len(), RECORD_SCOPES);
        assert_eq!(record.last_seen(Scope::Stream(oldest_kept)), Some(5_000));
        assert_eq!(record.last_seen(Scope::Stream(oldest_kept + 1)), None);
        assert_eq!(record.last_seen(Scope::Stream(oldest_kept + 2)), None);
        assert_eq!(
            record.last_seen(Scope::Stream(oldest_kept + 3)),
            Some(1_000 + oldest_kept + 3)
        );
        assert_eq!(record.last_seen(Scope::Stream(1_001)), Some(6_000));
        assert_eq!(record.last_seen(Scope::Global), Some(500));
    }
}
