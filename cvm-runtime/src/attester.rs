//! Hardware evidence for a given `report_data`: the [`Attester`] trait and its
//! implementations, chosen by configuration ([`crate::config::AttesterKind`]).
//!
//! - [`ConfigFsTsm`]: the Linux configfs-tsm report interface
//!   (`/sys/kernel/config/tsm/report`, Documentation/ABI/testing/configfs-tsm). One entry
//!   directory is made per report; `inblob` takes the 64-byte report data, `outblob` gives
//!   the report (SEV-SNP, provider `sev_guest`) or quote (TDX, provider `tdx_guest`), and
//!   `auxblob` the SEV-SNP certificate table. The root is configurable so tests can point it
//!   at an ordinary directory.
//! - [`SevGuest`]: `/dev/sev-guest` through the `sev` crate (`SNP_GET_EXT_REPORT`).
//! - `SimulatedAttester`: the simulated SEV-SNP TEE of `lucent_verifier::simulated`, only in
//!   builds with the `dangerous-simulated-tee` feature and only behind
//!   `dangerous_simulated_tee`; its evidence verifies only for verifiers that opted into the
//!   simulated root.
//!
//! The real ones fail with a clear message naming the missing device or directory where the
//! hardware is absent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lucent_verifier::bundle::BundleEvidence;
#[cfg(feature = "dangerous-simulated-tee")]
use lucent_verifier::simulated::{SimulatedReportRequest, SimulatedTee};
use lucent_verifier::snp::{SnpCertChain, SnpEvidence};
use lucent_verifier::statement::{Measurement, Platform};

/// SEV-SNP report length.
pub const SNP_REPORT_LEN: usize = 1184;
/// Offset of the launch measurement in an SEV-SNP report.
const SNP_MEASUREMENT_OFFSET: usize = 0x90;
/// Largest blob read back from configfs-tsm (a TDX quote with certification data, or the
/// SEV-SNP certificate table, is a few KiB to tens of KiB).
const MAX_TSM_BLOB: u64 = 1 << 20;

/// Why evidence could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The interface is not there (no such hardware, or not a confidential VM).
    #[error("{what} is not available at {path}: {reason} (is this a confidential VM with the guest driver loaded?)")]
    Unavailable {
        /// Which interface.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The interface answered something this runtime cannot use.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which interface.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The configuration does not allow it.
    #[error("{0}")]
    Config(String),
}

/// Evidence and the measurement it reports.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The evidence, as it goes into a bundle.
    pub evidence: BundleEvidence,
    /// The platform measurement the evidence reports (what the log is searched for).
    pub measurement: Measurement,
}

/// Produces hardware evidence binding a 64-byte `report_data`.
pub trait Attester: Send + Sync {
    /// A short name for logs (`configfs-tsm`, `sev-guest`, `simulated`).
    fn name(&self) -> &'static str;
    /// Evidence with `report_data` bound.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError>;
}

fn snp_measurement(report: &[u8]) -> Result<Measurement, AttestError> {
    if report.len() != SNP_REPORT_LEN {
        return Err(AttestError::Malformed {
            what: "SEV-SNP report",
            reason: format!("{} bytes, want {SNP_REPORT_LEN}", report.len()),
        });
    }
    Measurement::new(
        Platform::SevSnp,
        &report[SNP_MEASUREMENT_OFFSET..SNP_MEASUREMENT_OFFSET + 48],
    )
    .map_err(|e| AttestError::Malformed {
        what: "SEV-SNP report",
        reason: e.to_string(),
    })
}

/// MRTD ‖ RTMR0..3 of a TDX quote v4 or v5 (Intel TDX DCAP quote layout).
fn tdx_measurement(quote: &[u8]) -> Result<Measurement, AttestError> {
    let bad = |reason: String| AttestError::Malformed {
        what: "TDX quote",
        reason,
    };
    if quote.len() < 2 {
        return Err(bad("shorter than its version".into()));
    }
    let version = u16::from_le_bytes([quote[0], quote[1]]);
    // Header 48 bytes; v5 adds a body descriptor (type u16, size u32).
    let body = match version {
        4 => 48,
        5 => 48 + 6,
        v => return Err(bad(format!("quote version {v}, want 4 or 5"))),
    };
    // TD report body: TEE_TCB_SVN 16, MRSEAM 48, MRSIGNERSEAM 48, SEAMATTRIBUTES 8,
    // TDATTRIBUTES 8, XFAM 8, MRTD 48, MRCONFIGID 48, MROWNER 48, MROWNERCONFIG 48, RTMR 4×48.
    let mrtd = body + 16 + 48 + 48 + 8 + 8 + 8;
    let rtmr = mrtd + 4 * 48;
    if quote.len() < rtmr + 4 * 48 {
        return Err(bad(format!(
            "{} bytes, too short for a TD report",
            quote.len()
        )));
    }
    let mut m = quote[mrtd..mrtd + 48].to_vec();
    m.extend_from_slice(&quote[rtmr..rtmr + 4 * 48]);
    Measurement::new(Platform::Tdx, &m).map_err(|e| bad(e.to_string()))
}

