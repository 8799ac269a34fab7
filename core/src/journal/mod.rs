//! The click journal: an append-only log in the data directory (`journal/`) that every
//! answered click is written to before its answer, and that the store is fed from.
//!
//! The contract:
//! - [`Journal::append`] returns once the record is written to the OS (durability `process`:
//!   it survives a crash or SIGKILL of the tracker; the caller's thread writes it, one `write`
//!   under the active segment's lock) or also synced to the disk (`fsync`: it survives power
//!   loss; appends from concurrent requests are written together by one writer thread, one
//!   `write` and one `fdatasync` per group, so no runtime thread waits for the disk).
//! - Records live in segment files (see [`segment`]) of at most [`SEGMENT_BYTES`]; the writer
//!   starts a new segment at each start and when one is full.
//! - A [`JournalReader`] reads the records in append order; [`JournalReader::confirm`] says
//!   that the store holds everything up to a position: the position is kept in
//!   `journal/confirmed`, and segments wholly before it are deleted.
//! - [`Journal::open`] cuts a torn tail back to the last whole record (reported in
//!   [`Recovery`], never an error) and positions the reader after the last confirmed record,
//!   so unconfirmed records are read again (the store's inserts are idempotent).
//! - One process at a time: `journal/lock` is held while the journal is open.
//! - Past `max_bytes` on disk an append fails with [`JournalError::Full`]: the caller answers
//!   anyway and counts the record as lost; the first such failure is logged.

pub(crate) mod segment;

pub(crate) use segment::frame as frame_record;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{oneshot, watch};

use crate::config::Durability;

use segment::HEADER;

/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 8 << 20;

/// How long opening waits for another holder of the journal's lock to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Most appends written by one group commit.
const GROUP: usize = 4096;

/// A place in the journal: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// Why the journal could not take or give a record.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal is at its size cap ({max_bytes} bytes)")]
    Full { max_bytes: u64 },
    #[error("a record cannot be journalled: {0}")]
    Record(String),
    #[error("the journal is closed")]
    Closed,
    #[error(
        "the journal {path} is in use by another process (two trackers cannot share a data directory)"
    )]
    Locked { path: String },
    #[error("journal {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |error| JournalError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// What opening the journal found from the previous run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments left by earlier runs (not yet wholly confirmed).
    pub segments: usize,
    /// Bytes cut from torn tails.
    pub torn_bytes: u64,
    /// Whole records not yet confirmed: the reader reads them first.
    pub records: u64,
}

/// State shared by the handle, the writer thread and the reader.
struct Shared {
    dir: PathBuf,
    durability: Durability,
    /// The segment being appended to.
    active: std::sync::Mutex<Writer>,
    /// The end of what has been written (and, with `fsync`, synced).
    written: watch::Sender<Position>,
    /// Bytes of every segment on disk.
    bytes: AtomicU64,
    max_bytes: u64,
    /// Whether the cap (or a write error) has been logged since the last success.
    failing_logged: AtomicBool,
    /// Appends that failed (counted where they fail, so also the ones whose caller stopped
    /// waiting: a request cancelled while its `fsync` group was written).
    failed: AtomicU64,
    /// Records appended since the journal was opened.
    appended: AtomicU64,
    /// `journal/lock`, locked while the journal is open: a second process (or a second open
    /// in this one) would interleave its records with ours.
    _lock: File,
}

/// The appending side; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    /// The group-commit thread (`fsync`); `None`: appends write directly (`process`).
    group: Option<std::sync::mpsc::Sender<Append>>,
    shared: Arc<Shared>,
}

struct Append {
    framed: Vec<u8>,
    then: Option<Written>,
    done: oneshot::Sender<Result<(), JournalError>>,
}

/// Run once a record is written, in the journal's order, with where the record starts and
/// ends, before readers are told about it (see [`Journal::append_owned`]).
type Written = Box<dyn FnOnce(Position, Position) + Send>;

/// A copy of the journal's figures, for /health.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct JournalStats {
    pub bytes: u64,
    pub max_bytes: u64,
    /// Appends that failed since the journal was opened (the cap, the disk, a record that
    /// cannot be encoded), whether or not their caller was still waiting to hear it.
    #[serde(skip)]
    pub failed: u64,
    /// Records appended since the journal was opened.
    #[serde(skip)]
    pub appended: u64,
}

