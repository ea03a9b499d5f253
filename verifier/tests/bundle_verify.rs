//! Attestation bundles end to end: a log, witnesses and an operator made here, evidence from
//! the simulated TEE (and the real TDX vector), and one failing case per step of flow 5.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "attestation_support.rs"]
mod support;

use lucent_verifier::binding::report_data;
use lucent_verifier::bundle::{
    verify_bundle, Bundle, BundleError, BundleEvidence, BundlePolicy, BundleStep, EvidenceVerdict,
    LastSeen,
};
use lucent_verifier::checkpoint::{verify_checkpoint, Checkpoint, LogKey};
use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
use lucent_verifier::last_seen::{LastSeenError, Update};
use lucent_verifier::merkle::{MemoryTree, ProofError};
use lucent_verifier::note::{append_signatures, NoteSigner};
use lucent_verifier::simulated::{SimulatedReportRequest, SimulatedTee};
use lucent_verifier::snp::{SnpError, SnpPolicyViolation, SnpTrust};
use lucent_verifier::statement::{Measurement, Platform, Release, Revoke, Statement};
use lucent_verifier::tdx::{TdxError, TdxTrust};
use lucent_verifier::trust::TrustSettings;
use support::*;

const MEASUREMENT: [u8; 48] = [0x6d; 48];
const KEY_CONFIG: &[u8] = b"\x01\x00\x20fake-hpke-key-config-for-tests";
const NONCE: &[u8] = b"client nonce 42";
const NOW: u64 = SIM_NOW;

fn release(platform: Platform, measurement: &[u8], min_tcb: Vec<u8>, not_after: u64) -> Release {
    Release {
        version: "1.2.3".into(),
        min_tcb,
        ..Release::example(Measurement::new(platform, measurement).unwrap(), not_after)
    }
}

/// A log with a few entries, the release at index 2, witnessed by 2 of 3.
struct World {
    log: NoteSigner,
    witnesses: Vec<WitnessSigner>,
    operator: NoteSigner,
    tree: MemoryTree,
    release_note: Vec<u8>,
    release_index: u64,
}

impl World {
    fn new(release: &Release) -> Self {
        let log = NoteSigner::from_seed("log.lucent.test", &[1; 32]).unwrap();
        let witnesses = (0..3)
            .map(|i| WitnessSigner::from_seed(&format!("w{i}.lucent.test"), &[10 + i; 32]).unwrap())
            .collect();
        let operator = NoteSigner::from_seed("operator.lucent.test", &[2; 32]).unwrap();
        let release_note = Statement::Release(release.clone()).sign(&operator).unwrap();
        let mut tree = MemoryTree::new();
        tree.push_entry(b"entry 0");
        tree.push_entry(b"entry 1");
        tree.push_entry(&release_note);
        tree.push_entry(b"entry 3");
        tree.push_entry(b"entry 4");
        World {
            log,
            witnesses,
            operator,
            tree,
            release_note,
            release_index: 2,
        }
    }

    fn checkpoint_note(&self, size: u64, cosigners: &[usize]) -> Vec<u8> {
        let cp = Checkpoint {
            origin: "log.lucent.test".into(),
            size: lucent_verifier::merkle::TreeSize(size),
            root: self.tree.root_at(size).unwrap(),
            extension: String::new(),
        };
        let note = cp.sign(&self.log).unwrap();
        let text = cp.to_text().unwrap();
        let cosigs: Vec<_> = cosigners
            .iter()
            .map(|&i| self.witnesses[i].cosign(&text, NOW - 10))
            .collect();
        append_signatures(&note, &cosigs).unwrap()
    }

