//! What a party trusts, in one type: the log's key, the witnesses and their quorum, the
//! operators allowed to sign statements, the pinned vendor roots, and the revocations it
//! knows of.
//!
//! Every party (the embedded client, the key broker, the CVM runtime, the auditor) reads its
//! trust from text the same way: [`TrustConfig`] is the configuration-file form (serde, a
//! `[trust]` table in TOML) and, with the `clap` feature, the command-line form (flatten it
//! into a command's arguments). [`TrustConfig::settings`] turns it into the typed
//! [`TrustSettings`] that [`crate::bundle::verify_bundle`] takes, applying one set of rules:
//!
//! - keys must parse as what they are named (a witness key is a `cosignature/v1` key, not a
//!   note key);
//! - the witness quorum defaults to every configured witness, and cannot exceed them;
//! - no witnesses, or a quorum of 0, only through [`DangerousTrust::no_witnesses`];
//! - the simulated TEE's test root only through [`DangerousTrust::trust_simulated_root`], and
//!   only in a build with the `dangerous-simulated-tee` feature.
//!
//! Anything that weakens a check lives in [`DangerousTrust`] and is spelt `dangerous` on
//! every surface (`[trust.dangerous]` in files, `--dangerous-…` flags), never as a bare bool
//! beside the safe settings.
//!
//! ```
//! use lucent_verifier::trust::TrustConfig;
//! # use lucent_verifier::{cosignature::WitnessSigner, note::NoteSigner};
//! # let mut rng = rand_core::OsRng;
//! # let log = NoteSigner::generate(&mut rng, "log.example.com").unwrap();
//! # let witness = WitnessSigner::generate(&mut rng, "witness.example.com").unwrap();
//! let config = TrustConfig {
//!     log_key: log.verifier_key().as_str().to_owned(),
//!     witnesses: vec![witness.witness_key().as_str().to_owned()],
//!     ..TrustConfig::default()
//! };
//! let trust = config.settings().unwrap();
//! assert_eq!(trust.witnesses.quorum(), 1);
//! // Without witnesses the settings are refused, unless dangerously asked for.
//! let none = TrustConfig { witnesses: vec![], ..config };
//! assert!(none.settings().is_err());
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::bundle::BundlePolicy;
use crate::checkpoint::LogKey;
use crate::cosignature::{WitnessKey, WitnessPolicy, WitnessPolicyError};
use crate::note::{KeyError, NoteVerifierKey};
use crate::snp::{Product, SnpTrust};
use crate::statement::{Measurement, Platform};
use crate::tdx::TdxTrust;

/// Everything a verifier trusts: the log, its witnesses, the operators, the vendor roots,
/// and what it knows of revocations.
#[derive(Clone, Debug)]
pub struct TrustSettings {
    /// The log's origin and key.
    pub log: LogKey,
    /// k-of-n witnesses.
    pub witnesses: WitnessPolicy,
    /// Operator keys allowed to sign statements.
    pub operators: Vec<NoteVerifierKey>,
    /// AMD roots.
    pub snp: SnpTrust,
    /// Intel root.
    pub tdx: TdxTrust,
    /// AMD CRLs, at most one per product, applied to chains of their ARK.
    pub amd_crls: AmdCrls,
    /// Measurements withdrawn by verified `revoke` statements the caller has seen.
    pub revoked: Vec<Measurement>,
}

/// Trust as configuration files and command lines spell it. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The log's checkpoint verifier key (`<origin>+<id>+<base64>`).
    #[cfg_attr(feature = "clap", arg(long, env = "LUCENT_LOG_KEY"))]
    pub log_key: String,
    /// A witness's `cosignature/v1` verifier key (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "witness-key",
            env = "LUCENT_WITNESS_KEYS",
            value_delimiter = ',',
            value_name = "KEY"
        )
    )]
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// How many of the witnesses must cosign (default: all of them).
    #[cfg_attr(feature = "clap", arg(long = "witness-quorum", alias = "quorum"))]
    #[serde(default)]
    pub witness_quorum: Option<usize>,
    /// An operator's verifier key, allowed to sign statements (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "operator-key",
            env = "LUCENT_OPERATOR_KEYS",
            value_delimiter = ',',
            value_name = "KEY"
        )
    )]
    #[serde(default)]
    pub operators: Vec<String>,
    /// A revoked measurement, hex with an optional `sev-snp:` or `tdx:` prefix (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(long = "revoked", value_delimiter = ',', value_name = "MEASUREMENT")
    )]
    #[serde(default)]
    pub revoked: Vec<String>,
    /// A file holding an AMD CRL (DER, as AMD's key distribution service serves it for a
    /// product), at most one per product (repeatable). It is read again whenever the file
    /// changes, so a job that refreshes it needs no restart; once past its nextUpdate every
    /// chain of that product is refused until it is refreshed.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "amd-crl-file",
            env = "LUCENT_AMD_CRL_FILES",
            value_delimiter = ',',
            value_name = "PATH"
        )
    )]
    #[serde(default)]
    pub amd_crl_files: Vec<String>,
    /// Settings that weaken the checks: for tests and local devnets only.
    #[cfg_attr(feature = "clap", command(flatten))]
    #[serde(default, skip_serializing_if = "DangerousTrust::is_safe")]
    pub dangerous: DangerousTrust,
}

