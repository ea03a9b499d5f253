//! The broker through its router (`tower::ServiceExt::oneshot`): a simulated CVM whose
//! release is logged under a witnessed checkpoint gets the weights key; every failure mode
//! gets its own code. The broker follows a log whose checkpoint and entry bundles a plain
//! file server serves over a real socket, as a CDN or a mirror would.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../client/tests/support/file_server.rs"]
mod file_server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use file_server::{serve_files, Files};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use lucent_client::follow::{FollowPolicy, Follower};
use lucent_client::{AtomicFile, LogClient};
use lucent_key_broker::api::app;
use lucent_key_broker::broker::{Broker, BrokerConfig};
use lucent_verifier::binding::report_data;
use lucent_verifier::bundle::{Bundle, BundleEvidence, BundlePolicy};
use lucent_verifier::checkpoint::{Checkpoint, LogKey};
use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
use lucent_verifier::encapsulation::KeyPair;
use lucent_verifier::key_release::weights::WeightsKey;
use lucent_verifier::key_release::{
    open_sealed_key, KeyRequestBody, KeyResponse, NonceResponse, MAX_KEY_REQUEST_BYTES,
};
use lucent_verifier::merkle::{MemoryTree, TreeSize};
use lucent_verifier::note::{append_signatures, NoteSigner};
use lucent_verifier::simulated::{SimulatedReportRequest, SimulatedTee};
use lucent_verifier::snp::SnpTrust;
use lucent_verifier::statement::{Measurement, Platform, Release, Statement};
use lucent_verifier::tdx::TdxTrust;
use lucent_verifier::tiles::{encode_bundle, TilePath};
use lucent_verifier::trust::TrustSettings;
use tower::ServiceExt as _;

/// Inside the simulated chain's validity (2030-01-01).
const NOW: u64 = 1_893_456_000;
const MEASUREMENT: [u8; 48] = [0x6d; 48];

fn release(measurement: [u8; 48]) -> Release {
    Release::example(
        Measurement::new(Platform::SevSnp, &measurement).unwrap(),
        NOW + 86_400,
    )
}

struct World {
    log: NoteSigner,
    witnesses: Vec<WitnessSigner>,
    operator: NoteSigner,
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
    files: Files,
    log_url: String,
    release_note: Vec<u8>,
    _dir: tempfile::TempDir,
    state_path: std::path::PathBuf,
    clock: Arc<AtomicU64>,
    weights_key: WeightsKey,
}

impl World {
    async fn new() -> Self {
        let log = NoteSigner::from_seed("log.lucent.test", &[1; 32]).unwrap();
        let witnesses = (0..2)
            .map(|i| WitnessSigner::from_seed(&format!("w{i}.lucent.test"), &[10 + i; 32]).unwrap())
            .collect();
        let operator = NoteSigner::from_seed("operator.lucent.test", &[2; 32]).unwrap();
        let release_note = Statement::Release(release(MEASUREMENT))
            .sign(&operator)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let state_path = dir.path().join("last-seen.note");
        let files = Files::default();
        let log_url = serve_files(files.clone()).await;
        let mut w = World {
            log,
            witnesses,
            operator,
            tree: MemoryTree::new(),
            entries: Vec::new(),
            files,
            log_url,
            release_note,
            _dir: dir,
            state_path,
            clock: Arc::new(AtomicU64::new(NOW)),
            weights_key: WeightsKey::generate(&mut rand_core::OsRng),
        };
        w.append(b"entry 0".to_vec());
        w.append(w.release_note.clone());
        w.append(b"entry 2".to_vec());
        w
    }

    /// Logs `entry` and publishes the new checkpoint and entry bundle.
    fn append(&mut self, entry: Vec<u8>) {
        self.tree.push_entry(&entry);
        self.entries.push(entry);
        let size = self.tree.size().0;
        let tile = TilePath::in_tree(None, 0, size).unwrap();
        let mut files = self.files.lock().unwrap();
        files.insert(tile.path(), encode_bundle(&self.entries).unwrap());
        files.insert("checkpoint".into(), self.checkpoint(size));
    }

