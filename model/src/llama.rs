//! The Llama decoder (SmolLM2's architecture) in burn: RMSNorm, rotary position embeddings,
//! grouped-query attention with a key/value cache, SwiGLU feed-forward, tied or separate output
//! head. Float32 throughout, on burn's pure-Rust CPU backend (`flex`), except where
//! [`packed`](super::packed) and [`vector`] do a step faster than burn's
//! operators can.
//!
//! GGUF stores the query and key projections of llama models permuted for ggml's "normal" RoPE,
//! which rotates adjacent pairs `(x[2i], x[2i+1])`; that is the rotation implemented here.

use std::sync::Arc;

use burn::tensor::{s, Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::gguf::{GgufError, GgufFile};
use super::packed::PackedMatrix;
use super::tokenizer::TokenId;
use super::vector;

/// Why the model could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlamaError {
    /// A GGUF problem.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The hyper-parameters are inconsistent.
    #[error("invalid model configuration: {0}")]
    BadConfig(String),
    /// A weight has a shape the configuration does not allow.
    #[error("weight {name} has shape {got:?}, expected {expected:?}")]
    BadShape {
        /// The weight.
        name: String,
        /// Its shape (row-major).
        got: Vec<usize>,
        /// The shape the configuration implies.
        expected: Vec<usize>,
    },
    /// `general.architecture` is not `llama`.
    #[error("unsupported architecture {0:?} (expected \"llama\")")]
    UnsupportedArchitecture(String),
    /// A forward pass with no tokens.
    #[error("no tokens to process")]
    EmptyInput,
    /// A token id outside the vocabulary.
    #[error("token id {id} outside vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The id.
        id: TokenId,
        /// Vocabulary size.
        vocab: usize,
    },
    /// The sequence would exceed the context the model was configured for.
    #[error("sequence of {needed} tokens exceeds the context of {max} tokens")]
    ContextFull {
        /// Tokens the pass would need.
        needed: usize,
        /// Configured context length.
        max: usize,
    },
    /// Reading a result back from the backend failed.
    #[error("reading tensor data failed: {0}")]
    Readback(String),
}

/// Llama hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub dim: usize,
    /// Number of decoder blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_heads`).
    pub n_kv_heads: usize,
    /// Hidden width of the SwiGLU feed-forward.
    pub ffn_dim: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// Longest sequence (prompt plus output) a cache may hold.
    pub max_seq_len: usize,
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads.max(1)
    }

    /// Checks that the shapes fit together.
    pub fn validate(&self) -> Result<(), LlamaError> {
        let bad = |m: &str| Err(LlamaError::BadConfig(m.to_owned()));
        if self.vocab_size == 0 || self.dim == 0 || self.n_layers == 0 || self.ffn_dim == 0 {
            return bad("sizes must be positive");
        }
        if self.n_heads == 0 || self.n_kv_heads == 0 || self.dim % self.n_heads != 0 {
            return bad("dim must be a multiple of a positive head count");
        }
        if self.n_heads % self.n_kv_heads != 0 {
            return bad("query heads must be a multiple of key/value heads");
        }
        if self.head_dim() % 2 != 0 {
            return bad("head width must be even for RoPE");
        }
        if self.max_seq_len == 0 {
            return bad("context must be positive");
        }
        let positive = |x: f32| x.is_finite() && x > 0.0;
        if !positive(self.rms_eps) || !positive(self.rope_theta) {
            return bad("rms_eps and rope_theta must be positive");
        }
        Ok(())
    }

    /// Reads the hyper-parameters of a `llama` GGUF. The context is capped at `max_seq_len`.
    pub fn from_gguf(file: &GgufFile<'_>, max_seq_len: usize) -> Result<Self, LlamaError> {
        let arch = file.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(LlamaError::UnsupportedArchitecture(arch.to_owned()));
        }
        let u = |k: &str| -> Result<usize, LlamaError> {
            let v = file.get_u64(&format!("llama.{k}"))?;
            usize::try_from(v).map_err(|_| LlamaError::BadConfig(format!("llama.{k} = {v}")))
        };
        let vocab_size = match u("vocab_size") {
            Ok(v) => v,
            Err(_) => file.get_array("tokenizer.ggml.tokens")?.len(),
        };
        let n_heads = u("attention.head_count")?;
        let config = LlamaConfig {
            vocab_size,
            dim: u("embedding_length")?,
            n_layers: u("block_count")?,
            n_heads,
            n_kv_heads: u("attention.head_count_kv").unwrap_or(n_heads),
            ffn_dim: u("feed_forward_length")?,
            rms_eps: file.get_f64("llama.attention.layer_norm_rms_epsilon")? as f32,
            rope_theta: file.get_f64("llama.rope.freq_base").unwrap_or(10_000.0) as f32,
            max_seq_len: u("context_length")?.min(max_seq_len),
        };
        config.validate()?;
        if let Ok(rope_dims) = u("rope.dimension_count") {
            if rope_dims != config.head_dim() {
                return Err(LlamaError::BadConfig(format!(
                    "partial RoPE ({rope_dims} of {} dims) is not supported",
                    config.head_dim()
                )));
            }
        }
        Ok(config)
    }
}