    fn trust(&self) -> TrustSettings {
        TrustSettings {
            log: LogKey::new(self.log.verifier_key()),
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

    fn bundle(&self, evidence: BundleEvidence) -> Bundle {
        let size = self.tree.size().0;
        Bundle {
            evidence,
            key_config: KEY_CONFIG.to_vec(),
            release: self.release_note.clone(),
            inclusion: self.tree.prove_inclusion(self.release_index, size).unwrap(),
            checkpoint: self.checkpoint_note(size, &[0, 2]),
        }
    }
}

fn snp_evidence(measurement: [u8; 48], rd: [u8; 64]) -> BundleEvidence {
    BundleEvidence::Snp(
        SimulatedTee::new()
            .unwrap()
            .attest(&SimulatedReportRequest::new(measurement, rd))
            .unwrap(),
    )
}

fn policy() -> BundlePolicy {
    BundlePolicy {
        nonce: Some(NONCE.to_vec()),
        ..BundlePolicy::default()
    }
}

fn good() -> (World, Bundle) {
    let w = World::new(&release(
        Platform::SevSnp,
        &MEASUREMENT,
        vec![0; 8],
        NOW + 86_400,
    ));
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    (w, b)
}

fn step(e: &BundleError) -> BundleStep {
    e.step().expect("a step")
}

#[test]
fn a_good_bundle_verifies_every_step_and_roundtrips() {
    let (w, b) = good();
    let encoded = b.encode().unwrap();
    let decoded = Bundle::decode(&encoded).unwrap();
    assert_eq!(decoded, b);
    let v = verify_bundle(&decoded, &w.trust(), &policy(), None, NOW).unwrap();
    assert_eq!(
        v.checked,
        vec![
            BundleStep::CheckpointSignature,
            BundleStep::WitnessQuorum,
            BundleStep::LastSeenConsistency,
            BundleStep::Inclusion,
            BundleStep::ReleaseSignature,
            BundleStep::ReleaseValidity,
            BundleStep::Evidence,
            BundleStep::MeasurementMatch,
            BundleStep::KeyBinding,
        ]
    );
    assert_eq!(v.release.version, "1.2.3");
    assert_eq!(v.release_index, 2);
    assert_eq!(v.update, Update::First);
    assert_eq!(v.checkpoint.cosignatures.len(), 2);
    assert_eq!(v.release_signers, vec!["operator.lucent.test".to_string()]);
    assert!(matches!(v.evidence, EvidenceVerdict::Snp(ref r) if r.measurement == MEASUREMENT));
}

#[test]
fn simulated_evidence_in_a_bundle_is_rejected_without_the_dangerous_setting() {
    let (w, b) = good();
    let mut trust = w.trust();
    trust.snp = SnpTrust::amd();
    let e = verify_bundle(&b, &trust, &policy(), None, NOW).unwrap_err();
    assert_eq!(e, BundleError::Snp(SnpError::SimulatedRootNotTrusted));
    assert_eq!(step(&e), BundleStep::Evidence);
}

#[test]
fn wrong_log_key_fails_step_1() {
    let (w, b) = good();
    let mut trust = w.trust();
    let other = NoteSigner::from_seed("log.lucent.test", &[99; 32]).unwrap();
    trust.log = LogKey::new(other.verifier_key());
    let e = verify_bundle(&b, &trust, &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::CheckpointSignature(_)), "{e}");
    assert!(e.to_string().starts_with("step 1"), "{e}");
}

#[test]
fn too_few_witness_cosignatures_fails_step_2() {
    let (w, mut b) = good();
    b.checkpoint = w.checkpoint_note(w.tree.size().0, &[1]);
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::WitnessQuorum(_)), "{e}");
    assert_eq!(step(&e), BundleStep::WitnessQuorum);
    // A cosignature from a witness not in the policy does not count.
    let stranger = WitnessSigner::from_seed("w9.lucent.test", &[77; 32]).unwrap();
    let size = w.tree.size().0;
    let text = Checkpoint {
        origin: "log.lucent.test".into(),
        size: lucent_verifier::merkle::TreeSize(size),
        root: w.tree.root(),
        extension: String::new(),
    }
    .to_text()
    .unwrap();
    b.checkpoint =
        append_signatures(&w.checkpoint_note(size, &[1]), &[stranger.cosign(&text, 5)]).unwrap();
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::WitnessQuorum(_)), "{e}");
}

