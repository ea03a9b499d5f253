//! Signed-note and checkpoint vectors from golang.org/x/mod, transparency-dev/formats and
//! C2SP (sources in `vectors/README.md`).

use std::path::{Path, PathBuf};

use lucent_verifier::checkpoint::{verify_checkpoint, Checkpoint, CheckpointError, LogKey};
use lucent_verifier::note::{self, NoteKey, NoteVerifierKey};
use serde_json::Value;

const SUMDB_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/note")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn keys_json() -> Value {
    serde_json::from_slice(&read("keys.json")).expect("keys.json")
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_keys_json_case() {
    let k = keys_json();
    let cases = k["cases"].as_array().expect("cases");
    let mut checked = 0;
    for case in cases {
        let file = case["file"].as_str().expect("file");
        let bytes = read(file);
        let keys: Vec<NoteVerifierKey> = names(&case["verifier_keys"])
            .iter()
            .map(|v| NoteVerifierKey::parse(v).expect("case key parses"))
            .collect();
        let keys: Vec<&dyn NoteKey> = keys.iter().map(|k| k as &dyn NoteKey).collect();
        let result = note::open(&bytes, &keys).and_then(|opened| {
            // With an expected origin, the text must also be a checkpoint of that origin.
            if let Some(origin) = case["expected_origin"].as_str() {
                let cp = Checkpoint::parse(&opened.text).map_err(|_| note::NoteError::Malformed)?;
                if cp.origin != origin {
                    return Err(note::NoteError::Malformed);
                }
                let want = &case["checkpoint"];
                assert_eq!(cp.size.0, want["size"].as_u64().expect("size"), "{file}");
            }
            Ok(opened)
        });
        match case["expect"].as_str().expect("expect") {
            "valid" => {
                let opened = result.unwrap_or_else(|e| panic!("{file} rejected: {e}"));
                let verified: Vec<String> =
                    opened.verified.iter().map(|s| s.name.clone()).collect();
                let unverified: Vec<String> =
                    opened.unverified.iter().map(|s| s.name.clone()).collect();
                assert_eq!(verified, names(&case["verified"]), "{file} verified");
                assert_eq!(unverified, names(&case["unverified"]), "{file} unverified");
            }
            "invalid" => assert!(result.is_err(), "{file} accepted ({})", case["reason"]),
            other => panic!("unknown expectation {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 29, "keys.json holds 29 cases");
}

#[test]
fn bad_verifier_keys_are_rejected() {
    let k = keys_json();
    for bad in k["bad_verifier_keys"].as_array().expect("bad keys") {
        let vkey = bad["vkey"].as_str().expect("vkey");
        assert!(NoteVerifierKey::parse(vkey).is_err(), "accepted {vkey}");
    }
    // Upstream rule: every proper substring, and every one-byte increment, is rejected.
    let base = k["bad_verifier_key_rule"]["base"].as_str().expect("base");
    NoteVerifierKey::parse(base).expect("the base key itself is valid");
    let mut tried = 0;
    for start in 0..base.len() {
        for end in start..=base.len() {
            if (start, end) != (0, base.len()) {
                assert!(NoteVerifierKey::parse(&base[start..end]).is_err());
                tried += 1;
            }
        }
    }
    let bytes = base.as_bytes();
    for i in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[i] = changed[i].wrapping_add(1);
        if let Ok(s) = std::str::from_utf8(&changed) {
            assert!(NoteVerifierKey::parse(s).is_err(), "accepted {s}");
            tried += 1;
        }
    }
    assert!(tried > 2000, "tried {tried}");
}

#[test]
fn sumdb_checkpoint_verifies_with_pinned_key() {
    let note = read("sumdb-checkpoint-6476701.note");
    let log = LogKey::with_origin(
        NoteVerifierKey::parse(SUMDB_KEY).expect("pinned key"),
        "go.sum database tree",
    );
    let signed = verify_checkpoint(&note, &log).expect("real checkpoint verifies");
    assert_eq!(signed.checkpoint.size.0, 6_476_701);
    assert_eq!(
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            signed.checkpoint.root.0
        ),
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    );

    // Every one-byte change of the signed text fails.
    let text_len = signed.text.len();
    for i in 0..text_len {
        let mut m = note.clone();
        m[i] ^= 0x01;
        assert!(
            verify_checkpoint(&m, &log).is_err(),
            "byte {i} flipped was accepted"
        );
    }
    // The wrong origin fails even though the signature is good.
    let other = LogKey::new(NoteVerifierKey::parse(SUMDB_KEY).expect("key"));
    assert!(matches!(
        verify_checkpoint(&note, &other),
        Err(CheckpointError::WrongOrigin { .. })
    ));
}

#[test]
fn every_malformed_note_fails() {
    let key = NoteVerifierKey::parse(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    )
    .expect("key");
    let mut n = 0;
    for entry in std::fs::read_dir(dir().join("malformed")).expect("malformed dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            note::open(&bytes, &[&key]).is_err(),
            "{} accepted",
            path.display()
        );
        n += 1;
    }
    assert_eq!(n, 11);
}

#[test]
fn c2sp_examples_parse_but_do_not_verify() {
    // The C2SP examples carry illustrative signatures: they parse, and no key set opens them.
    for (file, origin, size) in [
        (
            "c2sp-tlog-checkpoint-example.note",
            "example.com/behind-the-sofa",
            20_852_163,
        ),
        (
            "c2sp-tlog-cosignature-example.note",
            "example.com/behind-the-sofa",
            20_852_163,
        ),
    ] {
        let bytes = read(file);
        let (text, sigs) = note::parse_unverified(&bytes).expect("parses");
        let cp = Checkpoint::parse(&text).expect("checkpoint body");
        assert_eq!((cp.origin.as_str(), cp.size.0), (origin, size));
        assert!(note::open(&bytes, &[]).is_err());
        if file.contains("cosignature") {
            // keyid(4) is stripped; timestamp(8) ‖ signature(64) remain.
            assert_eq!(sigs[1].signature.len(), 72);
            let ts = u64::from_be_bytes(sigs[1].signature[..8].try_into().expect("8 bytes"));
            assert_eq!(ts, 1_679_315_147);
        }
    }
    let quasimodo = read("c2sp-signed-note-quasimodo.note");
    let (text, sigs) = note::parse_unverified(&quasimodo).expect("parses");
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 4);
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].id, 0x367b_a04b);
}
