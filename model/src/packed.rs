//! Matrix-vector products straight from GGUF's quantised blocks, for generating tokens.
//!
//! Generating one token multiplies one row of activations by every weight matrix: the work is
//! bound by how many bytes of weights cross the memory bus, not by arithmetic. The f32 copy of
//! SmolLM2's linear weights and output head is 538 MB per token; their Q4_1 and Q8_0 blocks,
//! as kept here, are 112 MB. A [`PackedMatrix`] keeps the blocks (scales widened to f32 once,
//! at load) and computes each weight on the fly with exactly the arithmetic of [`quant::dequantize`](super::quant)
//! (`q * d + m` for Q4_1, `q * d` for Q8_0), so it multiplies by the very same f32 weights as
//! the dequantised matrix; only the order in which the products are summed differs, as it does
//! between any two matrix libraries.
//!
//! Rows are split across the rayon pool. The inner loop is written over 16 independent lanes
//! and compiled once per instruction set (`pulp` picks AVX-512, AVX2 or plain code at run
//! time); the lanes are summed in a fixed order and every product is a fused multiply-add, so
//! the result is bit-identical on every instruction set.
//!
//! The prompt (many rows at once) still goes through burn's f32 matrix product, which is
//! compute-bound and where blocked `gemm` wins.

use pulp::Arch;
use rayon::prelude::*;

use super::quant::{f16_at, GgmlType, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};

/// Lanes of the inner loop (one AVX-512 register of f32).
const LANES: usize = QK / 2;

/// Output rows per rayon task: enough work (≥ 16 KiB of weights) to outweigh scheduling.
const ROWS_PER_TASK: usize = 64;

#[derive(Debug, Clone)]
enum Blocks {
    /// Per block: scale `d`, minimum `m`, 16 bytes holding element `j` in the low nibble of
    /// byte `j` and element `j + 16` in the high nibble.
    Q4_1 {
        d: Vec<f32>,
        m: Vec<f32>,
        q: Vec<[u8; LANES]>,
    },
    /// Per block: scale `d` and 32 signed values.
    Q8_0 { d: Vec<f32>, q: Vec<[i8; QK]> },
}

/// A `[rows, cols]` weight matrix kept in its GGUF block quantisation.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

impl PackedMatrix {
    /// Packs the raw GGUF bytes of a `[rows, cols]` tensor of type `ty`. `None` when `ty` is not
    /// block-quantised (f32 and f16 weights use burn's product), when `cols` is not a whole
    /// number of blocks, or when `raw` is not exactly `rows * cols` elements long.
    pub fn from_ggml(ty: GgmlType, raw: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if cols == 0 || cols % QK != 0 {
            return None;
        }
        let n_blocks = rows.checked_mul(cols / QK)?;
        let blocks = match ty {
            GgmlType::Q4_1 => {
                if raw.len() != n_blocks.checked_mul(Q4_1_BLOCK_BYTES)? {
                    return None;
                }
                let chunks = raw.chunks_exact(Q4_1_BLOCK_BYTES);
                Blocks::Q4_1 {
                    d: chunks.clone().map(|b| f16_at(b, 0)).collect(),
                    m: chunks.clone().map(|b| f16_at(b, 2)).collect(),
                    q: chunks
                        .map(|b| {
                            let mut q = [0u8; LANES];
                            q.copy_from_slice(&b[4..]);
                            q
                        })
                        .collect(),
                }
            }
            GgmlType::Q8_0 => {
                if raw.len() != n_blocks.checked_mul(Q8_0_BLOCK_BYTES)? {
                    return None;
                }
                let chunks = raw.chunks_exact(Q8_0_BLOCK_BYTES);
                Blocks::Q8_0 {
                    d: chunks.clone().map(|b| f16_at(b, 0)).collect(),
                    q: chunks
                        .map(|b| {
                            let mut q = [0i8; QK];
                            for (o, &v) in q.iter_mut().zip(&b[2..]) {
                                *o = v as i8;
                            }
                            q
                        })
                        .collect(),
                }
            }
            GgmlType::F32 | GgmlType::F16 => return None,
        };
        Some(PackedMatrix { rows, cols, blocks })
    }

