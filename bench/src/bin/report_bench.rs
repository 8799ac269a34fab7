//! `report/build` at scale: generates N clicks and M conversions in a fresh database (SQLite
//! file or PostgreSQL URL), computes the report rollups from them, then times a report grouped
//! by campaign, country and day with ten metrics — through the same typed query, store SQL and
//! merge as the Admin API, once as `report/build` runs it (from the rollups) and once from the
//! clicks — against the same aggregation hand-written in SQL over the clicks.
//!
//! ```sh
//! cargo run --release -p switchyard-bench --bin report-bench -- --url sqlite:///tmp/r.db --clicks 10000000
//! cargo run --release -p switchyard-bench --bin report-bench -- --url postgres://postgres@127.0.0.1/rbench
//! ```

use std::time::{Duration, Instant};

/// The server's allocator, so that the merge into the answer costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;
use switchyard::config::{Backend, DatabaseConfig};

#[derive(Parser)]
struct Args {
    /// `sqlite://PATH` (created) or `postgres://…/DB` (must exist and be empty).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 10_000_000)]
    clicks: i64,
    #[arg(long, default_value_t = 200_000)]
    conversions: i64,
    /// Reuse the data already in the database instead of generating it.
    #[arg(long)]
    reuse: bool,
    /// Time only the rollup side (report/build and the hand-written query over the rollup).
    #[arg(long)]
    rollup_only: bool,
    /// Timed runs of each query (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

const CAMPAIGNS: i64 = 20;
const COUNTRIES: i64 = 40;
const DAYS: i64 = 30;
const START: i64 = 1_792_800_000; // 2026-10-24 00:00 UTC

/// Rows generated in the database itself (no client round trips): clicks spread over
/// `DAYS` days, campaigns, countries; every `clicks / conversions`-th click converts.
fn generate_sql(backend: Backend, clicks: i64, conversions: i64) -> Vec<String> {
    let step = (clicks / conversions.max(1)).max(1);
    let span = DAYS * 86_400;
    let series = match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {clicks}) SELECT i FROM seq"
        ),
        Backend::Postgres => format!("SELECT i FROM generate_series(1::bigint, {clicks}) AS s(i)"),
    };
    vec![
        format!(
            "INSERT INTO clicks (sub_id, campaign_id, stream_id, created_at, country_code, country_name, \
             is_unique_campaign, is_bot, cost_micros, referrer) \
             SELECT 'c' || i, 1 + (i * 13 % 101) % {CAMPAIGNS}, 100 + i % 7, {START} + (i * 7919) % {span}, \
             'C' || ((i * 7 % 103) % {COUNTRIES}), 'Country ' || ((i * 7 % 103) % {COUNTRIES}), {}, {}, (i % 5) * 10000, \
             CASE WHEN i % 4 = 0 THEN '' ELSE 'https://ref.test/' END FROM ({series}) AS g",
            "(i % 3 <> 0)", "(i % 17 = 0)",
        ),
        format!(
            "INSERT INTO conversions (sub_id, tid, click_id, campaign_id, status, original_status, revenue_micros, \
             currency, params, click_created_at, created_at, updated_at) \
             SELECT sub_id, '', id, campaign_id, CASE id % 3 WHEN 0 THEN 'lead' WHEN 1 THEN 'sale' ELSE 'rejected' END, \
             '', (id % 9) * 1000000, 'USD', '{{}}', created_at, created_at + 600, created_at + 600 \
             FROM clicks WHERE id % {step} = 0"
        ),
        "ANALYZE".to_string(),
    ]
}

/// The same aggregation written by hand: clicks and conversions by campaign, country, day.
const HAND_CLICKS: &str = "SELECT campaign_id, country_name, created_at / 86400 AS day, COUNT(*) AS clicks, \
    SUM(CASE WHEN is_unique_campaign THEN 1 ELSE 0 END) AS uniques, SUM(CASE WHEN is_bot THEN 1 ELSE 0 END) AS bots, \
    CAST(SUM(cost_micros) AS BIGINT) AS cost FROM clicks GROUP BY 1, 2, 3";
const HAND_CONVERSIONS: &str = "SELECT k.campaign_id, k.country_name, k.created_at / 86400 AS day, COUNT(*) AS conversions, \
    SUM(CASE WHEN v.status = 'lead' THEN 1 ELSE 0 END) AS leads, SUM(CASE WHEN v.status = 'sale' THEN 1 ELSE 0 END) AS sales, \
    CAST(SUM(CASE WHEN v.status <> 'rejected' THEN v.revenue_micros ELSE 0 END) AS BIGINT) AS revenue \
    FROM conversions v JOIN clicks k ON k.sub_id = v.sub_id GROUP BY 1, 2, 3";

/// The same aggregation hand-written over the rollup table `report/build` reads.
const HAND_ROLLUP: &str = "SELECT campaign_id, country_name, hour / 86400 AS day, \
    CAST(SUM(clicks) AS BIGINT), CAST(SUM(campaign_unique) AS BIGINT), CAST(SUM(bots) AS BIGINT), \
    CAST(SUM(cost) AS BIGINT), CAST(SUM(conversions) AS BIGINT), CAST(SUM(leads) AS BIGINT), \
    CAST(SUM(sales) AS BIGINT), CAST(SUM(lead_revenue + sale_revenue) AS BIGINT) \
    FROM rollup_geo GROUP BY 1, 2, 3";

