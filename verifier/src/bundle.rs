//! Attestation bundles: everything a client or key broker needs to accept one CVM offline,
//! and the one call that checks it ([`verify_bundle`], DESIGN.md flow 5).
//!
//! # Encoding (`lucent/bundle/v1`)
//!
//! A UTF-8 JSON object, at most [`MAX_BUNDLE_BYTES`], with exactly these members (unknown
//! members are rejected). Binary values are standard padded base64 (RFC 4648 §4); signed
//! notes are carried as their exact UTF-8 text, never re-serialised.
//!
//! ```text
//! {
//!   "format":     "lucent/bundle/v1",
//!   "evidence":   { "platform": "sev-snp",
//!                   "report": b64 (1184 bytes),
//!                   "vek": b64 (DER VCEK or VLEK),
//!                   "intermediate": b64 (DER ASK or ASVK) | null,
//!                   "ark": b64 (DER ARK; only compared with the pinned one) | null }
//!               | { "platform": "tdx",
//!                   "quote": b64 (DCAP quote v4/v5),
//!                   "collateral": { dcap-qvl QuoteCollateralV3 JSON object } },
//!   "key_config": b64 (the CVM's HPKE key config, RFC 9458 encoding),
//!   "release":    "<release statement note, exact text>",
//!   "inclusion":  { "index": u64, "size": u64, "hashes": [b64 (32 bytes), ...] },
//!   "checkpoint": "<checkpoint note with cosignatures, exact text>"
//! }
//! ```
//!
//! # Verification steps ([`BundleStep`], in order)
//!
//! 1. the checkpoint is signed by the log key ([`crate::checkpoint::verify_checkpoint`]);
//! 2. the witness quorum cosigned it ([`crate::cosignature::WitnessPolicy::check`]);
//! 3. it is consistent with the caller's last seen checkpoint
//!    ([`crate::last_seen::check_update`], or [`crate::last_seen::check_behind`] for a
//!    bundle checkpoint older than the last seen one);
//! 4. the release statement's exact bytes are included under it
//!    ([`crate::merkle::InclusionProof::verify`]);
//! 5. the release is signed by an operator ([`crate::statement::verify_statement`]);
//! 6. the release is not past its not-after and its measurement is not revoked;
//! 7. the evidence verifies to a pinned vendor root and passes policy ([`crate::snp`],
//!    [`crate::tdx`]), with the release's minimum TCB added to the policy;
//! 8. the evidence's measurement equals the release's;
//! 9. the evidence's report data binds the key config and the caller's nonce
//!    ([`crate::binding`]).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::binding::{check_report_data, KeyNotBound};
use crate::checkpoint::{
    verify_checkpoint, CheckpointError, SignedCheckpoint, WitnessedCheckpoint,
};
use crate::last_seen::{check_behind, check_update, LastSeenError, Update};
use crate::merkle::{ConsistencyProof, InclusionProof, LeafHash, ProofError};
use crate::snp::{
    self, SnpCertChain, SnpError, SnpEvidence, SnpPolicy, TcbVersion, VerifiedSnpReport,
};
use crate::statement::{verify_statement, Platform, Release, Statement, StatementError};
use crate::tdx::{self, TdxError, TdxPolicy, VerifiedTdxQuote};
use crate::trust::TrustSettings;

/// The format tag of this encoding.
pub const BUNDLE_FORMAT_V1: &str = "lucent/bundle/v1";
/// Largest bundle accepted (TDX collateral is ~16 KiB; certificates a few KiB).
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;

/// The steps of [`verify_bundle`], in order; [`BundleVerdict::checked`] lists those passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BundleStep {
    /// 1. Checkpoint signed by the log key (and origin).
    CheckpointSignature,
    /// 2. Witness quorum.
    WitnessQuorum,
    /// 3. Consistency with the last seen checkpoint.
    LastSeenConsistency,
    /// 4. Inclusion of the release statement.
    Inclusion,
    /// 5. Release statement signed by an operator.
    ReleaseSignature,
    /// 6. Release not expired and not revoked.
    ReleaseValidity,
    /// 7. Evidence chain to the vendor root and policy.
    Evidence,
    /// 8. Evidence measurement equals the release's.
    MeasurementMatch,
    /// 9. Report data binds the key config (and nonce).
    KeyBinding,
}

