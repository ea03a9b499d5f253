//! What a verified SEV-SNP report must also satisfy. Strict by default.
//!
//! Modelled on google/go-sev-guest `validate.Options`: guest policy bits, VMPL, minimum
//! TCBs (reported, committed, launch, current), minimum firmware, provisional firmware,
//! report version, signature algorithm, signing key kind, host data, IDs and digests.

use super::report::{
    FirmwareVersion, SigningKey, SnpReport, TcbVersion, SIG_ALGO_ECDSA_P384_SHA384,
};
use super::report::{Product, MAX_REPORT_VERSION, MIN_REPORT_VERSION};

/// A policy field the report failed, with the facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpPolicyViolation {
    /// The report was requested from a VMPL the policy does not allow.
    #[error("VMPL {got} not allowed (want {want})")]
    VmplNotAllowed {
        /// VMPL in the report.
        got: u32,
        /// VMPL the policy requires.
        want: u32,
    },
    /// The guest policy allows debugging (the hypervisor can read guest memory).
    #[error("guest policy allows debugging (policy {policy:#x})")]
    DebugAllowed {
        /// Raw guest policy.
        policy: u64,
    },
    /// The guest policy allows a migration agent.
    #[error("guest policy allows a migration agent (policy {policy:#x})")]
    MigrationAgentAllowed {
        /// Raw guest policy.
        policy: u64,
    },
    /// The guest policy allows SMT and the policy forbids it.
    #[error("guest policy allows SMT (policy {policy:#x})")]
    SmtAllowed {
        /// Raw guest policy.
        policy: u64,
    },
    /// A TCB component is below the minimum.
    #[error("{which} TCB {component} SPL {got} below minimum {min}")]
    TcbTooLow {
        /// `reported`, `committed`, `launch` or `current`.
        which: &'static str,
        /// Component name (`bootloader`, `tee`, `snp`, `microcode`, `fmc`).
        component: &'static str,
        /// Value in the report.
        got: u8,
        /// Minimum in the policy.
        min: u8,
    },
    /// A TCB component is below AMD's published floor for the product
    /// ([`TcbFloors`]): the platform runs firmware with a known break of SEV-SNP.
    #[error(
        "{which} TCB {component} SPL {got} is below {product}'s floor {min} \
         ({bulletin}): the platform lacks a published security fix"
    )]
    BelowFloor {
        /// `reported`, `committed`, `launch` or `current`.
        which: &'static str,
        /// Component name.
        component: &'static str,
        /// Value in the report.
        got: u8,
        /// The floor.
        min: u8,
        /// The product.
        product: Product,
        /// Where the floor comes from (bulletin and CVE).
        bulletin: &'static str,
    },
    /// With provisional firmware permitted, the committed TCB is above the current one
    /// (impossible on a genuine platform: committing only ever moves up to what runs).
    #[error("committed TCB {committed} is above the current TCB {current}")]
    CommittedAboveCurrent {
        /// Committed TCB.
        committed: TcbVersion,
        /// Current TCB.
        current: TcbVersion,
    },
    /// Current firmware older than the minimum.
    #[error("firmware {got} older than minimum {min}")]
    FirmwareTooOld {
        /// Current firmware in the report.
        got: FirmwareVersion,
        /// Minimum in the policy.
        min: FirmwareVersion,
    },
    /// Current firmware (or TCB) differs from the committed one: a provisional update that
    /// can still be rolled back.
    #[error("provisional firmware: current {current} / TCB {current_tcb:#x}, committed {committed} / TCB {committed_tcb:#x}")]
    ProvisionalFirmware {
        /// Current firmware version.
        current: FirmwareVersion,
        /// Committed firmware version.
        committed: FirmwareVersion,
        /// Raw current TCB.
        current_tcb: u64,
        /// Raw committed TCB.
        committed_tcb: u64,
    },
    /// Report version outside the policy's range.
    #[error("report version {got} not in {min}..={max}")]
    ReportVersionNotAllowed {
        /// Version in the report.
        got: u32,
        /// Policy minimum.
        min: u32,
        /// Policy maximum.
        max: u32,
    },
    /// Signature algorithm other than the one allowed.
    #[error("signature algorithm {got} not allowed (want {want})")]
    SignatureAlgorithmNotAllowed {
        /// `SIGNATURE_ALGO` in the report.
        got: u32,
        /// Allowed value.
        want: u32,
    },
    /// Signed by a VLEK and the policy requires a VCEK.
    #[error("report signed by {got}; policy allows only VCEK")]
    SigningKeyNotAllowed {
        /// Key kind in the report.
        got: SigningKey,
    },
    /// `HOST_DATA` differs from the policy's.
    #[error("host data {got} differs from required {want}")]
    HostDataMismatch {
        /// Hex of the report's host data.
        got: String,
        /// Hex of the required host data.
        want: String,
    },
    /// Guest SVN below the minimum.
    #[error("guest SVN {got} below minimum {min}")]
    GuestSvnTooLow {
        /// Guest SVN in the report.
        got: u32,
        /// Minimum in the policy.
        min: u32,
    },
    /// The chip ID is masked and the policy requires it.
    #[error("chip ID is masked (MASK_CHIP_ID); policy requires it")]
    ChipIdMasked,
    /// The chip is not in the policy's allowlist.
    #[error("chip ID {got} is not in the allowed list ({allowed} chips)")]
    ChipNotAllowed {
        /// Hex chip ID.
        got: String,
        /// How many chips the list holds.
        allowed: usize,
    },
    /// A field (family ID, image ID, ID key digest, author key digest) differs.
    #[error("{field} {got} differs from required {want}")]
    FieldMismatch {
        /// Field name.
        field: &'static str,
        /// Hex of the report's value.
        got: String,
        /// Hex of the required value.
        want: String,
    },
    /// The guest requires an ABI newer than the policy accepts, or older than it needs.
    #[error("guest policy ABI {got_major}.{got_minor} below minimum {min_major}.{min_minor}")]
    AbiTooOld {
        /// ABI major in the guest policy.
        got_major: u8,
        /// ABI minor in the guest policy.
        got_minor: u8,
        /// Policy minimum major.
        min_major: u8,
        /// Policy minimum minor.
        min_minor: u8,
    },
}