/// Settings that weaken the checks. Each one lets an adversary do something the system
/// otherwise prevents; release configurations never set them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct DangerousTrust {
    /// Accept checkpoints no witness cosigned (needs no witness keys, or a quorum of 0).
    /// The log could then show this party a history of its own.
    #[cfg_attr(feature = "clap", arg(long = "dangerous-no-witnesses"))]
    #[serde(default)]
    pub no_witnesses: bool,
    /// Trust the simulated TEE's public test root: anyone can then forge evidence. Only in
    /// builds with the `dangerous-simulated-tee` feature.
    #[cfg_attr(feature = "clap", arg(long = "dangerous-trust-simulated-root"))]
    #[serde(default)]
    pub trust_simulated_root: bool,
}

impl DangerousTrust {
    /// True when nothing dangerous is set.
    pub fn is_safe(&self) -> bool {
        *self == DangerousTrust::default()
    }
}

/// The evidence policy as configuration files spell it (a `[policy]` table beside
/// `[trust]`): only what a deployment should decide; every other field keeps
/// [`BundlePolicy::default`]'s strict value. Unset fields keep the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Accept SEV-SNP guests whose policy allows SMT (default true: most hosts run SMT;
    /// false refuses them, for deployments that turn SMT off against sibling-thread
    /// side channels).
    #[serde(default)]
    pub snp_allow_smt: Option<bool>,
    /// Only these SEV-SNP chips (`CHIP_ID`, 128 hex digits each); empty: any chip.
    #[serde(default)]
    pub snp_chip_ids: Vec<String>,
    /// Longest a release may stay valid from now, in seconds (default 30 days).
    #[serde(default)]
    pub max_release_lifetime_secs: Option<u64>,
    /// Lowest TDX `tcbEvaluationDataNumber` accepted (default none).
    #[serde(default)]
    pub tdx_min_tcb_evaluation_data_number: Option<u64>,
}

impl PolicyConfig {
    /// The typed policy: [`BundlePolicy::default`] with these settings applied.
    pub fn policy(&self) -> Result<BundlePolicy, TrustConfigError> {
        let mut p = BundlePolicy::default();
        if let Some(smt) = self.snp_allow_smt {
            p.snp.allow_smt = smt;
        }
        p.snp.allowed_chip_ids = self
            .snp_chip_ids
            .iter()
            .map(|text| {
                hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 64]>::try_from(b).ok())
                    .ok_or_else(|| TrustConfigError::ChipId { text: text.clone() })
            })
            .collect::<Result<_, _>>()?;
        if let Some(secs) = self.max_release_lifetime_secs {
            p.max_release_lifetime_secs = secs;
        }
        if let Some(n) = self.tdx_min_tcb_evaluation_data_number {
            p.tdx.min_tcb_evaluation_data_number = n;
        }
        Ok(p)
    }
}