/// Why a bundle was rejected: the failed step and its facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bytes are not a `lucent/bundle/v1` object.
    #[error("bundle decoding: {reason}")]
    Decode {
        /// What is wrong.
        reason: String,
    },
    /// Step 1: the checkpoint is not signed by the log key (or names another log).
    #[error("step 1, checkpoint signature: {0}")]
    CheckpointSignature(CheckpointError),
    /// Step 2: too few witness cosignatures.
    #[error("step 2, witness quorum: {0}")]
    WitnessQuorum(CheckpointError),
    /// Step 3: not consistent with the last seen checkpoint (split view or rollback).
    #[error("step 3, last seen checkpoint: {0}")]
    LastSeen(LastSeenError),
    /// Step 4: the inclusion proof does not put the release under the checkpoint.
    #[error("step 4, inclusion of the release at index {index} in size {size}: {source}")]
    Inclusion {
        /// Index claimed.
        index: u64,
        /// Checkpoint size.
        size: u64,
        /// Proof failure.
        source: ProofError,
    },
    /// Step 4: the inclusion proof is for another tree size than the checkpoint's.
    #[error("step 4, inclusion proof is for size {proof}, the checkpoint has size {checkpoint}")]
    InclusionSize {
        /// Size in the proof.
        proof: u64,
        /// Size of the checkpoint.
        checkpoint: u64,
    },
    /// Step 5: the release statement is not signed by an operator, or is malformed.
    #[error("step 5, release statement: {0}")]
    ReleaseSignature(StatementError),
    /// Step 5: the logged statement is not a release.
    #[error("step 5, logged statement is {got}, not a release")]
    NotARelease {
        /// Its type line.
        got: &'static str,
    },
    /// Step 6: the release is past its not-after.
    #[error("step 6, release {version} expired: not-after {not_after} < now {now}")]
    ReleaseExpired {
        /// Release version.
        version: String,
        /// Its not-after.
        not_after: u64,
        /// The time checked.
        now: u64,
    },
    /// Step 6: the release claims to stay valid longer than the policy's maximum lifetime
    /// from now (a release is re-published, not made to last).
    #[error(
        "step 6, release {version} is valid until {not_after}, more than the maximum lifetime \
         of {max_secs} s after now ({now})"
    )]
    ReleaseLifetimeTooLong {
        /// Release version.
        version: String,
        /// Its not-after.
        not_after: u64,
        /// The time checked.
        now: u64,
        /// The policy's maximum.
        max_secs: u64,
    },
    /// Step 6: the release's measurement is revoked.
    #[error("step 6, release measurement {measurement} is revoked")]
    ReleaseRevoked {
        /// Hex measurement.
        measurement: String,
    },
    /// Step 7: the evidence platform differs from the release's.
    #[error("step 7, evidence is {evidence}, release is for {release}")]
    PlatformMismatch {
        /// Release platform.
        release: Platform,
        /// Evidence platform.
        evidence: Platform,
    },
    /// Step 7: the release's minimum TCB is malformed.
    #[error("step 7, release min-tcb is {got} bytes, {platform} needs {want}")]
    ReleaseMinTcb {
        /// Platform.
        platform: Platform,
        /// Length found.
        got: usize,
        /// Length needed.
        want: usize,
    },
    /// Step 7: TDX TEE TCB SVN below the release's minimum.
    #[error("step 7, TDX TEE_TCB_SVN {got} below the release minimum {min}")]
    TdxTcbBelowRelease {
        /// Hex of the quote's TEE_TCB_SVN.
        got: String,
        /// Hex of the release minimum.
        min: String,
    },
    /// Step 7: SEV-SNP evidence rejected.
    #[error("step 7, SEV-SNP evidence: {0}")]
    Snp(SnpError),
    /// Step 7: TDX evidence rejected.
    #[error("step 7, TDX evidence: {0}")]
    Tdx(TdxError),
    /// Step 8: the evidence's measurement is not the release's.
    #[error("step 8, measurement {evidence} does not match the release's {release}")]
    MeasurementMismatch {
        /// Hex of the release measurement.
        release: String,
        /// Hex of the evidence measurement.
        evidence: String,
    },
    /// Step 9: the report data does not bind the key config and nonce.
    #[error("step 9, {0}")]
    KeyNotBound(KeyNotBound),
}

