//! The HTTP API through the router (`tower::ServiceExt::oneshot`), on SQLite and on a real
//! PostgreSQL (skipped, saying so, when none is reachable).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use http_body_util::BodyExt;
use lucent_log_server::config::{Config, ServeArgs};
use lucent_log_server::server::Log;
use lucent_log_server::store::{SharedStore, SqlStore};
use lucent_verifier::checkpoint::{verify_checkpoint, LogKey};
use lucent_verifier::cosignature::WitnessPolicy;
use lucent_verifier::merkle::{ConsistencyProof, InclusionProof, LeafHash, MemoryTree};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{KeyConfig, Measurement, Platform, Release, Statement};
use lucent_verifier::tlog_proof::TlogProof;
use tower::ServiceExt as _;

const LOG_NAME: &str = "log.test";

pub struct Fixture {
    log: Log,
    operator: NoteSigner,
    log_key: LogKey,
}

fn config() -> Config {
    let mut c = ServeArgs::default().resolve().unwrap();
    c.batch.interval = std::time::Duration::from_millis(5);
    c
}

async fn postgres_url() -> Option<String> {
    lucent_service::db::test_postgres_url().await
}

async fn open(url: &str) -> Fixture {
    let store: SharedStore = Arc::new(SqlStore::connect(url).await.unwrap());
    let signer = NoteSigner::generate(&mut rand_core::OsRng, LOG_NAME).unwrap();
    let operator = NoteSigner::generate(&mut rand_core::OsRng, "operator.test").unwrap();
    let log_key = LogKey::new(signer.verifier_key());
    let log = Log::start(
        store,
        signer,
        vec![operator.verifier_key()],
        Vec::new(),
        &config(),
    )
    .await
    .unwrap();
    Fixture {
        log,
        operator,
        log_key,
    }
}

fn statement(signer: &NoteSigner, n: u32) -> Vec<u8> {
    Statement::KeyConfig(KeyConfig {
        key_id: (n % 256) as u8,
        config: n.to_be_bytes().to_vec(),
        not_before: 1,
        not_after: 2,
    })
    .sign(signer)
    .unwrap()
}

