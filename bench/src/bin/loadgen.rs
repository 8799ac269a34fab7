//! An open-loop load generator for latency at a fixed rate (what wrk2 does; wrk2 is not
//! packaged here, and wrk's Lua `delay()` only paces each connection after its response, in
//! whole milliseconds, which hides server stalls).
//!
//! Requests are scheduled at `rate` per second over `connections` keep-alive HTTP/1.1
//! connections. When a connection is still busy at a request's scheduled time, the wait is
//! the server's doing and counts in that request's latency (no coordinated omission); when the
//! client itself is late, the latency is counted from the actual send. Latencies go into an
//! HDR histogram.
//!
//! The schedule is kept by a pacer thread that sleeps until each request's time and hands the
//! request to its connection's task. (Before, each task slept on tokio's timer, whose
//! granularity is one millisecond: every request due within a millisecond was sent in one
//! burst of up to `connections`, and the single-threaded client then took the responses one
//! after another, so even the bare handler measured p50 ≈ 1 ms, p99 ≈ 2 ms at 31.6 k req/s.)
//!
//! Loopback only, bounded in time: it refuses other addresses and runs at most 120 s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use switchyard_bench::{Visitors, read_response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const MAX_SECONDS: u64 = 120;

#[derive(Debug, Parser)]
#[command(about = "Fixed-rate HTTP load with latency percentiles (open loop, loopback only).")]
struct Args {
    /// The server (a loopback address).
    #[arg(long)]
    addr: SocketAddr,
    /// The campaign alias requested (`GET /{alias}?…`).
    #[arg(long, default_value = "bench")]
    alias: String,
    /// Requests per second, over all connections.
    #[arg(long)]
    rate: u64,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    #[arg(long, default_value_t = 32)]
    connections: u64,
    /// Where ips.txt and user_agents.txt are.
    #[arg(long, default_value = "bench/data")]
    data: PathBuf,
    /// Added to every request's sequence number, so that runs visit different visitors.
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

/// What one connection measured.
struct Tally {
    latencies: Histogram<u64>,
    sent: u64,
    errors: u64,
    unexpected_status: u64,
}

/// When request `sequence` is due.
fn intended(args: &Args, start: Instant, sequence: u64) -> Instant {
    start + Duration::from_nanos(sequence * 1_000_000_000 / args.rate)
}

/// Sleeps until each request's time and hands it to its connection (requests `index`,
/// `index + connections`, … go to connection `index`); returns when the schedule ends, which
/// closes the channels.
fn pace(args: &Args, start: Instant, end: Instant, connections: Vec<mpsc::UnboundedSender<u64>>) {
    for sequence in 0.. {
        let due = intended(args, start, sequence);
        if due >= end {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let _ = connections[(sequence % args.connections) as usize].send(sequence);
    }
}

/// One connection: sends the requests the pacer hands it, one at a time.
async fn connection(
    args: std::sync::Arc<Args>,
    visitors: std::sync::Arc<Visitors>,
    mut due: mpsc::UnboundedReceiver<u64>,
    start: Instant,
) -> Result<Tally> {
    let mut tally = Tally {
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        sent: 0,
        errors: 0,
        unexpected_status: 0,
    };
    let measure_from = start + Duration::from_secs(args.warmup);
    let host = args.addr.to_string();
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(8192);
    let mut ready_at = start;
    while let Some(sequence) = due.recv().await {
        let intended = intended(&args, start, sequence);
        let sent_at = Instant::now();
        let request = visitors.request(&args.alias, sequence + args.offset);
        let text = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nX-Forwarded-For: {}\r\nAccept-Language: {}\r\nAccept: */*\r\n\r\n",
            request.path, request.user_agent, request.ip, request.language
        );
        let outcome = async {
            if stream.is_none() {
                let fresh = TcpStream::connect(args.addr).await?;
                fresh.set_nodelay(true)?;
                stream = Some(fresh);
            }
            let open = stream.as_mut().context("no connection")?;
            open.write_all(text.as_bytes()).await?;
            read_response(open, &mut buf).await
        }
        .await;
        let done = Instant::now();
        // Busy past the scheduled time: the server's delay, counted from the schedule.
        let from = if ready_at > intended {
            intended
        } else {
            sent_at
        };
        ready_at = done;
        if intended < measure_from {
            continue;
        }
        tally.sent += 1;
        match outcome {
            Ok(status) => {
                if status != 302 {
                    tally.unexpected_status += 1;
                }
                let micros = (done - from).as_micros().max(1) as u64;
                tally.latencies.saturating_record(micros);
            }
            Err(_) => {
                tally.errors += 1;
                stream = None;
            }
        }
    }
    Ok(tally)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        bail!("loadgen only targets loopback addresses, not {}", args.addr);
    }
    if args.rate == 0 || args.connections == 0 {
        bail!("--rate and --connections must be positive");
    }
    if args.warmup + args.duration > MAX_SECONDS {
        bail!("a run lasts at most {MAX_SECONDS} s");
    }
    let visitors = std::sync::Arc::new(Visitors::read(&args.data)?);
    let args = std::sync::Arc::new(args);
    // One runtime thread for the connections (plus the pacer, which mostly sleeps but wakes
    // for nearly every request at tens of thousands per second): the generator takes about
    // one core, leaving the other to the server, for the bare handler and Switchyard alike.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs(args.warmup + args.duration);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..args.connections)
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    let pacer = {
        let args = args.clone();
        std::thread::spawn(move || pace(&args, start, end, senders))
    };
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> = receivers
            .into_iter()
            .map(|due| tokio::spawn(connection(args.clone(), visitors.clone(), due, start)))
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await??);
        }
        anyhow::Ok(tallies)
    })?;
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut sent, mut errors, mut unexpected) = (0, 0, 0);
    for tally in &tallies {
        all.add(&tally.latencies)?;
        sent += tally.sent;
        errors += tally.errors;
        unexpected += tally.unexpected_status;
    }
    let achieved = sent as f64 / args.duration as f64;
    println!(
        "loadgen: {} req/s scheduled over {} connections for {} s: {sent} sent ({achieved:.0}/s), {errors} errors, {unexpected} not 302",
        args.rate, args.connections, args.duration
    );
    println!(
        "RESULT rate={} achieved={achieved:.0} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} errors={errors} non302={unexpected}",
        args.rate,
        all.value_at_quantile(0.50),
        all.value_at_quantile(0.90),
        all.value_at_quantile(0.99),
        all.value_at_quantile(0.999),
        all.max()
    );
    Ok(())
}
