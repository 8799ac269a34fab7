//! The writer task: reads events from the queue or the journal, writes them in batches, sets
//! aside the clicks the store refuses for their data.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Counters, Event, Handoff, SetAside, Source};
use crate::journal::{JournalError, JournalReader, Position};
use crate::model::Click;
use crate::store::{ClickWriter, LandingClick};

pub(super) struct BatchWriter {
    pub store: Arc<dyn ClickWriter>,
    pub stop: watch::Receiver<bool>,
    pub batch_size: usize,
    pub counters: Arc<Counters>,
    pub set_aside: SetAside,
    pub started: tokio::time::Instant,
    /// How long shutdown keeps writing what is pending.
    pub drain_timeout: Duration,
    /// Whether events come from the journal (so an unwritten one is still kept there).
    pub from_journal: bool,
    /// Set when shutdown gave up on events that stay journalled (not to be confirmed).
    pub abandoned: bool,
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

/// An event for the writer: handed over as it is, or read back from the journal.
struct Next {
    content: Content,
    /// Where its journal record ends (what to confirm once it is written).
    end: Position,
    /// Written by an earlier run.
    replayed: bool,
}

enum Content {
    Event(Event),
    Record(Vec<u8>),
}

/// Up to `limit` journalled events after the reader's cursor, in the journal's order: each
/// taken from the hand-off when it is there, read back from the journal when it is not (the
/// hand-off was full, or an earlier run wrote it).
fn next_events(
    reader: &mut JournalReader,
    handoff: &Handoff,
    limit: usize,
) -> Result<Vec<Next>, JournalError> {
    let mut next = Vec::new();
    while next.len() < limit {
        let at = reader.position();
        // The first handed event not read back already, and where it starts.
        let first = {
            let mut events = handoff.events();
            while events.front().is_some_and(|h| h.end <= at) {
                events.pop_front();
            }
            let start = events.front().map(|handed| handed.start);
            if start == Some(at)
                && let Some(handed) = events.pop_front()
            {
                drop(events);
                reader.skip_to(handed.end);
                next.push(Next {
                    content: Content::Event(handed.event),
                    end: handed.end,
                    replayed: false,
                });
                continue;
            }
            start
        };
        // A gap before the first handed event (or none handed): read it back.
        let stop = first.unwrap_or(Position {
            segment: u64::MAX,
            offset: u64::MAX,
        });
        let records = reader.read_before(limit - next.len(), stop)?;
        if records.is_empty() {
            if reader.position() != at {
                // Moved on to the next segment: look again.
                continue;
            }
            break;
        }
        next.extend(records.into_iter().map(|record| Next {
            content: Content::Record(record.payload),
            end: record.end,
            replayed: record.replayed,
        }));
    }
    Ok(next)
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
    pub async fn run(self, source: Source) {
        match source {
            Source::Queue(receiver) => self.run_queue(receiver).await,
            Source::Journal(reader, handoff) => self.run_journal(reader, handoff).await,
        }
    }

    async fn run_queue(mut self, mut receiver: mpsc::Receiver<Event>) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            tokio::select! {
                received = receiver.recv_many(&mut batch, self.batch_size) => {
                    if received == 0 {
                        break;
                    }
                    self.fill(&mut receiver, &mut batch).await;
                    self.write(&mut batch).await;
                }
                _ = self.stop.changed() => break,
            }
        }
        // Drain: the server has stopped answering, so nothing new arrives.
        receiver.close();
        while receiver.recv_many(&mut batch, self.batch_size).await > 0 {
            self.write(&mut batch).await;
        }
        tracing::info!(
            written = self.counters.written.load(Ordering::Relaxed),
            "Click writer drained."
        );
    }

    /// Feeds the store from the journal: reads what was appended, writes it, confirms it.
    async fn run_journal(mut self, mut reader: JournalReader, handoff: Arc<Handoff>) {
        let limit = self.batch_size * BACKLOG_BATCHES;
        let mut replay_logged = false;
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut deadline = None;
        let mut last_read = 0;
        loop {
            if !*self.stop.borrow() && last_read > 0 && last_read < self.batch_size {
                // A short batch: let more clicks gather before the next transaction, as a
                // batch from the queue waits to fill (a transaction's fixed cost, rollups
                // included, is then shared by more clicks).
                tokio::select! {
                    _ = tokio::time::sleep(FILL_WAIT) => {}
                    _ = self.stop.changed() => {}
                }
            }
            // Read after any wait: a stop seen while waiting is not signalled again.
            let stopping = *self.stop.borrow();
            if stopping && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + self.drain_timeout);
            }
            let records = match next_events(&mut reader, &handoff, limit) {
                Ok(records) => records,
                Err(error) => {
                    tracing::error!(%error, "Reading the journal failed; retrying.");
                    if stopping {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            last_read = records.len();
            let Some(end) = records.last().map(|r| r.end) else {
                if stopping {
                    break;
                }
                tokio::select! {
                    _ = reader.changed() => {}
                    changed = self.stop.changed() => {
                        if changed.is_err() {
                            // The task's owner is gone without asking for a shutdown.
                            break;
                        }
                        continue;
                    }
                }
                // Let concurrent clicks gather into one transaction.
                tokio::time::sleep(FILL_WAIT).await;
                continue;
            };
            let read = records.len() as u64;
            let replayed = records.iter().filter(|r| r.replayed).count() as u64;
            self.counters
                .replayed
                .fetch_add(replayed, Ordering::Relaxed);
            for record in records {
                let payload = match record.content {
                    Content::Event(event) => {
                        batch.push(event);
                        continue;
                    }
                    Content::Record(payload) => payload,
                };
                match postcard::from_bytes::<Event>(&payload) {
                    Ok(event) => batch.push(event),
                    Err(error) => {
                        // A whole, checksummed record that does not decode: written by
                        // another version of Switchyard. Kept aside as it is, never a loop.
                        match self.set_aside.keep_record("undecodable.journal", &payload) {
                            Ok(()) => self.counters.set_aside.fetch_add(1, Ordering::Relaxed),
                            Err(_) => self.counters.lost.fetch_add(1, Ordering::Relaxed),
                        };
                        tracing::error!(%error, at = ?record.end, "A journal record could not be decoded; it is kept in set-aside/undecodable.journal.");
                    }
                }
            }
            // A write under way when shutdown is asked gets the drain timeout too (a locked
            // or unreachable store would otherwise hold shutdown for its retries).
            let mut stop = self.stop.clone();
            let drain_timeout = self.drain_timeout;
            let written = {
                let write = self.write(&mut batch);
                tokio::pin!(write);
                loop {
                    match deadline {
                        Some(deadline) => {
                            break tokio::time::timeout_at(deadline, &mut write).await.is_ok();
                        }
                        None => tokio::select! {
                            _ = &mut write => break true,
                            _ = stop.changed() => {
                                deadline = Some(tokio::time::Instant::now() + drain_timeout);
                            }
                        },
                    }
                }
            };
            batch.clear();
            if !written || self.abandoned {
                tracing::warn!(
                    "Shutdown left unwritten clicks in the journal; the next start writes them."
                );
                break;
            }
            self.counters.settled.fetch_add(read, Ordering::Relaxed);
            if let Err(error) = reader.confirm(end) {
                tracing::error!(%error, "Confirming journal records failed; they will be written again (idempotently) at the next start.");
            }
            let replayed_total = self.counters.replayed.load(Ordering::Relaxed);
            if !replay_logged
                && replayed_total > 0
                && (replayed < limit as u64 || reader.caught_up())
            {
                replay_logged = true;
                tracing::info!(
                    replayed = replayed_total,
                    "The journal's records from the previous run were written."
                );
            }
        }
        tracing::info!(
            written = self.counters.written.load(Ordering::Relaxed),
            "Click writer stopped."
        );
    }

    /// Waits up to [`FILL_WAIT`] for more events so that a batch pays for one transaction
    /// instead of one per click when traffic trickles in; then takes what is already queued,
    /// without waiting, up to [`BACKLOG_BATCHES`] batches in all.
    async fn fill(&mut self, receiver: &mut mpsc::Receiver<Event>, batch: &mut Vec<Event>) {
        let deadline = tokio::time::Instant::now() + FILL_WAIT;
        while batch.len() < self.batch_size {
            let room = self.batch_size - batch.len();
            match tokio::time::timeout_at(deadline, receiver.recv_many(batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        while batch.len() < self.batch_size * BACKLOG_BATCHES {
            match receiver.try_recv() {
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

    /// Stamps landing clicks, retried with backoff while the store is the problem (for ever
    /// while running; [`SHUTDOWN_ATTEMPTS`] times once shutdown is asked, after which they
    /// stay journalled, or without a journal are logged as lost).
    async fn write_updates(&mut self, updates: &mut Vec<LandingClick>) {
        if updates.is_empty() {
            return;
        }
        let mut attempts = 0;
        let mut delay = Duration::from_millis(50);
        loop {
            match self.store.mark_landing_clicks(updates).await {
                Ok(_) => break,
                Err(error) => {
                    self.counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                    if *self.stop.borrow() || error.is_about_the_data() {
                        attempts += 1;
                    }
                    if attempts >= SHUTDOWN_ATTEMPTS {
                        if self.journalled() && !error.is_about_the_data() {
                            self.abandoned = true;
                        } else {
                            self.counters
                                .lost
                                .fetch_add(updates.len() as u64, Ordering::Relaxed);
                            tracing::error!(%error, lost = updates.len(), "Giving up on landing-click updates.");
                        }
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
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
                Attempt::GaveUp(_) if self.journalled() => {
                    // Still journalled: the next start writes them.
                    self.abandoned = true;
                    return;
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

    fn journalled(&self) -> bool {
        self.from_journal
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Durability;
    use crate::journal::Journal;

    /// An event whose size forces a new segment now and then.
    fn event(n: usize, big: bool) -> Event {
        Event::LandingClick(LandingClick {
            sub_id: format!("s{n}"),
            offer_id: n as i64,
            at: 0,
            destination: if big {
                "x".repeat(3 << 20)
            } else {
                String::new()
            },
        })
    }

    /// The offer id of a landing click, handed over or read back.
    fn offer_of(next: Next) -> i64 {
        let event = match next.content {
            Content::Event(event) => event,
            Content::Record(payload) => postcard::from_bytes(&payload).unwrap(),
        };
        match event {
            Event::LandingClick(click) => click.offer_id,
            Event::Click(_) => -1,
        }
    }

    proptest! {
        /// A click, as journalled (postcard, in the recorder's event), decodes to the same
        /// click, whatever its texts, numbers and flags.
        #[test]
        fn a_journalled_click_reads_back(
            texts in prop::collection::vec(".{0,40}", 8),
            numbers in prop::collection::vec(any::<i64>(), 4),
            coordinates in prop::option::of((-90.0f64..90.0, -180.0f64..180.0)),
            flags in prop::collection::vec(any::<bool>(), 5),
            sub_ids in prop::collection::vec(".{0,12}", crate::model::SUB_ID_COUNT),
        ) {
            let mut click = Click::blank();
            click.sub_id = texts[0].clone();
            click.user_agent = texts[1].clone();
            click.ip = texts[2].clone();
            click.params = texts[3].clone();
            click.request_url = texts[4].clone();
            click.city = texts[5].clone();
            click.destination = texts[6].clone();
            click.extra_params[9] = texts[7].clone();
            click.campaign_id = numbers[0];
            click.stream_id = Some(numbers[1]);
            click.created_at = numbers[2];
            click.cost = crate::model::Money::from_micros(numbers[3]);
            click.latitude = coordinates.map(|c| c.0);
            click.longitude = coordinates.map(|c| c.1);
            click.is_unique_campaign = flags[0];
            click.is_unique_stream = flags[1];
            click.is_unique_global = flags[2];
            click.is_bot = flags[3];
            click.is_using_proxy = flags[4];
            click.sub_ids = sub_ids;
            let bytes = postcard::to_allocvec(&Event::Click(Box::new(click.clone()))).unwrap();
            match postcard::from_bytes::<Event>(&bytes).unwrap() {
                Event::Click(read) => prop_assert_eq!(*read, click),
                Event::LandingClick(_) => prop_assert!(false, "read back as a landing click"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the hand-off's room and however reads interleave with appends, the writer
        /// gets every event once, in the journal's order, partly handed over, partly read back.
        #[test]
        fn events_come_once_and_in_order(
            capacity in 0usize..4,
            steps in prop::collection::vec((any::<bool>(), 0usize..3, 1usize..6), 1..30),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (journal, mut reader, _) =
                    Journal::open(dir.path(), Durability::Process, u64::MAX).unwrap();
                let handoff = Arc::new(Handoff::new(capacity));
                let mut appended = 0usize;
                let mut seen = Vec::new();
                for (big, reads, limit) in steps {
                    let handed = handoff.clone();
                    journal
                        .append_owned(event(appended, big && appended.is_multiple_of(5)), move |event, start, end| {
                            handed.offer(super::super::Handed { start, end, event })
                        })
                        .await
                        .unwrap();
                    appended += 1;
                    for _ in 0..reads {
                        for next in next_events(&mut reader, &handoff, limit).unwrap() {
                            seen.push(offer_of(next));
                        }
                    }
                }
                loop {
                    let next = next_events(&mut reader, &handoff, 7).unwrap();
                    if next.is_empty() {
                        break;
                    }
                    seen.extend(next.into_iter().map(offer_of));
                }
                let expected: Vec<i64> = (0..appended as i64).collect();
                assert_eq!(seen, expected);
                assert!(reader.caught_up());
            });
        }
    }
}