/// One block's weights, row-major f32. Linear weights are `[out, in]` (GGUF and PyTorch layout).
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// RMSNorm before attention, `[dim]`.
    pub attn_norm: Vec<f32>,
    /// Query projection, `[dim, dim]`.
    pub wq: Vec<f32>,
    /// Key projection, `[kv_dim, dim]`.
    pub wk: Vec<f32>,
    /// Value projection, `[kv_dim, dim]`.
    pub wv: Vec<f32>,
    /// Attention output projection, `[dim, dim]`.
    pub wo: Vec<f32>,
    /// RMSNorm before the feed-forward, `[dim]`.
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate, `[ffn_dim, dim]`.
    pub w_gate: Vec<f32>,
    /// SwiGLU up projection, `[ffn_dim, dim]`.
    pub w_up: Vec<f32>,
    /// SwiGLU down projection, `[dim, ffn_dim]`.
    pub w_down: Vec<f32>,
}

/// All weights of a Llama model, row-major f32.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    /// Token embeddings, `[vocab, dim]`.
    pub embed: Vec<f32>,
    /// Decoder blocks.
    pub layers: Vec<LayerWeights>,
    /// Final RMSNorm, `[dim]`.
    pub out_norm: Vec<f32>,
    /// Output head `[vocab, dim]`; `None` when tied to the embeddings.
    pub lm_head: Option<Vec<f32>>,
    /// The same linear weights in their GGUF block quantisation, when every one of them is
    /// block-quantised: generating a token then reads these (about a fifth of the bytes).
    pub packed: Option<PackedWeights>,
}

/// One block's linear weights kept block-quantised, `[out, in]` as in GGUF.
#[derive(Debug, Clone)]
pub struct PackedLayer {
    /// Query, key and value projections stacked, `[dim + 2 kv_dim, dim]`.
    pub qkv: PackedMatrix,
    /// Attention output projection, `[dim, dim]`.
    pub wo: PackedMatrix,
    /// SwiGLU gate and up projections stacked, `[2 ffn_dim, dim]`.
    pub gate_up: PackedMatrix,
    /// SwiGLU down projection, `[dim, ffn_dim]`.
    pub down: PackedMatrix,
}

/// All linear weights kept block-quantised (see [`PackedMatrix`]).
#[derive(Debug, Clone)]
pub struct PackedWeights {
    /// Per decoder block.
    pub layers: Vec<PackedLayer>,
    /// The output head, or the token embeddings when tied, `[vocab, dim]`.
    pub lm_head: PackedMatrix,
}

