//! Configuration: flags, `LUCENT_LOG_*` environment variables and a TOML file, in that order
//! of precedence, then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lucent_service::config_file;
use serde::Deserialize;

use crate::sequencer::BatchConfig;

/// `lucent-log-server`: Lucent's transparency log.
#[derive(Debug, Parser)]
#[command(
    name = "lucent-log-server",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Serve options, when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logging.
    #[command(flatten)]
    pub log: lucent_service::LogArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at startup; boxing would only complicate clap's derive.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve the log.
    Serve(ServeArgs),
    /// Make a log key: writes the private key (mode 0600) or prints it, and prints the
    /// verifier key.
    Keygen(KeygenArgs),
}

/// `keygen` options.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key name, which is also the log's checkpoint origin.
    #[arg(long, default_value = DEFAULT_LOG_NAME)]
    pub name: String,
    /// Write the private key here (mode 0600) instead of to standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The default log name (key name and checkpoint origin).
pub const DEFAULT_LOG_NAME: &str = "log.lucent.local";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "lucent-log-data";

/// `serve` options. Every one may also come from the TOML file given with `--config`.
#[derive(Debug, Args, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these options (kebab-case keys, as the flags).
    #[arg(long, env = "LUCENT_LOG_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Data directory: SQLite database, generated log key, operators.txt.
    #[arg(long, env = "LUCENT_LOG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://<path>` or `postgres://…` (default: sqlite in the data dir).
    #[arg(long, env = "LUCENT_LOG_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "LUCENT_LOG_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The log's private key file (Go note format). Default: `<data dir>/log.key`, made on
    /// first start.
    #[arg(long, env = "LUCENT_LOG_LOG_KEY_FILE")]
    pub log_key_file: Option<PathBuf>,
    /// Name for a log key made on first start (also the checkpoint origin).
    #[arg(long, env = "LUCENT_LOG_LOG_NAME")]
    pub log_name: Option<String>,
    /// An allowed operator verifier key (repeatable; comma-separated in the environment).
    #[arg(
        long = "operator-key",
        env = "LUCENT_LOG_OPERATOR_KEYS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub operator_key: Vec<String>,
    /// File of operator verifier keys, one a line, `#` comments. Default:
    /// `<data dir>/operators.txt` (a template is written on first start).
    #[arg(long, env = "LUCENT_LOG_OPERATORS_FILE")]
    pub operators_file: Option<PathBuf>,
    /// A witness, `url=<submission prefix>,key=<cosignature verifier key>` (repeatable;
    /// `;`-separated in the environment).
    #[arg(long = "witness", env = "LUCENT_LOG_WITNESSES", value_delimiter = ';')]
    #[serde(default)]
    pub witness: Vec<String>,
    /// How long to wait for one witness, in milliseconds.
    #[arg(long, env = "LUCENT_LOG_WITNESS_TIMEOUT_MS")]
    pub witness_timeout_ms: Option<u64>,
    /// Most entries per batch.
    #[arg(long, env = "LUCENT_LOG_BATCH_MAX")]
    pub batch_max: Option<usize>,
    /// Longest wait after the first entry of a batch, in milliseconds.
    #[arg(long, env = "LUCENT_LOG_BATCH_INTERVAL_MS")]
    pub batch_interval_ms: Option<u64>,
    /// Mirror tiles and the checkpoint to this directory (tlog-tiles layout).
    #[arg(long, env = "LUCENT_LOG_TILES_DIR")]
    pub tiles_dir: Option<PathBuf>,
    /// Submissions per second accepted over all clients (default: unlimited).
    #[arg(long, env = "LUCENT_LOG_SUBMIT_RATE")]
    pub submit_rate: Option<f64>,
    /// Most simultaneous requests in flight.
    #[arg(long, env = "LUCENT_LOG_MAX_CONNECTIONS")]
    pub max_in_flight: Option<usize>,
    /// Close a connection whose request headers take longer than this, in milliseconds
    /// (default 10000).
    #[arg(long, env = "LUCENT_LOG_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Fail a request whose body takes longer than this, in milliseconds (default 30000).
    #[arg(long, env = "LUCENT_LOG_BODY_READ_TIMEOUT_MS")]
    pub body_read_timeout_ms: Option<u64>,
    /// Requests per second one address may send, sustained (default 100).
    #[arg(long, env = "LUCENT_LOG_PER_SOURCE_PER_SECOND")]
    pub per_source_per_second: Option<u32>,
    /// Requests one address may send at once before the sustained rate applies
    /// (default 1000).
    #[arg(long, env = "LUCENT_LOG_PER_SOURCE_BURST")]
    pub per_source_burst: Option<u32>,
    /// No per-source rate limit: one address can take every slot. Load tests only.
    #[arg(long, env = "LUCENT_LOG_DANGEROUS_NO_RATE_LIMIT")]
    #[serde(default)]
    pub dangerous_no_rate_limit: bool,
}

