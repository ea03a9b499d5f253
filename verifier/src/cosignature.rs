//! C2SP `tlog-cosignature` (<https://c2sp.org/tlog-cosignature>): witness keys, timestamped
//! Ed25519 `cosignature/v1` signatures (signature type 0x04), and a k-of-n witness policy.
//!
//! A cosignature line is `— <name> base64(keyid ‖ timestamp ‖ signature)`; the signed message
//! is `cosignature/v1\ntime <timestamp>\n` followed by the whole checkpoint text.

use std::fmt;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use thiserror::Error;

use crate::note::{KeyError, NoteKey, NoteSignature, ALG_COSIGNATURE_V1};

/// Length of a `cosignature/v1` signature after the key ID: timestamp (8) and Ed25519 (64).
pub const COSIGNATURE_LEN: usize = 8 + 64;

fn signed_message(timestamp: u64, checkpoint_text: &[u8]) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(checkpoint_text);
    msg
}

/// A witness's public key: `name+hexid+base64(0x04 ‖ Ed25519 public key)`.
#[derive(Clone)]
pub struct WitnessKey {
    text: String,
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl WitnessKey {
    /// Parses and checks a witness verifier key string.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let (name, rest) = vkey.split_once('+').ok_or(KeyError::Format)?;
        let (id_hex, b64) = rest.split_once('+').ok_or(KeyError::Format)?;
        if !signed_note::is_key_name_valid(name)
            || id_hex.len() != 8
            || !id_hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(KeyError::Format);
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| KeyError::Format)?;
        let raw = BASE64.decode(b64).map_err(|_| KeyError::Format)?;
        let want = signed_note::key_id(name, &raw);
        if id != want {
            return Err(KeyError::KeyId { got: id, want });
        }
        let (&alg, key) = raw.split_first().ok_or(KeyError::Format)?;
        if alg != ALG_COSIGNATURE_V1 {
            return Err(KeyError::Algorithm {
                got: alg,
                want: ALG_COSIGNATURE_V1,
            });
        }
        let key: [u8; 32] = key.try_into().map_err(|_| KeyError::PublicKey)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| KeyError::PublicKey)?;
        Ok(WitnessKey {
            text: vkey.to_owned(),
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The key string as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Checks one cosignature (timestamp ‖ signature) over a checkpoint's text.
    pub fn verify_cosignature(&self, checkpoint_text: &[u8], sig: &[u8]) -> Option<u64> {
        use ed25519_dalek::Verifier as _;
        if sig.len() != COSIGNATURE_LEN {
            return None;
        }
        let (ts, sig) = sig.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().ok()?);
        let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
        self.key
            .verify(&signed_message(timestamp, checkpoint_text), &sig)
            .ok()
            .map(|()| timestamp)
    }
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for WitnessKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for WitnessKey {}

/// Adapter that lets `signed_note` check cosignature lines with a [`WitnessKey`].
struct CosignatureVerifier(WitnessKey);

impl NoteKey for WitnessKey {
    fn note_verifier(&self) -> Box<dyn signed_note::Verifier> {
        Box::new(CosignatureVerifier(self.clone()))
    }
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn key_id(&self) -> u32 {
        self.0.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify_cosignature(msg, sig).is_some()
    }
}

/// A witness's private key, used by `auditor-cli witness serve` and by tests.
#[derive(Clone)]
pub struct WitnessSigner {
    name: String,
    signing_key: SigningKey,
}

impl fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessSigner({}, <private>)", self.name)
    }
}

impl WitnessSigner {
    /// Makes a fresh witness key.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R, name: &str) -> Result<Self, KeyError> {
        Self::from_seed(name, &SigningKey::generate(rng).to_bytes())
    }

    /// Builds a witness key from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(KeyError::Format);
        }
        Ok(WitnessSigner {
            name: name.to_owned(),
            signing_key: SigningKey::from_bytes(seed),
        })
    }

    /// The 32-byte seed (keep it secret).
    pub fn seed(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn public_key_bytes(&self) -> Vec<u8> {
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(self.signing_key.verifying_key().as_bytes());
        key
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        signed_note::key_id(&self.name, &self.public_key_bytes())
    }

    /// The public witness key.
    pub fn witness_key(&self) -> WitnessKey {
        WitnessKey {
            text: format!(
                "{}+{:08x}+{}",
                self.name,
                self.key_id(),
                BASE64.encode(self.public_key_bytes())
            ),
            name: self.name.clone(),
            id: self.key_id(),
            key: self.signing_key.verifying_key(),
        }
    }

    /// Cosigns a checkpoint text at `timestamp` (seconds since the Unix epoch). The caller
    /// must have checked the checkpoint's consistency first: that is what the cosignature says.
    pub fn cosign(&self, checkpoint_text: &[u8], timestamp: u64) -> NoteSignature {
        use ed25519_dalek::Signer as _;
        let sig = self
            .signing_key
            .sign(&signed_message(timestamp, checkpoint_text));
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        NoteSignature {
            name: self.name.clone(),
            id: self.key_id(),
            signature: bytes,
        }
    }
}

