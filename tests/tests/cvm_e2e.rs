//! The CVM runtime end to end, over real processes and sockets: a log with a witness, the
//! key broker, and `lucent-cvm-runtime` on the simulated TEE with a tiny model.
//!
//! - a logged runtime gets its key and answers an encrypted summarisation request that only
//!   the client can open (SQLite, and PostgreSQL when one is reachable);
//! - with an unlogged measurement, a revoked or expired release, or a wrong log key, it gets
//!   no key and answers nothing but the specific refusal; a release revoked after it opened
//!   closes it on the next periodic self-check;
//! - a canary in requests appears in no output, no file and no other response;
//! - bad input on every endpoint gets a specific error and the runtime keeps serving;
//! - the real SmolLM2 weights, when present.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lucent_tests::log_process::postgres_test_url;
use lucent_tests::net::{
    now_unix, Backend, Bins, CvmClient, Devnet, DevnetOptions, RuntimeProc, RuntimeSettings,
};
use lucent_verifier::encapsulation::{
    open_response, seal_request, KeyConfig as HpkeKeyConfig, KeyPair, MIN_REQUEST_BYTES,
};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::Statement;
use rand_core::{OsRng, RngCore as _};

fn bins() -> Bins {
    lucent_tests::test_bins!()
}

fn devnet(backend: Backend) -> Devnet {
    Devnet::start(
        bins(),
        DevnetOptions {
            backend,
            ..DevnetOptions::default()
        },
    )
    .expect("devnet")
}

fn error_of(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not a JSON error: {}", String::from_utf8_lossy(body)));
    (
        v["error"].as_str().unwrap_or_default().to_owned(),
        v["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Starts a logged runtime and waits until it is open.
fn open_runtime(net: &Devnet, settings: &RuntimeSettings, name: &str) -> RuntimeProc {
    let config = net.runtime_config(settings);
    net.publish_release_for(&config).expect("publish release");
    let mut rt = net.start_runtime(&config, name).expect("runtime");
    let status = net.wait_settled(&mut rt).expect("settled");
    assert_eq!(status["state"], "open", "{status} {}", rt.proc.output());
    rt
}

fn honest(backend: Backend) {
    let net = devnet(backend);
    let mut rt = open_runtime(&net, &RuntimeSettings::default(), "cvm");
    net.publish_keyconfig_of(&rt).expect("key config logged");

    // The broker released the key only after verifying (its log says so, and it stored the
    // checkpoint it verified under).
    assert!(
        net.broker.output().contains("weights key released"),
        "{}",
        net.broker.output()
    );
    assert!(net.dir.path().join("broker/last-seen.note").exists());

    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).expect("attest");
    let text = "Alice: lunch at noon tomorrow? Bob: yes, at the usual place.";
    let plain = serde_json::to_vec(&serde_json::json!({"text": text, "max_tokens": 8})).unwrap();
    let (request, ctx) = client.seal(&plain).unwrap();
    let (status, sealed) = client.post_raw("/v1/summarize", request).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&sealed));
    let opened = open_response(&ctx, &sealed).expect("the client opens it");
    let answer: serde_json::Value = serde_json::from_slice(&opened).unwrap();
    // The tiny model's output is noise, but its length is bounded by max_tokens and the
    // model really ran (the answer's clean-up may leave nothing of the noise).
    let tokens = answer["tokens"].as_u64().unwrap();
    assert!(tokens <= 8, "{answer}");
    assert!(answer["output"].is_string(), "{answer}");
    assert!(answer["model_ms"].is_u64(), "{answer}");

    // Only the client can open it: another client's context (same CVM, another request)
    // fails, and the sealed bytes are not JSON.
    let (_, other_ctx) = client.seal(&plain).unwrap();
    assert!(open_response(&other_ctx, &sealed).is_err());
    assert!(serde_json::from_slice::<serde_json::Value>(&sealed).is_err());

    // /v1/suggest too.
    let s = client
        .ask("/v1/suggest", "pls send the file asap", Some(4))
        .unwrap();
    assert!(s.tokens <= 4);
    assert!(rt.proc.running());
    println!("runtime output:\n{}", rt.proc.output());
}

