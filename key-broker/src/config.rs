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
//! # Only for tests and local devnets: trust the simulated TEE's public test root.
//! dangerous_trust_simulated_root = false
//! ```

use std::path::{Path, PathBuf};

use lucent_verifier::bundle::{BundlePolicy, BundleTrust};
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::cosignature::{WitnessKey, WitnessPolicy};
use lucent_verifier::note::NoteVerifierKey;
use lucent_verifier::snp::SnpTrust;
use lucent_verifier::statement::{Measurement, Platform};
use lucent_verifier::tdx::TdxTrust;
use serde::Deserialize;

use crate::broker::BrokerConfig;
use crate::state::StateFile;
use crate::weights::WeightsKey;

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
    /// Operator keys.
    pub operators: Vec<String>,
    /// Revoked measurements, `platform:hex`.
    #[serde(default)]
    pub revoked: Vec<String>,
    /// Trust the simulated TEE root. Never in production.
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
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))
    }

    /// The broker configuration (reads the key file).
    pub fn broker_config(&self) -> anyhow::Result<BrokerConfig> {
        let log = LogKey::new(NoteVerifierKey::parse(&self.log_key)?);
        let witnesses = self
            .witnesses
            .iter()
            .map(|w| WitnessKey::parse(w))
            .collect::<Result<Vec<_>, _>>()?;
        let witnesses = if witnesses.is_empty() && self.witness_quorum == 0 {
            WitnessPolicy::dangerous_no_witnesses()
        } else {
            WitnessPolicy::new(witnesses, self.witness_quorum)?
        };
        let operators = self
            .operators
            .iter()
            .map(|o| NoteVerifierKey::parse(o))
            .collect::<Result<Vec<_>, _>>()?;
        let revoked = self
            .revoked
            .iter()
            .map(|r| parse_measurement(r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut snp = SnpTrust::amd();
        if self.dangerous_trust_simulated_root {
            snp = snp.dangerous_trust_simulated_root();
        }
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
            trust: BundleTrust {
                log,
                witnesses,
                operators,
                snp,
                tdx: TdxTrust::intel(),
                amd_crl: None,
                revoked,
            },
            policy: BundlePolicy::default(),
            nonce_ttl_secs: self.nonce_ttl_secs,
            state_file: StateFile::new(&self.state_file),
            weights_key,
        })
    }
}

fn parse_measurement(text: &str) -> anyhow::Result<Measurement> {
    let (platform, hex_m) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("revoked {text:?}: want platform:hex"))?;
    let platform = match platform {
        "sev-snp" => Platform::SevSnp,
        "tdx" => Platform::Tdx,
        other => anyhow::bail!("revoked: unknown platform {other:?}"),
    };
    Ok(Measurement::new(platform, &hex::decode(hex_m)?)?)
}
