//! The `switchyard` command line.

mod files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config, ENV_CONFIG_PATH};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Self-hosted traffic distribution system and click tracker."
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = ENV_CONFIG_PATH, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the tracker (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and the campaigns directory, print every problem, exit
    /// non-zero on any.
    Validate {
        /// Check this campaigns directory instead of the configured one.
        #[arg(long = "campaigns-dir")]
        campaigns_dir: Option<PathBuf>,
    },
    /// Write the stored campaigns, streams, offers, landings, networks and sources as
    /// campaign files under DIR.
    Export { dir: PathBuf },
    /// Show what loading a campaigns directory (default: the configured one) would change;
    /// exit 0 when nothing, 1 when something, 2 on problems.
    Diff { dir: Option<PathBuf> },
    /// Route a hypothetical click and print the decision with its trace (nothing is recorded).
    Route(RouteArgs),
    /// List every filter and action kind with its origin; exit non-zero if a plugin fails to load.
    Plugins,
    /// Recompute the report rollups from the clicks and conversions (after data was written
    /// into the database by other means than the tracker).
    RebuildRollups,
    /// Write the clicks the recorder set aside (data/set-aside/clicks.jsonl) into the store;
    /// the ones it still refuses stay in the file. Exit 1 when some remain.
    ReplaySetAside,
}

#[derive(Debug, clap::Args)]
struct RouteArgs {
    /// The campaign's alias (or its Click API token).
    #[arg(long)]
    campaign: String,
    /// The visitor's IP address.
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
    /// The visitor's User-Agent.
    #[arg(long, default_value = "")]
    ua: String,
    #[arg(long, default_value = "")]
    referrer: String,
    /// Browser language (ISO 639-1).
    #[arg(long, default_value = "")]
    language: String,
    /// A query parameter `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            eprint!("{error}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Validate { campaigns_dir } => {
            println!("{}: the configuration is valid.", cli.config.display());
            match campaigns_dir.or_else(|| config.campaigns.dir.clone()) {
                Some(dir) if !files::validate_dir(&config, &dir) => ExitCode::from(2),
                _ => ExitCode::SUCCESS,
            }
        }
        Command::Export { dir } => runtime_block(config, move |config| async move {
            files::export(config, &dir).await
        }),
        Command::Diff { dir } => files::diff(config, dir.as_deref()),
        Command::Migrate => runtime_block(config, migrate),
        Command::Route(args) => runtime_block(config, move |config| route(config, args)),
        Command::Plugins => plugins(&config),
        Command::RebuildRollups => runtime_block(config, rebuild_rollups),
        Command::ReplaySetAside => runtime_block(config, replay_set_aside),
        Command::Serve => runtime_block(config, serve),
    }
}

