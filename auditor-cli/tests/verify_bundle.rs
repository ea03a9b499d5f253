//! `verify-bundle` on bundles made here: a log, witnesses and an operator made in the test,
//! evidence from the verifier's simulated SEV-SNP TEE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::auditor_json;
use lucent_verifier::binding::report_data;
use lucent_verifier::bundle::{Bundle, BundleEvidence};
use lucent_verifier::checkpoint::Checkpoint;
use lucent_verifier::cosignature::WitnessSigner;
use lucent_verifier::merkle::{MemoryTree, TreeSize};
use lucent_verifier::note::{append_signatures, NoteSigner};
use lucent_verifier::simulated::{SimulatedReportRequest, SimulatedTee};
use lucent_verifier::statement::{Measurement, Platform, Release, Statement};

const NOW: &str = "1893456000";
const KEY_CONFIG: &[u8] = b"\x01\x00\x20test-hpke-key-config";
const MEASUREMENT: [u8; 48] = [0x42; 48];

struct World {
    log: NoteSigner,
    witness: WitnessSigner,
    operator: NoteSigner,
}

fn bundle(w: &World, nonce: &[u8], extra_entries: u32) -> Vec<u8> {
    let release = Statement::Release(Release {
        version: "2.0.0".into(),
        ..Release::example(
            Measurement::new(Platform::SevSnp, &MEASUREMENT).unwrap(),
            1_893_456_000 + 86_400,
        )
    })
    .sign(&w.operator)
    .unwrap();
    let mut tree = MemoryTree::new();
    tree.push_entry(b"first");
    tree.push_entry(&release);
    for i in 0..extra_entries {
        tree.push_entry(&i.to_be_bytes());
    }
    let size = tree.size().0;
    let cp = Checkpoint {
        origin: w.log.name().into(),
        size: TreeSize(size),
        root: tree.root(),
        extension: String::new(),
    };
    let note = cp.sign(&w.log).unwrap();
    let note = append_signatures(
        &note,
        &[w.witness.cosign(&cp.to_text().unwrap(), 1_893_455_000)],
    )
    .unwrap();
    let evidence = SimulatedTee::new()
        .unwrap()
        .attest(&SimulatedReportRequest::new(
            MEASUREMENT,
            report_data(KEY_CONFIG, Some(nonce)),
        ))
        .unwrap();
    Bundle {
        evidence: BundleEvidence::Snp(evidence),
        key_config: KEY_CONFIG.to_vec(),
        release,
        inclusion: tree.prove_inclusion(1, size).unwrap(),
        checkpoint: note,
    }
    .encode()
    .unwrap()
}

