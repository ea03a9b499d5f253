//! The `lucent-gateway` command: `serve` reads the configuration, sets up tracing, binds and
//! serves; `key-config` prints the key config to publish in the log (making the key on
//! first use). `main.rs` only calls [`main`], so that the end-to-end tests can build the same
//! command into a binary of their own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{run, Gateway, GatewayConfig};

/// The operator's Oblivious HTTP gateway in front of the CVMs.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "LUCENT_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: lucent_service::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `POST /v1/ohttp` and `GET /v1/status`.
    Serve,
    /// Print the gateway's key config (hex), to publish as a `keyconfig` statement.
    KeyConfig,
}

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.log.init();
    lucent_service::exit("lucent-gateway", command(args).await)
}

async fn command(args: Args) -> anyhow::Result<()> {
    let path = args
        .config
        .context("--config (or LUCENT_GATEWAY_CONFIG) names no configuration file")?;
    let config = GatewayConfig::read(&path)?;
    let key = config.key_pair()?;
    match args.command {
        Command::KeyConfig => {
            println!("{}", hex::encode(key.key_config_bytes()));
            Ok(())
        }
        Command::Serve => {
            let mut gateway = Gateway::new(&config, key)?;
            if let Some(tokens) = &config.tokens {
                gateway = gateway.with_tokens(crate::tokens::Redeemer::new(tokens).await?);
            }
            let gateway = Arc::new(gateway);
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            tracing::info!(
                addr = %listener.local_addr()?,
                key_id = config.key_id,
                key_config = %hex::encode(gateway.key_config()),
                cvms = config.cvms.len(),
                tokens = config.tokens.is_some(),
                "gateway listening"
            );
            run(
                listener,
                gateway,
                Duration::from_secs(config.cvm_refresh_secs),
                &config.http,
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            )
            .await?;
            Ok(())
        }
    }
}
