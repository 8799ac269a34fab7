//! The click write path: handlers hand finished clicks (and landing -> offer clicks) to the
//! recorder; one writer task writes them into the store in batches, in arrival order.
//!
//! How an event reaches the writer depends on `recorder.durability`:
//! - `process` (the default) and `fsync`: the event is appended to the click journal
//!   ([`crate::journal`]) before [`ClickRecorder::record`] returns, so before the visitor's
//!   answer; the writer reads the journal and confirms what the store holds. A crash loses
//!   nothing that was answered (the next start replays what was not confirmed); a store that
//!   is down only makes the journal grow; past the journal's cap clicks are answered and
//!   counted as lost.
//! - `memory`: the event goes to a bounded queue. A click that finds the queue full waits for
//!   room up to `recorder.full_wait_ms`, then is dropped and counted; a crash loses the queue.
//!
//! Either way, a batch that fails because of the store (unreachable, locked, out of space) is
//! retried with backoff (inserts are idempotent, so a retry never duplicates); one that fails
//! because of its data is split in halves until the clicks at fault are alone, and those are
//! set aside ([`SetAside`]: kept in a file, counted, replayable), so that one bad value never
//! holds up the clicks behind it. Shutdown writes what is pending within
//! `recorder.drain_timeout_ms`; with a journal, the rest stays journalled for the next start,
//! without one it is set aside.

mod set_aside;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Durability, RecorderConfig};
use crate::journal::{Journal, JournalReader, JournalStats, Position};
use crate::model::Click;
use crate::store::ClickWriter;
use crate::store::LandingClick;

pub use set_aside::SetAside;

/// Counters of the write path, exposed at /health.
#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    replayed: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    set_aside: AtomicU64,
    lost: AtomicU64,
    /// Journal records the writer has finished with (written, set aside or lost) and
    /// confirmed.
    settled: AtomicU64,
    /// Unconfirmed journal records of earlier runs found at start.
    recovered: AtomicU64,
    /// Since when (ms since the recorder started, plus one) a batch has been failing and
    /// retried; 0 while writes succeed.
    failing_since: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events accepted (journalled, or queued without a journal) since start.
    pub queued: u64,
    /// Journalled events of an earlier run read again since start (not yet confirmed then).
    pub replayed: u64,
    /// Clicks the store confirmed (new rows or already stored).
    pub written: u64,
    /// Clicks dropped because the queue was full (`memory` durability only).
    pub dropped: u64,
    /// Batch writes that failed (and were retried, or split).
    pub failed_batches: u64,
    /// Clicks kept in the set-aside file instead of the store since start.
    pub set_aside: u64,
    /// Events neither kept nor written: the journal was at its cap or could not be written,
    /// or the set-aside file could not be written.
    pub lost: u64,
    /// Events accepted and not yet settled (written, set aside or lost).
    pub backlog: u64,
    /// How long the batch being written has been failing and retried (the store is down,
    /// locked or full), in milliseconds; 0 while writes succeed.
    pub failing_ms: u64,
}

/// The handle handlers use to record clicks. Cheap to clone.
#[derive(Clone)]
pub struct ClickRecorder {
    sink: Sink,
    counters: Arc<Counters>,
    started: tokio::time::Instant,
    /// How long a click waits for room in a full queue.
    full_wait: Duration,
}

#[derive(Clone)]
enum Sink {
    Queue(mpsc::Sender<Event>),
    Journal(Journal, Arc<Handoff>),
}

/// What the writer writes, in arrival order; journalled in postcard.
#[derive(Debug, Serialize, Deserialize)]
enum Event {
    Click(Box<Click>),
    /// The visitor went from a landing to an offer.
    LandingClick(LandingClick),
}

/// Where the writer reads events from.
enum Source {
    Queue(mpsc::Receiver<Event>),
    Journal(JournalReader, Arc<Handoff>),
}

/// Journalled events handed to the writer as they are, in the journal's order, so that it
/// need not read them back and decode them; bounded: an event that finds it full is read
/// back from the journal instead (as are an earlier run's).
pub(crate) struct Handoff {
    events: std::sync::Mutex<std::collections::VecDeque<Handed>>,
    capacity: usize,
}

/// An event and where its journal record starts and ends.
pub(crate) struct Handed {
    start: Position,
    end: Position,
    event: Event,
}

impl Handoff {
    fn new(capacity: usize) -> Handoff {
        Handoff {
            events: std::sync::Mutex::new(std::collections::VecDeque::new()),
            capacity,
        }
    }

