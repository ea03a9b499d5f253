//! What the encrypted request path costs beside the model call it carries, and how many
//! sealed requests per second a real `lucent-cvm-runtime` process answers.
//!
//! Run: `cargo bench -p lucent-tests --bench requests` (SmolLM2 parts need
//! `scripts/fetch-model.sh`; without the weights they print SKIPPED).
//!
//! 1. In process, per request, the median over many runs of
//!    - the encrypted path: the client seals `{"text", "max_tokens"}`, the CVM opens it
//!      (RFC 9458 framing on HPKE, `MediaLabels::LUCENT_CVM`) and parses the JSON, then
//!      serialises and seals the answer, and the client opens it;
//!    - the model call the runtime makes for `/v1/summarize` (`run_task_text`) on a sample
//!      conversation: the tiny random model, and SmolLM2-135M when its weights are present;
//!
//!    and the share of the encrypted path in the whole request.
//! 2. Against real processes (log on SQLite, a witness, the key broker, the runtime on the
//!    simulated TEE with the tiny model, all release builds): sealed `/v1/summarize` requests
//!    per second over keep-alive HTTP from 1 and 2 client threads, beside `GET /v1/status`
//!    on the same server in the same run (an HTTP round trip with no crypto and no model);
//!    and with SmolLM2 (when present), the round trip of real summarisation requests beside
//!    the model time the runtime reports.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lucent_cvm_runtime::api::run_task_text;
use lucent_model::tiny_model::tiny_gguf;
use lucent_model::{default_model_path, LanguageModel, ModelLimits, Task};
use lucent_tests::net::{Bins, CvmClient, Devnet, DevnetOptions, RuntimeProc, RuntimeSettings};
use lucent_verifier::encapsulation::{
    open_request, open_response, seal_request, KeyConfig, KeyPair, ResponseContext,
};
use rand_core::OsRng;

const CONVERSATION: &str = "Summarise this conversation:\n\
    Alice: Are we still on for the design review tomorrow at ten?\n\
    Bob: Yes, but Carol can't make it, so we'll move the budget part to Friday.\n\
    Alice: Fine. I'll send the slides tonight and book the small room.\n\
    Bob: Great, and please add the latency numbers from last week's test.";
/// Tokens generated per request: the tiny model (fast) and SmolLM2 (a short summary).
const TINY_TOKENS: u32 = 16;
const REAL_TOKENS: u32 = 64;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Median seconds of `f` over `n` runs after `warm` unmeasured runs.
fn time_median(warm: usize, n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        f();
    }
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// One request through the encrypted path, both sides, with the runtime's JSON shapes.
fn encrypted_path(server: &KeyPair, config: &KeyConfig, answer_text: &str) {
    let plain =
        serde_json::to_vec(&serde_json::json!({"text": CONVERSATION, "max_tokens": REAL_TOKENS}))
            .unwrap();
    let (request, ctx) = seal_request(config, &plain, &mut OsRng).unwrap();
    // CVM side.
    let (opened, sealer) = open_request(server, &request).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&opened).unwrap();
    black_box(parsed["text"].as_str().unwrap().len());
    let answer = serde_json::to_vec(&serde_json::json!({
        "output": answer_text,
        "tokens": REAL_TOKENS,
        "model_ms": 1,
    }))
    .unwrap();
    let sealed = sealer.seal_response(&answer, &mut OsRng).unwrap();
    // Client side.
    black_box(open_response(&ctx, &sealed).unwrap());
}

fn model_call(model: &LanguageModel, max_tokens: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(600);
    let (out, _) = run_task_text(
        model,
        Task::Summarize,
        CONVERSATION,
        max_tokens as usize,
        deadline,
    )
    .unwrap();
    out.to_string()
}

fn in_process(real: Option<&LanguageModel>) {
    println!("== in process: encrypted path beside the model call (medians)");
    let server = KeyPair::generate(7, &mut OsRng);
    let config = KeyConfig::parse(&server.key_config_bytes()).unwrap();
    // An answer of realistic length for the sealed response.
    let answer = "Alice and Bob confirm tomorrow's design review at ten; Carol is away, so the \
                  budget discussion moves to Friday. Alice sends the slides tonight and books \
                  the small room, adding last week's latency numbers.";
    let path_s = time_median(50, 1000, || encrypted_path(&server, &config, answer));
    println!(
        "encrypted path (seal, open, parse, serialise, seal, open): {:.1} µs",
        path_s * 1e6
    );

    let tiny = LanguageModel::from_gguf_bytes(&tiny_gguf(0x5eed), ModelLimits::default()).unwrap();
    let tiny_s = time_median(3, 30, || {
        black_box(model_call(&tiny, TINY_TOKENS));
    });
    println!(
        "tiny model call ({TINY_TOKENS} tokens at most): {:.2} ms; encrypted path = {:.2} % of the request",
        tiny_s * 1e3,
        100.0 * path_s / (path_s + tiny_s)
    );
    match real {
        Some(lm) => {
            let real_s = time_median(1, 3, || {
                black_box(model_call(lm, REAL_TOKENS));
            });
            println!(
                "SmolLM2-135M summarisation ({REAL_TOKENS} tokens at most): {:.0} ms; encrypted path = {:.4} % of the request (goal <= 2 %)",
                real_s * 1e3,
                100.0 * path_s / (path_s + real_s)
            );
        }
        None => println!("SmolLM2-135M: SKIPPED (weights not found; run scripts/fetch-model.sh)"),
    }
}

