//! `lucent-cvm-runtime`: reads its configuration, hardens the process, sets up tracing,
//! binds, starts the self-check loop and serves.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use lucent_cvm_runtime::config::RuntimeConfig;
use lucent_cvm_runtime::{hardening, run, Runtime};

/// The Lucent service inside a confidential VM.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML). Its exact bytes are part of the measured image.
    #[arg(long, env = "LUCENT_CVM_CONFIG")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    hardening::disable_core_dumps().context("disabling core dumps")?;
    let config = RuntimeConfig::read(&args.config)?;
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
