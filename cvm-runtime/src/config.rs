//! The runtime's configuration file (TOML) and the measured configuration.
//!
//! ```toml
//! listen = "0.0.0.0:8443"
//! log_url = "https://log.example.com"
//! broker_url = "https://broker.example.com"
//! weights_file = "/models/SmolLM2-135M-Instruct.Q4_1.gguf.lucentw"
//! attester = "configfs-tsm"                       # or "sev-guest", or "simulated"
//! tsm_root = "/sys/kernel/config/tsm/report"
//! recheck_secs = 300
//! max_log_view_age_secs = 3600
//! max_body_bytes = 65591                         # a padded 64 KiB request and its framing
//! request_timeout_ms = 60000
//! max_input_tokens = 2048
//! max_output_tokens = 256
//! # Only for tests and local devnets: use the simulated SEV-SNP TEE (and trust its root).
//! dangerous_simulated_tee = false
//!
//! [http]                                          # lucent_service::http::HttpLimits
//! header_read_timeout_ms = 10000
//! body_read_timeout_ms = 30000
//! per_source_per_second = 100
//! per_source_burst = 1000
//!
//! [policy]                                        # lucent_verifier::trust::PolicyConfig
//! snp_allow_smt = true                            # false: refuse guests that allow SMT
//!
//! [trust]                                         # lucent_verifier::trust::TrustConfig
//! log_key = "log.example.com+1234abcd+A..."       # checkpoint verifier key
//! witnesses = ["witness.example.com+...+..."]     # cosignature/v1 keys
//! witness_quorum = 1                              # default: all of them
//! operators = ["operator.example.com+...+..."]    # release signers
//! # [trust.dangerous]                             # tests only
//! # no_witnesses = true
//! ```
//!
//! # The measured configuration
//!
//! The log key, the witness policy and the operator keys decide what this runtime accepts,
//! so they must be part of what its release measures. On hardware the configuration file is
//! part of the measured image (the initrd `lucent-auditor image build` writes), covered by the
//! launch measurement. The simulated TEE has no platform that measures: it reports the launch
//! measurement it is given, which whoever launches the image computes from the image's
//! firmware, kernel, initrd and command line (`--dangerous-simulated-launch-measurement`, as
//! the devnet does), or the file's `dangerous_simulated_measurement` (hex, 48 bytes). Without
//! either it has no measurement and the runtime does not start.
//!
//! The simulated TEE exists only in builds with the `dangerous-simulated-tee` feature. Any
//! other build refuses a file with `attester = "simulated"` or `dangerous_simulated_tee =
//! true` ([`NO_SIMULATED_TEE`]), rather than ignoring the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lucent_service::config_file::{self, ConfigFileError};
use lucent_verifier::bundle::BundlePolicy;
use lucent_verifier::trust::{TrustConfig, TrustConfigError, TrustSettings};
use serde::Deserialize;

/// Why a build without the `dangerous-simulated-tee` feature refuses `attester =
/// "simulated"` and `dangerous_simulated_tee = true`.
pub const NO_SIMULATED_TEE: &str = "this build of lucent-cvm-runtime has no simulated TEE: \
     attester = \"simulated\" and dangerous_simulated_tee need the dangerous-simulated-tee \
     feature (tests and devnets only)";

/// Which attester produces evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AttesterName")]
pub enum AttesterKind {
    /// Linux configfs-tsm (SEV-SNP or TDX).
    ConfigfsTsm,
    /// `/dev/sev-guest`.
    SevGuest,
    /// The simulated SEV-SNP TEE; needs `dangerous_simulated_tee = true`.
    #[cfg(feature = "dangerous-simulated-tee")]
    Simulated,
}

/// Every attester name a file may hold, so that `"simulated"` in a build without it is
/// refused with [`NO_SIMULATED_TEE`] rather than as an unknown name.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AttesterName {
    ConfigfsTsm,
    SevGuest,
    Simulated,
}

impl TryFrom<AttesterName> for AttesterKind {
    type Error = &'static str;

    fn try_from(name: AttesterName) -> Result<Self, Self::Error> {
        match name {
            AttesterName::ConfigfsTsm => Ok(AttesterKind::ConfigfsTsm),
            AttesterName::SevGuest => Ok(AttesterKind::SevGuest),
            #[cfg(feature = "dangerous-simulated-tee")]
            AttesterName::Simulated => Ok(AttesterKind::Simulated),
            #[cfg(not(feature = "dangerous-simulated-tee"))]
            AttesterName::Simulated => Err(NO_SIMULATED_TEE),
        }
    }
}

