//! Test helpers for the model tests: a minimal GGUF writer (independent of the crate's reader)
//! and a tiny vocabulary, so tests build small GGUF files themselves.
#![allow(dead_code, clippy::unwrap_used)]

use lucent_cvm_runtime::model::llama::{LlamaConfig, LlamaWeights};

/// A metadata value to write.
pub enum V {
    U32(u32),
    F32(f32),
    Str(String),
    Bool(bool),
    StrArray(Vec<String>),
    I32Array(Vec<i32>),
}

/// A tensor to write: name, GGML dims (fastest first), GGML type code, raw bytes.
pub struct T {
    pub name: String,
    pub dims: Vec<u64>,
    pub code: u32,
    pub raw: Vec<u8>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Writes a GGUF v3 file with 32-byte alignment.
pub fn write_gguf(kvs: &[(&str, V)], tensors: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        put_str(&mut out, k);
        match v {
            V::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            V::F32(x) => {
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            V::Bool(x) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(u8::from(*x));
            }
            V::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                put_str(&mut out, s);
            }
            V::StrArray(a) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                for s in a {
                    put_str(&mut out, s);
                }
            }
            V::I32Array(a) => {
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
pub fn byte_chars() -> Vec<char> {
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
        map[*b as usize] = char::from_u32(c).unwrap();
    }
    map
}

/// A tiny byte-level vocabulary: three control tokens, the 256 byte symbols, a few merges.
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

/// The tiny model's hyper-parameters for a vocabulary of `vocab` tokens.
pub fn tiny_config(vocab: usize) -> LlamaConfig {
    LlamaConfig {
        vocab_size: vocab,
        dim: 32,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        ffn_dim: 64,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        max_seq_len: 512,
    }
}

/// A complete tiny `llama` GGUF (F32 weights) with the tiny vocabulary.
pub fn tiny_gguf(config: &LlamaConfig, w: &LlamaWeights) -> Vec<u8> {
    let (tokens, types, merges) = tiny_vocab();
    assert_eq!(tokens.len(), config.vocab_size);
    let kvs = vec![
        ("general.architecture", V::Str("llama".into())),
        ("llama.block_count", V::U32(config.n_layers as u32)),
        ("llama.context_length", V::U32(config.max_seq_len as u32)),
        ("llama.embedding_length", V::U32(config.dim as u32)),
        ("llama.feed_forward_length", V::U32(config.ffn_dim as u32)),
        ("llama.attention.head_count", V::U32(config.n_heads as u32)),
        (
            "llama.attention.head_count_kv",
            V::U32(config.n_kv_heads as u32),
        ),
        ("llama.rope.freq_base", V::F32(config.rope_theta)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            V::F32(config.rms_eps),
        ),
        ("llama.vocab_size", V::U32(config.vocab_size as u32)),
        ("tokenizer.ggml.model", V::Str("gpt2".into())),
        ("tokenizer.ggml.pre", V::Str("smollm".into())),
        ("tokenizer.ggml.tokens", V::StrArray(tokens)),
        ("tokenizer.ggml.token_type", V::I32Array(types)),
        ("tokenizer.ggml.merges", V::StrArray(merges)),
        ("tokenizer.ggml.eos_token_id", V::U32(2)),
        ("tokenizer.ggml.add_bos_token", V::Bool(false)),
    ];
    let (d, kv, f, v) = (
        config.dim as u64,
        (config.n_kv_heads * config.head_dim()) as u64,
        config.ffn_dim as u64,
        config.vocab_size as u64,
    );
    let t = |name: String, dims: Vec<u64>, data: &[f32]| T {
        name,
        dims,
        code: 0,
        raw: f32_bytes(data),
    };
    let mut ts = vec![t("token_embd.weight".into(), vec![d, v], &w.embed)];
    for (i, l) in w.layers.iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        ts.push(t(n("attn_norm"), vec![d], &l.attn_norm));
        ts.push(t(n("attn_q"), vec![d, d], &l.wq));
        ts.push(t(n("attn_k"), vec![d, kv], &l.wk));
        ts.push(t(n("attn_v"), vec![d, kv], &l.wv));
        ts.push(t(n("attn_output"), vec![d, d], &l.wo));
        ts.push(t(n("ffn_norm"), vec![d], &l.ffn_norm));
        ts.push(t(n("ffn_gate"), vec![d, f], &l.w_gate));
        ts.push(t(n("ffn_up"), vec![d, f], &l.w_up));
        ts.push(t(n("ffn_down"), vec![f, d], &l.w_down));
    }
    ts.push(t("output_norm.weight".into(), vec![d], &w.out_norm));
    write_gguf(&kvs, &ts)
}
