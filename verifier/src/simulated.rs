//! A simulated SEV-SNP TEE: real-format 1184-byte attestation reports signed (ECDSA P-384)
//! by a test VCEK whose chain goes to a committed test ARK/ASK (`tests/data/simulated/`).
//!
//! It lets the whole system run end to end without AMD hardware. Its private keys are
//! public test fixtures, so **anyone can forge evidence under it**: the verifier trusts it
//! only through [`crate::snp::SnpTrust::dangerous_trust_simulated_root`], and rejects it by
//! default with [`crate::snp::SnpError::SimulatedRootNotTrusted`].
//!
//! Compiled only with the `dangerous-simulated-tee` feature, like the trust method and the
//! embedded test certificates and key: a build without it cannot produce or accept such
//! evidence.
//!
//! The simulated chain uses the Milan TCB layout; its VCEK carries TCB
//! [`SIMULATED_TCB`] and hwID [`SIMULATED_CHIP_ID`], which reports must repeat.

use p384::ecdsa::signature::hazmat::PrehashSigner;
use p384::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha384};

use crate::snp::report::{write_signature, Product, TcbVersion, REPORT_LEN, SIGNED_LEN};
use crate::snp::{SnpCertChain, SnpEvidence, ARK_SIMULATED, ASK_SIMULATED};

const VCEK_DER: &[u8] = include_bytes!("../tests/data/simulated/vcek.der");
const VCEK_KEY_PKCS8: &[u8] = include_bytes!("../tests/data/simulated/vcek.key.pk8.der");

/// The TCB in the simulated VCEK's extensions (`bl=7 tee=0 snp=22 ucode=213`).
pub const SIMULATED_TCB: TcbVersion = TcbVersion {
    fmc: None,
    bootloader: 7,
    tee: 0,
    snp: 22,
    microcode: 213,
};

/// The hwID in the simulated VCEK: `"LUCENT-SIMULATED-CHIP-ID"`, zeros, then `0x01`.
pub const SIMULATED_CHIP_ID: [u8; 64] = {
    let mut id = [0u8; 64];
    let name = b"LUCENT-SIMULATED-CHIP-ID";
    let mut i = 0;
    while i < name.len() {
        id[i] = name[i];
        i += 1;
    }
    id[63] = 1;
    id
};

/// The simulated TEE could not start (its embedded test key is unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulated TEE key unusable: {reason}")]
pub struct SimulatedTeeError {
    /// What failed.
    pub reason: String,
}

/// What to put in a simulated report. [`SimulatedReportRequest::new`] gives a report that
/// passes [`crate::snp::SnpPolicy::default`]; change fields to produce bad ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedReportRequest {
    /// Report version (2..=5 are valid).
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy (default `0x30000`: SMT allowed, reserved bit 17 set).
    pub guest_policy: u64,
    /// Family ID.
    pub family_id: [u8; 16],
    /// Image ID.
    pub image_id: [u8; 16],
    /// VMPL of the request.
    pub vmpl: u32,
    /// Signature algorithm field (1 = ECDSA P-384/SHA-384).
    pub signature_algo: u32,
    /// Current TCB.
    pub current_tcb: TcbVersion,
    /// Reported TCB (must equal [`SIMULATED_TCB`] to verify).
    pub reported_tcb: TcbVersion,
    /// Committed TCB.
    pub committed_tcb: TcbVersion,
    /// Launch TCB.
    pub launch_tcb: TcbVersion,
    /// Report data (see [`crate::binding::report_data`]).
    pub report_data: [u8; 64],
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Host data.
    pub host_data: [u8; 32],
    /// Chip ID (must equal [`SIMULATED_CHIP_ID`] unless masked).
    pub chip_id: [u8; 64],
    /// `KEY_INFO.MASK_CHIP_KEY`.
    pub mask_chip_key: bool,
    /// `KEY_INFO.SIGNING_KEY` (0 = VCEK).
    pub signing_key: u8,
    /// Current firmware (major, minor, build).
    pub current_firmware: (u8, u8, u8),
    /// Committed firmware (major, minor, build).
    pub committed_firmware: (u8, u8, u8),
}

impl SimulatedReportRequest {
    /// A good report for `measurement` carrying `report_data`.
    pub fn new(measurement: [u8; 48], report_data: [u8; 64]) -> Self {
        Self {
            version: 3,
            guest_svn: 0,
            guest_policy: 0x30000,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            signature_algo: 1,
            current_tcb: SIMULATED_TCB,
            reported_tcb: SIMULATED_TCB,
            committed_tcb: SIMULATED_TCB,
            launch_tcb: SIMULATED_TCB,
            report_data,
            measurement,
            host_data: [0; 32],
            chip_id: SIMULATED_CHIP_ID,
            mask_chip_key: false,
            signing_key: 0,
            current_firmware: (1, 55, 21),
            committed_firmware: (1, 55, 21),
        }
    }
}

