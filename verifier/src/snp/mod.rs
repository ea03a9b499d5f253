//! AMD SEV-SNP evidence: an attestation report (versions 2–5) and its VCEK or VLEK chain to
//! an AMD root pinned by fingerprint.
//!
//! Verifying means, in order: the chain VEK → ASK/ASVK → ARK (RSA-PSS/SHA-384) with the ARK
//! pinned per product ([`SnpTrust`]); every certificate valid at `now`; an optional AMD CRL;
//! the report signature (ECDSA P-384/SHA-384 over the exact bytes `0x000..0x2A0`); the
//! report's signing key kind equal to the certificate's; the VEK's TCB extensions equal to
//! `REPORTED_TCB`; for a VCEK, the hwID extension equal to `CHIP_ID`; then [`SnpPolicy`].
//!
//! With the `dangerous-simulated-tee` feature (tests and devnets only), evidence from the
//! simulated TEE:
//!
//! ```
//! # #[cfg(feature = "dangerous-simulated-tee")] {
//! use lucent_verifier::snp::{verify_snp, SnpEvidence, SnpPolicy, SnpTrust, SnpError};
//! use lucent_verifier::simulated::{SimulatedTee, SimulatedReportRequest};
//!
//! let tee = SimulatedTee::new().unwrap();
//! let evidence = tee.attest(&SimulatedReportRequest::new([7; 48], [9; 64])).unwrap();
//! let now = 1_800_000_000;
//! // Simulated evidence is rejected unless explicitly trusted.
//! let err = verify_snp(&evidence, &SnpTrust::amd(), &SnpPolicy::default(), &[], now);
//! assert!(matches!(err, Err(SnpError::SimulatedRootNotTrusted)));
//! let trust = SnpTrust::amd().dangerous_trust_simulated_root();
//! let ok = verify_snp(&evidence, &trust, &SnpPolicy::default(), &[], now).unwrap();
//! assert_eq!(ok.measurement, [7; 48]);
//! # }
//! ```

mod chain;
pub mod policy;
pub mod report;

pub use chain::{
    PinnedRoot, SnpCertChain, SnpTrust, VekKind, VerifiedVek, ARK_GENOA_SHA256, ARK_MILAN_SHA256,
    ARK_SIMULATED_SHA256, ARK_TURIN_SHA256,
};
#[cfg(feature = "dangerous-simulated-tee")]
pub(crate) use chain::{ARK_SIMULATED, ASK_SIMULATED};
pub use policy::{SnpPolicy, SnpPolicyViolation, TcbFloors};
pub use report::{
    FirmwareVersion, GuestPolicy, Product, SigningKey, SnpReport, TcbVersion, REPORT_LEN,
    SIGNED_LEN,
};