/// The certificate GUIDs of the SEV-SNP extended report's table (AMD GHCB spec, table 21),
/// in the byte order the kernel ABI carries them.
const GUID_ARK: [u8; 16] = guid("c0b406a4a803495297433fb6014cd0ae");
const GUID_ASK: [u8; 16] = guid("4ab7b379bbac4fe4a02f05aef327c782");
const GUID_VCEK: [u8; 16] = guid("63da758de6644564adc5f4b93be8accd");
const GUID_VLEK: [u8; 16] = guid("a8074bc2a25a483eaae639c045a0b8a1");

const fn guid(hex: &str) -> [u8; 16] {
    let b = hex.as_bytes();
    let mut out = [0u8; 16];
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let hi = nibble(b[i]);
        let lo = nibble(b[i + 1]);
        out[n] = hi << 4 | lo;
        n += 1;
        i += 2;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    }
}

/// Parses the SEV-SNP certificate table (entries of GUID 16 ‖ offset u32 ‖ length u32, ended
/// by an all-zero entry; offsets from the table's start) into a chain.
pub fn parse_snp_cert_table(table: &[u8]) -> Result<SnpCertChain, AttestError> {
    let bad = |reason: String| AttestError::Malformed {
        what: "SEV-SNP certificate table",
        reason,
    };
    let (mut ark, mut ask, mut vek) = (None, None, None);
    let mut at = 0usize;
    loop {
        let entry = table
            .get(at..at + 24)
            .ok_or_else(|| bad("no terminating entry".into()))?;
        let mut g = [0u8; 16];
        g.copy_from_slice(&entry[..16]);
        let offset = u32::from_le_bytes([entry[16], entry[17], entry[18], entry[19]]) as usize;
        let length = u32::from_le_bytes([entry[20], entry[21], entry[22], entry[23]]) as usize;
        if g == [0u8; 16] {
            break;
        }
        let data = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .ok_or_else(|| bad(format!("entry at {at} points outside the table")))?
            .to_vec();
        match g {
            GUID_ARK => ark = Some(data),
            GUID_ASK => ask = Some(data),
            GUID_VCEK | GUID_VLEK => vek = Some(data),
            _ => {}
        }
        at += 24;
    }
    Ok(SnpCertChain {
        vek_der: vek.ok_or_else(|| bad("no VCEK or VLEK".into()))?,
        intermediate_der: ask,
        ark_der: ark,
    })
}

/// The Linux configfs-tsm report interface (SEV-SNP through `sev_guest`, TDX through
/// `tdx_guest`).
#[derive(Debug)]
pub struct ConfigFsTsm {
    root: PathBuf,
    tdx_collateral: Option<Vec<u8>>,
    counter: AtomicU64,
}