#[test]
fn verify_bundle_reports_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let w = World {
        log: NoteSigner::generate(&mut rand_core::OsRng, "log.bundle.test").unwrap(),
        witness: WitnessSigner::generate(&mut rand_core::OsRng, "w.bundle.test").unwrap(),
        operator: NoteSigner::generate(&mut rand_core::OsRng, "operator.bundle.test").unwrap(),
    };
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle(&w, b"nonce-1", 3)).unwrap();
    let (lk, wk, ok) = (
        w.log.verifier_key().to_string(),
        w.witness.witness_key().as_str().to_owned(),
        w.operator.verifier_key().to_string(),
    );
    let f = file.to_str().unwrap();
    let nonce = hex::encode(b"nonce-1");
    let base = [
        "verify-bundle",
        "--bundle",
        f,
        "--log-key",
        &lk,
        "--witness-key",
        &wk,
        "--operator-key",
        &ok,
        "--now",
        NOW,
    ];

    let mut args = base.to_vec();
    args.extend(["--nonce", &nonce, "--dangerous-trust-simulated-root"]);
    let (code, v, err) = auditor_json(&args);
    assert_eq!(code, 0, "{v} {err}");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 9);
    assert!(steps.iter().all(|s| s["result"] == "ok"), "{v}");
    assert_eq!(v["release_index"], 1);

    // Simulated root not trusted by default: evidence step fails, earlier ones pass.
    let mut args = base.to_vec();
    args.extend(["--nonce", &nonce]);
    let (code, v, _) = auditor_json(&args);
    assert_eq!(code, 1, "{v}");
    let results: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["result"].as_str().unwrap())
        .collect();
    assert_eq!(&results[..6], &["ok"; 6]);
    assert_eq!(results[6], "FAILED");
    assert_eq!(&results[7..], &["not reached"; 2]);

    // Wrong nonce: key binding fails.
    let mut args = base.to_vec();
    let wrong = hex::encode(b"nonce-2");
    args.extend(["--nonce", &wrong, "--dangerous-trust-simulated-root"]);
    let (code, v, _) = auditor_json(&args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["steps"][8]["result"], "FAILED");

    // Revoked measurement: validity step fails.
    let mut args = base.to_vec();
    let revoked = hex::encode(MEASUREMENT);
    args.extend([
        "--nonce",
        &nonce,
        "--dangerous-trust-simulated-root",
        "--revoked",
        &revoked,
    ]);
    let (code, v, _) = auditor_json(&args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["steps"][5]["result"], "FAILED");

    // Witness quorum: another witness's key.
    let other = WitnessSigner::generate(&mut rand_core::OsRng, "w.bundle.test").unwrap();
    let ow = other.witness_key().as_str().to_owned();
    let args = [
        "verify-bundle",
        "--bundle",
        f,
        "--log-key",
        &lk,
        "--witness-key",
        &ow,
        "--operator-key",
        &ok,
        "--now",
        NOW,
        "--nonce",
        &nonce,
        "--dangerous-trust-simulated-root",
    ];
    let (code, v, _) = auditor_json(&args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["steps"][1]["result"], "FAILED");

    // State: first use stores the checkpoint; a bundle from a different tree of the same
    // size is then a split view (step 3), offline.
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let mut args = base.to_vec();
    args.extend([
        "--nonce",
        &nonce,
        "--dangerous-trust-simulated-root",
        "--state-dir",
        s,
    ]);
    let (code, v, err) = auditor_json(&args);
    assert_eq!(code, 0, "{v} {err}");
    let forked = dir.path().join("forked.json");
    // Same size (2 + 3), other extra entries → another root. Rebuild with different content.
    let mut fork_world_bytes = bundle(&w, b"nonce-1", 0);
    // Make the fork the same size as the stored one by building with 3 extra different entries.
    {
        let mut tree = MemoryTree::new();
        let b = Bundle::decode(&fork_world_bytes).unwrap();
        tree.push_entry(b"first");
        tree.push_entry(&b.release);
        for i in 100u32..103 {
            tree.push_entry(&i.to_be_bytes());
        }
        let cp = Checkpoint {
            origin: w.log.name().into(),
            size: TreeSize(5),
            root: tree.root(),
            extension: String::new(),
        };
        let note = append_signatures(
            &cp.sign(&w.log).unwrap(),
            &[w.witness.cosign(&cp.to_text().unwrap(), 1_893_455_000)],
        )
        .unwrap();
        let fork = Bundle {
            inclusion: tree.prove_inclusion(1, 5).unwrap(),
            checkpoint: note,
            ..b
        };
        fork_world_bytes = fork.encode().unwrap();
    }
    std::fs::write(&forked, &fork_world_bytes).unwrap();
    let fk = forked.to_str().unwrap();
    let args = [
        "verify-bundle",
        "--bundle",
        fk,
        "--log-key",
        &lk,
        "--witness-key",
        &wk,
        "--operator-key",
        &ok,
        "--now",
        NOW,
        "--nonce",
        &nonce,
        "--dangerous-trust-simulated-root",
        "--state-dir",
        s,
    ];
    let (code, v, _) = auditor_json(&args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["steps"][2]["result"], "FAILED");

    // Not a bundle at all.
    std::fs::write(&file, b"{\"format\": \"nope\"}").unwrap();
    let (code, v, _) = auditor_json(&base);
    assert_eq!(code, 1, "{v}");
}
