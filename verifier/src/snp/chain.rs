//! The AMD certificate chain: VCEK (or VLEK via ASVK) → ASK → ARK, with the ARK pinned by
//! SHA-256 fingerprint per product.
//!
//! Signatures (RSA-PSS/SHA-384) are checked with the `sev` crate; fields (validity, names,
//! AMD TCB and hwID extensions, CRLs) are read with `x509-parser`, which accepts the serial
//! number 0 that every real VCEK and VLEK carries.

use sev::certs::snp::{Certificate as SevCertificate, Verifiable};
use sha2::{Digest, Sha256, Sha384};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::report::{Product, TcbVersion};
use super::SnpError;

/// SHA-256 of the DER ARK-Milan certificate (AMD KDS; virtee/sev builtin).
pub const ARK_MILAN_SHA256: [u8; 32] =
    hex32("69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd");
/// SHA-256 of the DER ARK-Genoa certificate.
pub const ARK_GENOA_SHA256: [u8; 32] =
    hex32("4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1");
/// SHA-256 of the DER ARK-Turin certificate.
pub const ARK_TURIN_SHA256: [u8; 32] =
    hex32("1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a");
/// SHA-256 of the DER ARK of Lucent's simulated TEE (`tests/data/simulated/ark.der`). Known
/// in every build, so that evidence carrying that root is refused with
/// [`SnpError::SimulatedRootNotTrusted`] even where the simulated TEE is not compiled in.
pub const ARK_SIMULATED_SHA256: [u8; 32] =
    hex32("21117eb03a93e2ef81b46a43d739d2b974a4205df37d1c43ce530142622fce78");

const ARK_MILAN: &[u8] = include_bytes!("roots/milan/ark.der");
const ASK_MILAN: &[u8] = include_bytes!("roots/milan/ask.der");
const ARK_GENOA: &[u8] = include_bytes!("roots/genoa/ark.der");
const ASK_GENOA: &[u8] = include_bytes!("roots/genoa/ask.der");
const ARK_TURIN: &[u8] = include_bytes!("roots/turin/ark.der");
const ASK_TURIN: &[u8] = include_bytes!("roots/turin/ask.der");
#[cfg(feature = "dangerous-simulated-tee")]
pub(crate) const ARK_SIMULATED: &[u8] = include_bytes!("../../tests/data/simulated/ark.der");
#[cfg(feature = "dangerous-simulated-tee")]
pub(crate) const ASK_SIMULATED: &[u8] = include_bytes!("../../tests/data/simulated/ask.der");

const fn hex_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex digit in a constant"),
    }
}

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    assert!(b.len() == 64, "fingerprint constants are 32 bytes");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = hex_nibble(b[2 * i]) << 4 | hex_nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// OIDs of the AMD VCEK/VLEK extensions (AMD "VCEK certificate and KDS interface", 57230).
mod oid {
    pub const BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
    pub const TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
    pub const SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
    pub const UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
    pub const FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
    pub const HW_ID: &str = "1.3.6.1.4.1.3704.1.4";
}

/// A root the verifier trusts: an ARK pinned by fingerprint, with its ASK.
#[derive(Clone, Debug)]
pub struct PinnedRoot {
    /// Product line of this root.
    pub product: Product,
    /// DER ARK certificate.
    pub ark_der: &'static [u8],
    /// DER ASK certificate, used when evidence carries no intermediate for a VCEK.
    pub ask_der: &'static [u8],
    /// Expected SHA-256 of `ark_der`.
    pub fingerprint: [u8; 32],
}

/// Which AMD roots to trust. [`SnpTrust::amd`] pins Milan, Genoa and Turin; the simulated
/// TEE's root is added only by `SnpTrust::dangerous_trust_simulated_root`, which exists only
/// with the `dangerous-simulated-tee` feature.
#[derive(Clone, Debug)]
pub struct SnpTrust {
    roots: Vec<PinnedRoot>,
    #[cfg(feature = "dangerous-simulated-tee")]
    simulated_trusted: bool,
}