/// The lowest TCB AMD's security bulletins name as fixed, per product. A report below its
/// product's floor (in its reported, committed, launch or current TCB) is refused whatever
/// the release asks, because the platform's own attestation cannot be trusted there.
///
/// [`TcbFloors::AMD_SB_3019`], the default, is AMD-SB-3019 (CVE-2024-56161: improper
/// signature verification in the AMD CPU ROM microcode patch loader, which let a local
/// administrator load malicious microcode under SEV-SNP). AMD's fix is a firmware update
/// whose SNP SPL attestation reports: at least 0x18 (24) on Milan and 0x17 (23) on Genoa.
/// The microcode floors are the lowest fixed patch level across the parts that attest under
/// each product's AMD root, whose microcode SPL is the patch level's low byte: Milan-X
/// `0x0A001244` (SPL 0x44; Milan's own `0x0A0011DB` is higher) and, under Genoa's root,
/// the Zen 4c parts Bergamo and Siena (AMD's key distribution service issues their VCEKs
/// under Genoa), CPUID family 19h model A0h, `0x0AA00219` (SPL 0x19; Genoa's `0x0A101154`
/// and Genoa-X's `0x0A10124F` are higher). So no fixed part is refused; the SNP SPL is the
/// bar. (The same fixed patch levels are in fwupd's EntrySign table and in Linux's
/// microcode loader, `arch/x86/kernel/cpu/microcode/amd.c`.)
///
/// The bulletin names no Turin values (Zen 5 was not affected by it), so Turin has no floor
/// here: set one from later bulletins. The simulated TEE has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbFloors {
    /// Milan (3rd generation EPYC).
    pub milan: TcbVersion,
    /// Genoa (4th generation EPYC).
    pub genoa: TcbVersion,
    /// Turin (5th generation EPYC).
    pub turin: TcbVersion,
    /// The bulletin the floors come from, named in refusals.
    pub source: &'static str,
}

/// A Milan or Genoa TCB with these SNP and microcode SPLs, boot loader and TEE at zero.
const fn snp_and_microcode(snp: u8, microcode: u8) -> TcbVersion {
    TcbVersion {
        fmc: None,
        bootloader: 0,
        tee: 0,
        snp,
        microcode,
    }
}

