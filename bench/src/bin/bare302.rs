//! The baseline of the load test: an axum handler that answers every `GET /{alias}` with a
//! 302 and a fixed Location, served the way Switchyard serves (`tokio::runtime::Runtime::new()`
//! as in `switchyard::cli`, `axum::serve` with connect info as in `switchyard::server`), so the
//! difference measured against Switchyard is the click path itself.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "A bare axum 302 server, the baseline of bench/load.sh.")]
struct Args {
    /// Where to listen (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        // Scripts read the bound address from this line, as they do Switchyard's.
        println!("bare302 listening on http://{}", listener.local_addr()?);
        let app = switchyard_bench::bare_router();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the server failed")
    })
}
