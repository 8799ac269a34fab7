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

/// One offer's conversions on one local day, and the zone its count was read from the store in
/// (`None`: counted here only).
#[derive(Debug)]
struct Count {
    read_in: Option<Tz>,
    day: i64,
    conversions: i64,
}

/// Conversions per offer today (in each offer's zone).
#[derive(Debug, Default)]
pub struct ConversionCaps {
    offers: RwLock<HashMap<i64, Mutex<Count>>>,
}

fn locked(count: &Mutex<Count>) -> std::sync::MutexGuard<'_, Count> {
    count
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ConversionCaps {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i64, Mutex<Count>>> {
        self.offers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i64, Mutex<Count>>> {
        self.offers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Today's conversions of an offer as of `now`.
    pub fn today(&self, offer: i64, tz: Tz, now: i64) -> i64 {
        let day = day_of(tz, now);
        self.read()
            .get(&offer)
            .map(|count| {
                let count = locked(count);
                if count.day == day {
                    count.conversions
                } else {
                    0
                }
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
        let update = |count: &Mutex<Count>| {
            let mut count = locked(count);
            if count.day < day {
                count.day = day;
                count.conversions = 0;
            }
            if count.day == day {
                count.conversions = (count.conversions + delta).max(0);
            }
        };
        if let Some(count) = self.read().get(&offer) {
            update(count);
            return;
        }
        update(self.write().entry(offer).or_insert_with(|| {
            Mutex::new(Count {
                read_in: None,
                day,
                conversions: 0,
            })
        }));
    }

    /// Sets today's count, read from the store in `tz` (at start, and when a cap is new or
    /// changed its zone).
    pub fn restore(&self, offer: i64, tz: Tz, now: i64, count: i64) {
        let count = Count {
            read_in: Some(tz),
            day: day_of(tz, now),
            conversions: count.max(0),
        };
        self.write().insert(offer, Mutex::new(count));
    }

    /// Keeps the counts of the offers capped in the snapshot now serving and forgets the rest
    /// (no cap any more, disabled, not routable): postbacks do not count for them, so a cap
    /// they get back is read from the store again.
    pub fn keep_only(&self, capped: &std::collections::HashSet<i64>) {
        self.write().retain(|offer, _| capped.contains(offer));
    }

    /// Whether a cap in `tz` on `offer` has no count read from the store in that zone yet (new
    /// to this process, moved to another zone, or back after it was forgotten).
    pub fn needs_restore(&self, offer: i64, tz: Tz) -> bool {
        self.read()
            .get(&offer)
            .is_none_or(|count| locked(count).read_in != Some(tz))
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
