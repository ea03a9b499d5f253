//! The broker's last seen checkpoint: the only state it keeps. It is loaded (and
//! re-verified against the log key) at start-up and replaced only after a bundle verified,
//! with a consistency proof from it, so the broker can never be rolled back or shown a
//! split view without noticing.
//!
//! The file holds the checkpoint note's exact bytes. It is replaced atomically (write to
//! a temporary file beside it, fsync, rename), so a crash leaves the old or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use lucent_verifier::checkpoint::{verify_checkpoint, CheckpointError, LogKey, SignedCheckpoint};

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The stored checkpoint does not verify against the configured log key.
    #[error("state file {path} holds a checkpoint that does not verify: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CheckpointError,
    },
}

/// The last seen checkpoint file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state at `path` (need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile { path: path.into() }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads and verifies the stored checkpoint; `None` when there is no file yet.
    pub fn load(&self, log: &LogKey) -> Result<Option<SignedCheckpoint>, StateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        verify_checkpoint(&bytes, log)
            .map(Some)
            .map_err(|source| StateError::Invalid {
                path: self.path.clone(),
                source,
            })
    }

    /// Replaces the stored checkpoint note atomically.
    pub fn store(&self, note: &[u8]) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(note).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}
