//! The key-release protocol between a CVM and the key broker (DESIGN.md flow 4): the wire
//! messages, the sealing of the model-weights key to the CVM's attested key config, and the
//! weights at rest ([`weights`]).
//!
//! One definition of each message, which the broker writes and the CVM reads (and the
//! reverse); the HTTP handlers and the client live in their services.
//!
//! ```text
//! POST /v1/nonce                       -> NonceResponse {"nonce": b64, "expires_at": u64,
//!                                                        "last_seen_size": u64 | null}
//! POST /v1/key   KeyRequestBody        -> KeyResponse   {"sealed_key": b64, "key_id": u8,
//!   {"nonce": b64,                                       "release": {"version", "measurement",
//!    "bundle": {lucent/bundle/v1},                                   "index"},
//!    "consistency": {"old", "new",                       "checkpoint_size": u64}
//!                    "hashes": [b64]} | null}
//! errors                               -> log_api::ErrorBody {"error": code, "message": text}
//! ```
//!
//! The CVM binds the nonce in its evidence's `report_data` ([`crate::binding`]); the broker
//! verifies the bundle with that nonce and seals the weights key to the bundle's key config
//! with RFC 9458 request framing under labels of its own ([`KEY_RELEASE_LABELS`]), so a sealed
//! key can never be taken for a client request or response, nor the reverse. Only the CVM
//! holding the private key opens it ([`open_sealed_key`]).
//!
//! ```
//! use lucent_verifier::encapsulation::KeyPair;
//! use lucent_verifier::key_release::{open_sealed_key, seal_weights_key, weights::WeightsKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
//! let key = WeightsKey::generate(&mut rand_core::OsRng);
//! // The broker seals to the attested key config; the CVM opens with its private key.
//! let sealed = seal_weights_key(&cvm.key_config(), &key, &mut rand_core::OsRng)?;
//! assert_eq!(open_sealed_key(&cvm, &sealed)?.as_bytes(), key.as_bytes());
//! # Ok(())
//! # }
//! ```

pub mod weights;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, BundleError, MAX_BUNDLE_BYTES};
use crate::encapsulation::{
    open_request_with, seal_request_with, EncapsulationError, KeyConfig, KeyPair, MediaLabels,
};
use crate::merkle::{ConsistencyProof, ProofError};
use weights::{WeightsKey, KEY_LEN};

/// Path of the nonce request.
pub const NONCE_PATH: &str = "/v1/nonce";
/// Path of the key request.
pub const KEY_PATH: &str = "/v1/key";
/// Largest `POST /v1/key` body: a bundle and a consistency proof.
pub const MAX_KEY_REQUEST_BYTES: usize = MAX_BUNDLE_BYTES + 64 * 1024;
/// Largest broker answer a CVM reads (a [`NonceResponse`], [`KeyResponse`] or [`crate::log_api::ErrorBody`]).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Labels of the key-release encapsulation: RFC 9458 request framing (HPKE base mode,
/// X25519-HKDF-SHA256) with labels of its own, so a sealed key can never be taken for a
/// client request or response, nor the reverse.
pub const KEY_RELEASE_LABELS: MediaLabels = MediaLabels {
    request: b"lucent/key-release",
    response: b"lucent/key-release response",
};

/// Why a key-release message could not be built, read, sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyReleaseError {
    /// The nonce is not base64.
    #[error("nonce is not base64")]
    NonceEncoding,
    /// The bundle is not a `lucent/bundle/v1` object.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// The bundle's encoding is not a JSON value (building a request).
    #[error("bundle is not JSON: {reason}")]
    BundleJson {
        /// The JSON error.
        reason: String,
    },
    /// A consistency hash is not base64.
    #[error("consistency hash is not base64")]
    ConsistencyEncoding,
    /// The consistency proof is malformed.
    #[error("consistency proof: {0}")]
    Consistency(ProofError),
    /// The key config cannot be sealed to (no AEAD this side implements).
    #[error("key config: {0}")]
    KeyConfig(EncapsulationError),
    /// Sealing the key failed.
    #[error("sealing the key: {0}")]
    Seal(EncapsulationError),
    /// The sealed key is not base64.
    #[error("sealed key is not base64")]
    SealedKeyEncoding,
    /// The sealed key did not open with this key pair.
    #[error("sealed key did not open: {0}")]
    Open(EncapsulationError),
    /// The sealed key opened to something that is not a weights key.
    #[error("sealed key is {got} bytes, not a {KEY_LEN}-byte weights key")]
    KeyLength {
        /// Length of the opened plaintext.
        got: usize,
    },
}