impl Default for SnpTrust {
    fn default() -> Self {
        Self::amd()
    }
}

/// The role of a certificate in the chain, for error messages.
fn role(kind: VekKind, intermediate: bool) -> &'static str {
    match (kind, intermediate) {
        (VekKind::Vcek, false) => "VCEK",
        (VekKind::Vlek, false) => "VLEK",
        (VekKind::Vcek, true) => "ASK",
        (VekKind::Vlek, true) => "ASVK",
    }
}

/// Which endorsement key a certificate certifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VekKind {
    /// Versioned Chip Endorsement Key, issued by the ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key, issued by the ASVK.
    Vlek,
}

/// The certificates that travel with a report. The ARK, if present, is only compared with
/// the pinned one: a root carried in evidence is never trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpCertChain {
    /// DER VCEK or VLEK.
    pub vek_der: Vec<u8>,
    /// DER ASK (for a VCEK) or ASVK (for a VLEK). For a VCEK it may be left out: the
    /// pinned product's ASK is used.
    pub intermediate_der: Option<Vec<u8>>,
    /// DER ARK as carried by the evidence; must equal a pinned ARK if present.
    pub ark_der: Option<Vec<u8>>,
}

/// A VCEK or VLEK whose chain verified to a pinned ARK at some time. Keep it to verify
/// further reports from the same chip cheaply ([`super::verify_report_with_vek`]); its
/// validity window is checked again on each use.
#[derive(Clone, Debug)]
pub struct VerifiedVek {
    /// Product of the pinned root that verified the chain.
    pub product: Product,
    /// VCEK or VLEK.
    pub kind: VekKind,
    /// The VEK's public key, SEC1 uncompressed, checked to be a P-384 point.
    pub(crate) key_sec1: Vec<u8>,
    /// TCB from the certificate's extensions.
    pub tcb: TcbVersion,
    /// hwID extension (VCEK only).
    pub hwid: Option<Vec<u8>>,
    /// Latest `notBefore` of the three certificates (Unix seconds).
    pub not_before: i64,
    /// Earliest `notAfter` of the three certificates (Unix seconds).
    pub not_after: i64,
    /// Which certificate has the earliest `notAfter`.
    pub(crate) first_to_expire: &'static str,
    /// Which certificate has the latest `notBefore`.
    pub(crate) last_to_start: &'static str,
    /// SHA-256 of the VEK certificate DER.
    pub vek_sha256: [u8; 32],
}

impl VerifiedVek {
    /// Checks the chain's validity window at `now` (Unix seconds).
    pub fn check_time(&self, now: u64) -> Result<(), SnpError> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        if now < self.not_before {
            return Err(SnpError::CertificateNotYetValid {
                which: self.last_to_start,
                not_before: self.not_before,
                now,
            });
        }
        if now > self.not_after {
            return Err(SnpError::CertificateExpired {
                which: self.first_to_expire,
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }
}

fn parse_cert<'a>(which: &'static str, der: &'a [u8]) -> Result<X509Certificate<'a>, SnpError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(SnpError::CertificateParse {
            which,
            reason: "trailing bytes after the certificate".into(),
        }),
        Err(e) => Err(SnpError::CertificateParse {
            which,
            reason: e.to_string(),
        }),
    }
}

fn sev_cert(which: &'static str, der: &[u8]) -> Result<SevCertificate, SnpError> {
    SevCertificate::from_der(der).map_err(|e| SnpError::CertificateParse {
        which,
        reason: e.to_string(),
    })
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Reads a small non-negative DER INTEGER (an AMD SPL) from an extension value.
fn der_small_uint(which: &'static str, oid: &'static str, v: &[u8]) -> Result<u8, SnpError> {
    let bad = || SnpError::CertificateExtension {
        which,
        oid,
        reason: "not a DER INTEGER in 0..=255",
    };
    match v {
        [0x02, 0x01, x] if *x < 0x80 => Ok(*x),
        [0x02, 0x02, 0x00, x] if *x >= 0x80 => Ok(*x),
        _ => Err(bad()),
    }
}

fn extension<'a>(cert: &'a X509Certificate<'_>, oid: &str) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .map(|e| e.value)
}

fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

fn validity(cert: &X509Certificate<'_>) -> (i64, i64) {
    (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    )
}

impl SnpTrust {
    /// Trusts AMD's production roots for Milan, Genoa and Turin, pinned by fingerprint.
    pub fn amd() -> Self {
        Self {
            roots: vec![
                PinnedRoot {
                    product: Product::Milan,
                    ark_der: ARK_MILAN,
                    ask_der: ASK_MILAN,
                    fingerprint: ARK_MILAN_SHA256,
                },
                PinnedRoot {
                    product: Product::Genoa,
                    ark_der: ARK_GENOA,
                    ask_der: ASK_GENOA,
                    fingerprint: ARK_GENOA_SHA256,
                },
                PinnedRoot {
                    product: Product::Turin,
                    ark_der: ARK_TURIN,
                    ask_der: ASK_TURIN,
                    fingerprint: ARK_TURIN_SHA256,
                },
            ],
            #[cfg(feature = "dangerous-simulated-tee")]
            simulated_trusted: false,
        }
    }

    /// Also trusts the root of Lucent's simulated TEE. **Dangerous**: anyone can produce
    /// evidence under it (its keys are public test fixtures). Never set in a release
    /// configuration; for tests and local devnets only. Exists only with the
    /// `dangerous-simulated-tee` feature.
    #[cfg(feature = "dangerous-simulated-tee")]
    pub fn dangerous_trust_simulated_root(mut self) -> Self {
        self.simulated_trusted = true;
        self
    }

    /// Whether the simulated root is trusted (always `false` without the
    /// `dangerous-simulated-tee` feature).
    pub fn trusts_simulated_root(&self) -> bool {
        #[cfg(feature = "dangerous-simulated-tee")]
        return self.simulated_trusted;
        #[cfg(not(feature = "dangerous-simulated-tee"))]
        false
    }

    /// The pinned roots (the simulated one included when trusted).
    pub fn roots(&self) -> Vec<PinnedRoot> {
        #[allow(unused_mut)]
        let mut roots = self.roots.clone();
        #[cfg(feature = "dangerous-simulated-tee")]
        if self.simulated_trusted {
            roots.push(simulated_root());
        }
        roots
    }