/// Why SEV-SNP evidence was rejected. Each variant names the step and the facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpError {
    /// The report is not exactly 1184 bytes.
    #[error("report is {got} bytes, want {}", REPORT_LEN)]
    ReportLength {
        /// Length received.
        got: usize,
    },
    /// The report version is outside 2..=5.
    #[error("report version {got} unsupported (2..=5)")]
    UnsupportedReportVersion {
        /// Version in the report.
        got: u32,
    },
    /// The report's signature algorithm is not ECDSA P-384/SHA-384.
    #[error("report signature algorithm {got} unsupported (want 1, ECDSA P-384/SHA-384)")]
    UnsupportedSignatureAlgorithm {
        /// `SIGNATURE_ALGO` in the report.
        got: u32,
    },
    /// The signature field is not a valid P-384 `(r, s)`.
    #[error("report signature is not a well-formed P-384 (r, s)")]
    SignatureEncoding,
    /// The report signature does not verify under the VEK.
    #[error("report signature does not verify under the {which}")]
    BadReportSignature {
        /// `VCEK` or `VLEK`.
        which: &'static str,
    },
    /// A certificate could not be parsed.
    #[error("{which} certificate unparsable: {reason}")]
    CertificateParse {
        /// Role in the chain.
        which: &'static str,
        /// Parser message.
        reason: String,
    },
    /// A certificate is missing from the evidence.
    #[error("{which} certificate missing")]
    MissingCertificate {
        /// Role in the chain.
        which: &'static str,
    },
    /// A certificate is not the kind expected at its place.
    #[error("{which} position holds an unexpected certificate (CN={subject})")]
    UnexpectedCertificate {
        /// Role in the chain.
        which: &'static str,
        /// Its common name.
        subject: String,
    },
    /// No pinned root or intermediate issued this certificate.
    #[error("{which} issued by {issuer}, which is not a pinned AMD root")]
    UnknownIssuer {
        /// Role of the certificate.
        which: &'static str,
        /// Its issuer name.
        issuer: String,
    },
    /// The certificate's issuer name is not its parent's subject.
    #[error("{which} issuer {issuer} is not {expected}")]
    IssuerMismatch {
        /// Role of the certificate.
        which: &'static str,
        /// Its issuer.
        issuer: String,
        /// Subject of the parent in the chain.
        expected: String,
    },
    /// The evidence chains to the simulated TEE root, which is not trusted.
    #[error("evidence is signed by Lucent's simulated TEE root, which is trusted only with SnpTrust::dangerous_trust_simulated_root (feature dangerous-simulated-tee; never in release configuration)")]
    SimulatedRootNotTrusted,
    /// The ARK carried in the evidence is not the pinned one.
    #[error("ARK in the evidence (sha256 {fingerprint}) is not the pinned {product} ARK")]
    UntrustedRoot {
        /// SHA-256 of the carried ARK.
        fingerprint: String,
        /// Product whose pinned ARK was expected.
        product: Product,
    },
    /// An embedded root does not match its pinned fingerprint (build corruption).
    #[error("embedded {product} ARK does not match its pinned fingerprint")]
    PinnedRootCorrupt {
        /// Product.
        product: Product,
    },
    /// A certificate signature in the chain does not verify.
    #[error("{signer} does not sign the {signee}: {reason}")]
    ChainSignature {
        /// Signer's role.
        signer: &'static str,
        /// Signee's role.
        signee: &'static str,
        /// Library message.
        reason: String,
    },
    /// A certificate has expired at `now`.
    #[error("{which} certificate expired: notAfter {not_after} < now {now}")]
    CertificateExpired {
        /// Role of the first certificate to expire.
        which: &'static str,
        /// Its `notAfter` (Unix seconds).
        not_after: i64,
        /// The time checked.
        now: i64,
    },
    /// A certificate is not yet valid at `now`.
    #[error("{which} certificate not yet valid: notBefore {not_before} > now {now}")]
    CertificateNotYetValid {
        /// Role of the certificate.
        which: &'static str,
        /// Its `notBefore` (Unix seconds).
        not_before: i64,
        /// The time checked.
        now: i64,
    },
    /// An AMD extension is missing or malformed.
    #[error("{which} extension {oid}: {reason}")]
    CertificateExtension {
        /// Role of the certificate.
        which: &'static str,
        /// Extension OID.
        oid: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The VEK's key is not a P-384 point.
    #[error("{which} public key is not ECDSA P-384")]
    VekKeyNotP384 {
        /// `VCEK` or `VLEK`.
        which: &'static str,
    },
    /// The report says one signing key, the chain certifies another.
    #[error("report says it is signed by {report}, but the chain certifies a {chain:?}")]
    SigningKeyMismatch {
        /// `KEY_INFO.SIGNING_KEY`.
        report: SigningKey,
        /// Kind certified by the chain.
        chain: VekKind,
    },
    /// The VEK's TCB extensions differ from `REPORTED_TCB`.
    #[error("REPORTED_TCB {report} differs from the {which} certificate's TCB {cert}")]
    TcbMismatch {
        /// `VCEK` or `VLEK`.
        which: &'static str,
        /// Decoded `REPORTED_TCB`.
        report: TcbVersion,
        /// TCB from the certificate.
        cert: TcbVersion,
    },
    /// The VCEK's hwID differs from the report's `CHIP_ID`.
    #[error("CHIP_ID {report} differs from the VCEK hwID {cert}")]
    ChipIdMismatch {
        /// Hex of `CHIP_ID`.
        report: String,
        /// Hex of the hwID extension.
        cert: String,
    },
    /// The CRL could not be used.
    #[error("AMD CRL rejected: {reason}")]
    Crl {
        /// What is wrong.
        reason: String,
    },
    /// A certificate is revoked by the CRL.
    #[error("{which} (serial {serial}) is revoked by the AMD CRL")]
    Revoked {
        /// Role of the revoked certificate.
        which: &'static str,
        /// Hex serial number.
        serial: String,
    },
    /// The report fails the policy.
    #[error("policy: {0}")]
    Policy(#[from] SnpPolicyViolation),
}

/// SEV-SNP evidence as it travels: the report and its certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpEvidence {
    /// The 1184-byte report.
    pub report: Vec<u8>,
    /// Its certificate chain.
    pub certs: SnpCertChain,
}

