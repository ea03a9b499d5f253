//! `measure`: the expected SEV-SNP launch digest of a guest, from its published artifacts,
//! with the `sev` crate's measurement module (the same algorithm as AMD's
//! `sev-snp-measure`), and the check of a `release` statement against it.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use lucent_verifier::statement::{Platform, Release};
use serde_json::{json, Value};
use sev::measurement::snp::{snp_calc_launch_digest, SnpMeasurementArgs};
use sev::measurement::vcpu_types::CpuType;
use sev::measurement::vmsa::{GuestFeatures, VMMType};
use sev::parser::ByteParser as _;
use sha2::{Digest as _, Sha256};

use crate::AuditError;

/// Size of an SEV-SNP launch digest.
pub const SNP_MEASUREMENT_LEN: usize = 48;

/// Everything that goes into an SEV-SNP launch measurement.
#[derive(Debug, Clone)]
pub struct MeasureInputs {
    /// OVMF firmware image.
    pub ovmf: PathBuf,
    /// Kernel (measured through OVMF's SEV hashes table).
    pub kernel: Option<PathBuf>,
    /// Initrd (needs a kernel).
    pub initrd: Option<PathBuf>,
    /// Kernel command line (needs a kernel).
    pub append: Option<String>,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// vCPU type as QEMU names it (`EPYC-v4`, `EPYC-Milan`, …).
    pub vcpu_type: String,
    /// SEV features of the guest (`SEV_FEATURES`; 0x1 is SNP active only).
    pub guest_features: u64,
    /// VMM: `qemu`, `ec2` or `krun`.
    pub vmm_type: String,
}

/// The computed measurement and the digests a release statement carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// The launch digest.
    pub measurement: [u8; SNP_MEASUREMENT_LEN],
    /// SHA-256 of the OVMF image.
    pub firmware: [u8; 32],
    /// SHA-256 of the kernel (of nothing when absent).
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd (of nothing when absent).
    pub initrd: [u8; 32],
    /// SHA-256 of the command line as measured: its bytes and a trailing NUL.
    pub cmdline: [u8; 32],
}

fn sha256_file(p: &Path) -> Result<[u8; 32], AuditError> {
    let data = std::fs::read(p).map_err(|e| AuditError::io(p, e))?;
    Ok(Sha256::digest(&data).into())
}

/// SHA-256 of a command line as the SEV hashes table measures it (with a trailing NUL).
pub fn cmdline_digest(append: Option<&str>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(append.unwrap_or("").as_bytes());
    h.update([0u8]);
    h.finalize().into()
}

/// Computes the launch digest and artifact digests.
pub fn measure(i: &MeasureInputs) -> Result<Measured, AuditError> {
    if i.vcpus == 0 {
        return Err(AuditError::Usage("vcpus must be at least 1".into()));
    }
    if i.kernel.is_none() && (i.initrd.is_some() || i.append.is_some()) {
        return Err(AuditError::Usage(
            "--initrd and --append need --kernel".into(),
        ));
    }
    let vcpu_type = CpuType::try_from(i.vcpu_type.as_str())
        .map_err(|e| AuditError::Usage(format!("vCPU type {:?}: {e}", i.vcpu_type)))?;
    if i.vmm_type.eq_ignore_ascii_case("ec2") {
        // `sev` 8.0.0 sets RDX to 0 in EC2 VMSAs where AMD's `sev-snp-measure` 0.0.13 sets
        // 0x600 (found by tests/measure.rs): the two disagree, so we refuse rather than
        // print a measurement that may be wrong.
        return Err(AuditError::Measure(
            "VMM type ec2 is not supported: the sev crate (8.0.0) and sev-snp-measure (0.0.13) \
             disagree on the EC2 VMSA (RDX 0 vs 0x600)"
                .into(),
        ));
    }
    let vmm_type = VMMType::from_str(&i.vmm_type).map_err(|_| {
        AuditError::Usage(format!("VMM type {:?}: want qemu, ec2 or krun", i.vmm_type))
    })?;
    let guest_features = GuestFeatures::from_bytes(&i.guest_features.to_le_bytes())
        .map_err(|e| AuditError::Usage(format!("guest features: {e}")))?;
    for p in [Some(&i.ovmf), i.kernel.as_ref(), i.initrd.as_ref()]
        .into_iter()
        .flatten()
    {
        std::fs::metadata(p).map_err(|e| AuditError::io(p, e))?;
    }
    let ld = snp_calc_launch_digest(SnpMeasurementArgs {
        vcpus: i.vcpus,
        vcpu_type,
        ovmf_file: i.ovmf.clone(),
        guest_features,
        kernel_file: i.kernel.clone(),
        initrd_file: i.initrd.clone(),
        append: i.append.as_deref(),
        ovmf_hash_str: None,
        vmm_type: Some(vmm_type),
    })
    .map_err(|e| AuditError::Measure(e.to_string()))?;
    let bytes: Vec<u8> = ld
        .try_into()
        .map_err(|e: sev::error::MeasurementError| AuditError::Measure(e.to_string()))?;
    let measurement: [u8; SNP_MEASUREMENT_LEN] = bytes
        .try_into()
        .map_err(|_| AuditError::Measure("launch digest is not 48 bytes".into()))?;
    let empty: [u8; 32] = Sha256::digest([]).into();
    Ok(Measured {
        measurement,
        firmware: sha256_file(&i.ovmf)?,
        kernel: i
            .kernel
            .as_deref()
            .map(sha256_file)
            .transpose()?
            .unwrap_or(empty),
        initrd: i
            .initrd
            .as_deref()
            .map(sha256_file)
            .transpose()?
            .unwrap_or(empty),
        cmdline: cmdline_digest(i.append.as_deref()),
    })
}

