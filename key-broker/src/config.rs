//! The broker's configuration file (TOML), read by the binary.
//!
//! ```toml
//! listen = "127.0.0.1:8090"
//! state_file = "/var/lib/lucent/broker-last-seen.note"
//! weights_key_file = "/etc/lucent/weights.key"   # 32 raw bytes, or 64 hex digits
//! nonce_ttl_secs = 60
//! log_key = "log.example.com+1234abcd+A..."       # note verifier key
//! witnesses = ["witness.example.com+...+..."]     # cosignature/v1 keys
//! witness_quorum = 1
//! operators = ["operator.example.com+...+..."]    # release signers
//! revoked = ["sev-snp:<hex measurement>"]
//! # Only for tests and local devnets: trust the simulated TEE's public test root; accept
//! # checkpoints no witness cosigned (with witnesses = [] and witness_quorum = 0).
//! dangerous_trust_simulated_root = false
//! dangerous_no_witnesses = false
//! ```
//!
//! `dangerous_trust_simulated_root = true` loads only in a build with the
//! `dangerous-simulated-tee` feature; any other build refuses the file
//! ([`NO_SIMULATED_TEE`]).

use std::path::{Path, PathBuf};

use lucent_verifier::bundle::BundlePolicy;
use lucent_verifier::key_release::weights::WeightsKey;
use lucent_verifier::trust::{DangerousTrust, TrustConfig};
use serde::Deserialize;

use crate::broker::BrokerConfig;
use crate::state::StateFile;

/// Why a build without the `dangerous-simulated-tee` feature refuses
/// `dangerous_trust_simulated_root = true`.
pub const NO_SIMULATED_TEE: &str = "dangerous_trust_simulated_root is set, but this build of \
     lucent-key-broker has no simulated TEE (it exists only with the dangerous-simulated-tee \
     feature, for tests and devnets)";

/// The file's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: String,
    /// Last seen checkpoint file.
    pub state_file: PathBuf,
    /// File holding the weights key.
    pub weights_key_file: PathBuf,
    /// Nonce lifetime, seconds.
    #[serde(default = "default_ttl")]
    pub nonce_ttl_secs: u64,
    /// Log verifier key.
    pub log_key: String,
    /// Witness keys.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// Witness quorum.
    pub witness_quorum: usize,
    /// Accept checkpoints no witness cosigned (needs `witnesses = []` and quorum 0). A log
    /// could then show the broker a history of its own: tests only.
    #[serde(default)]
    pub dangerous_no_witnesses: bool,
    /// Operator keys.
    pub operators: Vec<String>,
    /// Revoked measurements, hex (`sev-snp:` or `tdx:` prefix optional).
    #[serde(default)]
    pub revoked: Vec<String>,
    /// Trust the simulated TEE root. Never in production; refused by builds without the
    /// `dangerous-simulated-tee` feature.
    #[serde(default)]
    pub dangerous_trust_simulated_root: bool,
}

fn default_ttl() -> u64 {
    60
}

impl FileConfig {
    /// Reads and parses the file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let file: Self = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
        file.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(file)
    }

    /// Refuses settings this build cannot honour.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.dangerous_trust_simulated_root && !cfg!(feature = "dangerous-simulated-tee") {
            anyhow::bail!(NO_SIMULATED_TEE);
        }
        Ok(())
    }

    /// The broker configuration (reads the key file).
    pub fn broker_config(&self) -> anyhow::Result<BrokerConfig> {
        self.check()?;
        let trust = TrustConfig {
            log_key: self.log_key.clone(),
            witnesses: self.witnesses.clone(),
            witness_quorum: Some(self.witness_quorum),
            operators: self.operators.clone(),
            revoked: self.revoked.clone(),
            dangerous: DangerousTrust {
                no_witnesses: self.dangerous_no_witnesses,
                trust_simulated_root: self.dangerous_trust_simulated_root,
            },
        }
        .settings()?;
        let raw =
            zeroize::Zeroizing::new(std::fs::read(&self.weights_key_file).map_err(|e| {
                anyhow::anyhow!("reading {}: {e}", self.weights_key_file.display())
            })?);
        let weights_key = if raw.len() == 32 {
            WeightsKey::from_bytes(&raw)?
        } else {
            let text = std::str::from_utf8(&raw).map_err(|_| {
                anyhow::anyhow!("weights key file: neither 32 bytes nor 64 hex digits")
            })?;
            let bytes = zeroize::Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
                anyhow::anyhow!("weights key file: neither 32 bytes nor 64 hex digits")
            })?);
            WeightsKey::from_bytes(&bytes)?
        };
        Ok(BrokerConfig {
            trust,
            policy: BundlePolicy::default(),
            nonce_ttl_secs: self.nonce_ttl_secs,
            state_file: StateFile::new(&self.state_file),
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
            "listen = \"127.0.0.1:0\"\nstate_file = \"/nonexistent/state\"\n\
             weights_key_file = \"/nonexistent/key\"\nlog_key = {:?}\nwitnesses = []\n\
             witness_quorum = 0\ndangerous_no_witnesses = true\noperators = []\n{extra}",
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
                .dangerous_trust_simulated_root
        );
        let r = FileConfig::read(file("dangerous_trust_simulated_root = true\n").path());
        if cfg!(feature = "dangerous-simulated-tee") {
            assert!(r.unwrap().dangerous_trust_simulated_root);
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("has no simulated TEE"), "{e}");
        }
    }
}
