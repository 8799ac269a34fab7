//! The user-code pool: clicks of campaigns that run scripts or native plugins are routed on a
//! few threads of their own, so that user code never runs on the async runtime's workers and a
//! slow kind cannot starve campaigns that do not use it.
//!
//! - **Bounded.** A fixed number of threads and a bounded queue. When the queue is full, the
//!   click is routed at once on the caller's thread with every user-code kind skipped
//!   ([`Skip::Overload`](super::Skip)), and counted: every click is answered.
//! - **Watched.** Each thread publishes the guarded call it is in. A watchdog looks every few
//!   milliseconds while work is outstanding: a call still running after `native_deadline` is
//!   *set aside*: its waiting click is released and re-routed (the kind is skipped while its
//!   call is out), a new thread takes the stuck one's place, and the kind is charged a
//!   timeout. A call set aside that has not returned after `hang_after` disables its kind. At
//!   most [`MAX_SET_ASIDE`] threads are ever set aside; past that no replacement is started and
//!   clicks route without user code once no thread is left.
//!
//! A synchronous call into foreign code cannot be interrupted; setting its thread aside is the
//! most an in-process host can do, and the thread ends when (if) the call returns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use serde::Serialize;

use super::clock;
use super::kind::KindGuard;
use super::policy::GuardPolicy;
use super::slot::{SET_ASIDE, Slot, install};

/// The most threads ever set aside over the process's life.
pub const MAX_SET_ASIDE: u32 = 16;

struct Job {
    run: Box<dyn FnOnce() + Send>,
    release: Box<dyn FnOnce() + Send>,
}

/// The pool's counters, for `/health` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolStatus {
    pub threads: usize,
    pub queued: usize,
    pub queue_capacity: usize,
    /// Clicks routed on the pool.
    pub routed: u64,
    /// Clicks routed without user code because the pool was full.
    pub overflowed: u64,
    /// Clicks re-routed after their thread was set aside.
    pub rerouted: u64,
    /// Threads set aside (stuck in a call) over the process's life.
    pub set_aside_threads: u32,
}

struct Shared {
    policy: GuardPolicy,
    capacity: usize,
    queue: Mutex<VecDeque<Job>>,
    work: Condvar,
    /// Jobs submitted and not finished.
    outstanding: AtomicUsize,
    watchdog_idle: Mutex<bool>,
    watchdog_wake: Condvar,
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Slots set aside whose call is still out, with when they were set aside.
    stuck: Mutex<Vec<Arc<Slot>>>,
    live_threads: AtomicUsize,
    routed: AtomicU64,
    overflowed: AtomicU64,
    rerouted: AtomicU64,
    set_aside: AtomicU32,
}

/// The pool; cheap to clone.
#[derive(Clone)]
pub struct UserCodePool {
    shared: Arc<Shared>,
}

impl UserCodePool {
    /// Starts `threads` workers (at least one) and the watchdog.
    pub fn start(threads: usize, capacity: usize, policy: &GuardPolicy) -> UserCodePool {
        let shared = Arc::new(Shared {
            policy: policy.clone(),
            capacity: capacity.max(1),
            queue: Mutex::new(VecDeque::new()),
            work: Condvar::new(),
            outstanding: AtomicUsize::new(0),
            watchdog_idle: Mutex::new(true),
            watchdog_wake: Condvar::new(),
            slots: Mutex::new(Vec::new()),
            stuck: Mutex::new(Vec::new()),
            live_threads: AtomicUsize::new(0),
            routed: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            rerouted: AtomicU64::new(0),
            set_aside: AtomicU32::new(0),
        });
        for _ in 0..threads.max(1) {
            spawn_worker(&shared);
        }
        let watched = shared.clone();
        if let Err(error) = thread::Builder::new()
            .name("switchyard-user-code-watchdog".into())
            .spawn(move || watchdog(&watched))
        {
            tracing::error!(%error, "Cannot start the user-code watchdog; stuck native calls will not be set aside.");
        }
        UserCodePool { shared }
    }

