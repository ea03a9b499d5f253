//! The `lucent-key-broker` command: reads its configuration, sets up tracing,
//! binds and serves.
//! `main.rs` only calls [`main`], so that the end-to-end tests can build the same command
//! into a binary of their own without compiling it twice.

use std::path::PathBuf;
use std::sync::Arc;

use crate::broker::system_clock;
use crate::config::FileConfig;
use crate::{run, Broker};
use anyhow::Context as _;
use clap::Parser;

/// Releases the model-weights key to verified CVMs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, env = "LUCENT_BROKER_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    log: lucent_service::LogArgs,
}

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.log.init();
    lucent_service::exit("lucent-key-broker", serve(args).await)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let file = FileConfig::read(&args.config)?;
    #[cfg(feature = "dangerous-simulated-tee")]
    if file.trust.dangerous.trust_simulated_root {
        tracing::warn!("trust_simulated_root is set: simulated evidence is accepted");
    }
    let broker = Arc::new(Broker::new(file.broker_config()?, system_clock())?);
    tokio::spawn(follow(
        broker.clone(),
        std::time::Duration::from_secs(file.follow_every_secs.max(1)),
    ));
    let listener = tokio::net::TcpListener::bind(&file.listen)
        .await
        .with_context(|| format!("binding {}", file.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "key broker listening");
    run(listener, broker, &file.http, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Reads the log now and then every `every`, logging what changed and every failure.
async fn follow(broker: Arc<Broker>, every: std::time::Duration) {
    let clock = system_clock();
    loop {
        match broker.follower().sync(clock()).await {
            Ok(synced) => tracing::debug!(?synced, "log view confirmed"),
            Err(e) => tracing::warn!(
                error = %e,
                availability = e.is_availability(),
                "reading the log failed; keys are released on the last view until it is too old"
            ),
        }
        tokio::time::sleep(every).await;
    }
}
