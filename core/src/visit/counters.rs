//! Stream hit counters for the `limit` filter: clicks per hour, per day (UTC) and in total.
//! Keyed by stream id (configuration, not visitor data), so the map's size is bounded by the
//! number of streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Counts of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    pub this_hour: u64,
    pub today: u64,
    pub total: u64,
}

#[derive(Debug, Default)]
struct StreamHits {
    hour: i64,
    day: i64,
    hits: Hits,
}

impl StreamHits {
    fn roll(&mut self, now: i64) {
        let (hour, day) = (now.div_euclid(3_600), now.div_euclid(86_400));
        if hour != self.hour {
            self.hour = hour;
            self.hits.this_hour = 0;
        }
        if day != self.day {
            self.day = day;
            self.hits.today = 0;
        }
    }
}

/// Hit counts per stream, shared by every request.
#[derive(Debug, Default)]
pub struct HitCounters {
    streams: RwLock<HashMap<i64, Arc<Mutex<StreamHits>>>>,
}

impl HitCounters {
    fn entry(&self, stream: i64) -> Arc<Mutex<StreamHits>> {
        if let Some(found) = self
            .streams
            .read()
            .ok()
            .and_then(|m| m.get(&stream).cloned())
        {
            return found;
        }
        let mut map = match self.streams.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(stream).or_default().clone()
    }

    /// The counts as of `now`.
    pub fn get(&self, stream: i64, now: i64) -> Hits {
        let entry = self.entry(stream);
        let mut hits = entry.lock().unwrap_or_else(|p| p.into_inner());
        hits.roll(now);
        hits.hits
    }

    /// Counts one click.
    pub fn add(&self, stream: i64, now: i64) {
        let entry = self.entry(stream);
        let mut hits = entry.lock().unwrap_or_else(|p| p.into_inner());
        hits.roll(now);
        hits.hits.this_hour += 1;
        hits.hits.today += 1;
        hits.hits.total += 1;
    }

    /// Seeds a stream's counts (from the store at start) as of `now`.
    pub fn seed(&self, stream: i64, now: i64, seeded: Hits) {
        let entry = self.entry(stream);
        let mut hits = entry.lock().unwrap_or_else(|p| p.into_inner());
        hits.roll(now);
        hits.hits = seeded;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_roll_over() {
        let counters = HitCounters::default();
        let t = 86_400 * 100 + 3_600 * 5 + 10;
        counters.add(1, t);
        counters.add(1, t + 1);
        assert_eq!(
            counters.get(1, t + 2),
            Hits {
                this_hour: 2,
                today: 2,
                total: 2
            }
        );
        assert_eq!(
            counters.get(1, t + 3_600),
            Hits {
                this_hour: 0,
                today: 2,
                total: 2
            }
        );
        assert_eq!(
            counters.get(1, t + 86_400),
            Hits {
                this_hour: 0,
                today: 0,
                total: 2
            }
        );
        assert_eq!(counters.get(2, t), Hits::default());
    }
}
