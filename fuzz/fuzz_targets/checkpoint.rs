//! Checkpoint parser: any bytes as a checkpoint body and as a signed, witnessed checkpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::checkpoint::{verify_witnessed, Checkpoint, LogKey};
use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
use lucent_verifier::note::NoteSigner;

fuzz_target!(|data: &[u8]| {
    if let Ok(cp) = Checkpoint::parse(data) {
        // A body that parses re-encodes to the same bytes.
        assert_eq!(cp.to_text().expect("re-encodes"), data);
    }
    let log = NoteSigner::from_seed("log.example", &[1; 32]).expect("valid name");
    let witness = WitnessSigner::from_seed("witness.example", &[2; 32]).expect("valid name");
    let policy = WitnessPolicy::new(vec![witness.witness_key()], 1).expect("1 of 1");
    let _ = verify_witnessed(data, &LogKey::new(log.verifier_key()), &policy);
});
