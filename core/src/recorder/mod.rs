//! The click write path: handlers hand finished clicks to a bounded queue; one writer task
//! drains it in batches into the store (larger batches while a backlog waits). A click that
//! finds the queue full waits for room up to `recorder.full_wait_ms` (a short overload slows
//! the answers instead of losing clicks), then is dropped and counted (a stalled database
//! never holds a visitor longer than that). A batch that fails because of the store
//! (unreachable, locked, out of space) is retried with backoff (inserts are idempotent, so a
//! retry never duplicates); one that fails because of its data is split in halves until the
//! clicks at fault are alone, and those are set aside ([`SetAside`]: kept in a file, counted,
//! replayable), so that one bad value never holds up the clicks behind it. Shutdown drains
//! everything queued before returning; what an unreachable store still refuses then is set
//! aside too.

mod set_aside;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::RecorderConfig;
use crate::model::Click;
use crate::store::LandingClick;
use crate::store::Store;

pub use set_aside::{ReplayError, ReplayReport, SetAside};

/// Counters of the write path, exposed at /health.
#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    set_aside: AtomicU64,
    lost: AtomicU64,
    /// Since when (ms since the recorder started, plus one) a batch has been failing and
    /// retried; 0 while writes succeed.
    failing_since: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RecorderStats {
    /// Clicks accepted into the queue since start.
    pub queued: u64,
    /// Clicks the store confirmed (new rows or already stored).
    pub written: u64,
    /// Clicks dropped because the queue was full.
    pub dropped: u64,
    /// Batch writes that failed (and were retried, or split).
    pub failed_batches: u64,
    /// Clicks kept in the set-aside file instead of the store since start.
    pub set_aside: u64,
    /// Clicks neither written nor set aside (the set-aside file could not be written).
    pub lost: u64,
    /// Clicks waiting in the queue now.
    pub backlog: u64,
    /// How long the batch being written has been failing and retried (the store is down,
    /// locked or full), in milliseconds; 0 while writes succeed.
    pub failing_ms: u64,
}

/// The handle handlers use to record clicks. Cheap to clone.
#[derive(Clone)]
pub struct ClickRecorder {
    sender: mpsc::Sender<Event>,
    counters: Arc<Counters>,
    started: tokio::time::Instant,
    /// How long a click waits for room in a full queue.
    full_wait: Duration,
}

/// What the writer writes, in arrival order.
#[derive(Debug)]
enum Event {
    Click(Box<Click>),
    /// The visitor went from a landing to an offer.
    LandingClick(LandingClick),
}

/// Owns the writer task; `shutdown` drains the queue and waits for the last batch.
pub struct RecorderTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ClickRecorder {
    /// Starts the writer task over `store`.
    pub fn start(
        store: Arc<dyn Store>,
        config: &RecorderConfig,
        set_aside: SetAside,
    ) -> (ClickRecorder, RecorderTask) {
        let (sender, receiver) = mpsc::channel(config.queue_capacity);
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let started = tokio::time::Instant::now();
        let writer = BatchWriter {
            store,
            receiver,
            stop: stop_rx,
            batch_size: config.batch_size,
            counters: counters.clone(),
            set_aside,
            started,
        };
        let task = tokio::spawn(writer.run());
        (
            ClickRecorder {
                sender,
                counters,
                started,
                full_wait: config.full_wait,
            },
            RecorderTask { stop, task },
        )
    }

    /// Queues a click for writing. With room in the queue this does not wait; a full queue is
    /// waited on for at most `full_wait`, then the click is dropped and counted.
    pub async fn record(&self, click: Click) {
        self.send(Event::Click(Box::new(click))).await;
    }

    /// Queues "this click went from its landing to `offer_id`".
    pub async fn record_landing_click(&self, click: LandingClick) {
        self.send(Event::LandingClick(click)).await;
    }

