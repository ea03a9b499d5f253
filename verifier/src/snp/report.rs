//! The SEV-SNP attestation report (AMD SEV-SNP ABI specification, `ATTESTATION_REPORT`),
//! parsed from its exact bytes.
//!
//! We read fixed offsets ourselves instead of `sev::firmware::guest::AttestationReport`
//! because that type (a) re-serialises the report before checking its signature, which drops
//! reserved bytes, so a flipped reserved byte would go unnoticed; (b) picks the CPU generation
//! from the untrusted CPUID bytes of the report (reaching `Generation::Venice`, whose CA chain
//! conversion panics); and (c) rejects version-2 reports with a masked chip ID. Here the
//! signature covers the raw bytes `0x000..0x2A0`, and the product comes from the pinned root
//! that verified the chain, never from the report.

use super::SnpError;

/// Length of every SEV-SNP attestation report, versions 2 to 5.
pub const REPORT_LEN: usize = 0x4A0;
/// End (exclusive) of the signed area: bytes `0x000..0x2A0` are signed.
pub const SIGNED_LEN: usize = 0x2A0;
/// Oldest report version accepted by the parser.
pub const MIN_REPORT_VERSION: u32 = 2;
/// Newest report version accepted by the parser.
pub const MAX_REPORT_VERSION: u32 = 5;
/// `SIGNATURE_ALGO` value for ECDSA P-384 with SHA-384, the only one AMD defines.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// Which key signed the report (`KEY_INFO.SIGNING_KEY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key (per chip, per TCB).
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider, loaded by the hypervisor).
    Vlek,
    /// No key (report unsigned).
    None,
    /// A value the specification reserves.
    Reserved(u8),
}

impl SigningKey {
    fn from_bits(bits: u8) -> Self {
        match bits {
            0 => Self::Vcek,
            1 => Self::Vlek,
            7 => Self::None,
            other => Self::Reserved(other),
        }
    }
}

impl core::fmt::Display for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Vcek => f.write_str("VCEK"),
            Self::Vlek => f.write_str("VLEK"),
            Self::None => f.write_str("none"),
            Self::Reserved(v) => write!(f, "reserved({v})"),
        }
    }
}

/// The AMD processor product line a chain belongs to. It decides the TCB layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// 3rd generation EPYC.
    Milan,
    /// 4th generation EPYC.
    Genoa,
    /// 5th generation EPYC (TCB layout with an FMC field; 8-byte hwID).
    Turin,
    /// Lucent's simulated TEE (test chain; Milan TCB layout). Trusted only with
    /// `SnpTrust::dangerous_trust_simulated_root` (feature `dangerous-simulated-tee`).
    Simulated,
}

impl core::fmt::Display for Product {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
            Self::Simulated => "Simulated",
        })
    }
}

/// A TCB version split into its security patch levels (SPLs).
///
/// Milan and Genoa: byte 0 boot loader, 1 TEE, 6 SNP, 7 microcode. Turin: byte 0 FMC,
/// 1 boot loader, 2 TEE, 3 SNP, 7 microcode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcbVersion {
    /// FMC SPL (Turin and later; `None` before).
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes the raw little-endian `u64` TCB field for `product`.
    pub fn decode(raw: u64, product: Product) -> Self {
        let b = raw.to_le_bytes();
        match product {
            Product::Turin => Self {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
            Product::Milan | Product::Genoa | Product::Simulated => Self {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
        }
    }

    /// Encodes this TCB as the raw `u64` field for `product`.
    pub fn encode(&self, product: Product) -> u64 {
        let mut b = [0u8; 8];
        match product {
            Product::Turin => {
                b[0] = self.fmc.unwrap_or(0);
                b[1] = self.bootloader;
                b[2] = self.tee;
                b[3] = self.snp;
            }
            Product::Milan | Product::Genoa | Product::Simulated => {
                b[0] = self.bootloader;
                b[1] = self.tee;
                b[6] = self.snp;
            }
        }
        b[7] = self.microcode;
        u64::from_le_bytes(b)
    }

    /// The components as `(name, value)` pairs, for comparisons that name what failed.
    pub fn components(&self) -> [(&'static str, u8); 5] {
        [
            ("fmc", self.fmc.unwrap_or(0)),
            ("bootloader", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("microcode", self.microcode),
        ]
    }

    /// The first component below `min`, if any (component-wise comparison, as AMD's SPLs
    /// are independent counters).
    pub fn first_below(&self, min: &TcbVersion) -> Option<(&'static str, u8, u8)> {
        self.components()
            .into_iter()
            .zip(min.components())
            .find(|((_, got), (_, want))| got < want)
            .map(|((name, got), (_, want))| (name, got, want))
    }
}

impl core::fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

/// A firmware version (`CURRENT_*` / `COMMITTED_*` fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl core::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// Guest policy bits (`POLICY` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bit 16: SMT allowed on the host.
    pub fn smt_allowed(&self) -> bool {
        self.0 & (1 << 16) != 0
    }
    /// Bit 18: association with a migration agent allowed.
    pub fn migrate_ma_allowed(&self) -> bool {
        self.0 & (1 << 18) != 0
    }
    /// Bit 19: debugging allowed.
    pub fn debug_allowed(&self) -> bool {
        self.0 & (1 << 19) != 0
    }
    /// Bit 20: single socket only.
    pub fn single_socket(&self) -> bool {
        self.0 & (1 << 20) != 0
    }
    /// Bits 15:8 and 7:0: minimum ABI (major, minor) the guest requires.
    pub fn abi(&self) -> (u8, u8) {
        (((self.0 >> 8) & 0xFF) as u8, (self.0 & 0xFF) as u8)
    }
}

/// A parsed SEV-SNP attestation report. It keeps its exact bytes: the signature is checked
/// over them, never over a re-serialisation.
#[derive(Clone, PartialEq, Eq)]
pub struct SnpReport {
    raw: Box<[u8; REPORT_LEN]>,
}

impl core::fmt::Debug for SnpReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SnpReport")
            .field("version", &self.version())
            .field("vmpl", &self.vmpl())
            .field("measurement", &hex::encode(self.measurement()))
            .finish_non_exhaustive()
    }
}

