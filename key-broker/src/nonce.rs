//! Single-use nonces with a short lifetime: the broker's challenge, bound by the CVM into
//! its evidence's `report_data` so that evidence cannot be replayed.
//!
//! A nonce is consumed by its first use, whether the request then succeeds or not. A used
//! nonce is remembered until it would have expired (a replay in that window is
//! [`NonceError::Replayed`]); after that it is forgotten and reads as unknown, which is
//! refused all the same.

use std::collections::HashMap;

use rand_core::CryptoRngCore;

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 32;
/// Most nonces outstanding (issued or recently used) at once.
pub const MAX_OUTSTANDING_NONCES: usize = 16_384;

/// A broker nonce.
pub type Nonce = [u8; NONCE_LEN];

/// Why a nonce was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Never issued by this broker (or forgotten after expiry).
    #[error("nonce was not issued by this broker or has been forgotten")]
    Unknown,
    /// Already used.
    #[error("nonce already used at {used_at}")]
    Replayed {
        /// When it was used (Unix seconds).
        used_at: u64,
    },
    /// Issued, but expired before use.
    #[error("nonce expired at {expired_at}, now {now}")]
    Stale {
        /// Its expiry (Unix seconds).
        expired_at: u64,
        /// The time of the attempt.
        now: u64,
    },
    /// Too many outstanding nonces: the broker refuses new ones until some expire.
    #[error("{outstanding} nonces outstanding, limit {limit}")]
    TooMany {
        /// Outstanding now.
        outstanding: usize,
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Issued { expires_at: u64 },
    Used { used_at: u64, expires_at: u64 },
}

impl Entry {
    fn expires_at(self) -> u64 {
        match self {
            Entry::Issued { expires_at } | Entry::Used { expires_at, .. } => expires_at,
        }
    }
}

/// Issued and recently used nonces.
#[derive(Debug)]
pub struct NonceStore {
    ttl: u64,
    entries: HashMap<Nonce, Entry>,
}

impl NonceStore {
    /// A store whose nonces live `ttl_secs` seconds.
    pub fn new(ttl_secs: u64) -> Self {
        NonceStore {
            ttl: ttl_secs,
            entries: HashMap::new(),
        }
    }

    /// The lifetime of a nonce, in seconds.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// Issues a fresh nonce at `now`; returns it and its expiry.
    pub fn issue<R: CryptoRngCore + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
    ) -> Result<(Nonce, u64), NonceError> {
        if self.entries.len() >= MAX_OUTSTANDING_NONCES {
            self.entries.retain(|_, e| e.expires_at() >= now);
        }
        if self.entries.len() >= MAX_OUTSTANDING_NONCES {
            return Err(NonceError::TooMany {
                outstanding: self.entries.len(),
                limit: MAX_OUTSTANDING_NONCES,
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let expires_at = now.saturating_add(self.ttl);
        self.entries.insert(nonce, Entry::Issued { expires_at });
        Ok((nonce, expires_at))
    }

    /// Consumes `nonce` at `now`: succeeds once per issued, unexpired nonce.
    pub fn consume(&mut self, nonce: &[u8], now: u64) -> Result<(), NonceError> {
        let key: Nonce = nonce.try_into().map_err(|_| NonceError::Unknown)?;
        let entry = self.entries.get_mut(&key).ok_or(NonceError::Unknown)?;
        match *entry {
            Entry::Used { used_at, .. } => Err(NonceError::Replayed { used_at }),
            Entry::Issued { expires_at } if now > expires_at => {
                self.entries.remove(&key);
                Err(NonceError::Stale {
                    expired_at: expires_at,
                    now,
                })
            }
            Entry::Issued { expires_at } => {
                *entry = Entry::Used {
                    used_at: now,
                    expires_at,
                };
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let mut rng = rand_core::OsRng;
        let mut store = NonceStore::new(30);
        let (a, exp) = store.issue(&mut rng, 1000).unwrap();
        assert_eq!(exp, 1030);
        let (b, _) = store.issue(&mut rng, 1000).unwrap();
        assert_ne!(a, b);
        assert_eq!(store.consume(&a, 1030), Ok(()));
        assert_eq!(
            store.consume(&a, 1031),
            Err(NonceError::Replayed { used_at: 1030 })
        );
        assert_eq!(
            store.consume(&b, 1031),
            Err(NonceError::Stale {
                expired_at: 1030,
                now: 1031
            })
        );
        // A stale nonce is forgotten once reported.
        assert_eq!(store.consume(&b, 1031), Err(NonceError::Unknown));
        assert_eq!(store.consume(&[0; 32], 1000), Err(NonceError::Unknown));
        assert_eq!(store.consume(&a[..31], 1000), Err(NonceError::Unknown));
    }

    #[test]
    fn bounded() {
        let mut rng = rand_core::OsRng;
        let mut store = NonceStore::new(10);
        for _ in 0..MAX_OUTSTANDING_NONCES {
            store.issue(&mut rng, 0).unwrap();
        }
        assert!(matches!(
            store.issue(&mut rng, 5),
            Err(NonceError::TooMany { .. })
        ));
        // Once they expire, room is made.
        assert!(store.issue(&mut rng, 11).is_ok());
    }
}