impl BundleError {
    /// The step that failed (`None` for decoding).
    pub fn step(&self) -> Option<BundleStep> {
        use BundleError as E;
        Some(match self {
            E::Decode { .. } => return None,
            E::CheckpointSignature(_) => BundleStep::CheckpointSignature,
            E::WitnessQuorum(_) => BundleStep::WitnessQuorum,
            E::LastSeen(_) => BundleStep::LastSeenConsistency,
            E::Inclusion { .. } | E::InclusionSize { .. } => BundleStep::Inclusion,
            E::ReleaseSignature(_) | E::NotARelease { .. } => BundleStep::ReleaseSignature,
            E::ReleaseExpired { .. }
            | E::ReleaseLifetimeTooLong { .. }
            | E::ReleaseRevoked { .. } => BundleStep::ReleaseValidity,
            E::PlatformMismatch { .. }
            | E::ReleaseMinTcb { .. }
            | E::TdxTcbBelowRelease { .. }
            | E::Snp(_)
            | E::Tdx(_) => BundleStep::Evidence,
            E::MeasurementMismatch { .. } => BundleStep::MeasurementMatch,
            E::KeyNotBound(_) => BundleStep::KeyBinding,
        })
    }
}

/// The evidence in a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleEvidence {
    /// SEV-SNP report and certificates.
    Snp(SnpEvidence),
    /// TDX quote and its collateral (`QuoteCollateralV3` JSON text).
    Tdx {
        /// The DCAP quote.
        quote: Vec<u8>,
        /// Collateral JSON (dcap-qvl `QuoteCollateralV3`).
        collateral_json: Vec<u8>,
    },
}

/// A decoded bundle. Build one and [`Bundle::encode`] it on the CVM; [`Bundle::decode`] and
/// [`verify_bundle`] on the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// Hardware evidence.
    pub evidence: BundleEvidence,
    /// The CVM's HPKE key config (bound in the report data).
    pub key_config: Vec<u8>,
    /// The release statement note, exact bytes (the log entry).
    pub release: Vec<u8>,
    /// Inclusion proof of the release under the checkpoint.
    pub inclusion: InclusionProof,
    /// The checkpoint note with its cosignatures, exact bytes.
    pub checkpoint: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBundle {
    format: String,
    evidence: WireEvidence,
    key_config: String,
    release: String,
    inclusion: WireInclusion,
    checkpoint: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "platform", deny_unknown_fields)]
enum WireEvidence {
    #[serde(rename = "sev-snp")]
    Snp {
        report: String,
        vek: String,
        intermediate: Option<String>,
        ark: Option<String>,
    },
    #[serde(rename = "tdx")]
    Tdx {
        quote: String,
        collateral: serde_json::Value,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireInclusion {
    index: u64,
    size: u64,
    hashes: Vec<String>,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, BundleError> {
    B64.decode(text).map_err(|e| BundleError::Decode {
        reason: format!("{field}: {e}"),
    })
}

fn utf8(field: &str, bytes: &[u8]) -> Result<String, BundleError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| BundleError::Decode {
        reason: format!("{field} is not UTF-8"),
    })
}

impl Bundle {
    /// Encodes as `lucent/bundle/v1` JSON.
    pub fn encode(&self) -> Result<Vec<u8>, BundleError> {
        let evidence = match &self.evidence {
            BundleEvidence::Snp(ev) => WireEvidence::Snp {
                report: B64.encode(&ev.report),
                vek: B64.encode(&ev.certs.vek_der),
                intermediate: ev.certs.intermediate_der.as_ref().map(|d| B64.encode(d)),
                ark: ev.certs.ark_der.as_ref().map(|d| B64.encode(d)),
            },
            BundleEvidence::Tdx {
                quote,
                collateral_json,
            } => WireEvidence::Tdx {
                quote: B64.encode(quote),
                collateral: serde_json::from_slice(collateral_json).map_err(|e| {
                    BundleError::Decode {
                        reason: format!("collateral: {e}"),
                    }
                })?,
            },
        };
        let wire = WireBundle {
            format: BUNDLE_FORMAT_V1.to_string(),
            evidence,
            key_config: B64.encode(&self.key_config),
            release: utf8("release", &self.release)?,
            inclusion: WireInclusion {
                index: self.inclusion.index,
                size: self.inclusion.size.0,
                hashes: self
                    .inclusion
                    .hashes
                    .iter()
                    .map(|h| B64.encode(h.0))
                    .collect(),
            },
            checkpoint: utf8("checkpoint", &self.checkpoint)?,
        };
        serde_json::to_vec(&wire).map_err(|e| BundleError::Decode {
            reason: e.to_string(),
        })
    }

