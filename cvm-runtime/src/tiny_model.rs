//! A tiny random-weight model as a GGUF file in memory, for tests, benchmarks and devnets
//! that must run the whole request path fast (a few milliseconds per token, no download).
//!
//! Same architecture and file format as SmolLM2 (Llama blocks, GPT-2 byte-level BPE), 32-wide
//! with two layers; its answers are meaningless text. Written from the GGUF v3 layout; the
//! crate's own reader ([`crate::model::gguf`]) loads it like any other model.

use crate::model::llama::{LlamaConfig, LlamaWeights};

enum Value {
    U32(u32),
    F32(f32),
    Str(String),
    Bool(bool),
    StrArray(Vec<String>),
    I32Array(Vec<i32>),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

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

/// The tiny model's hyper-parameters.
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

/// A complete tiny `llama` GGUF (F32 weights, seeded random) with a byte-level vocabulary.
pub fn tiny_gguf(seed: u64) -> Vec<u8> {
    let config = tiny_config();
    let w = LlamaWeights::random(&config, seed);
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
    let kvs = vec![
        ("general.architecture", Value::Str("llama".into())),
        ("llama.block_count", Value::U32(config.n_layers as u32)),
        (
            "llama.context_length",
            Value::U32(config.max_seq_len as u32),
        ),
        ("llama.embedding_length", Value::U32(config.dim as u32)),
        (
            "llama.feed_forward_length",
            Value::U32(config.ffn_dim as u32),
        ),
        (
            "llama.attention.head_count",
            Value::U32(config.n_heads as u32),
        ),
        (
            "llama.attention.head_count_kv",
            Value::U32(config.n_kv_heads as u32),
        ),
        ("llama.rope.freq_base", Value::F32(config.rope_theta)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(config.rms_eps),
        ),
        ("llama.vocab_size", Value::U32(config.vocab_size as u32)),
        ("tokenizer.ggml.model", Value::Str("gpt2".into())),
        ("tokenizer.ggml.pre", Value::Str("smollm".into())),
        ("tokenizer.ggml.tokens", Value::StrArray(tokens)),
        ("tokenizer.ggml.token_type", Value::I32Array(types)),
        ("tokenizer.ggml.merges", Value::StrArray(merges)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ];
    let (d, kv, f, v) = (
        config.dim as u64,
        (config.n_kv_heads * config.head_dim()) as u64,
        config.ffn_dim as u64,
        config.vocab_size as u64,
    );
    let mut tensors: Vec<(String, Vec<u64>, &[f32])> =
        vec![("token_embd.weight".into(), vec![d, v], &w.embed)];
    for (i, l) in w.layers.iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        tensors.push((n("attn_norm"), vec![d], &l.attn_norm));
        tensors.push((n("attn_q"), vec![d, d], &l.wq));
        tensors.push((n("attn_k"), vec![d, kv], &l.wk));
        tensors.push((n("attn_v"), vec![d, kv], &l.wv));
        tensors.push((n("attn_output"), vec![d, d], &l.wo));
        tensors.push((n("ffn_norm"), vec![d], &l.ffn_norm));
        tensors.push((n("ffn_gate"), vec![d, f], &l.w_gate));
        tensors.push((n("ffn_up"), vec![d, f], &l.w_up));
        tensors.push((n("ffn_down"), vec![f, d], &l.w_down));
    }
    tensors.push(("output_norm.weight".into(), vec![d], &w.out_norm));

    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in &kvs {
        put_str(&mut out, k);
        match v {
            Value::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            Value::F32(x) => {
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            Value::Bool(x) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(u8::from(*x));
            }
            Value::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                put_str(&mut out, s);
            }
            Value::StrArray(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for s in a {
                    put_str(&mut out, s);
                }
            }
            Value::I32Array(a) => {
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
    for (name, dims, data) in &tensors {
        put_str(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for x in dims {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // GGML F32
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset += ((data.len() * 4) as u64).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    let base = out.len();
    for ((_, _, data), off) in tensors.iter().zip(offsets) {
        out.resize(base + off as usize, 0);
        for x in data.iter() {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{LanguageModel, ModelLimits};

    #[test]
    fn loads_and_generates() {
        let m = LanguageModel::from_gguf_bytes(&tiny_gguf(1), ModelLimits::default()).unwrap();
        let ids = m.tokenizer().encode_ordinary("hello there").unwrap();
        assert!(!ids.is_empty());
    }
}