/// `POST /v1/nonce` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NonceResponse {
    /// Base64 nonce.
    pub nonce: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// The broker's last seen checkpoint size: the CVM sends a consistency proof from it to
    /// its bundle's checkpoint (none needed when absent or equal).
    pub last_seen_size: Option<u64>,
}

impl NonceResponse {
    /// The answer for a nonce (the broker side).
    pub fn new(nonce: &[u8], expires_at: u64, last_seen_size: Option<u64>) -> Self {
        NonceResponse {
            nonce: B64.encode(nonce),
            expires_at,
            last_seen_size,
        }
    }

    /// The nonce's bytes (the CVM side).
    pub fn nonce_bytes(&self) -> Result<Vec<u8>, KeyReleaseError> {
        B64.decode(&self.nonce)
            .map_err(|_| KeyReleaseError::NonceEncoding)
    }
}

/// A consistency proof on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WireConsistency {
    /// Old size.
    pub old: u64,
    /// New size.
    pub new: u64,
    /// Base64 hashes.
    pub hashes: Vec<String>,
}

impl WireConsistency {
    /// The wire form of a proof.
    pub fn new(proof: &ConsistencyProof) -> Self {
        WireConsistency {
            old: proof.old.0,
            new: proof.new.0,
            hashes: proof.hashes.iter().map(|h| B64.encode(h.0)).collect(),
        }
    }

    /// The proof (hash lengths and count checked; it is verified against checkpoints later).
    pub fn decode(&self) -> Result<ConsistencyProof, KeyReleaseError> {
        let hashes = self
            .hashes
            .iter()
            .map(|h| B64.decode(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| KeyReleaseError::ConsistencyEncoding)?;
        let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
        ConsistencyProof::from_raw(self.old, self.new, &refs).map_err(KeyReleaseError::Consistency)
    }
}

/// `POST /v1/key` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyRequestBody {
    /// Base64 nonce from `/v1/nonce`.
    pub nonce: String,
    /// The `lucent/bundle/v1` object.
    pub bundle: serde_json::Value,
    /// Consistency proof from the broker's last seen size, when it differs.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
}

/// A CVM's key request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// The broker nonce bound in the evidence.
    pub nonce: Vec<u8>,
    /// The CVM's attestation bundle.
    pub bundle: Bundle,
    /// Consistency proof from the broker's last seen size to the bundle's checkpoint.
    pub consistency: Option<ConsistencyProof>,
}

impl KeyRequestBody {
    /// Builds a body (the CVM side).
    pub fn new(
        nonce: &[u8],
        bundle: &Bundle,
        consistency: Option<&ConsistencyProof>,
    ) -> Result<Self, KeyReleaseError> {
        let bundle = bundle.encode()?;
        let bundle = serde_json::from_slice(&bundle).map_err(|e| KeyReleaseError::BundleJson {
            reason: e.to_string(),
        })?;
        Ok(KeyRequestBody {
            nonce: B64.encode(nonce),
            bundle,
            consistency: consistency.map(WireConsistency::new),
        })
    }

    /// Decodes the body (the broker side): nonce, bundle layout and proof shape; nothing is
    /// verified yet.
    pub fn decode(&self) -> Result<KeyRequest, KeyReleaseError> {
        let nonce = B64
            .decode(&self.nonce)
            .map_err(|_| KeyReleaseError::NonceEncoding)?;
        let bundle_bytes =
            serde_json::to_vec(&self.bundle).map_err(|e| KeyReleaseError::BundleJson {
                reason: e.to_string(),
            })?;
        let bundle = Bundle::decode(&bundle_bytes)?;
        let consistency = self
            .consistency
            .as_ref()
            .map(WireConsistency::decode)
            .transpose()?;
        Ok(KeyRequest {
            nonce,
            bundle,
            consistency,
        })
    }
}

/// `POST /v1/key` answer's release facts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// Release version.
    pub version: String,
    /// Measurement, hex.
    pub measurement: String,
    /// Log index.
    pub index: u64,
}