/// A trust setting, given as text, that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustConfigError {
    /// A key does not parse.
    #[error("{what} {text:?}: {source}")]
    Key {
        /// Which setting (`log key`, `witness key`, `operator key`).
        what: &'static str,
        /// The text given.
        text: String,
        /// Why it does not parse.
        #[source]
        source: KeyError,
    },
    /// The witness keys and quorum do not make a policy.
    #[error("witnesses: {0}")]
    Witnesses(#[from] WitnessPolicyError),
    /// No witness keys, and no explicit opt-out.
    #[error(
        "no witness keys: without witnesses a log can show each party its own history \
         (a split view) and nobody would notice; name the witnesses that cosign this log's \
         checkpoints (the log's operator lists them) by their cosignature/v1 keys with \
         --witness-key KEY (repeatable; `witnesses` in a [trust] table) and how many must \
         cosign with --witness-quorum N (`witness_quorum`); for tests and devnets only, \
         --dangerous-no-witnesses (`no_witnesses` in [trust.dangerous]) checks without them"
    )]
    NoWitnesses,
    /// A quorum of 0 with witnesses configured, without the explicit opt-out.
    #[error(
        "witness quorum 0 accepts checkpoints no witness cosigned; give a quorum of at \
         least 1 (dangerous no_witnesses is for tests only)"
    )]
    ZeroQuorum,
    /// The simulated root was asked for in a build that does not contain it.
    #[error(
        "trust_simulated_root is set, but this build has no simulated TEE (it is built \
         only with the dangerous-simulated-tee feature, for tests and devnets)"
    )]
    NoSimulatedTee,
    /// A chip ID that is not 64 bytes of hex.
    #[error("snp_chip_ids: {text:?} is not 128 hex digits")]
    ChipId {
        /// The text given.
        text: String,
    },
    /// An AMD CRL file that cannot be read or used.
    #[error("AMD CRL file {path}: {why}")]
    AmdCrl {
        /// The file named.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The measurement text is not hex of a SEV-SNP (48 bytes) or TDX (240 bytes) length.
    #[error("measurement {text:?}: {why}")]
    Measurement {
        /// The text given.
        text: String,
        /// What is wrong.
        why: String,
    },
}

fn parse_key<T>(
    what: &'static str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, KeyError>,
) -> Result<T, TrustConfigError> {
    parse(text.trim()).map_err(|source| TrustConfigError::Key {
        what,
        text: text.to_owned(),
        source,
    })
}