impl ConfigFsTsm {
    /// The interface under `root` (normally `/sys/kernel/config/tsm/report`). TDX quotes need
    /// their DCAP collateral (`QuoteCollateralV3` JSON), fetched by the operator beforehand.
    pub fn new(root: &Path, tdx_collateral: Option<Vec<u8>>) -> Result<Self, AttestError> {
        std::fs::metadata(root).map_err(|e| AttestError::Unavailable {
            what: "configfs-tsm",
            path: root.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(ConfigFsTsm {
            root: root.to_owned(),
            tdx_collateral,
            counter: AtomicU64::new(0),
        })
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, AttestError> {
        use std::io::Read as _;
        let f = std::fs::File::open(path).map_err(|e| AttestError::Unavailable {
            what: "configfs-tsm",
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut out = Vec::new();
        f.take(MAX_TSM_BLOB + 1)
            .read_to_end(&mut out)
            .map_err(|e| AttestError::Unavailable {
                what: "configfs-tsm",
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if out.len() as u64 > MAX_TSM_BLOB {
            return Err(AttestError::Malformed {
                what: "configfs-tsm",
                reason: format!("{} is over {MAX_TSM_BLOB} bytes", path.display()),
            });
        }
        Ok(out)
    }
}

impl Attester for ConfigFsTsm {
    fn name(&self) -> &'static str {
        "configfs-tsm"
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let entry = self.root.join(format!("lucent-{}-{n}", std::process::id()));
        let unavailable = |path: &Path, e: std::io::Error| AttestError::Unavailable {
            what: "configfs-tsm",
            path: path.to_owned(),
            reason: e.to_string(),
        };
        // configfs makes the entry's attribute files on mkdir; the directory is the only
        // state, removed again below (it lives in kernel memory, not on a disk).
        std::fs::create_dir(&entry).map_err(|e| unavailable(&entry, e))?;
        let result = (|| {
            let inblob = entry.join("inblob");
            std::fs::write(&inblob, report_data).map_err(|e| unavailable(&inblob, e))?;
            let provider = self.read(&entry.join("provider"))?;
            let provider = String::from_utf8_lossy(&provider).trim().to_owned();
            let outblob = self.read(&entry.join("outblob"))?;
            match provider.as_str() {
                "sev_guest" => {
                    let measurement = snp_measurement(&outblob)?;
                    let certs = parse_snp_cert_table(&self.read(&entry.join("auxblob"))?)?;
                    Ok(Evidence {
                        evidence: BundleEvidence::Snp(SnpEvidence {
                            report: outblob,
                            certs,
                        }),
                        measurement,
                    })
                }
                "tdx_guest" => {
                    let measurement = tdx_measurement(&outblob)?;
                    let collateral = self.tdx_collateral.clone().ok_or_else(|| {
                        AttestError::Config(
                            "TDX quote produced, but no tdx_collateral_file is configured \
                             (the DCAP collateral must be fetched by the operator)"
                                .into(),
                        )
                    })?;
                    Ok(Evidence {
                        evidence: BundleEvidence::Tdx {
                            quote: outblob,
                            collateral_json: collateral,
                        },
                        measurement,
                    })
                }
                other => Err(AttestError::Malformed {
                    what: "configfs-tsm",
                    reason: format!("unknown provider {other:?} (want sev_guest or tdx_guest)"),
                }),
            }
        })();
        let _ = std::fs::remove_dir(&entry);
        result
    }
}

/// `/dev/sev-guest` through the `sev` crate.
#[derive(Debug, Default)]
pub struct SevGuest {
    vmpl: u32,
}

/// The SEV-SNP guest device.
pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

impl SevGuest {
    /// Reports at VMPL `vmpl` (0 for a guest without an SVSM). Checks the device exists.
    pub fn new(vmpl: u32) -> Result<Self, AttestError> {
        std::fs::metadata(SEV_GUEST_DEVICE).map_err(|e| AttestError::Unavailable {
            what: "the SEV-SNP guest device",
            path: PathBuf::from(SEV_GUEST_DEVICE),
            reason: e.to_string(),
        })?;
        Ok(SevGuest { vmpl })
    }
}

impl Attester for SevGuest {
    fn name(&self) -> &'static str {
        "sev-guest"
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        use sev::firmware::host::CertType;
        let mut fw =
            sev::firmware::guest::Firmware::open().map_err(|e| AttestError::Unavailable {
                what: "the SEV-SNP guest device",
                path: PathBuf::from(SEV_GUEST_DEVICE),
                reason: e.to_string(),
            })?;
        let (report, certs) = fw
            .get_ext_report(None, Some(*report_data), Some(self.vmpl))
            .map_err(|e| AttestError::Malformed {
                what: "SNP_GET_EXT_REPORT",
                reason: e.to_string(),
            })?;
        let measurement = snp_measurement(&report)?;
        let certs = certs.unwrap_or_default();
        let find = |t: &[CertType]| {
            certs
                .iter()
                .find(|c| t.contains(&c.cert_type))
                .map(|c| c.data.clone())
        };
        let vek =
            find(&[CertType::VCEK, CertType::VLEK]).ok_or_else(|| AttestError::Malformed {
                what: "SNP_GET_EXT_REPORT",
                reason: "the host supplied no VCEK or VLEK certificate".into(),
            })?;
        Ok(Evidence {
            evidence: BundleEvidence::Snp(SnpEvidence {
                report,
                certs: SnpCertChain {
                    vek_der: vek,
                    intermediate_der: find(&[CertType::ASK]),
                    ark_der: find(&[CertType::ARK]),
                },
            }),
            measurement,
        })
    }
}

/// The simulated SEV-SNP TEE (tests and devnets only): real report format, signed by the
/// simulated chip key, with the measurement given at construction.
#[cfg(feature = "dangerous-simulated-tee")]
pub struct SimulatedAttester {
    tee: SimulatedTee,
    measurement: [u8; 48],
}

#[cfg(feature = "dangerous-simulated-tee")]
impl std::fmt::Debug for SimulatedAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedAttester")
            .field("measurement", &hex::encode(self.measurement))
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "dangerous-simulated-tee")]
impl SimulatedAttester {
    /// A simulated TEE reporting `measurement`. Only for `dangerous_simulated_tee`.
    pub fn dangerous_new(measurement: [u8; 48]) -> Result<Self, AttestError> {
        let tee = SimulatedTee::new().map_err(|e| AttestError::Config(e.to_string()))?;
        Ok(SimulatedAttester { tee, measurement })
    }
}

#[cfg(feature = "dangerous-simulated-tee")]
impl Attester for SimulatedAttester {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let ev = self
            .tee
            .attest(&SimulatedReportRequest::new(self.measurement, *report_data))
            .map_err(|e| AttestError::Malformed {
                what: "simulated TEE",
                reason: e.to_string(),
            })?;
        let measurement = snp_measurement(&ev.report)?;
        Ok(Evidence {
            evidence: BundleEvidence::Snp(ev),
            measurement,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn guids_match_the_ghcb_spec() {
        assert_eq!(
            hex::encode(GUID_ARK),
            "c0b406a4a803495297433fb6014cd0ae".replace(' ', "")
        );
        assert_eq!(hex::encode(GUID_VCEK), "63da758de6644564adc5f4b93be8accd");
    }

    #[test]
    fn cert_table_round_trip_and_bounds() {
        let mut t = Vec::new();
        let (vcek, ask) = (b"vcek-der".to_vec(), b"ask".to_vec());
        let data_at = 24 * 3;
        t.extend_from_slice(&GUID_VCEK);
        t.extend_from_slice(&(data_at as u32).to_le_bytes());
        t.extend_from_slice(&(vcek.len() as u32).to_le_bytes());
        t.extend_from_slice(&GUID_ASK);
        t.extend_from_slice(&((data_at + vcek.len()) as u32).to_le_bytes());
        t.extend_from_slice(&(ask.len() as u32).to_le_bytes());
        t.extend_from_slice(&[0u8; 24]);
        t.extend_from_slice(&vcek);
        t.extend_from_slice(&ask);
        let chain = parse_snp_cert_table(&t).unwrap();
        assert_eq!(chain.vek_der, vcek);
        assert_eq!(chain.intermediate_der, Some(ask));
        assert_eq!(chain.ark_der, None);
        // Every truncation fails cleanly.
        for n in 0..t.len() - 1 {
            let _ = parse_snp_cert_table(&t[..n]);
        }
        assert!(parse_snp_cert_table(&t[..24 * 3 - 1]).is_err());
    }

    #[test]
    fn absent_hardware_is_a_clear_error() {
        let e = ConfigFsTsm::new(Path::new("/nonexistent/tsm/report"), None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tsm/report"), "{e}");
        if std::fs::metadata(SEV_GUEST_DEVICE).is_err() {
            let e = SevGuest::new(0).unwrap_err();
            assert!(e.to_string().contains(SEV_GUEST_DEVICE), "{e}");
        }
    }

    #[test]
    fn configfs_tsm_against_a_directory() {
        // A plain directory stands in for configfs: the files a kernel would make on mkdir
        // cannot appear, so provider is missing and the error names it.
        let dir = tempfile::tempdir().unwrap();
        let tsm = ConfigFsTsm::new(dir.path(), None).unwrap();
        let e = tsm.attest(&[7; 64]).unwrap_err();
        assert!(e.to_string().contains("provider"), "{e}");
    }

    #[test]
    fn tdx_measurement_offsets() {
        let mut q = vec![0u8; 48 + 584];
        q[0] = 4;
        let mrtd = 48 + 16 + 48 + 48 + 24;
        q[mrtd] = 0xAA;
        q[mrtd + 4 * 48] = 0xBB;
        let m = tdx_measurement(&q).unwrap();
        assert_eq!(m.as_bytes()[0], 0xAA);
        assert_eq!(m.as_bytes()[48], 0xBB);
        assert!(tdx_measurement(&q[..300]).is_err());
    }
}
