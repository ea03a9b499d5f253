//! The `lucent-relay` command: reads its configuration, sets up tracing, binds and serves.
//! `main.rs` only calls [`main`], so that the end-to-end tests can build the same command
//! into a binary of their own.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

use crate::{run, Relay, RelayConfig};

/// Relays Oblivious HTTP requests to one gateway, hiding who sent them.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, env = "LUCENT_RELAY_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    log: lucent_service::LogArgs,
}

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.log.init();
    lucent_service::exit("lucent-relay", serve(args).await)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let config = RelayConfig::read(&args.config)?;
    let relay = Arc::new(Relay::new(&config)?);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        gateway = %config.gateway_url,
        "relay listening"
    );
    run(listener, relay, &config.http, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
