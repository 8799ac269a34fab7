//! Creates the benchmark campaigns of bench/campaign.json in the database a Switchyard config
//! names, through the Store API: `bench` (clicks recorded) and `bench-nc` (the same streams
//! with `collect_clicks` off). Run it before starting the server on that database.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use switchyard_bench::{CampaignSpec, create_campaign};

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
            let id = create_campaign(store.as_ref(), &spec, alias, collect).await?;
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
