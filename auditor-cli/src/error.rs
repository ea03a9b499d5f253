//! One error type for every command, and how each maps to an exit code.
//!
//! The split that matters to a script is between "the log (or a file) failed a check" —
//! evidence of misbehaviour, exit [`crate::EXIT_FAILED`] — and "we could not check" —
//! network down, file missing, state unreadable, exit [`crate::EXIT_CANNOT_CHECK`].

use std::path::PathBuf;

use lucent_verifier::checkpoint::CheckpointError;
use lucent_verifier::last_seen::{LastSeenError, SplitView};
use lucent_verifier::merkle::ProofError;
use lucent_verifier::note::{KeyError, NoteError};
use lucent_verifier::statement::StatementError;
use lucent_verifier::witness_protocol::WitnessProtocolError;
use thiserror::Error;

use crate::{EXIT_CANNOT_CHECK, EXIT_FAILED, EXIT_USAGE};

/// Everything a command can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log (or a file) could not be reached or read.
    #[error("could not fetch {url}: {why}")]
    Fetch {
        /// What was asked for.
        url: String,
        /// Transport error.
        why: String,
    },
    /// The log answered with an HTTP error status.
    #[error("{url}: HTTP {status}: {body}")]
    Http {
        /// What was asked for.
        url: String,
        /// Status code.
        status: u16,
        /// Start of the answer's body.
        body: String,
    },
    /// The log refused what was submitted (a 4xx answer other than "already logged"): its
    /// code and message say why; sending it again does not help.
    #[error("the log refused it: HTTP {status} {code}: {message}")]
    Refused {
        /// Where it was sent.
        url: String,
        /// Status code.
        status: u16,
        /// The log's stable error code.
        code: String,
        /// The log's explanation.
        message: String,
    },
    /// An answer was larger than the limit for its kind.
    #[error("{url}: answer is larger than {limit} bytes")]
    TooLarge {
        /// What was asked for.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The checkpoint failed verification (signature, origin, layout, witness quorum).
    #[error("checkpoint rejected: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The new checkpoint is not consistent with the last one seen: fork, rollback.
    #[error("{0}")]
    LastSeen(#[from] LastSeenError),
    /// A split view: the log showed a tree incompatible with the last one seen.
    #[error("{view}{}", .saved.as_ref().map(|p| format!("evidence saved to {}\n", p.display())).unwrap_or_default())]
    SplitView {
        /// Both checkpoints and the failed proof.
        view: Box<SplitView>,
        /// Where the evidence was saved, if it could be.
        saved: Option<PathBuf>,
    },
    /// A Merkle proof did not verify.
    #[error("proof rejected: {0}")]
    Proof(#[from] ProofError),
    /// The log's tiles do not hash to the signed root: the log serves a tree it did not sign.
    #[error("tiles for tree size {size} do not match the signed root {root}: {why}")]
    TilesMismatch {
        /// Tree size of the checkpoint.
        size: u64,
        /// Root hash of the checkpoint.
        root: String,
        /// What did not match.
        why: String,
    },
    /// A tile or entry bundle is malformed.
    #[error("malformed {path}: {why}")]
    BadTile {
        /// Tile path.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The entries read from the log do not hash to the signed root.
    #[error("entries 0..{size} hash to {computed}, but the checkpoint says {signed}")]
    RootMismatch {
        /// Tree size.
        size: u64,
        /// Root computed from the entries.
        computed: String,
        /// Root in the signed checkpoint.
        signed: String,
    },
    /// A statement in the log or a file failed to parse or verify.
    #[error("statement{}: {source}", .index.map(|i| format!(" at index {i}")).unwrap_or_default())]
    Statement {
        /// Log index, when it came from the log.
        index: Option<u64>,
        /// Why.
        source: StatementError,
    },
    /// A note (signed-note layout or signature) failed.
    #[error("note: {0}")]
    Note(#[from] NoteError),
    /// A key could not be parsed.
    #[error("key {what}: {source}")]
    Key {
        /// Which key.
        what: String,
        /// Why.
        source: KeyError,
    },
    /// The entry is not in the log where the log says it is.
    #[error("{what} is not in the log: {why}")]
    NotIncluded {
        /// What was looked for.
        what: String,
        /// Why.
        why: String,
    },
    /// A measurement or artifact digest does not match a release statement.
    #[error("measurement check failed: {0}")]
    MeasurementMismatch(String),
    /// The measurement could not be computed (bad OVMF, missing file, unknown vCPU type).
    #[error("cannot compute the measurement: {0}")]
    Measure(String),
    /// A witness protocol message was malformed.
    #[error("witness protocol: {0}")]
    WitnessProtocol(#[from] WitnessProtocolError),
    /// A CVM image could not be built or read.
    #[error("image: {0}")]
    Image(String),
    /// The attestation bundle failed verification.
    #[error("bundle rejected: {0}")]
    Bundle(String),
    /// Local file or state directory I/O failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The local state is not what this tool wrote: it is left alone and not trusted.
    #[error("state file {} is corrupt ({why}); it was not changed — inspect or remove it", .path.display())]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// An internal task failed (a bug, or the runtime shutting down).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which of the documented outcomes an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Verification failed: evidence that the log, a witness or a file is wrong.
    Failed,
    /// Could not check: network, files, local state.
    CannotCheck,
    /// Bad command line.
    Usage,
    /// The log refused a submission.
    Refused,
}

impl AuditError {
    /// The outcome class of this error.
    pub fn outcome(&self) -> Outcome {
        use AuditError::*;
        match self {
            Fetch { .. }
            | Http { .. }
            | Measure(_)
            | Image(_)
            | Io { .. }
            | StateCorrupt { .. }
            | Internal(_) => Outcome::CannotCheck,
            Usage(_) | Key { .. } => Outcome::Usage,
            Refused { .. } => Outcome::Refused,
            TooLarge { .. }
            | Checkpoint(_)
            | LastSeen(_)
            | SplitView { .. }
            | Proof(_)
            | TilesMismatch { .. }
            | BadTile { .. }
            | RootMismatch { .. }
            | Statement { .. }
            | Note(_)
            | NotIncluded { .. }
            | MeasurementMismatch(_)
            | WitnessProtocol(_)
            | Bundle(_) => Outcome::Failed,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self.outcome() {
            Outcome::Failed | Outcome::Refused => EXIT_FAILED,
            Outcome::CannotCheck => EXIT_CANNOT_CHECK,
            Outcome::Usage => EXIT_USAGE,
        }
    }

    /// Stable machine-readable name of the outcome.
    pub fn outcome_name(&self) -> &'static str {
        match self.outcome() {
            Outcome::Failed => "verification_failed",
            Outcome::CannotCheck => "could_not_check",
            Outcome::Usage => "usage",
            Outcome::Refused => "refused",
        }
    }

    /// The split-view evidence, when this error is a split view.
    pub fn split_view(&self) -> Option<&SplitView> {
        match self {
            AuditError::LastSeen(LastSeenError::SplitView(sv)) => Some(sv),
            AuditError::SplitView { view, .. } => Some(view),
            _ => None,
        }
    }

    /// Machine-readable form, with split-view evidence when there is some.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ok": false,
            "outcome": self.outcome_name(),
            "exit_code": self.exit_code(),
            "error": self.to_string(),
        });
        if let AuditError::Refused {
            status,
            code,
            message,
            ..
        } = self
        {
            v["status"] = serde_json::json!(status);
            v["code"] = serde_json::json!(code);
            v["message"] = serde_json::json!(message);
        }
        if let Some(sv) = self.split_view() {
            v["evidence"] = serde_json::json!({
                "reason": sv.reason.to_string(),
                "stored_checkpoint": String::from_utf8_lossy(&sv.stored),
                "new_checkpoint": String::from_utf8_lossy(&sv.new),
                "consistency_proof": sv.proof.as_ref().map(|p| serde_json::json!({
                    "old": p.old.0,
                    "new": p.new.0,
                    "hashes": p.hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
                })),
            });
            if let AuditError::SplitView { saved: Some(p), .. } = self {
                v["evidence_file"] = serde_json::Value::from(p.display().to_string());
            }
        }
        v
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_documented_codes() {
        assert_eq!(AuditError::Usage("x".into()).exit_code(), 64);
        assert_eq!(
            AuditError::Fetch {
                url: "u".into(),
                why: "down".into()
            }
            .exit_code(),
            2
        );
        assert_eq!(AuditError::Proof(ProofError::RootMismatch).exit_code(), 1);
        assert_eq!(
            AuditError::Checkpoint(CheckpointError::MalformedBody).exit_code(),
            1
        );
    }
}
