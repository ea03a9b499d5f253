//! The `lucent-cvm-runtime` command: reads its configuration, hardens the
//! process, sets up tracing, binds, starts the self-check loop and serves.
//! `main.rs` only calls [`main`], so that the end-to-end tests can build the same command
//! into a binary of their own without compiling it twice.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::RuntimeConfig;
use crate::{hardening, run, Runtime};
use anyhow::Context as _;
use clap::Parser;

/// The Lucent service inside a confidential VM.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML). Its exact bytes are part of the measured image.
    #[arg(long, env = "LUCENT_CVM_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    log: lucent_service::LogArgs,
}

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.log.init();
    lucent_service::exit("lucent-cvm-runtime", serve(args).await)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    hardening::disable_core_dumps().context("disabling core dumps")?;
    let config = RuntimeConfig::read(&args.config)?;
    #[cfg(feature = "dangerous-simulated-tee")]
    if config.file.dangerous_simulated_tee {
        let m = hex::encode(config.simulated_measurement()?);
        eprintln!(
            "WARNING: dangerous_simulated_tee is set. Evidence comes from the SIMULATED TEE, \
             whose keys are public: this runtime protects nothing. Tests and devnets only. \
             Simulated measurement {m}."
        );
        tracing::warn!(measurement = %m, "dangerous_simulated_tee: simulated evidence");
    }
    let attester = config.attester()?;
    let rt = Arc::new(Runtime::new(config, attester)?);
    let listen = rt.config.file.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    // The first stdout line says where we listen (tests and scripts read it).
    println!("listening on http://{addr}");
    tracing::info!(%addr, key_id = rt.keypair.key_id(), attester = rt.attester.name(), "cvm runtime listening");
    tokio::spawn(rt.clone().supervise());
    run(listener, rt, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