fn default_tsm_root() -> PathBuf {
    PathBuf::from("/sys/kernel/config/tsm/report")
}
fn default_recheck() -> u64 {
    300
}
fn default_attestations() -> usize {
    4
}
fn default_view_age() -> u64 {
    3600
}
fn default_body() -> usize {
    // A request padded to the 64 KiB bucket, and its framing.
    64 * 1024 + lucent_verifier::encapsulation::MIN_REQUEST_BYTES
}
fn default_timeout() -> u64 {
    60_000
}
fn default_input() -> usize {
    2048
}
fn default_output() -> usize {
    256
}
fn default_replay() -> usize {
    100_000
}
fn default_concurrency() -> usize {
    2
}

/// The file's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The log's base URL.
    pub log_url: String,
    /// The key broker's base URL.
    pub broker_url: String,
    /// The encrypted (`lucentw1`) weights file.
    pub weights_file: PathBuf,
    /// Which attester.
    pub attester: AttesterKind,
    /// configfs-tsm report directory.
    #[serde(default = "default_tsm_root")]
    pub tsm_root: PathBuf,
    /// DCAP collateral (`QuoteCollateralV3` JSON) for TDX quotes.
    #[serde(default)]
    pub tdx_collateral_file: Option<PathBuf>,
    /// VMPL for `/dev/sev-guest` reports.
    #[serde(default)]
    pub sev_vmpl: u32,
    /// Seconds between self-checks against the log.
    #[serde(default = "default_recheck")]
    pub recheck_secs: u64,
    /// Seconds the runtime stays open on a view of the log it could not confirm since (the
    /// log, a replica or the witnesses unreachable or behind); then it closes, whatever the
    /// network does. It closes at its release's not-after in any case.
    #[serde(default = "default_view_age")]
    pub max_log_view_age_secs: u64,
    /// Largest request body.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Longest model run per request, milliseconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Most prompt tokens.
    #[serde(default = "default_input")]
    pub max_input_tokens: usize,
    /// Most generated tokens.
    #[serde(default = "default_output")]
    pub max_output_tokens: usize,
    /// How many request `enc` values are remembered against replay.
    #[serde(default = "default_replay")]
    pub replay_window: usize,
    /// Most model runs at once (others are refused with `busy`).
    #[serde(default = "default_concurrency")]
    pub max_concurrent: usize,
    /// Most fresh attestation reports (`/v1/attestation?nonce=`) made at once (others are
    /// refused with `busy`).
    #[serde(default = "default_attestations")]
    pub max_concurrent_attestations: usize,
    /// The RFC 9458 key id of this boot's key (default: random).
    #[serde(default)]
    pub key_id: Option<u8>,
    /// Use the simulated SEV-SNP TEE. Never in production; refused by builds without the
    /// `dangerous-simulated-tee` feature.
    #[serde(default)]
    pub dangerous_simulated_tee: bool,
    /// Fixed simulated measurement (hex, 48 bytes), when no launch measurement is given.
    #[serde(default)]
    pub dangerous_simulated_measurement: Option<String>,
    /// Connection limits: header and body read timeouts, per-source rate limit.
    #[serde(default)]
    pub http: lucent_service::http::HttpLimits,
    /// Evidence policy choices ([`lucent_verifier::trust::PolicyConfig`]); strict defaults.
    #[serde(default)]
    pub policy: lucent_verifier::trust::PolicyConfig,
    /// What the runtime trusts (the rules of [`lucent_verifier::trust`]).
    pub trust: TrustConfig,
}

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// The `[trust]` table cannot be used.
    #[error("[trust]: {0}")]
    Trust(#[from] TrustConfigError),
    /// A setting is out of range or contradicts another.
    #[error("{0}")]
    Invalid(String),
    /// A setting this build cannot honour (the simulated TEE without its feature).
    #[error("{0}")]
    NotInThisBuild(&'static str),
}

/// What the runtime runs with, parsed and checked.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The file as given.
    pub file: FileConfig,
    /// Trust for its own bundle: log key, witnesses, operators, vendor roots.
    pub trust: TrustSettings,
    /// Evidence policy.
    pub policy: BundlePolicy,
    /// The simulated platform's launch measurement, when it launched an image.
    #[cfg(feature = "dangerous-simulated-tee")]
    launch_measurement: Option<[u8; 48]>,
}

