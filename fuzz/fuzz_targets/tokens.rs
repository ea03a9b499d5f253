//! The anonymous-token and oblivious-path parsers: token challenges, requests, responses,
//! tokens, their `Authorization` form, batches (as the issuer and the client read them), and
//! the gateway's Binary HTTP request and answer. None may panic; whatever parses must encode
//! back to what was read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::oblivious::{ForwardRequest, GatewayAnswer};
use lucent_verifier::privacy_pass::{
    decode_batch, Token, TokenChallenge, TokenRequest, TokenResponse, TOKEN_REQUEST_LEN,
    TOKEN_RESPONSE_LEN,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = TokenChallenge::decode(data) {
        assert_eq!(c.encode().expect("a parsed challenge encodes"), data);
    }
    if let Ok(r) = TokenRequest::decode(data) {
        assert_eq!(&r.encode()[..], data);
    }
    if let Ok(r) = TokenResponse::decode(data) {
        assert_eq!(&r.encode()[..], data);
    }
    if let Ok(t) = Token::decode(data) {
        assert_eq!(&t.encode()[..], data);
        assert_eq!(Token::from_authorization(&t.authorization()), Ok(t));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Token::from_authorization(text);
    }
    if let Ok(items) = decode_batch::<TOKEN_REQUEST_LEN>("requests", data) {
        for item in items {
            let _ = TokenRequest::decode(item);
        }
    }
    if let Ok(items) = decode_batch::<TOKEN_RESPONSE_LEN>("responses", data) {
        assert_eq!((data.len() - 2) % TOKEN_RESPONSE_LEN, 0);
        assert!(items.count() >= 1);
    }
    if let Ok(f) = ForwardRequest::decode(data) {
        assert_eq!(ForwardRequest::decode(&f.encode()), Ok(f));
    }
    if let Ok(a) = GatewayAnswer::decode(data) {
        assert_eq!(GatewayAnswer::decode(&a.encode()), Ok(a));
    }
});