impl Journal {
    /// Opens (creating) the journal in `dir`: repairs torn tails, deletes confirmed segments,
    /// starts the writer thread on a new segment, and returns the reader positioned at the
    /// first unconfirmed record.
    pub fn open(
        dir: &Path,
        durability: Durability,
        max_bytes: u64,
    ) -> Result<(Journal, JournalReader, Recovery), JournalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock = lock(dir)?;
        let confirmed = read_confirmed(dir);
        let mut recovery = Recovery::default();
        let mut bytes = 0;
        let mut last = 0;
        for index in segment::list(dir).map_err(io_error(dir))? {
            let path = segment::path(dir, index);
            last = last.max(index);
            if confirmed.is_some_and(|c| index < c.segment) {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                continue;
            }
            let from = confirmed
                .filter(|c| c.segment == index)
                .map_or(0, |c| c.offset);
            let (length, torn, unconfirmed) = repair(&path, from)?;
            recovery.records += unconfirmed;
            recovery.torn_bytes += torn;
            recovery.segments += 1;
            bytes += length;
        }
        let start = match confirmed {
            Some(c) if segment::path(dir, c.segment).exists() => c,
            _ => segment::list(dir).map_err(io_error(dir))?.first().map_or(
                Position::default(),
                |&segment| Position {
                    segment,
                    offset: HEADER,
                },
            ),
        };
        let index = last + 1;
        let (file, path) = create_segment(dir, index, durability)?;
        bytes += HEADER;
        let (written, _) = watch::channel(Position {
            segment: index,
            offset: HEADER,
        });
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            durability,
            active: std::sync::Mutex::new(Writer {
                file,
                path,
                index,
                size: HEADER,
            }),
            written,
            bytes: AtomicU64::new(bytes),
            max_bytes,
            failing_logged: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            _lock: lock,
        });
        let group = if durability == Durability::Fsync {
            let (sender, receiver) = std::sync::mpsc::channel();
            let thread = shared.clone();
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || thread.run_group_commits(receiver))
                .map_err(io_error(dir))?;
            Some(sender)
        } else {
            None
        };
        let reader = JournalReader {
            recovered: recovery.records,
            shared: shared.clone(),
            cursor: if start.segment == 0 {
                Position {
                    segment: index,
                    offset: HEADER,
                }
            } else {
                start
            },
            first_new: index,
            changes: shared.written.subscribe(),
        };
        Ok((Journal { group, shared }, reader, recovery))
    }

    /// Writes `payload` as one record; returns once it is written (and synced with `fsync`).
    pub async fn append(&self, payload: &[u8]) -> Result<(), JournalError> {
        let mut framed = Vec::with_capacity(payload.len() + 8);
        segment::frame(payload, &mut framed);
        self.append_framed(framed, None).await
    }

    /// Writes `value`, encoded in postcard, as one record (encoded in place: one buffer, no
    /// copy); returns once it is written (and synced with `fsync`).
    pub async fn append_value<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<(), JournalError> {
        let framed = self.frame_value(value)?;
        self.append_framed(framed, None).await
    }

    /// Writes `value` as [`Journal::append_value`] does, then hands it to `then` with where
    /// its record starts and ends: in the order records are written (under the segment's
    /// lock, or on the group's thread), before a reader can see the record. The recorder
    /// hands each click to its writer this way, so the writer need not read it back. `then`
    /// is not run when the write fails, and is run even when the caller stopped waiting.
    pub async fn append_owned<T>(
        &self,
        value: T,
        then: impl FnOnce(T, Position, Position) + Send + 'static,
    ) -> Result<(), JournalError>
    where
        T: serde::Serialize + Send + 'static,
    {
        let framed = self.frame_value(&value)?;
        let then: Written = Box::new(move |start, end| then(value, start, end));
        self.append_framed(framed, Some(then)).await
    }

    /// `value` in postcard, framed as one record (encoded in place: one buffer, no copy).
    fn frame_value<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<Vec<u8>, JournalError> {
        let mut framed = Vec::with_capacity(1_024);
        segment::frame_with(&mut framed, |out| {
            postcard::serialize_with_flavor(value, Encoder(out))
        })
        .inspect_err(|_| self.shared.count_failure(1))
        .map_err(|error| match error {
            segment::FrameError::Encode(error) => JournalError::Record(error.to_string()),
            segment::FrameError::Size(bytes) => JournalError::Record(format!(
                "{bytes} bytes (a record is 1 to {} bytes)",
                segment::MAX_RECORD
            )),
        })?;
        Ok(framed)
    }

    async fn append_framed(
        &self,
        framed: Vec<u8>,
        then: Option<Written>,
    ) -> Result<(), JournalError> {
        let Some(group) = &self.group else {
            // Not cancellable from here on: the result is counted before it is returned.
            let length = framed.len();
            let written = self.shared.admit(length as u64, 0).and_then(|()| {
                let mut writer = self.shared.lock();
                self.shared
                    .write(&mut writer, &framed, std::iter::once((length, then)))
            });
            return written.inspect_err(|_| self.shared.count_failure(1));
        };
        let (done, answer) = oneshot::channel();
        if group.send(Append { framed, then, done }).is_err() {
            self.shared.count_failure(1);
            return Err(JournalError::Closed);
        }
        // The writer thread counts a failure itself: this wait may be cancelled.
        answer.await.map_err(|_| JournalError::Closed)?
    }

    /// What an appended record survives (`process` or `fsync`).
    pub fn durability(&self) -> Durability {
        self.shared.durability
    }

    pub fn stats(&self) -> JournalStats {
        JournalStats {
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            max_bytes: self.shared.max_bytes,
            failed: self.shared.failed.load(Ordering::Relaxed),
            appended: self.shared.appended.load(Ordering::Relaxed),
        }
    }
}