fn u32_at(b: &[u8; REPORT_LEN], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8; REPORT_LEN], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn arr<const N: usize>(b: &[u8; REPORT_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl SnpReport {
    /// Parses a report: exactly [`REPORT_LEN`] bytes, version 2 to 5. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, SnpError> {
        let raw: [u8; REPORT_LEN] = bytes
            .try_into()
            .map_err(|_| SnpError::ReportLength { got: bytes.len() })?;
        let report = Self { raw: Box::new(raw) };
        let version = report.version();
        if !(MIN_REPORT_VERSION..=MAX_REPORT_VERSION).contains(&version) {
            return Err(SnpError::UnsupportedReportVersion { got: version });
        }
        Ok(report)
    }

    /// The exact report bytes.
    pub fn as_bytes(&self) -> &[u8; REPORT_LEN] {
        &self.raw
    }

    /// The signed area, bytes `0x000..0x2A0`.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }

    /// `VERSION`.
    pub fn version(&self) -> u32 {
        u32_at(&self.raw, 0x00)
    }
    /// `GUEST_SVN`.
    pub fn guest_svn(&self) -> u32 {
        u32_at(&self.raw, 0x04)
    }
    /// `POLICY`.
    pub fn policy(&self) -> GuestPolicy {
        GuestPolicy(u64_at(&self.raw, 0x08))
    }
    /// `FAMILY_ID`.
    pub fn family_id(&self) -> [u8; 16] {
        arr(&self.raw, 0x10)
    }
    /// `IMAGE_ID`.
    pub fn image_id(&self) -> [u8; 16] {
        arr(&self.raw, 0x20)
    }
    /// `VMPL` of the request.
    pub fn vmpl(&self) -> u32 {
        u32_at(&self.raw, 0x30)
    }
    /// `SIGNATURE_ALGO`.
    pub fn signature_algo(&self) -> u32 {
        u32_at(&self.raw, 0x34)
    }
    /// `CURRENT_TCB`, raw.
    pub fn current_tcb_raw(&self) -> u64 {
        u64_at(&self.raw, 0x38)
    }
    /// `PLATFORM_INFO`, raw.
    pub fn platform_info(&self) -> u64 {
        u64_at(&self.raw, 0x40)
    }
    /// `KEY_INFO` bit 0: `AUTHOR_KEY_EN`.
    pub fn author_key_en(&self) -> bool {
        u32_at(&self.raw, 0x48) & 1 != 0
    }
    /// `KEY_INFO` bit 1: `MASK_CHIP_KEY`.
    pub fn mask_chip_key(&self) -> bool {
        u32_at(&self.raw, 0x48) & 2 != 0
    }
    /// `KEY_INFO` bits 4:2: the signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bits(((u32_at(&self.raw, 0x48) >> 2) & 0x7) as u8)
    }
    /// `REPORT_DATA`: 64 bytes chosen by the guest (see [`crate::binding`]).
    pub fn report_data(&self) -> [u8; 64] {
        arr(&self.raw, 0x50)
    }
    /// `MEASUREMENT`: the launch digest.
    pub fn measurement(&self) -> [u8; 48] {
        arr(&self.raw, 0x90)
    }
    /// `HOST_DATA`.
    pub fn host_data(&self) -> [u8; 32] {
        arr(&self.raw, 0xC0)
    }
    /// `ID_KEY_DIGEST`.
    pub fn id_key_digest(&self) -> [u8; 48] {
        arr(&self.raw, 0xE0)
    }
    /// `AUTHOR_KEY_DIGEST`.
    pub fn author_key_digest(&self) -> [u8; 48] {
        arr(&self.raw, 0x110)
    }
    /// `REPORT_ID`.
    pub fn report_id(&self) -> [u8; 32] {
        arr(&self.raw, 0x140)
    }
    /// `REPORT_ID_MA`.
    pub fn report_id_ma(&self) -> [u8; 32] {
        arr(&self.raw, 0x160)
    }
    /// `REPORTED_TCB`, raw.
    pub fn reported_tcb_raw(&self) -> u64 {
        u64_at(&self.raw, 0x180)
    }
    /// `CPUID_FAM_ID`, `CPUID_MOD_ID`, `CPUID_STEP` (version 3 and later).
    pub fn cpuid(&self) -> Option<(u8, u8, u8)> {
        (self.version() >= 3).then(|| (self.raw[0x188], self.raw[0x189], self.raw[0x18A]))
    }
    /// `CHIP_ID` (zero when `MASK_CHIP_ID` was set).
    pub fn chip_id(&self) -> [u8; 64] {
        arr(&self.raw, 0x1A0)
    }
    /// `COMMITTED_TCB`, raw.
    pub fn committed_tcb_raw(&self) -> u64 {
        u64_at(&self.raw, 0x1E0)
    }
    /// `CURRENT_BUILD`, `CURRENT_MINOR`, `CURRENT_MAJOR`.
    pub fn current_firmware(&self) -> FirmwareVersion {
        FirmwareVersion {
            build: self.raw[0x1E8],
            minor: self.raw[0x1E9],
            major: self.raw[0x1EA],
        }
    }
    /// `COMMITTED_BUILD`, `COMMITTED_MINOR`, `COMMITTED_MAJOR`.
    pub fn committed_firmware(&self) -> FirmwareVersion {
        FirmwareVersion {
            build: self.raw[0x1EC],
            minor: self.raw[0x1ED],
            major: self.raw[0x1EE],
        }
    }
    /// `LAUNCH_TCB`, raw.
    pub fn launch_tcb_raw(&self) -> u64 {
        u64_at(&self.raw, 0x1F0)
    }
    /// `LAUNCH_MIT_VECTOR` and `CURRENT_MIT_VECTOR` (version 5 and later).
    pub fn mit_vectors(&self) -> Option<(u64, u64)> {
        (self.version() >= 5).then(|| (u64_at(&self.raw, 0x1F8), u64_at(&self.raw, 0x200)))
    }

    /// The signature as big-endian `(r, s)`, 48 bytes each. AMD stores each as a 72-byte
    /// little-endian field; the top 24 bytes must be zero for P-384.
    pub fn signature_be(&self) -> Result<([u8; 48], [u8; 48]), SnpError> {
        let field = |at: usize| -> Result<[u8; 48], SnpError> {
            let le = &self.raw[at..at + 72];
            if le[48..].iter().any(|&b| b != 0) {
                return Err(SnpError::SignatureEncoding);
            }
            let mut be = [0u8; 48];
            for (dst, src) in be.iter_mut().zip(le[..48].iter().rev()) {
                *dst = *src;
            }
            Ok(be)
        };
        Ok((field(0x2A0)?, field(0x2A0 + 72)?))
    }
}

/// Writes a big-endian P-384 `(r, s)` into a report buffer in AMD's little-endian layout.
#[cfg(feature = "dangerous-simulated-tee")]
pub(crate) fn write_signature(raw: &mut [u8; REPORT_LEN], r: &[u8; 48], s: &[u8; 48]) {
    raw[0x2A0..REPORT_LEN].fill(0);
    for (i, b) in r.iter().rev().enumerate() {
        raw[0x2A0 + i] = *b;
    }
    for (i, b) in s.iter().rev().enumerate() {
        raw[0x2A0 + 72 + i] = *b;
    }
}
