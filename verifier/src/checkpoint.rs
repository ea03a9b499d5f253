//! C2SP `tlog-checkpoint` (<https://c2sp.org/tlog-checkpoint>): a signed tree head.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! [extension lines]
//!
//! — <log key name> <base64 signature>
//! — <witness name> <base64 cosignature>
//! ```
//!
//! The body is parsed by `tlog_tiles` (strictly: canonical decimal, exact layout); the
//! signature is a signed note checked against the log's key; cosignatures are checked against
//! a [`WitnessPolicy`].

use thiserror::Error;

use crate::cosignature::{Cosignature, WitnessPolicy, WitnessPolicyError};
use crate::merkle::{Hash, TreeSize};
use crate::note::{self, NoteError, NoteSignature, NoteSigner, NoteVerifierKey};

/// Why a checkpoint was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note around it is bad (layout, size, or the log's signature).
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint body.
    #[error("checkpoint body is malformed")]
    MalformedBody,
    /// No signature on the checkpoint is by the log key given: usually the wrong key for
    /// this log (the note's origin then differs from the key's name) or a note re-signed by
    /// someone else.
    #[error("{}", not_signed_message(origin, key, signers))]
    NotSignedByLogKey {
        /// The origin line of the note (its first line), if it has one.
        origin: Option<String>,
        /// The log key given (`name+id+key`).
        key: String,
        /// The names of the keys the note is signed by.
        signers: Vec<String>,
    },
    /// The origin line names another log.
    #[error("checkpoint origin is {got:?}, want {want:?}")]
    WrongOrigin {
        /// Origin line found.
        got: String,
        /// Origin expected.
        want: String,
    },
    /// The witness policy was not met.
    #[error("checkpoint of size {size}: {source}")]
    Witnesses {
        /// Size of the checkpoint.
        size: u64,
        /// What was missing.
        source: WitnessPolicyError,
    },
}

fn not_signed_message(origin: &Option<String>, key: &str, signers: &[String]) -> String {
    let key_name = key.split('+').next().unwrap_or(key);
    let by = if signers.is_empty() {
        "no one".to_owned()
    } else {
        signers.join(", ")
    };
    match origin {
        Some(origin) if origin != key_name => format!(
            "the checkpoint is not signed by the log key given: its origin is {origin:?} but the \
             key is named {key_name:?} (is the log key that of this log?); it is signed by {by}"
        ),
        _ => format!(
            "the checkpoint is not signed by the log key given ({key}); it is signed by {by}"
        ),
    }
}

/// What a client trusts about one log: its origin line and its checkpoint signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    /// The origin line the log's checkpoints must carry.
    pub origin: String,
    /// The log's Ed25519 note key.
    pub key: NoteVerifierKey,
}

impl LogKey {
    /// A log whose origin is its key name (Lucent's convention and C2SP's recommendation).
    pub fn new(key: NoteVerifierKey) -> Self {
        LogKey {
            origin: key.name().to_owned(),
            key,
        }
    }

    /// A log whose origin differs from its key name (for example sum.golang.org).
    pub fn with_origin(key: NoteVerifierKey, origin: &str) -> Self {
        LogKey {
            origin: origin.to_owned(),
            key,
        }
    }
}

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: TreeSize,
    /// Root hash of the tree of that size.
    pub root: Hash,
    /// Extension lines (each ending in a newline), usually empty.
    pub extension: String,
}

impl Checkpoint {
    /// Parses a checkpoint body (the note text) strictly.
    pub fn parse(text: &[u8]) -> Result<Self, CheckpointError> {
        let body =
            tlog_tiles::Checkpoint::from_bytes(text).map_err(|_| CheckpointError::MalformedBody)?;
        // tlog_tiles stops at the first empty line; a note text has none, so anything after
        // the body means it was not a checkpoint.
        if body.to_bytes() != text {
            return Err(CheckpointError::MalformedBody);
        }
        Ok(Checkpoint {
            origin: body.origin().to_owned(),
            size: TreeSize(body.size()),
            root: Hash(body.hash().0),
            extension: body.extension().to_owned(),
        })
    }

    /// The exact body text.
    pub fn to_text(&self) -> Result<Vec<u8>, CheckpointError> {
        let body = tlog_tiles::Checkpoint::new(
            &self.origin,
            self.size.0,
            self.root.to_tlog(),
            &self.extension,
        )
        .map_err(|_| CheckpointError::MalformedBody)?;
        let text = body.to_bytes();
        // Reject origins that would break the line layout.
        Checkpoint::parse(&text)?;
        Ok(text)
    }

    /// Signs the checkpoint as the log and returns the signed note.
    pub fn sign(&self, signer: &NoteSigner) -> Result<Vec<u8>, CheckpointError> {
        Ok(signer.sign(&self.to_text()?)?)
    }
}

/// A checkpoint whose log signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The exact note text that was signed.
    pub text: Vec<u8>,
    /// The whole note, as received (log signature and any cosignatures).
    pub note: Vec<u8>,
    /// Signature lines other than the log's (candidate cosignatures).
    pub other_signatures: Vec<NoteSignature>,
}

/// A checkpoint whose log signature and witness quorum both verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedCheckpoint {
    /// The signed checkpoint.
    pub signed: SignedCheckpoint,
    /// The cosignatures that counted.
    pub cosignatures: Vec<Cosignature>,
}

