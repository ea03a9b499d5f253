//! Fuzzes the TDX quote parser (dcap-qvl's, behind ours) and the collateral JSON parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::tdx::{parse_collateral_json, parse_quote};

fuzz_target!(|data: &[u8]| {
    let _ = parse_quote(data);
    let _ = parse_collateral_json(data);
});
