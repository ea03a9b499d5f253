//! Intel TDX evidence: a DCAP quote (v4 or v5) verified with `dcap-qvl` against the Intel
//! SGX Root CA pinned by fingerprint, with collateral (TCB info, QE identity, CRLs and their
//! issuer chains) passed in by the caller: nothing is fetched here.
//!
//! `dcap-qvl` checks the PCK chain to the pinned root, both CRLs, the TCB info and QE
//! identity signatures and their validity at `now`, the QE report and the quote signature,
//! and computes the TCB status. We then apply [`TdxPolicy`]: an explicit list of accepted
//! TCB statuses, debug off, and optional required fields. MRTD, RTMR0–3 and the report data
//! come back in [`VerifiedTdxQuote`].

use dcap_qvl::quote::{Quote, Report, TDReport10};
use dcap_qvl::verify::QuoteVerifier;
use sha2::{Digest, Sha256};

pub use dcap_qvl::QuoteCollateralV3;

/// SHA-256 of the DER Intel SGX Root CA (production).
pub const INTEL_SGX_ROOT_CA_SHA256: [u8; 32] = [
    0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
    0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
];

const INTEL_SGX_ROOT_CA: &[u8] = include_bytes!("Intel_SGX_RootCA.der");

const TEE_TYPE_TDX: u32 = 0x81;

/// Why a TDX quote was rejected. Each variant names the step and the facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxError {
    /// The quote could not be parsed.
    #[error("TDX quote unparsable: {reason}")]
    QuoteParse {
        /// Parser message.
        reason: String,
    },
    /// Quote version other than 4 or 5.
    #[error("TDX quote version {got} unsupported (4 or 5)")]
    UnsupportedQuoteVersion {
        /// Version in the header.
        got: u16,
    },
    /// The quote is not a TDX quote (for example SGX).
    #[error("quote TEE type {got:#x} is not TDX (0x81)")]
    NotTdx {
        /// TEE type in the header.
        got: u32,
    },
    /// The collateral JSON could not be parsed.
    #[error("TDX collateral unparsable: {reason}")]
    CollateralParse {
        /// Parser message.
        reason: String,
    },
    /// The embedded Intel root does not match its pinned fingerprint.
    #[error("embedded Intel SGX Root CA does not match its pinned fingerprint")]
    PinnedRootCorrupt,
    /// Collateral or a certificate is outside its validity at `now`.
    #[error("TDX collateral or certificate expired or not yet valid at {now}: {reason}")]
    Expired {
        /// The time checked.
        now: u64,
        /// `dcap-qvl`'s message.
        reason: String,
    },
    /// A certificate is revoked by a CRL.
    #[error("TDX certificate revoked: {reason}")]
    Revoked {
        /// `dcap-qvl`'s message.
        reason: String,
    },
    /// Chain, signature or collateral verification failed.
    #[error("TDX quote verification failed: {reason}")]
    Verification {
        /// `dcap-qvl`'s message chain.
        reason: String,
    },
    /// The platform TCB status is not in the policy's list.
    #[error("TCB status {got} not allowed (allowed: {allowed:?})")]
    TcbStatusNotAllowed {
        /// Status computed from the collateral.
        got: TdxTcbStatus,
        /// Statuses the policy accepts.
        allowed: Vec<TdxTcbStatus>,
    },
    /// An advisory the policy rejects applies.
    #[error("advisory {id} applies and is rejected by policy")]
    AdvisoryRejected {
        /// Advisory ID, e.g. `INTEL-SA-00837`.
        id: String,
    },
    /// The TD is debuggable.
    #[error("TD attributes {attributes} have DEBUG set")]
    DebugEnabled {
        /// Hex TD attributes.
        attributes: String,
    },
    /// SEPT_VE_DISABLE is clear and the policy requires it.
    #[error("TD attributes {attributes} lack SEPT_VE_DISABLE")]
    SeptVeNotDisabled {
        /// Hex TD attributes.
        attributes: String,
    },
    /// The TD is migratable (attribute bit 29) and the policy does not allow it.
    #[error("TD attributes {attributes} have MIGRATABLE set")]
    Migratable {
        /// Hex TD attributes.
        attributes: String,
    },
    /// A required TD field differs.
    #[error("{field} {got} differs from required {want}")]
    FieldMismatch {
        /// Field name.
        field: &'static str,
        /// Hex of the quote's value.
        got: String,
        /// Hex of the required value.
        want: String,
    },
    /// The quote carries an SGX enclave report, not a TD report.
    #[error("quote body is not a TD report")]
    NotATdReport,
    /// Bytes follow the quote's signature data.
    #[error("TDX quote has {extra} bytes after its end ({len} bytes)")]
    TrailingBytes {
        /// The quote's own length.
        len: usize,
        /// Bytes after it.
        extra: usize,
    },
    /// The quote's certificate chain carries a root other than the pinned Intel root (it
    /// would be ignored, but a quote that names another root is not Intel's).
    #[error("the quote carries a root certificate (SHA-256 {got}) other than the pinned Intel SGX Root CA")]
    CarriedRootMismatch {
        /// Hex SHA-256 of the carried root.
        got: String,
    },
    /// The platform's TCB matches no level of Intel's TCB info (a platform Intel does not
    /// describe, or collateral for another one).
    #[error("no TCB level of Intel's TCB info matches the platform: {reason}")]
    NoMatchingTcbLevel {
        /// `dcap-qvl`'s message.
        reason: String,
    },
    /// The TCB info predates the policy's minimum TCB evaluation (an older TCB recovery).
    #[error("TCB info evaluation data number {got} below the minimum {min}")]
    TcbEvaluationTooOld {
        /// `tcbEvaluationDataNumber` of the collateral's TCB info.
        got: u64,
        /// The policy's minimum.
        min: u64,
    },
}