impl PackedWeights {
    /// The block-quantised linear weights of a `llama` GGUF whose shapes were already checked;
    /// `None` unless every one is Q4_1 or Q8_0 (and stacked ones share a quantisation).
    fn from_gguf(file: &GgufFile<'_>, config: &LlamaConfig) -> Option<Self> {
        let pack = |name: &str| {
            let (info, raw) = file.tensor_bytes(name).ok()?;
            match info.shape_row_major()[..] {
                [rows, cols] => PackedMatrix::from_ggml(info.ggml_type, raw, rows, cols),
                _ => None,
            }
        };
        let layers = (0..config.n_layers)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                Some(PackedLayer {
                    qkv: PackedMatrix::stack(vec![
                        pack(&n("attn_q"))?,
                        pack(&n("attn_k"))?,
                        pack(&n("attn_v"))?,
                    ])?,
                    wo: pack(&n("attn_output"))?,
                    gate_up: PackedMatrix::stack(vec![pack(&n("ffn_gate"))?, pack(&n("ffn_up"))?])?,
                    down: pack(&n("ffn_down"))?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let lm_head = match file.tensor_info("output.weight") {
            Ok(_) => pack("output.weight")?,
            Err(_) => pack("token_embd.weight")?,
        };
        Some(PackedWeights { layers, lm_head })
    }

    /// Checks every matrix has the `[out, in]` shape `config` implies.
    fn check(&self, config: &LlamaConfig) -> Result<(), LlamaError> {
        let (d, kv, f, v) = (
            config.dim,
            config.n_kv_heads * config.head_dim(),
            config.ffn_dim,
            config.vocab_size,
        );
        let shape = |name: String, m: &PackedMatrix, rows: usize, cols: usize| {
            if (m.rows(), m.cols()) == (rows, cols) {
                Ok(())
            } else {
                Err(LlamaError::BadShape {
                    name,
                    got: vec![m.rows(), m.cols()],
                    expected: vec![rows, cols],
                })
            }
        };
        if self.layers.len() != config.n_layers {
            return Err(LlamaError::BadConfig(format!(
                "{} layers of packed weights for {} blocks",
                self.layers.len(),
                config.n_layers
            )));
        }
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("packed blk.{i}.{s}");
            shape(n("attn_qkv"), &l.qkv, d + 2 * kv, d)?;
            shape(n("attn_output"), &l.wo, d, d)?;
            shape(n("ffn_gate_up"), &l.gate_up, 2 * f, d)?;
            shape(n("ffn_down"), &l.down, d, f)?;
        }
        shape("packed output".into(), &self.lm_head, v, d)
    }
}

impl LlamaWeights {
    /// Random weights for tests: uniform in ±1/√fan_in, norms near 1, from a fixed seed.
    pub fn random(config: &LlamaConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut mat = |rows: usize, cols: usize| -> Vec<f32> {
            let a = 1.0 / (cols as f32).sqrt();
            (0..rows * cols).map(|_| rng.gen_range(-a..a)).collect()
        };
        let (d, kv, f) = (
            config.dim,
            config.n_kv_heads * config.head_dim(),
            config.ffn_dim,
        );
        let embed = mat(config.vocab_size, d);
        let layers = (0..config.n_layers)
            .map(|_| LayerWeights {
                attn_norm: mat(1, d).iter().map(|x| 1.0 + x).collect(),
                wq: mat(d, d),
                wk: mat(kv, d),
                wv: mat(kv, d),
                wo: mat(d, d),
                ffn_norm: mat(1, d).iter().map(|x| 1.0 + x).collect(),
                w_gate: mat(f, d),
                w_up: mat(f, d),
                w_down: mat(d, f),
            })
            .collect();
        let out_norm = mat(1, d).iter().map(|x| 1.0 + x).collect();
        LlamaWeights {
            embed,
            layers,
            out_norm,
            lm_head: None,
            packed: None,
        }
    }

