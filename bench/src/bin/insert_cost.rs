//! CPU per click of writing clicks into SQLite, to tell the store's own cost from SQLite's:
//!
//! - `store`: `Store::insert_clicks` in batches, as the recorder calls it (multi-row inserts
//!   through sqlx, the rollups updated in the same transaction);
//! - `rusqlite`: the same rows (the store's columns and values, at the clicks' width) through
//!   one prepared statement with the values bound in place, no rollups — about the least any
//!   SQLite writer can spend on these rows;
//! - `rusqlite-no-index`: as `rusqlite` without the clicks table's four secondary indexes;
//! - `rusqlite-narrow`: as `rusqlite` into a table of only the bound columns (no defaults to
//!   fill for the sub-id and extra-param columns the width leaves out).
//!
//! The clicks are synthetic but shaped like the benchmark campaign's (bench/data visitors,
//! time-ordered sub ids as `traffic::ids` makes them). CPU is the process's (every thread)
//! around the writes only.
//!
//! ```sh
//! cargo build --release -p switchyard-bench --bin insert-cost
//! for m in store rusqlite rusqlite-no-index rusqlite-narrow; do
//!   target/release/insert-cost --mode $m --clicks 200000; done
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use switchyard::model::Click;
use switchyard::store::{ClickValue, Width, click_columns, for_each_click_value};
use switchyard_bench::Visitors;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Store,
    Rusqlite,
    RusqliteNoIndex,
    /// A table of only the columns the statement lists (no defaults to fill), same indexes.
    RusqliteNarrow,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 200_000)]
    clicks: usize,
    #[arg(long, default_value_t = 200)]
    batch: usize,
    #[arg(long, default_value = "bench")]
    bench_dir: PathBuf,
}

/// This process's CPU time so far, every thread, in seconds.
fn cpu_seconds() -> f64 {
    cpu_time::ProcessTime::now().as_duration().as_secs_f64()
}

fn clicks(visitors: &Visitors, n: usize) -> Vec<Click> {
    (0..n as u64)
        .map(|i| {
            let request = visitors.request("bench", i);
            let mut click = Click::blank();
            // Time-ordered like traffic::ids (30 clicks per millisecond), then random bits.
            click.sub_id = format!(
                "{:09x}{:08x}",
                1_790_000_000_000 + i / 30,
                (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
            );
            click.visitor_code = format!("{:016x}", i / 3);
            click.campaign_id = 1;
            click.stream_id = Some(1 + (i % 11) as i64);
            click.created_at = 1_790_000_000 + (i / 30_000) as i64;
            click.ip = request.ip.clone();
            click.user_agent = request.user_agent.clone();
            click.language = "en".into();
            click.country_code = "US".into();
            click.country_name = "United States".into();
            click.region = "Washington".into();
            click.region_code = "WA".into();
            click.city = "Milton".into();
            click.device_type = "desktop".into();
            click.os = "Windows".into();
            click.os_version = "10".into();
            click.browser = "Chrome".into();
            click.browser_version = "124.0".into();
            click.source = "fb".into();
            click.keyword = "shoes".into();
            click.destination = format!("https://offer.example/landing?sub={}", click.sub_id);
            click.request_url = format!("http://127.0.0.1:8080{}", request.path);
            click.sub_ids[0] = i.to_string();
            click.is_unique_campaign = i % 4 == 0;
            click.params =
                format!("{{\"keyword\":\"shoes\",\"source\":\"fb\",\"sub_id_1\":\"{i}\"}}");
            click
        })
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let visitors = Visitors::read(&args.bench_dir.join("data"))?;
    let all = clicks(&visitors, args.clicks);
    let dir = std::env::temp_dir().join(format!("insert-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("s.db");
    let runtime = tokio::runtime::Runtime::new()?;
    let config = switchyard::config::DatabaseConfig {
        url: format!("sqlite://{}", db.display()),
        backend: switchyard::config::Backend::Sqlite,
        max_connections: 4,
    };
    let store = runtime.block_on(async {
        let store = switchyard::store::open(&config).await?;
        store.migrate().await?;
        anyhow::Ok(store)
    })?;
    let spent;
    match args.mode {
        Mode::Store => {
            let start = cpu_seconds();
            runtime.block_on(async {
                for batch in all.chunks(args.batch) {
                    store.insert_clicks(batch).await?;
                }
                anyhow::Ok(())
            })?;
            spent = cpu_seconds() - start;
        }
        Mode::Rusqlite | Mode::RusqliteNoIndex | Mode::RusqliteNarrow => {
            runtime.block_on(store.close());
            let mut conn = rusqlite::Connection::open(&db)?;
            conn.pragma_update(None, "journal_mode", "wal")?;
            conn.pragma_update(None, "synchronous", "normal")?;
            conn.pragma_update(None, "cache_size", "-65536")?;
            if args.mode == Mode::RusqliteNoIndex {
                for index in [
                    "clicks_created",
                    "clicks_campaign_created",
                    "clicks_offer_created",
                    "clicks_ts_created",
                ] {
                    conn.execute(&format!("DROP INDEX {index}"), [])?;
                }
            }
            // The store's own row: the same columns and values it binds, at the width of the
            // batch's clicks (the benchmark's clicks carry sub_id_1, so they share one width).
            let width = Width::of(&all[0]);
            let columns = click_columns(width);
            let sql = format!(
                "INSERT INTO clicks ({}) VALUES ({}) ON CONFLICT (sub_id) DO NOTHING",
                columns.join(", "),
                vec!["?"; columns.len()].join(", ")
            );
            if args.mode == Mode::RusqliteNarrow {
                conn.execute_batch(&format!(
                    "DROP TABLE clicks; CREATE TABLE clicks (id INTEGER PRIMARY KEY, {}); \
                     CREATE UNIQUE INDEX clicks_sub ON clicks (sub_id); CREATE INDEX c1 ON clicks (created_at); \
                     CREATE INDEX c2 ON clicks (campaign_id, created_at); CREATE INDEX c3 ON clicks (offer_id, created_at); \
                     CREATE INDEX c4 ON clicks (ts_id, created_at);",
                    columns.join(", ")
                ))?;
            }
            let start = cpu_seconds();
            for batch in all.chunks(args.batch) {
                let tx = conn.transaction()?;
                {
                    let mut statement = tx.prepare_cached(&sql)?;
                    for click in batch {
                        let mut at = 0;
                        let mut bound = Ok(());
                        for_each_click_value(click, width, |value| {
                            at += 1;
                            let result = match value {
                                ClickValue::Text(text) => statement.raw_bind_parameter(at, text),
                                ClickValue::Int(n) => statement.raw_bind_parameter(at, n),
                                ClickValue::OptInt(n) => statement.raw_bind_parameter(at, n),
                                ClickValue::OptFloat(x) => statement.raw_bind_parameter(at, x),
                                ClickValue::Bool(b) => statement.raw_bind_parameter(at, b),
                            };
                            if bound.is_ok() {
                                bound = result;
                            }
                        });
                        bound?;
                        statement.raw_execute()?;
                    }
                }
                tx.commit()?;
            }
            spent = cpu_seconds() - start;
        }
    }
    println!(
        "{:?}: {} clicks, {:.2} s CPU, {:.2} µs/click",
        args.mode,
        args.clicks,
        spent,
        spent * 1e6 / args.clicks as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
