//! GGML tensor storage types and their dequantisation to f32, exactly as ggml does it
//! (`dequantize_row_q4_1`, `dequantize_row_q8_0` in `ggml-quants.c`).

use half::f16;

/// Elements per block of the block-quantised types we read.
pub const QK: usize = 32;
/// Bytes per Q4_1 block: f16 scale `d`, f16 minimum `m`, 16 bytes of 4-bit values.
pub const Q4_1_BLOCK_BYTES: usize = 4 + QK / 2;
/// Bytes per Q8_0 block: f16 scale `d`, 32 signed bytes.
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK;

/// The GGML storage types this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit float (code 0).
    F32,
    /// 16-bit float (code 1).
    F16,
    /// 4-bit with per-block scale and minimum (code 3): `x = d * q + m`.
    Q4_1,
    /// 8-bit with per-block scale (code 8): `x = d * q`.
    Q8_0,
}

impl GgmlType {
    /// The type for a GGML type code, if we support it.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(GgmlType::F32),
            1 => Some(GgmlType::F16),
            3 => Some(GgmlType::Q4_1),
            8 => Some(GgmlType::Q8_0),
            _ => None,
        }
    }

    /// The GGML type code.
    pub fn code(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
        }
    }

    /// Elements per block.
    pub fn block_elements(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 => 1,
            GgmlType::Q4_1 | GgmlType::Q8_0 => QK,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 => 2,
            GgmlType::Q4_1 => Q4_1_BLOCK_BYTES,
            GgmlType::Q8_0 => Q8_0_BLOCK_BYTES,
        }
    }
}

/// The little-endian f16 at byte `i` of `b`, widened to f32 (exactly).
pub(crate) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantises whole blocks of `ty` to f32. Trailing bytes that do not fill a block are ignored;
/// callers pass exactly `n_blocks * block_bytes` bytes.
pub fn dequantize(ty: GgmlType, raw: &[u8]) -> Vec<f32> {
    let bb = ty.block_bytes();
    let n_blocks = raw.len() / bb;
    let mut out = Vec::with_capacity(n_blocks * ty.block_elements());
    for block in raw.chunks_exact(bb) {
        match ty {
            GgmlType::F32 => out.push(f32::from_le_bytes([block[0], block[1], block[2], block[3]])),
            GgmlType::F16 => out.push(f16_at(block, 0)),
            GgmlType::Q4_1 => {
                let d = f16_at(block, 0);
                let m = f16_at(block, 2);
                let qs = &block[4..];
                // ggml stores element j in the low nibble of byte j, element j+16 in the high one.
                for &q in qs {
                    out.push(f32::from(q & 0x0F) * d + m);
                }
                for &q in qs {
                    out.push(f32::from(q >> 4) * d + m);
                }
            }
            GgmlType::Q8_0 => {
                let d = f16_at(block, 0);
                for &q in &block[2..] {
                    out.push(f32::from(q as i8) * d);
                }
            }
        }
    }
    out
}
