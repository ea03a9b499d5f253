//! The model's exponential-heavy element-wise steps (attention softmax, SwiGLU), vectorised.
//!
//! burn's CPU backend evaluates `exp` one element at a time through the C library on one
//! thread; for SmolLM2's 99-token benchmark prompt the softmax and SiLU took 75 of 185 ms.
//! Here `exp` is Cephes' `expf` algorithm (Cody-Waite range reduction and a degree-6
//! polynomial, about 1 ulp) written over 16 lanes without branches, compiled per instruction set
//! by `pulp` and spread over rows with rayon. The tests hold it to f64's `exp`.

use pulp::Arch;
use rayon::prelude::*;

const LANES: usize = 16;

/// Elements per rayon task, so that small tensors stay on one thread.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// `e^x`, without branches so that a loop over lanes vectorises. Maximum relative error about
/// 1.7e-7 for normal results; results below the smallest normal float are gradual
/// (subnormal, then 0); `x > ln(f32::MAX)` gives infinity, NaN gives NaN.
#[inline(always)]
fn exp_lane(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that `n * LN2_HI` is exact for |n| < 2^15.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without `round`.
    const ROUND: f32 = 12_582_912.0;
    const MAX: f32 = 88.722_84; // ln(f32::MAX)
    let overflow = x > MAX;
    let xc = x.clamp(-104.0, 88.8);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let z = r * r;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * z + r + 1.0;
    // 2^n in two factors, so that n in [-150, 128] never leaves the exponent range.
    let n = n as i32;
    let n1 = n >> 1;
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let e = y * pow2(n1) * pow2(n - n1);
    if overflow {
        f32::INFINITY
    } else {
        e
    }
}

/// Applies `f` to `xs` 16 lanes at a time; a short tail is padded with zeros.
#[inline(always)]
fn map_lanes(xs: &mut [f32], f: impl Fn(f32) -> f32) {
    let mut chunks = xs.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for v in c.iter_mut() {
            *v = f(*v);
        }
    }
    let tail = chunks.into_remainder();
    let mut pad = [0.0f32; LANES];
    pad[..tail.len()].copy_from_slice(tail);
    for v in pad.iter_mut() {
        *v = f(*v);
    }
    let n = tail.len();
    tail.copy_from_slice(&pad[..n]);
}

/// Softmax of each row of `width` elements, in place.
#[inline(always)]
fn softmax_rows_here(xs: &mut [f32], width: usize) {
    for row in xs.chunks_exact_mut(width) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        map_lanes(row, |v| exp_lane(v - max));
        let sum: f32 = row.iter().sum();
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// Rows of `[gate | up]` (each `ffn` wide) to rows of `silu(gate) * up`.
#[inline(always)]
fn swiglu_here(gate_up: &[f32], ffn: usize, out: &mut [f32]) {
    for (gu, o) in gate_up.chunks_exact(2 * ffn).zip(out.chunks_exact_mut(ffn)) {
        let (g, u) = gu.split_at(ffn);
        o.copy_from_slice(g);
        // silu(g) = g / (1 + e^-g); for g → -∞ that is g / ∞ = -0, the limit.
        map_lanes(o, |g| g / (1.0 + exp_lane(-g)));
        for (o, &u) in o.iter_mut().zip(u) {
            *o *= u;
        }
    }
}

struct Softmax<'a> {
    xs: &'a mut [f32],
    width: usize,
}

impl pulp::WithSimd for Softmax<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        softmax_rows_here(self.xs, self.width);
    }
}

struct SwiGlu<'a> {
    gate_up: &'a [f32],
    ffn: usize,
    out: &'a mut [f32],
}

impl pulp::WithSimd for SwiGlu<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        swiglu_here(self.gate_up, self.ffn, self.out);
    }
}

/// Rows per rayon task for rows of `width` elements.
fn rows_per_task(width: usize) -> usize {
    (ELEMENTS_PER_TASK / width.max(1)).max(1)
}

/// Softmax over each row of `width` elements, in place: `e^(x - max) / Σ e^(x - max)`.
/// A row of `-∞` only (nothing to attend to) becomes NaN.
///
/// # Panics
/// If `width` is 0 or does not divide `xs.len()`.
pub fn softmax_rows(xs: &mut [f32], width: usize) {
    assert!(width > 0 && xs.len() % width == 0, "softmax: ragged rows");
    xs.par_chunks_mut(rows_per_task(width) * width)
        .for_each(|c| Arch::new().dispatch(Softmax { xs: c, width }));
}