    /// Verifies a VCEK/VLEK chain to a pinned ARK at `now` (Unix seconds). Of the AMD CRLs
    /// given (DER), the one issued by the chain's ARK is applied to the intermediate: it must
    /// be signed by that ARK and current at `now`. CRLs of other products are not applied;
    /// one that does not parse is an error.
    pub fn verify_chain(
        &self,
        chain: &SnpCertChain,
        crls: &[&[u8]],
        now: u64,
    ) -> Result<VerifiedVek, SnpError> {
        let vek = parse_cert("VEK", &chain.vek_der)?;
        let kind = match common_name(&vek).as_str() {
            "SEV-VCEK" => VekKind::Vcek,
            "SEV-VLEK" => VekKind::Vlek,
            other => {
                return Err(SnpError::UnexpectedCertificate {
                    which: "VEK",
                    subject: other.to_string(),
                })
            }
        };
        let vek_role = role(kind, false);
        let int_role = role(kind, true);

        // Intermediate: from the evidence, or the pinned product's ASK for a VCEK.
        let roots = self.roots();
        let int_der: &[u8] = match (&chain.intermediate_der, kind) {
            (Some(der), _) => der,
            (None, VekKind::Vlek) => return Err(SnpError::MissingCertificate { which: "ASVK" }),
            (None, VekKind::Vcek) => {
                let mut found = None;
                // The simulated ASK is looked at too, so that a simulated VCEK without its
                // intermediate reaches the clear "simulated root not trusted" error below.
                #[cfg(feature = "dangerous-simulated-tee")]
                let candidates = roots
                    .iter()
                    .cloned()
                    .chain(std::iter::once(simulated_root()));
                #[cfg(not(feature = "dangerous-simulated-tee"))]
                let candidates = roots.iter().cloned();
                for root in candidates {
                    let ask = parse_cert("ASK", root.ask_der)?;
                    if ask.subject().as_raw() == vek.issuer().as_raw() {
                        found = Some(root.ask_der);
                        break;
                    }
                }
                found.ok_or_else(|| SnpError::UnknownIssuer {
                    which: vek_role,
                    issuer: vek.issuer().to_string(),
                })?
            }
        };
        let int = parse_cert(int_role, int_der)?;
        let int_is_asvk = common_name(&int).contains("VLEK");
        if int_is_asvk != (kind == VekKind::Vlek) {
            return Err(SnpError::UnexpectedCertificate {
                which: int_role,
                subject: common_name(&int),
            });
        }
        if int.subject().as_raw() != vek.issuer().as_raw() {
            return Err(SnpError::IssuerMismatch {
                which: vek_role,
                issuer: vek.issuer().to_string(),
                expected: int.subject().to_string(),
            });
        }

        // Root: a pinned ARK whose subject issued the intermediate. Never from the evidence.
        let mut root = None;
        for r in &roots {
            let ark = parse_cert("ARK", r.ark_der)?;
            if ark.subject().as_raw() == int.issuer().as_raw() {
                root = Some(r.clone());
                break;
            }
        }
        let root = match root {
            Some(r) => r,
            None => {
                if chain.ark_der.as_deref().map(fingerprint) == Some(ARK_SIMULATED_SHA256) {
                    return Err(SnpError::SimulatedRootNotTrusted);
                }
                #[cfg(feature = "dangerous-simulated-tee")]
                if parse_cert("ARK", ARK_SIMULATED)?.subject().as_raw() == int.issuer().as_raw() {
                    return Err(SnpError::SimulatedRootNotTrusted);
                }
                return Err(SnpError::UnknownIssuer {
                    which: int_role,
                    issuer: int.issuer().to_string(),
                });
            }
        };
        if fingerprint(root.ark_der) != root.fingerprint {
            return Err(SnpError::PinnedRootCorrupt {
                product: root.product,
            });
        }
        if let Some(carried) = &chain.ark_der {
            let fp = fingerprint(carried);
            if fp != root.fingerprint {
                if fp == ARK_SIMULATED_SHA256 && !self.trusts_simulated_root() {
                    return Err(SnpError::SimulatedRootNotTrusted);
                }
                return Err(SnpError::UntrustedRoot {
                    fingerprint: hex::encode(fp),
                    product: root.product,
                });
            }
        }
        let ark = parse_cert("ARK", root.ark_der)?;

        // Signatures: ARK → intermediate → VEK (RSA-PSS/SHA-384, `sev`).
        let sev_ark = sev_cert("ARK", root.ark_der)?;
        let sev_int = sev_cert(int_role, int_der)?;
        let sev_vek = sev_cert(vek_role, &chain.vek_der)?;
        (&sev_ark, &sev_int)
            .verify()
            .map_err(|e| SnpError::ChainSignature {
                signer: "ARK",
                signee: int_role,
                reason: e.to_string(),
            })?;
        (&sev_int, &sev_vek)
            .verify()
            .map_err(|e| SnpError::ChainSignature {
                signer: int_role,
                signee: vek_role,
                reason: e.to_string(),
            })?;

        // Validity window: the intersection of the three certificates'.
        let mut not_before = (i64::MIN, "ARK");
        let mut not_after = (i64::MAX, "ARK");
        for (which, cert) in [("ARK", &ark), (int_role, &int), (vek_role, &vek)] {
            let (nb, na) = validity(cert);
            if nb > not_before.0 {
                not_before = (nb, which);
            }
            if na < not_after.0 {
                not_after = (na, which);
            }
        }

        // The VEK's public key: P-384 only.
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(sev_vek.public_key_sec1())
            .map_err(|_| SnpError::VekKeyNotP384 { which: vek_role })?;
        let key_sec1 = key.to_encoded_point(false).as_bytes().to_vec();

        // TCB and hwID extensions.
        let spl = |oid: &'static str| -> Result<u8, SnpError> {
            let v = extension(&vek, oid).ok_or(SnpError::CertificateExtension {
                which: vek_role,
                oid,
                reason: "missing",
            })?;
            der_small_uint(vek_role, oid, v)
        };
        let tcb = TcbVersion {
            fmc: if root.product == Product::Turin {
                Some(spl(oid::FMC_SPL)?)
            } else {
                None
            },
            bootloader: spl(oid::BL_SPL)?,
            tee: spl(oid::TEE_SPL)?,
            snp: spl(oid::SNP_SPL)?,
            microcode: spl(oid::UCODE_SPL)?,
        };
        let hwid = match kind {
            VekKind::Vcek => Some(
                extension(&vek, oid::HW_ID)
                    .ok_or(SnpError::CertificateExtension {
                        which: vek_role,
                        oid: oid::HW_ID,
                        reason: "missing",
                    })?
                    .to_vec(),
            ),
            VekKind::Vlek => None,
        };