/// Takes `dir/lock` for as long as the returned file is open.
fn lock(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    // A holder that is going away (a server of this process shutting down, its last tasks
    // ending) gets a moment to let go.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: dir.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(&path)(error)),
        }
    }
}

/// postcard's output into a borrowed buffer (postcard's own flavors own theirs).
struct Encoder<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Encoder<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The file `journal/confirmed`: "SEGMENT OFFSET".
fn read_confirmed(dir: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(dir.join("confirmed")).ok()?;
    let (segment, offset) = text.trim().split_once(' ')?;
    Some(Position {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

/// Cuts a segment's torn tail; returns its length after and the bytes cut.
/// Also counts the whole records that end after `from` (the unconfirmed ones).
fn repair(path: &Path, from: u64) -> Result<(u64, u64, u64), JournalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_error(path))?;
    let length = bytes.len() as u64;
    if bytes.len() < HEADER as usize && segment::MAGIC.starts_with(&bytes) {
        // Not even a header: the crash came while the segment was being created.
        tracing::warn!(path = %path.display(), bytes = length, "A journal segment without a whole header was removed.");
        std::fs::remove_file(path).map_err(io_error(path))?;
        return Ok((0, length, 0));
    }
    if bytes.len() < HEADER as usize || &bytes[..HEADER as usize] != segment::MAGIC {
        // Another format (another version of Switchyard) or not a journal: kept aside, never
        // deleted, never read as clicks.
        let aside = path.with_extension("foreign");
        tracing::error!(path = %path.display(), moved_to = %aside.display(), "A journal segment in another format was moved aside; its records are not written.");
        std::fs::rename(path, &aside).map_err(io_error(path))?;
        return Ok((0, 0, 0));
    }
    let scan = segment::scan(&bytes[HEADER as usize..], usize::MAX);
    let end = HEADER + scan.end as u64;
    if end < length {
        tracing::warn!(path = %path.display(), cut = length - end, at = end, "A torn journal tail was cut back to its last whole record.");
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(end))
            .map_err(io_error(path))?;
    }
    let unconfirmed = scan
        .records
        .iter()
        .filter(|r| HEADER + r.end as u64 > from)
        .count() as u64;
    Ok((end, length - end, unconfirmed))
}