    fn trust(&self, log: &NoteSigner) -> TrustSettings {
        TrustSettings {
            log: LogKey::new(log.verifier_key()),
            witnesses: WitnessPolicy::new(
                self.witnesses.iter().map(|w| w.witness_key()).collect(),
                2,
            )
            .unwrap(),
            operators: vec![self.operator.verifier_key()],
            snp: SnpTrust::amd().dangerous_trust_simulated_root(),
            tdx: TdxTrust::intel(),
            amd_crls: Default::default(),
            revoked: vec![],
        }
    }

    async fn broker_with(&self, trust: TrustSettings) -> axum::Router {
        let follower = Arc::new(Follower::new(
            LogClient::new(reqwest::Client::new(), &self.log_url),
            trust.clone(),
            FollowPolicy::default(),
        ));
        // A broker whose trust does not match the log cannot read it; the bundle check
        // refuses first.
        let _ = follower.sync(self.clock.load(Ordering::SeqCst)).await;
        let config = BrokerConfig {
            follower,
            max_view_age_secs: 3600,
            trust,
            policy: BundlePolicy::default(),
            nonce_ttl_secs: 60,
            state_file: AtomicFile::new(&self.state_path),
            weights_key: self.weights_key.clone(),
        };
        let clock = self.clock.clone();
        app(Arc::new(
            Broker::new(config, Arc::new(move || clock.load(Ordering::SeqCst))).unwrap(),
        ))
    }

    async fn broker(&self) -> axum::Router {
        self.broker_with(self.trust(&self.log)).await
    }

    fn checkpoint(&self, size: u64) -> Vec<u8> {
        let cp = Checkpoint {
            origin: "log.lucent.test".into(),
            size: TreeSize(size),
            root: self.tree.root_at(size).unwrap(),
            extension: String::new(),
        };
        let note = cp.sign(&self.log).unwrap();
        let text = cp.to_text().unwrap();
        let cosigs: Vec<_> = self
            .witnesses
            .iter()
            .map(|w| w.cosign(&text, NOW - 10))
            .collect();
        append_signatures(&note, &cosigs).unwrap()
    }

    /// A bundle from a simulated CVM with `measurement`, for the release note at `index`.
    fn bundle(
        &self,
        keypair: &KeyPair,
        nonce: &[u8],
        measurement: [u8; 48],
        entry: &[u8],
        index: u64,
    ) -> Bundle {
        let key_config = keypair.key_config_bytes();
        let rd = report_data(&key_config, Some(nonce));
        let evidence = SimulatedTee::new()
            .unwrap()
            .attest(&SimulatedReportRequest::new(measurement, rd))
            .unwrap();
        let size = self.tree.size().0;
        Bundle {
            evidence: BundleEvidence::Snp(evidence),
            key_config,
            release: entry.to_vec(),
            inclusion: self.tree.prove_inclusion(index, size).unwrap(),
            checkpoint: self.checkpoint(size),
        }
    }
}