async fn call(f: &Fixture, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = f.log.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

async fn get(f: &Fixture, uri: &str) -> (StatusCode, Vec<u8>) {
    call(f, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(f: &Fixture, uri: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let (s, b) = call(f, Request::post(uri).body(Body::from(body)).unwrap()).await;
    (
        s,
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
    )
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap()
}

fn b64_hashes(v: &serde_json::Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| BASE64.decode(h.as_str().unwrap()).unwrap())
        .collect()
}

async fn submit_and_read_back(f: Fixture) {
    // Concurrent submissions, each told a distinct index.
    let mut handles = Vec::new();
    let f = Arc::new(f);
    for n in 0..40u32 {
        let f = f.clone();
        handles.push(tokio::spawn(async move {
            let st = statement(&f.operator, n);
            let (s, v) = post(&f, "/v1/statements", st.clone()).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(
                v["leaf_hash"].as_str().unwrap(),
                LeafHash::of_entry(&st).to_string()
            );
            (v["index"].as_u64().unwrap(), st)
        }));
    }
    let mut placed = Vec::new();
    for h in handles {
        placed.push(h.await.unwrap());
    }
    placed.sort();
    let indexes: Vec<u64> = placed.iter().map(|p| p.0).collect();
    assert_eq!(indexes, (0..40).collect::<Vec<_>>());

    // One more with ?wait: an offline-verifiable tlog-proof.
    let st = statement(&f.operator, 1000);
    let (s, v) = post(&f, "/v1/statements?wait=10", st.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["index"], 40);
    let proof = TlogProof::parse(v["tlog_proof"].as_str().unwrap().as_bytes()).unwrap();
    proof
        .verify(
            &LeafHash::of_entry(&st),
            &f.log_key,
            &WitnessPolicy::dangerous_no_witnesses(),
        )
        .unwrap();
    placed.push((40, st));

    // The checkpoint, and a tree rebuilt here from the entries we submitted.
    let (s, note) = get(&f, "/checkpoint").await;
    assert_eq!(s, StatusCode::OK);
    let cp = verify_checkpoint(&note, &f.log_key).unwrap().checkpoint;
    assert_eq!(cp.size.0, 41);
    let mut tree = MemoryTree::new();
    for (_, e) in &placed {
        tree.push_entry(e);
    }
    assert_eq!(tree.root(), cp.root);

    // Tiles: the entry bundle and the level-0 hash tile at width 41.
    let (s, bundle) = get(&f, "/tile/entries/000.p/41").await;
    assert_eq!(s, StatusCode::OK);
    let mut rest = &bundle[..];
    for (_, e) in &placed {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        assert_eq!(&rest[2..2 + len], &e[..]);
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty());
    let (s, tile) = get(&f, "/tile/0/000.p/41").await;
    assert_eq!(s, StatusCode::OK);
    for (i, (_, e)) in placed.iter().enumerate() {
        assert_eq!(&tile[i * 32..i * 32 + 32], &LeafHash::of_entry(e).0 .0);
    }
    // A narrower partial tile is a prefix.
    let (_, narrow) = get(&f, "/tile/0/000.p/7").await;
    assert_eq!(narrow, tile[..7 * 32]);

    // JSON proofs against the verifier.
    for (index, e) in &placed {
        let (s, b) = get(&f, &format!("/v1/proof/inclusion?index={index}&size=41")).await;
        assert_eq!(s, StatusCode::OK);
        let v = json(&b);
        let hashes = b64_hashes(&v["hashes"]);
        let refs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        InclusionProof::from_raw(*index, 41, &refs)
            .unwrap()
            .verify(&LeafHash::of_entry(e), &cp.root)
            .unwrap();
    }
    let leaf = LeafHash::of_entry(&placed[3].1);
    let (s, b) = get(&f, &format!("/v1/proof/inclusion?leaf_hash={leaf}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&b)["index"], 3);
    for old in 1..=41u64 {
        let (s, b) = get(&f, &format!("/v1/proof/consistency?old={old}&new=41")).await;
        assert_eq!(s, StatusCode::OK);
        let hashes = b64_hashes(&json(&b)["hashes"]);
        let refs: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        ConsistencyProof::from_raw(old, 41, &refs)
            .unwrap()
            .verify(&tree.root_at(old).unwrap(), &cp.root)
            .unwrap();
    }
    // Entry by index and lookup by key id.
    let (s, b) = get(&f, "/v1/entries/5").await;
    assert_eq!(s, StatusCode::OK);
    let got = BASE64.decode(json(&b)["entry"].as_str().unwrap()).unwrap();
    assert_eq!(got, placed[5].1);
    let (s, b) = get(&f, "/v1/keyconfigs/7").await;
    assert_eq!(s, StatusCode::OK);
    let seven = statement(&f.operator, 7);
    let want = placed.iter().find(|p| p.1 == seven).unwrap().0;
    assert_eq!(json(&b)["keyconfigs"][0]["index"], want);
    assert_eq!(json(&b)["keyconfigs"].as_array().unwrap().len(), 1);

    let f = Arc::try_unwrap(f).ok().unwrap();
    f.log.shutdown().await;
}

/// The store's visible state, to check a rejection changed nothing.
async fn snapshot(store: &SharedStore) -> (u64, Option<Vec<u8>>, usize) {
    (
        store.tree_size().await.unwrap(),
        store
            .latest_checkpoint(false)
            .await
            .unwrap()
            .map(|c| c.note),
        store.pending(1 << 20).await.unwrap().len(),
    )
}

async fn bad_input(f: Fixture) {
    let good = statement(&f.operator, 1);
    let (s, first) = post(&f, "/v1/statements", good.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let before = snapshot(f.log.store()).await;

    let stranger = NoteSigner::generate(&mut rand_core::OsRng, "operator.test").unwrap();
    let mut wrong_sig = statement(&f.operator, 2);
    // Flip one bit inside the signature's base64 (keeping it base64): same key, bad signature.
    let at = wrong_sig.len() - 10;
    wrong_sig[at] = if wrong_sig[at] == b'A' { b'B' } else { b'A' };
    let not_a_statement = f.operator.sign(b"lucent/unknown/v1\nx y\n").unwrap();
    let mut truncated = statement(&f.operator, 3);
    truncated.truncate(truncated.len() - 5);
    // The logged statement with one more signature line: by a stranger, or the operator's
    // own line again. Neither may become a second entry.
    let text = lucent_verifier::note::parse_unverified(&good).unwrap().0;
    let line = |signer: &NoteSigner| signer.sign(&text).unwrap()[text.len() + 1..].to_vec();
    let padded = [good.clone(), line(&stranger)].concat();
    let doubled = [good.clone(), line(&f.operator)].concat();

    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "garbage",
            b"hello".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_statement",
        ),
        (
            "empty",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "malformed_statement",
        ),
        (
            "cut note",
            truncated,
            StatusCode::BAD_REQUEST,
            "malformed_statement",
        ),
        (
            "oversized",
            vec![b'a'; 64 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "statement_too_large",
        ),
        (
            "unknown signer",
            statement(&stranger, 4),
            StatusCode::FORBIDDEN,
            "unknown_signer",
        ),
        (
            "wrong signature",
            wrong_sig,
            StatusCode::FORBIDDEN,
            "bad_signature",
        ),
        (
            "not a statement",
            not_a_statement,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_statement",
        ),
        (
            "replay",
            good.clone(),
            StatusCode::CONFLICT,
            "already_logged",
        ),
        (
            "padded with a stranger's signature",
            padded,
            StatusCode::FORBIDDEN,
            "foreign_signature",
        ),
        (
            "operator line doubled",
            doubled,
            StatusCode::BAD_REQUEST,
            "duplicate_signature",
        ),
    ];
    for (what, body, status, code) in cases {
        let (s, v) = post(&f, "/v1/statements", body).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (status, Some(code)),
            "{what}: {v}"
        );
        assert!(v["message"].as_str().is_some(), "{what}");
        assert_eq!(
            snapshot(f.log.store()).await,
            before,
            "{what} changed the store"
        );
    }
    let (_, v) = post(&f, "/v1/statements", good).await;
    assert_eq!(
        v["index"], first["index"],
        "a replay names the original index"
    );

    // A body that ends early (the connection broke mid-upload).
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"lucent/keyconfig/v1\n")),
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "cut",
        )),
    ]);
    let (s, b) = call(
        &f,
        Request::post("/v1/statements")
            .header("content-length", "500")
            .body(Body::from_stream(stream))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, json(&b)["error"].clone()),
        (StatusCode::BAD_REQUEST, "body_unreadable".into())
    );
    let (s, v) = post(&f, "/v1/statements?wait=1000", statement(&f.operator, 9)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_parameter"))
    );
    let (s, v) = post(&f, "/v1/statements?wait=-1", statement(&f.operator, 9)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_parameter"))
    );
    assert_eq!(snapshot(f.log.store()).await, before);

    let gets: Vec<(&str, StatusCode, &str)> = vec![
        ("/tile/0/x001", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/64/000", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/0/000.p/0", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/0/000.p/256", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/0/0", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/data/000", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/0/x000/001", StatusCode::BAD_REQUEST, "bad_tile_path"),
        ("/tile/0/000", StatusCode::NOT_FOUND, "tile_not_found"),
        ("/tile/0/000.p/2", StatusCode::NOT_FOUND, "tile_not_found"),
        ("/tile/entries/001.p/1", StatusCode::NOT_FOUND, "tile_not_found"),
        ("/tile/1/000.p/1", StatusCode::NOT_FOUND, "tile_not_found"),
        ("/v1/proof/inclusion?index=1&size=1", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/proof/inclusion?index=0&size=2", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/proof/inclusion?index=x", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/proof/inclusion?index=01", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/proof/inclusion", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/proof/inclusion?leaf_hash=zz", StatusCode::BAD_REQUEST, "bad_parameter"),
        (
            "/v1/proof/inclusion?leaf_hash=0000000000000000000000000000000000000000000000000000000000000000",
            StatusCode::NOT_FOUND,
            "leaf_not_found",
        ),
        ("/v1/proof/consistency?old=0&new=1", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/proof/consistency?old=2&new=1", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/proof/consistency?new=1", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/proof/consistency?old=1&new=9", StatusCode::BAD_REQUEST, "bad_proof_parameters"),
        ("/v1/entries/1", StatusCode::NOT_FOUND, "entry_not_found"),
        ("/v1/entries/-1", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/entries/9223372036854775808", StatusCode::NOT_FOUND, "entry_not_found"),
        ("/v1/entries/18446744073709551615", StatusCode::NOT_FOUND, "entry_not_found"),
        ("/v1/entries/18446744073709551616", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/keyconfigs/1?before=x", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/keyconfigs/1?page=2", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/releases/xyz", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/v1/keyconfigs/256", StatusCode::BAD_REQUEST, "bad_parameter"),
        ("/nope", StatusCode::NOT_FOUND, "no_such_endpoint"),
    ];
    for (uri, status, code) in gets {
        let (s, b) = get(&f, uri).await;
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!((s, v["error"].as_str()), (status, Some(code)), "{uri}");
    }
    // A method an endpoint does not take: 405 with the JSON error.
    let (s, b) = call(
        &f,
        Request::post("/checkpoint").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (s, json(&b)["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    assert_eq!(snapshot(f.log.store()).await, before);
    f.log.shutdown().await;
}

#[tokio::test]
async fn sqlite_submit_and_read_back() {
    submit_and_read_back(open("sqlite::memory:").await).await;
}

#[tokio::test]
async fn sqlite_bad_input_changes_nothing() {
    bad_input(open("sqlite::memory:").await).await;
}

#[tokio::test]
async fn postgres_submit_and_read_back() {
    let Some(url) = postgres_url().await else {
        return;
    };
    submit_and_read_back(open(&url).await).await;
}

#[tokio::test]
async fn postgres_bad_input_changes_nothing() {
    let Some(url) = postgres_url().await else {
        return;
    };
    bad_input(open(&url).await).await;
}

#[tokio::test]
async fn sqlite_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let f = open(&url).await;
    let (s, v) = post(&f, "/v1/statements", statement(&f.operator, 1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let op = f.operator.clone();
    f.log.shutdown().await;
    let f2 = open(&url).await;
    assert_eq!(f2.log.store().tree_size().await.unwrap(), 1);
    let (s, v) = post(&f2, "/v1/statements", statement(&op, 1)).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "new operator key in the fixture: {v}"
    );
    f2.log.shutdown().await;
}

#[tokio::test]
async fn rate_limit_health_and_metrics() {
    let store: SharedStore = Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap());
    let signer = NoteSigner::generate(&mut rand_core::OsRng, LOG_NAME).unwrap();
    let operator = NoteSigner::generate(&mut rand_core::OsRng, "operator.test").unwrap();
    let mut c = config();
    c.submit_rate = Some(1.0);
    let log = Log::start(
        store,
        signer.clone(),
        vec![operator.verifier_key()],
        Vec::new(),
        &c,
    )
    .await
    .unwrap();
    let f = Fixture {
        log,
        operator,
        log_key: LogKey::new(signer.verifier_key()),
    };
    let (s, _) = post(&f, "/v1/statements", statement(&f.operator, 1)).await;
    assert_eq!(s, StatusCode::OK);
    let before = snapshot(f.log.store()).await;
    let (s, v) = post(&f, "/v1/statements", statement(&f.operator, 2)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert_eq!(snapshot(f.log.store()).await, before);

    let (s, b) = get(&f, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&b)["status"], "ok");
    let (s, b) = get(&f, "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(b).unwrap();
    assert!(
        text.contains("lucent_log_submissions_total{outcome=\"rate_limited\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lucent_log_entries_integrated_total 1"),
        "{text}"
    );
    let (s, b) = get(&f, "/v1/log").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&b)["verifier_key"], f.log_key.key.as_str());
    f.log.shutdown().await;
}

fn release(signer: &NoteSigner, measurement: Measurement) -> Vec<u8> {
    Statement::Release(Release::example(measurement, 4_000_000_000))
        .sign(signer)
        .unwrap()
}

/// Releases of both platforms are found by their full measurement (SEV-SNP 48 bytes, TDX
/// 240 bytes); any other length is refused before the store is asked.
#[tokio::test]
async fn sqlite_release_lookup_by_measurement() {
    let f = open("sqlite::memory:").await;
    let snp = Measurement::new(Platform::SevSnp, &[0xab; 48]).unwrap();
    let tdx = Measurement::new(Platform::Tdx, &[0xcd; 240]).unwrap();
    for m in [snp, tdx] {
        let (s, _) = post(&f, "/v1/statements", release(&f.operator, m)).await;
        assert_eq!(s, StatusCode::OK);
    }
    for (byte, len) in [(0xab_u8, 48), (0xcd, 240)] {
        let (s, b) = get(
            &f,
            &format!("/v1/releases/{}", hex::encode(vec![byte; len])),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let v = json(&b);
        assert_eq!(
            v["releases"].as_array().unwrap().len(),
            1,
            "{len}-byte measurement"
        );
    }
    // Not found: a well-formed measurement nobody released.
    let (s, b) = get(&f, &format!("/v1/releases/{}", "ef".repeat(48))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json(&b)["releases"].as_array().unwrap().len(), 0);
    for len in [1, 47, 64, 241] {
        let (s, b) = get(&f, &format!("/v1/releases/{}", "ab".repeat(len))).await;
        assert_eq!(
            (s, json(&b)["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_parameter")),
            "{len}"
        );
    }
    f.log.shutdown().await;
}
