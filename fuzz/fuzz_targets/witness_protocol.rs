//! C2SP `tlog-witness` bodies a witness reads from the network: `add-checkpoint` requests
//! (which must re-encode to the same bytes) and the size answers of a 409.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::witness_protocol::{build_add_checkpoint, parse_add_checkpoint, parse_size_body};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_add_checkpoint(data) {
        let again = build_add_checkpoint(req.old, &req.proof, &req.checkpoint);
        assert_eq!(again.as_deref().ok(), Some(data));
    }
    if let Ok(size) = parse_size_body(data) {
        assert_eq!(format!("{}\n", size.0).as_bytes(), data);
    }
});