/// The simulated TEE: holds the test VCEK key.
pub struct SimulatedTee {
    key: p384::ecdsa::SigningKey,
}

impl core::fmt::Debug for SimulatedTee {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SimulatedTee { .. }")
    }
}

impl SimulatedTee {
    /// Loads the embedded test VCEK key.
    pub fn new() -> Result<Self, SimulatedTeeError> {
        let key = p384::ecdsa::SigningKey::from_pkcs8_der(VCEK_KEY_PKCS8).map_err(|e| {
            SimulatedTeeError {
                reason: e.to_string(),
            }
        })?;
        Ok(Self { key })
    }

    /// The simulated certificate chain (VCEK, ASK, ARK; all DER).
    pub fn cert_chain(&self) -> SnpCertChain {
        SnpCertChain {
            vek_der: VCEK_DER.to_vec(),
            intermediate_der: Some(ASK_SIMULATED.to_vec()),
            ark_der: Some(ARK_SIMULATED.to_vec()),
        }
    }

    /// Builds the report bytes for `req`, signed.
    pub fn report(
        &self,
        req: &SimulatedReportRequest,
    ) -> Result<[u8; REPORT_LEN], SimulatedTeeError> {
        let mut raw = [0u8; REPORT_LEN];
        let put = |raw: &mut [u8; REPORT_LEN], at: usize, b: &[u8]| {
            raw[at..at + b.len()].copy_from_slice(b);
        };
        let p = Product::Simulated;
        put(&mut raw, 0x00, &req.version.to_le_bytes());
        put(&mut raw, 0x04, &req.guest_svn.to_le_bytes());
        put(&mut raw, 0x08, &req.guest_policy.to_le_bytes());
        put(&mut raw, 0x10, &req.family_id);
        put(&mut raw, 0x20, &req.image_id);
        put(&mut raw, 0x30, &req.vmpl.to_le_bytes());
        put(&mut raw, 0x34, &req.signature_algo.to_le_bytes());
        put(&mut raw, 0x38, &req.current_tcb.encode(p).to_le_bytes());
        // PLATFORM_INFO: SMT enabled.
        put(&mut raw, 0x40, &1u64.to_le_bytes());
        let key_info = u32::from(req.mask_chip_key) << 1 | (u32::from(req.signing_key) & 7) << 2;
        put(&mut raw, 0x48, &key_info.to_le_bytes());
        put(&mut raw, 0x50, &req.report_data);
        put(&mut raw, 0x90, &req.measurement);
        put(&mut raw, 0xC0, &req.host_data);
        // REPORT_ID: derived from the measurement so that reports differ.
        let id = Sha384::digest(req.measurement);
        put(&mut raw, 0x140, &id[..32]);
        put(&mut raw, 0x180, &req.reported_tcb.encode(p).to_le_bytes());
        if req.version >= 3 {
            // CPUID family 0x19, model 0x01, stepping 0x01 (Milan-like).
            put(&mut raw, 0x188, &[0x19, 0x01, 0x01]);
        }
        let chip_id = if req.mask_chip_key {
            [0u8; 64]
        } else {
            req.chip_id
        };
        put(&mut raw, 0x1A0, &chip_id);
        put(&mut raw, 0x1E0, &req.committed_tcb.encode(p).to_le_bytes());
        let (maj, min, build) = req.current_firmware;
        put(&mut raw, 0x1E8, &[build, min, maj]);
        let (maj, min, build) = req.committed_firmware;
        put(&mut raw, 0x1EC, &[build, min, maj]);
        put(&mut raw, 0x1F0, &req.launch_tcb.encode(p).to_le_bytes());
        self.sign(&mut raw)?;
        Ok(raw)
    }

    /// Evidence (report and chain) for `req`, ready for [`crate::snp::verify_snp`].
    pub fn attest(&self, req: &SimulatedReportRequest) -> Result<SnpEvidence, SimulatedTeeError> {
        Ok(SnpEvidence {
            report: self.report(req)?.to_vec(),
            certs: self.cert_chain(),
        })
    }

    /// Re-signs bytes `0x000..0x2A0` of `raw` in place with the test VCEK. Tests use it
    /// to make validly signed reports with any field out of bounds.
    pub fn sign(&self, raw: &mut [u8; REPORT_LEN]) -> Result<(), SimulatedTeeError> {
        let digest = Sha384::digest(&raw[..SIGNED_LEN]);
        let sig: p384::ecdsa::Signature =
            self.key
                .sign_prehash(&digest)
                .map_err(|e| SimulatedTeeError {
                    reason: e.to_string(),
                })?;
        let (r, s) = sig.split_bytes();
        let mut rb = [0u8; 48];
        let mut sb = [0u8; 48];
        rb.copy_from_slice(&r);
        sb.copy_from_slice(&s);
        write_signature(raw, &rb, &sb);
        Ok(())
    }
}