pub use lucent_service::config_file::ConfigError;

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Log key file.
    pub log_key_file: PathBuf,
    /// Name for a generated log key.
    pub log_name: String,
    /// Operator keys from flags.
    pub operator_keys: Vec<String>,
    /// Operators file.
    pub operators_file: PathBuf,
    /// Witness specs.
    pub witnesses: Vec<String>,
    /// Per-witness timeout.
    pub witness_timeout: Duration,
    /// Batching.
    pub batch: BatchConfig,
    /// Tile mirror directory.
    pub tiles_dir: Option<PathBuf>,
    /// Submission rate limit.
    pub submit_rate: Option<f64>,
    /// Most requests in flight.
    pub max_in_flight: usize,
    /// Connection limits: header and body read timeouts, per-source rate limit.
    pub http: lucent_service::http::HttpLimits,
}

impl ServeArgs {
    /// Fills unset options from the `--config` file, then applies defaults.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => config_file::read::<ServeArgs>(path)?,
            None => ServeArgs::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = self
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| crate::store::default_sqlite_url(&data_dir));
        let listen = match self.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("default listen address: {e}")))?,
        };
        let batch_max = self.batch_max.or(file.batch_max).unwrap_or(4096);
        if !(1..=65536).contains(&batch_max) {
            return Err(ConfigError::Invalid(format!(
                "batch-max {batch_max} is not 1 to 65536"
            )));
        }
        let interval = self
            .batch_interval_ms
            .or(file.batch_interval_ms)
            .unwrap_or(25);
        if interval > 10_000 {
            return Err(ConfigError::Invalid(format!(
                "batch-interval-ms {interval} is over 10000"
            )));
        }
        let submit_rate = self.submit_rate.or(file.submit_rate);
        if let Some(r) = submit_rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(ConfigError::Invalid(format!(
                    "submit-rate {r} is not positive"
                )));
            }
        }
        let defaults = lucent_service::http::HttpLimits::default();
        let http = lucent_service::http::HttpLimits {
            header_read_timeout_ms: self
                .header_read_timeout_ms
                .or(file.header_read_timeout_ms)
                .unwrap_or(defaults.header_read_timeout_ms),
            body_read_timeout_ms: self
                .body_read_timeout_ms
                .or(file.body_read_timeout_ms)
                .unwrap_or(defaults.body_read_timeout_ms),
            per_source_per_second: self
                .per_source_per_second
                .or(file.per_source_per_second)
                .unwrap_or(defaults.per_source_per_second),
            per_source_burst: self
                .per_source_burst
                .or(file.per_source_burst)
                .unwrap_or(defaults.per_source_burst),
            dangerous_no_rate_limit: self.dangerous_no_rate_limit || file.dangerous_no_rate_limit,
        };
        http.check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut operator_keys = file.operator_key;
        operator_keys.extend(self.operator_key);
        let mut witnesses = file.witness;
        witnesses.extend(self.witness);
        Ok(Config {
            log_key_file: self
                .log_key_file
                .or(file.log_key_file)
                .unwrap_or_else(|| data_dir.join("log.key")),
            log_name: self
                .log_name
                .or(file.log_name)
                .unwrap_or_else(|| DEFAULT_LOG_NAME.to_owned()),
            operators_file: self
                .operators_file
                .or(file.operators_file)
                .unwrap_or_else(|| data_dir.join("operators.txt")),
            witness_timeout: Duration::from_millis(
                self.witness_timeout_ms
                    .or(file.witness_timeout_ms)
                    .unwrap_or(5000),
            ),
            batch: BatchConfig {
                max: batch_max,
                interval: Duration::from_millis(interval),
                ..BatchConfig::default()
            },
            tiles_dir: self.tiles_dir.or(file.tiles_dir),
            submit_rate,
            max_in_flight: self.max_in_flight.or(file.max_in_flight).unwrap_or(4096),
            http,
            operator_keys,
            witnesses,
            data_dir,
            database_url,
            listen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucent_service::config_file::ConfigFileError;

    #[test]
    fn flags_override_file_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log.toml");
        std::fs::write(
            &file,
            "data-dir = \"/srv/log\"\nbatch-max = 10\nlisten = \"127.0.0.1:9999\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "lucent-log-server",
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--batch-max",
            "20",
        ]);
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve")
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.batch.max, 20);
        assert_eq!(c.data_dir, PathBuf::from("/srv/log"));
        assert_eq!(c.database_url, "sqlite:///srv/log/log.db");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.log_key_file, PathBuf::from("/srv/log/log.key"));

        std::fs::write(&file, "bogus = 1\n").unwrap();
        let cli = Cli::parse_from(["x", "--config", file.to_str().unwrap()]);
        assert!(matches!(
            cli.serve.resolve(),
            Err(ConfigError::File(ConfigFileError::Parse { .. }))
        ));
    }
}
