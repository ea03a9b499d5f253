//! Fuzzes the RFC 9458 parsers: key configs (whatever parses re-encodes to the same bytes)
//! and encapsulated requests under both label sets (any input is rejected or opened without
//! a panic; whatever opens can be answered). The key is RFC 9458 Appendix A's, so a seed
//! of its encapsulated request reaches the AEAD.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::encapsulation::{
    open_request_with, KeyConfig, KeyPair, MediaLabels, SymmetricAlgorithms,
};

const RFC_SK: [u8; 32] = [
    0x3c, 0x16, 0x89, 0x75, 0x67, 0x4b, 0x2f, 0xa8, 0xe4, 0x65, 0x97, 0x0b, 0x79, 0xc8, 0xdc, 0xf0,
    0x9f, 0x1c, 0x74, 0x16, 0x26, 0x48, 0x0b, 0xd4, 0xc6, 0x16, 0x2f, 0xc5, 0xb6, 0xa9, 0x8e, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = KeyConfig::parse(data) {
        assert_eq!(config.encode(), data);
    }
    let keypair = KeyPair::from_private_key(
        1,
        &RFC_SK,
        vec![
            SymmetricAlgorithms::HKDF_SHA256_AES_128_GCM,
            SymmetricAlgorithms::HKDF_SHA256_CHACHA20_POLY1305,
        ],
    )
    .expect("RFC 9458 key");
    for labels in [MediaLabels::LUCENT_CVM, MediaLabels::OHTTP_BHTTP] {
        if let Ok((plaintext, sealer)) = open_request_with(&keypair, &labels, data) {
            let nonce = vec![0u8; sealer.aead().response_nonce_len()];
            sealer
                .seal_response_with_nonce(&plaintext, &nonce)
                .expect("a request that opened can be answered");
        }
    }
});