/// Turin's layout (with an FMC field), all zero.
const TURIN_ZERO: TcbVersion = TcbVersion {
    fmc: Some(0),
    bootloader: 0,
    tee: 0,
    snp: 0,
    microcode: 0,
};

impl TcbFloors {
    /// AMD-SB-3019 (CVE-2024-56161). See the type's documentation for the values' sources.
    pub const AMD_SB_3019: TcbFloors = TcbFloors {
        milan: snp_and_microcode(0x18, 0x44),
        genoa: snp_and_microcode(0x17, 0x19),
        turin: TURIN_ZERO,
        source: "AMD-SB-3019, CVE-2024-56161",
    };

    /// No floor at all: for reports from before a fix (test vectors, archived evidence).
    /// Accepting such a report today means accepting a platform with a known break.
    pub const DANGEROUS_NONE: TcbFloors = TcbFloors {
        milan: snp_and_microcode(0, 0),
        genoa: snp_and_microcode(0, 0),
        turin: TURIN_ZERO,
        source: "no floor",
    };

    /// The floor for `product` (none for the simulated TEE).
    pub fn for_product(&self, product: Product) -> TcbVersion {
        match product {
            Product::Milan => self.milan,
            Product::Genoa => self.genoa,
            Product::Turin => self.turin,
            Product::Simulated => TcbVersion::default(),
        }
    }
}

impl Default for TcbFloors {
    fn default() -> Self {
        TcbFloors::AMD_SB_3019
    }
}

/// Policy for SEV-SNP reports. [`SnpPolicy::default`] is strict: VMPL 0, debug off, no
/// migration agent, no provisional firmware, VCEK or VLEK, report versions 2–5, ECDSA
/// P-384, chip ID not masked. TCB and firmware minima default to zero: set them from the
/// release you accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpPolicy {
    /// The only VMPL accepted.
    pub vmpl: u32,
    /// Accept a guest policy with DEBUG set.
    pub allow_debug: bool,
    /// Accept a guest policy with MIGRATE_MA set.
    pub allow_migrate_ma: bool,
    /// Accept a guest policy with SMT allowed (most hosts run SMT).
    pub allow_smt: bool,
    /// AMD's published floors per product, applied to every TCB in the report.
    pub tcb_floors: TcbFloors,
    /// Minimum `REPORTED_TCB`.
    pub min_reported_tcb: TcbVersion,
    /// Minimum `COMMITTED_TCB`.
    pub min_committed_tcb: TcbVersion,
    /// Minimum `LAUNCH_TCB`.
    pub min_launch_tcb: TcbVersion,
    /// Minimum `CURRENT_TCB`.
    pub min_current_tcb: TcbVersion,
    /// Minimum current firmware version.
    pub min_firmware: FirmwareVersion,
    /// Accept current firmware/TCB that differs from the committed one.
    pub permit_provisional_firmware: bool,
    /// Lowest report version accepted.
    pub min_report_version: u32,
    /// Highest report version accepted.
    pub max_report_version: u32,
    /// The only signature algorithm accepted.
    pub signature_algorithm: u32,
    /// Accept VLEK-signed reports.
    pub allow_vlek: bool,
    /// Accept a VCEK report whose chip ID is masked (no hwID cross-check possible).
    pub allow_masked_chip_id: bool,
    /// Required `HOST_DATA`, if any.
    pub host_data: Option<[u8; 32]>,
    /// Minimum guest SVN.
    pub min_guest_svn: u32,
    /// Required `FAMILY_ID`, if any.
    pub family_id: Option<[u8; 16]>,
    /// Required `IMAGE_ID`, if any.
    pub image_id: Option<[u8; 16]>,
    /// Required `ID_KEY_DIGEST`, if any.
    pub id_key_digest: Option<[u8; 48]>,
    /// Required `AUTHOR_KEY_DIGEST`, if any.
    pub author_key_digest: Option<[u8; 48]>,
    /// Minimum ABI (major, minor) in the guest policy.
    pub min_abi: (u8, u8),
    /// Only these chips (`CHIP_ID`), when not empty: pins a deployment to machines it knows.
    pub allowed_chip_ids: Vec<[u8; 64]>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self {
            vmpl: 0,
            allow_debug: false,
            allow_migrate_ma: false,
            allow_smt: true,
            tcb_floors: TcbFloors::default(),
            min_reported_tcb: TcbVersion::default(),
            min_committed_tcb: TcbVersion::default(),
            min_launch_tcb: TcbVersion::default(),
            min_current_tcb: TcbVersion::default(),
            min_firmware: FirmwareVersion::default(),
            permit_provisional_firmware: false,
            min_report_version: MIN_REPORT_VERSION,
            max_report_version: MAX_REPORT_VERSION,
            signature_algorithm: SIG_ALGO_ECDSA_P384_SHA384,
            allow_vlek: true,
            allow_masked_chip_id: false,
            host_data: None,
            min_guest_svn: 0,
            family_id: None,
            image_id: None,
            id_key_digest: None,
            author_key_digest: None,
            min_abi: (0, 0),
            allowed_chip_ids: Vec::new(),
        }
    }
}