#[test]
fn split_view_against_the_last_seen_checkpoint_fails_step_3() {
    let (w, b) = good();
    let trust = w.trust();
    // The client saw a size-4 checkpoint of a different tree (a fork).
    let mut fork = MemoryTree::new();
    for e in [&b"entry 0"[..], b"entry 1", b"forked!", b"entry 3"] {
        fork.push_entry(e);
    }
    let fork_cp = Checkpoint {
        origin: "log.lucent.test".into(),
        size: fork.size(),
        root: fork.root(),
        extension: String::new(),
    };
    let stored = verify_checkpoint(&fork_cp.sign(&w.log).unwrap(), &trust.log).unwrap();
    let proof = w.tree.prove_consistency(4, 5).unwrap();
    let last = LastSeen {
        checkpoint: &stored,
        proof: Some(&proof),
    };
    let e = verify_bundle(&b, &trust, &policy(), Some(last), NOW).unwrap_err();
    assert!(
        matches!(e, BundleError::LastSeen(LastSeenError::SplitView(_))),
        "{e}"
    );
    assert_eq!(step(&e), BundleStep::LastSeenConsistency);

    // Same size, other root: split view without a proof.
    let fork5 = {
        fork.push_entry(b"entry 4");
        Checkpoint {
            origin: "log.lucent.test".into(),
            size: fork.size(),
            root: fork.root(),
            extension: String::new(),
        }
    };
    let stored5 = verify_checkpoint(&fork5.sign(&w.log).unwrap(), &trust.log).unwrap();
    let e = verify_bundle(
        &b,
        &trust,
        &policy(),
        Some(LastSeen {
            checkpoint: &stored5,
            proof: None,
        }),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(e, BundleError::LastSeen(LastSeenError::SplitView(_))),
        "{e}"
    );

    // A rollback: the client has seen a larger checkpoint.
    let mut bigger = w.tree.clone();
    bigger.push_entry(b"entry 5");
    let big_cp = Checkpoint {
        origin: "log.lucent.test".into(),
        size: bigger.size(),
        root: bigger.root(),
        extension: String::new(),
    };
    let stored6 = verify_checkpoint(&big_cp.sign(&w.log).unwrap(), &trust.log).unwrap();
    let e = verify_bundle(
        &b,
        &trust,
        &policy(),
        Some(LastSeen {
            checkpoint: &stored6,
            proof: None,
        }),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(e, BundleError::LastSeen(LastSeenError::Rollback { .. })),
        "{e}"
    );
    // The same older bundle with a proof that it is a prefix of the larger checkpoint is
    // accepted, and the larger one stays the last seen one.
    let back = bigger.prove_consistency(5, 6).unwrap();
    let v = verify_bundle(
        &b,
        &trust,
        &policy(),
        Some(LastSeen {
            checkpoint: &stored6,
            proof: Some(&back),
        }),
        NOW,
    )
    .unwrap();
    assert!(matches!(v.update, Update::Behind { .. }));
    assert!(!v.update.replaces_stored());
    // A larger checkpoint of a fork is not a prefix of: split view.
    let mut fork6 = fork.clone();
    fork6.push_entry(b"entry 5");
    let fork6_cp = Checkpoint {
        origin: "log.lucent.test".into(),
        size: fork6.size(),
        root: fork6.root(),
        extension: String::new(),
    };
    let stored_fork6 = verify_checkpoint(&fork6_cp.sign(&w.log).unwrap(), &trust.log).unwrap();
    let fork_back = fork6.prove_consistency(5, 6).unwrap();
    let e = verify_bundle(
        &b,
        &trust,
        &policy(),
        Some(LastSeen {
            checkpoint: &stored_fork6,
            proof: Some(&fork_back),
        }),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(e, BundleError::LastSeen(LastSeenError::SplitView(_))),
        "{e}"
    );

    // The honest history: a size-3 checkpoint of the same tree with a real proof passes.
    let honest = Checkpoint {
        origin: "log.lucent.test".into(),
        size: lucent_verifier::merkle::TreeSize(3),
        root: w.tree.root_at(3).unwrap(),
        extension: String::new(),
    };
    let stored3 = verify_checkpoint(&honest.sign(&w.log).unwrap(), &trust.log).unwrap();
    let proof = w.tree.prove_consistency(3, 5).unwrap();
    let v = verify_bundle(
        &b,
        &trust,
        &policy(),
        Some(LastSeen {
            checkpoint: &stored3,
            proof: Some(&proof),
        }),
        NOW,
    )
    .unwrap();
    assert!(matches!(v.update, Update::Advanced { .. }));
}

#[test]
fn bad_inclusion_proof_fails_step_4() {
    let (w, b) = good();
    let trust = w.trust();
    // A flipped hash.
    let mut bad = b.clone();
    bad.inclusion.hashes[0].0[0] ^= 1;
    let e = verify_bundle(&bad, &trust, &policy(), None, NOW).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::Inclusion {
                source: ProofError::RootMismatch,
                ..
            }
        ),
        "{e}"
    );
    // The proof of another index.
    let mut bad = b.clone();
    bad.inclusion = w.tree.prove_inclusion(1, 5).unwrap();
    let e = verify_bundle(&bad, &trust, &policy(), None, NOW).unwrap_err();
    assert_eq!(step(&e), BundleStep::Inclusion);
    // A proof for another size.
    let mut bad = b.clone();
    bad.inclusion = w.tree.prove_inclusion(2, 4).unwrap();
    let e = verify_bundle(&bad, &trust, &policy(), None, NOW).unwrap_err();
    assert_eq!(
        e,
        BundleError::InclusionSize {
            proof: 4,
            checkpoint: 5
        }
    );
    // A release that is not the logged one (one byte changed).
    let mut bad = b.clone();
    let n = bad.release.len();
    bad.release[n - 3] ^= 1;
    let e = verify_bundle(&bad, &trust, &policy(), None, NOW).unwrap_err();
    assert_eq!(step(&e), BundleStep::Inclusion);
}