    fn events(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Handed>> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn offer(&self, handed: Handed) {
        let mut events = self.events();
        if events.len() < self.capacity {
            events.push_back(handed);
        }
    }
}

/// Owns the writer task; `shutdown` drains what is pending and waits for the last batch.
pub struct RecorderTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ClickRecorder {
    /// Starts the writer task over `store`, reading from `journal` when there is one.
    pub fn start(
        store: Arc<dyn ClickWriter>,
        config: &RecorderConfig,
        set_aside: SetAside,
        journal: Option<(Journal, JournalReader)>,
    ) -> (ClickRecorder, RecorderTask) {
        let (sink, source) = match journal {
            Some((journal, reader)) => {
                let handoff = Arc::new(Handoff::new(config.queue_capacity));
                (
                    Sink::Journal(journal, handoff.clone()),
                    Source::Journal(reader, handoff),
                )
            }
            None => {
                let (sender, receiver) = mpsc::channel(config.queue_capacity);
                (Sink::Queue(sender), Source::Queue(receiver))
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        if let Source::Journal(reader, _) = &source {
            counters
                .recovered
                .store(reader.recovered(), Ordering::Relaxed);
        }
        let started = tokio::time::Instant::now();
        let writer = writer::BatchWriter {
            store,
            stop: stop_rx,
            batch_size: config.batch_size,
            counters: counters.clone(),
            set_aside,
            started,
            drain_timeout: config.drain_timeout,
            from_journal: matches!(source, Source::Journal(..)),
            abandoned: false,
        };
        let task = tokio::spawn(writer.run(source));
        (
            ClickRecorder {
                sink,
                counters,
                started,
                full_wait: config.full_wait,
            },
            RecorderTask { stop, task },
        )
    }

    /// Records a click. With a journal, returns once it is journalled; without one, queues
    /// it (waiting at most `full_wait` for room, then dropping and counting it).
    pub async fn record(&self, click: Click) {
        let event = Event::Click(Box::new(click));
        match &self.sink {
            Sink::Journal(journal, handoff) => self.journal(journal, handoff, event).await,
            Sink::Queue(sender) => self.enqueue(sender, event).await,
        }
    }

    /// Records "this click went from its landing to `offer_id`".
    pub async fn record_landing_click(&self, click: LandingClick) {
        let event = Event::LandingClick(click);
        match &self.sink {
            Sink::Journal(journal, handoff) => self.journal(journal, handoff, event).await,
            Sink::Queue(sender) => self.enqueue(sender, event).await,
        }
    }

    async fn journal(&self, journal: &Journal, handoff: &Arc<Handoff>, event: Event) {
        // Counted before the wait: a request cancelled while it waits (the visitor went away)
        // still has its record written, and the writer will count it as settled. One that
        // fails is counted by the journal itself, where it fails (see `stats`).
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        let handoff = handoff.clone();
        let handed = move |event, start, end| handoff.offer(Handed { start, end, event });
        if let Err(error @ crate::journal::JournalError::Record(_)) =
            journal.append_owned(event, handed).await
        {
            // The journal logs the first failure of a run of them (cap, disk); a click that
            // cannot be encoded or is over the record size is logged here.
            tracing::error!(%error, "A click could not be journalled; it is counted as lost.");
        }
    }

    async fn enqueue(&self, sender: &mpsc::Sender<Event>, event: Event) {
        let sent = match sender.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) if !self.full_wait.is_zero() => {
                // The request may be cancelled while it waits (the visitor went away, a
                // timeout): the click is then counted as dropped, not lost unseen.
                let mut waiting = Waiting {
                    counters: &self.counters,
                    done: false,
                };
                let sent = sender.send_timeout(event, self.full_wait).await.is_ok();
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

    /// What an answered click survives.
    pub fn durability(&self) -> Durability {
        match &self.sink {
            Sink::Journal(journal, _) => journal.durability(),
            Sink::Queue(_) => Durability::Memory,
        }
    }

    /// The journal's size and cap, when there is a journal.
    pub fn journal_stats(&self) -> Option<JournalStats> {
        match &self.sink {
            Sink::Journal(journal, _) => Some(journal.stats()),
            Sink::Queue(_) => None,
        }
    }

    pub fn stats(&self) -> RecorderStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Appends the journal could not take were counted as queued by their request: they
        // are lost, not waiting.
        let failed = self.journal_stats().map_or(0, |j| j.failed);
        let queued = load(&self.counters.queued).saturating_sub(failed);
        // Replays count from the start: the records recovered, not the ones read so far.
        let accepted = queued + load(&self.counters.recovered);
        RecorderStats {
            queued,
            replayed: load(&self.counters.replayed),
            written: load(&self.counters.written),
            dropped: load(&self.counters.dropped),
            failed_batches: load(&self.counters.failed_batches),
            set_aside: load(&self.counters.set_aside),
            lost: load(&self.counters.lost) + failed,
            backlog: match &self.sink {
                Sink::Queue(sender) => (sender.max_capacity() - sender.capacity()) as u64,
                Sink::Journal(..) => accepted.saturating_sub(load(&self.counters.settled)),
            },
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
    /// Writes what is pending (within the drain timeout), then stops the writer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "The click writer ended abnormally.");
        }
    }
}