/// `POST /v1/key` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyResponse {
    /// Base64 of the sealed weights key ([`seal_weights_key`]).
    pub sealed_key: String,
    /// CVM key id it is sealed to.
    pub key_id: u8,
    /// The matching release.
    pub release: ReleaseInfo,
    /// Checkpoint size verified under.
    pub checkpoint_size: u64,
}

impl KeyResponse {
    /// The sealed key's bytes, for [`open_sealed_key`].
    pub fn sealed_key_bytes(&self) -> Result<Vec<u8>, KeyReleaseError> {
        B64.decode(&self.sealed_key)
            .map_err(|_| KeyReleaseError::SealedKeyEncoding)
    }
}

/// Seals the weights key to a CVM's attested key config, with the first AEAD the config
/// lists that is implemented here, under [`KEY_RELEASE_LABELS`] (the broker side).
pub fn seal_weights_key<R: CryptoRngCore + ?Sized>(
    config: &KeyConfig,
    key: &WeightsKey,
    rng: &mut R,
) -> Result<Vec<u8>, KeyReleaseError> {
    let aead = config.preferred().map_err(KeyReleaseError::KeyConfig)?;
    let (sealed, _) = seal_request_with(config, aead, &KEY_RELEASE_LABELS, key.as_bytes(), rng)
        .map_err(KeyReleaseError::Seal)?;
    Ok(sealed)
}