#[test]
fn statement_not_signed_by_an_operator_fails_step_5() {
    // The log includes a release signed by someone else.
    let rel = release(Platform::SevSnp, &MEASUREMENT, vec![0; 8], NOW + 86_400);
    let mut w = World::new(&rel);
    let rogue = NoteSigner::from_seed("operator.lucent.test", &[66; 32]).unwrap();
    w.release_note = Statement::Release(rel).sign(&rogue).unwrap();
    w.tree = MemoryTree::new();
    for e in [
        &b"entry 0"[..],
        b"entry 1",
        &w.release_note.clone(),
        b"entry 3",
        b"entry 4",
    ] {
        w.tree.push_entry(e);
    }
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::ReleaseSignature(_)), "{e}");
    assert_eq!(step(&e), BundleStep::ReleaseSignature);

    // A logged, operator-signed statement that is not a release.
    let mut w = World::new(&release(
        Platform::SevSnp,
        &MEASUREMENT,
        vec![0; 8],
        NOW + 86_400,
    ));
    w.release_note = Statement::Revoke(Revoke {
        measurement: Measurement::new(Platform::SevSnp, &MEASUREMENT).unwrap(),
        reason: "test".into(),
    })
    .sign(&w.operator)
    .unwrap();
    w.tree = MemoryTree::new();
    for e in [
        &b"entry 0"[..],
        b"entry 1",
        &w.release_note.clone(),
        b"entry 3",
        b"entry 4",
    ] {
        w.tree.push_entry(e);
    }
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::NotARelease { .. }), "{e}");
}

#[test]
fn expired_or_revoked_release_fails_step_6() {
    let w = World::new(&release(
        Platform::SevSnp,
        &MEASUREMENT,
        vec![0; 8],
        NOW - 1,
    ));
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert_eq!(
        e,
        BundleError::ReleaseExpired {
            version: "1.2.3".into(),
            not_after: NOW - 1,
            now: NOW
        }
    );
    // At its not-after it is still valid.
    verify_bundle(&b, &w.trust(), &policy(), None, NOW - 1).unwrap();

    let (w, b) = good();
    let mut trust = w.trust();
    trust.revoked = vec![Measurement::new(Platform::SevSnp, &MEASUREMENT).unwrap()];
    let e = verify_bundle(&b, &trust, &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::ReleaseRevoked { .. }), "{e}");
    assert_eq!(step(&e), BundleStep::ReleaseValidity);
}

#[test]
fn evidence_failures_fail_step_7() {
    let (w, mut b) = good();
    // Evidence for VMPL 2.
    let req = SimulatedReportRequest {
        vmpl: 2,
        ..SimulatedReportRequest::new(MEASUREMENT, report_data(KEY_CONFIG, Some(NONCE)))
    };
    b.evidence = BundleEvidence::Snp(SimulatedTee::new().unwrap().attest(&req).unwrap());
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert_eq!(
        e,
        BundleError::Snp(SnpError::Policy(SnpPolicyViolation::VmplNotAllowed {
            got: 2,
            want: 0
        }))
    );
    // The release demands a newer TCB than the evidence has (snp SPL 23 > 22).
    let min = lucent_verifier::snp::TcbVersion {
        snp: 23,
        ..Default::default()
    }
    .encode(lucent_verifier::snp::Product::Milan)
    .to_le_bytes()
    .to_vec();
    let w = World::new(&release(Platform::SevSnp, &MEASUREMENT, min, NOW + 86_400));
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::Snp(SnpError::Policy(SnpPolicyViolation::TcbTooLow {
                component: "snp",
                got: 22,
                min: 23,
                ..
            }))
        ),
        "{e}"
    );
    // Evidence of the wrong platform for the release.
    let w = World::new(&release(
        Platform::Tdx,
        &[0x6d; 240],
        vec![0; 16],
        NOW + 86_400,
    ));
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::PlatformMismatch { .. }), "{e}");
}

