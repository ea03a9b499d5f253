//! The gateway's outer layer against an independent RFC 9458 implementation, the `ohttp`
//! crate (pure-Rust HPKE backend): the same key from the same keying material, and
//! requests and answers of the oblivious path carried in both directions.

use lucent_verifier::cvm_api::Task;
use lucent_verifier::encapsulation::{
    open_request_with, open_response, seal_request_with, AeadAlgorithm, EncapsulationError,
    KeyConfig, KeyPair, MediaLabels, MIN_REQUEST_BYTES,
};
use lucent_verifier::oblivious::{ForwardRequest, GatewayAnswer};
use ohttp::hpke::{Aead, Kdf, Kem};
use ohttp::SymmetricSuite;
use rand_core::OsRng;

const IKM: [u8; 32] = [0x5a; 32];

fn theirs(key_id: u8) -> ohttp::KeyConfig {
    ohttp::KeyConfig::derive(
        key_id,
        Kem::X25519Sha256,
        vec![
            SymmetricSuite::new(Kdf::HkdfSha256, Aead::Aes128Gcm),
            SymmetricSuite::new(Kdf::HkdfSha256, Aead::ChaCha20Poly1305),
        ],
        &IKM,
    )
    .expect("ohttp derives the key")
}

fn forward(task: Task) -> ForwardRequest {
    // Stands for an inner request sealed to a CVM: opaque bytes to both layers here.
    let mut sealed = vec![0xc3; MIN_REQUEST_BYTES + 200];
    sealed[0] = 9;
    ForwardRequest {
        task,
        sealed,
        token: None,
    }
}

#[test]
fn the_same_keying_material_gives_the_same_key_config() {
    let ours = KeyPair::derive(17, &IKM);
    let mut config = theirs(17);
    assert_eq!(config.encode().unwrap(), ours.key_config_bytes());
    // And `ohttp` accepts the config exactly as the gateway publishes it.
    ohttp::ClientRequest::from_encoded_config(&ours.key_config_bytes()).unwrap();
    ohttp::ClientRequest::from_config(&mut config).unwrap();
}

#[test]
fn ohttp_clients_reach_our_gateway_layer() {
    let ours = KeyPair::derive(3, &IKM);
    for task in Task::ALL {
        let sent = forward(task);
        let client = ohttp::ClientRequest::from_encoded_config(&ours.key_config_bytes()).unwrap();
        let (enc_request, client_response) = client.encapsulate(&sent.encode()).unwrap();

        let (plaintext, sealer) =
            open_request_with(&ours, &MediaLabels::OHTTP_BHTTP, &enc_request).unwrap();
        assert_eq!(ForwardRequest::decode(&plaintext).unwrap(), sent);

        let answer = GatewayAnswer::Sealed(vec![0x11; 300]);
        let enc_response = sealer.seal_response(&answer.encode(), &mut OsRng).unwrap();
        let opened = client_response.decapsulate(&enc_response).unwrap();
        assert_eq!(GatewayAnswer::decode(&opened).unwrap(), answer);
    }
    // The inner layer's labels are not the outer layer's: an `ohttp` request never opens as
    // an inner CVM request.
    let client = ohttp::ClientRequest::from_encoded_config(&ours.key_config_bytes()).unwrap();
    let (enc_request, _) = client.encapsulate(b"x").unwrap();
    assert!(matches!(
        open_request_with(&ours, &MediaLabels::LUCENT_CVM, &enc_request),
        Err(EncapsulationError::Aead { .. })
    ));
}

#[test]
fn our_client_layer_reaches_an_ohttp_gateway() {
    let server = ohttp::Server::new(theirs(4)).unwrap();
    let config = KeyConfig::parse(&KeyPair::derive(4, &IKM).key_config_bytes()).unwrap();
    for aead in [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::ChaCha20Poly1305] {
        let sent = forward(Task::Suggest);
        let (enc_request, context) = seal_request_with(
            &config,
            aead,
            &MediaLabels::OHTTP_BHTTP,
            &sent.encode(),
            &mut OsRng,
        )
        .unwrap();
        let (plaintext, server_response) = server.decapsulate(&enc_request).unwrap();
        assert_eq!(ForwardRequest::decode(&plaintext).unwrap(), sent);

        let answer = GatewayAnswer::error(502, "cvm_unreachable", "no answer from the CVM");
        let enc_response = server_response.encapsulate(&answer.encode()).unwrap();
        let opened = open_response(&context, &enc_response).unwrap();
        assert_eq!(GatewayAnswer::decode(&opened).unwrap(), answer);
    }
}
