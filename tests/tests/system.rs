//! The whole system across process boundaries, through the client an app embeds
//! (`lucent_verifier::client`), on SQLite and on PostgreSQL: each scenario either ends in an
//! answer only the client can open, or fails closed with its own specific reason.
//!
//! Scenarios: honest path; unlogged CVM; revoked release; expired release; key config not
//! logged; split view; witness quorum missing; CVM restarted with a new key.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use lucent_client::{Client, ClientError, FetchError, StoreError, Task};
use lucent_tests::log_process::postgres_test_url;
use lucent_tests::net::{
    now_unix, Backend, Bins, Devnet, DevnetKeys, DevnetOptions, RuntimeProc, RuntimeSettings,
};
use lucent_verifier::bundle::{BundleError, BundleStep};
use lucent_verifier::cosignature::WitnessSigner;
use lucent_verifier::last_seen::LastSeenError;
use lucent_verifier::statement::Statement;
use rand_core::OsRng;

fn bins() -> Bins {
    lucent_tests::test_bins!()
}

/// A client of `net` with its own state file (`name`), trusting `net`'s keys.
fn client(net: &Devnet, name: &str) -> Client {
    Client::new(net.client_config(name, None).unwrap()).unwrap()
}

/// A runtime whose configuration (and so measurement) is distinct by `label`, listening
/// on a fixed port so that a restart keeps its address.
fn config(net: &Devnet, label: &str) -> String {
    let port = lucent_tests::net::free_port().unwrap();
    net.runtime_config(&RuntimeSettings {
        label: label.into(),
        ..RuntimeSettings::default()
    })
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    )
}

/// Publishes the release of `label`'s configuration, starts it, waits for it to open, and
/// (when `log_key_config`) logs its key config as the operator does.
fn open_cvm(net: &Devnet, label: &str, log_key_config: bool) -> RuntimeProc {
    let config = config(net, label);
    net.publish_release_for(&config).unwrap();
    let mut rt = net.start_runtime(&config, label).unwrap();
    let status = net.wait_settled(&mut rt).unwrap();
    assert_eq!(status["state"], "open", "{status} {}", rt.proc.output());
    if log_key_config {
        net.publish_keyconfig_of(&rt).unwrap();
    }
    rt
}

fn bundle_error(e: ClientError) -> BundleError {
    match e {
        ClientError::Bundle { source, .. } => source,
        other => panic!("want a bundle rejection, got: {other}"),
    }
}

fn refused_code(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Fetch(FetchError::Refused {
            status,
            code,
            message,
            ..
        }) => (status, code, message),
        other => panic!("want a refusal, got: {other}"),
    }
}

/// Two devnets' logs share one key and one witness key but hold different entries.
fn keys_of(net: &Devnet) -> DevnetKeys {
    DevnetKeys {
        log: net.log_signer.clone(),
        operator: net.operator.clone(),
        witnesses: net.witness_signers.clone(),
    }
}