#[test]
fn measurement_mismatch_fails_step_8() {
    let (w, mut b) = good();
    b.evidence = snp_evidence([0x6e; 48], report_data(KEY_CONFIG, Some(NONCE)));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert_eq!(
        e,
        BundleError::MeasurementMismatch {
            release: hex::encode(MEASUREMENT),
            evidence: hex::encode([0x6e; 48])
        }
    );
}

#[test]
fn key_not_bound_fails_step_9() {
    let (w, b) = good();
    // Another key config in the bundle than the one the report binds.
    let mut bad = b.clone();
    bad.key_config = b"another key config".to_vec();
    let e = verify_bundle(&bad, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::KeyNotBound(_)), "{e}");
    assert_eq!(step(&e), BundleStep::KeyBinding);
    // Another nonce than the verifier's (replay).
    let p = BundlePolicy {
        nonce: Some(b"fresh nonce".to_vec()),
        ..BundlePolicy::default()
    };
    let e = verify_bundle(&b, &w.trust(), &p, None, NOW).unwrap_err();
    assert!(matches!(e, BundleError::KeyNotBound(_)), "{e}");
    // No nonce expected, and the report binds only the key config: passes.
    let mut nb = b.clone();
    nb.evidence = snp_evidence(MEASUREMENT, report_data(KEY_CONFIG, None));
    verify_bundle(&nb, &w.trust(), &BundlePolicy::default(), None, NOW).unwrap();
}

#[test]
fn a_real_tdx_quote_in_a_bundle_reaches_the_binding_step() {
    // The real quote's report data was not made with our binding, so a TDX release with its
    // MRTD and RTMRs passes steps 1–8 and fails at 9: the TDX path runs end to end.
    let parsed = lucent_verifier::tdx::parse_quote(&tdx_quote())
        .unwrap()
        .td_report;
    let mut m = parsed.mr_td.to_vec();
    for r in [parsed.rt_mr0, parsed.rt_mr1, parsed.rt_mr2, parsed.rt_mr3] {
        m.extend_from_slice(&r);
    }
    let w = World::new(&release(Platform::Tdx, &m, vec![0; 16], TDX_NOW + 86_400));
    let b = w.bundle(BundleEvidence::Tdx {
        quote: tdx_quote(),
        collateral_json: tdx_collateral_json().to_vec(),
    });
    let b = Bundle::decode(&b.encode().unwrap()).unwrap();
    let e = verify_bundle(&b, &w.trust(), &policy(), None, TDX_NOW).unwrap_err();
    assert!(matches!(e, BundleError::KeyNotBound(_)), "{e}");
    // After the collateral window, step 7 fails instead (a release valid then).
    let later = 1_760_000_000;
    let w = World::new(&release(Platform::Tdx, &m, vec![0; 16], later + 86_400));
    let b = w.bundle(BundleEvidence::Tdx {
        quote: tdx_quote(),
        collateral_json: tdx_collateral_json().to_vec(),
    });
    let e = verify_bundle(&b, &w.trust(), &policy(), None, later).unwrap_err();
    assert!(
        matches!(e, BundleError::Tdx(TdxError::Expired { .. })),
        "{e}"
    );
    // A release for another MRTD fails step 8.
    let mut other = m.clone();
    other[0] ^= 1;
    let w = World::new(&release(
        Platform::Tdx,
        &other,
        vec![0; 16],
        TDX_NOW + 86_400,
    ));
    let b = w.bundle(BundleEvidence::Tdx {
        quote: tdx_quote(),
        collateral_json: tdx_collateral_json().to_vec(),
    });
    let e = verify_bundle(&b, &w.trust(), &policy(), None, TDX_NOW).unwrap_err();
    assert!(matches!(e, BundleError::MeasurementMismatch { .. }), "{e}");
    // A release demanding a newer TEE TCB SVN.
    let w = World::new(&release(
        Platform::Tdx,
        &m,
        vec![0xff; 16],
        TDX_NOW + 86_400,
    ));
    let b = w.bundle(BundleEvidence::Tdx {
        quote: tdx_quote(),
        collateral_json: tdx_collateral_json().to_vec(),
    });
    let e = verify_bundle(&b, &w.trust(), &policy(), None, TDX_NOW).unwrap_err();
    assert!(matches!(e, BundleError::TdxTcbBelowRelease { .. }), "{e}");
}

