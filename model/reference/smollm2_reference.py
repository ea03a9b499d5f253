#!/usr/bin/env python3
"""Independent reference for lucent-model's SmolLM2 model.

Nothing here shares code with the Rust implementation:
  * weights are read and dequantised by the PyPI `gguf` package (llama.cpp's gguf-py, MIT);
  * the forward pass is a plain numpy Llama (RMSNorm, RoPE in ggml's "normal" pair layout, which
    is the layout GGUF's llama Q/K weights are stored for, grouped-query attention, SwiGLU),
    float32 throughout;
  * the tokenizer is Hugging Face `tokenizers` (Apache-2.0) configured from the GGUF vocabulary
    and merges with SmolLM2's pre-tokeniser (individual digits, then GPT-2 byte-level regex).

Sub-commands (see README.md for the exact invocations that produced the data files):
  tokenizer  --out FILE   reference token ids for a fixed set of strings
  greedy     --out FILE   greedy continuation (32 tokens) for a fixed chat prompt, with logits
  quant      --out FILE   random Q4_1 / Q8_0 blocks and their gguf-py dequantisation
  bench                   prompt and generation tokens/s for the benchmark prompt (JSON on stdout)
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize, quantize

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path():
    d = os.environ.get("LUCENT_MODEL_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "lucent", "models")
    return os.path.join(d, MODEL_FILE)


# ---------------------------------------------------------------- tokenizer (HF tokenizers)

def build_tokenizer(reader):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ")) for m in reader.fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    specials = [t for t, ty in zip(tokens, types) if ty == 3]  # CONTROL tokens
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tk


TOKENIZER_STRINGS = [
    "Hello, world!",
    "Summarise this conversation in two sentences.",
    "I'm sure they'll say we've done it; you'd agree?",
    "The meeting is on 2024-03-15 at 10:30, room 42 (budget: $1,234.56).",
    "  leading spaces, trailing spaces   ",
    "line one\nline two\n\n\tindented\r\nwindows",
    "Ünïcödé: café naïve Straße — “quotes” … 東京 こんにちは 🙂👍🏽",
    "fn main() { println!(\"{}\", 1 + 2); }",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "123456789 0.5 ¹²³ ½ Ⅻ",
    "",
    " ",
    "email: someone@example.org, url: https://example.org/a?b=c&d=e#f",
]


def cmd_tokenizer(args):
    reader = GGUFReader(model_path())
    tk = build_tokenizer(reader)
    cases = []
    for s in TOKENIZER_STRINGS:
        ids = tk.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids})
    write_json(args.out, {"source": "HF tokenizers " + __import__("tokenizers").__version__ + " from GGUF vocab/merges", "cases": cases})


# ---------------------------------------------------------------- numpy Llama

class Llama:
    def __init__(self, reader):
        f = reader.fields
        self.n_layer = int(f["llama.block_count"].contents())
        self.dim = int(f["llama.embedding_length"].contents())
        self.n_head = int(f["llama.attention.head_count"].contents())
        self.n_kv = int(f["llama.attention.head_count_kv"].contents())
        self.eps = float(f["llama.attention.layer_norm_rms_epsilon"].contents())
        self.theta = float(f["llama.rope.freq_base"].contents())
        self.head_dim = self.dim // self.n_head
        w = {}
        for t in reader.tensors:
            a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
            w[t.name] = a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim > 1 or len(t.shape) > 1 else a
        self.w = w
        self.embd = w["token_embd.weight"]  # [vocab, dim]
        self.out = w.get("output.weight", self.embd)  # tied embeddings
        self.reset()

    def reset(self):
        self.k = [None] * self.n_layer
        self.v = [None] * self.n_layer
        self.pos = 0

    def rmsnorm(self, x, w):
        ms = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
        return (x * (np.float32(1.0) / np.sqrt(ms + np.float32(self.eps)))) * w

    def rope(self, x, pos):
        # x: [heads, T, head_dim]; ggml "normal" RoPE rotates adjacent pairs (x[2i], x[2i+1]).
        half = self.head_dim // 2
        inv = self.theta ** (-np.arange(half, dtype=np.float64) * 2.0 / self.head_dim)
        ang = (pos[:, None].astype(np.float64) * inv[None, :])
        cos = np.cos(ang).astype(np.float32)
        sin = np.sin(ang).astype(np.float32)
        x0 = x[..., 0::2]
        x1 = x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def forward(self, ids):
        """Feeds `ids` after what is cached; returns logits of the last position [vocab]."""
        T = len(ids)
        H, KV, D = self.n_head, self.n_kv, self.head_dim
        pos = np.arange(self.pos, self.pos + T)
        x = self.embd[np.asarray(ids)]
        for l in range(self.n_layer):
            p = f"blk.{l}."
            w = self.w
            h = self.rmsnorm(x, w[p + "attn_norm.weight"])
            q = (h @ w[p + "attn_q.weight"].T).reshape(T, H, D).transpose(1, 0, 2)
            k = (h @ w[p + "attn_k.weight"].T).reshape(T, KV, D).transpose(1, 0, 2)
            v = (h @ w[p + "attn_v.weight"].T).reshape(T, KV, D).transpose(1, 0, 2)
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            self.k[l] = k if self.k[l] is None else np.concatenate([self.k[l], k], axis=1)
            self.v[l] = v if self.v[l] is None else np.concatenate([self.v[l], v], axis=1)
            K = np.repeat(self.k[l], H // KV, axis=0)  # head h uses kv head h // (H/KV)
            V = np.repeat(self.v[l], H // KV, axis=0)
            S = K.shape[1]
            att = (q @ K.transpose(0, 2, 1)) * np.float32(1.0 / np.sqrt(D))
            kpos = np.arange(S)
            att = np.where(kpos[None, None, :] <= pos[None, :, None], att, np.float32(-np.inf))
            att = att - att.max(axis=-1, keepdims=True)
            att = np.exp(att)
            att = att / att.sum(axis=-1, keepdims=True)
            o = (att @ V).transpose(1, 0, 2).reshape(T, H * D)
            x = x + o @ w[p + "attn_output.weight"].T
            h = self.rmsnorm(x, w[p + "ffn_norm.weight"])
            g = h @ w[p + "ffn_gate.weight"].T
            u = h @ w[p + "ffn_up.weight"].T
            x = x + ((g / (np.float32(1.0) + np.exp(-g))) * u) @ w[p + "ffn_down.weight"].T
        self.pos += T
        x = self.rmsnorm(x[-1:], self.w["output_norm.weight"])
        return (x @ self.out.T)[0]


def chatml(messages, add_generation_prompt=True):
    # The GGUF's chat template, written out (independently of the Rust code).
    s = ""
    if messages and messages[0]["role"] != "system":
        s += "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    for m in messages:
        s += "<|im_start|>" + m["role"] + "\n" + m["content"] + "<|im_end|>\n"
    if add_generation_prompt:
        s += "<|im_start|>assistant\n"
    return s


GREEDY_MESSAGES = [
    {"role": "user", "content": "What is the capital of France? Answer in one sentence."},
]
BENCH_MESSAGES = [
    {"role": "system", "content": "You summarise conversations briefly and accurately."},
    {"role": "user", "content": (
        "Summarise this conversation:\n"
        "Alice: Are we still on for the design review tomorrow at ten?\n"
        "Bob: Yes, but Carol can't make it, so we'll move the budget part to Friday.\n"
        "Alice: Fine. I'll send the slides tonight and book the small room.\n"
        "Bob: Great, and please add the latency numbers from last week's test.")},
]
STOP = (0, 2)  # <|endoftext|>, <|im_end|>


def cmd_greedy(args):
    reader = GGUFReader(model_path())
    tk = build_tokenizer(reader)
    model = Llama(reader)
    prompt = chatml(GREEDY_MESSAGES)
    ids = tk.encode(prompt, add_special_tokens=False).ids
    logits = model.forward(ids)
    first_logits = logits.copy()
    out = []
    for _ in range(args.n):
        nxt = int(np.argmax(logits))
        out.append(nxt)
        logits = model.forward([nxt])
    top = np.argsort(-first_logits)[:10]
    write_json(args.out, {
        "source": "numpy Llama over gguf-py dequantisation, float32, greedy (no stop tokens)",
        "messages": GREEDY_MESSAGES,
        "prompt": prompt,
        "prompt_ids": ids,
        "generated_ids": out,
        "generated_text": tk.decode(out, skip_special_tokens=False),
        "first_step_top10": [{"id": int(i), "logit": float(first_logits[i])} for i in top],
    })


def cmd_bench(args):
    reader = GGUFReader(model_path())
    tk = build_tokenizer(reader)
    t0 = time.perf_counter()
    model = Llama(reader)
    load_s = time.perf_counter() - t0
    ids = tk.encode(chatml(BENCH_MESSAGES), add_special_tokens=False).ids
    best_prompt = None
    for _ in range(args.repeats):
        model.reset()
        t0 = time.perf_counter()
        logits = model.forward(ids)
        dt = time.perf_counter() - t0
        best_prompt = dt if best_prompt is None else min(best_prompt, dt)
    t0 = time.perf_counter()
    out = []
    for _ in range(args.gen):
        nxt = int(np.argmax(logits))
        out.append(nxt)
        logits = model.forward([nxt])
    gen_s = time.perf_counter() - t0
    print(json.dumps({
        "impl": "numpy reference",
        "numpy": np.__version__,
        "load_s": load_s,
        "prompt_tokens": len(ids),
        "prompt_s": best_prompt,
        "prompt_tok_s": len(ids) / best_prompt,
        "gen_tokens": len(out),
        "gen_s": gen_s,
        "gen_tok_s": len(out) / gen_s,
        "generated_ids": out,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def cmd_quant(args):
    rng = np.random.default_rng(20261126)
    cases = []
    for qt in (GGMLQuantizationType.Q4_1, GGMLQuantizationType.Q8_0):
        x = (rng.standard_normal((4, 32)) * rng.uniform(0.01, 3.0, size=(4, 1))).astype(np.float32)
        raw = quantize(x, qt)
        deq = dequantize(raw, qt).reshape(-1)
        cases.append({
            "type": qt.name,
            "blocks_hex": raw.tobytes().hex(),
            "values": [float(v) for v in deq],
        })
    write_json(args.out, {"source": "gguf-py " + pkg_version("gguf") + " quantize/dequantize, seed 20261126", "cases": cases})


def pkg_version(name):
    from importlib.metadata import version
    return version(name)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tokenizer"); p.add_argument("--out", required=True); p.set_defaults(f=cmd_tokenizer)
    p = sub.add_parser("greedy"); p.add_argument("--out", required=True); p.add_argument("--n", type=int, default=32); p.set_defaults(f=cmd_greedy)
    p = sub.add_parser("quant"); p.add_argument("--out", required=True); p.set_defaults(f=cmd_quant)
    p = sub.add_parser("bench"); p.add_argument("--gen", type=int, default=64); p.add_argument("--repeats", type=int, default=3); p.set_defaults(f=cmd_bench)
    args = ap.parse_args()
    args.f(args)


if __name__ == "__main__":
    main()