    /// Decodes `lucent/bundle/v1` JSON. Checks the layout only; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::Decode {
                reason: format!("{} bytes, limit {MAX_BUNDLE_BYTES}", bytes.len()),
            });
        }
        let wire: WireBundle = serde_json::from_slice(bytes).map_err(|e| BundleError::Decode {
            reason: e.to_string(),
        })?;
        if wire.format != BUNDLE_FORMAT_V1 {
            return Err(BundleError::Decode {
                reason: format!("format {:?}, want {BUNDLE_FORMAT_V1:?}", wire.format),
            });
        }
        let evidence = match wire.evidence {
            WireEvidence::Snp {
                report,
                vek,
                intermediate,
                ark,
            } => BundleEvidence::Snp(SnpEvidence {
                report: b64("report", &report)?,
                certs: SnpCertChain {
                    vek_der: b64("vek", &vek)?,
                    intermediate_der: intermediate.map(|d| b64("intermediate", &d)).transpose()?,
                    ark_der: ark.map(|d| b64("ark", &d)).transpose()?,
                },
            }),
            WireEvidence::Tdx { quote, collateral } => BundleEvidence::Tdx {
                quote: b64("quote", &quote)?,
                collateral_json: serde_json::to_vec(&collateral).map_err(|e| {
                    BundleError::Decode {
                        reason: format!("collateral: {e}"),
                    }
                })?,
            },
        };
        let hashes = wire
            .inclusion
            .hashes
            .iter()
            .map(|h| b64("inclusion hash", h))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
        let inclusion = InclusionProof::from_raw(wire.inclusion.index, wire.inclusion.size, &refs)
            .map_err(|e| BundleError::Decode {
                reason: format!("inclusion proof: {e}"),
            })?;
        Ok(Bundle {
            evidence,
            key_config: b64("key_config", &wire.key_config)?,
            release: wire.release.into_bytes(),
            inclusion,
            checkpoint: wire.checkpoint.into_bytes(),
        })
    }
}

/// Default [`BundlePolicy::max_release_lifetime_secs`]: 30 days.
pub const DEFAULT_MAX_RELEASE_LIFETIME_SECS: u64 = 30 * 24 * 3600;

/// What the evidence must satisfy, and the caller's nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundlePolicy {
    /// SEV-SNP policy (the release's min-tcb is added to its minimum TCBs).
    pub snp: SnpPolicy,
    /// TDX policy.
    pub tdx: TdxPolicy,
    /// The nonce the caller sent, bound in the report data (none: key config only).
    pub nonce: Option<Vec<u8>>,
    /// A release whose not-after lies further than this from now is refused: whatever the
    /// log does, a release a verifier accepts stops being valid within this time, so a
    /// revocation hidden from a client stops mattering after it. Operators re-publish
    /// releases before they expire (`publish release` refuses longer ones). Default
    /// [`DEFAULT_MAX_RELEASE_LIFETIME_SECS`].
    pub max_release_lifetime_secs: u64,
}

impl Default for BundlePolicy {
    fn default() -> Self {
        BundlePolicy {
            snp: SnpPolicy::default(),
            tdx: TdxPolicy::default(),
            nonce: None,
            max_release_lifetime_secs: DEFAULT_MAX_RELEASE_LIFETIME_SECS,
        }
    }
}

/// The caller's last seen checkpoint, and a consistency proof between it and the bundle's
/// checkpoint (fetched from the log; not needed for equal sizes).
#[derive(Clone, Copy, Debug)]
pub struct LastSeen<'a> {
    /// The stored, previously verified checkpoint.
    pub checkpoint: &'a SignedCheckpoint,
    /// Consistency proof from the smaller of the two sizes to the larger: from the stored
    /// size to the bundle's when the bundle is newer, from the bundle's size to the stored
    /// one when the bundle is older ([`Update::Behind`]; the stored one stays).
    pub proof: Option<&'a ConsistencyProof>,
}

/// Facts from the evidence that verified.
// One verdict per verification, returned by value once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceVerdict {
    /// SEV-SNP.
    Snp(VerifiedSnpReport),
    /// TDX.
    Tdx(VerifiedTdxQuote),
}