        let verified = VerifiedVek {
            product: root.product,
            kind,
            key_sec1,
            tcb,
            hwid,
            not_before: not_before.0,
            not_after: not_after.0,
            first_to_expire: not_after.1,
            last_to_start: not_before.1,
            vek_sha256: fingerprint(&chain.vek_der),
        };
        verified.check_time(now)?;

        for der in crls {
            let crl = parse_crl(der)?;
            if crl.issuer().as_raw() == ark.subject().as_raw() {
                check_crl(&crl, &ark, &int, int_role, now)?;
            }
        }
        Ok(verified)
    }

    /// Checks an AMD CRL when it is loaded: it must parse and be signed by one of the pinned
    /// ARKs, whose product it returns. Whether it is current is checked when it is applied.
    pub fn check_crl_issuer(&self, crl_der: &[u8]) -> Result<Product, SnpError> {
        let crl = parse_crl(crl_der)?;
        for root in self.roots() {
            let ark = parse_cert("ARK", root.ark_der)?;
            if crl.issuer().as_raw() == ark.subject().as_raw() {
                check_crl_signature(&crl, &ark)?;
                return Ok(root.product);
            }
        }
        Err(SnpError::Crl {
            reason: format!("issued by {}, which is no pinned ARK", crl.issuer()),
        })
    }
}

#[cfg(feature = "dangerous-simulated-tee")]
pub(crate) fn simulated_root() -> PinnedRoot {
    PinnedRoot {
        product: Product::Simulated,
        ark_der: ARK_SIMULATED,
        ask_der: ASK_SIMULATED,
        fingerprint: ARK_SIMULATED_SHA256,
    }
}

const RSASSA_PSS_OID: &str = "1.2.840.113549.1.1.10";

fn crl_err(reason: String) -> SnpError {
    SnpError::Crl { reason }
}

fn parse_crl(der: &[u8]) -> Result<CertificateRevocationList<'_>, SnpError> {
    match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => Ok(crl),
        Ok(_) => Err(crl_err("trailing bytes after the CRL".into())),
        Err(e) => Err(crl_err(e.to_string())),
    }
}