#[test]
fn logged_cvm_gets_its_key_and_answers_encrypted_requests_sqlite() {
    honest(Backend::Sqlite);
}

#[test]
fn logged_cvm_gets_its_key_and_answers_encrypted_requests_postgres() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    honest(Backend::Postgres(url));
}

/// Asserts the runtime is closed with `code`, refuses every endpoint with it, and never
/// got a key.
fn assert_closed(net: &Devnet, rt: &mut RuntimeProc, code: &str) {
    let status = net.wait_settled(rt).unwrap();
    assert_eq!(status["state"], "closed", "{status}");
    assert_eq!(status["code"], code, "{status}");
    let measurement = rt.measurement.to_hex();
    assert_eq!(status["measurement"], measurement.as_str());
    let http = net.http();
    let nonce = B64.encode([7u8; 32]);
    let attempts = [
        http.get(format!("{}/v1/attestation", rt.url))
            .send()
            .unwrap(),
        http.get(format!("{}/v1/attestation", rt.url))
            .query(&[("nonce", nonce)])
            .send()
            .unwrap(),
        http.post(format!("{}/v1/summarize", rt.url))
            .body(vec![0u8; 100])
            .send()
            .unwrap(),
        http.post(format!("{}/v1/suggest", rt.url))
            .body(vec![1u8; 100])
            .send()
            .unwrap(),
    ];
    for r in attempts {
        assert_eq!(r.status().as_u16(), 503);
        let (got, message) = error_of(&r.bytes().unwrap());
        assert_eq!(got, code);
        assert!(message.contains(&measurement), "{message}");
        if code != "unverifiable" {
            // The log size checked is named (unverifiable checkpoints have none trusted).
            let size = status["log_size"].as_u64().expect("log size");
            assert!(message.contains(&format!("size {size}")), "{message}");
        }
    }
    // No key: the runtime never asked (its log), and the broker released nothing.
    let out = rt.proc.output();
    assert!(!out.contains("weights key released"), "{out}");
    assert!(!out.contains("key release failed"), "{out}");
    assert!(!net.broker.output().contains("weights key released"));
    assert!(!net.dir.path().join("broker/last-seen.note").exists());
    assert!(rt.proc.running());
}

#[test]
fn unlogged_measurement_gets_no_key() {
    let net = devnet(Backend::Sqlite);
    // Another configuration is logged; this one is not.
    let other = net.runtime_config(&RuntimeSettings {
        label: "the logged one".into(),
        ..RuntimeSettings::default()
    });
    net.publish_release_for(&other).unwrap();
    let config = net.runtime_config(&RuntimeSettings {
        label: "unlogged".into(),
        ..RuntimeSettings::default()
    });
    let mut rt = net.start_runtime(&config, "unlogged").unwrap();
    assert_closed(&net, &mut rt, "not_logged");
}

#[test]
fn revoked_release_gets_no_key() {
    let net = devnet(Backend::Sqlite);
    let config = net.runtime_config(&RuntimeSettings {
        label: "revoked".into(),
        ..RuntimeSettings::default()
    });
    net.publish_release_for(&config).unwrap();
    net.revoke(net.measurement_of(&config).unwrap(), "test: withdrawn")
        .unwrap();
    let mut rt = net.start_runtime(&config, "revoked").unwrap();
    assert_closed(&net, &mut rt, "revoked");
}