/// Why a witness policy was not met or could not be built.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum WitnessPolicyError {
    /// Fewer valid cosignatures than the quorum.
    #[error("{got} of the required {quorum} witness cosignatures (from {known} known witnesses)")]
    QuorumNotMet {
        /// Valid cosignatures from distinct known witnesses.
        got: usize,
        /// Required number.
        quorum: usize,
        /// Number of witnesses in the policy.
        known: usize,
    },
    /// The quorum is larger than the witness list.
    #[error("quorum {quorum} exceeds the {known} configured witnesses")]
    Unsatisfiable {
        /// Required number.
        quorum: usize,
        /// Witnesses configured.
        known: usize,
    },
    /// The same witness configured twice.
    #[error("witness {0} is configured twice")]
    Duplicate(String),
}

/// A cosignature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// Witness name.
    pub witness: String,
    /// Time the witness says it cosigned (seconds since the Unix epoch).
    pub timestamp: u64,
}

/// k-of-n witness policy: a checkpoint is accepted only with valid cosignatures from at
/// least `quorum` distinct witnesses of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<WitnessKey>,
    quorum: usize,
}

impl WitnessPolicy {
    /// Builds a policy; `quorum` may be 0 only to trust the log's signature alone.
    pub fn new(witnesses: Vec<WitnessKey>, quorum: usize) -> Result<Self, WitnessPolicyError> {
        if quorum > witnesses.len() {
            return Err(WitnessPolicyError::Unsatisfiable {
                quorum,
                known: witnesses.len(),
            });
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i]
                .iter()
                .any(|o| o.name == w.name || o.key == w.key)
            {
                return Err(WitnessPolicyError::Duplicate(w.name.clone()));
            }
        }
        Ok(WitnessPolicy { witnesses, quorum })
    }

    /// No witnesses required (the log's signature alone). Named so nobody picks it by accident.
    pub fn dangerous_no_witnesses() -> Self {
        WitnessPolicy {
            witnesses: Vec::new(),
            quorum: 0,
        }
    }

    /// The configured witnesses.
    pub fn witnesses(&self) -> &[WitnessKey] {
        &self.witnesses
    }

    /// The required number of cosignatures.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Checks the signature lines of a checkpoint note against the policy and returns the
    /// cosignatures that verified. Lines from unknown keys are ignored; a line that names a
    /// known witness but does not verify is ignored as well (it may be an old key's), and
    /// simply does not count towards the quorum.
    pub fn check(
        &self,
        checkpoint_text: &[u8],
        signatures: &[NoteSignature],
    ) -> Result<Vec<Cosignature>, WitnessPolicyError> {
        let mut found: Vec<Cosignature> = Vec::new();
        for w in &self.witnesses {
            let valid = signatures
                .iter()
                .filter(|s| s.name == w.name && s.id == w.id)
                .find_map(|s| w.verify_cosignature(checkpoint_text, &s.signature));
            if let Some(timestamp) = valid {
                found.push(Cosignature {
                    witness: w.name.clone(),
                    timestamp,
                });
            }
        }
        if found.len() < self.quorum {
            return Err(WitnessPolicyError::QuorumNotMet {
                got: found.len(),
                quorum: self.quorum,
                known: self.witnesses.len(),
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cosign_and_check_quorum() {
        let text = b"example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let w: Vec<WitnessSigner> = (0..3)
            .map(|i| WitnessSigner::generate(&mut rand_core::OsRng, &format!("w{i}")).unwrap())
            .collect();
        let policy = WitnessPolicy::new(w.iter().map(|w| w.witness_key()).collect(), 2).unwrap();
        let one = vec![w[0].cosign(text, 100)];
        assert!(matches!(
            policy.check(text, &one),
            Err(WitnessPolicyError::QuorumNotMet { got: 1, .. })
        ));
        let two = vec![w[0].cosign(text, 100), w[2].cosign(text, 101)];
        assert_eq!(policy.check(text, &two).unwrap().len(), 2);
        // The same witness twice counts once.
        let dup = vec![w[0].cosign(text, 100), w[0].cosign(text, 102)];
        assert!(policy.check(text, &dup).is_err());
        // A cosignature over other text does not count.
        let other = vec![w[0].cosign(b"x\n", 1), w[1].cosign(text, 1)];
        assert!(policy.check(text, &other).is_err());
        // Round trip of the key string.
        let parsed = WitnessKey::parse(w[1].witness_key().as_str()).unwrap();
        assert_eq!(parsed, w[1].witness_key());
    }
}