impl RuntimeConfig {
    /// Reads and checks the file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(path, &config_file::read_bytes(path)?)
    }

    /// Parses and checks `raw`, the bytes of the configuration file at `path`.
    pub fn parse(path: &Path, raw: &[u8]) -> Result<Self, ConfigError> {
        let file: FileConfig = config_file::parse(path, raw)?;
        if file.dangerous_simulated_tee && !cfg!(feature = "dangerous-simulated-tee") {
            return Err(ConfigError::NotInThisBuild(NO_SIMULATED_TEE));
        }
        #[cfg(feature = "dangerous-simulated-tee")]
        if file.attester == AttesterKind::Simulated && !file.dangerous_simulated_tee {
            return Err(ConfigError::Invalid(
                "attester = \"simulated\" needs dangerous_simulated_tee = true (tests and devnets only)"
                    .into(),
            ));
        }
        if file.dangerous_simulated_measurement.is_some() && !file.dangerous_simulated_tee {
            return Err(ConfigError::Invalid(
                "dangerous_simulated_measurement needs dangerous_simulated_tee = true".into(),
            ));
        }
        file.http
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if file.max_body_bytes == 0
            || file.replay_window == 0
            || file.max_concurrent == 0
            || file.max_concurrent_attestations == 0
        {
            return Err(ConfigError::Invalid(
                "max_body_bytes, replay_window, max_concurrent and max_concurrent_attestations \
                 must be positive"
                    .into(),
            ));
        }
        // The simulated TEE's evidence verifies only under its root.
        let mut trust = file.trust.clone();
        trust.dangerous.trust_simulated_root |= file.dangerous_simulated_tee;
        let trust = trust.settings()?;
        let policy = file.policy.policy()?;
        Ok(RuntimeConfig {
            trust,
            policy,
            file,
            #[cfg(feature = "dangerous-simulated-tee")]
            launch_measurement: None,
        })
    }

    /// Sets the launch measurement the simulated TEE reports (hex, 48 bytes): what the
    /// simulated platform measured when it launched the image holding this configuration.
    /// Refused unless the file sets `dangerous_simulated_tee`.
    #[cfg(feature = "dangerous-simulated-tee")]
    pub fn dangerous_set_launch_measurement(&mut self, hex_text: &str) -> Result<(), ConfigError> {
        if !self.file.dangerous_simulated_tee {
            return Err(ConfigError::Invalid(
                "a simulated launch measurement needs dangerous_simulated_tee = true".into(),
            ));
        }
        let m = hex::decode(hex_text.trim())
            .ok()
            .and_then(|b| <[u8; 48]>::try_from(b).ok())
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "the simulated launch measurement is not 48 bytes of hex".into(),
                )
            })?;
        self.launch_measurement = Some(m);
        Ok(())
    }

    /// The simulated measurement: the launch measurement of the image when the simulated
    /// platform launched one, else the file's `dangerous_simulated_measurement`.
    #[cfg(feature = "dangerous-simulated-tee")]
    pub fn simulated_measurement(&self) -> Result<[u8; 48], ConfigError> {
        if let Some(m) = self.launch_measurement {
            return Ok(m);
        }
        let invalid = || {
            ConfigError::Invalid("dangerous_simulated_measurement is not 48 bytes of hex".into())
        };
        match &self.file.dangerous_simulated_measurement {
            Some(h) => hex::decode(h)
                .map_err(|_| invalid())?
                .try_into()
                .map_err(|_| invalid()),
            None => Err(ConfigError::Invalid(
                "the simulated TEE measures nothing itself: launch the runtime from an image \
                 with --dangerous-simulated-launch-measurement (the image's launch \
                 measurement), or set dangerous_simulated_measurement"
                    .into(),
            )),
        }
    }

    /// The attester the configuration names.
    pub fn attester(
        &self,
    ) -> Result<Box<dyn crate::attester::Attester>, crate::attester::AttestError> {
        use crate::attester::{AttestError, ConfigFsTsm, SevGuest};
        match self.file.attester {
            AttesterKind::ConfigfsTsm => {
                let collateral = match &self.file.tdx_collateral_file {
                    Some(p) => Some(std::fs::read(p).map_err(|e| {
                        AttestError::Config(format!("tdx_collateral_file {}: {e}", p.display()))
                    })?),
                    None => None,
                };
                Ok(Box::new(ConfigFsTsm::new(&self.file.tsm_root, collateral)?))
            }
            AttesterKind::SevGuest => Ok(Box::new(SevGuest::new(self.file.sev_vmpl)?)),
            #[cfg(feature = "dangerous-simulated-tee")]
            AttesterKind::Simulated => {
                let m = self
                    .simulated_measurement()
                    .map_err(|e| AttestError::Config(e.to_string()))?;
                Ok(Box::new(crate::attester::SimulatedAttester::dangerous_new(
                    m,
                )?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lucent_verifier::cosignature::WitnessSigner;
    use lucent_verifier::note::NoteSigner;
    use rand_core::OsRng;

    fn text(witnesses: &str, quorum: usize, extra: &str) -> String {
        text_with(witnesses, quorum, extra, "")
    }

    fn text_with(witnesses: &str, quorum: usize, extra: &str, dangerous: &str) -> String {
        let log = NoteSigner::generate(&mut OsRng, "log.example").unwrap();
        let op = NoteSigner::generate(&mut OsRng, "operator.example").unwrap();
        format!(
            "listen = \"127.0.0.1:0\"\nlog_url = \"http://127.0.0.1:1\"\n\
             broker_url = \"http://127.0.0.1:2\"\nweights_file = \"/nonexistent\"\n{extra}\
             [trust]\nlog_key = {:?}\nwitnesses = [{witnesses}]\nwitness_quorum = {quorum}\n\
             operators = [{:?}]\n{dangerous}",
            log.verifier_key().as_str(),
            op.verifier_key().as_str(),
        )
    }

    fn witness() -> String {
        let w = WitnessSigner::generate(&mut OsRng, "witness.example").unwrap();
        format!("{:?}", w.witness_key().as_str())
    }

    const SEV_GUEST: &str = "attester = \"sev-guest\"\n";

    fn parse(text: impl AsRef<str>) -> Result<RuntimeConfig, ConfigError> {
        RuntimeConfig::parse(Path::new("runtime.toml"), text.as_ref().as_bytes())
    }
    const SIMULATED: &str = "attester = \"simulated\"\ndangerous_simulated_tee = true\n";

    #[test]
    fn a_configuration_without_witnesses_is_refused_unless_dangerous() {
        let with = witness();
        let c = parse(text(&with, 1, SEV_GUEST)).unwrap();
        assert_eq!(c.trust.witnesses.quorum(), 1);
        assert!(!c.trust.snp.trusts_simulated_root());

        let e = parse(text("", 0, SEV_GUEST)).unwrap_err();
        assert!(
            matches!(e, ConfigError::Trust(TrustConfigError::NoWitnesses)),
            "{e:#}"
        );
        let dangerous = "[trust.dangerous]\nno_witnesses = true\n";
        let c = parse(text_with("", 0, SEV_GUEST, dangerous)).unwrap();
        assert_eq!(c.trust.witnesses.quorum(), 0);
        // A quorum the witness list cannot meet is an error, not a silent downgrade.
        assert!(parse(text(&with, 2, SEV_GUEST)).is_err());
        assert!(parse(text_with("", 1, SEV_GUEST, dangerous)).is_err());
        // The dangerous setting outside `[trust.dangerous]` is an unknown field.
        let flat = format!("{SEV_GUEST}dangerous_no_witnesses = true\n");
        assert!(parse(text("", 0, &flat)).is_err());
    }

    #[cfg(feature = "dangerous-simulated-tee")]
    #[test]
    fn the_simulated_tee_needs_its_dangerous_setting() {
        let with = witness();
        let c = parse(text(&with, 1, SIMULATED)).unwrap();
        assert_eq!(c.file.attester, AttesterKind::Simulated);
        assert!(c.trust.snp.trusts_simulated_root());
        // It measures nothing itself: without a launch measurement there is no attester.
        let e = c.attester().err().unwrap();
        assert!(e.to_string().contains("measures nothing itself"), "{e}");
        let mut launched = c.clone();
        launched
            .dangerous_set_launch_measurement(&"ab".repeat(48))
            .unwrap();
        assert_eq!(launched.simulated_measurement().unwrap(), [0xab; 48]);
        assert_eq!(launched.attester().unwrap().name(), "simulated");
        let fixed = parse(text(
            &with,
            1,
            &format!(
                "{SIMULATED}dangerous_simulated_measurement = \"{}\"\n",
                "cd".repeat(48)
            ),
        ))
        .unwrap();
        assert_eq!(fixed.simulated_measurement().unwrap(), [0xcd; 48]);

        let e = parse(text(&with, 1, "attester = \"simulated\"\n")).unwrap_err();
        assert!(
            e.to_string().contains("needs dangerous_simulated_tee"),
            "{e:#}"
        );
    }

    #[cfg(not(feature = "dangerous-simulated-tee"))]
    #[test]
    fn a_build_without_the_simulated_tee_refuses_it_by_name() {
        let with = witness();
        for extra in [
            SIMULATED,
            "attester = \"simulated\"\n",
            "attester = \"sev-guest\"\ndangerous_simulated_tee = true\n",
        ] {
            let e = parse(text(&with, 1, extra)).unwrap_err();
            assert!(
                format!("{e:#}").contains("has no simulated TEE"),
                "{extra}: {e:#}"
            );
        }
        // Unknown attesters are still unknown.
        let e = parse(text(&with, 1, "attester = \"sgx\"\n")).unwrap_err();
        assert!(format!("{e:#}").contains("unknown variant"), "{e:#}");
    }
}
