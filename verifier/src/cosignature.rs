//! C2SP `tlog-cosignature` (<https://c2sp.org/tlog-cosignature>): witness keys, timestamped
//! Ed25519 `cosignature/v1` signatures (signature type 0x04), and a k-of-n witness policy.
//!
//! A cosignature line is `— <name> base64(keyid ‖ timestamp ‖ signature)`; the signed message
//! is `cosignature/v1\ntime <timestamp>\n` followed by the whole checkpoint text.

use thiserror::Error;

use crate::note::{Ed25519Signer, Ed25519VerifierKey, NoteSignature, ALG_COSIGNATURE_V1};

/// Length of a `cosignature/v1` signature after the key ID: timestamp (8) and Ed25519 (64).
pub const COSIGNATURE_LEN: usize = 8 + 64;

fn signed_message(timestamp: u64, checkpoint_text: &[u8]) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(checkpoint_text);
    msg
}

/// A witness's public key: `name+hexid+base64(0x04 ‖ Ed25519 public key)`.
pub type WitnessKey = Ed25519VerifierKey<ALG_COSIGNATURE_V1>;

impl WitnessKey {
    /// Checks one cosignature (timestamp ‖ signature) over a checkpoint's text.
    pub fn verify_cosignature(&self, checkpoint_text: &[u8], sig: &[u8]) -> Option<u64> {
        use ed25519_dalek::Verifier as _;
        if sig.len() != COSIGNATURE_LEN {
            return None;
        }
        let (ts, sig) = sig.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().ok()?);
        let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
        self.public_key()
            .verify(&signed_message(timestamp, checkpoint_text), &sig)
            .ok()
            .map(|()| timestamp)
    }
}

impl signed_note::Verifier for WitnessKey {
    fn name(&self) -> &str {
        Ed25519VerifierKey::name(self)
    }
    fn key_id(&self) -> u32 {
        Ed25519VerifierKey::key_id(self)
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_cosignature(msg, sig).is_some()
    }
}

/// A witness's private key, used by `auditor-cli witness serve` and by tests.
pub type WitnessSigner = Ed25519Signer<ALG_COSIGNATURE_V1>;

impl WitnessSigner {
    /// The public witness key.
    pub fn witness_key(&self) -> WitnessKey {
        self.verifier_key()
    }

    /// Cosigns a checkpoint text at `timestamp` (seconds since the Unix epoch). The caller
    /// must have checked the checkpoint's consistency first: that is what the cosignature says.
    pub fn cosign(&self, checkpoint_text: &[u8], timestamp: u64) -> NoteSignature {
        use ed25519_dalek::Signer as _;
        let sig = self
            .signing_key()
            .sign(&signed_message(timestamp, checkpoint_text));
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        NoteSignature {
            name: self.name().to_owned(),
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