/// A keep-alive client for load (the test harness's `CvmClient` opens a connection per
/// request on purpose).
fn keep_alive() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap()
}

/// One sealed summarisation request; returns the runtime's reported model milliseconds.
fn ask(http: &reqwest::blocking::Client, url: &str, config: &KeyConfig, max_tokens: u32) -> u64 {
    let plain =
        serde_json::to_vec(&serde_json::json!({"text": CONVERSATION, "max_tokens": max_tokens}))
            .unwrap();
    let (request, ctx): (Vec<u8>, ResponseContext) =
        seal_request(config, &plain, &mut OsRng).unwrap();
    let resp = http
        .post(format!("{url}/v1/summarize"))
        .header("content-type", "message/ohttp-req")
        .body(request)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let opened = open_response(&ctx, &resp.bytes().unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&opened).unwrap();
    v["model_ms"].as_u64().unwrap()
}

/// Requests per second from `threads` client threads running `op` for `dur`.
fn rate(
    threads: usize,
    dur: Duration,
    op: Arc<dyn Fn(&reqwest::blocking::Client) + Send + Sync>,
) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let op = op.clone();
            std::thread::spawn(move || {
                let http = keep_alive();
                let mut n = 0u64;
                while start.elapsed() < dur {
                    op(&http);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn open_runtime(net: &Devnet, settings: &RuntimeSettings, name: &str) -> (RuntimeProc, KeyConfig) {
    let config = net.runtime_config(settings);
    net.publish_release_for(&config).unwrap();
    let mut rt = net.start_runtime(&config, name).unwrap();
    let status = net.wait_settled(&mut rt).unwrap();
    assert_eq!(status["state"], "open", "{status} {}", rt.proc.output());
    net.publish_keyconfig_of(&rt).unwrap();
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    (rt, client.key_config)
}

fn over_http(real_gguf: Option<&[u8]>) {
    println!("== against real processes (release builds, log on SQLite)");
    let bins: Bins = lucent_tests::test_bins!();
    let mut net = Devnet::start(bins.clone(), DevnetOptions::default()).unwrap();
    net.runtime_log = "info".into();
    let (rt, config) = open_runtime(
        &net,
        &RuntimeSettings {
            label: "bench tiny".into(),
            // The load comes from one address: measure the runtime, not its per-source limit.
            dangerous_no_rate_limit: true,
            ..RuntimeSettings::default()
        },
        "bench-tiny",
    );
    let url = rt.url.clone();
    let dur = Duration::from_secs(5);
    // The runtime runs at most `max_concurrent` (default 2) models at once and refuses more
    // with `busy`, so the load stays within it.
    for threads in [1usize, 2] {
        let status_url = format!("{url}/v1/status");
        let status_rps = rate(
            threads,
            dur,
            Arc::new(move |http: &reqwest::blocking::Client| {
                let r = http.get(&status_url).send().unwrap();
                assert!(r.status().is_success());
                black_box(r.bytes().unwrap());
            }),
        );
        let (u, c) = (url.clone(), config.clone());
        let sealed_rps = rate(
            threads,
            dur,
            Arc::new(move |http: &reqwest::blocking::Client| {
                black_box(ask(http, &u, &c, TINY_TOKENS));
            }),
        );
        println!(
            "{threads} client thread(s): sealed /v1/summarize (tiny model, {TINY_TOKENS} tokens at most) {sealed_rps:.0} req/s; GET /v1/status {status_rps:.0} req/s; ratio {:.3}",
            sealed_rps / status_rps
        );
    }
    // Where a tiny-model request's time goes: the round trip beside the model time the
    // runtime reports (whole milliseconds).
    let http = keep_alive();
    let (mut totals, mut models) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        models.push(ask(&http, &url, &config, TINY_TOKENS) as f64);
        totals.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "tiny model, 1 client, 200 requests: round trip median {:.2} ms, model (runtime's clock) median {:.0} ms",
        median(totals),
        median(models)
    );
    drop(rt);
    drop(net);

    let Some(gguf) = real_gguf else {
        println!("SmolLM2-135M over HTTP: SKIPPED (weights not found)");
        return;
    };
    let mut net = Devnet::start_with_model(bins, DevnetOptions::default(), gguf).unwrap();
    net.runtime_log = "info".into();
    let (rt, config) = open_runtime(
        &net,
        &RuntimeSettings {
            label: "bench smollm2".into(),
            max_output_tokens: REAL_TOKENS as usize,
            ..RuntimeSettings::default()
        },
        "bench-smollm2",
    );
    let http = keep_alive();
    ask(&http, &rt.url, &config, REAL_TOKENS);
    let mut totals = Vec::new();
    let mut models = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let model_ms = ask(&http, &rt.url, &config, REAL_TOKENS);
        totals.push(t.elapsed().as_secs_f64() * 1e3);
        models.push(model_ms as f64);
    }
    let (total, model) = (median(totals), median(models));
    println!(
        "SmolLM2-135M over HTTP ({REAL_TOKENS} tokens at most): round trip {total:.0} ms, model {model:.0} ms (runtime's own clock, ms resolution), everything else {:.1} ms = {:.2} % of the request",
        total - model,
        100.0 * (total - model) / total
    );
}

fn main() {
    let real_gguf = default_model_path()
        .filter(|p| p.exists())
        .map(|p| std::fs::read(p).unwrap());
    let real = real_gguf
        .as_deref()
        .map(|b| LanguageModel::from_gguf_bytes(b, ModelLimits::default()).unwrap());
    in_process(real.as_ref());
    drop(real);
    over_http(real_gguf.as_deref());
}
