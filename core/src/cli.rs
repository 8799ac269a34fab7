//! The `switchyard` command line.

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
    /// Check the configuration, print every problem, exit non-zero on any.
    Validate,
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
        Command::Validate => {
            println!("{}: the configuration is valid.", cli.config.display());
            ExitCode::SUCCESS
        }
        Command::Migrate => runtime_block(config, migrate),
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

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = crate::server::start(config).await?;
    for secret in &server.generated_secrets {
        eprintln!(
            "Generated {}: {}  (shown once; stored in the data directory{})",
            secret.name,
            secret.value,
            if secret.name == "admin API key" {
                " as a hash only"
            } else {
                ""
            }
        );
    }
    // Tests and scripts read the bound address from this line (port 0 picks a free port).
    println!("Switchyard listening on http://{}", server.local_addr);
    wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received."),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received."),
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM; only Ctrl-C stops the server.")
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
