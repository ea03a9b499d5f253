//! Secret key files: a seed of a fixed length, raw or as hex digits, made (mode 0600, never
//! over an existing file) on first use. The gateway's OHTTP key and the issuer's token key
//! are kept this way.

use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file holds neither `len` bytes nor `2 × len` hex digits.
    #[error("key file {path}: neither {len} bytes nor {} hex digits", 2 * len)]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The seed length expected.
        len: usize,
    },
}

/// The `len`-byte seed in `path`: `len` raw bytes or `2 × len` hex digits (surrounding white
/// space ignored). With `create`, a missing file is made with a fresh random seed; the
/// returned flag says whether it was.
pub fn load(
    path: &Path,
    len: usize,
    create: bool,
) -> Result<(Zeroizing<Vec<u8>>, bool), SecretFileError> {
    let io = |source| SecretFileError::Io {
        path: path.to_owned(),
        source,
    };
    let raw = match std::fs::read(path) {
        Ok(raw) => Zeroizing::new(raw),
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = Zeroizing::new(vec![0u8; len]);
            OsRng.fill_bytes(&mut seed);
            write_new(path, &seed).map_err(io)?;
            return Ok((seed, true));
        }
        Err(e) => return Err(io(e)),
    };
    let bad = || SecretFileError::Malformed {
        path: path.to_owned(),
        len,
    };
    if raw.len() == len {
        return Ok((raw, false));
    }
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let seed = Zeroizing::new(hex::decode(text.trim()).map_err(|_| bad())?);
    if seed.len() != len {
        return Err(bad());
    }
    Ok((seed, false))
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn made_once_then_read_raw_or_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(matches!(
            load(&path, 48, false),
            Err(SecretFileError::Io { .. })
        ));
        let (made, fresh) = load(&path, 48, true).unwrap();
        assert!(fresh);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, fresh) = load(&path, 48, true).unwrap();
        assert!(!fresh);
        assert_eq!(made, again);
        std::fs::write(&path, format!("{}\n", hex::encode(&made[..]))).unwrap();
        assert_eq!(load(&path, 48, false).unwrap().0, made);
        std::fs::write(&path, [1u8; 47]).unwrap();
        assert!(matches!(
            load(&path, 48, true),
            Err(SecretFileError::Malformed { len: 48, .. })
        ));
    }
}