/// TCB status of the platform, as Intel's TCB info names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TdxTcbStatus {
    /// `UpToDate`.
    UpToDate,
    /// `SWHardeningNeeded`.
    SwHardeningNeeded,
    /// `ConfigurationNeeded`.
    ConfigurationNeeded,
    /// `ConfigurationAndSWHardeningNeeded`.
    ConfigurationAndSwHardeningNeeded,
    /// `OutOfDate`.
    OutOfDate,
    /// `OutOfDateConfigurationNeeded`.
    OutOfDateConfigurationNeeded,
    /// `TDRelaunchAdvised`.
    TdRelaunchAdvised,
    /// `TDRelaunchAdvisedConfigurationNeeded`.
    TdRelaunchAdvisedConfigurationNeeded,
    /// `Revoked`.
    Revoked,
    /// Any other name.
    Unknown,
}

impl TdxTcbStatus {
    /// Maps Intel's name (as `dcap-qvl` prints it) to the enum.
    pub fn from_name(name: &str) -> Self {
        match name {
            "UpToDate" => Self::UpToDate,
            "SWHardeningNeeded" => Self::SwHardeningNeeded,
            "ConfigurationNeeded" => Self::ConfigurationNeeded,
            "ConfigurationAndSWHardeningNeeded" => Self::ConfigurationAndSwHardeningNeeded,
            "OutOfDate" => Self::OutOfDate,
            "OutOfDateConfigurationNeeded" => Self::OutOfDateConfigurationNeeded,
            "TDRelaunchAdvised" => Self::TdRelaunchAdvised,
            "TDRelaunchAdvisedConfigurationNeeded" => Self::TdRelaunchAdvisedConfigurationNeeded,
            "Revoked" => Self::Revoked,
            _ => Self::Unknown,
        }
    }
}

impl core::fmt::Display for TdxTcbStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

