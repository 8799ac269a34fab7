//! A repeatable measure of the click path's cost, for `valgrind --tool=callgrind` (instruction
//! counts do not depend on the machine's load) or for process CPU time on a quiet machine.
//!
//! Starts a whole Switchyard server in-process on a single-threaded runtime (the benchmark
//! campaigns of bench/campaign.json in a fresh SQLite file, the City test database, trusted
//! loopback proxy), or the bare axum 302 baseline, sends `--requests` keep-alive HTTP/1.1
//! requests over `--connections` loopback connections with the load test's visitor rotation,
//! then shuts down, which writes every queued click. The cost of one request is the difference
//! between a run with N requests and a run with 0, divided by N:
//!
//! ```sh
//! for n in 0 20000; do valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!   target/release/click-cost --target switchyard --requests $n; done
//! ```
//!
//! `bench/callgrind.sh` does exactly that for the three targets and prints instructions per
//! request and the ratios to the bare handler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use switchyard_bench::{CampaignSpec, Visitors, bare_router, create_campaign, read_response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The allocator the `switchyard` binary uses (core/src/main.rs), so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// `/bench`: clicks recorded into SQLite.
    Switchyard,
    /// `/bench-nc`: the same streams with collect_clicks off.
    SwitchyardNc,
    /// The bare axum 302 handler.
    Bare,
}

#[derive(Debug, Parser)]
#[command(about = "Sends N requests to an in-process server and exits (for callgrind).")]
struct Args {
    #[arg(long, value_enum, default_value = "switchyard")]
    target: Target,
    #[arg(long, default_value_t = 10_000)]
    requests: u64,
    #[arg(long, default_value_t = 4)]
    connections: u64,
    /// Where bench/campaign.json and bench/data are.
    #[arg(long, default_value = "bench")]
    bench_dir: PathBuf,
    /// The GeoIP City database.
    #[arg(long, default_value = "tests/data/geoip/GeoIP2-City-Test.mmdb")]
    city_db: PathBuf,
    /// The recorder's durability (`recorder.durability`): memory, process or fsync.
    #[arg(long, default_value = "process")]
    durability: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let visitors = std::sync::Arc::new(Visitors::read(&args.bench_dir.join("data"))?);
    let work = std::env::temp_dir().join(format!("click-cost-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = serve_and_send(&args, visitors, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn serve_and_send(
    args: &Args,
    visitors: std::sync::Arc<Visitors>,
    work: &std::path::Path,
) -> Result<()> {
    let started = Instant::now();
    if args.target == Target::Bare {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            axum::serve(
                listener,
                bare_router().into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
        });
        send(args, visitors, addr, "bench").await?;
        let _ = stop.send(());
        serve.await??;
    } else {
        let config_path = work.join("config.toml");
        let city_db = std::fs::canonicalize(&args.city_db)
            .with_context(|| format!("cannot find {}", args.city_db.display()))?;
        std::fs::write(
            &config_path,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
                 [database]\nurl = \"sqlite://{db}\"\n[demo]\nseed = false\n[log]\nlevel = \"warn\"\n\
                 [geoip]\ncity_db = {city:?}\n[reload]\nwatch = false\n[triggers]\nenabled = false\n\
                 [recorder]\ndurability = {durability:?}\n",
                data = work.join("data").display().to_string(),
                db = work.join("switchyard.db").display(),
                city = city_db.display().to_string(),
                durability = args.durability,
            ),
        )?;
        let config = switchyard::config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let spec = CampaignSpec::read(&args.bench_dir.join("campaign.json"))?;
        let store = switchyard::store::open(&config.database).await?;
        store.migrate().await?;
        create_campaign(store.as_ref(), &spec, "bench", true).await?;
        create_campaign(store.as_ref(), &spec, "bench-nc", false).await?;
        store.close().await;
        let server = switchyard::server::start(config)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let alias = match args.target {
            Target::SwitchyardNc => "bench-nc",
            _ => "bench",
        };
        send(args, visitors, server.local_addr, alias).await?;
        let recorder = server.state.recorder.clone();
        server.shutdown().await;
        let stats = recorder.stats();
        eprintln!(
            "recorder: queued {}, written {}, dropped {}",
            stats.queued, stats.written, stats.dropped
        );
        if stats.written != stats.queued || stats.dropped > 0 || stats.failed_batches > 0 {
            bail!("not every click was written: {stats:?}");
        }
    }
    eprintln!(
        "{} requests to {:?} in {:.2} s",
        args.requests,
        args.target,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sends `args.requests` requests over `args.connections` connections, each in turn.
async fn send(
    args: &Args,
    visitors: std::sync::Arc<Visitors>,
    addr: SocketAddr,
    alias: &str,
) -> Result<()> {
    let mut tasks = Vec::new();
    for index in 0..args.connections.max(1) {
        let visitors = visitors.clone();
        let (requests, connections) = (args.requests, args.connections.max(1));
        let alias = alias.to_string();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::new();
            let mut n = index;
            while n < requests {
                let request = visitors.request(&alias, n);
                let text = format!(
                    "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {}\r\nAccept-Language: {}\r\nX-Forwarded-For: {}\r\n\r\n",
                    request.path, request.user_agent, request.language, request.ip
                );
                stream.write_all(text.as_bytes()).await?;
                let status = read_response(&mut stream, &mut buf).await?;
                if status != 302 {
                    bail!("request {n} answered {status}, not 302");
                }
                n += connections;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
