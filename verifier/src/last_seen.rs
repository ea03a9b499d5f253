//! The "last seen checkpoint" rule: a client, witness or auditor that has stored a verified
//! checkpoint accepts a newer one only with a consistency proof from the stored one. Two signed
//! checkpoints that cannot both be true are evidence of a split view, kept whole so that anyone
//! can check it.
//!
//! Pure: the caller loads and stores the checkpoint; this module only decides.

use std::fmt;

use thiserror::Error;

use crate::checkpoint::SignedCheckpoint;
use crate::merkle::{ConsistencyProof, ProofError, TreeSize};

/// What the new checkpoint means for the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Nothing was stored: trust on first use of this checkpoint.
    First,
    /// Same size and root as the stored one.
    Unchanged,
    /// Proven to extend the stored one.
    Advanced {
        /// Stored size.
        from: TreeSize,
        /// New size.
        to: TreeSize,
    },
    /// Older than the stored one, and proven to be a prefix of it ([`check_behind`]): the
    /// stored checkpoint stays the last seen one.
    Behind {
        /// New (older) size.
        size: TreeSize,
        /// Stored size.
        seen: TreeSize,
    },
}

impl Update {
    /// Whether the new checkpoint should replace the stored one.
    pub fn replaces_stored(self) -> bool {
        matches!(self, Update::First | Update::Advanced { .. })
    }
}

/// Two checkpoints signed by the same log that cannot describe one append-only log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitView {
    /// The stored checkpoint note, exactly as it was verified.
    pub stored: Vec<u8>,
    /// The new checkpoint note, exactly as received.
    pub new: Vec<u8>,
    /// The consistency proof that failed, if one was involved.
    pub proof: Option<ConsistencyProof>,
    /// Why they conflict.
    pub reason: ProofError,
}

impl fmt::Display for SplitView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "split view: {}", self.reason)?;
        writeln!(
            f,
            "stored checkpoint:\n{}",
            String::from_utf8_lossy(&self.stored)
        )?;
        writeln!(f, "new checkpoint:\n{}", String::from_utf8_lossy(&self.new))?;
        if let Some(p) = &self.proof {
            writeln!(f, "consistency proof {} -> {}:", p.old, p.new)?;
            for h in &p.hashes {
                writeln!(f, "  {h}")?;
            }
        }
        Ok(())
    }
}

/// Why a new checkpoint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LastSeenError {
    /// The log contradicted itself: keep the evidence.
    #[error("{0}")]
    SplitView(Box<SplitView>),
    /// The new checkpoint is older than the stored one (a rollback, or a stale mirror).
    #[error("checkpoint size {new} is older than the last seen size {stored}")]
    Rollback {
        /// Stored size.
        stored: u64,
        /// New size.
        new: u64,
    },
    /// The checkpoints belong to different logs.
    #[error("checkpoint origin {new:?} differs from the last seen origin {stored:?}")]
    OriginChanged {
        /// Stored origin.
        stored: String,
        /// New origin.
        new: String,
    },
    /// The proof given is for other sizes than the two checkpoints'.
    #[error("consistency proof is for {proof_old} -> {proof_new}, want {want_old} -> {want_new}")]
    ProofSizes {
        /// Proof's old size.
        proof_old: u64,
        /// Proof's new size.
        proof_new: u64,
        /// Stored size.
        want_old: u64,
        /// New size.
        want_new: u64,
    },
}