fn runtime_block<F, Fut>(config: Config, command: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    init_logging(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = crate::store::open(&config.database).await?;
    let report = store.migrate().await?;
    println!(
        "Schema version {} ({} migration(s) applied).",
        report.current,
        report.applied.len()
    );
    store.close().await;
    Ok(())
}

async fn rebuild_rollups(config: Config) -> anyhow::Result<()> {
    let store = crate::store::open(&config.database).await?;
    let started = std::time::Instant::now();
    if !store.migrate().await?.computed_rollups() {
        store.rebuild_rollups().await?;
    }
    println!(
        "Report rollups rebuilt in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

async fn replay_set_aside(config: Config) -> anyhow::Result<()> {
    let store = crate::store::open(&config.database).await?;
    store.migrate().await?;
    let set_aside = crate::recorder::SetAside::in_data_dir(&config.server.data_dir);
    let report = set_aside.replay(store.as_ref()).await;
    store.close().await;
    let report = report?;
    println!(
        "{} click(s) written, {} still refused, {} unreadable line(s) ({}).",
        report.written,
        report.kept,
        report.unreadable,
        set_aside.path().display()
    );
    anyhow::ensure!(
        report.kept == 0 && report.unreadable == 0,
        "some set-aside clicks remain in {}",
        set_aside.path().display()
    );
    Ok(())
}

fn plugins(config: &Config) -> ExitCode {
    match crate::reload::load_plugins(&config.plugins) {
        Ok(loaded) => {
            let describe = |kind: &str, info: &crate::registry::KindInfo| {
                let source = info
                    .origin
                    .source()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                println!(
                    "{kind:7} {:28} {:8}{source}",
                    info.name,
                    info.origin.label()
                );
            };
            for info in loaded.registry.filters() {
                describe("filter", info);
            }
            for info in loaded.registry.actions() {
                describe("action", info);
            }
            for script in loaded
                .scripts
                .iter()
                .filter(|s| s.kind == crate::script::ScriptKindType::Trigger)
            {
                describe("trigger", &script.info);
            }
            for trigger in loaded.libraries.iter().flat_map(|l| l.triggers()) {
                describe("trigger", trigger.info());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn route(config: Config, args: RouteArgs) -> anyhow::Result<()> {
    use crate::registry::Reply;
    use crate::traffic::{RouteOptions, RoutingSnapshot, Visit, route_click};
    let store = crate::store::open(&config.database).await?;
    store.migrate().await?;
    let data = store.routing_data().await?;
    let bot_list = crate::server::load_bot_list(store.as_ref()).await?;
    store.close().await;
    let snapshot = RoutingSnapshot::build(0, data, &crate::registry::Registry::builtin());
    for warning in &snapshot.warnings {
        println!("warning: {warning}");
    }
    let route = snapshot
        .campaign_by_alias(&args.campaign)
        .or_else(|| snapshot.campaign_by_token(&args.campaign))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no active campaign has the alias or token `{}`",
                args.campaign
            )
        })?;
    let mut query = Vec::new();
    for param in &args.params {
        let (name, value) = param
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--param `{param}` is not NAME=VALUE"))?;
        query.push((name.to_string(), value.to_string()));
    }
    let mut visit = Visit::new(args.ip, &args.ua);
    visit.referrer = args.referrer;
    visit.language = args.language.to_ascii_lowercase();
    visit.query = query;
    let traffic =
        crate::server::traffic_env(&config, "route-dry-run-signing-key", false, &bot_list)?;
    let options = RouteOptions {
        trace: true,
        dry_run: true,
        ..RouteOptions::default()
    };
    let result = route_click(&traffic, &snapshot, route, &visit, &options);
    for line in &result.log {
        println!("{line}");
    }
    let click = &result.click;
    let answer = match &result.reply {
        Reply::Redirect { url, status } => format!("{status} redirect to {url}"),
        Reply::Content {
            status,
            content_type,
            body,
            ..
        } => format!("{status} {content_type}, {} bytes", body.len()),
        Reply::Fetch { url, mode } => format!("fetch {url} ({mode:?})"),
        Reply::LocalFile { owner, path } => format!("file {path} of {owner:?}"),
        Reply::ToCampaign { campaign_id } => format!("campaign {campaign_id}"),
    };
    println!("Decision: {answer}");
    let show = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    println!(
        "  campaign {} stream {} landing {} offer {} (type {})",
        click.campaign_id,
        show(click.stream_id),
        show(click.landing_id),
        show(click.offer_id),
        result.info_type
    );
    println!(
        "  country {:?} region {:?} city {:?} device {:?} os {:?} browser {:?} bot {}",
        click.country_code,
        click.region,
        click.city,
        click.device_type,
        click.os,
        click.browser,
        click.is_bot
    );
    println!(
        "  unique in campaign {}, stream {}, globally {}",
        result.uniqueness.campaign, result.uniqueness.stream, result.uniqueness.global
    );
    println!("Nothing was recorded.");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let signals = ShutdownSignals::install();
    let server = crate::server::start(config).await?;
    for secret in &server.generated_secrets {
        eprintln!(
            "Generated {}: {}  (shown once; stored in the data directory{})",
            secret.name,
            secret.value,
            if secret.hashed { " as a hash only" } else { "" }
        );
    }
    // Tests and scripts read the bound address from this line (port 0 picks a free port).
    println!("Switchyard listening on http://{}", server.local_addr);
    signals.wait().await;
    server.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT handlers, installed before the server announces it is listening so that
/// a signal arriving at any moment after that drains the server instead of killing it.
struct ShutdownSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(error) => {
                    tracing::warn!(%error, signal = name, "Cannot listen for a shutdown signal.");
                    None
                }
            };
            ShutdownSignals {
                term: listen(SignalKind::terminate(), "SIGTERM"),
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        ShutdownSignals {}
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => tracing::info!("SIGTERM received."),
                _ = next(&mut self.interrupt) => tracing::info!("SIGINT received."),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
