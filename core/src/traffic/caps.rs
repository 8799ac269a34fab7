//! Offer conversion caps on the click path: per offer, the conversions (not rejected) since
//! midnight in the offer's `conversion_timezone`, kept in memory — restored from the store at
//! start, bumped by postbacks — so routing never asks the database. Keyed by offer id
//! (configuration), so the map is bounded by the number of offers.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use chrono::TimeZone;
use chrono_tz::Tz;

/// An offer's daily cap as the snapshot carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferCap {
    /// Conversions a day (> 0).
    pub daily: i64,
    pub timezone: Tz,
    /// Where clicks go while the cap is reached.
    pub alternative: Option<i64>,
}

/// The local day (days since 1970-01-01 in `tz`) of `at`.
fn day_of(tz: Tz, at: i64) -> i64 {
    tz.timestamp_opt(at, 0)
        .single()
        .map(|t| {
            let local = t.naive_local();
            local.and_utc().timestamp().div_euclid(86_400)
        })
        .unwrap_or_else(|| at.div_euclid(86_400))
}

/// The start (Unix seconds) of the local day of `at` in `tz`.
pub fn day_start(tz: Tz, at: i64) -> i64 {
    let day = day_of(tz, at);
    let midnight = chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp())
        .unwrap_or(day * 86_400)
}

/// Conversions per offer today (in each offer's zone).
#[derive(Debug, Default)]
pub struct ConversionCaps {
    /// offer id -> (local day, conversions that day)
    offers: RwLock<HashMap<i64, Mutex<(i64, i64)>>>,
    /// The zone each offer's count was restored from the store in: a cap added or moved to
    /// another zone later needs its count read again ([`ConversionCaps::needs_restore`]).
    restored: Mutex<HashMap<i64, Tz>>,
}

impl ConversionCaps {
    /// Today's conversions of an offer as of `now`.
    pub fn today(&self, offer: i64, tz: Tz, now: i64) -> i64 {
        let day = day_of(tz, now);
        let offers = match self.offers.read() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        offers
            .get(&offer)
            .map(|entry| {
                let entry = match entry.lock() {
                    Ok(e) => e,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if entry.0 == day { entry.1 } else { 0 }
            })
            .unwrap_or(0)
    }

    /// Whether the offer's cap is reached as of `now`.
    pub fn reached(&self, offer: i64, cap: &OfferCap, now: i64) -> bool {
        self.today(offer, cap.timezone, now) >= cap.daily
    }

    /// Adds `delta` conversions made at `at` (a rejection after counting: -1). Counts for an
    /// earlier day than the one kept are ignored; a later day starts afresh.
    pub fn add(&self, offer: i64, tz: Tz, at: i64, delta: i64) {
        let day = day_of(tz, at);
        let update = |entry: &Mutex<(i64, i64)>| {
            let mut entry = match entry.lock() {
                Ok(e) => e,
                Err(poisoned) => poisoned.into_inner(),
            };
            if entry.0 < day {
                *entry = (day, 0);
            }
            if entry.0 == day {
                entry.1 = (entry.1 + delta).max(0);
            }
        };
        {
            let offers = match self.offers.read() {
                Ok(map) => map,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(entry) = offers.get(&offer) {
                update(entry);
                return;
            }
        }
        let mut offers = match self.offers.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        update(offers.entry(offer).or_insert_with(|| Mutex::new((day, 0))));
    }

    /// Sets today's count, read from the store (at start, and when a cap is new or changed its
    /// zone).
    pub fn restore(&self, offer: i64, tz: Tz, now: i64, count: i64) {
        let mut offers = match self.offers.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        offers.insert(offer, Mutex::new((day_of(tz, now), count.max(0))));
        let mut restored = match self.restored.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        restored.insert(offer, tz);
    }

    /// Forgets the restored counts of offers that are not capped in the snapshot now serving
    /// (no cap any more, archived, or not routable): postbacks stop counting for them, so a cap
    /// they get back is read from the store again.
    pub fn keep_restored(&self, capped: &std::collections::HashSet<i64>) {
        let mut restored = match self.restored.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        restored.retain(|offer, _| capped.contains(offer));
    }

    /// Whether a cap in `tz` on `offer` has no count from the store yet: the cap was added (or
    /// moved to another zone) after the counts were restored, and postbacks were not counted
    /// for it until then.
    pub fn needs_restore(&self, offer: i64, tz: Tz) -> bool {
        let restored = match self.restored.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        restored.get(&offer) != Some(&tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_local_day() {
        let caps = ConversionCaps::default();
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        let cap = OfferCap {
            daily: 2,
            timezone: tz,
            alternative: None,
        };
        // 2026-11-21 14:00 UTC is 23:00 in Tokyo; an hour later it is the next day there.
        let evening = 1_795_269_600;
        caps.add(7, tz, evening, 1);
        caps.add(7, tz, evening, 1);
        assert!(caps.reached(7, &cap, evening));
        assert!(!caps.reached(7, &cap, evening + 3_600));
        caps.add(7, tz, evening, -1);
        assert!(!caps.reached(7, &cap, evening));
        assert_eq!(day_start(tz, evening), 1_795_186_800);
    }
}
