//! Signed-note parser: any bytes, opened against one fixed Ed25519 key and one witness key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::cosignature::WitnessSigner;
use lucent_verifier::note::{self, NoteKey, NoteSigner};

fuzz_target!(|data: &[u8]| {
    let log = NoteSigner::from_seed("log.example", &[1; 32]).expect("valid name");
    let witness = WitnessSigner::from_seed("witness.example", &[2; 32]).expect("valid name");
    let (log_key, witness_key) = (log.verifier_key(), witness.witness_key());
    let keys: [&dyn NoteKey; 2] = [&log_key, &witness_key];
    let _ = note::open(data, &keys);
    if let Ok((text, sigs)) = note::parse_unverified(data) {
        assert!(text.ends_with(b"\n"));
        assert!(!sigs.is_empty());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = lucent_verifier::note::NoteVerifierKey::parse(s);
        let _ = lucent_verifier::cosignature::WitnessKey::parse(s);
        let _ = NoteSigner::parse(s);
    }
});
