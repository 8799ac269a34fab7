//! A coarse clock for user code: one atomic read per look, where `Instant::now()` costs about
//! 40 ns on the machines this runs on. A ticker thread stores the time since the process's
//! first look every [`TICK`]; it parks after a second in which nobody looked and wakes on the
//! next look, so an idle tracker pays nothing for it.
//!
//! Two uses: a Rhai script charges the time between its operations against its budget on
//! *every* operation (one atomic load), and a guarded call's duration is the difference of two
//! reads. A single short call usually reads
//! 0, but the sum over many calls is an unbiased estimate of the time spent (a call of length
//! `d` crosses `d / TICK` ticks on average), which is what time budgets add up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How often the clock moves.
pub const TICK: Duration = Duration::from_millis(1);

/// After this long without a look, the ticker parks.
const IDLE_AFTER: Duration = Duration::from_secs(1);

struct Ticker {
    origin: Instant,
    /// Nanoseconds since `origin`, as of the last tick.
    now: AtomicU64,
    /// Someone looked since the ticker last checked.
    looked: AtomicBool,
    /// The ticker is parked (or about to park) on `wake`.
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

fn ticker() -> &'static Ticker {
    static TICKER: OnceLock<&'static Ticker> = OnceLock::new();
    TICKER.get_or_init(|| {
        let ticker: &'static Ticker = Box::leak(Box::new(Ticker {
            origin: Instant::now(),
            now: AtomicU64::new(0),
            looked: AtomicBool::new(true),
            parked: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        let spawned = thread::Builder::new()
            .name("switchyard-clock".into())
            .spawn(move || ticker.run());
        if let Err(error) = spawned {
            tracing::error!(%error, "Cannot start the user-code clock; script deadlines fall back to the operation limit.");
        }
        ticker
    })
}

impl Ticker {
    fn run(&self) {
        let mut quiet = Duration::ZERO;
        loop {
            thread::sleep(TICK);
            self.store_now();
            if self.looked.swap(false, Ordering::Relaxed) {
                quiet = Duration::ZERO;
                continue;
            }
            quiet += TICK;
            if quiet < IDLE_AFTER {
                continue;
            }
            let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.parked.store(true, Ordering::SeqCst);
            // A look between the swap above and `parked` being set is seen here.
            while !self.looked.load(Ordering::SeqCst) {
                guard = self.wake.wait(guard).unwrap_or_else(|p| p.into_inner());
            }
            self.parked.store(false, Ordering::SeqCst);
            drop(guard);
            self.store_now();
            quiet = Duration::ZERO;
        }
    }

    fn store_now(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.now.store(nanos, Ordering::Relaxed);
    }

    fn look(&self) -> u64 {
        if !self.looked.load(Ordering::Relaxed) {
            self.looked.store(true, Ordering::SeqCst);
            if self.parked.load(Ordering::SeqCst) {
                // The ticker slept: its value is stale, so this look reads the time itself.
                let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
                self.store_now();
                self.wake.notify_one();
            }
        }
        self.now.load(Ordering::Relaxed)
    }
}

/// The coarse time: nanoseconds since the clock started, at most [`TICK`] (plus scheduling
/// delay) behind the real time.
#[inline]
pub fn now() -> u64 {
    ticker().look()
}

/// A duration in the clock's unit.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_and_wakes_after_idling() {
        let start = now();
        thread::sleep(Duration::from_millis(20));
        let later = now();
        assert!(
            later >= start + nanos(Duration::from_millis(10)),
            "{start} -> {later}"
        );
        // Idle long enough for the ticker to park, then look: the first look reads fresh time.
        thread::sleep(IDLE_AFTER + Duration::from_millis(50));
        let woken = now();
        assert!(woken >= later + nanos(IDLE_AFTER), "{later} -> {woken}");
        thread::sleep(Duration::from_millis(20));
        assert!(now() > woken, "the ticker runs again after a look");
    }
}