    /// Runs `work` on the pool and waits for its answer without holding the caller's thread.
    /// When the pool is full, or the job's thread is set aside twice, `work` runs on the
    /// caller's thread with user code skipped.
    pub async fn run<R, F>(&self, work: F) -> R
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let work = Arc::new(work);
        for _ in 0..2 {
            let job = work.clone();
            let Some(answer) = self.submit(move || job()) else {
                break;
            };
            match answer.await {
                Ok(Some(result)) => {
                    self.shared.routed.fetch_add(1, Ordering::Relaxed);
                    return result;
                }
                // Its thread was set aside mid-call: route the click again.
                Ok(None) => {
                    self.shared.rerouted.fetch_add(1, Ordering::Relaxed);
                }
                // The job panicked (its answer's sender is gone).
                Err(_) => break,
            }
        }
        self.shared.overflowed.fetch_add(1, Ordering::Relaxed);
        super::skip_user_code(|| work())
    }

    /// Queues `work`; `None` when the queue is full or no thread is left. The answer is
    /// `None` when the job's thread was set aside mid-call.
    fn submit<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Option<tokio::sync::oneshot::Receiver<Option<R>>> {
        let shared = &self.shared;
        if shared.live_threads.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = Arc::new(Mutex::new(Some(tx)));
        let answer = sender.clone();
        let job = Job {
            run: Box::new(move || {
                let result = work();
                if let Some(tx) = answer.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(Some(result));
                }
            }),
            release: Box::new(move || {
                if let Some(tx) = sender.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(None);
                }
            }),
        };
        {
            let mut queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            if queue.len() >= shared.capacity {
                return None;
            }
            // Counted before a worker can take (and count off) the job.
            shared.outstanding.fetch_add(1, Ordering::SeqCst);
            queue.push_back(job);
        }
        shared.work.notify_one();
        // Counted before the look, and the watchdog checks again under this lock before it
        // waits: a wake-up cannot fall between its check and its wait.
        let idle = shared
            .watchdog_idle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *idle {
            shared.watchdog_wake.notify_one();
        }
        drop(idle);
        Some(rx)
    }

    pub fn status(&self) -> PoolStatus {
        let shared = &self.shared;
        PoolStatus {
            threads: shared.live_threads.load(Ordering::Relaxed),
            queued: shared.queue.lock().unwrap_or_else(|p| p.into_inner()).len(),
            queue_capacity: shared.capacity,
            routed: shared.routed.load(Ordering::Relaxed),
            overflowed: shared.overflowed.load(Ordering::Relaxed),
            rerouted: shared.rerouted.load(Ordering::Relaxed),
            set_aside_threads: shared.set_aside.load(Ordering::Relaxed),
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>) {
    let slot = Arc::new(Slot::default());
    shared
        .slots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(slot.clone());
    shared.live_threads.fetch_add(1, Ordering::Relaxed);
    let worker = shared.clone();
    let spawned = thread::Builder::new()
        .name("switchyard-user-code".into())
        .spawn(move || work(&worker, slot));
    if let Err(error) = spawned {
        shared.live_threads.fetch_sub(1, Ordering::Relaxed);
        tracing::error!(%error, "Cannot start a user-code thread.");
    }
}

fn work(shared: &Shared, slot: Arc<Slot>) {
    install(slot.clone());
    loop {
        let job = {
            let mut queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        *slot.release.lock().unwrap_or_else(|p| p.into_inner()) = Some(job.release);
        // A panicking job drops its answer's sender: its click is routed without user code
        // (see `run`), and this thread lives on.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.run)).is_err() {
            tracing::error!(
                "Routing a click on a user-code thread panicked; the click was routed without user code."
            );
        }
        slot.release
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if slot.retired.load(Ordering::Acquire) {
            // Replaced (and its job counted off) when it was set aside: its part is over.
            shared
                .stuck
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|s| !Arc::ptr_eq(s, &slot));
            return;
        }
        shared.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

fn watchdog(shared: &Arc<Shared>) {
    let deadline = clock::nanos(shared.policy.native_deadline);
    let hang = clock::nanos(shared.policy.hang_after);
    let tick = (shared.policy.native_deadline / 4)
        .clamp(Duration::from_millis(1), Duration::from_millis(20));
    let nothing_to_watch = || {
        shared.outstanding.load(Ordering::SeqCst) == 0
            && shared
                .stuck
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    };
    loop {
        if nothing_to_watch() {
            let mut idle = shared
                .watchdog_idle
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *idle = true;
            if nothing_to_watch() {
                idle = shared
                    .watchdog_wake
                    .wait_timeout(idle, Duration::from_secs(1))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *idle = false;
            continue;
        }
        thread::sleep(tick);
        let now = clock::now();
        let slots: Vec<Arc<Slot>> = shared
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for slot in slots {
            let kind = slot.call.load(Ordering::Acquire);
            let started = slot.started.load(Ordering::Relaxed);
            if kind == 0 || kind & SET_ASIDE != 0 || now.saturating_sub(started) < deadline {
                continue;
            }
            set_aside(shared, &slot, kind, started, now);
        }
        let stuck: Vec<Arc<Slot>> = shared
            .stuck
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for slot in stuck {
            let call = slot.call.load(Ordering::Acquire);
            let started = slot.started.load(Ordering::Relaxed);
            if call != 0
                && now.saturating_sub(started) >= hang
                && let Some(guard) = KindGuard::by_id(call & !SET_ASIDE)
                && !guard.is_disabled()
            {
                guard.disable(format!(
                    "a call did not return within {} ms",
                    shared.policy.hang_after.as_millis()
                ));
            }
        }
    }
}

fn set_aside(shared: &Arc<Shared>, slot: &Arc<Slot>, kind: u64, started: u64, now: u64) {
    // Only if the thread is still in that very call.
    if slot
        .call
        .compare_exchange(kind, kind | SET_ASIDE, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    slot.retired.store(true, Ordering::Release);
    shared.outstanding.fetch_sub(1, Ordering::Relaxed);
    shared
        .slots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|s| !Arc::ptr_eq(s, slot));
    shared
        .stuck
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(slot.clone());
    shared.live_threads.fetch_sub(1, Ordering::Relaxed);
    if let Some(guard) = KindGuard::by_id(kind) {
        tracing::warn!(kind = %guard.name(), "A user-code call overran its deadline; its click goes on without it and its thread is set aside.");
        guard.set_aside(started, now);
    }
    // Bookkeeping and the replacement thread first, then the waiting click is released.
    if shared.set_aside.fetch_add(1, Ordering::Relaxed) < MAX_SET_ASIDE {
        spawn_worker(shared);
    }
    if let Some(release) = slot
        .release
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        release();
    }
}