/// A bundle that verified: what was checked and which release matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleVerdict {
    /// Steps passed, in order (all of [`BundleStep`]).
    pub checked: Vec<BundleStep>,
    /// The release that matched.
    pub release: Release,
    /// Its index in the log.
    pub release_index: u64,
    /// Operator keys that signed it.
    pub release_signers: Vec<String>,
    /// The witnessed checkpoint (store it as the new last seen).
    pub checkpoint: WitnessedCheckpoint,
    /// How it relates to the last seen one.
    pub update: Update,
    /// Evidence facts.
    pub evidence: EvidenceVerdict,
    /// The bound key config.
    pub key_config: Vec<u8>,
}

/// Verifies a bundle: every step of DESIGN.md flow 5, in order, at `now` (Unix seconds).
pub fn verify_bundle(
    bundle: &Bundle,
    trust: &TrustSettings,
    policy: &BundlePolicy,
    last_seen: Option<LastSeen<'_>>,
    now: u64,
) -> Result<BundleVerdict, BundleError> {
    let mut checked = Vec::with_capacity(9);

    // 1–2. Log signature, then witness quorum (as `verify_witnessed`, split to name the step).
    let signed_cp = verify_checkpoint(&bundle.checkpoint, &trust.log)
        .map_err(BundleError::CheckpointSignature)?;
    checked.push(BundleStep::CheckpointSignature);
    let cosignatures = trust
        .witnesses
        .check(&signed_cp.text, &signed_cp.other_signatures)
        .map_err(|source| {
            BundleError::WitnessQuorum(CheckpointError::Witnesses {
                size: signed_cp.checkpoint.size.0,
                source,
            })
        })?;
    let witnessed = WitnessedCheckpoint {
        signed: signed_cp,
        cosignatures,
    };
    checked.push(BundleStep::WitnessQuorum);

    // 3. Consistency with the last seen checkpoint (an older bundle checkpoint must be
    //    proven a prefix of it).
    let update = match last_seen {
        Some(l) => check_behind(l.checkpoint, &witnessed.signed, l.proof),
        None => check_update(None, &witnessed.signed, None),
    }
    .map_err(BundleError::LastSeen)?;
    checked.push(BundleStep::LastSeenConsistency);

    // 4. Inclusion of the release's exact bytes.
    let cp = witnessed.checkpoint();
    let proof = &bundle.inclusion;
    let inclusion_err = |source| BundleError::Inclusion {
        index: proof.index,
        size: cp.size.0,
        source,
    };
    if proof.size != cp.size {
        return Err(BundleError::InclusionSize {
            proof: proof.size.0,
            checkpoint: cp.size.0,
        });
    }
    proof
        .verify(&LeafHash::of_entry(&bundle.release), &cp.root)
        .map_err(inclusion_err)?;
    checked.push(BundleStep::Inclusion);

    // 5. Operator signature and type.
    let signed = verify_statement(&bundle.release, &trust.operators)
        .map_err(BundleError::ReleaseSignature)?;
    let release = match signed.statement {
        Statement::Release(r) => r,
        other => {
            return Err(BundleError::NotARelease {
                got: other.type_line(),
            })
        }
    };
    checked.push(BundleStep::ReleaseSignature);

    // 6. Expiry and revocation.
    if now > release.not_after {
        return Err(BundleError::ReleaseExpired {
            version: release.version.clone(),
            not_after: release.not_after,
            now,
        });
    }
    if release.not_after > now.saturating_add(policy.max_release_lifetime_secs) {
        return Err(BundleError::ReleaseLifetimeTooLong {
            version: release.version.clone(),
            not_after: release.not_after,
            now,
            max_secs: policy.max_release_lifetime_secs,
        });
    }
    if trust.revoked.contains(&release.measurement) {
        return Err(BundleError::ReleaseRevoked {
            measurement: release.measurement.to_hex(),
        });
    }
    checked.push(BundleStep::ReleaseValidity);

    // 7. Evidence, with the release's minimum TCB. 8. Measurement. 9. Key binding.
    let platform = release.measurement.platform();
    let (evidence, measurement, report_data) = match &bundle.evidence {
        BundleEvidence::Snp(ev) => {
            if platform != Platform::SevSnp {
                return Err(BundleError::PlatformMismatch {
                    release: platform,
                    evidence: Platform::SevSnp,
                });
            }
            let v = verify_snp_with_release(ev, trust, policy, &release, now)?;
            let m = v.measurement.to_vec();
            let rd = v.report_data;
            (EvidenceVerdict::Snp(v), m, rd)
        }
        BundleEvidence::Tdx {
            quote,
            collateral_json,
        } => {
            if platform != Platform::Tdx {
                return Err(BundleError::PlatformMismatch {
                    release: platform,
                    evidence: Platform::Tdx,
                });
            }
            let collateral =
                tdx::parse_collateral_json(collateral_json).map_err(BundleError::Tdx)?;
            let v = tdx::verify_tdx(quote, &collateral, &trust.tdx, &policy.tdx, now)
                .map_err(BundleError::Tdx)?;
            check_tdx_min_tcb(&release, &v)?;
            let mut m = v.mr_td.to_vec();
            for r in &v.rtmr {
                m.extend_from_slice(r);
            }
            let rd = v.report_data;
            (EvidenceVerdict::Tdx(v), m, rd)
        }
    };
    checked.push(BundleStep::Evidence);

    if measurement != release.measurement.as_bytes() {
        return Err(BundleError::MeasurementMismatch {
            release: release.measurement.to_hex(),
            evidence: hex::encode(&measurement),
        });
    }
    checked.push(BundleStep::MeasurementMatch);

    check_report_data(&report_data, &bundle.key_config, policy.nonce.as_deref())
        .map_err(BundleError::KeyNotBound)?;
    checked.push(BundleStep::KeyBinding);

    Ok(BundleVerdict {
        checked,
        release,
        release_index: proof.index,
        release_signers: signed.signers,
        checkpoint: witnessed,
        update,
        evidence,
        key_config: bundle.key_config.clone(),
    })
}

