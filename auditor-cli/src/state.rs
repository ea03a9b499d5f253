//! The local state directory: the last seen checkpoint per log and the monitor's position.
//!
//! Layout: `<dir>/logs/<hex(origin)>/checkpoint` (the verified note, exact bytes) and
//! `<dir>/logs/<hex(origin)>/monitor.json`. Files are replaced atomically (write to a
//! temporary file, fsync, rename, fsync the directory) and only with data that has been
//! verified. What is read back is verified again, so a tampered file is refused, never
//! trusted, and never overwritten silently.

use std::path::{Path, PathBuf};

use lucent_client::store::{read_limited, StoreError};
use lucent_verifier::checkpoint::{verify_checkpoint, LogKey, SignedCheckpoint};
use lucent_verifier::tiles::CompactRange;
use serde::{Deserialize, Serialize};

use crate::AuditError;

/// Largest state file read.
const MAX_STATE_BYTES: u64 = 1024 * 1024;

/// A state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Where the monitor stopped: everything up to `range.size` was read and checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorState {
    /// Compact range of the entries read so far (its shape is checked when read).
    pub range: CompactRange,
    /// Root of those entries, hex (redundant, checked on load).
    pub root: String,
    /// Releases seen so far.
    pub releases: u64,
    /// Key configs seen so far.
    pub keyconfigs: u64,
    /// Revocations seen so far.
    pub revocations: u64,
}

impl MonitorState {
    /// Builds the state for a compact range.
    pub fn new(range: &CompactRange, releases: u64, keyconfigs: u64, revocations: u64) -> Self {
        MonitorState {
            range: range.clone(),
            root: range.root().to_hex(),
            releases,
            keyconfigs,
            revocations,
        }
    }

    /// The compact range, checked against the stored root.
    pub fn compact_range(&self, path: &Path) -> Result<CompactRange, AuditError> {
        if self.range.root().to_hex() != self.root {
            return Err(AuditError::StateCorrupt {
                path: path.to_owned(),
                why: "compact range does not hash to the stored root".into(),
            });
        }
        Ok(self.range.clone())
    }
}

impl StateDir {
    /// Opens (creating if needed) a state directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| AuditError::io(&root, e))?;
        Ok(StateDir { root })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn log_dir(&self, origin: &str) -> PathBuf {
        self.root.join("logs").join(hex::encode(origin.as_bytes()))
    }

    /// Path of the last seen checkpoint for `origin`.
    pub fn checkpoint_path(&self, origin: &str) -> PathBuf {
        self.log_dir(origin).join("checkpoint")
    }

    /// Path of the monitor position for `origin`.
    pub fn monitor_path(&self, origin: &str) -> PathBuf {
        self.log_dir(origin).join("monitor.json")
    }

    /// The last seen checkpoint, re-verified against the log key.
    pub fn last_seen(&self, log: &LogKey) -> Result<Option<SignedCheckpoint>, AuditError> {
        let path = self.checkpoint_path(&log.origin);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        verify_checkpoint(&bytes, log)
            .map(Some)
            .map_err(|e| AuditError::StateCorrupt {
                path,
                why: format!("stored checkpoint does not verify: {e}"),
            })
    }

    /// Stores a checkpoint that was verified and found consistent with the last one seen.
    pub fn store_last_seen(&self, cp: &SignedCheckpoint) -> Result<(), AuditError> {
        write_atomic(&self.checkpoint_path(&cp.checkpoint.origin), &cp.note)
    }

    /// Keeps split-view evidence (both checkpoints and the failed proof) in a new file next
    /// to the last seen checkpoint; returns its path. The last seen checkpoint is not touched.
    pub fn save_evidence(
        &self,
        origin: &str,
        evidence: &lucent_verifier::last_seen::SplitView,
    ) -> Result<PathBuf, AuditError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = self.log_dir(origin).join(format!("split-view-{now}.txt"));
        write_atomic(&path, evidence.to_string().as_bytes())?;
        Ok(path)
    }

    /// The monitor's position, checked for shape.
    pub fn monitor(
        &self,
        origin: &str,
    ) -> Result<Option<(MonitorState, CompactRange)>, AuditError> {
        let path = self.monitor_path(origin);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let st: MonitorState =
            serde_json::from_slice(&bytes).map_err(|e| AuditError::StateCorrupt {
                path: path.clone(),
                why: e.to_string(),
            })?;
        let range = st.compact_range(&path)?;
        Ok(Some((st, range)))
    }

    /// Stores the monitor's position (only call with a root checked against a checkpoint).
    pub fn store_monitor(&self, origin: &str, st: &MonitorState) -> Result<(), AuditError> {
        let bytes = serde_json::to_vec_pretty(st)
            .map_err(|e| AuditError::Internal(format!("serialising state: {e}")))?;
        write_atomic(&self.monitor_path(origin), &bytes)
    }
}

/// Reads a small file, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    read_limited(path, MAX_STATE_BYTES).map_err(|e| match e {
        StoreError::Io { path, source } => AuditError::io(&path, source),
        other => AuditError::StateCorrupt {
            path: path.to_owned(),
            why: other.to_string(),
        },
    })
}

/// Replaces `path` with `data` atomically and durably (`lucent_client::store::write_atomic`).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), AuditError> {
    lucent_client::store::write_atomic(path, data).map_err(|e| AuditError::io(path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lucent_verifier::checkpoint::Checkpoint;
    use lucent_verifier::merkle::{Hash, TreeSize};
    use lucent_verifier::note::NoteSigner;

    #[test]
    fn tampered_checkpoint_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::open(dir.path()).unwrap();
        let log = NoteSigner::generate(&mut rand_core::OsRng, "example.com/log").unwrap();
        let key = LogKey::new(log.verifier_key());
        assert!(st.last_seen(&key).unwrap().is_none());
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: TreeSize(3),
            root: Hash([1; 32]),
            extension: String::new(),
        };
        let signed = verify_checkpoint(&cp.sign(&log).unwrap(), &key).unwrap();
        st.store_last_seen(&signed).unwrap();
        assert_eq!(st.last_seen(&key).unwrap().unwrap(), signed);
        let path = st.checkpoint_path("example.com/log");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = st.last_seen(&key).unwrap_err();
        assert!(matches!(err, AuditError::StateCorrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn monitor_state_round_trips_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::open(dir.path()).unwrap();
        let mut r = CompactRange::new();
        r.extend((0u8..5).map(|i| lucent_verifier::merkle::LeafHash::of_entry(&[i])))
            .unwrap();
        st.store_monitor("o", &MonitorState::new(&r, 1, 2, 3))
            .unwrap();
        let (m, back) = st.monitor("o").unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(m.keyconfigs, 2);
        let mut bad = m.clone();
        bad.root = Hash([0; 32]).to_hex();
        st.store_monitor("o", &bad).unwrap();
        assert!(matches!(
            st.monitor("o").unwrap_err(),
            AuditError::StateCorrupt { .. }
        ));
        // The file keeps the `{"size", "hashes": [hex…]}` shape; a range of the wrong shape
        // is refused when read.
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(st.monitor_path("o")).unwrap()).unwrap();
        assert_eq!(json["range"]["size"], 5);
        assert_eq!(json["range"]["hashes"].as_array().unwrap().len(), 2);
        json["range"]["size"] = 6.into();
        std::fs::write(st.monitor_path("o"), json.to_string()).unwrap();
        assert!(matches!(
            st.monitor("o").unwrap_err(),
            AuditError::StateCorrupt { .. }
        ));
    }
}
