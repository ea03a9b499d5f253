//! The `lucent-issuer` command: `serve`; `add-account` (prints the new account's credential
//! once); `info` (the name and public key to publish as an `issuer` statement, making the key
//! on first use). `main.rs` only calls [`main`], so that the end-to-end tests can build the
//! same command into a binary of their own.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{run, Accounts, Issuer, IssuerConfig};

/// The Privacy Pass issuer: anonymous tokens for authenticated accounts.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "LUCENT_ISSUER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: lucent_service::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `GET /v1/issuer` and `POST /v1/token-requests`.
    Serve,
    /// Add an account; prints its credential (`<account>.<secret>`), which is not stored.
    AddAccount {
        /// The account's name (1 to 64 of [A-Za-z0-9._+-]).
        account: String,
        /// Tokens a day (default: the configuration's `default_daily_limit`).
        #[arg(long)]
        daily_limit: Option<u64>,
    },
    /// Print the issuer's name and public key (JSON), to publish as an `issuer` statement.
    Info,
}

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.log.init();
    lucent_service::exit("lucent-issuer", command(args).await)
}

async fn command(args: Args) -> anyhow::Result<()> {
    let path = args
        .config
        .context("--config (or LUCENT_ISSUER_CONFIG) names no configuration file")?;
    let config = IssuerConfig::read(&path)?;
    match args.command {
        Command::Info => {
            let key = config.key()?;
            let issuer = Issuer::new(
                config.name.clone(),
                key,
                Accounts::open("sqlite::memory:").await?,
            );
            println!("{}", serde_json::to_string(&issuer.info())?);
            Ok(())
        }
        Command::AddAccount {
            account,
            daily_limit,
        } => {
            let accounts = Accounts::open(&config.database_url).await?;
            let credential = accounts
                .add(&account, daily_limit.unwrap_or(config.default_daily_limit))
                .await?;
            println!("{credential}");
            Ok(())
        }
        Command::Serve => {
            let key = config.key()?;
            let accounts = Accounts::open(&config.database_url).await?;
            let issuer = Arc::new(Issuer::new(config.name.clone(), key, accounts));
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            tracing::info!(
                addr = %listener.local_addr()?,
                name = %config.name,
                public_key = %issuer.info().public_key,
                "issuer listening"
            );
            run(listener, issuer, &config.http, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(())
        }
    }
}
