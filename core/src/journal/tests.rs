use proptest::prelude::*;

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn payload(n: usize) -> Vec<u8> {
    format!("record {n} ").repeat(n % 7 + 1).into_bytes()
}

async fn append_all(journal: &Journal, range: std::ops::Range<usize>) {
    for n in range {
        journal.append(&payload(n)).await.expect("append");
    }
}

fn read_all(reader: &mut JournalReader) -> Vec<Record> {
    reader.read(usize::MAX).expect("read")
}

#[test]
fn records_come_back_in_order_and_confirmed_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let (journal, mut reader, recovery) =
            Journal::open(dir.path(), Durability::Process, 1 << 30).unwrap();
        assert_eq!(recovery, Recovery::default());
        append_all(&journal, 0..50).await;
        let records = read_all(&mut reader);
        assert_eq!(records.len(), 50);
        assert!(records.iter().all(|r| !r.replayed));
        for (n, record) in records.iter().enumerate() {
            assert_eq!(record.payload, payload(n));
        }
        assert!(reader.caught_up());
        reader.confirm(records[29].end).unwrap();
        drop((journal, reader));

        // The next run reads the 20 unconfirmed records again, then its own.
        let (journal, mut reader, recovery) =
            Journal::open(dir.path(), Durability::Fsync, 1 << 30).unwrap();
        assert_eq!(recovery.segments, 1);
        assert_eq!(recovery.records, 20, "the unconfirmed ones");
        assert_eq!(reader.recovered(), 20);
        append_all(&journal, 50..55).await;
        let records = read_all(&mut reader);
        assert_eq!(records.len(), 25);
        assert!(records[..20].iter().all(|r| r.replayed));
        assert!(records[20..].iter().all(|r| !r.replayed));
        for (record, n) in records.iter().zip(30..55) {
            assert_eq!(record.payload, payload(n));
        }
        // Confirming into the new segment deletes the old one.
        reader.confirm(records[24].end).unwrap();
        assert_eq!(segment::list(dir.path()).unwrap().len(), 1);
    });
}

#[test]
fn segments_rotate_and_are_deleted_once_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let (journal, mut reader, _) =
            Journal::open(dir.path(), Durability::Process, 1 << 30).unwrap();
        let big = vec![7u8; 64 * 1024];
        let count = (SEGMENT_BYTES as usize / big.len()) * 2 + 3;
        for _ in 0..count {
            journal.append(&big).await.unwrap();
        }
        assert!(segment::list(dir.path()).unwrap().len() >= 3);
        let records = read_all(&mut reader);
        assert_eq!(records.len(), count);
        reader.confirm(records.last().unwrap().end).unwrap();
        assert_eq!(segment::list(dir.path()).unwrap().len(), 1);
        let on_disk: u64 = segment::list(dir.path())
            .unwrap()
            .iter()
            .map(|i| {
                std::fs::metadata(segment::path(dir.path(), *i))
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(journal.stats().bytes, on_disk);
    });
}

#[test]
fn one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let first = Journal::open(dir.path(), Durability::Process, 1 << 30).unwrap();
        match Journal::open(dir.path(), Durability::Process, 1 << 30) {
            Err(JournalError::Locked { .. }) => {}
            Err(error) => panic!("{error}"),
            Ok(_) => panic!("the journal was opened twice"),
        }
        drop(first);
        Journal::open(dir.path(), Durability::Process, 1 << 30).expect("free again");
    });
}

#[test]
fn past_the_cap_appends_fail_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let (journal, mut reader, _) =
            Journal::open(dir.path(), Durability::Process, 1_000).unwrap();
        let mut taken = 0;
        let mut refused = 0;
        for _ in 0..20 {
            match journal.append(&[1u8; 100]).await {
                Ok(()) => taken += 1,
                Err(JournalError::Full { max_bytes: 1_000 }) => refused += 1,
                Err(error) => panic!("{error}"),
            }
        }
        assert_eq!(taken, (1_000 - HEADER as usize) / 108);
        assert_eq!(taken + refused, 20);
        // Confirming frees nothing in the active segment, but what was taken is readable.
        assert_eq!(read_all(&mut reader).len(), taken);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A crash can leave any prefix of the last write on disk: opening cuts the tail back to
    /// the last whole record, reports the bytes cut, and every whole record is read again.
    #[test]
    fn a_torn_tail_is_cut_and_every_whole_record_replayed(count in 1usize..40, cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime();
        let path = runtime.block_on(async {
            let (journal, _reader, _) = Journal::open(dir.path(), Durability::Process, 1 << 30).unwrap();
            append_all(&journal, 0..count).await;
            segment::path(dir.path(), 1)
        });
        let length = std::fs::metadata(&path).unwrap().len();
        let at = HEADER + cut.index((length - HEADER + 1) as usize) as u64;
        OpenOptions::new().write(true).open(&path).unwrap().set_len(at).unwrap();
        // The records wholly before the cut.
        let mut end = HEADER;
        let mut whole = 0;
        for n in 0..count {
            let next = end + 8 + payload(n).len() as u64;
            if next > at {
                break;
            }
            end = next;
            whole += 1;
        }
        runtime.block_on(async {
            let (_journal, mut reader, recovery) = Journal::open(dir.path(), Durability::Process, 1 << 30).unwrap();
            prop_assert_eq!(recovery.torn_bytes, at - end);
            prop_assert_eq!(recovery.records, whole as u64);
            prop_assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
            let records = read_all(&mut reader);
            prop_assert_eq!(records.len(), whole);
            for (n, record) in records.iter().enumerate() {
                prop_assert_eq!(&record.payload, &payload(n));
                prop_assert!(record.replayed);
            }
            Ok(())
        })?;
    }
}

#[test]
fn a_segment_in_another_format_is_moved_aside_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = segment::path(dir.path(), 5);
    std::fs::write(&foreign, b"SYJRNL02 records of another version").unwrap();
    let torn_header = segment::path(dir.path(), 6);
    std::fs::write(&torn_header, &segment::MAGIC[..3]).unwrap();
    runtime().block_on(async {
        let (_journal, mut reader, recovery) =
            Journal::open(dir.path(), Durability::Process, 1 << 30).unwrap();
        assert_eq!(recovery.records, 0);
        assert!(read_all(&mut reader).is_empty());
    });
    assert!(!foreign.exists());
    assert_eq!(
        std::fs::read(foreign.with_extension("foreign")).unwrap(),
        b"SYJRNL02 records of another version"
    );
    assert!(!torn_header.exists(), "a header cut by a crash is removed");
}
