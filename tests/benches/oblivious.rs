//! What the oblivious path costs: the latency that the relay and the gateway add to a sealed
//! request, beside the same request sent straight to the CVM, in the same run, against real
//! processes (release builds: log on SQLite, a witness, the key broker, the CVM runtime on
//! the simulated TEE, the issuer, the gateway redeeming a token per request on SQLite, the
//! relay; all on loopback).
//!
//! Run: `cargo bench -p lucent-tests --bench oblivious` (the SmolLM2 part needs
//! `scripts/fetch-model.sh`; without the weights it prints SKIPPED).
//!
//! For the tiny random model (16 tokens at most) and for SmolLM2-135M (a 64-token summary),
//! requests alternate between `Client::ask` (direct) and `Client::ask_oblivious` (relay,
//! gateway, token), and the medians of each are compared: the difference is what the two
//! hops, the outer encapsulation and the token's redemption (its verification and a durable
//! insert) cost; its share of the direct SmolLM2 request is the figure the design holds to
//! (goal: at most 5 %).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use lucent_client::{Client, Task};
use lucent_model::default_model_path;
use lucent_tests::net::{now_unix, Bins, Devnet, DevnetOptions, RuntimeSettings};

const CONVERSATION: &str = "Alice: Are we still on for the design review tomorrow at ten?\n\
    Bob: Yes, but Carol can't make it, so we'll move the budget part to Friday.\n\
    Alice: Fine. I'll send the slides tonight and book the small room.\n\
    Bob: Great, and please add the latency numbers from last week's test.";

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Medians (ms) of the direct and the oblivious round trip over `n` alternating pairs.
fn compare(net: &Devnet, label: &str, max_tokens: u32, n: usize) -> (f64, f64) {
    let settings = RuntimeSettings {
        label: label.into(),
        max_output_tokens: max_tokens as usize,
        dangerous_no_rate_limit: true,
        ..RuntimeSettings::default()
    };
    let config = net.runtime_config(&settings);
    net.publish_release_for(&config).unwrap();
    let mut rt = net.start_runtime(&config, label).unwrap();
    let status = net.wait_settled(&mut rt).unwrap();
    assert_eq!(status["state"], "open", "{status}");
    net.publish_keyconfig_of(&rt).unwrap();
    let issuer = net.start_issuer(&format!("{label}-issuer")).unwrap();
    net.publish_issuer(&issuer, now_unix() + 3600).unwrap();
    let credential = net.add_account(&issuer, "bench", 10_000).unwrap();
    let gw = net
        .start_gateway(&[&rt.url], 99, &format!("{label}-gateway"), &[&issuer])
        .unwrap();
    net.publish_gateway_keyconfig(&gw).unwrap();
    let relay = net.start_relay(&gw.url, &format!("{label}-relay")).unwrap();

    let client = Client::new(net.client_config(label, None).unwrap()).unwrap();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let cvm = tokio.block_on(client.attest(&rt.url)).unwrap();
    let gateway = tokio
        .block_on(client.gateway(&relay.url, &gw.key_config))
        .unwrap();
    let verified = tokio.block_on(client.issuer(&issuer.url)).unwrap();
    let mut tokens = Vec::new();
    while tokens.len() < n + 1 {
        tokens.extend(
            tokio
                .block_on(client.fetch_tokens(&verified, &credential, 100))
                .unwrap(),
        );
    }
    // The gateway reads the CVM's status and the log's issuer key every second.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut warm = || {
        tokio.block_on(client.ask_oblivious(
            &gateway,
            &cvm,
            tokens.pop().unwrap(),
            Task::Summarize,
            CONVERSATION,
            Some(max_tokens),
        ))
    };
    while let Err(e) = warm() {
        assert!(
            Instant::now() < deadline,
            "the oblivious path never opened: {e}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    tokio
        .block_on(client.ask(&cvm, Task::Summarize, CONVERSATION, Some(max_tokens)))
        .unwrap();

    let (mut direct, mut oblivious) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let a = tokio
            .block_on(client.ask(&cvm, Task::Summarize, CONVERSATION, Some(max_tokens)))
            .unwrap();
        direct.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let b = tokio
            .block_on(client.ask_oblivious(
                &gateway,
                &cvm,
                tokens.pop().unwrap(),
                Task::Summarize,
                CONVERSATION,
                Some(max_tokens),
            ))
            .unwrap();
        oblivious.push(t.elapsed().as_secs_f64() * 1e3);
        // Greedy decoding: the two paths carry the same request to the same model.
        assert_eq!(a.output, b.output);
    }
    (median(direct), median(oblivious))
}

fn report(what: &str, n: usize, (direct, oblivious): (f64, f64)) {
    println!(
        "{what}, {n} pairs: direct median {direct:.2} ms, through relay + gateway {oblivious:.2} ms; \
         added {:.2} ms = {:.2} % of the direct request (ratio {:.3})",
        oblivious - direct,
        100.0 * (oblivious - direct) / direct,
        oblivious / direct
    );
}

fn main() {
    let bins: Bins = lucent_tests::test_bins!();
    let net = Devnet::start(bins.clone(), DevnetOptions::default()).unwrap();
    report(
        "tiny model (16 tokens at most)",
        100,
        compare(&net, "bench-tiny", 16, 100),
    );
    drop(net);

    let Some(gguf) = default_model_path()
        .filter(|p| p.exists())
        .map(|p| std::fs::read(p).unwrap())
    else {
        println!("SmolLM2-135M: SKIPPED (weights not found)");
        return;
    };
    let net = Devnet::start_with_model(bins, DevnetOptions::default(), &gguf).unwrap();
    report(
        "SmolLM2-135M summary (64 tokens at most)",
        15,
        compare(&net, "bench-smollm2", 64, 15),
    );
}