    /// The matrices' rows one after another (`[Σ rows, cols]`): how the query, key and value
    /// projections (and the gate and up projections) become one product. `None` unless all
    /// parts have the same width and quantisation.
    pub fn stack(parts: Vec<PackedMatrix>) -> Option<Self> {
        let mut parts = parts.into_iter();
        let mut out = parts.next()?;
        for p in parts {
            if p.cols != out.cols {
                return None;
            }
            match (&mut out.blocks, p.blocks) {
                (
                    Blocks::Q4_1 { d, m, q },
                    Blocks::Q4_1 {
                        d: d2,
                        m: m2,
                        q: q2,
                    },
                ) => {
                    d.extend(d2);
                    m.extend(m2);
                    q.extend(q2);
                }
                (Blocks::Q8_0 { d, q }, Blocks::Q8_0 { d: d2, q: q2 }) => {
                    d.extend(d2);
                    q.extend(q2);
                }
                _ => return None,
            }
            out.rows += p.rows;
        }
        Some(out)
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r` as f32, computed with exactly [`quant::dequantize`](super::quant)'s arithmetic,
    /// so it equals that row of the dequantised matrix bit for bit: how the token embeddings
    /// are read when they are the tied output head.
    ///
    /// # Panics
    /// If `r >= self.rows()`: the model checks token ids at its entry, so this is a bug.
    pub fn row(&self, r: usize, out: &mut Vec<f32>) {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        let per_row = self.cols / QK;
        for b in r * per_row..(r + 1) * per_row {
            match &self.blocks {
                Blocks::Q4_1 { d, m, q } => {
                    let (d, m) = (d[b], m[b]);
                    out.extend(q[b].iter().map(|&v| f32::from(v & 0x0F) * d + m));
                    out.extend(q[b].iter().map(|&v| f32::from(v >> 4) * d + m));
                }
                Blocks::Q8_0 { d, q } => {
                    let d = d[b];
                    out.extend(q[b].iter().map(|&v| f32::from(v) * d));
                }
            }
        }
    }

    /// `W · x` (one output per row).
    ///
    /// # Panics
    /// If `x.len() != self.cols()`: the model checks shapes at load, so this is a bug.
    pub fn matvec(&self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), self.cols, "matvec: input width");
        let per_row = self.cols / QK;
        let mut y = vec![0.0f32; self.rows];
        y.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * ROWS_PER_TASK * per_row;
                Arch::new().dispatch(Rows {
                    blocks: &self.blocks,
                    range: first..first + out.len() * per_row,
                    x,
                    out,
                })
            });
        y
    }
}

/// Some rows of `W · x`, as a `pulp` operation: `with_simd` is compiled once per instruction
/// set, and everything it calls is inlined into it so the lane loops use that set's registers
/// and fused multiply-add.
struct Rows<'a> {
    blocks: &'a Blocks,
    /// The blocks of the rows to compute.
    range: std::ops::Range<usize>,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let r = self.range;
        match self.blocks {
            Blocks::Q4_1 { d, m, q } => {
                rows_q4_1(&d[r.clone()], &m[r.clone()], &q[r], self.x, self.out)
            }
            Blocks::Q8_0 { d, q } => rows_q8_0(&d[r.clone()], &q[r], self.x, self.out),
        }
    }
}

/// Sums the lanes in a fixed order (pairwise), the same on every instruction set.
#[inline(always)]
fn reduce(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

#[inline(always)]
fn rows_q4_1(d: &[f32], m: &[f32], q: &[[u8; LANES]], x: &[f32], out: &mut [f32]) {
    let per_row = x.len() / QK;
    for (r, y) in out.iter_mut().enumerate() {
        let row = r * per_row..(r + 1) * per_row;
        // Two accumulators (low and high nibbles) halve the chain of dependent additions.
        let mut lo = [0.0f32; LANES];
        let mut hi = [0.0f32; LANES];
        for (((&d, &m), q), x) in d[row.clone()]
            .iter()
            .zip(&m[row.clone()])
            .zip(&q[row])
            .zip(x.chunks_exact(QK))
        {
            for i in 0..LANES {
                let w_lo = f32::from(q[i] & 0x0F) * d + m;
                let w_hi = f32::from(q[i] >> 4) * d + m;
                lo[i] = w_lo.mul_add(x[i], lo[i]);
                hi[i] = w_hi.mul_add(x[i + LANES], hi[i]);
            }
        }
        *y = reduce(lo) + reduce(hi);
    }
}

#[inline(always)]
fn rows_q8_0(d: &[f32], q: &[[i8; QK]], x: &[f32], out: &mut [f32]) {
    let per_row = x.len() / QK;
    for (r, y) in out.iter_mut().enumerate() {
        let row = r * per_row..(r + 1) * per_row;
        let mut lo = [0.0f32; LANES];
        let mut hi = [0.0f32; LANES];
        for ((&d, q), x) in d[row.clone()].iter().zip(&q[row]).zip(x.chunks_exact(QK)) {
            for i in 0..LANES {
                lo[i] = (f32::from(q[i]) * d).mul_add(x[i], lo[i]);
                hi[i] = (f32::from(q[i + LANES]) * d).mul_add(x[i + LANES], hi[i]);
            }
        }
        *y = reduce(lo) + reduce(hi);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::quant::dequantize;
    use half::f16;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Random blocks of `ty` with realistic scales (f16 `d` and `m` around 0.01).
    fn random_blocks(ty: GgmlType, n_blocks: usize, rng: &mut StdRng) -> Vec<u8> {
        let mut raw = Vec::new();
        for _ in 0..n_blocks {
            raw.extend(f16::from_f32(rng.gen_range(0.001..0.02)).to_le_bytes());
            match ty {
                GgmlType::Q4_1 => {
                    raw.extend(f16::from_f32(rng.gen_range(-0.1..0.0)).to_le_bytes());
                    raw.extend((0..QK / 2).map(|_| rng.gen::<u8>()));
                }
                _ => raw.extend((0..QK).map(|_| rng.gen::<u8>())),
            }
        }
        raw
    }

    /// `W · x` in f64 over the dequantised f32 weights: the reference the kernel must match.
    fn reference(ty: GgmlType, raw: &[u8], rows: usize, cols: usize, x: &[f32]) -> Vec<f64> {
        let w = dequantize(ty, raw);
        (0..rows)
            .map(|r| {
                (0..cols)
                    .map(|c| f64::from(w[r * cols + c]) * f64::from(x[c]))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn a_row_equals_the_dequantised_row_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(11);
        for ty in [GgmlType::Q4_1, GgmlType::Q8_0] {
            let (rows, cols) = (5, 96);
            let raw = random_blocks(ty, rows * cols / QK, &mut rng);
            let w = dequantize(ty, &raw);
            let m = PackedMatrix::from_ggml(ty, &raw, rows, cols).unwrap();
            for r in 0..rows {
                let mut got = Vec::new();
                m.row(r, &mut got);
                let want = &w[r * cols..(r + 1) * cols];
                assert!(
                    got.iter()
                        .zip(want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{ty:?} row {r}"
                );
                assert_eq!(got.len(), cols);
            }
        }
    }

    #[test]
    fn matvec_equals_the_dequantised_product() {
        let mut rng = StdRng::seed_from_u64(7);
        // 200 rows: several rayon tasks and a partial last one; 96 columns: three blocks.
        for ty in [GgmlType::Q4_1, GgmlType::Q8_0] {
            let (rows, cols) = (200, 96);
            let raw = random_blocks(ty, rows * cols / QK, &mut rng);
            let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let m = PackedMatrix::from_ggml(ty, &raw, rows, cols).unwrap();
            let y = m.matvec(&x);
            let want = reference(ty, &raw, rows, cols, &x);
            assert_eq!(y.len(), rows);
            for (r, (&got, &want)) in y.iter().zip(&want).enumerate() {
                // f32 accumulation of 96 products of magnitude ≤ 0.4: within 1e-5 of f64.
                assert!(
                    (f64::from(got) - want).abs() < 1e-5,
                    "{ty:?} row {r}: {got} vs {want}"
                );
            }
        }
    }

    /// The module's promise: the kernel `pulp` picks for this CPU (AVX-512 or AVX2 here) gives
    /// the same bits as the same code compiled for the baseline instruction set.
    #[test]
    fn the_dispatched_kernel_equals_plain_code_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(11);
        let (rows, cols) = (70, 576);
        for ty in [GgmlType::Q4_1, GgmlType::Q8_0] {
            let raw = random_blocks(ty, rows * cols / QK, &mut rng);
            let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let m = PackedMatrix::from_ggml(ty, &raw, rows, cols).unwrap();
            let mut plain = vec![0.0f32; rows];
            match &m.blocks {
                Blocks::Q4_1 { d, m, q } => rows_q4_1(d, m, q, &x, &mut plain),
                Blocks::Q8_0 { d, q } => rows_q8_0(d, q, &x, &mut plain),
            }
            let dispatched: Vec<u32> = m.matvec(&x).iter().map(|v| v.to_bits()).collect();
            let plain: Vec<u32> = plain.iter().map(|v| v.to_bits()).collect();
            assert_eq!(dispatched, plain, "{ty:?}");
        }
    }

    #[test]
    fn a_changed_block_changes_only_its_row() {
        let mut rng = StdRng::seed_from_u64(8);
        let (rows, cols) = (3, 64);
        let mut raw = random_blocks(GgmlType::Q4_1, rows * cols / QK, &mut rng);
        let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let before = PackedMatrix::from_ggml(GgmlType::Q4_1, &raw, rows, cols)
            .unwrap()
            .matvec(&x);
        // Row 1 is blocks 2 and 3; flip a nibble in block 3.
        raw[3 * Q4_1_BLOCK_BYTES + 4] ^= 0x0F;
        let after = PackedMatrix::from_ggml(GgmlType::Q4_1, &raw, rows, cols)
            .unwrap()
            .matvec(&x);
        assert_eq!(before[0], after[0]);
        assert_ne!(before[1], after[1]);
        assert_eq!(before[2], after[2]);
    }

    #[test]
    fn stacking_concatenates_rows() {
        let mut rng = StdRng::seed_from_u64(9);
        let cols = 64;
        let a_raw = random_blocks(GgmlType::Q8_0, 2 * cols / QK, &mut rng);
        let b_raw = random_blocks(GgmlType::Q8_0, 3 * cols / QK, &mut rng);
        let a = PackedMatrix::from_ggml(GgmlType::Q8_0, &a_raw, 2, cols).unwrap();
        let b = PackedMatrix::from_ggml(GgmlType::Q8_0, &b_raw, 3, cols).unwrap();
        let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut want = a.matvec(&x);
        want.extend(b.matvec(&x));
        let ab = PackedMatrix::stack(vec![a, b]).unwrap();
        assert_eq!((ab.rows(), ab.cols()), (5, cols));
        assert_eq!(ab.matvec(&x), want);
    }

    #[test]
    fn what_cannot_be_packed_is_refused() {
        let mut rng = StdRng::seed_from_u64(10);
        let raw = random_blocks(GgmlType::Q4_1, 2, &mut rng);
        // Not block-quantised, width not a whole block, wrong length.
        assert!(PackedMatrix::from_ggml(GgmlType::F32, &raw, 1, 64).is_none());
        assert!(PackedMatrix::from_ggml(GgmlType::Q4_1, &raw, 2, 48).is_none());
        assert!(PackedMatrix::from_ggml(GgmlType::Q4_1, &raw[1..], 1, 64).is_none());
        assert!(PackedMatrix::from_ggml(GgmlType::Q4_1, &raw, 1, 32).is_none());
        // Different quantisations or widths do not stack.
        let q4 = PackedMatrix::from_ggml(GgmlType::Q4_1, &raw, 1, 64).unwrap();
        let q8_raw = random_blocks(GgmlType::Q8_0, 2, &mut rng);
        let q8 = PackedMatrix::from_ggml(GgmlType::Q8_0, &q8_raw, 1, 64).unwrap();
        let q4_narrow = PackedMatrix::from_ggml(GgmlType::Q4_1, &raw, 2, 32).unwrap();
        assert!(PackedMatrix::stack(vec![q4.clone(), q8]).is_none());
        assert!(PackedMatrix::stack(vec![q4, q4_narrow]).is_none());
        assert!(PackedMatrix::stack(vec![]).is_none());
    }
}