async fn call(router: &axum::Router, path: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let resp = router
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn nonce(router: &axum::Router) -> Vec<u8> {
    let (status, body) = call(router, "/v1/nonce", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let n: NonceResponse = serde_json::from_value(body).unwrap();
    n.nonce_bytes().unwrap()
}

fn key_body(nonce: &[u8], bundle: &Bundle) -> Vec<u8> {
    serde_json::to_vec(&KeyRequestBody::new(nonce, bundle, None).unwrap()).unwrap()
}

fn assert_error(got: (StatusCode, serde_json::Value), status: StatusCode, code: &str) {
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert_eq!(got.0, status, "{}", got.1);
    let refusal: lucent_verifier::log_api::ErrorBody = serde_json::from_value(got.1).unwrap();
    assert!(!refusal.message.is_empty());
}

#[tokio::test]
async fn logged_cvm_gets_the_key_only_it_can_open() {
    let w = World::new().await;
    let broker = w.broker().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    let (status, body) = call(&broker, "/v1/key", key_body(&n, &bundle)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp: KeyResponse = serde_json::from_value(body).unwrap();
    assert_eq!(resp.release.measurement, hex::encode(MEASUREMENT));
    assert_eq!(resp.checkpoint_size, 3);
    let sealed = resp.sealed_key_bytes().unwrap();
    let key = open_sealed_key(&cvm, &sealed).unwrap();
    assert_eq!(key.as_bytes(), w.weights_key.as_bytes());
    // Another key pair cannot open it.
    let other = KeyPair::generate(1, &mut rand_core::OsRng);
    assert!(open_sealed_key(&other, &sealed).is_err());
    // The last seen checkpoint was stored, and a restarted broker reports it.
    assert!(w.state_path.exists());
    let restarted = w.broker().await;
    let (_, body) = call(&restarted, "/v1/nonce", vec![]).await;
    assert_eq!(body["last_seen_size"], 3);
}

#[tokio::test]
async fn replayed_stale_and_unknown_nonces() {
    let w = World::new().await;
    let broker = w.broker().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    let body = key_body(&n, &bundle);
    assert_eq!(
        call(&broker, "/v1/key", body.clone()).await.0,
        StatusCode::OK
    );
    assert_error(
        call(&broker, "/v1/key", body).await,
        StatusCode::CONFLICT,
        "nonce_replayed",
    );

    let n2 = nonce(&broker).await;
    w.clock.fetch_add(61, Ordering::SeqCst);
    let bundle = w.bundle(&cvm, &n2, MEASUREMENT, &w.release_note, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&n2, &bundle)).await,
        StatusCode::GONE,
        "nonce_stale",
    );

    let made_up = [7u8; 32];
    let bundle = w.bundle(&cvm, &made_up, MEASUREMENT, &w.release_note, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&made_up, &bundle)).await,
        StatusCode::FORBIDDEN,
        "nonce_unknown",
    );
}

#[tokio::test]
async fn evidence_bound_to_another_nonce_is_refused() {
    let w = World::new().await;
    let broker = w.broker().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, b"some other nonce", MEASUREMENT, &w.release_note, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&n, &bundle)).await,
        StatusCode::FORBIDDEN,
        "key_not_bound",
    );
}

#[tokio::test]
async fn wrong_measurement_unlogged_revoked_and_wrong_log_key() {
    let w = World::new().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);

    // Evidence of another build than the logged release.
    let broker = w.broker().await;
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, [0x99; 48], &w.release_note, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&n, &bundle)).await,
        StatusCode::FORBIDDEN,
        "measurement_mismatch",
    );

    // A correctly signed release that is not in the log.
    let unlogged = Statement::Release(release([0x42; 48]))
        .sign(&w.operator)
        .unwrap();
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, [0x42; 48], &unlogged, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&n, &bundle)).await,
        StatusCode::FORBIDDEN,
        "release_not_logged",
    );

    // The release is revoked.
    let mut trust = w.trust(&w.log);
    trust
        .revoked
        .push(Measurement::new(Platform::SevSnp, &MEASUREMENT).unwrap());
    let broker = w.broker_with(trust).await;
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&n, &bundle)).await,
        StatusCode::FORBIDDEN,
        "release_revoked",
    );

    // The broker trusts another log key.
    let other_log = NoteSigner::from_seed("log.lucent.test", &[3; 32]).unwrap();
    let broker = w.broker_with(w.trust(&other_log)).await;
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    assert_error(
        call(&broker, "/v1/key", key_body(&n, &bundle)).await,
        StatusCode::FORBIDDEN,
        "checkpoint_signature",
    );
    // None of the refusals stored a checkpoint.
    assert!(!w.state_path.exists());
}