    /// Reads and dequantises the weights of a `llama` GGUF.
    pub fn from_gguf(file: &GgufFile<'_>, config: &LlamaConfig) -> Result<Self, LlamaError> {
        let (d, kv, f, v) = (
            config.dim,
            config.n_kv_heads * config.head_dim(),
            config.ffn_dim,
            config.vocab_size,
        );
        let get = |name: &str, expected: &[usize]| -> Result<Vec<f32>, LlamaError> {
            let (shape, data) = file.tensor_f32(name)?;
            if shape != expected {
                return Err(LlamaError::BadShape {
                    name: name.to_owned(),
                    got: shape,
                    expected: expected.to_vec(),
                });
            }
            Ok(data)
        };
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(LayerWeights {
                attn_norm: get(&n("attn_norm"), &[d])?,
                wq: get(&n("attn_q"), &[d, d])?,
                wk: get(&n("attn_k"), &[kv, d])?,
                wv: get(&n("attn_v"), &[kv, d])?,
                wo: get(&n("attn_output"), &[d, d])?,
                ffn_norm: get(&n("ffn_norm"), &[d])?,
                w_gate: get(&n("ffn_gate"), &[f, d])?,
                w_up: get(&n("ffn_up"), &[f, d])?,
                w_down: get(&n("ffn_down"), &[d, f])?,
            });
        }
        let lm_head = match file.tensor_info("output.weight") {
            Ok(_) => Some(get("output.weight", &[v, d])?),
            Err(_) => None,
        };
        Ok(LlamaWeights {
            embed: get("token_embd.weight", &[v, d])?,
            layers,
            out_norm: get("output_norm.weight", &[d])?,
            lm_head,
            packed: PackedWeights::from_gguf(file, config),
        })
    }
}

struct Layer {
    attn_norm: Tensor<2>,
    /// The query, key and value projections side by side, `[dim, dim + 2 kv_dim]`: one
    /// matrix product instead of three.
    wqkv: Tensor<2>,
    wo: Tensor<2>,
    ffn_norm: Tensor<2>,
    /// The SwiGLU gate and up projections side by side, `[dim, 2 ffn_dim]`.
    w_gate_up: Tensor<2>,
    w_down: Tensor<2>,
}

/// A Llama model held as burn tensors.
pub struct Llama {
    config: LlamaConfig,
    device: Device,
    embed: Embedding,
    layers: Vec<Layer>,
    out_norm: Tensor<2>,
    /// Only the last position reaches the head, always a single row.
    lm_head: OutputHead,
    /// `[1, head_dim, head_dim]`: `x · P` maps each pair `(x0, x1)` to `(-x1, x0)`.
    rope_swap: Tensor<3>,
    /// Block-quantised linear weights for single-token steps, when the file had them.
    packed: Option<Vec<PackedLayer>>,
}

/// The output head, kept in one form only (it is the largest matrix: 113 MB as f32).
enum OutputHead {
    /// `[dim, vocab]` f32, in burn.
    Dense(Box<Tensor<2>>),
    /// `[vocab, dim]` block-quantised.
    Packed(Arc<PackedMatrix>),
}

/// The token embeddings, `[vocab, dim]`.
enum Embedding {
    /// f32, in burn.
    Dense(Box<Tensor<2>>),
    /// The block-quantised output head they are tied to (SmolLM2's case), read row by row
    /// with the dequantiser's arithmetic: the same f32 values without a 113 MB f32 copy.
    TiedToHead(Arc<PackedMatrix>),
}

impl std::fmt::Debug for Llama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Keys and values of the tokens processed so far, per layer, `[kv_heads, len, head_dim]`.
pub struct KvCache {
    layers: Vec<Option<(Tensor<3>, Tensor<3>)>>,
    len: usize,
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token has been processed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A tensor's elements, row-major.
fn read_back<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, LlamaError> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| LlamaError::Readback(format!("{e:?}")))
}

