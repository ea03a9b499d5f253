//! Where a party keeps the last checkpoint it verified: the one piece of state that lets it
//! notice a rollback or a split view (`lucent_verifier::last_seen`).
//!
//! [`LastSeenStore`] is the interface; [`AtomicFile`] the one implementation, used by the
//! embedded client, the key broker and the auditor alike. A file is replaced atomically and
//! durably: the new bytes go to a temporary file beside it, which is fsynced and renamed over
//! the old one, and then the directory is fsynced so that the rename itself survives a crash.
//! A crash at any point leaves the old note or the new one, never a mixture or nothing.
//!
//! What is read back is never trusted more than the network: [`load_verified`] checks the
//! stored note against the log key again, and refuses a file that does not verify rather
//! than replacing it silently.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use lucent_verifier::checkpoint::{verify_checkpoint, CheckpointError, LogKey, SignedCheckpoint};

/// Largest stored checkpoint note read back (a note with many witness cosignatures is a few
/// kilobytes; anything larger was not written by us).
pub const MAX_STORED_NOTE_BYTES: u64 = 64 * 1024;

/// Why the last seen checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("last seen checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The stored note is larger than [`MAX_STORED_NOTE_BYTES`].
    #[error("last seen checkpoint {path}: {size} bytes is more than the {limit} a note can be")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The stored note does not verify against the log key: the file was altered, or the
    /// party is now configured for another log. It is left as it is.
    #[error("last seen checkpoint {location} does not verify against the log key: {source}")]
    Invalid {
        /// Where it is kept ([`LastSeenStore::location`]).
        location: String,
        /// Why.
        source: CheckpointError,
    },
}

/// Keeps the exact bytes of the last verified checkpoint note.
pub trait LastSeenStore: Send + Sync + std::fmt::Debug {
    /// Where the note is kept, for messages (a file's path).
    fn location(&self) -> String;
    /// The stored note, or `None` when nothing was stored yet.
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the stored note; after `Ok` it survives a crash.
    fn store(&self, note: &[u8]) -> Result<(), StoreError>;
}

/// Loads the stored note and verifies it with `log`; `None` when nothing was stored yet.
pub fn load_verified(
    store: &dyn LastSeenStore,
    log: &LogKey,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let Some(note) = store.load()? else {
        return Ok(None);
    };
    verify_checkpoint(&note, log)
        .map(Some)
        .map_err(|source| StoreError::Invalid {
            location: store.location(),
            source,
        })
}

/// A last seen checkpoint kept in one file, replaced with [`write_atomic`].
#[derive(Debug, Clone)]
pub struct AtomicFile {
    path: PathBuf,
}

impl AtomicFile {
    /// The store at `path` (the file need not exist yet; its directory is created on the
    /// first store).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AtomicFile { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the note and verifies it with `log` ([`load_verified`]).
    pub fn load_verified(&self, log: &LogKey) -> Result<Option<SignedCheckpoint>, StoreError> {
        load_verified(self, log)
    }
}

impl LastSeenStore for AtomicFile {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_limited(&self.path, MAX_STORED_NOTE_BYTES)
    }

    fn store(&self, note: &[u8]) -> Result<(), StoreError> {
        write_atomic(&self.path, note).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads `path` whole, refusing one larger than `limit`; `None` when it does not exist.
pub fn read_limited(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Read at most one byte past the limit: the file may grow between the two calls.
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit + 1), &mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(Some(bytes))
}

/// Replaces `path` with `data` atomically and durably: a temporary file in the same
/// directory (created if needed) is written, fsynced and renamed over `path`, then the
/// directory is fsynced. On failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no file", path.display()),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucent_verifier::checkpoint::Checkpoint;
    use lucent_verifier::merkle::{Hash, TreeSize};
    use lucent_verifier::note::NoteSigner;

    fn signed(log: &NoteSigner, size: u64) -> Vec<u8> {
        Checkpoint {
            origin: "example.com/log".into(),
            size: TreeSize(size),
            root: Hash([size as u8; 32]),
            extension: String::new(),
        }
        .sign(log)
        .unwrap()
    }

    #[test]
    fn stores_verifies_and_refuses_tampering_without_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let log = NoteSigner::generate(&mut rand_core::OsRng, "example.com/log").unwrap();
        let key = LogKey::new(log.verifier_key());
        let file = AtomicFile::new(dir.path().join("sub/dir/last-seen"));
        assert!(file.load_verified(&key).unwrap().is_none());

        let note = signed(&log, 3);
        file.store(&note).unwrap();
        assert_eq!(file.load_verified(&key).unwrap().unwrap().note, note);
        // Nothing but the file is left in the directory (no temporary file).
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub/dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("last-seen")]);

        let mut bytes = note.clone();
        bytes[20] ^= 1;
        std::fs::write(file.path(), &bytes).unwrap();
        let err = file.load_verified(&key).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
        assert_eq!(std::fs::read(file.path()).unwrap(), bytes);

        let other = NoteSigner::generate(&mut rand_core::OsRng, "example.com/log").unwrap();
        file.store(&signed(&other, 4)).unwrap();
        assert!(matches!(
            file.load_verified(&key).unwrap_err(),
            StoreError::Invalid { .. }
        ));
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = AtomicFile::new(dir.path().join("last-seen"));
        std::fs::write(file.path(), vec![b'a'; MAX_STORED_NOTE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            file.load().unwrap_err(),
            StoreError::TooLarge { .. }
        ));
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last-seen");
        write_atomic(&path, b"old").unwrap();
        // A path whose parent is a file cannot be written; the old file is untouched.
        let bad = path.join("child");
        assert!(write_atomic(&bad, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(write_atomic(Path::new("/"), b"x").is_err());
    }
}
