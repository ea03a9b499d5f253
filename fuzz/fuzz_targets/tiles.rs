//! C2SP `tlog-tiles` parsers: any bytes as a tile path (after `tile/`) and as an entry
//! bundle of every width a tile can have.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::tiles::{decode_bundle, encode_bundle, TilePath, TILE_WIDTH};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = TilePath::parse(s) {
            // Only a tile's one canonical path parses.
            assert_eq!(t.path(), format!("tile/{s}"));
            assert!((1..=TILE_WIDTH).contains(&t.width()));
        }
    }
    for count in 0..=TILE_WIDTH as usize {
        if let Ok(entries) = decode_bundle(data, count) {
            assert_eq!(entries.len(), count);
            // A bundle that reads re-encodes to the same bytes.
            assert_eq!(encode_bundle(&entries).as_deref(), Ok(data));
        }
    }
});