#[tokio::test]
async fn garbage_and_oversized_bodies() {
    let w = World::new().await;
    let broker = w.broker().await;
    let canary = "CANARY-7f3a9c";
    let (status, body) = call(
        &broker,
        "/v1/key",
        format!("{{\"nonce\": {canary}").into_bytes(),
    )
    .await;
    assert_error(
        (status, body.clone()),
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert!(
        !body.to_string().contains(canary),
        "error echoes input: {body}"
    );
    assert_error(
        call(
            &broker,
            "/v1/key",
            br#"{"nonce":"AAAA","bundle":{"format":"nope"}}"#.to_vec(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bundle_malformed",
    );
    assert_error(
        call(
            &broker,
            "/v1/key",
            br#"{"nonce":"not base64!","bundle":{}}"#.to_vec(),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        call(&broker, "/v1/key", vec![b' '; MAX_KEY_REQUEST_BYTES + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    );
    // Still serving.
    nonce(&broker).await;
}

#[tokio::test]
async fn a_revocation_in_the_log_is_refused_with_no_config_change() {
    let mut w = World::new().await;
    let broker = w.broker().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    assert_eq!(
        call(&broker, "/v1/key", key_body(&n, &bundle)).await.0,
        StatusCode::OK
    );

    // The operator revokes the measurement in the log; the broker's configuration is as
    // before. A CVM presenting the new checkpoint makes the broker read the log at once.
    let revoke = Statement::Revoke(lucent_verifier::statement::Revoke {
        measurement: Measurement::new(Platform::SevSnp, &MEASUREMENT).unwrap(),
        reason: "key leak".into(),
    })
    .sign(&w.operator)
    .unwrap();
    w.append(revoke);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    // The broker last saw size 3: the CVM proves size 4 extends it.
    let proof = w.tree.prove_consistency(3, 4).unwrap();
    let body =
        serde_json::to_vec(&KeyRequestBody::new(&n, &bundle, Some(&proof)).unwrap()).unwrap();
    let refused = call(&broker, "/v1/key", body).await;
    let message = refused.1["message"].as_str().unwrap().to_owned();
    assert_error(refused, StatusCode::FORBIDDEN, "release_revoked");
    assert!(
        message.contains("revoked in the log at index 3") && message.contains("key leak"),
        "{message}"
    );

    // A CVM holding the old checkpoint (size 3, before the revocation) is refused as well:
    // the broker's view already holds the revocation.
    let n = nonce(&broker).await;
    let mut bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    bundle.checkpoint = w.checkpoint(3);
    bundle.inclusion = w.tree.prove_inclusion(1, 3).unwrap();
    // The broker has seen size 4: the CVM proves its size-3 checkpoint a prefix of it.
    let body =
        serde_json::to_vec(&KeyRequestBody::new(&n, &bundle, Some(&proof)).unwrap()).unwrap();
    let refused = call(&broker, "/v1/key", body).await;
    assert_eq!(refused.1["error"], "release_revoked", "{}", refused.1);
}

#[tokio::test]
async fn a_view_not_confirmed_for_too_long_stops_releases() {
    let w = World::new().await;
    let broker = w.broker().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    // The log stops answering and the clock moves past the view's age limit.
    w.files.lock().unwrap().clear();
    w.clock.fetch_add(3601, Ordering::SeqCst);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    let refused = call(&broker, "/v1/key", key_body(&n, &bundle)).await;
    let message = refused.1["message"].as_str().unwrap().to_owned();
    assert_error(
        refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "log_view_unavailable",
    );
    assert!(message.contains("3601 s ago (limit 3600 s)"), "{message}");
}

#[tokio::test]
async fn a_checkpoint_newer_than_a_view_that_cannot_catch_up_is_refused() {
    let mut w = World::new().await;
    let broker = w.broker().await;
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    // The log grows, but its entry bundle is gone from the server: the broker cannot read
    // what lies between its view and the CVM's checkpoint.
    w.append(b"entry 3".to_vec());
    w.files
        .lock()
        .unwrap()
        .retain(|path, _| path == "checkpoint");
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    let refused = call(&broker, "/v1/key", key_body(&n, &bundle)).await;
    let message = refused.1["message"].as_str().unwrap().to_owned();
    assert_error(
        refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "log_view_unavailable",
    );
    assert!(
        message.contains("(size 4) is newer than the broker's view of the log (size 3)"),
        "{message}"
    );
}

/// Nonces keep no state in the broker: after 20,000 of them (more than the 16,384 a
/// store of issued nonces used to hold), a real CVM still gets a nonce and its key.
#[tokio::test]
async fn a_nonce_flood_does_not_crowd_out_a_cvm() {
    let w = World::new().await;
    let broker = w.broker().await;
    for _ in 0..20_000 {
        nonce(&broker).await;
    }
    let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
    let n = nonce(&broker).await;
    let bundle = w.bundle(&cvm, &n, MEASUREMENT, &w.release_note, 1);
    let (status, body) = call(&broker, "/v1/key", key_body(&n, &bundle)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
