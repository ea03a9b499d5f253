//! Single-use nonces with a short lifetime: the broker's challenge, bound by the CVM into
//! its evidence's `report_data` so that evidence cannot be replayed.
//!
//! Issuing keeps no state, so a flood of nonce requests costs the broker nothing and cannot
//! crowd out a real CVM's: a nonce is its expiry (8 bytes), 8 random bytes, and the first
//! 16 bytes of an HMAC-SHA-256 over both under a secret the broker draws at start (a restart
//! invalidates outstanding nonces, which live a minute). A nonce is checked (MAC, expiry)
//! before the bundle is verified, and spent only by a key release that succeeded: spent
//! nonces are remembered until they expire, so a release cannot be replayed, and only
//! evidence that verified (from real hardware bound to that nonce) can add to that memory.

use std::collections::HashMap;

use hmac::{Hmac, Mac as _};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 32;
/// Most spent, unexpired nonces remembered; past it (with every one still unexpired) a
/// release is refused until some expire.
pub const MAX_SPENT_NONCES: usize = 65_536;

/// A broker nonce.
pub type Nonce = [u8; NONCE_LEN];

/// Why a nonce was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not issued by this broker process (its MAC does not verify).
    #[error("nonce was not issued by this broker (or before it restarted)")]
    Unknown,
    /// Already spent by a key release.
    #[error("nonce already used at {used_at}")]
    Replayed {
        /// When it was spent (Unix seconds).
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
    /// Too many releases within one nonce lifetime.
    #[error("{outstanding} nonces spent within their lifetime, limit {limit}")]
    TooMany {
        /// Spent and unexpired now.
        outstanding: usize,
        /// The limit.
        limit: usize,
    },
}

/// Issues and checks nonces; remembers the spent ones until they expire.
pub struct NonceStore {
    ttl: u64,
    secret: Zeroizing<[u8; 32]>,
    /// Spent nonce -> (spent at, expires at).
    spent: HashMap<Nonce, (u64, u64)>,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceStore")
            .field("ttl", &self.ttl)
            .field("spent", &self.spent.len())
            .finish_non_exhaustive()
    }
}

impl NonceStore {
    /// A store whose nonces live `ttl_secs` seconds, with a fresh secret from `rng`.
    pub fn new<R: CryptoRngCore + ?Sized>(ttl_secs: u64, rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        NonceStore {
            ttl: ttl_secs,
            secret,
            spent: HashMap::new(),
        }
    }

    /// The lifetime of a nonce, in seconds.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    fn mac(&self, body: &[u8]) -> [u8; 16] {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.secret[..])
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"lucent/broker-nonce/v1");
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag[..16]);
        out
    }

    /// Issues a fresh nonce at `now`; returns it and its expiry. Keeps nothing.
    pub fn issue<R: CryptoRngCore + ?Sized>(&self, rng: &mut R, now: u64) -> (Nonce, u64) {
        let expires_at = now.saturating_add(self.ttl);
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&expires_at.to_be_bytes());
        rng.fill_bytes(&mut nonce[8..16]);
        let tag = self.mac(&nonce[..16]);
        nonce[16..].copy_from_slice(&tag);
        (nonce, expires_at)
    }

    /// Checks that `nonce` was issued here, is unexpired at `now` and unspent; returns it.
    pub fn check(&self, nonce: &[u8], now: u64) -> Result<Nonce, NonceError> {
        let nonce: Nonce = nonce.try_into().map_err(|_| NonceError::Unknown)?;
        let tag = self.mac(&nonce[..16]);
        // Constant time: the tag must not be guessable byte by byte.
        let mut diff = 0u8;
        for (a, b) in tag.iter().zip(&nonce[16..]) {
            diff |= a ^ b;
        }
        if diff != 0 {
            return Err(NonceError::Unknown);
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&nonce[..8]);
        let expired_at = u64::from_be_bytes(expiry);
        if now > expired_at {
            return Err(NonceError::Stale { expired_at, now });
        }
        if let Some(&(used_at, _)) = self.spent.get(&nonce) {
            return Err(NonceError::Replayed { used_at });
        }
        Ok(nonce)
    }

    /// Spends `nonce` (already [`NonceStore::check`]ed) at `now`: it is refused from then on.
    pub fn spend(&mut self, nonce: &[u8], now: u64) -> Result<(), NonceError> {
        let nonce = self.check(nonce, now)?;
        if self.spent.len() >= MAX_SPENT_NONCES {
            self.spent
                .retain(|_, &mut (_, expires_at)| expires_at >= now);
        }
        if self.spent.len() >= MAX_SPENT_NONCES {
            return Err(NonceError::TooMany {
                outstanding: self.spent.len(),
                limit: MAX_SPENT_NONCES,
            });
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&nonce[..8]);
        self.spent.insert(nonce, (now, u64::from_be_bytes(expiry)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let mut rng = rand_core::OsRng;
        let mut store = NonceStore::new(30, &mut rng);
        let (a, exp) = store.issue(&mut rng, 1000);
        assert_eq!(exp, 1030);
        let (b, _) = store.issue(&mut rng, 1000);
        assert_ne!(a, b);
        assert_eq!(store.check(&a, 1030), Ok(a));
        assert_eq!(store.spend(&a, 1030), Ok(()));
        assert_eq!(
            store.spend(&a, 1030),
            Err(NonceError::Replayed { used_at: 1030 })
        );
        assert_eq!(
            store.check(&b, 1031),
            Err(NonceError::Stale {
                expired_at: 1030,
                now: 1031
            })
        );
        assert_eq!(store.check(&[0; 32], 1000), Err(NonceError::Unknown));
        assert_eq!(store.check(&a[..31], 1000), Err(NonceError::Unknown));
        // Any changed bit, in the expiry, the random part or the tag, is unknown.
        for i in 0..NONCE_LEN {
            let mut c = b;
            c[i] ^= 1;
            assert_eq!(store.check(&c, 1000), Err(NonceError::Unknown), "byte {i}");
        }
        // Another broker (or this one after a restart) does not know them.
        let other = NonceStore::new(30, &mut rng);
        assert_eq!(other.check(&b, 1000), Err(NonceError::Unknown));
    }

    #[test]
    fn issuing_keeps_nothing_and_spent_nonces_are_bounded() {
        let mut rng = rand_core::OsRng;
        let mut store = NonceStore::new(10, &mut rng);
        // A flood of issued nonces leaves no trace.
        for _ in 0..100_000 {
            store.issue(&mut rng, 0);
        }
        assert_eq!(store.spent.len(), 0);
        for _ in 0..MAX_SPENT_NONCES {
            let (n, _) = store.issue(&mut rng, 0);
            store.spend(&n, 0).unwrap();
        }
        let (n, _) = store.issue(&mut rng, 5);
        assert!(matches!(
            store.spend(&n, 5),
            Err(NonceError::TooMany { .. })
        ));
        // Once they expire, room is made.
        let (n, _) = store.issue(&mut rng, 11);
        assert!(store.spend(&n, 11).is_ok());
    }
}
