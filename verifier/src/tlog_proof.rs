//! C2SP `tlog-proof` (<https://c2sp.org/tlog-proof>): an offline-verifiable proof that an
//! entry is in a log, observed by witnesses.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <decimal>
//! <base64 proof hash>…
//!
//! <checkpoint note, with its cosignatures>
//! ```
//!
//! The log server answers `?wait` submissions with one; attestation bundles carry one for the
//! release statement.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use thiserror::Error;

use crate::checkpoint::{verify_witnessed, CheckpointError, LogKey, WitnessedCheckpoint};
use crate::cosignature::WitnessPolicy;
use crate::merkle::{Hash, InclusionProof, LeafHash, ProofError, MAX_PROOF_HASHES};
use crate::note::MAX_NOTE_BYTES;

/// First line of a proof.
pub const TLOG_PROOF_V1: &str = "c2sp.org/tlog-proof@v1";
/// Largest `extra` value accepted.
pub const MAX_EXTRA_BYTES: usize = 4096;
/// Largest encoded proof accepted.
pub const MAX_TLOG_PROOF_BYTES: usize = MAX_NOTE_BYTES + 16 * 1024;

/// Why a `tlog-proof` was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum TlogProofError {
    /// Larger than [`MAX_TLOG_PROOF_BYTES`].
    #[error("tlog-proof is {got} bytes, the limit is {limit}")]
    TooLarge {
        /// Size.
        got: usize,
        /// Limit.
        limit: usize,
    },
    /// Layout, encoding or a field is wrong.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The checkpoint failed (signature, origin, witnesses).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof failed under the checkpoint.
    #[error("entry {index} not proven in tree of size {size}: {source}")]
    Inclusion {
        /// Entry index.
        index: u64,
        /// Checkpoint size.
        size: u64,
        /// Why.
        source: ProofError,
    },
}

/// A parsed, not yet verified, `tlog-proof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Application data (unused by Lucent so far).
    pub extra: Option<Vec<u8>>,
    /// Index of the entry.
    pub index: u64,
    /// Inclusion proof hashes.
    pub hashes: Vec<Hash>,
    /// The checkpoint note with its cosignatures.
    pub checkpoint: Vec<u8>,
}

impl TlogProof {
    /// Parses the text form strictly.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogProofError> {
        use TlogProofError::Malformed;
        if bytes.len() > MAX_TLOG_PROOF_BYTES {
            return Err(TlogProofError::TooLarge {
                got: bytes.len(),
                limit: MAX_TLOG_PROOF_BYTES,
            });
        }
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or(Malformed("no blank line before the checkpoint"))?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| Malformed("not UTF-8"))?;
        let checkpoint = bytes[split + 2..].to_vec();
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_V1) {
            return Err(Malformed("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or(Malformed("missing index line"))?;
        let mut extra = None;
        if let Some(value) = line.strip_prefix("extra ") {
            let data = BASE64
                .decode(value)
                .map_err(|_| Malformed("extra is not base64"))?;
            if data.len() > MAX_EXTRA_BYTES {
                return Err(Malformed("extra is too large"));
            }
            extra = Some(data);
            line = lines.next().ok_or(Malformed("missing index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .ok_or(Malformed("missing index line"))?;
        let canonical = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'));
        if !canonical {
            return Err(Malformed("index is not a canonical decimal"));
        }
        let index: u64 = index.parse().map_err(|_| Malformed("index overflows"))?;
        let mut hashes = Vec::new();
        for line in lines {
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(Malformed("too many proof hashes"));
            }
            let raw = BASE64
                .decode(line)
                .map_err(|_| Malformed("proof hash is not base64"))?;
            hashes.push(Hash::from_slice(&raw).map_err(|_| Malformed("proof hash length"))?);
        }
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint,
        })
    }

    /// The text form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{TLOG_PROOF_V1}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            out.push_str(&BASE64.encode(h.0));
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }

    /// Verifies the checkpoint (log signature, origin, witness quorum) and that `entry` is at
    /// `self.index` under it.
    pub fn verify(
        &self,
        entry: &LeafHash,
        log: &LogKey,
        witnesses: &WitnessPolicy,
    ) -> Result<WitnessedCheckpoint, TlogProofError> {
        let witnessed = verify_witnessed(&self.checkpoint, log, witnesses)?;
        let cp = witnessed.checkpoint();
        let proof = InclusionProof {
            index: self.index,
            size: cp.size,
            hashes: self.hashes.clone(),
        };
        proof
            .verify(entry, &cp.root)
            .map_err(|source| TlogProofError::Inclusion {
                index: self.index,
                size: cp.size.0,
                source,
            })?;
        Ok(witnessed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::checkpoint::fixtures::tree_and_checkpoint;
    use crate::cosignature::WitnessSigner;
    use crate::note::{append_signatures, NoteSigner};

    #[test]
    fn roundtrip_and_verify() {
        let log = NoteSigner::generate(&mut rand_core::OsRng, "log.example").unwrap();
        let w = WitnessSigner::generate(&mut rand_core::OsRng, "w.example").unwrap();
        let (tree, cp) = tree_and_checkpoint("log.example", 13);
        let note = cp.sign(&log).unwrap();
        let note = append_signatures(&note, &[w.cosign(&cp.to_text().unwrap(), 5)]).unwrap();
        let proof = TlogProof {
            extra: Some(b"hi".to_vec()),
            index: 6,
            hashes: tree.prove_inclusion(6, 13).unwrap().hashes,
            checkpoint: note,
        };
        let bytes = proof.to_bytes();
        let parsed = TlogProof::parse(&bytes).unwrap();
        assert_eq!(parsed, proof);
        let key = LogKey::new(log.verifier_key());
        let policy = WitnessPolicy::new(vec![w.witness_key()], 1).unwrap();
        parsed
            .verify(&LeafHash::of_entry(&[6]), &key, &policy)
            .unwrap();
        assert!(matches!(
            parsed.verify(&LeafHash::of_entry(&[7]), &key, &policy),
            Err(TlogProofError::Inclusion { .. })
        ));
        // Every truncation fails to parse or to verify.
        for cut in 0..bytes.len() {
            let ok = TlogProof::parse(&bytes[..cut])
                .ok()
                .and_then(|p| p.verify(&LeafHash::of_entry(&[6]), &key, &policy).ok());
            assert!(ok.is_none(), "truncated at {cut} verified");
        }
    }
}
