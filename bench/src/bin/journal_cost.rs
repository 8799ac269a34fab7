//! CPU per click of the click journal, measured on this thread (`cpu_time::ThreadTime`, user
//! and system time, so the `write` and `read` system calls count) against the hand-off the
//! `memory` durability makes instead: a bounded tokio channel, sent and received.
//!
//! ```sh
//! cargo run --release -p switchyard-bench --bin journal-cost -- --clicks 200000
//! ```
//!
//! Each click is a realistic one (the field sizes of a campaign-link click of the load test:
//! a desktop user agent, a GeoIP city, a request URL with five parameters), encoded as the
//! recorder encodes it and handed over to the writer as the recorder hands it. Printed per
//! click: the request side (what the visitor's request pays before its answer), the writer
//! side (taking a handed-over click; reading one back and decoding it, as for a replay or a
//! full hand-off), and the baseline.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use cpu_time::ThreadTime;
use switchyard::config::Durability;
use switchyard::journal::Journal;
use switchyard::model::{Click, Money};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "CPU per click of the click journal against a channel hand-off.")]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    clicks: usize,
    /// Rounds of each measure; the lowest is printed (the least disturbed by the machine).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn click(n: usize) -> Click {
    let mut click = Click::blank();
    click.sub_id = format!("{n:08x}a1b2c3d4e5f6a7b8");
    click.visitor_code = format!("v{n:015x}");
    click.campaign_id = 1;
    click.stream_id = Some(3);
    click.offer_id = Some(7);
    click.created_at = 1_796_000_000 + n as i64;
    click.ip = format!("81.2.69.{}", n % 250);
    click.user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36".into();
    click.language = "en".into();
    click.country_code = "GB".into();
    click.country_name = "United Kingdom".into();
    click.region = "England".into();
    click.region_code = "ENG".into();
    click.city = "London".into();
    click.latitude = Some(51.5142);
    click.longitude = Some(-0.0931);
    click.device_type = "desktop".into();
    click.os = "Windows".into();
    click.os_version = "10".into();
    click.browser = "Chrome".into();
    click.browser_version = "120.0".into();
    click.source = "push".into();
    click.keyword = "shoes".into();
    click.destination = format!("https://offer.example/landing?subid={}", click.sub_id);
    click.request_url =
        "/bench?source=push&keyword=shoes&sub_id_1=zone42&sub_id_2=creative7&cost=0.01".into();
    click.sub_ids[0] = "zone42".into();
    click.sub_ids[1] = "creative7".into();
    click.is_unique_campaign = true;
    click.cost = Money::from_micros(10_000);
    click.params =
        r#"{"cost":"0.01","keyword":"shoes","source":"push","sub_id_1":"zone42","sub_id_2":"creative7"}"#
            .into();
    click
}

/// The recorder's journal record: its `Event` enum's first variant, the click.
#[derive(serde::Serialize, serde::Deserialize)]
enum Event {
    Click(#[allow(dead_code)] Box<Click>),
}

/// [`Event`] borrowed (postcard writes both the same way).
#[derive(serde::Serialize)]
enum EventRef<'a> {
    Click(&'a Click),
}

fn encode(click: &Click) -> Vec<u8> {
    postcard::to_allocvec(&EventRef::Click(click)).expect("encode")
}

fn per_click(cpu: Duration, clicks: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / clicks as f64
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let clicks: Vec<Click> = (0..args.clicks).map(click).collect();
    println!(
        "record size: {} bytes (encoded click)",
        encode(&clicks[0]).len()
    );
    let mut channel = f64::MAX;
    let mut append = f64::MAX;
    let mut read = f64::MAX;
    let mut encoding = f64::MAX;
    let mut take = f64::MAX;
    let mut append_only = f64::MAX;
    for _ in 0..args.rounds {
        let start = ThreadTime::now();
        let mut bytes = 0;
        for click in &clicks {
            bytes += std::hint::black_box(encode(click)).len();
        }
        encoding = encoding.min(per_click(start.elapsed(), args.clicks));
        std::hint::black_box(bytes);
        let batch = clicks.clone();
        channel = channel.min(runtime.block_on(async {
            let (sender, mut receiver) = tokio::sync::mpsc::channel(1_024);
            let start = ThreadTime::now();
            let mut received = Vec::with_capacity(1_024);
            for click in batch {
                sender.send(Box::new(click)).await.expect("send");
                if sender.capacity() == 0 {
                    receiver.recv_many(&mut received, 1_024).await;
                    received.clear();
                }
            }
            per_click(start.elapsed(), args.clicks)
        }));

        let dir = tempfile::tempdir().context("a temporary directory")?;
        let (journal, mut reader, _) = Journal::open(dir.path(), Durability::Process, u64::MAX)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The append alone, without handing the click over.
        let plain = tempfile::tempdir().context("a temporary directory")?;
        let (bare_journal, _bare_reader, _) =
            Journal::open(plain.path(), Durability::Process, u64::MAX)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        append_only = append_only.min(runtime.block_on(async {
            let start = ThreadTime::now();
            for click in &clicks {
                bare_journal
                    .append_value(&EventRef::Click(click))
                    .await
                    .expect("append");
            }
            per_click(start.elapsed(), args.clicks)
        }));
        drop((bare_journal, plain));

        // As the recorder does: each click encoded in place into its framed record, then
        // handed over (with where its record starts and ends) to a bounded queue the writer
        // takes it from.
        let handoff = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let batch = clicks.clone();
        let (appending, taking) = runtime.block_on(async {
            let mut taking = Duration::ZERO;
            let mut taken = Vec::with_capacity(1_024);
            let start = ThreadTime::now();
            for (n, click) in batch.into_iter().enumerate() {
                let handed = handoff.clone();
                journal
                    .append_owned(Event::Click(Box::new(click)), move |event, start, end| {
                        handed.lock().unwrap().push_back((start, end, event));
                    })
                    .await
                    .expect("append");
                // The writer takes them in batches, as the channel's receiver does above
                // (and drops them, as the writer does once they are written).
                if n % 1_024 == 1_023 {
                    let took = ThreadTime::now();
                    taken.extend(handoff.lock().unwrap().drain(..));
                    taken.clear();
                    taking += took.elapsed();
                }
            }
            (start.elapsed().saturating_sub(taking), taking)
        });
        append = append.min(per_click(appending, args.clicks));
        take = take.min(per_click(taking, args.clicks));
        let start = ThreadTime::now();
        let mut decoded = 0;
        loop {
            let records = reader.read(5_000).map_err(|e| anyhow::anyhow!("{e}"))?;
            if records.is_empty() {
                break;
            }
            for record in records {
                let _: Event = postcard::from_bytes(&record.payload).context("decode")?;
                decoded += 1;
            }
        }
        read = read.min(per_click(start.elapsed(), decoded));
        anyhow::ensure!(
            decoded == args.clicks,
            "read back {decoded} of {}",
            args.clicks
        );
    }
    println!("baseline, channel hand-off (memory): {channel:.2} us/click");
    println!("journal append and hand-off, process (request side): {append:.2} us/click");
    println!("  of which encoding the click alone: {encoding:.2} us/click");
    println!("  the append alone (encoding included, no hand-off): {append_only:.2} us/click");
    println!("writer taking a handed-over click: {take:.2} us/click");
    println!(
        "writer reading a click back and decoding it (hand-off full, or a replay): {read:.2} us/click"
    );
    println!(
        "journal over the baseline: {:.2} us/click on the request side, {:.2} us/click in all",
        append - channel,
        append + take - channel
    );
    Ok(())
}