/// The CRL is signed (RSA-PSS/SHA-384) by `ark`.
fn check_crl_signature(
    crl: &CertificateRevocationList<'_>,
    ark: &X509Certificate<'_>,
) -> Result<(), SnpError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::signature::Verifier;

    if crl.issuer().as_raw() != ark.subject().as_raw() {
        return Err(crl_err(format!("issued by {}, not the ARK", crl.issuer())));
    }
    if crl.signature_algorithm.algorithm.to_id_string() != RSASSA_PSS_OID {
        return Err(crl_err("signature algorithm is not RSASSA-PSS".into()));
    }
    let key = rsa::RsaPublicKey::from_pkcs1_der(&ark.public_key().subject_public_key.data)
        .map_err(|e| crl_err(format!("ARK key: {e}")))?;
    let verifier = rsa::pss::VerifyingKey::<Sha384>::new(key);
    let sig = rsa::pss::Signature::try_from(crl.signature_value.data.as_ref())
        .map_err(|e| crl_err(format!("signature: {e}")))?;
    verifier
        .verify(crl.tbs_cert_list.as_ref(), &sig)
        .map_err(|_| crl_err("signature does not verify under the ARK".into()))
}

/// Applies an AMD CRL: signed by the ARK, current at `now`, and not listing the
/// intermediate's serial number.
fn check_crl(
    crl: &CertificateRevocationList<'_>,
    ark: &X509Certificate<'_>,
    int: &X509Certificate<'_>,
    int_role: &'static str,
    now: u64,
) -> Result<(), SnpError> {
    check_crl_signature(crl, ark)?;
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    if crl.last_update().timestamp() > now_i {
        return Err(crl_err(format!(
            "thisUpdate {} is after now {now_i}",
            crl.last_update().timestamp()
        )));
    }
    if let Some(next) = crl.next_update() {
        if next.timestamp() < now_i {
            return Err(crl_err(format!(
                "nextUpdate {} is before now {now_i}: the CRL file needs refreshing",
                next.timestamp()
            )));
        }
    }
    let serial = int.raw_serial();
    if crl
        .iter_revoked_certificates()
        .any(|r| r.raw_serial() == serial)
    {
        return Err(SnpError::Revoked {
            which: int_role,
            serial: hex::encode(serial),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIM_VCEK: &[u8] = include_bytes!("../../tests/data/simulated/vcek.der");
    const SIM_ASK: &[u8] = include_bytes!("../../tests/data/simulated/ask.der");
    const SIM_ARK: &[u8] = include_bytes!("../../tests/data/simulated/ark.der");
    /// Inside the simulated chain's validity.
    const NOW: u64 = 1_893_456_000;

    #[test]
    fn simulated_chains_are_refused_by_name_in_every_build() {
        assert_eq!(fingerprint(SIM_ARK), ARK_SIMULATED_SHA256);
        let chain = SnpCertChain {
            vek_der: SIM_VCEK.to_vec(),
            intermediate_der: Some(SIM_ASK.to_vec()),
            ark_der: Some(SIM_ARK.to_vec()),
        };
        let trust = SnpTrust::amd();
        assert!(!trust.trusts_simulated_root());
        assert_eq!(
            trust.verify_chain(&chain, &[], NOW).unwrap_err(),
            SnpError::SimulatedRootNotTrusted
        );
        assert!(trust
            .roots()
            .iter()
            .all(|r| r.fingerprint != ARK_SIMULATED_SHA256));
    }

    #[cfg(feature = "dangerous-simulated-tee")]
    #[test]
    fn the_simulated_root_is_trusted_only_when_asked() {
        let chain = SnpCertChain {
            vek_der: SIM_VCEK.to_vec(),
            intermediate_der: None,
            ark_der: None,
        };
        // Without the carried ARK the issuer names it.
        assert_eq!(
            SnpTrust::amd().verify_chain(&chain, &[], NOW).unwrap_err(),
            SnpError::SimulatedRootNotTrusted
        );
        let trust = SnpTrust::amd().dangerous_trust_simulated_root();
        assert!(trust.trusts_simulated_root());
        assert!(trust.verify_chain(&chain, &[], NOW).is_ok());
    }
}
