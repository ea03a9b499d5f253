//! What Lucent's services (the log server, the CVM runtime, the key broker, the issuer, the
//! gateway, the relay) share:
//!
//! - [`config_file`]: the bounded TOML configuration reader and its one error type;
//! - [`secret_file`]: key seeds kept in files (made 0600 on first use);
//! - [`db`]: the SQL database (SQLite by default, PostgreSQL), opened the same way by all;
//! - [`logging`]: `--log-format text|json`, colour only when standard error is a terminal;
//! - [`http`]: serving with header and body read timeouts and a per-source rate limit,
//!   on by default ([`http::HttpLimits`], a `[http]` table in each configuration file);
//! - [`exit`]: turns a command's result into the process's exit code and its one error line.

pub mod config_file;
pub mod db;
pub mod http;
pub mod logging;
pub mod secret_file;

pub use logging::{LogArgs, LogFormat};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The exit code for `result`; an error is printed to standard error as one line,
/// `<command>: <error and its causes>`.
pub fn exit(command: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{command}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
