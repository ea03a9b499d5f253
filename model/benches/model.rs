//! Prompt and generation throughput of SmolLM2 in burn, beside the numpy reference run as a
//! subprocess in the same run on the same machine, plus peak memory of both.
//!
//! `cargo bench -p lucent-model --bench model` (needs `scripts/fetch-model.sh`; the
//! reference runs when `.venv-model/bin/python` exists at the repository root, or when
//! `LUCENT_REFERENCE_PYTHON` names a Python with numpy, gguf and tokenizers).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use lucent_model::sampling::argmax;
use lucent_model::{chat, default_model_path, ChatMessage, LanguageModel, ModelLimits, Role};

const GEN_TOKENS: usize = 64;
const PROMPT_REPEATS: usize = 3;

/// Must match `BENCH_MESSAGES` in reference/smollm2_reference.py (the bench checks the token
/// counts agree).
fn bench_messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            Role::System,
            "You summarise conversations briefly and accurately.",
        ),
        ChatMessage::new(
            Role::User,
            "Summarise this conversation:\n\
             Alice: Are we still on for the design review tomorrow at ten?\n\
             Bob: Yes, but Carol can't make it, so we'll move the budget part to Friday.\n\
             Alice: Fine. I'll send the slides tonight and book the small room.\n\
             Bob: Great, and please add the latency numbers from last week's test.",
        ),
    ]
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let Some(path) = default_model_path().filter(|p| p.exists()) else {
        println!("SKIPPED: model weights not found; run scripts/fetch-model.sh");
        return;
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let t0 = Instant::now();
    let lm = LanguageModel::from_path(&path, ModelLimits::default()).unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    let prompt = lm
        .tokenizer()
        .encode(&chat::render_chatml(&bench_messages(), true))
        .unwrap();
    let llama = lm.llama();

    let mut best_prompt = f64::INFINITY;
    let mut logits = Vec::new();
    let mut cache = llama.new_cache();
    for _ in 0..PROMPT_REPEATS {
        cache = llama.new_cache();
        let t = Instant::now();
        logits = llama.forward(&prompt, &mut cache).unwrap();
        best_prompt = best_prompt.min(t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let mut generated = Vec::new();
    for _ in 0..GEN_TOKENS {
        let next = argmax(&logits).unwrap() as u32;
        generated.push(next);
        logits = llama.forward(&[next], &mut cache).unwrap();
    }
    let gen_s = t.elapsed().as_secs_f64();
    let ours_prompt = prompt.len() as f64 / best_prompt;
    let ours_gen = GEN_TOKENS as f64 / gen_s;
    let ours_rss = peak_rss_kib();

    println!("machine: {threads} threads available; {}", cpu_name());
    println!(
        "prompt: {} tokens (best of {PROMPT_REPEATS}); generation: {GEN_TOKENS} greedy tokens",
        prompt.len()
    );
    println!(
        "burn (flex, f32): load {load_s:.2} s, prompt {ours_prompt:.1} tok/s, generation {ours_gen:.1} tok/s, peak RSS {} MiB",
        ours_rss.map_or("?".into(), |k| (k / 1024).to_string())
    );

    let python = std::env::var_os("LUCENT_REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.venv-model/bin/python"
            ))
        });
    if !python.exists() {
        println!("reference: SKIPPED ({} not found)", python.display());
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reference/smollm2_reference.py"
    );
    let out = Command::new(&python)
        .args([
            script,
            "bench",
            "--gen",
            &GEN_TOKENS.to_string(),
            "--repeats",
            &PROMPT_REPEATS.to_string(),
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        println!(
            "reference: FAILED: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ref_prompt = r["prompt_tok_s"].as_f64().unwrap();
    let ref_gen = r["gen_tok_s"].as_f64().unwrap();
    println!(
        "numpy reference ({}): load {:.2} s, prompt {ref_prompt:.1} tok/s, generation {ref_gen:.1} tok/s, peak RSS {} MiB",
        r["numpy"].as_str().unwrap_or("?"),
        r["load_s"].as_f64().unwrap_or(f64::NAN),
        r["peak_rss_kib"].as_u64().map_or("?".into(), |k| (k / 1024).to_string())
    );
    assert_eq!(
        r["prompt_tokens"].as_u64(),
        Some(prompt.len() as u64),
        "same prompt"
    );
    let same = r["generated_ids"].as_array().map(|a| {
        a.iter()
            .map(|v| v.as_u64().unwrap_or(u64::MAX) as u32)
            .collect::<Vec<_>>()
    }) == Some(generated.clone());
    println!("same {GEN_TOKENS} greedy tokens as the reference: {same}");
    println!(
        "ratio burn / reference: prompt {:.2}x, generation {:.2}x",
        ours_prompt / ref_prompt,
        ours_gen / ref_gen
    );
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
