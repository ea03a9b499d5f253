//! The broker's configuration file (TOML), read by the binary.
//!
//! ```toml
//! listen = "127.0.0.1:8090"
//! log_url = "https://log.example.com"            # the log the broker follows
//! follow_every_secs = 10                           # how often it reads the log
//! max_log_view_age_secs = 3600                     # stop releasing when not confirmed since
//! state_file = "/var/lib/lucent/broker-last-seen.note"
//! weights_key_file = "/etc/lucent/weights.key"   # 32 raw bytes, or 64 hex digits
//! nonce_ttl_secs = 60
//!
//! [http]                                           # lucent_service::http::HttpLimits
//! header_read_timeout_ms = 10000
//! body_read_timeout_ms = 30000
//! per_source_per_second = 100
//! per_source_burst = 1000
//!
//! [policy]                                         # lucent_verifier::trust::PolicyConfig
//! snp_allow_smt = true                             # false: refuse guests that allow SMT
//! snp_chip_ids = []                                # only these chips (hex), when given
//! max_release_lifetime_secs = 2592000              # 30 days
//!
//! [trust]                                          # lucent_verifier::trust::TrustConfig
//! log_key = "log.example.com+1234abcd+A..."        # note verifier key
//! witnesses = ["witness.example.com+...+..."]      # cosignature/v1 keys
//! witness_quorum = 1                               # default: all of them
//! operators = ["operator.example.com+...+..."]     # release signers
//! revoked = ["sev-snp:<hex measurement>"]
//!
//! # Only for tests and local devnets: accept checkpoints no witness cosigned; trust the
//! # simulated TEE's public test root (only in builds with `dangerous-simulated-tee`).
//! [trust.dangerous]
//! no_witnesses = false
//! trust_simulated_root = false
//! ```
//!
//! The broker follows the log itself ([`lucent_client::follow`]): a release revoked in the
//! log is refused with no change here. `revoked` below adds revocations of its own.
//!
//! The `[trust]` table follows the rules of [`lucent_verifier::trust`], the same for every
//! party; a build without the simulated TEE refuses `trust_simulated_root = true`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lucent_client::follow::{FollowPolicy, Follower};
use lucent_client::{AtomicFile, LogClient};
use lucent_service::config_file::{self, ConfigFileError};
use lucent_verifier::key_release::weights::WeightsKey;
use lucent_verifier::trust::{TrustConfig, TrustConfigError, TrustSettings};
use serde::Deserialize;

use crate::broker::BrokerConfig;

/// The file's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: String,
    /// Base URL of the log the broker follows.
    pub log_url: String,
    /// Seconds between reads of the log.
    #[serde(default = "default_follow_every")]
    pub follow_every_secs: u64,
    /// Seconds the broker keeps releasing on a view of the log that could not be confirmed
    /// since (the log, its replicas or the witnesses unreachable).
    #[serde(default = "default_max_view_age")]
    pub max_log_view_age_secs: u64,
    /// Last seen checkpoint file.
    pub state_file: PathBuf,
    /// File holding the weights key.
    pub weights_key_file: PathBuf,
    /// Nonce lifetime, seconds.
    #[serde(default = "default_ttl")]
    pub nonce_ttl_secs: u64,
    /// Connection limits: header and body read timeouts, per-source rate limit.
    #[serde(default)]
    pub http: lucent_service::http::HttpLimits,
    /// Evidence policy choices ([`lucent_verifier::trust::PolicyConfig`]); strict defaults.
    #[serde(default)]
    pub policy: lucent_verifier::trust::PolicyConfig,
    /// What the broker trusts.
    pub trust: TrustConfig,
}

fn default_ttl() -> u64 {
    60
}

fn default_follow_every() -> u64 {
    10
}

fn default_max_view_age() -> u64 {
    3600
}

/// Time limit of one read from the log.
const LOG_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read or parsed.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// The weights key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The `[trust]` table cannot be used.
    #[error("[trust]: {0}")]
    Trust(#[from] TrustConfigError),
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client for the log could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// The weights key file holds neither 32 bytes nor 64 hex digits.
    #[error("weights key file {0}: neither 32 bytes nor 64 hex digits")]
    WeightsKey(PathBuf),
}

impl FileConfig {
    /// Reads and parses the file, and checks its trust settings.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let file: Self = config_file::read(path)?;
        file.http
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        file.trust_settings()?;
        Ok(file)
    }

    /// The `[trust]` settings. This crate's own `dangerous-simulated-tee` feature decides
    /// whether the simulated root may be trusted, even where the verifier was built with
    /// its feature for another crate in the same build.
    fn trust_settings(&self) -> Result<TrustSettings, ConfigError> {
        if self.trust.dangerous.trust_simulated_root && !cfg!(feature = "dangerous-simulated-tee") {
            return Err(TrustConfigError::NoSimulatedTee.into());
        }
        Ok(self.trust.settings()?)
    }

    /// The broker configuration (reads the key file).
    pub fn broker_config(&self) -> Result<BrokerConfig, ConfigError> {
        let trust = self.trust_settings()?;
        let path = &self.weights_key_file;
        let raw =
            zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?);
        let bad = || ConfigError::WeightsKey(path.clone());
        let weights_key = if raw.len() == 32 {
            WeightsKey::from_bytes(&raw).map_err(|_| bad())?
        } else {
            let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
            let bytes = zeroize::Zeroizing::new(hex::decode(text.trim()).map_err(|_| bad())?);
            WeightsKey::from_bytes(&bytes).map_err(|_| bad())?
        };
        let http = reqwest::Client::builder()
            .timeout(LOG_TIMEOUT)
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        let follower = Arc::new(Follower::new(
            LogClient::new(http, &self.log_url),
            trust.clone(),
            FollowPolicy::default(),
        ));
        Ok(BrokerConfig {
            follower,
            max_view_age_secs: self.max_log_view_age_secs,
            trust,
            policy: self.policy.policy()?,
            nonce_ttl_secs: self.nonce_ttl_secs,
            state_file: AtomicFile::new(&self.state_file),
            weights_key,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(extra: &str) -> tempfile::NamedTempFile {
        let log = lucent_verifier::note::NoteSigner::generate(&mut rand_core::OsRng, "log.example")
            .unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\nlog_url = \"http://127.0.0.1:1\"\nstate_file = \"/nonexistent/state\"\n\
             weights_key_file = \"/nonexistent/key\"\n[trust]\nlog_key = {:?}\n\
             [trust.dangerous]\nno_witnesses = true\n{extra}",
            log.verifier_key().as_str()
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_simulated_root_loads_only_in_builds_that_have_it() {
        assert!(
            !FileConfig::read(file("").path())
                .unwrap()
                .trust
                .dangerous
                .trust_simulated_root
        );
        let r = FileConfig::read(file("trust_simulated_root = true\n").path());
        if cfg!(feature = "dangerous-simulated-tee") {
            assert!(r.unwrap().trust.dangerous.trust_simulated_root);
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("has no simulated TEE"), "{e}");
        }
        // A dangerous setting outside `[trust.dangerous]` is an unknown field.
        let e = FileConfig::read(file("[extra]\ndangerous_no_witnesses = true\n").path());
        assert!(e.is_err());
    }
}
