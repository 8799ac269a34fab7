//! What a user-code thread publishes for the pool's watchdog: the guarded call it is in and
//! since when. A leaf of `guard`: the kind guard writes it, the pool reads it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the click's own thread publishes for the watchdog.
#[derive(Default)]
pub(super) struct Slot {
    /// The guard id of the call in progress (0: none), with [`SET_ASIDE`] once the watchdog
    /// gave up on that call.
    pub(super) call: AtomicU64,
    pub(super) started: AtomicU64,
    /// The watchdog gave up on this thread: it ends after its current job.
    pub(super) retired: AtomicBool,
    /// Releases the waiting click of the job in progress.
    pub(super) release: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// Marks a call the watchdog set aside.
pub(super) const SET_ASIDE: u64 = 1 << 63;

thread_local! {
    static SLOT: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// Called by [`KindGuard::admit`](super::KindGuard::admit): on a pool thread, publishes the
/// call.
#[inline]
pub(super) fn enter_call(kind: u64, started: u64) {
    SLOT.with(|slot| {
        if let Some(slot) = slot.borrow().as_ref() {
            slot.started.store(started, Ordering::Relaxed);
            slot.call.store(kind, Ordering::Release);
        }
    });
}

/// Called by [`KindGuard::finish`](super::KindGuard::finish): true when the watchdog set this
/// call aside meanwhile.
#[inline]
pub(super) fn leave_call() -> bool {
    SLOT.with(|slot| {
        slot.borrow()
            .as_ref()
            .is_some_and(|slot| slot.call.swap(0, Ordering::AcqRel) & SET_ASIDE != 0)
    })
}

/// Makes `slot` this thread's (a user-code pool thread, for its life).
pub(super) fn install(slot: Arc<Slot>) {
    SLOT.with(|s| *s.borrow_mut() = Some(slot));
}
