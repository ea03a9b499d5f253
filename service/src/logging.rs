//! Logging set-up for the services: human-readable lines (coloured only when standard error
//! is a terminal) or one JSON object per event, filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log events are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event; ANSI colour only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The logging options every service flattens into its command line.
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct LogArgs {
    /// How to write log lines to standard error (filter them with RUST_LOG, default info).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "LUCENT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Installs the global subscriber. Call once, first thing.
    pub fn init(self) {
        init(self.log_format, std::io::stderr().is_terminal());
    }
}

/// Installs the global subscriber writing `format` to standard error, coloured when `ansi`
/// (and the format is text).
pub fn init(format: LogFormat, ansi: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