    async fn send(&self, event: Event) {
        let sent = match self.sender.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) if !self.full_wait.is_zero() => {
                // The request may be cancelled while it waits (the visitor went away, a
                // timeout): the click is then counted as dropped, not lost unseen.
                let mut waiting = Waiting {
                    counters: &self.counters,
                    done: false,
                };
                let sent = self
                    .sender
                    .send_timeout(event, self.full_wait)
                    .await
                    .is_ok();
                waiting.done = true;
                sent
            }
            Err(_) => false,
        };
        if sent {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
        } else {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "The click queue is full; clicks are being dropped."
                );
            }
        }
    }

    pub fn stats(&self) -> RecorderStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RecorderStats {
            queued: load(&self.counters.queued),
            written: load(&self.counters.written),
            dropped: load(&self.counters.dropped),
            failed_batches: load(&self.counters.failed_batches),
            set_aside: load(&self.counters.set_aside),
            lost: load(&self.counters.lost),
            backlog: (self.sender.max_capacity() - self.sender.capacity()) as u64,
            failing_ms: match load(&self.counters.failing_since) {
                0 => 0,
                since => (self.started.elapsed().as_millis() as u64 + 1).saturating_sub(since),
            },
        }
    }
}

/// A click waiting for room in the queue; dropped unfinished (its request cancelled), it
/// counts as dropped.
struct Waiting<'a> {
    counters: &'a Counters,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl RecorderTask {
    /// Writes everything still queued, then stops the writer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "The click writer ended abnormally.");
        }
    }
}

struct BatchWriter {
    store: Arc<dyn Store>,
    receiver: mpsc::Receiver<Event>,
    stop: watch::Receiver<bool>,
    batch_size: usize,
    counters: Arc<Counters>,
    set_aside: SetAside,
    started: tokio::time::Instant,
}

/// How one write of a part of a batch ended.
enum Attempt {
    /// Not written yet.
    Untried,
    Written,
    /// The store refused the part for its data.
    Refused(crate::store::StoreError),
    /// Shutdown gave up on an unreachable store.
    GaveUp(crate::store::StoreError),
}

/// How long the writer waits to fill a batch once it has the first click.
const FILL_WAIT: Duration = Duration::from_millis(20);

/// While a backlog waits, one transaction takes up to this many batches of it: fewer commits
/// and rollup upserts per click when the writer is behind.
const BACKLOG_BATCHES: usize = 5;

/// While running, a failing batch is retried forever (the queue absorbs the backlog); once
/// shutdown is asked, a batch gets this many more tries before its loss is logged.
const SHUTDOWN_ATTEMPTS: u32 = 5;