/// Decides whether `new` may replace `stored`, given a consistency proof from the stored size
/// to the new size (ignored when the sizes are equal or nothing is stored).
///
/// Both checkpoints must already have been verified against the log's key.
pub fn check_update(
    stored: Option<&SignedCheckpoint>,
    new: &SignedCheckpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<Update, LastSeenError> {
    let Some(stored) = stored else {
        return Ok(Update::First);
    };
    let (old_cp, new_cp) = (&stored.checkpoint, &new.checkpoint);
    if old_cp.origin != new_cp.origin {
        return Err(LastSeenError::OriginChanged {
            stored: old_cp.origin.clone(),
            new: new_cp.origin.clone(),
        });
    }
    let split = |proof: Option<&ConsistencyProof>, reason| {
        LastSeenError::SplitView(Box::new(SplitView {
            stored: stored.note.clone(),
            new: new.note.clone(),
            proof: proof.cloned(),
            reason,
        }))
    };
    let (old_size, new_size) = (old_cp.size.0, new_cp.size.0);
    if new_size < old_size {
        return Err(LastSeenError::Rollback {
            stored: old_size,
            new: new_size,
        });
    }
    if new_size == old_size {
        return if old_cp.root == new_cp.root {
            Ok(Update::Unchanged)
        } else {
            Err(split(None, ProofError::RootMismatch))
        };
    }
    if old_size == 0 {
        // Every tree extends the empty tree.
        return Ok(Update::Advanced {
            from: old_cp.size,
            to: new_cp.size,
        });
    }
    let Some(proof) = proof else {
        return Err(LastSeenError::ProofSizes {
            proof_old: 0,
            proof_new: 0,
            want_old: old_size,
            want_new: new_size,
        });
    };
    if proof.old.0 != old_size || proof.new.0 != new_size {
        return Err(LastSeenError::ProofSizes {
            proof_old: proof.old.0,
            proof_new: proof.new.0,
            want_old: old_size,
            want_new: new_size,
        });
    }
    proof
        .verify(&old_cp.root, &new_cp.root)
        .map_err(|reason| split(Some(proof), reason))?;
    Ok(Update::Advanced {
        from: old_cp.size,
        to: new_cp.size,
    })
}

/// Accepts a checkpoint **older** than the stored one when `proof` (from the new, smaller
/// size to the stored size) shows it is a prefix of the stored one: a reader that talks to
/// several servers meets checkpoints that lag behind the newest it has seen, and they are
/// as trustworthy as long as they are consistent with it. The stored checkpoint is kept.
///
/// Use this only where an older view is acceptable (a client checking a CVM's bundle); a
/// witness or monitor must never move backwards, and calls [`check_update`] alone.
/// Anything that is not older is left to [`check_update`].
pub fn check_behind(
    stored: &SignedCheckpoint,
    new: &SignedCheckpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<Update, LastSeenError> {
    let (old_cp, new_cp) = (&stored.checkpoint, &new.checkpoint);
    let (seen, size) = (old_cp.size.0, new_cp.size.0);
    if size >= seen {
        return check_update(Some(stored), new, proof);
    }
    if old_cp.origin != new_cp.origin {
        return Err(LastSeenError::OriginChanged {
            stored: old_cp.origin.clone(),
            new: new_cp.origin.clone(),
        });
    }
    let Some(proof) = proof else {
        return Err(LastSeenError::Rollback {
            stored: seen,
            new: size,
        });
    };
    if proof.old.0 != size || proof.new.0 != seen {
        return Err(LastSeenError::ProofSizes {
            proof_old: proof.old.0,
            proof_new: proof.new.0,
            want_old: size,
            want_new: seen,
        });
    }
    if size > 0 {
        proof.verify(&new_cp.root, &old_cp.root).map_err(|reason| {
            LastSeenError::SplitView(Box::new(SplitView {
                stored: stored.note.clone(),
                new: new.note.clone(),
                proof: Some(proof.clone()),
                reason,
            }))
        })?;
    }
    Ok(Update::Behind {
        size: new_cp.size,
        seen: old_cp.size,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::checkpoint::{verify_checkpoint, Checkpoint, LogKey};
    use crate::merkle::MemoryTree;
    use crate::note::NoteSigner;

    fn signed(tree: &MemoryTree, size: u64, log: &NoteSigner) -> SignedCheckpoint {
        let cp = Checkpoint {
            origin: log.name().to_owned(),
            size: TreeSize(size),
            root: tree.root_at(size).unwrap(),
            extension: String::new(),
        };
        verify_checkpoint(&cp.sign(log).unwrap(), &LogKey::new(log.verifier_key())).unwrap()
    }

    #[test]
    fn accepts_extension_and_catches_fork() {
        let log = NoteSigner::generate(&mut rand_core::OsRng, "log.example").unwrap();
        let mut honest = MemoryTree::new();
        let mut fork = MemoryTree::new();
        for i in 0..10u8 {
            honest.push_entry(&[i]);
            fork.push_entry(&[if i < 6 { i } else { 100 + i }]);
        }
        let a = signed(&honest, 6, &log);
        let b = signed(&honest, 10, &log);
        let p = honest.prove_consistency(6, 10).unwrap();
        assert_eq!(check_update(None, &a, None), Ok(Update::First));
        assert!(matches!(
            check_update(Some(&a), &b, Some(&p)),
            Ok(Update::Advanced { .. })
        ));
        assert_eq!(check_update(Some(&a), &a, None), Ok(Update::Unchanged));
        assert!(matches!(
            check_update(Some(&b), &a, None),
            Err(LastSeenError::Rollback { stored: 10, new: 6 })
        ));

        // The fork shares the first 6 entries but not the rest.
        let f = signed(&fork, 10, &log);
        let fp = fork.prove_consistency(6, 10).unwrap();
        assert!(matches!(
            check_update(Some(&a), &f, Some(&fp)),
            Ok(Update::Advanced { .. })
        ));
        match check_update(Some(&b), &f, None) {
            Err(LastSeenError::SplitView(ev)) => {
                assert_eq!(ev.stored, b.note);
                assert_eq!(ev.new, f.note);
            }
            other => panic!("want split view, got {other:?}"),
        }
        // Older checkpoints: accepted only with a proof that they prefix the stored one.
        let back = honest.prove_consistency(6, 10).unwrap();
        assert_eq!(
            check_behind(&b, &a, Some(&back)),
            Ok(Update::Behind {
                size: TreeSize(6),
                seen: TreeSize(10)
            })
        );
        assert!(matches!(
            check_behind(&b, &a, None),
            Err(LastSeenError::Rollback { stored: 10, new: 6 })
        ));
        assert!(matches!(
            check_behind(&b, &a, Some(&honest.prove_consistency(7, 10).unwrap())),
            Err(LastSeenError::ProofSizes { .. })
        ));
        // The fork's first 6 entries match, so its size-6 prefix is fine; a fork that
        // differs inside the prefix is a split view.
        let f6 = signed(&fork, 10, &log);
        let fback = fork.prove_consistency(6, 10).unwrap();
        assert!(matches!(
            check_behind(&f6, &a, Some(&fback)),
            Ok(Update::Behind { .. })
        ));
        let f8 = signed(&fork, 8, &log);
        let hback = honest.prove_consistency(8, 10).unwrap();
        assert!(matches!(
            check_behind(&b, &f8, Some(&hback)),
            Err(LastSeenError::SplitView(_))
        ));
        // Not older: the ordinary rule.
        assert!(matches!(
            check_behind(&a, &b, Some(&p)),
            Ok(Update::Advanced { .. })
        ));
        assert!(!Update::Behind {
            size: TreeSize(6),
            seen: TreeSize(10)
        }
        .replaces_stored());

        let a7 = signed(&honest, 7, &log);
        let p7 = fork.prove_consistency(7, 10).unwrap();
        assert!(matches!(
            check_update(Some(&a7), &f, Some(&p7)),
            Err(LastSeenError::SplitView(_))
        ));
    }
}
