//! The `lucent-cvm-runtime` command: reads its configuration, hardens the
//! process, sets up tracing, binds, starts the self-check loop and serves.
//! `main.rs` only calls [`main`], so that the end-to-end tests can build the same command
//! into a binary of their own without compiling it twice.
//!
//! As the image's init process (PID 1, [`crate::init`]) it mounts what it reads, takes the
//! image's configuration by default, and powers the machine off when it stops.

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
    /// Configuration file (TOML). Its exact bytes are part of the measured image. Default
    /// when running as PID 1: the image's `/etc/lucent/runtime.toml`.
    #[arg(long, env = "LUCENT_CVM_CONFIG")]
    config: Option<PathBuf>,
    /// The launch measurement (hex, 48 bytes) the simulated TEE reports: what the simulated
    /// platform measured when it launched this image (the devnet's simulated launch). Only
    /// with `dangerous_simulated_tee`; without it the simulated TEE reports the digest of
    /// the configuration file.
    #[cfg(feature = "dangerous-simulated-tee")]
    #[arg(long, env = "LUCENT_DANGEROUS_SIMULATED_LAUNCH_MEASUREMENT")]
    dangerous_simulated_launch_measurement: Option<String>,
    #[command(flatten)]
    log: lucent_service::LogArgs,
}

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let init = crate::init::is_init();
    if init {
        crate::init::set_up();
    }
    let args = Args::parse();
    args.log.init();
    // The first line on the console says what started (the image boot test reads it).
    println!(
        "lucent-cvm-runtime {} started{}",
        env!("CARGO_PKG_VERSION"),
        if init { " as init (PID 1)" } else { "" }
    );
    let code = lucent_service::exit("lucent-cvm-runtime", serve(args, init).await);
    if init {
        println!("lucent-cvm-runtime: stopped; powering off");
        crate::init::power_off();
    }
    code
}

async fn serve(args: Args, init: bool) -> anyhow::Result<()> {
    hardening::disable_core_dumps().context("disabling core dumps")?;
    let path = match (args.config, init) {
        (Some(p), _) => p,
        (None, true) => PathBuf::from(crate::init::IMAGE_CONFIG),
        (None, false) => anyhow::bail!("--config (or LUCENT_CVM_CONFIG) is required"),
    };
    #[allow(unused_mut)]
    let mut config = RuntimeConfig::read(&path)?;
    #[cfg(feature = "dangerous-simulated-tee")]
    if let Some(m) = &args.dangerous_simulated_launch_measurement {
        config.dangerous_set_launch_measurement(m)?;
    }
    #[cfg(feature = "dangerous-simulated-tee")]
    if config.file.dangerous_simulated_tee {
        // Without a measurement, `attester()` below says why.
        let m = config
            .simulated_measurement()
            .map(hex::encode)
            .unwrap_or_else(|_| "(none given)".into());
        eprintln!(
            "WARNING: dangerous_simulated_tee is set. Evidence comes from the SIMULATED TEE, \
             whose keys are public: this runtime protects nothing. Tests and devnets only. \
             Simulated measurement {m}."
        );
        tracing::warn!(measurement = %m, "dangerous_simulated_tee: simulated evidence");
    }
    let attester = config
        .attester()
        .map_err(|e| anyhow::anyhow!("no attester: {e}"))?;
    println!("attester: {}", attester.name());
    let rt = Arc::new(Runtime::new(config, attester)?);
    let listen = rt.config.file.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    // A stdout line says where we listen (tests and scripts read it).
    println!("listening on http://{addr}");
    tracing::info!(%addr, key_id = rt.keypair.key_id(), attester = rt.attester.name(), "cvm runtime listening");
    tokio::spawn(rt.clone().supervise());
    run(listener, rt, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