impl BatchWriter {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            tokio::select! {
                received = self.receiver.recv_many(&mut batch, self.batch_size) => {
                    if received == 0 {
                        break;
                    }
                    self.fill(&mut batch).await;
                    self.write(&mut batch).await;
                }
                _ = self.stop.changed() => break,
            }
        }
        // Drain: the server has stopped answering, so nothing new arrives.
        self.receiver.close();
        while self.receiver.recv_many(&mut batch, self.batch_size).await > 0 {
            self.write(&mut batch).await;
        }
        tracing::info!(
            written = self.counters.written.load(Ordering::Relaxed),
            "Click writer drained."
        );
    }

    /// Waits up to [`FILL_WAIT`] for more events so that a batch pays for one transaction
    /// instead of one per click when traffic trickles in; then takes what is already queued,
    /// without waiting, up to [`BACKLOG_BATCHES`] batches in all.
    async fn fill(&mut self, batch: &mut Vec<Event>) {
        let deadline = tokio::time::Instant::now() + FILL_WAIT;
        while batch.len() < self.batch_size {
            let room = self.batch_size - batch.len();
            match tokio::time::timeout_at(deadline, self.receiver.recv_many(batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        while batch.len() < self.batch_size * BACKLOG_BATCHES {
            match self.receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
    }

    /// Writes a batch in order: runs of clicks as one insert, landing clicks as updates.
    async fn write(&mut self, batch: &mut Vec<Event>) {
        // Sized once: a click is large, and growing the vector would copy every one moved so far.
        let mut clicks = Vec::with_capacity(batch.len());
        let mut updates = Vec::new();
        for event in batch.drain(..) {
            match event {
                Event::Click(click) => {
                    if !updates.is_empty() {
                        self.write_clicks(&mut clicks).await;
                        self.write_updates(&mut updates).await;
                    }
                    clicks.push(*click);
                }
                Event::LandingClick(update) => updates.push(update),
            }
        }
        self.write_clicks(&mut clicks).await;
        self.write_updates(&mut updates).await;
    }

    async fn write_updates(&mut self, updates: &mut Vec<LandingClick>) {
        if updates.is_empty() {
            return;
        }
        let mut attempts = 0;
        loop {
            match self.store.mark_landing_clicks(updates).await {
                Ok(_) => break,
                Err(error) => {
                    attempts += 1;
                    self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                    if attempts >= SHUTDOWN_ATTEMPTS {
                        tracing::error!(%error, lost = updates.len(), "Giving up on landing-click updates.");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100 * attempts as u64)).await;
                }
            }
        }
        updates.clear();
    }

    /// Writes `batch` (leaving it empty); a part the store refuses for its data is halved
    /// until the clicks at fault are alone, and those are set aside. Parts are written in the
    /// batch's order.
    async fn write_clicks(&mut self, batch: &mut Vec<Click>) {
        if batch.is_empty() {
            return;
        }
        let first = self.write_part(batch).await;
        if let Attempt::Written = first {
            self.counters
                .written
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
            return;
        }
        let mut pending = vec![(std::mem::take(batch), first)];
        while let Some((mut part, outcome)) = pending.pop() {
            match outcome {
                Attempt::Written => {
                    self.counters
                        .written
                        .fetch_add(part.len() as u64, Ordering::Relaxed);
                }
                Attempt::Refused(error) if part.len() == 1 => {
                    self.keep_aside(&part, &error.to_string());
                }
                Attempt::Refused(error) => {
                    tracing::warn!(%error, size = part.len(), "The store refused a click batch for its data; splitting it to find the clicks at fault.");
                    let second = part.split_off(part.len() / 2);
                    let outcome = self.write_part(&part).await;
                    // The second half is tried once the first is settled.
                    pending.push((second, Attempt::Untried));
                    pending.push((part, outcome));
                }
                Attempt::Untried => {
                    let outcome = self.write_part(&part).await;
                    pending.push((part, outcome));
                }
                Attempt::GaveUp(error) => {
                    let reason = format!("unwritten at shutdown: {error}");
                    self.keep_aside(&part, &reason);
                    for (part, _) in pending.drain(..) {
                        self.keep_aside(&part, &reason);
                    }
                }
            }
        }
    }

    /// One insert of `part`, retried with backoff while the store is the problem (for ever
    /// while running; [`SHUTDOWN_ATTEMPTS`] times once shutdown is asked).
    async fn write_part(&mut self, part: &[Click]) -> Attempt {
        let mut delay = Duration::from_millis(50);
        let mut attempts_after_stop = 0;
        let failing = &self.counters.failing_since;
        loop {
            let error = match self.store.insert_clicks(part).await {
                Ok(_) => {
                    failing.store(0, Ordering::Relaxed);
                    return Attempt::Written;
                }
                Err(error) => error,
            };
            self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            if error.is_about_the_data() {
                failing.store(0, Ordering::Relaxed);
                return Attempt::Refused(error);
            }
            if failing.load(Ordering::Relaxed) == 0 {
                let now = self.started.elapsed().as_millis() as u64 + 1;
                failing.store(now, Ordering::Relaxed);
            }
            if *self.stop.borrow() {
                attempts_after_stop += 1;
                if attempts_after_stop >= SHUTDOWN_ATTEMPTS {
                    return Attempt::GaveUp(error);
                }
            }
            tracing::warn!(%error, size = part.len(), retry_in_ms = delay.as_millis() as u64, "Writing a click batch failed; retrying.");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Keeps `clicks` in the set-aside file, counting them (as lost if even that fails).
    fn keep_aside(&self, clicks: &[Click], reason: &str) {
        for click in clicks {
            match self.set_aside.keep(click, reason) {
                Ok(()) => {
                    self.counters.set_aside.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(sub_id = %click.sub_id, reason, file = %self.set_aside.path().display(), "A click was set aside instead of written; `switchyard replay-set-aside` writes it once the cause is fixed.");
                }
                Err(error) => {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(sub_id = %click.sub_id, reason, %error, "A click could be neither written nor set aside; it is lost.");
                }
            }
        }
    }
}