/// Opens a sealed weights key with the key pair whose config was attested (the CVM side).
pub fn open_sealed_key(keypair: &KeyPair, sealed: &[u8]) -> Result<WeightsKey, KeyReleaseError> {
    let (plain, _) =
        open_request_with(keypair, &KEY_RELEASE_LABELS, sealed).map_err(KeyReleaseError::Open)?;
    WeightsKey::from_bytes(&plain).map_err(|_| KeyReleaseError::KeyLength { got: plain.len() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bundle::BundleEvidence;
    use crate::encapsulation::{open_request, seal_request_with as seal_with};
    use crate::merkle::MemoryTree;
    use crate::snp::{SnpCertChain, SnpEvidence};

    fn bundle() -> Bundle {
        let mut tree = MemoryTree::new();
        for e in [&b"a"[..], b"b", b"c"] {
            tree.push_entry(e);
        }
        Bundle {
            evidence: BundleEvidence::Snp(SnpEvidence {
                report: vec![1; 32],
                certs: SnpCertChain {
                    vek_der: vec![2; 8],
                    intermediate_der: None,
                    ark_der: None,
                },
            }),
            key_config: vec![3; 41],
            release: b"lucent/release/v1\n".to_vec(),
            inclusion: tree.prove_inclusion(1, 3).unwrap(),
            checkpoint: b"log.example\n3\nAAAA\n".to_vec(),
        }
    }

    #[test]
    fn sealed_key_opens_only_with_the_attested_key_pair() {
        let cvm = KeyPair::generate(7, &mut rand_core::OsRng);
        let key = WeightsKey::generate(&mut rand_core::OsRng);
        let sealed = seal_weights_key(&cvm.key_config(), &key, &mut rand_core::OsRng).unwrap();
        assert_eq!(
            open_sealed_key(&cvm, &sealed).unwrap().as_bytes(),
            key.as_bytes()
        );
        let other = KeyPair::generate(7, &mut rand_core::OsRng);
        assert!(matches!(
            open_sealed_key(&other, &sealed),
            Err(KeyReleaseError::Open(_))
        ));
        // Every byte of the sealed key matters.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open_sealed_key(&cvm, &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn labels_keep_sealed_keys_and_client_requests_apart() {
        let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
        let key = WeightsKey::generate(&mut rand_core::OsRng);
        let sealed = seal_weights_key(&cvm.key_config(), &key, &mut rand_core::OsRng).unwrap();
        // A sealed key is not a client request.
        assert!(open_request(&cvm, &sealed).is_err());
        // A client request carrying 32 bytes is not a sealed key.
        let config = cvm.key_config();
        let (request, _) = seal_with(
            &config,
            config.preferred().unwrap(),
            &MediaLabels::LUCENT_CVM,
            key.as_bytes(),
            &mut rand_core::OsRng,
        )
        .unwrap();
        assert!(matches!(
            open_sealed_key(&cvm, &request),
            Err(KeyReleaseError::Open(_))
        ));
    }

    #[test]
    fn a_sealed_plaintext_of_the_wrong_length_is_not_a_key() {
        let cvm = KeyPair::generate(1, &mut rand_core::OsRng);
        let config = cvm.key_config();
        let (sealed, _) = seal_with(
            &config,
            config.preferred().unwrap(),
            &KEY_RELEASE_LABELS,
            &[9; 31],
            &mut rand_core::OsRng,
        )
        .unwrap();
        assert_eq!(
            open_sealed_key(&cvm, &sealed).unwrap_err(),
            KeyReleaseError::KeyLength { got: 31 }
        );
    }

    #[test]
    fn key_request_round_trips() {
        let b = bundle();
        let mut tree = MemoryTree::new();
        for i in 0..5u8 {
            tree.push_entry(&[i]);
        }
        let proof = tree.prove_consistency(2, 5).unwrap();
        let body = KeyRequestBody::new(b"nonce-0123456789", &b, Some(&proof)).unwrap();
        let json = serde_json::to_vec(&body).unwrap();
        let back: KeyRequestBody = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, body);
        let req = back.decode().unwrap();
        assert_eq!(req.nonce, b"nonce-0123456789");
        assert_eq!(req.bundle, b);
        assert_eq!(req.consistency, Some(proof));
        assert_eq!(
            KeyRequestBody::new(b"n", &b, None)
                .unwrap()
                .decode()
                .unwrap()
                .consistency,
            None
        );
    }

    #[test]
    fn malformed_key_requests_are_refused_with_their_reason() {
        let good = KeyRequestBody::new(b"nonce", &bundle(), None).unwrap();
        let bad_nonce = KeyRequestBody {
            nonce: "not base64!".into(),
            ..good.clone()
        };
        assert_eq!(
            bad_nonce.decode().unwrap_err(),
            KeyReleaseError::NonceEncoding
        );
        let bad_bundle = KeyRequestBody {
            bundle: serde_json::json!({"format": "nope"}),
            ..good.clone()
        };
        assert!(matches!(
            bad_bundle.decode(),
            Err(KeyReleaseError::Bundle(BundleError::Decode { .. }))
        ));
        let bad_hash = KeyRequestBody {
            consistency: Some(WireConsistency {
                old: 1,
                new: 2,
                hashes: vec!["%%".into()],
            }),
            ..good.clone()
        };
        assert_eq!(
            bad_hash.decode().unwrap_err(),
            KeyReleaseError::ConsistencyEncoding
        );
        let short_hash = KeyRequestBody {
            consistency: Some(WireConsistency {
                old: 1,
                new: 2,
                hashes: vec![B64.encode([0u8; 31])],
            }),
            ..good
        };
        assert!(matches!(
            short_hash.decode(),
            Err(KeyReleaseError::Consistency(_))
        ));
        // Unknown members are refused, not ignored.
        let text = r#"{"nonce":"AAAA","bundle":{},"extra":1}"#;
        assert!(serde_json::from_str::<KeyRequestBody>(text).is_err());
    }

    #[test]
    fn answers_have_the_documented_shape() {
        let n = NonceResponse::new(&[0xff; 3], 60, None);
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            serde_json::json!({"nonce": "////", "expires_at": 60, "last_seen_size": null})
        );
        assert_eq!(n.nonce_bytes().unwrap(), [0xff; 3]);
        let k: KeyResponse = serde_json::from_value(serde_json::json!({
            "sealed_key": "AAE=", "key_id": 4,
            "release": {"version": "1.0", "measurement": "ab", "index": 9},
            "checkpoint_size": 10
        }))
        .unwrap();
        assert_eq!(k.sealed_key_bytes().unwrap(), [0, 1]);
        let bad = KeyResponse {
            sealed_key: "!".into(),
            ..k
        };
        assert_eq!(
            bad.sealed_key_bytes().unwrap_err(),
            KeyReleaseError::SealedKeyEncoding
        );
        let r: crate::log_api::ErrorBody =
            serde_json::from_str(r#"{"error":"nonce_stale","message":"expired"}"#).unwrap();
        assert_eq!(r.error, "nonce_stale");
    }
}