fn scenarios(backend: Backend, fork_backend: Backend) {
    let net = Devnet::start(
        bins(),
        DevnetOptions {
            backend,
            ..DevnetOptions::default()
        },
    )
    .expect("devnet");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Honest path: verified step by step, answered, and only this client can open it.
    let honest = open_cvm(&net, "honest", true);
    let alice = client(&net, "alice");
    let cvm = rt.block_on(alice.attest(&honest.url)).unwrap();
    assert_eq!(cvm.verdict().checked.len(), 9, "every bundle step ran");
    let answer = rt
        .block_on(alice.ask(
            &cvm,
            Task::Summarize,
            "Bob: lunch is at noon on Friday.",
            Some(8),
        ))
        .unwrap();
    assert!(answer.tokens > 0 && answer.tokens <= 8, "{answer:?}");
    assert!(alice.last_seen().unwrap().is_some(), "last seen stored");

    // Unlogged CVM: it stays closed and says why; the client gets no bundle to trust.
    let unlogged = net
        .start_runtime(&config(&net, "unlogged"), "unlogged")
        .unwrap();
    let mut unlogged = unlogged;
    net.wait_settled(&mut unlogged).unwrap();
    let (status, code, message) =
        refused_code(rt.block_on(alice.attest(&unlogged.url)).unwrap_err());
    assert_eq!((status, code.as_str()), (503, "not_logged"), "{message}");
    assert!(
        message.contains(&unlogged.measurement.to_hex()),
        "{message}"
    );

    // Key config not logged: the CVM is open and its bundle verifies, but no operator
    // logged its key, so the client does not use it (key consistency).
    let unlisted = open_cvm(&net, "key config not logged", false);
    let err = rt.block_on(alice.attest(&unlisted.url)).unwrap_err();
    assert!(
        matches!(err, ClientError::KeyConfigNotLogged { .. }),
        "want key config not logged, got: {err}"
    );

    // Witness quorum missing: a client that needs a second witness that never cosigns.
    let absent = WitnessSigner::generate(&mut OsRng, "absent.witness").unwrap();
    let mut strict = client(&net, "strict").config().clone();
    strict.trust.witnesses = lucent_verifier::cosignature::WitnessPolicy::new(
        net.witness_signers
            .iter()
            .map(|w| w.witness_key())
            .chain([absent.witness_key()])
            .collect(),
        2,
    )
    .unwrap();
    let strict = Client::new(strict).unwrap();
    let err = bundle_error(rt.block_on(strict.attest(&honest.url)).unwrap_err());
    assert_eq!(err.step(), Some(BundleStep::WitnessQuorum), "{err}");

    // Revoked release: the CVM opened before the revocation (it re-checks only every
    // few minutes); the client finds the revocation in the log and refuses.
    let revoked = open_cvm(&net, "revoked", true);
    net.revoke(revoked.measurement.clone(), "test: withdrawn")
        .unwrap();
    let err = bundle_error(rt.block_on(alice.attest(&revoked.url)).unwrap_err());
    assert!(matches!(err, BundleError::ReleaseRevoked { .. }), "{err}");

    // Expired release: valid for a few seconds, then past its not-after.
    let expiring_config = config(&net, "expired");
    // The image first: building it takes longer than the release is valid.
    net.image_of(&expiring_config).unwrap();
    let release = net.release_for(&expiring_config, now_unix() + 4).unwrap();
    net.publish(&Statement::Release(release)).unwrap();
    let mut expiring = net.start_runtime(&expiring_config, "expired").unwrap();
    let status = net.wait_settled(&mut expiring).unwrap();
    assert_eq!(status["state"], "open", "{status}");
    net.publish_keyconfig_of(&expiring).unwrap();
    // Verified while the release is valid; the verification is not used past its not-after.
    let verified = rt.block_on(alice.attest(&expiring.url)).unwrap();
    assert!(verified.valid_until() <= now_unix() + 4);
    std::thread::sleep(Duration::from_secs(5));
    let err = rt
        .block_on(alice.ask(&verified, Task::Summarize, "still valid?", Some(2)))
        .unwrap_err();
    assert!(
        matches!(err, ClientError::VerificationExpired { .. }),
        "{err}"
    );
    let err = bundle_error(rt.block_on(alice.attest(&expiring.url)).unwrap_err());
    assert!(matches!(err, BundleError::ReleaseExpired { .. }), "{err}");

    // CVM restarted with a new key: the old key no longer opens anything, and the new one
    // is used only once it is logged.
    let mut restarted = open_cvm(&net, "restarted", true);
    let before = rt.block_on(alice.attest(&restarted.url)).unwrap();
    restarted.proc.kill();
    let mut again = net.start_runtime(&restarted.config, "restarted-2").unwrap();
    assert_eq!(again.url, restarted.url, "same address after the restart");
    assert_eq!(net.wait_settled(&mut again).unwrap()["state"], "open");
    let err = rt
        .block_on(alice.ask(&before, Task::Suggest, "hello", Some(4)))
        .unwrap_err();
    let (status, code, _) = refused_code(err);
    assert_eq!(status, 400, "{code}");
    assert!(
        ["unknown_key_id", "decrypt_failed", "bad_frame"].contains(&code.as_str()),
        "{code}"
    );
    let err = rt.block_on(alice.attest(&again.url)).unwrap_err();
    assert!(
        matches!(err, ClientError::KeyConfigNotLogged { .. }),
        "{err}"
    );
    net.publish_keyconfig_of(&again).unwrap();
    let after = rt.block_on(alice.attest(&again.url)).unwrap();
    assert_ne!(after.key_config().encode(), before.key_config().encode());
    rt.block_on(alice.ask(&after, Task::Suggest, "hello", Some(4)))
        .unwrap();

    // Split view: a second log with the same log key and witness key but other entries.
    // The client has seen the first log; the second's checkpoint, older or not, cannot be
    // a prefix of it.
    let fork = Devnet::start(
        bins(),
        DevnetOptions {
            backend: fork_backend,
            keys: Some(keys_of(&net)),
            ..DevnetOptions::default()
        },
    )
    .expect("fork devnet");
    let forked = open_cvm(&fork, "forked", true);
    let seen = alice.last_seen().unwrap().unwrap();
    let err = bundle_error(rt.block_on(alice.attest(&forked.url)).unwrap_err());
    match err {
        BundleError::LastSeen(LastSeenError::SplitView(evidence)) => {
            assert_eq!(evidence.stored, seen.note, "evidence keeps what was seen");
            assert_ne!(evidence.stored, evidence.new);
        }
        other => panic!("want a split view, got: {other}"),
    }
    // The last seen checkpoint was not replaced by the fork's.
    assert_eq!(alice.last_seen().unwrap().unwrap(), seen);

    // A tampered state file is refused, not trusted and not overwritten.
    let state = net.dir.path().join("clients/alice/last-seen.note");
    let mut tampered = std::fs::read(&state).unwrap();
    tampered[0] ^= 1;
    std::fs::write(&state, &tampered).unwrap();
    let err = rt.block_on(alice.attest(&honest.url)).unwrap_err();
    assert!(
        matches!(err, ClientError::LastSeen(StoreError::Invalid { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read(&state).unwrap(), tampered);
}

#[test]
fn system_scenarios_sqlite() {
    scenarios(Backend::Sqlite, Backend::Sqlite);
}

#[test]
fn system_scenarios_postgres() {
    let (Some(a), Some(b)) = (postgres_test_url(), postgres_test_url()) else {
        println!("SKIPPED: system_scenarios_postgres: PostgreSQL not reachable");
        return;
    };
    scenarios(Backend::Postgres(a), Backend::Postgres(b));
}