fn field_eq<const N: usize>(
    field: &'static str,
    got: [u8; N],
    want: Option<[u8; N]>,
) -> Result<(), SnpPolicyViolation> {
    match want {
        Some(want) if want != got => Err(SnpPolicyViolation::FieldMismatch {
            field,
            got: hex::encode(got),
            want: hex::encode(want),
        }),
        _ => Ok(()),
    }
}

impl SnpPolicy {
    /// Checks `report` (already signature-verified) for `product`'s TCB layout. Returns the
    /// first violation, in a fixed order (VMPL first).
    pub fn check(&self, report: &SnpReport, product: Product) -> Result<(), SnpPolicyViolation> {
        if report.vmpl() != self.vmpl {
            return Err(SnpPolicyViolation::VmplNotAllowed {
                got: report.vmpl(),
                want: self.vmpl,
            });
        }
        let gp = report.policy();
        if gp.debug_allowed() && !self.allow_debug {
            return Err(SnpPolicyViolation::DebugAllowed { policy: gp.0 });
        }
        if gp.migrate_ma_allowed() && !self.allow_migrate_ma {
            return Err(SnpPolicyViolation::MigrationAgentAllowed { policy: gp.0 });
        }
        if gp.smt_allowed() && !self.allow_smt {
            return Err(SnpPolicyViolation::SmtAllowed { policy: gp.0 });
        }
        let (maj, min) = gp.abi();
        if (maj, min) < self.min_abi {
            return Err(SnpPolicyViolation::AbiTooOld {
                got_major: maj,
                got_minor: min,
                min_major: self.min_abi.0,
                min_minor: self.min_abi.1,
            });
        }
        let version = report.version();
        if version < self.min_report_version || version > self.max_report_version {
            return Err(SnpPolicyViolation::ReportVersionNotAllowed {
                got: version,
                min: self.min_report_version,
                max: self.max_report_version,
            });
        }
        if report.signature_algo() != self.signature_algorithm {
            return Err(SnpPolicyViolation::SignatureAlgorithmNotAllowed {
                got: report.signature_algo(),
                want: self.signature_algorithm,
            });
        }
        if report.signing_key() == SigningKey::Vlek && !self.allow_vlek {
            return Err(SnpPolicyViolation::SigningKeyNotAllowed {
                got: SigningKey::Vlek,
            });
        }
        // Every TCB in the report: AMD's floor for the product first, then the policy's own
        // minimum.
        let floor = self.tcb_floors.for_product(product);
        for (which, raw, min) in [
            (
                "reported",
                report.reported_tcb_raw(),
                &self.min_reported_tcb,
            ),
            (
                "committed",
                report.committed_tcb_raw(),
                &self.min_committed_tcb,
            ),
            ("launch", report.launch_tcb_raw(), &self.min_launch_tcb),
            ("current", report.current_tcb_raw(), &self.min_current_tcb),
        ] {
            let tcb = TcbVersion::decode(raw, product);
            if let Some((component, got, min)) = tcb.first_below(&floor) {
                return Err(SnpPolicyViolation::BelowFloor {
                    which,
                    component,
                    got,
                    min,
                    product,
                    bulletin: self.tcb_floors.source,
                });
            }
            if let Some((component, got, min)) = tcb.first_below(min) {
                return Err(SnpPolicyViolation::TcbTooLow {
                    which,
                    component,
                    got,
                    min,
                });
            }
        }
        let current = report.current_firmware();
        if current < self.min_firmware {
            return Err(SnpPolicyViolation::FirmwareTooOld {
                got: current,
                min: self.min_firmware,
            });
        }
        let committed = report.committed_firmware();
        let (committed_tcb, current_tcb) = (
            TcbVersion::decode(report.committed_tcb_raw(), product),
            TcbVersion::decode(report.current_tcb_raw(), product),
        );
        if committed > current || current_tcb.first_below(&committed_tcb).is_some() {
            return Err(SnpPolicyViolation::CommittedAboveCurrent {
                committed: committed_tcb,
                current: current_tcb,
            });
        }
        if !self.permit_provisional_firmware
            && (current != committed || report.current_tcb_raw() != report.committed_tcb_raw())
        {
            return Err(SnpPolicyViolation::ProvisionalFirmware {
                current,
                committed,
                current_tcb: report.current_tcb_raw(),
                committed_tcb: report.committed_tcb_raw(),
            });
        }
        if let Some(want) = self.host_data {
            if report.host_data() != want {
                return Err(SnpPolicyViolation::HostDataMismatch {
                    got: hex::encode(report.host_data()),
                    want: hex::encode(want),
                });
            }
        }
        if report.guest_svn() < self.min_guest_svn {
            return Err(SnpPolicyViolation::GuestSvnTooLow {
                got: report.guest_svn(),
                min: self.min_guest_svn,
            });
        }
        if !self.allowed_chip_ids.is_empty() && !self.allowed_chip_ids.contains(&report.chip_id()) {
            return Err(SnpPolicyViolation::ChipNotAllowed {
                got: hex::encode(report.chip_id()),
                allowed: self.allowed_chip_ids.len(),
            });
        }
        field_eq("family ID", report.family_id(), self.family_id)?;
        field_eq("image ID", report.image_id(), self.image_id)?;
        field_eq("ID key digest", report.id_key_digest(), self.id_key_digest)?;
        field_eq(
            "author key digest",
            report.author_key_digest(),
            self.author_key_digest,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCB of Milan's or Genoa's layout with the given SNP and microcode SPLs and boot
    /// loader and TEE SPLs that any shipped firmware exceeds.
    fn tcb(snp: u8, microcode: u8) -> TcbVersion {
        TcbVersion {
            bootloader: 9,
            tee: 9,
            ..snp_and_microcode(snp, microcode)
        }
    }

    #[test]
    fn every_fixed_part_under_a_root_passes_its_floor_and_unfixed_firmware_does_not() {
        let floors = TcbFloors::default();
        let genoa = floors.for_product(Product::Genoa);
        let milan = floors.for_product(Product::Milan);
        // The SB-3019 fixed microcode of each part, as its SPL (the patch level's low byte),
        // with the fixed SNP firmware.
        for (part, floor, snp, microcode) in [
            ("Milan 0x0A0011DB", milan, 0x18, 0xdb),
            ("Milan-X 0x0A001244", milan, 0x18, 0x44),
            ("Genoa 0x0A101154", genoa, 0x17, 0x54),
            ("Genoa-X 0x0A10124F", genoa, 0x17, 0x4f),
            ("Bergamo/Siena 0x0AA00219", genoa, 0x17, 0x19),
        ] {
            assert_eq!(tcb(snp, microcode).first_below(&floor), None, "{part}");
        }
        // SNP firmware from before the fix, whatever the microcode.
        assert_eq!(
            tcb(0x16, 0x54).first_below(&genoa),
            Some(("snp", 0x16, 0x17))
        );
        assert_eq!(
            tcb(0x17, 0xdb).first_below(&milan),
            Some(("snp", 0x17, 0x18))
        );
        // Bergamo/Siena microcode from before the fix (`0x0AA00215`, an older BIOS).
        assert_eq!(
            tcb(0x17, 0x15).first_below(&genoa),
            Some(("microcode", 0x15, 0x19))
        );
    }
}
