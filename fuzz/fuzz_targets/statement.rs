//! Statement parser: any bytes as statement text and as a signed statement note.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{parse_text, parse_unverified, verify_statement};

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = parse_text(data) {
        // One statement, one encoding.
        assert_eq!(st.to_text().as_bytes(), data);
    }
    let _ = parse_unverified(data);
    let op = NoteSigner::from_seed("operator.example", &[3; 32]).expect("valid name");
    let _ = verify_statement(data, &[op.verifier_key()]);
});
