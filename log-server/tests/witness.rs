//! Witnessing over real sockets: the log offers each checkpoint to a C2SP `tlog-witness`
//! witness (a small one written here with `lucent_verifier`), publishes its cosignatures,
//! recovers from a `409` size mismatch, and never waits forever on a witness that hangs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use lucent_log_server::config::ServeArgs;
use lucent_log_server::server::Log;
use lucent_log_server::store::{SharedStore, SqlStore};
use lucent_log_server::witness::WitnessConfig;
use lucent_verifier::checkpoint::{verify_checkpoint, LogKey};
use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
use lucent_verifier::merkle::{ConsistencyProof, Hash, LeafHash};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{KeyConfig, Statement};
use lucent_verifier::tlog_proof::TlogProof;
use lucent_verifier::witness_protocol as wp;
use tower::ServiceExt as _;

struct Witness {
    signer: WitnessSigner,
    log: LogKey,
    /// Last cosigned (size, root).
    state: Mutex<(u64, Hash)>,
    requests: Mutex<Vec<u64>>,
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> axum::response::Response {
    let req = match wp::parse_add_checkpoint(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let Ok(signed) = verify_checkpoint(&req.checkpoint, &w.log) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let cp = signed.checkpoint;
    let mut state = w.state.lock().unwrap();
    w.requests.lock().unwrap().push(req.old.0);
    if req.old.0 != state.0 {
        return (
            StatusCode::CONFLICT,
            [("content-type", wp::SIZE_CONTENT_TYPE)],
            wp::build_size_body(lucent_verifier::merkle::TreeSize(state.0)),
        )
            .into_response();
    }
    if state.0 > 0 {
        let proof = ConsistencyProof {
            old: req.old,
            new: cp.size,
            hashes: req.proof.clone(),
        };
        if proof.verify(&state.1, &cp.root).is_err() {
            return StatusCode::UNPROCESSABLE_ENTITY.into_response();
        }
    }
    *state = (cp.size.0, cp.root);
    let sig = w.signer.cosign(&signed.text, 1_700_000_000);
    wp::build_cosignature_response(&[sig])
        .unwrap()
        .into_response()
}

async fn serve(router: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    url
}

async fn submit(log: &Log, body: Vec<u8>, wait: u64) -> serde_json::Value {
    let req = axum::http::Request::post(format!("/v1/statements?wait={wait}"))
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = log.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let b = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&b).unwrap()
}

#[tokio::test]
async fn checkpoints_are_cosigned_and_slow_witnesses_do_not_block() {
    let log_signer = NoteSigner::generate(&mut rand_core::OsRng, "log.witnessed").unwrap();
    let log_key = LogKey::new(log_signer.verifier_key());
    let operator = NoteSigner::generate(&mut rand_core::OsRng, "operator.w").unwrap();
    let good = Arc::new(Witness {
        signer: WitnessSigner::generate(&mut rand_core::OsRng, "witness.good").unwrap(),
        log: log_key.clone(),
        state: Mutex::new((0, Hash::empty_tree())),
        requests: Mutex::new(Vec::new()),
    });
    let good_url = serve(
        axum::Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .with_state(good.clone()),
    )
    .await;
    // A witness that never answers.
    let hang_url = serve(axum::Router::new().route(
        "/add-checkpoint",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    ))
    .await;
    let hanging = WitnessSigner::generate(&mut rand_core::OsRng, "witness.hang").unwrap();

    let store: SharedStore = Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap());
    let mut config = ServeArgs::default().resolve().unwrap();
    config.witness_timeout = Duration::from_millis(300);
    config.batch.interval = Duration::from_millis(5);
    let witnesses = vec![
        format!("url={good_url},key={}", good.signer.witness_key().as_str())
            .parse::<WitnessConfig>()
            .unwrap(),
        format!("url={hang_url},key={}", hanging.witness_key().as_str())
            .parse::<WitnessConfig>()
            .unwrap(),
    ];
    let log = Log::start(
        store.clone(),
        log_signer,
        vec![operator.verifier_key()],
        witnesses,
        &config,
    )
    .await
    .unwrap();

    let policy = WitnessPolicy::new(vec![good.signer.witness_key()], 1).unwrap();
    let statement = |n: u64| {
        Statement::KeyConfig(KeyConfig {
            key_id: 1,
            config: n.to_be_bytes().to_vec(),
            not_before: 0,
            not_after: 1,
        })
        .sign(&operator)
        .unwrap()
    };
    for n in 0..3u64 {
        let e = statement(n);
        let started = std::time::Instant::now();
        let v = submit(&log, e.clone(), 10).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a hanging witness held up publication"
        );
        let proof = TlogProof::parse(v["tlog_proof"].as_str().unwrap().as_bytes()).unwrap();
        let witnessed = proof
            .verify(&LeafHash::of_entry(&e), &log_key, &policy)
            .unwrap();
        assert_eq!(witnessed.cosignatures[0].witness, "witness.good");
        // The hanging witness's key is not satisfied, so a 2-of-2 policy fails.
        let both =
            WitnessPolicy::new(vec![good.signer.witness_key(), hanging.witness_key()], 2).unwrap();
        assert!(proof
            .verify(&LeafHash::of_entry(&e), &log_key, &both)
            .is_err());
    }

    // The log forgets what the witness has seen: the witness answers 409 with its size, and
    // the log retries with a consistency proof from there.
    store
        .set_witness_size("witness.good".into(), 0)
        .await
        .unwrap();
    let e = statement(99);
    let v = submit(&log, e.clone(), 10).await;
    let proof = TlogProof::parse(v["tlog_proof"].as_str().unwrap().as_bytes()).unwrap();
    proof
        .verify(&LeafHash::of_entry(&e), &log_key, &policy)
        .unwrap();
    let reqs = good.requests.lock().unwrap().clone();
    assert!(
        reqs.windows(2).any(|w| w[0] == 0 && w[1] > 0),
        "no 409 retry seen: {reqs:?}"
    );
    log.shutdown().await;
}

#[test]
fn witness_specs() {
    let w = WitnessSigner::generate(&mut rand_core::OsRng, "w.example").unwrap();
    let k = w.witness_key();
    let ok: WitnessConfig = format!("url=https://w.example/x/,key={}", k.as_str())
        .parse()
        .unwrap();
    assert_eq!(ok.url, "https://w.example/x");
    for bad in [
        format!("key={}", k.as_str()),
        "url=https://w.example".to_owned(),
        format!("url=ftp://w.example,key={}", k.as_str()),
        format!("url=https://w.example,key={},extra=1", k.as_str()),
        "url=https://w.example,key=nope".to_owned(),
    ] {
        assert!(bad.parse::<WitnessConfig>().is_err(), "{bad}");
    }
}
