//! Lucent's transparency log server: accepts operator-signed statements, sequences them
//! durably in batches, signs C2SP checkpoints, gathers witness cosignatures, and serves the
//! log over the C2SP `tlog-tiles` read API.
//!
//! What it implements:
//! - submission (`POST /v1/statements`, `?wait=<s>` for a C2SP `tlog-proof` bundle), with the
//!   statement and operator signature checked by [`lucent_verifier::statement`];
//! - one [`sequencer`] per database (PostgreSQL advisory lock, SQLite file lock) writing
//!   entries, stored hashes and the signed checkpoint in one transaction before anyone learns
//!   an index;
//! - the read API ([`api`]): `/checkpoint`, `/tile/<L>/<N>[.p/<W>]`,
//!   `/tile/entries/<N>[.p/<W>]` (immutable full tiles), JSON proofs and lookups;
//! - C2SP `tlog-witness` ([`witness`]) and an optional tile mirror for static serving;
//! - storage behind one trait ([`store::LogStore`]) on SQLite or PostgreSQL.
//!
//! Running it: `lucent-log-server` with no flags serves on `127.0.0.1:8080` from
//! `./lucent-log-data`: on first start it creates the SQLite database `log.db`, generates the
//! log key `log.key` (mode 0600; its verifier key is logged and written to `log.key.pub`), and
//! writes a template `operators.txt`. Put one operator verifier key per line in
//! `operators.txt` (or pass `--operator-key`) and restart; statements signed by other keys are
//! refused. `lucent-log-server keygen --name <origin>` makes a key ahead of time. Every flag
//! also reads a `LUCENT_LOG_*` environment variable, and `--config <file.toml>` takes the same
//! options in kebab-case. For PostgreSQL pass `--database-url postgres://…`; any number of
//! servers may share one database, one of them sequencing at a time.
//!
//! What it does not do: check anything itself. Every format and proof check is
//! `lucent_verifier`'s; the tree math is `tlog_tiles`'.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser as _;
//! let cli = lucent_log_server::config::Cli::parse_from(["lucent-log-server", "--data-dir", "/tmp/log"]);
//! let config = cli.serve.resolve()?;
//! let log = lucent_log_server::server::Log::open(&config).await?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! log.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod cli;
pub mod config;
pub mod error;
pub mod metrics;
pub mod sequencer;
pub mod server;
pub mod store;
pub mod tree;
pub mod witness;