/// Every field of `release` that differs from what was measured (empty: it matches).
pub fn compare_release(m: &Measured, i: &MeasureInputs, r: &Release) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |name: &str, want: String, got: String| {
        if want != got {
            bad.push(format!("{name}: release says {want}, inputs give {got}"));
        }
    };
    if r.measurement.platform() != Platform::SevSnp {
        check(
            "platform",
            r.measurement.platform().as_str().into(),
            "sev-snp".into(),
        );
    }
    check(
        "measurement",
        r.measurement.to_hex(),
        hex::encode(m.measurement),
    );
    check("firmware", hex::encode(r.firmware), hex::encode(m.firmware));
    check("kernel", hex::encode(r.kernel), hex::encode(m.kernel));
    check("initrd", hex::encode(r.initrd), hex::encode(m.initrd));
    check("cmdline", hex::encode(r.cmdline), hex::encode(m.cmdline));
    check("vcpus", r.vcpus.to_string(), i.vcpus.to_string());
    check(
        "vcpu-type",
        r.vcpu_type.to_ascii_lowercase(),
        i.vcpu_type.to_ascii_lowercase(),
    );
    check(
        "guest-features",
        r.guest_features.to_string(),
        i.guest_features.to_string(),
    );
    check(
        "vmm-type",
        r.vmm_type.to_ascii_lowercase(),
        i.vmm_type.to_ascii_lowercase(),
    );
    bad
}

/// JSON form of a measurement.
pub fn to_json(m: &Measured, i: &MeasureInputs) -> Value {
    json!({
        "platform": "sev-snp",
        "measurement": hex::encode(m.measurement),
        "firmware": hex::encode(m.firmware),
        "kernel": hex::encode(m.kernel),
        "initrd": hex::encode(m.initrd),
        "cmdline": hex::encode(m.cmdline),
        "vcpus": i.vcpus,
        "vcpu_type": i.vcpu_type,
        "guest_features": i.guest_features,
        "vmm_type": i.vmm_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_digest_includes_the_nul() {
        // SHA-256 of a single NUL byte (independent constant).
        assert_eq!(
            hex::encode(cmdline_digest(None)),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn bad_inputs_are_usage_errors() {
        let i = MeasureInputs {
            ovmf: "/nonexistent/OVMF.fd".into(),
            kernel: None,
            initrd: None,
            append: Some("console=ttyS0".into()),
            vcpus: 1,
            vcpu_type: "EPYC-v4".into(),
            guest_features: 1,
            vmm_type: "qemu".into(),
        };
        assert!(matches!(measure(&i), Err(AuditError::Usage(_))));
        let i = MeasureInputs {
            append: None,
            vcpu_type: "pentium".into(),
            ..i
        };
        assert!(matches!(measure(&i), Err(AuditError::Usage(_))));
        let i = MeasureInputs {
            vcpu_type: "EPYC-v4".into(),
            ..i
        };
        assert!(matches!(measure(&i), Err(AuditError::Io { .. })));
    }
}
