//! Creates the benchmark campaigns of bench/campaign.json in the database a Switchyard config
//! names, through the Store API: `bench` (clicks recorded) and `bench-nc` (the same streams
//! with `collect_clicks` off). Run it before starting the server on that database.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use switchyard::model::{NewCampaign, NewStream, StreamType};
use switchyard::store::Store;
use switchyard_bench::CampaignSpec;

#[derive(Debug, Parser)]
#[command(about = "Creates the benchmark campaigns through the Store API.")]
struct Args {
    /// The Switchyard configuration whose database receives the campaigns.
    #[arg(long)]
    config: PathBuf,
    /// The campaign definition.
    #[arg(long, default_value = "bench/campaign.json")]
    campaign: PathBuf,
}

async fn create(
    store: &dyn Store,
    spec: &CampaignSpec,
    alias: &str,
    collect_clicks: bool,
) -> Result<i64> {
    let mut new = NewCampaign::new(
        alias,
        &format!("Benchmark ({alias})"),
        &format!("{alias}-token"),
    );
    new.cookies_ttl = spec.cookies_ttl_hours;
    let campaign = store.create_campaign(&new).await?;
    for (i, stream) in spec.streams.iter().enumerate() {
        let mut new = NewStream::redirect(campaign.id, &stream.name, &stream.url);
        new.position = i as i64 + 1;
        new.collect_clicks = collect_clicks;
        for (name, mode, payload) in &stream.filters {
            new = new.filter(name, mode, payload.clone());
        }
        store.create_stream(&new).await?;
    }
    let mut fallback = NewStream::redirect(campaign.id, "Default", &spec.default_url);
    fallback.stream_type = StreamType::Default;
    fallback.collect_clicks = collect_clicks;
    store.create_stream(&fallback).await?;
    Ok(campaign.id)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = switchyard::config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = CampaignSpec::read(&args.campaign)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = switchyard::store::open(&config.database)
            .await
            .context("cannot open the database")?;
        store.migrate().await?;
        for (alias, collect) in [("bench", true), ("bench-nc", false)] {
            let id = create(store.as_ref(), &spec, alias, collect).await?;
            println!(
                "Created campaign #{id} /{alias}: {} regular streams of {} filters, clicks {}.",
                spec.streams.len(),
                spec.streams.iter().map(|s| s.filters.len()).sum::<usize>()
                    / spec.streams.len().max(1),
                if collect { "recorded" } else { "not recorded" }
            );
        }
        store.close().await;
        Ok(())
    })
}