/// Runs the hand-written aggregation over the clicks (`rollup` false) or over the rollup
/// table; returns the rows it read.
async fn hand_written(url: &str, backend: Backend, rollup: bool) -> Result<usize> {
    macro_rules! run {
        ($pool:ty, $options:expr) => {{
            let pool = <$pool>::connect_with($options).await?;
            let rows = if rollup {
                sqlx::query(HAND_ROLLUP).fetch_all(&pool).await?.len()
            } else {
                let a = sqlx::query(HAND_CLICKS).fetch_all(&pool).await?.len();
                let b = sqlx::query(HAND_CONVERSIONS).fetch_all(&pool).await?.len();
                a + b
            };
            pool.close().await;
            rows
        }};
    }
    use std::str::FromStr;
    Ok(match backend {
        // The store's connection settings, so that both sides read the same way.
        Backend::Sqlite => run!(
            sqlx::SqlitePool,
            sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .pragma("temp_store", "memory")
                .pragma("cache_size", "-65536")
        ),
        Backend::Postgres => run!(
            sqlx::PgPool,
            sqlx::postgres::PgConnectOptions::from_str(url)?
        ),
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let backend = if args.url.starts_with("postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let store = switchyard::store::open(&DatabaseConfig {
        url: args.url.clone(),
        backend,
        max_connections: 2,
    })
    .await
    .context("open the database")?;
    store.migrate().await?;
    if !args.reuse {
        let started = Instant::now();
        macro_rules! generate {
            ($pool:ty) => {{
                let pool = <$pool>::connect(&args.url).await?;
                for sql in generate_sql(backend, args.clicks, args.conversions) {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
                }
                pool.close().await;
            }};
        }
        match backend {
            Backend::Sqlite => generate!(sqlx::SqlitePool),
            Backend::Postgres => generate!(sqlx::PgPool),
        }
        eprintln!(
            "generated {} clicks and {} conversions in {:.1} s",
            args.clicks,
            args.conversions,
            started.elapsed().as_secs_f64()
        );
        // The rows went in behind the store's back: compute the rollups from them.
        let started = Instant::now();
        store.rebuild_rollups().await?;
        println!("rebuild_rollups {:.3} s", started.elapsed().as_secs_f64());
    }
    let request = json!({
        "range": {"interval": "all_time", "timezone": "UTC"},
        "grouping": ["campaign_id", "country", "day"],
        "metrics": ["clicks", "campaign_unique_clicks", "bots", "conversions", "leads", "sales",
                    "revenue", "cost", "cr", "epc", "roi"],
        "limit": 100000,
        "summary": true
    });
    let query = switchyard::report::parse_report_query(&request, switchyard::model::unix_now())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ours = Vec::new();
    let mut groups = 0;
    let mut summary = serde_json::Value::Null;
    let mut theirs = Vec::new();
    let mut hand_rows = 0;
    let mut from_clicks = Vec::new();
    let mut store_part = Vec::new();
    let (mut hand_rollup, mut theirs_rollup) = (Vec::new(), Vec::new());
    let mut summary_from_clicks = serde_json::Value::Null;
    // Interleaved so that all three see the same cache and neighbours.
    for _ in 0..args.runs {
        let started = Instant::now();
        let rows = store.report_rows(&query.sql).await?;
        store_part.push(started.elapsed());
        let answer = query.answer(rows, &Default::default());
        ours.push(started.elapsed());
        groups = answer["total"].as_u64().unwrap_or(0);
        summary = answer["summary"].clone();
        if !args.rollup_only {
            let started = Instant::now();
            let rows = store.report_rows_from_clicks(&query.sql).await?;
            let answer = query.answer(rows, &Default::default());
            from_clicks.push(started.elapsed());
            summary_from_clicks = answer["summary"].clone();
            let started = Instant::now();
            hand_rows = hand_written(&args.url, backend, false).await?;
            theirs.push(started.elapsed());
        }
        let started = Instant::now();
        hand_rollup.push(hand_written(&args.url, backend, true).await?);
        theirs_rollup.push(started.elapsed());
    }
    let (ours, theirs_rollup) = (median(ours), median(theirs_rollup));
    let store_part = median(store_part);
    println!(
        "backend={backend:?} clicks={} conversions={} groups={groups} hand_rows={hand_rows}",
        args.clicks, args.conversions
    );
    println!(
        "hand-written over the rollup table {:.3} s ({} rows); report/build {:.3} s (of which \
         the store {:.3} s), ratio {:.2}",
        theirs_rollup.as_secs_f64(),
        hand_rollup.last().copied().unwrap_or(0),
        ours.as_secs_f64(),
        store_part.as_secs_f64(),
        ours.as_secs_f64() / theirs_rollup.as_secs_f64()
    );
    println!("summary {summary}");
    if args.rollup_only {
        store.close().await;
        return Ok(());
    }
    let (from_clicks, theirs) = (median(from_clicks), median(theirs));
    println!(
        "report/build {:.3} s (from the clicks {:.3} s), hand-written {:.3} s, ratio {:.3} (from the clicks {:.2})",
        ours.as_secs_f64(),
        from_clicks.as_secs_f64(),
        theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64(),
        from_clicks.as_secs_f64() / theirs.as_secs_f64()
    );
    anyhow::ensure!(
        summary == summary_from_clicks,
        "the rollup's summary differs from the clicks': {summary_from_clicks}"
    );
    store.close().await;
    Ok(())
}
