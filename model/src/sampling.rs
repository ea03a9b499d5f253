//! Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling
//! from a seeded generator, so a given seed always gives the same text.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tokenizer::TokenId;

/// How to pick tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` (or below) means greedy.
    pub temperature: f32,
    /// Nucleus mass in `(0, 1]`: sample among the most likely tokens whose probabilities add up
    /// to at least this much.
    pub top_p: f32,
    /// Seed of the sampler's random generator.
    pub seed: u64,
}

impl SamplingParams {
    /// Always the most likely token.
    pub const GREEDY: SamplingParams = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
    };
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams::GREEDY
    }
}

/// Picks tokens according to [`SamplingParams`].
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

/// Index of the largest value; the first one on ties, as `numpy.argmax`. `None` when empty.
pub fn argmax(logits: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

impl Sampler {
    /// A sampler seeded from `params.seed`.
    pub fn new(params: SamplingParams) -> Self {
        Sampler {
            params,
            rng: StdRng::seed_from_u64(params.seed),
        }
    }

    /// The next token for `logits` (one per vocabulary entry). `None` only for empty logits.
    pub fn sample(&mut self, logits: &[f32]) -> Option<TokenId> {
        let t = self.params.temperature;
        let greedy = t.is_nan() || t <= 0.0 || t.is_infinite();
        if greedy {
            return argmax(logits).map(|i| i as TokenId);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return argmax(logits).map(|i| i as TokenId);
        }
        let inv_t = 1.0 / self.params.temperature;
        let mut probs: Vec<(usize, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i, ((l - max) * inv_t).exp()))
            .collect();
        let total: f32 = probs.iter().map(|p| p.1).sum();
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top_p = self.params.top_p.clamp(f32::MIN_POSITIVE, 1.0);
        let mut kept = 0;
        let mut mass = 0.0;
        for p in &probs {
            kept += 1;
            mass += p.1 / total;
            if mass >= top_p {
                break;
            }
        }
        let probs = &probs[..kept.max(1)];
        let kept_total: f32 = probs.iter().map(|p| p.1).sum();
        let mut r = self.rng.gen::<f32>() * kept_total;
        for &(i, p) in probs {
            if r < p {
                return Some(i as TokenId);
            }
            r -= p;
        }
        probs.last().map(|&(i, _)| i as TokenId)
    }
}

#[cfg(test)]
#[cfg_attr(test, allow(clippy::unwrap_used))]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_first_maximum() {
        let mut s = Sampler::new(SamplingParams::GREEDY);
        assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0]), Some(1));
        assert_eq!(s.sample(&[]), None);
    }

    #[test]
    fn top_p_restricts_to_nucleus_and_seed_repeats() {
        // Token 2 holds almost all the mass; with top_p 0.5 nothing else may be drawn.
        let logits = [0.0, 1.0, 10.0, 2.0];
        let params = SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            seed: 7,
        };
        let mut s = Sampler::new(params);
        for _ in 0..200 {
            assert_eq!(s.sample(&logits), Some(2));
        }
        // With a flat distribution and top_p 1, the same seed gives the same draws, and more
        // than one token is drawn.
        let flat = [1.0f32; 8];
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            seed: 42,
        };
        let a: Vec<_> = {
            let mut s = Sampler::new(p);
            (0..32).map(|_| s.sample(&flat).unwrap()).collect()
        };
        let b: Vec<_> = {
            let mut s = Sampler::new(p);
            (0..32).map(|_| s.sample(&flat).unwrap()).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|&t| t != a[0]), "{a:?}");
    }
}