impl TrustConfig {
    /// The typed settings, with the pinned AMD and Intel roots and the AMD CRLs read from
    /// their files; see the module docs for the rules.
    pub fn settings(&self) -> Result<TrustSettings, TrustConfigError> {
        let dangerous = &self.dangerous;
        let witnesses = if self.witnesses.is_empty() {
            if !dangerous.no_witnesses {
                return Err(TrustConfigError::NoWitnesses);
            }
            match self.witness_quorum.unwrap_or(0) {
                0 => WitnessPolicy::dangerous_no_witnesses(),
                quorum => return Err(WitnessPolicyError::Unsatisfiable { quorum, known: 0 }.into()),
            }
        } else {
            let keys = self
                .witnesses
                .iter()
                .map(|k| parse_key("witness key", k, WitnessKey::parse))
                .collect::<Result<Vec<_>, _>>()?;
            let quorum = self.witness_quorum.unwrap_or(keys.len());
            if quorum == 0 && !dangerous.no_witnesses {
                return Err(TrustConfigError::ZeroQuorum);
            }
            WitnessPolicy::new(keys, quorum)?
        };
        let snp = snp_trust(dangerous)?;
        let amd_crls = AmdCrls::from_files(&snp, &self.amd_crl_files)?;
        Ok(TrustSettings {
            log: LogKey::new(parse_key("log key", &self.log_key, NoteVerifierKey::parse)?),
            witnesses,
            operators: self
                .operators
                .iter()
                .map(|k| parse_key("operator key", k, NoteVerifierKey::parse))
                .collect::<Result<_, _>>()?,
            snp,
            tdx: TdxTrust::intel(),
            amd_crls,
            revoked: self
                .revoked
                .iter()
                .map(|m| parse_measurement_hex(m))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The AMD CRLs a party applies (see [`crate::snp::SnpTrust::verify_chain`]): at most one per
/// product, each signed by its pinned ARK. Read from files, each is read again when its
/// modification time or size changes, so that a refreshed CRL applies without a restart; a
/// refreshed file that cannot be read or is not a CRL of the same ARK leaves the previous one
/// in force (it is refused anyway once past its nextUpdate). Clones share the files.
#[derive(Clone, Debug, Default)]
pub struct AmdCrls {
    crls: Arc<[AmdCrl]>,
}

#[derive(Debug)]
struct AmdCrl {
    product: Product,
    path: PathBuf,
    loaded: Mutex<LoadedCrl>,
}

#[derive(Debug, Clone)]
struct LoadedCrl {
    stamp: Option<(SystemTime, u64)>,
    der: Arc<[u8]>,
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl AmdCrls {
    /// Reads the CRL files: each must be a DER CRL signed by a pinned ARK, at most one per
    /// product. Whether a CRL is current is checked each time it is applied.
    pub fn from_files(snp: &SnpTrust, paths: &[String]) -> Result<AmdCrls, TrustConfigError> {
        let mut crls = Vec::new();
        for path in paths {
            let stamp = file_stamp(path.as_ref());
            let der = std::fs::read(path).map_err(|e| TrustConfigError::AmdCrl {
                path: path.clone(),
                why: e.to_string(),
            })?;
            let product = check_crl(snp, path, &der, &crls)?;
            crls.push(AmdCrl {
                product,
                path: PathBuf::from(path),
                loaded: Mutex::new(LoadedCrl {
                    stamp,
                    der: der.into(),
                }),
            });
        }
        Ok(AmdCrls { crls: crls.into() })
    }

    /// The products that have a CRL.
    pub fn products(&self) -> Vec<Product> {
        self.crls.iter().map(|c| c.product).collect()
    }

    /// The CRLs now in force (DER), each file read again if it changed since it was read.
    pub fn current(&self, snp: &SnpTrust) -> Vec<Arc<[u8]>> {
        self.crls.iter().map(|c| c.current(snp)).collect()
    }
}

impl AmdCrl {
    fn current(&self, snp: &SnpTrust) -> Arc<[u8]> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = file_stamp(&self.path);
        if stamp.is_some() && stamp != loaded.stamp {
            // Only a CRL of the same product replaces the one in force.
            if let Ok(der) = std::fs::read(&self.path) {
                if snp.check_crl_issuer(&der).ok() == Some(self.product) {
                    *loaded = LoadedCrl {
                        stamp,
                        der: der.into(),
                    };
                }
            }
        }
        loaded.der.clone()
    }
}

fn check_crl(
    snp: &SnpTrust,
    name: &str,
    der: &[u8],
    earlier: &[AmdCrl],
) -> Result<Product, TrustConfigError> {
    let err = |why: String| TrustConfigError::AmdCrl {
        path: name.to_owned(),
        why,
    };
    let product = snp.check_crl_issuer(der).map_err(|e| err(e.to_string()))?;
    if earlier.iter().any(|c| c.product == product) {
        return Err(err(format!("a second CRL for {product:?}")));
    }
    Ok(product)
}

#[cfg(feature = "dangerous-simulated-tee")]
fn snp_trust(dangerous: &DangerousTrust) -> Result<SnpTrust, TrustConfigError> {
    Ok(if dangerous.trust_simulated_root {
        SnpTrust::amd().dangerous_trust_simulated_root()
    } else {
        SnpTrust::amd()
    })
}

#[cfg(not(feature = "dangerous-simulated-tee"))]
fn snp_trust(dangerous: &DangerousTrust) -> Result<SnpTrust, TrustConfigError> {
    if dangerous.trust_simulated_root {
        return Err(TrustConfigError::NoSimulatedTee);
    }
    Ok(SnpTrust::amd())
}

/// A measurement written as hex, with an optional `sev-snp:` or `tdx:` prefix; without
/// one, the platform follows from the length (48 bytes SEV-SNP, 240 bytes TDX).
pub fn parse_measurement_hex(text: &str) -> Result<Measurement, TrustConfigError> {
    let err = |why: String| TrustConfigError::Measurement {
        text: text.to_owned(),
        why,
    };
    let (platform, digits) = match text.trim().split_once(':') {
        Some(("sev-snp", d)) => (Some(Platform::SevSnp), d),
        Some(("tdx", d)) => (Some(Platform::Tdx), d),
        Some((p, _)) => return Err(err(format!("unknown platform {p:?} (sev-snp or tdx)"))),
        None => (None, text.trim()),
    };
    let bytes = hex::decode(digits).map_err(|e| err(format!("not hex: {e}")))?;
    let platform = match platform {
        Some(p) => p,
        None if bytes.len() == Platform::SevSnp.measurement_len() => Platform::SevSnp,
        None if bytes.len() == Platform::Tdx.measurement_len() => Platform::Tdx,
        None => {
            return Err(err(format!(
                "{} bytes; SEV-SNP measurements are 48, TDX 240",
                bytes.len()
            )))
        }
    };
    Measurement::new(platform, &bytes).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::WitnessSigner;
    use crate::note::NoteSigner;
    use rand_core::OsRng;

    fn config() -> (TrustConfig, String, String) {
        let log = NoteSigner::generate(&mut OsRng, "log.example").unwrap();
        let op = NoteSigner::generate(&mut OsRng, "operator.example").unwrap();
        let w = WitnessSigner::generate(&mut OsRng, "witness.example").unwrap();
        let (op, w) = (
            op.verifier_key().as_str().to_owned(),
            w.witness_key().as_str().to_owned(),
        );
        let c = TrustConfig {
            log_key: log.verifier_key().as_str().to_owned(),
            witnesses: vec![w.clone()],
            operators: vec![op.clone()],
            ..TrustConfig::default()
        };
        (c, op, w)
    }

    #[test]
    fn settings_from_text() {
        let (mut c, _, _) = config();
        c.revoked = vec!["ab".repeat(48), format!("tdx:{}", "cd".repeat(240))];
        let t = c.settings().unwrap();
        assert_eq!(t.witnesses.quorum(), 1, "quorum defaults to every witness");
        assert_eq!(t.operators.len(), 1);
        assert_eq!(t.revoked[0].platform(), Platform::SevSnp);
        assert_eq!(t.revoked[1].platform(), Platform::Tdx);
        assert!(!t.snp.trusts_simulated_root());
    }

    #[test]
    fn file_form_names_dangerous_settings_apart() {
        let (c, _, _) = config();
        let parsed: TrustConfig = serde_json::from_value(serde_json::json!({
            "log_key": c.log_key, "witnesses": c.witnesses, "witness_quorum": 1,
            "operators": c.operators,
        }))
        .unwrap();
        assert!(parsed.dangerous.is_safe());
        assert_eq!(parsed.settings().unwrap().witnesses.quorum(), 1);
        // A dangerous setting at the top level is an unknown field, not silently accepted.
        let flat = serde_json::from_value::<TrustConfig>(serde_json::json!({
            "log_key": c.log_key, "no_witnesses": true,
        }));
        assert!(flat.is_err());
        let nested: TrustConfig = serde_json::from_value(serde_json::json!({
            "log_key": c.log_key, "dangerous": { "no_witnesses": true },
        }))
        .unwrap();
        assert!(nested.dangerous.no_witnesses);
        assert_eq!(nested.settings().unwrap().witnesses.quorum(), 0);
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let (c, op, w) = config();
        let with = |f: &dyn Fn(&mut TrustConfig)| {
            let mut c = c.clone();
            f(&mut c);
            c.settings()
        };
        let e = with(&|c| c.log_key = "nonsense".into());
        assert!(matches!(
            e,
            Err(TrustConfigError::Key {
                what: "log key",
                ..
            })
        ));
        let e = with(&|c| c.witnesses = vec![op.clone()]);
        assert!(
            matches!(
                e,
                Err(TrustConfigError::Key {
                    what: "witness key",
                    ..
                })
            ),
            "a note key is not a cosignature/v1 key: {e:?}"
        );
        let e = with(&|c| c.operators = vec![w.clone()]);
        assert!(matches!(
            e,
            Err(TrustConfigError::Key {
                what: "operator key",
                ..
            })
        ));
        let e = with(&|c| c.witness_quorum = Some(2));
        assert!(matches!(e, Err(TrustConfigError::Witnesses(_))));
        let e = with(&|c| c.witnesses = vec![w.clone(), w.clone()]);
        assert!(matches!(e, Err(TrustConfigError::Witnesses(_))), "{e:?}");
        // No witnesses, or quorum 0, only with the explicit opt-out, and then no quorum.
        let e = with(&|c| c.witnesses.clear());
        assert!(matches!(e, Err(TrustConfigError::NoWitnesses)));
        let e = with(&|c| c.witness_quorum = Some(0));
        assert!(matches!(e, Err(TrustConfigError::ZeroQuorum)));
        let e = with(&|c| {
            c.witnesses.clear();
            c.witness_quorum = Some(1);
            c.dangerous.no_witnesses = true;
        });
        assert!(matches!(e, Err(TrustConfigError::Witnesses(_))));
        let t = with(&|c| {
            c.witnesses.clear();
            c.dangerous.no_witnesses = true;
        })
        .unwrap();
        assert_eq!(t.witnesses.quorum(), 0);
        for bad in ["zz", "ab", "sgx:00", "tdx:abab", &"ab".repeat(47)] {
            let e = with(&|c| c.revoked = vec![bad.to_owned()]);
            assert!(
                matches!(e, Err(TrustConfigError::Measurement { .. })),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn simulated_root_only_in_builds_that_have_it() {
        let (mut c, _, _) = config();
        c.dangerous.trust_simulated_root = true;
        let r = c.settings();
        if cfg!(feature = "dangerous-simulated-tee") {
            assert!(r.unwrap().snp.trusts_simulated_root());
        } else {
            assert!(matches!(r, Err(TrustConfigError::NoSimulatedTee)));
        }
    }
}
