//! Key binding: the 64-byte `report_data` (SNP `REPORT_DATA`, TDX `REPORTDATA`) that ties a
//! CVM's HPKE key config, and optionally a verifier's nonce, to its hardware evidence.
//!
//! ```text
//! report_data = SHA-512( "lucent/report-data/v1\0"
//!                        ‖ u32_be(len(key_config)) ‖ key_config
//!                        ‖ nonce )
//! ```
//!
//! The key config is length-prefixed so that no (key config, nonce) pair can be re-split
//! into another; the nonce comes last and may be empty (no nonce and an empty nonce bind
//! the same value). The CVM, the key broker and the client all call [`report_data`], so
//! there is one definition.
//!
//! ```
//! use lucent_verifier::binding::{report_data, check_report_data};
//! let rd = report_data(b"key config bytes", Some(b"nonce"));
//! assert!(check_report_data(&rd, b"key config bytes", Some(b"nonce")).is_ok());
//! assert!(check_report_data(&rd, b"another key", Some(b"nonce")).is_err());
//! ```

use sha2::{Digest, Sha512};

/// Domain-separation label, NUL-terminated.
pub const REPORT_DATA_LABEL: &[u8] = b"lucent/report-data/v1\0";

/// The report data binding `key_config` and `nonce`.
pub fn report_data(key_config: &[u8], nonce: Option<&[u8]>) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(REPORT_DATA_LABEL);
    // Key configs are a few hundred bytes; a longer one saturates the prefix and is still
    // bound by the hash of its bytes.
    let len = u32::try_from(key_config.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(key_config);
    h.update(nonce.unwrap_or_default());
    h.finalize().into()
}

/// The report data does not bind the expected key config and nonce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key not bound: report_data {got} != SHA-512(label, key config, nonce) {want}")]
pub struct KeyNotBound {
    /// Hex of the report data in the evidence.
    pub got: String,
    /// Hex of the expected report data.
    pub want: String,
}

/// Checks that `got` (from verified evidence) binds `key_config` and `nonce`.
pub fn check_report_data(
    got: &[u8; 64],
    key_config: &[u8],
    nonce: Option<&[u8]>,
) -> Result<(), KeyNotBound> {
    let want = report_data(key_config, nonce);
    if &want == got {
        Ok(())
    } else {
        Err(KeyNotBound {
            got: hex::encode(got),
            want: hex::encode(want),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_computation() {
        // Built byte by byte here, not by calling report_data.
        let mut msg = b"lucent/report-data/v1\0".to_vec();
        msg.extend_from_slice(&[0, 0, 0, 3]);
        msg.extend_from_slice(b"abc");
        msg.extend_from_slice(b"xyz");
        let want: [u8; 64] = Sha512::digest(&msg).into();
        assert_eq!(report_data(b"abc", Some(b"xyz")), want);
    }

    #[test]
    fn splits_do_not_collide() {
        assert_ne!(
            report_data(b"ab", Some(b"c")),
            report_data(b"a", Some(b"bc"))
        );
        assert_ne!(report_data(b"k", None), report_data(b"k", Some(b"n")));
        assert_eq!(report_data(b"k", None), report_data(b"k", Some(b"")));
    }
}