fn component_max(a: TcbVersion, b: TcbVersion) -> TcbVersion {
    TcbVersion {
        fmc: match (a.fmc, b.fmc) {
            (None, None) => None,
            (x, y) => Some(x.unwrap_or(0).max(y.unwrap_or(0))),
        },
        bootloader: a.bootloader.max(b.bootloader),
        tee: a.tee.max(b.tee),
        snp: a.snp.max(b.snp),
        microcode: a.microcode.max(b.microcode),
    }
}

fn verify_snp_with_release(
    ev: &SnpEvidence,
    trust: &TrustSettings,
    policy: &BundlePolicy,
    release: &Release,
    now: u64,
) -> Result<VerifiedSnpReport, BundleError> {
    let min: [u8; 8] =
        release
            .min_tcb
            .as_slice()
            .try_into()
            .map_err(|_| BundleError::ReleaseMinTcb {
                platform: Platform::SevSnp,
                got: release.min_tcb.len(),
                want: 8,
            })?;
    // The TCB layout depends on the product, known only once the chain verified.
    let crls = trust.amd_crls.current(&trust.snp);
    let crls: Vec<&[u8]> = crls.iter().map(|c| &c[..]).collect();
    let vek = trust
        .snp
        .verify_chain(&ev.certs, &crls, now)
        .map_err(BundleError::Snp)?;
    let release_min = TcbVersion::decode(u64::from_le_bytes(min), vek.product);
    let mut p = policy.snp.clone();
    p.min_reported_tcb = component_max(p.min_reported_tcb, release_min);
    p.min_committed_tcb = component_max(p.min_committed_tcb, release_min);
    p.min_current_tcb = component_max(p.min_current_tcb, release_min);
    snp::verify_report_with_vek(&vek, &ev.report, &p, now).map_err(BundleError::Snp)
}

fn check_tdx_min_tcb(release: &Release, v: &VerifiedTdxQuote) -> Result<(), BundleError> {
    let min: [u8; 16] =
        release
            .min_tcb
            .as_slice()
            .try_into()
            .map_err(|_| BundleError::ReleaseMinTcb {
                platform: Platform::Tdx,
                got: release.min_tcb.len(),
                want: 16,
            })?;
    // TEE_TCB_SVN components are independent SVNs: compare each.
    if v.tee_tcb_svn
        .iter()
        .zip(min.iter())
        .any(|(got, min)| got < min)
    {
        return Err(BundleError::TdxTcbBelowRelease {
            got: hex::encode(v.tee_tcb_svn),
            min: hex::encode(min),
        });
    }
    Ok(())
}