fn create_segment(
    dir: &Path,
    index: u64,
    durability: Durability,
) -> Result<(File, PathBuf), JournalError> {
    let path = segment::path(dir, index);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    file.write_all(segment::MAGIC).map_err(io_error(&path))?;
    if durability == Durability::Fsync {
        file.sync_all().map_err(io_error(&path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok((file, path))
}

/// The active segment.
struct Writer {
    file: File,
    path: PathBuf,
    index: u64,
    size: u64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic while writing leaves the segment as the last write left it: still usable.
        self.active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Refuses `length` more bytes (with `buffered` already waiting) past the cap.
    fn admit(&self, length: u64, buffered: u64) -> Result<(), JournalError> {
        if self.bytes.load(Ordering::Relaxed) + buffered + length > self.max_bytes {
            let error = JournalError::Full {
                max_bytes: self.max_bytes,
            };
            self.log_failure(&error);
            return Err(error);
        }
        Ok(())
    }

    /// Writes `count` whole records to the active segment (a new one first when it is full), syncs
    /// them with `fsync`, and publishes the new end.
    fn write(
        &self,
        writer: &mut Writer,
        records: &[u8],
        appends: impl ExactSizeIterator<Item = (usize, Option<Written>)>,
    ) -> Result<(), JournalError> {
        if writer.size + records.len() as u64 > SEGMENT_BYTES && writer.size > HEADER {
            let (file, path) = create_segment(&self.dir, writer.index + 1, self.durability)
                .inspect_err(|error| self.log_failure(error))?;
            *writer = Writer {
                file,
                path,
                index: writer.index + 1,
                size: HEADER,
            };
            self.bytes.fetch_add(HEADER, Ordering::Relaxed);
        }
        let mut result = writer.file.write_all(records);
        if result.is_ok() && self.durability == Durability::Fsync {
            result = writer.file.sync_data();
        }
        if let Err(error) = result {
            // A partial write would leave a torn record in the middle of the segment: cut
            // it, so the next write starts at a record boundary.
            let _ = writer.file.set_len(writer.size);
            let _ = writer.file.seek(SeekFrom::End(0));
            let error = io_error(&writer.path)(error);
            self.log_failure(&error);
            return Err(error);
        }
        let mut start = Position {
            segment: writer.index,
            offset: writer.size,
        };
        self.appended
            .fetch_add(appends.len() as u64, Ordering::Relaxed);
        for (length, then) in appends {
            let end = Position {
                segment: start.segment,
                offset: start.offset + length as u64,
            };
            if let Some(then) = then {
                then(start, end);
            }
            start = end;
        }
        writer.size += records.len() as u64;
        self.bytes
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.written.send_replace(Position {
            segment: writer.index,
            offset: writer.size,
        });
        if self.failing_logged.swap(false, Ordering::Relaxed) {
            tracing::info!("The journal takes clicks again.");
        }
        Ok(())
    }

    /// The `fsync` writer thread: takes every append waiting, writes and syncs them as one
    /// group, answers each.
    fn run_group_commits(self: Arc<Self>, receiver: std::sync::mpsc::Receiver<Append>) {
        let mut group = Vec::with_capacity(GROUP);
        let mut buffer = Vec::new();
        let mut done = Vec::with_capacity(GROUP);
        let mut appends = Vec::with_capacity(GROUP);
        while let Ok(first) = receiver.recv() {
            group.push(first);
            while group.len() < GROUP {
                match receiver.try_recv() {
                    Ok(append) => group.push(append),
                    Err(_) => break,
                }
            }
            for append in group.drain(..) {
                match self.admit(append.framed.len() as u64, buffer.len() as u64) {
                    Ok(()) => {
                        buffer.extend_from_slice(&append.framed);
                        appends.push((append.framed.len(), append.then));
                        done.push(append.done);
                    }
                    Err(error) => {
                        self.answer(append.done, Err(error));
                    }
                }
            }
            if buffer.is_empty() {
                continue;
            }
            let result = {
                let mut writer = self.lock();
                self.write(&mut writer, &buffer, appends.drain(..))
            };
            for sender in done.drain(..) {
                let answer = match &result {
                    Ok(()) => Ok(()),
                    Err(error) => Err(JournalError::Io {
                        path: self.dir.display().to_string(),
                        error: std::io::Error::other(error.to_string()),
                    }),
                };
                self.answer(sender, answer);
            }
            buffer.clear();
        }
    }

    /// Tells an append's caller how it ended, counting a failure (the caller may have
    /// stopped waiting).
    fn answer(
        &self,
        caller: oneshot::Sender<Result<(), JournalError>>,
        result: Result<(), JournalError>,
    ) {
        if result.is_err() {
            self.count_failure(1);
        }
        let _ = caller.send(result);
    }

    fn count_failure(&self, appends: u64) {
        self.failed.fetch_add(appends, Ordering::Relaxed);
    }

    fn log_failure(&self, error: &JournalError) {
        if !self.failing_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(%error, "The journal cannot take clicks; they are answered but counted as lost until it can.");
        }
    }
}

/// Reads the journal's records in order, for the store.
pub struct JournalReader {
    /// Unconfirmed records of earlier runs found at open.
    recovered: u64,
    shared: Arc<Shared>,
    /// Where the next record to read starts.
    cursor: Position,
    /// The first segment of this run: records before it are replays.
    first_new: u64,
    changes: watch::Receiver<Position>,
}

/// A record read from the journal: its payload and the position just after it.
pub struct Record {
    pub payload: Vec<u8>,
    pub end: Position,
    /// True when the record was written by an earlier run.
    pub replayed: bool,
}

impl JournalReader {
    /// Waits until something was written after the records read so far.
    pub async fn changed(&mut self) {
        loop {
            if *self.changes.borrow_and_update() > self.cursor {
                return;
            }
            if self.changes.changed().await.is_err() {
                // The writer is gone: nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// How many unconfirmed records of earlier runs were found when the journal was opened.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// True when every written record has been read.
    pub fn caught_up(&self) -> bool {
        *self.shared.written.borrow() <= self.cursor
    }

    /// Reads up to `limit` records after the cursor, in order, without waiting.
    pub fn read(&mut self, limit: usize) -> Result<Vec<Record>, JournalError> {
        self.read_before(
            limit,
            Position {
                segment: u64::MAX,
                offset: u64::MAX,
            },
        )
    }

    /// Where the next record to read starts (or the end of a sealed segment: the next
    /// record is then the first of the following one).
    pub fn position(&self) -> Position {
        self.cursor
    }

    /// Moves the cursor past a record its writer handed over directly (so it is not read
    /// back); `end` is where that record ends, the next record's start.
    pub fn skip_to(&mut self, end: Position) {
        self.cursor = self.cursor.max(end);
    }

    /// Reads up to `limit` records that start before `stop`, in order, without waiting.
    pub fn read_before(
        &mut self,
        limit: usize,
        stop: Position,
    ) -> Result<Vec<Record>, JournalError> {
        let mut records = Vec::new();
        while records.len() < limit && self.cursor < stop {
            let written = *self.shared.written.borrow();
            if written <= self.cursor {
                break;
            }
            let path = segment::path(&self.shared.dir, self.cursor.segment);
            let sealed = self.cursor.segment < written.segment;
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && sealed => {
                    self.next_segment();
                    continue;
                }
                Err(error) => return Err(io_error(&path)(error)),
            };
            let length = if sealed {
                file.metadata().map_err(io_error(&path))?.len()
            } else {
                written.offset
            };
            let mut end = length;
            if stop.segment == self.cursor.segment && stop.offset < end {
                // Records from `stop` on are not wanted: not read either.
                end = stop.offset;
                if end <= self.cursor.offset {
                    break;
                }
            }
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(self.cursor.offset))
                .and_then(|_| {
                    file.take(end.saturating_sub(self.cursor.offset))
                        .read_to_end(&mut bytes)
                })
                .map_err(io_error(&path))?;
            let scan = segment::scan(&bytes, limit - records.len());
            let replayed = self.cursor.segment < self.first_new;
            for range in &scan.records {
                records.push(Record {
                    payload: bytes[range.clone()].to_vec(),
                    end: Position {
                        segment: self.cursor.segment,
                        offset: self.cursor.offset + range.end as u64,
                    },
                    replayed,
                });
            }
            self.cursor.offset += scan.end as u64;
            if sealed && self.cursor.offset >= length {
                self.next_segment();
            } else if scan.records.is_empty() {
                // Nothing whole yet in the active segment (cannot happen: the writer
                // publishes whole groups); read again later.
                break;
            }
        }
        Ok(records)
    }

    fn next_segment(&mut self) {
        self.cursor = Position {
            segment: self.cursor.segment + 1,
            offset: HEADER,
        };
    }

    /// The store holds every record up to `end`: remember it, delete the segments before it.
    pub fn confirm(&mut self, end: Position) -> Result<(), JournalError> {
        let dir = &self.shared.dir;
        let staging = dir.join("confirmed.new");
        std::fs::write(&staging, format!("{} {}\n", end.segment, end.offset))
            .and_then(|_| std::fs::rename(&staging, dir.join("confirmed")))
            .map_err(io_error(&staging))?;
        for index in segment::list(dir).map_err(io_error(dir))? {
            if index >= end.segment {
                break;
            }
            let path = segment::path(dir, index);
            let length = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path).map_err(io_error(&path))?;
            self.shared.bytes.fetch_sub(length, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