/// `x · w` for a linear layer (`w` is `[in, out]`) in burn.
///
/// burn's CPU backend hands a single-row product (every generated token) to `gemm`'s
/// matrix-vector kernel, which runs on one thread however large the weight; that product is
/// bound by memory bandwidth, which one core cannot saturate. So a single row is multiplied
/// by column blocks of `w` (views, no copy) on the rayon pool and the pieces are joined.
/// Every output element is the same dot product either way, so results are bit-identical.
fn burn_project(x: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
    let [rows, _] = x.dims();
    let [_, cols] = w.dims();
    // Blocks of at least 64 columns (256 bytes per weight row) keep the overhead small.
    let parts = rayon::current_num_threads().min(cols / 64);
    if rows != 1 || parts < 2 {
        return x.matmul(w.clone());
    }
    // Block width rounded up to 16 floats so each block starts on a 64-byte boundary.
    let width = cols.div_ceil(parts).next_multiple_of(16);
    let pieces: Vec<Tensor<2>> = (0..cols.div_ceil(width))
        .into_par_iter()
        .map(|i| {
            let start = i * width;
            x.clone()
                .matmul(w.clone().narrow(1, start, width.min(cols - start)))
        })
        .collect();
    Tensor::cat(pieces, 1)
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major, so `x · Wᵀ` is a plain matmul.
fn transposed(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

impl Llama {
    /// Builds the model on `device` from f32 weights.
    pub fn new(
        config: LlamaConfig,
        weights: LlamaWeights,
        device: &Device,
    ) -> Result<Self, LlamaError> {
        config.validate()?;
        let (d, kv, f, v) = (
            config.dim,
            config.n_kv_heads * config.head_dim(),
            config.ffn_dim,
            config.vocab_size,
        );
        let check = |name: &str, w: &[f32], n: usize| {
            if w.len() == n {
                Ok(())
            } else {
                Err(LlamaError::BadShape {
                    name: name.to_owned(),
                    got: vec![w.len()],
                    expected: vec![n],
                })
            }
        };
        let tensor = |w: Vec<f32>, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(w, shape), device)
        };
        // Linear weights `[out, in]` are stored transposed, `[in, out]`.
        let linear =
            |name: &str, w: &[f32], out: usize, inp: usize| -> Result<Tensor<2>, LlamaError> {
                check(name, w, out * inp)?;
                Ok(tensor(transposed(w, out, inp), [inp, out]))
            };
        let norm = |name: &str, w: Vec<f32>| -> Result<Tensor<2>, LlamaError> {
            check(name, &w, d)?;
            Ok(tensor(w, [1, d]))
        };
        if let Some(p) = &weights.packed {
            p.check(&config)?;
        }
        if weights.layers.len() != config.n_layers {
            return Err(LlamaError::BadConfig(format!(
                "{} layers of weights for {} blocks",
                weights.layers.len(),
                config.n_layers
            )));
        }
        let mut layers = Vec::with_capacity(config.n_layers);
        for (i, l) in weights.layers.into_iter().enumerate() {
            let n = |s: &str| format!("blk.{i}.{s}");
            layers.push(Layer {
                wqkv: Tensor::cat(
                    vec![
                        linear(&n("attn_q"), &l.wq, d, d)?,
                        linear(&n("attn_k"), &l.wk, kv, d)?,
                        linear(&n("attn_v"), &l.wv, kv, d)?,
                    ],
                    1,
                ),
                wo: linear(&n("attn_output"), &l.wo, d, d)?,
                w_gate_up: Tensor::cat(
                    vec![
                        linear(&n("ffn_gate"), &l.w_gate, f, d)?,
                        linear(&n("ffn_up"), &l.w_up, f, d)?,
                    ],
                    1,
                ),
                w_down: linear(&n("ffn_down"), &l.w_down, d, f)?,
                attn_norm: norm(&n("attn_norm"), l.attn_norm)?,
                ffn_norm: norm(&n("ffn_norm"), l.ffn_norm)?,
            });
        }
        check("token_embd", &weights.embed, v * d)?;
        let tied = weights.lm_head.is_none();
        let (packed, lm_head) = match weights.packed {
            Some(p) => (Some(p.layers), OutputHead::Packed(Arc::new(p.lm_head))),
            None => (
                None,
                OutputHead::Dense(Box::new(linear(
                    "output",
                    weights.lm_head.as_deref().unwrap_or(&weights.embed),
                    v,
                    d,
                )?)),
            ),
        };
        let hd = config.head_dim();
        let mut swap = vec![0.0f32; hd * hd];
        for i in 0..hd / 2 {
            swap[(2 * i + 1) * hd + 2 * i] = -1.0;
            swap[2 * i * hd + 2 * i + 1] = 1.0;
        }
        let rope_swap = Tensor::<3>::from_data(TensorData::new(swap, [1, hd, hd]), device);
        Ok(Llama {
            rope_swap,
            packed,
            embed: match &lm_head {
                OutputHead::Packed(head) if tied => Embedding::TiedToHead(head.clone()),
                _ => Embedding::Dense(Box::new(tensor(weights.embed, [v, d]))),
            },
            out_norm: norm("output_norm", weights.out_norm)?,
            lm_head,
            layers,
            device: device.clone(),
            config,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// An empty cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: (0..self.config.n_layers).map(|_| None).collect(),
            len: 0,
        }
    }

    fn rms_norm(&self, x: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
        let ms = x.clone().square().mean_dim(1);
        x * ms.add_scalar(self.config.rms_eps).sqrt().recip() * w.clone()
    }

    /// `x · w` for a linear layer. A single row (a generated token) with block-quantised
    /// weights at hand goes through [`PackedMatrix::matvec`], which reads about a fifth of the
    /// bytes; everything else is burn's product on the f32 weights.
    fn project(
        &self,
        x: Tensor<2>,
        w: &Tensor<2>,
        packed: Option<&PackedMatrix>,
    ) -> Result<Tensor<2>, LlamaError> {
        match packed {
            Some(p) if x.dims()[0] == 1 => {
                let y = p.matvec(&read_back(x)?);
                Ok(Tensor::from_data(
                    TensorData::new(y, [1, p.rows()]),
                    &self.device,
                ))
            }
            _ => Ok(burn_project(x, w)),
        }
    }

    /// Rotates adjacent pairs of `x` (`[heads, T, head_dim]`) by position:
    /// `(x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)`. The pair swap `(x0, x1) -> (-x1, x0)` is a
    /// product with a signed permutation matrix, which is exact, so this equals the pairwise
    /// formula bit for bit while avoiding slices and a concatenation.
    fn rope(&self, x: Tensor<3>, cos: &Tensor<3>, sin: &Tensor<3>) -> Tensor<3> {
        let swapped = x.clone().matmul(self.rope_swap.clone());
        x * cos.clone() + swapped * sin.clone()
    }

    /// Feeds `tokens` after those already in `cache` and returns the logits of the last one.
    pub fn forward(&self, tokens: &[TokenId], cache: &mut KvCache) -> Result<Vec<f32>, LlamaError> {
        let c = &self.config;
        let t = tokens.len();
        if t == 0 {
            return Err(LlamaError::EmptyInput);
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(LlamaError::TokenOutOfRange {
                id,
                vocab: c.vocab_size,
            });
        }
        let p0 = cache.len;
        if p0 + t > c.max_seq_len {
            return Err(LlamaError::ContextFull {
                needed: p0 + t,
                max: c.max_seq_len,
            });
        }
        let (h, kvh, hd) = (c.n_heads, c.n_kv_heads, c.head_dim());
        let group = h / kvh;
        let s_len = p0 + t;

        let mut x = match &self.embed {
            Embedding::Dense(table) => {
                let ids: Vec<i64> = tokens.iter().map(|&i| i64::from(i)).collect();
                let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [t]), &self.device);
                Tensor::clone(table).select(0, ids)
            }
            Embedding::TiedToHead(head) => {
                let mut rows = Vec::with_capacity(t * c.dim);
                for &id in tokens {
                    head.row(id as usize, &mut rows);
                }
                Tensor::from_data(TensorData::new(rows, [t, c.dim]), &self.device)
            }
        };

        // RoPE tables for positions p0..p0+t, in f64 then rounded, as `[1, t, hd]`.
        let half = hd / 2;
        let mut cos = Vec::with_capacity(t * hd);
        let mut sin = Vec::with_capacity(t * hd);
        for pos in p0..p0 + t {
            for i in 0..half {
                let inv = f64::from(c.rope_theta).powf(-(2.0 * i as f64) / hd as f64);
                let a = pos as f64 * inv;
                // Both elements of a pair rotate by the same angle.
                let (ca, sa) = (a.cos() as f32, a.sin() as f32);
                cos.extend([ca, ca]);
                sin.extend([sa, sa]);
            }
        }
        let cos = Tensor::<3>::from_data(TensorData::new(cos, [1, t, hd]), &self.device);
        let sin = Tensor::<3>::from_data(TensorData::new(sin, [1, t, hd]), &self.device);

        // Causal mask over the grouped query rows (row r is position p0 + r % t).
        let mask = (t > 1).then(|| {
            let mut m = Vec::with_capacity(group * t * s_len);
            for r in 0..group * t {
                let pos = p0 + r % t;
                m.extend((0..s_len).map(|k| if k <= pos { 0.0f32 } else { f32::NEG_INFINITY }));
            }
            Tensor::<3>::from_data(TensorData::new(m, [1, group * t, s_len]), &self.device)
        });
        let scale = 1.0 / (hd as f32).sqrt();

        for (i, (layer, slot)) in self.layers.iter().zip(cache.layers.iter_mut()).enumerate() {
            let packed = self.packed.as_ref().map(|p| &p[i]);
            let hn = self.rms_norm(x.clone(), &layer.attn_norm);
            let qkv = self.project(hn, &layer.wqkv, packed.map(|p| &p.qkv))?;
            let q = qkv.clone().narrow(1, 0, h * hd);
            let k = qkv.clone().narrow(1, h * hd, kvh * hd);
            let v = qkv.narrow(1, (h + kvh) * hd, kvh * hd);
            let q = q.reshape([t, h, hd]).swap_dims(0, 1);
            let k = k.reshape([t, kvh, hd]).swap_dims(0, 1);
            let v = v.reshape([t, kvh, hd]).swap_dims(0, 1);
            let q = self.rope(q, &cos, &sin);
            let k = self.rope(k, &cos, &sin);
            let (k, v) = match slot.take() {
                Some((pk, pv)) => (Tensor::cat(vec![pk, k], 1), Tensor::cat(vec![pv, v], 1)),
                None => (k, v),
            };
            *slot = Some((k.clone(), v.clone()));
            // Query head j uses key/value head j / group, so the `group` query heads of one
            // key/value head are consecutive and fold into its rows.
            let q = q.reshape([kvh, group * t, hd]);
            let mut att = q.matmul(k.swap_dims(1, 2)).mul_scalar(scale);
            if let Some(m) = &mask {
                att = att + m.clone();
            }
            let mut att_rows = read_back(att)?;
            vector::softmax_rows(&mut att_rows, s_len);
            let att = Tensor::<3>::from_data(
                TensorData::new(att_rows, [kvh, group * t, s_len]),
                &self.device,
            );
            let o = att
                .matmul(v)
                .reshape([h, t, hd])
                .swap_dims(0, 1)
                .reshape([t, h * hd]);
            x = x + self.project(o, &layer.wo, packed.map(|p| &p.wo))?;

            let hn = self.rms_norm(x.clone(), &layer.ffn_norm);
            let f = c.ffn_dim;
            let gu = self.project(hn, &layer.w_gate_up, packed.map(|p| &p.gate_up))?;
            let gated = vector::swiglu(&read_back(gu)?, f);
            let gated = Tensor::<2>::from_data(TensorData::new(gated, [t, f]), &self.device);
            x = x + self.project(gated, &layer.w_down, packed.map(|p| &p.down))?;
        }
        cache.len = s_len;

        let last = x.slice(s![t - 1..t, ..]);
        let last = self.rms_norm(last, &self.out_norm);
        match &self.lm_head {
            OutputHead::Dense(w) => read_back(burn_project(last, w)),
            OutputHead::Packed(w) => Ok(w.matvec(&read_back(last)?)),
        }
    }
}
