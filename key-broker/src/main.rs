//! `lucent-key-broker`: reads its configuration, sets up tracing, binds, serves.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use lucent_key_broker::broker::system_clock;
use lucent_key_broker::config::FileConfig;
use lucent_key_broker::{run, Broker};

/// Releases the model-weights key to verified CVMs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, env = "LUCENT_BROKER_CONFIG")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let file = FileConfig::read(&args.config)?;
    if file.dangerous_trust_simulated_root {
        tracing::warn!("dangerous_trust_simulated_root is set: simulated evidence is accepted");
    }
    let broker = Arc::new(Broker::new(file.broker_config()?, system_clock())?);
    let listener = tokio::net::TcpListener::bind(&file.listen)
        .await
        .with_context(|| format!("binding {}", file.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "key broker listening");
    run(listener, broker, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
