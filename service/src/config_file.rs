//! A service's TOML configuration file: one bounded reader and one error for the log server,
//! the CVM runtime and the key broker.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use lucent_client::store::{read_limited, StoreError};

/// Largest configuration file read (real ones are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why a configuration file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read, or is larger than [`MAX_CONFIG_BYTES`].
    #[error("config file: {0}")]
    Read(#[from] StoreError),
    /// The file does not exist.
    #[error("config file {0}: not found")]
    Missing(PathBuf),
    /// The file is not UTF-8.
    #[error("config file {0}: not UTF-8")]
    NotUtf8(PathBuf),
    /// The file is not valid TOML for these settings.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML reader refused.
        source: toml::de::Error,
    },
}

/// Reads the file's bytes (at most [`MAX_CONFIG_BYTES`]).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ConfigFileError> {
    read_limited(path, MAX_CONFIG_BYTES)?.ok_or_else(|| ConfigFileError::Missing(path.to_owned()))
}

/// Parses `raw`, the bytes of the file at `path`, as the settings `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, raw: &[u8]) -> Result<T, ConfigFileError> {
    let text = std::str::from_utf8(raw).map_err(|_| ConfigFileError::NotUtf8(path.to_owned()))?;
    toml::from_str(text).map_err(|source| ConfigFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads and parses the file at `path` as the settings `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    parse(path, &read_bytes(path)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[allow(dead_code)]
        listen: String,
    }

    #[test]
    fn each_failure_is_named_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let e = read::<Settings>(&path).unwrap_err();
        assert!(matches!(e, ConfigFileError::Missing(_)), "{e}");

        std::fs::write(&path, b"listen = \"\xff\"\n").unwrap();
        assert!(matches!(
            read::<Settings>(&path).unwrap_err(),
            ConfigFileError::NotUtf8(_)
        ));

        std::fs::write(&path, "listen = \"a\"\nlisten_typo = 1\n").unwrap();
        let e = read::<Settings>(&path).unwrap_err();
        assert!(e.to_string().contains("listen_typo"), "{e}");
        assert!(e.to_string().contains("c.toml"), "{e}");

        std::fs::write(&path, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let e = read::<Settings>(&path).unwrap_err();
        assert!(
            matches!(e, ConfigFileError::Read(StoreError::TooLarge { .. })),
            "{e}"
        );

        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(read::<Settings>(&path).unwrap().listen, "127.0.0.1:1");
    }
}

/// Why a service's configuration cannot be used: the one error of the relay, the gateway and
/// the issuer at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A key file cannot be used.
    #[error(transparent)]
    KeyFile(#[from] crate::secret_file::SecretFileError),
    /// The database cannot be opened.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}