/// Facts from a report that verified, for the caller to match against a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSnpReport {
    /// Product of the pinned root.
    pub product: Product,
    /// VCEK or VLEK.
    pub signing_key: VekKind,
    /// Report version.
    pub version: u32,
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Report data (see [`crate::binding`]).
    pub report_data: [u8; 64],
    /// Host data.
    pub host_data: [u8; 32],
    /// VMPL.
    pub vmpl: u32,
    /// Guest policy.
    pub guest_policy: u64,
    /// Decoded `REPORTED_TCB`.
    pub reported_tcb: TcbVersion,
    /// Chip ID (zero if masked).
    pub chip_id: [u8; 64],
    /// SHA-256 of the VEK certificate.
    pub vek_sha256: [u8; 32],
}

/// Verifies SNP evidence in one call: chain, times, the AMD CRLs given (see
/// [`SnpTrust::verify_chain`]), report, policy.
pub fn verify_snp(
    evidence: &SnpEvidence,
    trust: &SnpTrust,
    policy: &SnpPolicy,
    crls: &[&[u8]],
    now: u64,
) -> Result<VerifiedSnpReport, SnpError> {
    // Parse the report first: cheap, and rejects garbage before any RSA work.
    let report = SnpReport::parse(&evidence.report)?;
    let vek = trust.verify_chain(&evidence.certs, crls, now)?;
    verify_parsed_report(&vek, &report, policy, now)
}

/// Verifies a report against a VEK whose chain was verified earlier (the cached path).
/// The chain's validity window is checked again at `now`.
pub fn verify_report_with_vek(
    vek: &VerifiedVek,
    report: &[u8],
    policy: &SnpPolicy,
    now: u64,
) -> Result<VerifiedSnpReport, SnpError> {
    let report = SnpReport::parse(report)?;
    verify_parsed_report(vek, &report, policy, now)
}

fn verify_parsed_report(
    vek: &VerifiedVek,
    report: &SnpReport,
    policy: &SnpPolicy,
    now: u64,
) -> Result<VerifiedSnpReport, SnpError> {
    vek.check_time(now)?;
    let which = match vek.kind {
        VekKind::Vcek => "VCEK",
        VekKind::Vlek => "VLEK",
    };
    if report.signature_algo() != report::SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(SnpError::UnsupportedSignatureAlgorithm {
            got: report.signature_algo(),
        });
    }
    let (r, s) = report.signature_be()?;
    // ECDSA P-384/SHA-384 over the exact signed bytes, with ring: the fastest backend
    // measured (BENCHMARKS.md). r or s out of range fails like a wrong signature.
    let mut sig = [0u8; 96];
    sig[..48].copy_from_slice(&r);
    sig[48..].copy_from_slice(&s);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_FIXED,
        &vek.key_sec1,
    )
    .verify(report.signed_bytes(), &sig)
    .map_err(|_| SnpError::BadReportSignature { which })?;

    let expected_key = match vek.kind {
        VekKind::Vcek => SigningKey::Vcek,
        VekKind::Vlek => SigningKey::Vlek,
    };
    if report.signing_key() != expected_key {
        return Err(SnpError::SigningKeyMismatch {
            report: report.signing_key(),
            chain: vek.kind,
        });
    }
    let reported_tcb = TcbVersion::decode(report.reported_tcb_raw(), vek.product);
    if reported_tcb != vek.tcb {
        return Err(SnpError::TcbMismatch {
            which,
            report: reported_tcb,
            cert: vek.tcb,
        });
    }
    let chip_id = report.chip_id();
    if let Some(hwid) = &vek.hwid {
        let masked = report.mask_chip_key() || chip_id == [0u8; 64];
        if masked {
            if !policy.allow_masked_chip_id {
                return Err(SnpPolicyViolation::ChipIdMasked.into());
            }
        } else {
            // Turin hwIDs are 8 bytes: the chip ID's first 8, the rest zero.
            let n = hwid.len().min(64);
            let matches = hwid.len() <= 64
                && chip_id[..n] == hwid[..]
                && chip_id[n..].iter().all(|&b| b == 0);
            if !matches {
                return Err(SnpError::ChipIdMismatch {
                    report: hex::encode(chip_id),
                    cert: hex::encode(hwid),
                });
            }
        }
    }
    policy.check(report, vek.product)?;
    Ok(VerifiedSnpReport {
        product: vek.product,
        signing_key: vek.kind,
        version: report.version(),
        measurement: report.measurement(),
        report_data: report.report_data(),
        host_data: report.host_data(),
        vmpl: report.vmpl(),
        guest_policy: report.policy().0,
        reported_tcb,
        chip_id,
        vek_sha256: vek.vek_sha256,
    })
}