#[test]
fn decoding_is_strict() {
    let (_, b) = good();
    let text = String::from_utf8(b.encode().unwrap()).unwrap();
    let bad = [
        text.replace("lucent/bundle/v1", "lucent/bundle/v2"),
        text.replace("\"key_config\"", "\"key_cfg\""),
        text.replacen('{', "{\"extra\":1,", 1),
        text.replace("sev-snp", "sgx"),
        text[..text.len() - 1].to_string(),
        String::new(),
    ];
    for (i, t) in bad.iter().enumerate() {
        assert!(
            matches!(
                Bundle::decode(t.as_bytes()),
                Err(BundleError::Decode { .. })
            ),
            "case {i}"
        );
    }
    assert!(Bundle::decode(&vec![b' '; 300 * 1024]).is_err());
}

#[test]
fn bundle_decoder_never_panics_on_mutations() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let (_, b) = good();
    let encoded = b.encode().unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let mut decoded_ok = 0;
    for _ in 0..3000 {
        let mut m = encoded.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..m.len());
            m[i] = rng.gen();
        }
        if rng.gen_bool(0.1) {
            m.truncate(rng.gen_range(0..m.len()));
        }
        if let Ok(bundle) = Bundle::decode(&m) {
            // Whatever decodes re-encodes to the same bundle (the fuzz target's property).
            let again = Bundle::decode(&bundle.encode().unwrap()).unwrap();
            assert_eq!(again, bundle);
            decoded_ok += 1;
        }
    }
    // Most single-byte changes inside base64 or note text still decode: the layer that
    // rejects them is verification, tested above.
    assert!(decoded_ok > 0);
}

/// A genuine Milan report from before AMD-SB-3019's fix, in a bundle whose release names its
/// measurement: every log step passes, and the evidence step refuses it, naming the floor
/// (the broker answers `evidence_rejected` with this message, the client `ClientError::Bundle`).
#[test]
fn a_report_below_amds_floor_is_refused_at_the_evidence_step_naming_it() {
    let ev = milan_vcek_evidence();
    let measurement = lucent_verifier::snp::SnpReport::parse(&ev.report)
        .unwrap()
        .measurement();
    let w = World::new(&release(
        Platform::SevSnp,
        &measurement,
        vec![0; 8],
        MILAN_NOW + 86_400,
    ));
    let b = w.bundle(BundleEvidence::Snp(ev));
    let trust = TrustSettings {
        snp: SnpTrust::amd(),
        ..w.trust()
    };
    let e = verify_bundle(&b, &trust, &policy(), None, MILAN_NOW).unwrap_err();
    assert_eq!(e.step(), Some(BundleStep::Evidence), "{e}");
    assert!(
        matches!(
            &e,
            BundleError::Snp(SnpError::Policy(SnpPolicyViolation::BelowFloor {
                component: "snp",
                got: 8,
                min: 0x18,
                ..
            }))
        ),
        "{e}"
    );
    assert!(e.to_string().contains("AMD-SB-3019"), "{e}");
}

/// A release that claims to stay valid longer than the policy's maximum lifetime from now is
/// refused at step 6, whatever the log holds; at the limit it passes.
#[test]
fn a_release_valid_for_longer_than_the_maximum_lifetime_is_refused() {
    let max = lucent_verifier::bundle::DEFAULT_MAX_RELEASE_LIFETIME_SECS;
    let w = World::new(&release(
        Platform::SevSnp,
        &MEASUREMENT,
        vec![0; 8],
        NOW + max + 1,
    ));
    let b = w.bundle(snp_evidence(
        MEASUREMENT,
        report_data(KEY_CONFIG, Some(NONCE)),
    ));
    let e = verify_bundle(&b, &w.trust(), &policy(), None, NOW).unwrap_err();
    assert_eq!(
        e,
        BundleError::ReleaseLifetimeTooLong {
            version: "1.2.3".into(),
            not_after: NOW + max + 1,
            now: NOW,
            max_secs: max,
        }
    );
    assert_eq!(step(&e), BundleStep::ReleaseValidity);
    // One second later the same release is within the limit.
    verify_bundle(&b, &w.trust(), &policy(), None, NOW + 1).unwrap();
    // A policy may shorten the limit.
    let short = BundlePolicy {
        max_release_lifetime_secs: 3600,
        ..policy()
    };
    let e = verify_bundle(&b, &w.trust(), &short, None, NOW + 1).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::ReleaseLifetimeTooLong { max_secs: 3600, .. }
        ),
        "{e}"
    );
}