/// Policy for TDX quotes. [`TdxPolicy::default`] accepts only `UpToDate`, no debug, and
/// requires SEPT_VE_DISABLE; any other TCB status must be listed explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxPolicy {
    /// TCB statuses accepted (explicit; default only `UpToDate`).
    pub allowed_tcb_statuses: Vec<TdxTcbStatus>,
    /// Advisory IDs that reject a quote even under an allowed status.
    pub rejected_advisories: Vec<String>,
    /// Accept a debuggable TD.
    pub allow_debug: bool,
    /// Require TD attribute SEPT_VE_DISABLE (bit 28).
    pub require_sept_ve_disable: bool,
    /// Accept a migratable TD (attribute bit 29).
    pub allow_migratable: bool,
    /// Required MRCONFIGID, if any.
    pub mr_config_id: Option<[u8; 48]>,
    /// Required MROWNER, if any.
    pub mr_owner: Option<[u8; 48]>,
    /// Required MROWNERCONFIG, if any.
    pub mr_owner_config: Option<[u8; 48]>,
    /// Required MRSEAM (TDX module measurement), if any.
    pub mr_seam: Option<[u8; 48]>,
    /// Required XFAM, if any.
    pub xfam: Option<[u8; 8]>,
    /// Lowest `tcbEvaluationDataNumber` of Intel's (signed) TCB info accepted: set it to the
    /// number of the last TCB recovery you require, so that collateral from before it is
    /// refused. None by default (0): expired collateral is refused anyway by its
    /// `nextUpdate`, and Lucent ships no number it could not source.
    pub min_tcb_evaluation_data_number: u64,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            allowed_tcb_statuses: vec![TdxTcbStatus::UpToDate],
            rejected_advisories: Vec::new(),
            allow_debug: false,
            require_sept_ve_disable: true,
            allow_migratable: false,
            mr_config_id: None,
            mr_owner: None,
            mr_owner_config: None,
            mr_seam: None,
            xfam: None,
            min_tcb_evaluation_data_number: 0,
        }
    }
}

/// Which Intel root to trust: the production SGX Root CA, pinned by fingerprint.
#[derive(Clone, Debug)]
pub struct TdxTrust {
    root_der: &'static [u8],
}

impl Default for TdxTrust {
    fn default() -> Self {
        Self::intel()
    }
}

impl TdxTrust {
    /// Trusts Intel's production SGX Root CA (embedded, pinned by fingerprint).
    pub fn intel() -> Self {
        Self {
            root_der: INTEL_SGX_ROOT_CA,
        }
    }

    /// The pinned root, DER.
    pub fn root_der(&self) -> &'static [u8] {
        self.root_der
    }
}

/// Facts from a TDX quote that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTdxQuote {
    /// Quote version (4 or 5).
    pub version: u16,
    /// Platform TCB status.
    pub tcb_status: TdxTcbStatus,
    /// Advisory IDs that apply.
    pub advisory_ids: Vec<String>,
    /// MRTD: the initial TD measurement.
    pub mr_td: [u8; 48],
    /// RTMR0–3.
    pub rtmr: [[u8; 48]; 4],
    /// Report data (see [`crate::binding`]).
    pub report_data: [u8; 64],
    /// MRSEAM.
    pub mr_seam: [u8; 48],
    /// TD attributes.
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// TEE TCB SVN.
    pub tee_tcb_svn: [u8; 16],
}

/// A parsed (not verified) TDX quote: header facts and the TD report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTdxQuote {
    /// Quote version.
    pub version: u16,
    /// TEE type.
    pub tee_type: u32,
    /// The TD report (TDX 1.0 fields; 1.5 reports carry these too).
    pub td_report: TDReport10,
}

/// Parses a TDX quote without verifying anything. Never panics.
pub fn parse_quote(quote: &[u8]) -> Result<ParsedTdxQuote, TdxError> {
    parse_full(quote).map(|(_, p)| p)
}

/// Parses a quote; refuses bytes after its signature data.
fn parse_full(quote: &[u8]) -> Result<(Quote, ParsedTdxQuote), TdxError> {
    let parsed = Quote::parse(quote).map_err(|e| TdxError::QuoteParse {
        reason: format!("{e:#}"),
    })?;
    // The header and body, then the signature data's 4-byte length and the data.
    let signed = parsed.signed_length();
    let len = quote
        .get(signed..signed + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| (signed + 4).checked_add(n))
        .ok_or_else(|| TdxError::QuoteParse {
            reason: "signature data length out of range".into(),
        })?;
    if quote.len() > len {
        return Err(TdxError::TrailingBytes {
            len,
            extra: quote.len() - len,
        });
    }
    let version = parsed.header.version;
    if version != 4 && version != 5 {
        return Err(TdxError::UnsupportedQuoteVersion { got: version });
    }
    if parsed.header.tee_type != TEE_TYPE_TDX {
        return Err(TdxError::NotTdx {
            got: parsed.header.tee_type,
        });
    }
    let td_report = td10(&parsed.report).ok_or(TdxError::NotATdReport)?;
    let tee_type = parsed.header.tee_type;
    Ok((
        parsed,
        ParsedTdxQuote {
            version,
            tee_type,
            td_report,
        },
    ))
}