/// SwiGLU's gating: for rows `[gate | up]` of `2 ffn` elements, rows of `silu(gate) * up`.
///
/// # Panics
/// If `ffn` is 0 or `gate_up` is not whole rows of `2 ffn`.
pub fn swiglu(gate_up: &[f32], ffn: usize) -> Vec<f32> {
    assert!(
        ffn > 0 && gate_up.len() % (2 * ffn) == 0,
        "swiglu: ragged rows"
    );
    let rows = gate_up.len() / (2 * ffn);
    let mut out = vec![0.0f32; rows * ffn];
    let per_task = rows_per_task(2 * ffn);
    gate_up
        .par_chunks(per_task * 2 * ffn)
        .zip(out.par_chunks_mut(per_task * ffn))
        .for_each(|(gate_up, out)| Arch::new().dispatch(SwiGlu { gate_up, ffn, out }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Exp<'a>(&'a mut [f32]);

    impl pulp::WithSimd for Exp<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            map_lanes(self.0, exp_lane);
        }
    }

    /// `exp_lane` over a slice, compiled and dispatched as the softmax and SwiGLU kernels are.
    fn exp(xs: &mut [f32]) {
        Arch::new().dispatch(Exp(xs));
    }

    fn rel_err(got: f32, want: f64) -> f64 {
        (f64::from(got) - want).abs() / want.abs()
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64_over_the_normal_range() {
        // 2 million points from ln(f32::MIN_POSITIVE) to ln(f32::MAX).
        let (lo, hi) = (-87.33f64, 88.72f64);
        let n = 2_000_000;
        let mut xs: Vec<f32> = (0..n)
            .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32)
            .collect();
        let inputs = xs.clone();
        exp(&mut xs);
        let worst = inputs
            .iter()
            .zip(&xs)
            .map(|(&x, &e)| rel_err(e, f64::from(x).exp()))
            .fold(0.0f64, f64::max);
        // One ulp of f32 is 2^-23 ≈ 1.19e-7 relative at most.
        assert!(worst < 2.0 * 1.19e-7, "worst relative error {worst:e}");
    }

    #[test]
    fn exp_edges() {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            f32::NEG_INFINITY,
            -200.0,
            -100.0,
            88.72,
            88.73,
            1000.0,
            f32::INFINITY,
            f32::NAN,
        ];
        exp(&mut xs);
        assert_eq!(xs[0], 1.0);
        assert_eq!(xs[1], 1.0);
        assert!(rel_err(xs[2], std::f64::consts::E) < 1.2e-7);
        assert_eq!(xs[3], 0.0);
        assert_eq!(xs[4], 0.0);
        // e^-100 ≈ 3.7e-44 is subnormal: kept, roughly (subnormals carry few bits).
        assert!(xs[5] > 0.0 && rel_err(xs[5], (-100f64).exp()) < 0.05);
        assert!(xs[6].is_finite() && rel_err(xs[6], f64::from(88.72f32).exp()) < 2.4e-7);
        assert_eq!(xs[7], f32::INFINITY);
        assert_eq!(xs[8], f32::INFINITY);
        assert_eq!(xs[9], f32::INFINITY);
        assert!(xs[10].is_nan());
    }

    #[test]
    fn softmax_matches_f64_and_masks() {
        // Rows of 99 (the benchmark prompt) cover full lanes and a tail; 40 rows, two tasks'
        // worth with a small task size is not needed for correctness, one row is masked.
        let width = 99;
        let mut xs: Vec<f32> = (0..40 * width)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        for v in &mut xs[width + 10..2 * width] {
            *v = f32::NEG_INFINITY;
        }
        let inputs = xs.clone();
        softmax_rows(&mut xs, width);
        for (r, (got, inp)) in xs
            .chunks_exact(width)
            .zip(inputs.chunks_exact(width))
            .enumerate()
        {
            let max = inp
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let sum: f64 = inp.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            for (&g, &v) in got.iter().zip(inp) {
                let want = (f64::from(v) - max).exp() / sum;
                assert!((f64::from(g) - want).abs() < 1e-6, "row {r}: {g} vs {want}");
            }
            if r == 1 {
                assert!(got[10..].iter().all(|&g| g == 0.0));
            }
        }
    }

    #[test]
    fn swiglu_matches_f64() {
        let ffn = 40; // two full lanes and a tail of 8
        let rows = 3;
        let gate_up: Vec<f32> = (0..rows * 2 * ffn)
            .map(|i| ((i * 31) % 97) as f32 / 4.0 - 12.0)
            .collect();
        let out = swiglu(&gate_up, ffn);
        assert_eq!(out.len(), rows * ffn);
        for r in 0..rows {
            for j in 0..ffn {
                let g = f64::from(gate_up[r * 2 * ffn + j]);
                let u = f64::from(gate_up[r * 2 * ffn + ffn + j]);
                let want = g / (1.0 + (-g).exp()) * u;
                let got = f64::from(out[r * ffn + j]);
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "[{r}, {j}]: {got} vs {want}"
                );
            }
        }
    }
}