impl WitnessedCheckpoint {
    /// The checkpoint body.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.signed.checkpoint
    }
}

/// Verifies a checkpoint note's log signature and origin.
pub fn verify_checkpoint(note: &[u8], log: &LogKey) -> Result<SignedCheckpoint, CheckpointError> {
    let opened = note::open(note, &[&log.key]).map_err(|e| match e {
        NoteError::NoKnownSignature => not_signed_by(note, log),
        e => e.into(),
    })?;
    let checkpoint = Checkpoint::parse(&opened.text)?;
    if checkpoint.origin != log.origin {
        return Err(CheckpointError::WrongOrigin {
            got: checkpoint.origin,
            want: log.origin.clone(),
        });
    }
    Ok(SignedCheckpoint {
        checkpoint,
        text: opened.text,
        note: note.to_vec(),
        other_signatures: opened.unverified,
    })
}

/// The error for a well-formed note without the log's signature: who did sign it, for what
/// origin.
fn not_signed_by(note: &[u8], log: &LogKey) -> CheckpointError {
    let (origin, signers) = match note::parse_unverified(note) {
        Ok((text, sigs)) => (
            text.split(|&b| b == b'\n')
                .next()
                .map(|line| String::from_utf8_lossy(line).into_owned()),
            sigs.into_iter()
                .map(|s| format!("{}+{:08x}", s.name, s.id))
                .collect(),
        ),
        Err(_) => (None, Vec::new()),
    };
    CheckpointError::NotSignedByLogKey {
        origin,
        key: log.key.as_str().to_owned(),
        signers,
    }
}

/// Verifies a checkpoint note's log signature, origin, and witness quorum.
pub fn verify_witnessed(
    note: &[u8],
    log: &LogKey,
    witnesses: &WitnessPolicy,
) -> Result<WitnessedCheckpoint, CheckpointError> {
    let signed = verify_checkpoint(note, log)?;
    let cosignatures = witnesses
        .check(&signed.text, &signed.other_signatures)
        .map_err(|source| CheckpointError::Witnesses {
            size: signed.checkpoint.size.0,
            source,
        })?;
    Ok(WitnessedCheckpoint {
        signed,
        cosignatures,
    })
}

/// Test fixtures shared by the verifier's unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Checkpoint;
    use crate::merkle::MemoryTree;

    /// A tree of `n` one-byte entries `[0]`, `[1]`, … and its checkpoint under `origin`.
    pub(crate) fn tree_and_checkpoint(origin: &str, n: u8) -> (MemoryTree, Checkpoint) {
        let mut tree = MemoryTree::new();
        for i in 0..n {
            tree.push_entry(&[i]);
        }
        let checkpoint = Checkpoint {
            origin: origin.into(),
            size: tree.size(),
            root: tree.root(),
            extension: String::new(),
        };
        (tree, checkpoint)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cosignature::WitnessSigner;

    #[test]
    fn a_wrong_log_key_is_named_with_the_origin_and_signers() {
        let log = NoteSigner::generate(&mut rand_core::OsRng, "log.example").unwrap();
        let (_, cp) = fixtures::tree_and_checkpoint("log.example", 3);
        let note = cp.sign(&log).unwrap();
        let other = NoteSigner::generate(&mut rand_core::OsRng, "other.example").unwrap();
        let e = verify_checkpoint(&note, &LogKey::new(other.verifier_key())).unwrap_err();
        let CheckpointError::NotSignedByLogKey {
            origin, signers, ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(origin.as_deref(), Some("log.example"));
        assert_eq!(signers, &[format!("log.example+{:08x}", log.key_id())]);
        let msg = e.to_string();
        assert!(
            msg.contains("its origin is \"log.example\" but the key is named \"other.example\""),
            "{msg}"
        );
        // Same name, other key: no origin complaint, the key itself is named.
        let twin = NoteSigner::generate(&mut rand_core::OsRng, "log.example").unwrap();
        let msg = verify_checkpoint(&note, &LogKey::new(twin.verifier_key()))
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("origin is"), "{msg}");
        assert!(msg.contains(twin.verifier_key().as_str()), "{msg}");
    }

    #[test]
    fn sign_verify_and_witness() {
        let log = NoteSigner::generate(&mut rand_core::OsRng, "example.com/log").unwrap();
        let key = LogKey::new(log.verifier_key());
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: TreeSize(5),
            root: Hash([7; 32]),
            extension: String::new(),
        };
        let note = cp.sign(&log).unwrap();
        let signed = verify_checkpoint(&note, &key).unwrap();
        assert_eq!(signed.checkpoint, cp);

        let w = WitnessSigner::generate(&mut rand_core::OsRng, "w.example").unwrap();
        let policy = WitnessPolicy::new(vec![w.witness_key()], 1).unwrap();
        assert!(matches!(
            verify_witnessed(&note, &key, &policy),
            Err(CheckpointError::Witnesses { size: 5, .. })
        ));
        let cosigned = note::append_signatures(&note, &[w.cosign(&signed.text, 9)]).unwrap();
        let witnessed = verify_witnessed(&cosigned, &key, &policy).unwrap();
        assert_eq!(witnessed.cosignatures[0].timestamp, 9);

        let other = LogKey::with_origin(log.verifier_key(), "other");
        assert!(matches!(
            verify_checkpoint(&note, &other),
            Err(CheckpointError::WrongOrigin { .. })
        ));
    }
}