/// The self-signed certificates in the quote's PEM certificate chain (the roots it carries).
fn carried_roots(quote: &Quote) -> Vec<Vec<u8>> {
    let Ok(chain) = quote.raw_cert_chain() else {
        return Vec::new();
    };
    x509_parser::pem::Pem::iter_from_buffer(chain)
        .filter_map(Result::ok)
        .filter(|pem| {
            x509_parser::parse_x509_certificate(&pem.contents)
                .is_ok_and(|(_, c)| c.subject() == c.issuer())
        })
        .map(|pem| pem.contents)
        .collect()
}

/// `tcbEvaluationDataNumber` of the collateral's TCB info (JSON `{"tcbInfo": {...}}` or the
/// bare object), if present.
fn tcb_evaluation_data_number(collateral: &QuoteCollateralV3) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(&collateral.tcb_info).ok()?;
    v.get("tcbEvaluationDataNumber")
        .or_else(|| v.get("tcbInfo")?.get("tcbEvaluationDataNumber"))?
        .as_u64()
}

fn td10(report: &Report) -> Option<TDReport10> {
    match report {
        Report::TD10(r) => Some(*r),
        Report::TD15(r) => Some(r.base),
        Report::TD15Ex(r) => Some(r.base.base),
        Report::SgxEnclave(_) => None,
    }
}

/// Parses `dcap-qvl`'s `QuoteCollateralV3` JSON (as Intel PCS/PCCS data is cached).
pub fn parse_collateral_json(json: &[u8]) -> Result<QuoteCollateralV3, TdxError> {
    serde_json::from_slice(json).map_err(|e| TdxError::CollateralParse {
        reason: e.to_string(),
    })
}

fn classify(now: u64, reason: String) -> TdxError {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("no matching tcb level") {
        TdxError::NoMatchingTcbLevel { reason }
    } else if lower.contains("revoked") {
        TdxError::Revoked { reason }
    } else if lower.contains("expired")
        || lower.contains("not yet valid")
        || lower.contains("notbefore")
    {
        TdxError::Expired { now, reason }
    } else {
        TdxError::Verification { reason }
    }
}

fn field_eq<const N: usize>(
    field: &'static str,
    got: &[u8; N],
    want: &Option<[u8; N]>,
) -> Result<(), TdxError> {
    match want {
        Some(want) if want != got => Err(TdxError::FieldMismatch {
            field,
            got: hex::encode(got),
            want: hex::encode(want),
        }),
        _ => Ok(()),
    }
}

/// TD attributes (a little-endian u64): bit 0 DEBUG, bit 28 SEPT_VE_DISABLE, bit 29
/// MIGRATABLE. A migratable TD can be moved to another platform by a migration TD, after
/// which this quote no longer describes where it runs; it is refused unless the policy
/// allows it.
fn check_td_attributes(attributes: [u8; 8], policy: &TdxPolicy) -> Result<(), TdxError> {
    let attrs = u64::from_le_bytes(attributes);
    let hex = || hex::encode(attributes);
    if attrs & 1 != 0 && !policy.allow_debug {
        return Err(TdxError::DebugEnabled { attributes: hex() });
    }
    if policy.require_sept_ve_disable && attrs & (1 << 28) == 0 {
        return Err(TdxError::SeptVeNotDisabled { attributes: hex() });
    }
    if attrs & (1 << 29) != 0 && !policy.allow_migratable {
        return Err(TdxError::Migratable { attributes: hex() });
    }
    Ok(())
}

