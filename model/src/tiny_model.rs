//! A tiny random-weight model as a GGUF file in memory, for tests, benchmarks and devnets
//! that must run the whole request path fast (a few milliseconds per token, no download).
//!
//! Same architecture and file format as SmolLM2 (Llama blocks, GPT-2 byte-level BPE), 32-wide
//! with two layers; its answers are meaningless text. The GGUF writer ([`write_gguf`]) is
//! written from the GGUF v3 layout and shares no code with the crate's reader
//! ([`crate::gguf`]), which loads its files like any other model; the loader tests
//! use it to write known blocks.
//!
//! Only with the feature `test-support`: the measured runtime never carries it.

use crate::llama::{LlamaConfig, LlamaWeights};

/// A GGUF metadata value to write.
#[derive(Debug, Clone)]
pub enum GgufValue {
    /// `UINT32`.
    U32(u32),
    /// `FLOAT32`.
    F32(f32),
    /// `STRING`.
    Str(String),
    /// `BOOL`.
    Bool(bool),
    /// `ARRAY` of `STRING`.
    StrArray(Vec<String>),
    /// `ARRAY` of `INT32`.
    I32Array(Vec<i32>),
}

/// A tensor to write.
#[derive(Debug, Clone)]
pub struct GgufTensor {
    /// Its name.
    pub name: String,
    /// GGML dimensions, fastest-varying first.
    pub dims: Vec<u64>,
    /// GGML type code (0 = F32, 3 = Q4_1, 8 = Q8_0 … as in `ggml.h`).
    pub code: u32,
    /// The raw data, already in that type's layout.
    pub raw: Vec<u8>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Writes a GGUF v3 file with the default 32-byte alignment.
pub fn write_gguf(kvs: &[(&str, GgufValue)], tensors: &[GgufTensor]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        put_str(&mut out, k);
        match v {
            GgufValue::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            GgufValue::F32(x) => {
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            GgufValue::Bool(x) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(u8::from(*x));
            }
            GgufValue::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                put_str(&mut out, s);
            }
            GgufValue::StrArray(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for s in a {
                    put_str(&mut out, s);
                }
            }
            GgufValue::I32Array(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&5u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for x in a {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for t in tensors {
        put_str(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.code.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset += (t.raw.len() as u64).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    let base = out.len();
    for (t, off) in tensors.iter().zip(offsets) {
        out.resize(base + off as usize, 0);
        out.extend_from_slice(&t.raw);
    }
    out
}

/// f32 values as GGML F32 bytes.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// GPT-2's byte → printable character map, written out from its definition.
fn byte_chars() -> Vec<char> {
    let mut bs: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut map = vec!['\0'; 256];
    for (b, c) in bs.iter().zip(cs) {
        map[*b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    map
}

/// A tiny byte-level vocabulary: three control tokens (`<|endoftext|>`, `<|im_start|>`,
/// `<|im_end|>`), the 256 byte symbols, and a few merges. Returns tokens, token types and
/// merges.
pub fn tiny_vocab() -> (Vec<String>, Vec<i32>, Vec<String>) {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut types = vec![3, 3, 3];
    for c in byte_chars() {
        tokens.push(c.to_string());
        types.push(1);
    }
    let merges: Vec<String> = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for m in &merges {
        tokens.push(m.replace(' ', ""));
        types.push(1);
    }
    (tokens, types, merges)
}

/// The tiny model's hyper-parameters (its vocabulary is [`tiny_vocab`]).
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 3 + 256 + 6,
        dim: 32,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        ffn_dim: 64,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        max_seq_len: 4096,
    }
}

/// A complete `llama` GGUF of `weights` (F32) with the [`tiny_vocab`] vocabulary, whose
/// size `config.vocab_size` must be.
pub fn llama_gguf(config: &LlamaConfig, w: &LlamaWeights) -> Vec<u8> {
    let (d, kv, f, v) = (
        config.dim as u64,
        (config.n_kv_heads * config.head_dim()) as u64,
        config.ffn_dim as u64,
        config.vocab_size as u64,
    );
    let t = |name: String, dims: Vec<u64>, data: &[f32]| GgufTensor {
        name,
        dims,
        code: 0,
        raw: f32_bytes(data),
    };
    let mut tensors = vec![t("token_embd.weight".into(), vec![d, v], &w.embed)];
    for (i, l) in w.layers.iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        tensors.push(t(n("attn_norm"), vec![d], &l.attn_norm));
        tensors.push(t(n("attn_q"), vec![d, d], &l.wq));
        tensors.push(t(n("attn_k"), vec![d, kv], &l.wk));
        tensors.push(t(n("attn_v"), vec![d, kv], &l.wv));
        tensors.push(t(n("attn_output"), vec![d, d], &l.wo));
        tensors.push(t(n("ffn_norm"), vec![d], &l.ffn_norm));
        tensors.push(t(n("ffn_gate"), vec![d, f], &l.w_gate));
        tensors.push(t(n("ffn_up"), vec![d, f], &l.w_up));
        tensors.push(t(n("ffn_down"), vec![f, d], &l.w_down));
    }
    tensors.push(t("output_norm.weight".into(), vec![d], &w.out_norm));
    llama_gguf_of(config, &tensors)
}

/// The tiny model stored as SmolLM2's file is: linear weights in random Q4_1 blocks, token
/// embeddings (tied output head) in random Q8_0 blocks, norms in F32; from a fixed `seed`.
pub fn quantised_tiny_gguf(seed: u64) -> Vec<u8> {
    use half::f16;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let config = tiny_config();
    let mut rng = StdRng::seed_from_u64(seed);
    let (d, kv, f, v) = (
        config.dim,
        config.n_kv_heads * config.head_dim(),
        config.ffn_dim,
        config.vocab_size,
    );
    // Weights spread about ±1/√fan_in, as `LlamaWeights::random`.
    let mut q4_1 = |name: String, rows: usize, cols: usize| {
        let a = 1.0 / (cols as f32).sqrt();
        let mut raw = Vec::new();
        for _ in 0..rows * cols / 32 {
            raw.extend(f16::from_f32(2.0 * a / 15.0).to_le_bytes());
            raw.extend(f16::from_f32(-a).to_le_bytes());
            raw.extend((0..16).map(|_| rng.gen::<u8>()));
        }
        GgufTensor {
            name,
            dims: vec![cols as u64, rows as u64],
            code: 3,
            raw,
        }
    };
    let mut tensors = Vec::new();
    for i in 0..config.n_layers {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        tensors.push(q4_1(n("attn_q"), d, d));
        tensors.push(q4_1(n("attn_k"), kv, d));
        tensors.push(q4_1(n("attn_v"), kv, d));
        tensors.push(q4_1(n("attn_output"), d, d));
        tensors.push(q4_1(n("ffn_gate"), f, d));
        tensors.push(q4_1(n("ffn_up"), f, d));
        tensors.push(q4_1(n("ffn_down"), d, f));
    }
    let mut embed = Vec::new();
    for _ in 0..v * d / 32 {
        embed.extend(f16::from_f32(1.0 / 127.0).to_le_bytes());
        embed.extend((0..32).map(|_| rng.gen::<u8>()));
    }
    tensors.push(GgufTensor {
        name: "token_embd.weight".into(),
        dims: vec![d as u64, v as u64],
        code: 8,
        raw: embed,
    });
    let norm = |name: String| GgufTensor {
        name,
        dims: vec![d as u64],
        code: 0,
        raw: f32_bytes(&vec![1.0; d]),
    };
    for i in 0..config.n_layers {
        tensors.push(norm(format!("blk.{i}.attn_norm.weight")));
        tensors.push(norm(format!("blk.{i}.ffn_norm.weight")));
    }
    tensors.push(norm("output_norm.weight".into()));
    llama_gguf_of(&config, &tensors)
}

/// A `llama` GGUF of `config`'s metadata, the [`tiny_vocab`] vocabulary and `tensors`.
fn llama_gguf_of(config: &LlamaConfig, tensors: &[GgufTensor]) -> Vec<u8> {
    let (tokens, types, merges) = tiny_vocab();
    debug_assert_eq!(tokens.len(), config.vocab_size);
    let kvs = [
        ("general.architecture", GgufValue::Str("llama".into())),
        ("llama.block_count", GgufValue::U32(config.n_layers as u32)),
        (
            "llama.context_length",
            GgufValue::U32(config.max_seq_len as u32),
        ),
        ("llama.embedding_length", GgufValue::U32(config.dim as u32)),
        (
            "llama.feed_forward_length",
            GgufValue::U32(config.ffn_dim as u32),
        ),
        (
            "llama.attention.head_count",
            GgufValue::U32(config.n_heads as u32),
        ),
        (
            "llama.attention.head_count_kv",
            GgufValue::U32(config.n_kv_heads as u32),
        ),
        ("llama.rope.freq_base", GgufValue::F32(config.rope_theta)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            GgufValue::F32(config.rms_eps),
        ),
        ("llama.vocab_size", GgufValue::U32(config.vocab_size as u32)),
        ("tokenizer.ggml.model", GgufValue::Str("gpt2".into())),
        ("tokenizer.ggml.pre", GgufValue::Str("smollm".into())),
        ("tokenizer.ggml.tokens", GgufValue::StrArray(tokens)),
        ("tokenizer.ggml.token_type", GgufValue::I32Array(types)),
        ("tokenizer.ggml.merges", GgufValue::StrArray(merges)),
        ("tokenizer.ggml.eos_token_id", GgufValue::U32(2)),
        ("tokenizer.ggml.add_bos_token", GgufValue::Bool(false)),
    ];
    write_gguf(&kvs, tensors)
}

/// The tiny model ([`tiny_config`], weights seeded with `seed`) as a GGUF file.
pub fn tiny_gguf(seed: u64) -> Vec<u8> {
    let config = tiny_config();
    llama_gguf(&config, &LlamaWeights::random(&config, seed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{LanguageModel, ModelLimits};

    #[test]
    fn loads_and_generates() {
        let m = LanguageModel::from_gguf_bytes(&tiny_gguf(1), ModelLimits::default()).unwrap();
        let ids = m.tokenizer().encode_ordinary("hello there").unwrap();
        assert!(!ids.is_empty());
    }
}
