//! The `lucent-log-server` command: reads configuration, sets up logging, binds, and serves.
//! `main.rs` only calls [`main`], so that the end-to-end tests can build the same command
//! into a binary of their own without compiling it twice.

use std::process::ExitCode;

use crate::config::{Cli, Command, KeygenArgs, ServeArgs};
use crate::server::{write_private, Log};
use anyhow::Context as _;
use clap::Parser as _;
use lucent_verifier::note::NoteSigner;

/// Runs the command with the process's arguments; the exit code says whether it succeeded.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    let result = match cli.command {
        Some(Command::Keygen(args)) => keygen(args),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    };
    lucent_service::exit("lucent-log-server", result)
}

fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let signer = NoteSigner::generate(&mut rand_core::OsRng, &args.name)
        .with_context(|| format!("key name {:?}", args.name))?;
    match &args.out {
        Some(path) => {
            write_private(path, signer.to_private_string().as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("private key written to {}", path.display());
        }
        None => println!("{}", signer.to_private_string()),
    }
    println!("{}", signer.verifier_key());
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async move {
        let log = Log::open(&config).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            data_dir = %config.data_dir.display(),
            log_key = %config.log_key_file.display(),
            operators = %config.operators_file.display(),
            verifier_key = %log.verifier_key(),
            "serving"
        );
        // The first stdout line says where we listen (tests and scripts read it).
        println!("listening on http://{addr}");
        log.serve(listener, shutdown_signal()).await?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests and the last batch");
}