/// Verifies a TDX quote against the pinned Intel root with `collateral` at `now` (Unix
/// seconds), then applies `policy`.
pub fn verify_tdx(
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    trust: &TdxTrust,
    policy: &TdxPolicy,
    now: u64,
) -> Result<VerifiedTdxQuote, TdxError> {
    let (full, parsed) = parse_full(quote)?;
    if <[u8; 32]>::from(Sha256::digest(trust.root_der)) != INTEL_SGX_ROOT_CA_SHA256 {
        return Err(TdxError::PinnedRootCorrupt);
    }
    if let Some(other) = carried_roots(&full)
        .into_iter()
        .find(|der| der.as_slice() != trust.root_der)
    {
        return Err(TdxError::CarriedRootMismatch {
            got: hex::encode(Sha256::digest(&other)),
        });
    }
    let verifier = QuoteVerifier::new(trust.root_der.to_vec()).allow_debug(policy.allow_debug);
    let verified = verifier
        .verify(quote, collateral, now)
        .map_err(|e| classify(now, format!("{e:#}")))?;
    let td = td10(&verified.report).ok_or(TdxError::NotATdReport)?;
    // The TCB info verified with the collateral: its evaluation number is Intel's.
    let evaluation = tcb_evaluation_data_number(collateral).unwrap_or(0);
    if evaluation < policy.min_tcb_evaluation_data_number {
        return Err(TdxError::TcbEvaluationTooOld {
            got: evaluation,
            min: policy.min_tcb_evaluation_data_number,
        });
    }

    let status = TdxTcbStatus::from_name(&verified.status);
    if !policy.allowed_tcb_statuses.contains(&status) {
        return Err(TdxError::TcbStatusNotAllowed {
            got: status,
            allowed: policy.allowed_tcb_statuses.clone(),
        });
    }
    if let Some(id) = verified
        .advisory_ids
        .iter()
        .find(|id| policy.rejected_advisories.contains(id))
    {
        return Err(TdxError::AdvisoryRejected { id: id.clone() });
    }
    check_td_attributes(td.td_attributes, policy)?;
    field_eq("MRCONFIGID", &td.mr_config_id, &policy.mr_config_id)?;
    field_eq("MROWNER", &td.mr_owner, &policy.mr_owner)?;
    field_eq(
        "MROWNERCONFIG",
        &td.mr_owner_config,
        &policy.mr_owner_config,
    )?;
    field_eq("MRSEAM", &td.mr_seam, &policy.mr_seam)?;
    field_eq("XFAM", &td.xfam, &policy.xfam)?;

    Ok(VerifiedTdxQuote {
        version: parsed.version,
        tcb_status: status,
        advisory_ids: verified.advisory_ids,
        mr_td: td.mr_td,
        rtmr: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
        report_data: td.report_data,
        mr_seam: td.mr_seam,
        td_attributes: td.td_attributes,
        xfam: td.xfam,
        mr_config_id: td.mr_config_id,
        mr_owner: td.mr_owner,
        mr_owner_config: td.mr_owner_config,
        tee_tcb_svn: td.tee_tcb_svn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn td_attributes_debug_sept_ve_and_migratable() {
        let attrs = |bits: &[u32]| bits.iter().fold(0u64, |a, b| a | 1 << b).to_le_bytes();
        let policy = TdxPolicy::default();
        assert!(check_td_attributes(attrs(&[28]), &policy).is_ok());
        assert!(matches!(
            check_td_attributes(attrs(&[0, 28]), &policy),
            Err(TdxError::DebugEnabled { .. })
        ));
        assert!(matches!(
            check_td_attributes(attrs(&[]), &policy),
            Err(TdxError::SeptVeNotDisabled { .. })
        ));
        let e = check_td_attributes(attrs(&[28, 29]), &policy).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TD attributes 0000003000000000 have MIGRATABLE set"
        );
        let allowing = TdxPolicy {
            allow_migratable: true,
            ..TdxPolicy::default()
        };
        assert!(check_td_attributes(attrs(&[28, 29]), &allowing).is_ok());
    }

    #[test]
    fn dcap_messages_become_typed_errors() {
        assert!(matches!(
            classify(0, "No matching TCB level found".into()),
            TdxError::NoMatchingTcbLevel { .. }
        ));
        assert!(matches!(
            classify(0, "TCBInfo expired".into()),
            TdxError::Expired { .. }
        ));
        assert!(matches!(
            classify(0, "PCK certificate is revoked".into()),
            TdxError::Revoked { .. }
        ));
        assert!(matches!(
            classify(0, "signature mismatch".into()),
            TdxError::Verification { .. }
        ));
    }
}
