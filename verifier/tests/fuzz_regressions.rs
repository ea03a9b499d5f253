//! Replays every committed fuzz input (crashes found, and the seeds) through the same
//! parsers the fuzz targets call, so a fixed crash stays fixed. See `fuzz/README.md`.

use std::path::{Path, PathBuf};

use lucent_verifier::checkpoint::{verify_witnessed, Checkpoint, LogKey};
use lucent_verifier::cosignature::{WitnessKey, WitnessPolicy, WitnessSigner};
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::{self, NoteKey, NoteSigner, NoteVerifierKey};
use lucent_verifier::statement;
use lucent_verifier::tlog_proof::TlogProof;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["regressions", "seeds"] {
        if let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) {
            files.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    files.sort();
    files
}

fn keys() -> (NoteSigner, WitnessSigner, NoteSigner) {
    (
        NoteSigner::from_seed("log.example", &[1; 32]).expect("name"),
        WitnessSigner::from_seed("witness.example", &[2; 32]).expect("name"),
        NoteSigner::from_seed("operator.example", &[3; 32]).expect("name"),
    )
}

#[test]
fn note_inputs() {
    let (log, witness, _) = keys();
    let (log_key, witness_key) = (log.verifier_key(), witness.witness_key());
    let keys: [&dyn NoteKey; 2] = [&log_key, &witness_key];
    for path in inputs("note") {
        let data = std::fs::read(&path).expect("read");
        let _ = note::open(&data, &keys);
        let _ = note::parse_unverified(&data);
        if let Ok(s) = std::str::from_utf8(&data) {
            let _ = NoteVerifierKey::parse(s);
            let _ = WitnessKey::parse(s);
            let _ = NoteSigner::parse(s);
        }
    }
}

#[test]
fn checkpoint_inputs() {
    let (log, witness, _) = keys();
    let policy = WitnessPolicy::new(vec![witness.witness_key()], 1).expect("policy");
    let mut verified = 0;
    for path in inputs("checkpoint") {
        let data = std::fs::read(&path).expect("read");
        if let Ok(cp) = Checkpoint::parse(&data) {
            assert_eq!(
                cp.to_text().expect("re-encodes"),
                data,
                "{}",
                path.display()
            );
        }
        if verify_witnessed(&data, &LogKey::new(log.verifier_key()), &policy).is_ok() {
            verified += 1;
        }
    }
    assert!(
        verified >= 1,
        "the seed checkpoint made with the fixed keys verifies"
    );
}

#[test]
fn statement_inputs() {
    let (_, _, op) = keys();
    let mut verified = 0;
    for path in inputs("statement") {
        let data = std::fs::read(&path).expect("read");
        if let Ok(st) = statement::parse_text(&data) {
            assert_eq!(st.to_text().as_bytes(), data, "{}", path.display());
        }
        let _ = statement::parse_unverified(&data);
        if statement::verify_statement(&data, &[op.verifier_key()]).is_ok() {
            verified += 1;
        }
    }
    assert!(verified >= 3, "the three seed statements verify");
}

#[test]
fn proof_inputs() {
    let (log, witness, _) = keys();
    let policy = WitnessPolicy::new(vec![witness.witness_key()], 1).expect("policy");
    let mut parsed = 0;
    for path in inputs("proof") {
        let data = std::fs::read(&path).expect("read");
        if let Ok(p) = TlogProof::parse(&data) {
            assert_eq!(TlogProof::parse(&p.to_bytes()).as_ref(), Ok(&p));
            let _ = p.verify(
                &LeafHash::of_entry(b"entry"),
                &LogKey::new(log.verifier_key()),
                &policy,
            );
            parsed += 1;
        }
    }
    assert!(parsed >= 1);
}