/// A release revoked after the runtime opened: the next periodic self-check sees the
/// revocation in the log and closes the runtime; from then on it hands out no bundle and
/// answers every request with the `revoked` refusal naming its measurement.
#[test]
fn revocation_after_open_closes_on_the_next_check() {
    let net = devnet(Backend::Sqlite);
    let settings = RuntimeSettings {
        label: "revoked later".into(),
        recheck_secs: 1,
        ..RuntimeSettings::default()
    };
    let mut rt = open_runtime(&net, &settings, "revoked-later");
    net.publish_keyconfig_of(&rt).unwrap();
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).expect("attest");
    client
        .ask("/v1/summarize", "the meeting moved to Friday", Some(2))
        .expect("open runtime answers");

    let measurement = rt.measurement.clone();
    net.revoke(measurement.clone(), "test: withdrawn after boot")
        .unwrap();
    let status = status_until(&net, &rt, std::time::Duration::from_secs(30), |v| {
        v["state"] == "closed"
    });
    assert_eq!(status["code"], "revoked", "{status}\n{}", rt.proc.output());
    let hex = measurement.to_hex();
    assert_eq!(status["measurement"], hex.as_str());

    // No bundle (so no key config) for anyone, and requests sealed to the key it had are
    // refused with the specific reason.
    let r = net
        .http()
        .get(format!("{}/v1/attestation", rt.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let (code, message) = error_of(&r.bytes().unwrap());
    assert_eq!(code, "revoked");
    assert!(message.contains(&hex), "{message}");
    let plain = serde_json::to_vec(&serde_json::json!({"text": "still there?"})).unwrap();
    let (request, _) = client.seal(&plain).unwrap();
    let (status, body) = client.post_raw("/v1/summarize", request).unwrap();
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(error_of(&body).0, "revoked");
    assert!(CvmClient::attest(&rt.url, &net.client_trust().unwrap()).is_err());
    assert!(rt.proc.output().contains("self-check failed: closed"));
    assert!(rt.proc.running());
}

#[test]
fn expired_release_gets_no_key() {
    let net = devnet(Backend::Sqlite);
    let config = net.runtime_config(&RuntimeSettings {
        label: "expired".into(),
        ..RuntimeSettings::default()
    });
    let r = net.release_for(&config, now_unix() - 60).unwrap();
    net.publish(&Statement::Release(r)).unwrap();
    let mut rt = net.start_runtime(&config, "expired").unwrap();
    assert_closed(&net, &mut rt, "expired");
}

#[test]
fn wrong_log_key_gets_no_key() {
    let net = devnet(Backend::Sqlite);
    // Same origin, another key: the log's checkpoints do not verify under it.
    let impostor = NoteSigner::generate(&mut OsRng, "log.devnet.lucent").unwrap();
    let config = net.runtime_config(&RuntimeSettings {
        label: "wrong log key".into(),
        log_key: Some(impostor.verifier_key().as_str().to_owned()),
        ..RuntimeSettings::default()
    });
    // Its release is logged: only the log key is wrong.
    net.publish_release_for(&config).unwrap();
    let mut rt = net.start_runtime(&config, "wrong-log-key").unwrap();
    assert_closed(&net, &mut rt, "unverifiable");
}

#[test]
fn witness_quorum_missing_gets_no_key() {
    let net = devnet(Backend::Sqlite);
    // The runtime trusts the devnet's witness and one that never cosigns, and needs both.
    let absent =
        lucent_verifier::cosignature::WitnessSigner::generate(&mut OsRng, "absent.witness")
            .unwrap();
    let config = net.runtime_config(&RuntimeSettings {
        label: "quorum".into(),
        quorum: Some(2),
        extra_witnesses: vec![absent.witness_key().as_str().to_owned()],
        ..RuntimeSettings::default()
    });
    net.publish_release_for(&config).unwrap();
    let mut rt = net.start_runtime(&config, "quorum").unwrap();
    assert_closed(&net, &mut rt, "unverifiable");
    let status = net.wait_settled(&mut rt).unwrap();
    assert!(
        status["message"].as_str().unwrap().contains("witness"),
        "{status}"
    );
}

/// Requests with wrong key ids, truncated, garbage, oversized, replayed, bad JSON, bad
/// nonces: each gets its own code, and the runtime keeps serving.
#[test]
fn bad_input_on_every_endpoint_gets_specific_errors() {
    let net = devnet(Backend::Sqlite);
    let settings = RuntimeSettings {
        label: "bad input".into(),
        max_body_bytes: 4096,
        ..RuntimeSettings::default()
    };
    let rt = open_runtime(&net, &settings, "bad-input");
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    let key_id = client.key_config.key_id;
    let good =
        serde_json::to_vec(&serde_json::json!({"text": "hello there", "max_tokens": 2})).unwrap();

    for path in ["/v1/summarize", "/v1/suggest"] {
        let expect = |body: Vec<u8>, status: u16, code: &str| {
            let (s, b) = client.post_raw(path, body).unwrap();
            assert_eq!(s, status, "{path} {code}: {}", String::from_utf8_lossy(&b));
            assert_eq!(error_of(&b).0, code, "{path}");
        };
        // Empty and truncated.
        expect(Vec::new(), 400, "truncated");
        let (sealed, _) = client.seal(&good).unwrap();
        expect(sealed[..MIN_REQUEST_BYTES - 1].to_vec(), 400, "truncated");
        // Truncated ciphertext (long enough for the header): the AEAD fails.
        expect(sealed[..sealed.len() - 1].to_vec(), 400, "bad_frame");
        // Garbage with our key id, and with another.
        let mut garbage = vec![0u8; 200];
        OsRng.fill_bytes(&mut garbage);
        garbage[0] = key_id;
        expect(garbage.clone(), 400, "bad_frame");
        garbage[0] = key_id.wrapping_add(1);
        expect(garbage, 400, "unknown_key_id");
        // A well-formed request sealed to another key: wrong id, then our id but another key.
        let other = KeyPair::generate(key_id.wrapping_add(1), &mut OsRng);
        let other_config = HpkeKeyConfig::parse(&other.key_config_bytes()).unwrap();
        let (to_other, _) = seal_request(&other_config, &good, &mut OsRng).unwrap();
        expect(to_other, 400, "unknown_key_id");
        let impostor = KeyPair::generate(key_id, &mut OsRng);
        let impostor_config = HpkeKeyConfig::parse(&impostor.key_config_bytes()).unwrap();
        let (to_impostor, _) = seal_request(&impostor_config, &good, &mut OsRng).unwrap();
        expect(to_impostor, 400, "bad_frame");
        // Unsupported algorithm ids in the header.
        let (mut bad_alg, _) = client.seal(&good).unwrap();
        bad_alg[1] = 0xff;
        expect(bad_alg, 400, "bad_frame");
        // Oversized.
        let (big, _) = client.seal(&vec![b'a'; 5000]).unwrap();
        expect(big, 413, "too_large");
        // Valid encryption of a plaintext that is not the request JSON: refused inside the
        // encryption (HTTP 200, a sealed error of the answer's bucket size).
        let (not_json, ctx) = client.seal(b"{\"txt\": 1}").unwrap();
        let (s, b) = client.post_raw(path, not_json).unwrap();
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        assert!(!String::from_utf8_lossy(&b).contains("bad_request"));
        let opened = open_response(&ctx, &b).unwrap();
        assert_eq!(opened.len(), 1024, "padded to the first bucket");
        assert_eq!(error_of(&opened).0, "bad_request", "{path}");
        // Replayed: the first is answered, the copy refused.
        let (req, ctx) = client.seal(&good).unwrap();
        let (s, b) = client.post_raw(path, req.clone()).unwrap();
        assert_eq!(s, 200);
        open_response(&ctx, &b).unwrap();
        expect(req, 409, "replayed");
    }

    // /v1/attestation nonces.
    let http = net.http();
    for (q, code) in [
        ("nonce=***", "bad_nonce"),
        ("nonce=AAAA", "bad_nonce"), // 3 bytes
        (
            &*format!("nonce={}", B64.encode([0u8; 65]).replace('+', "%2B")),
            "bad_nonce",
        ),
        ("other=1", "bad_nonce"),
    ] {
        let r = http
            .get(format!("{}/v1/attestation?{q}", rt.url))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{q}");
        assert_eq!(error_of(&r.bytes().unwrap()).0, code, "{q}");
    }
    let r = http.get(format!("{}/v1/nope", rt.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(error_of(&r.bytes().unwrap()).0, "no_such_endpoint");

    // Still serving, and still attesting.
    let again = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    let a = again.ask("/v1/summarize", "still there?", Some(2)).unwrap();
    assert!(a.tokens <= 2);
}

/// A random canary in requests (answered, refused and malformed ones) appears in no
/// process output, no file under the devnet, and no other response.
#[test]
fn canary_never_leaks() {
    let net = devnet(Backend::Sqlite);
    let settings = RuntimeSettings {
        label: "canary".into(),
        max_body_bytes: 8192,
        ..RuntimeSettings::default()
    };
    let rt = open_runtime(&net, &settings, "canary");
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    let mut c = [0u8; 16];
    OsRng.fill_bytes(&mut c);
    let canary = format!("CANARY{}", hex::encode(c));

    let mut responses: Vec<Vec<u8>> = Vec::new();
    // Answered requests carrying the canary.
    for path in ["/v1/summarize", "/v1/suggest"] {
        let text = format!("Please keep {canary} secret. Meeting at 5.");
        let (req, ctx) = client
            .seal(&serde_json::to_vec(&serde_json::json!({"text": text, "max_tokens": 6})).unwrap())
            .unwrap();
        let (s, b) = client.post_raw(path, req.clone()).unwrap();
        assert_eq!(s, 200);
        let opened = open_response(&ctx, &b).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&opened).unwrap();
        // The answer to this very request is the client's own; record it separately.
        assert!(v["output"].is_string());
        responses.push(b);
        // Replayed.
        let (_, b) = client.post_raw(path, req).unwrap();
        responses.push(b);
        // Refused inside the encryption: bad JSON and unknown fields quoting the canary.
        for plain in [
            format!("{{\"text\": \"{canary}\""),
            format!("{{\"{canary}\": 1}}"),
            format!("{{\"text\": 5, \"x\": \"{canary}\"}}"),
        ] {
            let (req, _) = client.seal(plain.as_bytes()).unwrap();
            let (_, b) = client.post_raw(path, req).unwrap();
            responses.push(b);
        }
        // Canary in the clear: garbage frames, wrong key id, oversized.
        let mut clear = vec![client.key_config.key_id];
        clear.extend_from_slice(&[0, 0x20, 0, 1, 0, 1]);
        clear.extend_from_slice(canary.repeat(4).as_bytes());
        let (_, b) = client.post_raw(path, clear.clone()).unwrap();
        responses.push(b);
        clear[0] = clear[0].wrapping_add(1);
        let (_, b) = client.post_raw(path, clear).unwrap();
        responses.push(b);
        let (_, b) = client
            .post_raw(path, canary.repeat(1000).into_bytes())
            .unwrap();
        responses.push(b);
        // A request too long for the model.
        let long = format!("{canary} ").repeat(150);
        let (req, _) = client
            .seal(&serde_json::to_vec(&serde_json::json!({"text": long})).unwrap())
            .unwrap();
        let (_, b) = client.post_raw(path, req).unwrap();
        responses.push(b);
    }
    // Canary in the nonce and the path.
    let http = net.http();
    for url in [
        format!("{}/v1/attestation?nonce={canary}", rt.url),
        format!("{}/v1/attestation?{canary}=1", rt.url),
        format!("{}/v1/{canary}", rt.url),
    ] {
        responses.push(http.get(url).send().unwrap().bytes().unwrap().to_vec());
    }
    // Other clients' answers and bundles.
    let other = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    let a = other
        .ask("/v1/summarize", "an unrelated message", Some(6))
        .unwrap();
    assert!(!a.output.contains(&canary));
    responses.push(a.sealed);
    responses.push(
        http.get(format!("{}/v1/attestation", rt.url))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec(),
    );
    responses.push(
        http.get(format!("{}/v1/status", rt.url))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec(),
    );

    let needle = canary.as_bytes();
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (i, r) in responses.iter().enumerate() {
        assert!(
            !contains(r),
            "response {i} leaks the canary: {}",
            String::from_utf8_lossy(r)
        );
    }
    // Every file: process stdout/stderr, the log's database, broker and witness state.
    let files = net.files();
    assert!(files.iter().any(|f| f.ends_with("canary.stderr")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(!contains(&bytes), "{} leaks the canary", f.display());
    }
    // The runtime logged the requests (allow-listed fields), so the search was not vacuous.
    assert!(rt.proc.output().contains("route=/v1/summarize"));
}

/// The real model, when its weights are present (scripts/fetch-model.sh).
#[test]
fn real_model_answers_when_present() {
    let Some(path) = lucent_model::default_model_path().filter(|p| p.exists()) else {
        println!("SKIPPED: SmolLM2 weights not found (run scripts/fetch-model.sh)");
        return;
    };
    let gguf = std::fs::read(&path).unwrap();
    let net = Devnet::start_with_model(bins(), DevnetOptions::default(), &gguf).unwrap();
    drop(gguf);
    let rt = open_runtime(
        &net,
        &RuntimeSettings {
            label: "real model".into(),
            ..RuntimeSettings::default()
        },
        "real",
    );
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    let a = client
        .ask(
            "/v1/summarize",
            "Alice: can we move the meeting to Friday? Bob: Friday works, 10am.",
            Some(24),
        )
        .unwrap();
    assert!(a.tokens >= 1);
    assert!(!a.output.trim().is_empty());
    println!("real model summary: {}", a.output);
}

/// Polls the runtime's status until `done` holds or `within` passes; returns the last one.
fn status_until(
    net: &Devnet,
    rt: &RuntimeProc,
    within: std::time::Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let v: serde_json::Value = net
            .http()
            .get(format!("{}/v1/status", rt.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if done(&v) || std::time::Instant::now() >= deadline {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The witnesses go away and the log goes on publishing checkpoints nobody cosigned: the
/// runtime keeps its last verified view (and serves) within `max_log_view_age_secs`, then
/// closes whatever the network does.
#[test]
fn witness_outage_keeps_the_runtime_open_within_the_grace_period_then_closes() {
    let mut net = devnet(Backend::Sqlite);
    let settings = RuntimeSettings {
        label: "witness outage".into(),
        recheck_secs: 1,
        max_log_view_age_secs: 6,
        ..RuntimeSettings::default()
    };
    let rt = open_runtime(&net, &settings, "witness-outage");
    for w in &mut net.witnesses {
        w.kill();
    }
    // A new entry: the log's newest checkpoint now lacks the witnesses' cosignatures.
    let other = net.runtime_config(&RuntimeSettings {
        label: "entry during the outage".into(),
        ..RuntimeSettings::default()
    });
    let r = net.release_for(&other, now_unix() + 86_400).unwrap();
    let note = Statement::Release(r).sign(&net.operator).unwrap();
    let resp = net
        .http()
        .post(format!("{}/v1/statements", net.log_url))
        .body(note)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text());
    let started = std::time::Instant::now();
    // Within the grace period: still open, through several failed checks.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let v = status_until(&net, &rt, std::time::Duration::ZERO, |_| true);
    assert_eq!(v["state"], "open", "{v}\n{}", rt.proc.output());
    assert!(
        rt.proc.output().contains("keeping the last verified view"),
        "{}",
        rt.proc.output()
    );
    // Past it: closed with the reason.
    let v = status_until(&net, &rt, std::time::Duration::from_secs(30), |v| {
        v["state"] == "closed"
    });
    assert_eq!(v["code"], "log_view_stale", "{v}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    assert!(v["message"].as_str().unwrap().contains("limit 6 s"), "{v}");
}

/// The log is gone for good: the runtime stays open on its last view, but never past its
/// release's not-after, which it checks on every tick without the network.
#[test]
fn log_unreachable_still_closes_at_not_after() {
    let mut net = devnet(Backend::Sqlite);
    let settings = RuntimeSettings {
        label: "log gone, release expiring".into(),
        recheck_secs: 1,
        ..RuntimeSettings::default()
    };
    let config = net.runtime_config(&settings);
    // The image first: building it takes longer than the release is valid.
    net.image_of(&config).unwrap();
    let not_after = now_unix() + 8;
    let r = net.release_for(&config, not_after).unwrap();
    net.publish(&Statement::Release(r)).unwrap();
    let mut rt = net.start_runtime(&config, "log-gone").unwrap();
    let status = net.wait_settled(&mut rt).unwrap();
    assert_eq!(status["state"], "open", "{status} {}", rt.proc.output());
    net.log.kill();
    let v = status_until(&net, &rt, std::time::Duration::from_secs(30), |v| {
        v["state"] == "closed"
    });
    assert_eq!(v["code"], "expired", "{v}\n{}", rt.proc.output());
    assert!(now_unix() > not_after);
    assert!(
        rt.proc
            .output()
            .contains("could not confirm the view of the log"),
        "{}",
        rt.proc.output()
    );
}

/// A read replica of the log on a real socket: it forwards every GET to the log, except that
/// once frozen it answers `/checkpoint` with the checkpoint it was frozen at, as a replica
/// that stopped replicating would. Everything it serves is genuine: an old checkpoint,
/// proofs and tiles from the log.
struct LaggingReplica {
    url: String,
    frozen: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl LaggingReplica {
    fn start(upstream: &str) -> LaggingReplica {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let frozen: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>> = Default::default();
        let (upstream, shared) = (upstream.to_owned(), frozen.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The rest of the head; the follower only sends GETs without bodies.
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
                let frozen = shared.lock().unwrap().clone();
                let (status, body) = match frozen {
                    Some(note) if path == "/checkpoint" => (200, note),
                    _ => match http.get(format!("{upstream}{path}")).send() {
                        Ok(r) => (r.status().as_u16(), r.bytes().unwrap_or_default().to_vec()),
                        Err(_) => (502, Vec::new()),
                    },
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        LaggingReplica { url, frozen }
    }

    fn freeze_at(&self, checkpoint: Vec<u8>) {
        *self.frozen.lock().unwrap() = Some(checkpoint);
    }
}

/// The runtime follows the log through a replica that falls behind: it has seen a newer
/// checkpoint, and the replica now answers an older one. The runtime proves the older one a
/// prefix of its view (a consistency proof from the replica), keeps its view and serves
/// within `max_log_view_age_secs`, then closes.
#[test]
fn lagging_replica_keeps_the_runtime_open_within_the_grace_period_then_closes() {
    let net = devnet(Backend::Sqlite);
    let replica = LaggingReplica::start(&net.log_url);
    let settings = RuntimeSettings {
        label: "lagging replica".into(),
        recheck_secs: 1,
        max_log_view_age_secs: 8,
        log_url: Some(replica.url.clone()),
        ..RuntimeSettings::default()
    };
    let rt = open_runtime(&net, &settings, "lagging-replica");
    let checkpoint = |url: &str| -> Vec<u8> {
        let r = net.http().get(format!("{url}/checkpoint")).send().unwrap();
        assert!(r.status().is_success());
        r.bytes().unwrap().to_vec()
    };
    let old = checkpoint(&net.log_url);
    // The log moves on (witnessed), and the runtime follows it through the replica.
    let other = net.runtime_config(&RuntimeSettings {
        label: "entry after the replica's checkpoint".into(),
        ..RuntimeSettings::default()
    });
    let r = net.release_for(&other, now_unix() + 86_400).unwrap();
    net.publish(&Statement::Release(r)).unwrap();
    let newest = String::from_utf8(checkpoint(&net.log_url)).unwrap();
    let newest_size: u64 = newest.lines().nth(1).unwrap().parse().unwrap();
    let v = status_until(&net, &rt, std::time::Duration::from_secs(30), |v| {
        v["log_size"].as_u64() == Some(newest_size)
    });
    assert_eq!(v["log_size"].as_u64(), Some(newest_size), "{v}");

    replica.freeze_at(old);
    let started = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let v = status_until(&net, &rt, std::time::Duration::ZERO, |_| true);
    assert_eq!(v["state"], "open", "{v}\n{}", rt.proc.output());
    assert_eq!(
        v["log_size"].as_u64(),
        Some(newest_size),
        "the view is kept: {v}"
    );
    let out = rt.proc.output();
    assert!(out.contains("keeping the last verified view"), "{out}");
    assert!(out.contains("behind this view"), "{out}");
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    client
        .ask("/v1/summarize", "Ann: lunch at noon?", Some(4))
        .unwrap();

    let v = status_until(&net, &rt, std::time::Duration::from_secs(30), |v| {
        v["state"] == "closed"
    });
    assert_eq!(v["code"], "log_view_stale", "{v}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
}

/// On the wire, answers of different lengths and a refusal found after decryption look the
/// same: HTTP 200, `message/ohttp-res`, one ciphertext length (the first bucket); requests of
/// different lengths padded by the client's rule seal to one length too.
#[test]
fn answers_and_refusals_inside_the_encryption_look_alike_on_the_wire() {
    use lucent_verifier::cvm_api::pad_to_bucket;
    let net = devnet(Backend::Sqlite);
    let settings = RuntimeSettings {
        label: "length hiding".into(),
        ..RuntimeSettings::default()
    };
    let rt = open_runtime(&net, &settings, "length-hiding");
    let client = CvmClient::attest(&rt.url, &net.client_trust().unwrap()).unwrap();
    let sealed = |text: &str, max_tokens: u32| {
        let mut plain =
            serde_json::to_vec(&serde_json::json!({"text": text, "max_tokens": max_tokens}))
                .unwrap();
        pad_to_bucket(&mut plain);
        client.seal(&plain).unwrap()
    };
    let (short, short_ctx) = sealed("hi", 1);
    let (long, long_ctx) = sealed(
        "Ann: the meeting moved to Friday at 10, room 4. Bob: fine, I'll bring the budget.",
        12,
    );
    assert_eq!(short.len(), long.len(), "requests of one bucket");
    let (s1, a1) = client.post_raw("/v1/summarize", short).unwrap();
    let (s2, a2) = client.post_raw("/v1/summarize", long).unwrap();
    let (not_json, err_ctx) = client.seal(b"{\"txt\": 1}").unwrap();
    let (s3, a3) = client.post_raw("/v1/summarize", not_json).unwrap();
    assert_eq!((s1, s2, s3), (200, 200, 200));
    let o1 = open_response(&short_ctx, &a1).unwrap();
    let o2 = open_response(&long_ctx, &a2).unwrap();
    let o3 = open_response(&err_ctx, &a3).unwrap();
    let t1: serde_json::Value = serde_json::from_slice(&o1).unwrap();
    let t2: serde_json::Value = serde_json::from_slice(&o2).unwrap();
    // Two different answers (the tiny model's noise, cleaned up, may be empty in both; the
    // token counts of a 1- and a 12-token request still differ).
    assert_ne!(t1, t2, "two different answers");
    assert_eq!(error_of(&o3).0, "bad_request");
    assert_eq!(a1.len(), a2.len(), "answers of one bucket");
    assert_eq!(a1.len(), a3.len(), "a refusal looks like an answer");
}
