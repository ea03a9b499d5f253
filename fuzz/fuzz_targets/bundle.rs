//! Fuzzes the attestation bundle decoder: any input is rejected or decoded without a panic,
//! and whatever decodes re-encodes to something that decodes to the same bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::bundle::Bundle;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::decode(data) {
        if let Ok(again) = bundle.encode() {
            let back = Bundle::decode(&again).expect("re-encoded bundle decodes");
            assert_eq!(back, bundle);
        }
    }
});
