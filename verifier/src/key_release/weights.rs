//! Model weights encrypted at rest: the weights live outside the CVM only as ciphertext
//! under the model-weights key the broker releases, and are decrypted in memory inside it.
//! Encrypting streams through `std::io` (the operator's tool); decrypting takes the bytes.
//!
//! # Format (`lucentw1`), chunked for streaming
//!
//! ```text
//! header  = "lucentw1" (8) ‖ chunk_size u32_be (4) ‖ nonce_prefix (7, random)
//! chunk_i = ChaCha20-Poly1305(key, nonce_i, aad = header, plaintext_i) (ciphertext ‖ 16-byte tag)
//! nonce_i = nonce_prefix ‖ u32_be(i) ‖ last (0x01 for the final chunk, else 0x00)
//! file    = header ‖ chunk_0 ‖ … ‖ chunk_n
//! ```
//!
//! Every chunk but the last holds exactly `chunk_size` plaintext bytes; the last holds
//! `0..=chunk_size` (an empty file is one empty final chunk). This is the STREAM
//! construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): the counter stops reordering,
//! the last-chunk flag stops truncation and extension, the header in the AAD stops
//! splicing between files or chunk sizes. A random prefix per file means one key can
//! encrypt many files (2^-56 prefix collision bound per pair).

use std::io::{Read, Write};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

/// File magic and version.
pub const MAGIC: &[u8; 8] = b"lucentw1";
/// Header length.
pub const HEADER_LEN: usize = 8 + 4 + 7;
/// Tag length per chunk.
pub const TAG_LEN: usize = 16;
/// Default plaintext bytes per chunk (1 MiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// Smallest chunk size accepted.
pub const MIN_CHUNK_SIZE: u32 = 64;
/// Largest chunk size accepted (16 MiB).
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;
/// Model-weights key length.
pub const KEY_LEN: usize = 32;

/// The model-weights key, zeroised on drop and never printed.
#[derive(Clone)]
pub struct WeightsKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for WeightsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeightsKey(..)")
    }
}

impl WeightsKey {
    /// A fresh random key.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut k[..]);
        WeightsKey(k)
    }

    /// A key from its bytes (exactly [`KEY_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WeightsError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(WeightsError::KeyLength { got: bytes.len() });
        }
        k.copy_from_slice(bytes);
        Ok(WeightsKey(k))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Why encryption or decryption failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// A key of the wrong length.
    #[error("weights key is {got} bytes, need {KEY_LEN}")]
    KeyLength {
        /// Length given.
        got: usize,
    },
    /// Reading or writing failed.
    #[error("weights I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Not a `lucentw1` file, or a chunk size out of bounds.
    #[error("not a lucentw1 weights file: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: String,
    },
    /// A chunk is shorter than its tag (the file was cut).
    #[error("weights file truncated in chunk {chunk}")]
    Truncated {
        /// Chunk index.
        chunk: u64,
    },
    /// A chunk did not authenticate (wrong key, tampered, reordered, cut or extended).
    #[error("weights chunk {chunk} did not authenticate")]
    Aead {
        /// Chunk index.
        chunk: u64,
    },
    /// More chunks than the 32-bit counter allows.
    #[error("weights file has more than 2^32 chunks")]
    TooManyChunks,
    /// A chunk size out of bounds was asked for.
    #[error("chunk size {got} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}")]
    ChunkSize {
        /// Size asked for.
        got: u32,
    },
}

fn chunk_nonce(prefix: &[u8], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encrypts `input` to `output`, streaming, in chunks of `chunk_size` bytes. Returns the
/// number of plaintext bytes.
pub fn encrypt<R: CryptoRngCore + ?Sized>(
    key: &WeightsKey,
    chunk_size: u32,
    mut input: impl Read,
    mut output: impl Write,
    rng: &mut R,
) -> Result<u64, WeightsError> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(WeightsError::ChunkSize { got: chunk_size });
    }
    let aead = ChaCha20Poly1305::new(key.as_bytes().into());
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&chunk_size.to_be_bytes());
    rng.fill_bytes(&mut header[12..]);
    output.write_all(&header)?;

    let size = chunk_size as usize;
    let mut cur = Zeroizing::new(vec![0u8; size]);
    let mut next = Zeroizing::new(vec![0u8; size]);
    let mut cur_len = read_full(&mut input, &mut cur)?;
    let mut index: u32 = 0;
    let mut total: u64 = 0;
    loop {
        // A full chunk is the last one only if nothing follows it.
        let next_len = if cur_len == size {
            read_full(&mut input, &mut next)?
        } else {
            0
        };
        let last = next_len == 0;
        let nonce = chunk_nonce(&header[12..], index, last);
        let tag = aead
            .encrypt_in_place_detached((&nonce).into(), &header, &mut cur[..cur_len])
            .map_err(|_| WeightsError::Aead {
                chunk: u64::from(index),
            })?;
        output.write_all(&cur[..cur_len])?;
        output.write_all(&tag)?;
        total += cur_len as u64;
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        index = index.checked_add(1).ok_or(WeightsError::TooManyChunks)?;
    }
    output.flush()?;
    Ok(total)
}

/// Decrypts a whole `lucentw1` file in memory.
pub fn decrypt(key: &WeightsKey, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, WeightsError> {
    if file.len() < HEADER_LEN {
        return Err(WeightsError::BadHeader {
            reason: format!("{} bytes, header is {HEADER_LEN}", file.len()),
        });
    }
    let (header, mut rest) = file.split_at(HEADER_LEN);
    if &header[..8] != MAGIC {
        return Err(WeightsError::BadHeader {
            reason: "wrong magic".into(),
        });
    }
    let chunk_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(WeightsError::BadHeader {
            reason: format!("chunk size {chunk_size}"),
        });
    }
    let full = chunk_size as usize + TAG_LEN;
    let aead = ChaCha20Poly1305::new(key.as_bytes().into());
    let mut out = Zeroizing::new(Vec::with_capacity(rest.len()));
    let mut index: u32 = 0;
    loop {
        let last = rest.len() <= full;
        let take = rest.len().min(full);
        if take < TAG_LEN {
            return Err(WeightsError::Truncated {
                chunk: u64::from(index),
            });
        }
        let (chunk, tail) = rest.split_at(take);
        let (ct, tag) = chunk.split_at(take - TAG_LEN);
        let start = out.len();
        out.extend_from_slice(ct);
        let nonce = chunk_nonce(&header[12..], index, last);
        aead.decrypt_in_place_detached((&nonce).into(), header, &mut out[start..], tag.into())
            .map_err(|_| WeightsError::Aead {
                chunk: u64::from(index),
            })?;
        if last {
            return Ok(out);
        }
        rest = tail;
        index = index.checked_add(1).ok_or(WeightsError::TooManyChunks)?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn enc(key: &WeightsKey, chunk: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = encrypt(key, chunk, data, &mut out, &mut rand_core::OsRng).unwrap();
        assert_eq!(n, data.len() as u64);
        out
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let key = WeightsKey::generate(&mut rand_core::OsRng);
        for len in [0usize, 1, 63, 64, 65, 128, 129, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let file = enc(&key, 64, &data);
            let chunks = if len == 0 { 1 } else { len.div_ceil(64) };
            assert_eq!(file.len(), HEADER_LEN + len + chunks * TAG_LEN, "len {len}");
            if len >= 16 {
                // Ciphertext, not plaintext, is stored.
                assert_ne!(&file[HEADER_LEN..HEADER_LEN + 16], &data[..16]);
            }
            assert_eq!(&decrypt(&key, &file).unwrap()[..], &data[..]);
        }
    }

    #[test]
    fn wrong_key_tamper_truncation_extension_reorder() {
        let key = WeightsKey::generate(&mut rand_core::OsRng);
        let data = vec![0xabu8; 64 * 3 + 10];
        let file = enc(&key, 64, &data);
        let other = WeightsKey::generate(&mut rand_core::OsRng);
        assert!(matches!(
            decrypt(&other, &file),
            Err(WeightsError::Aead { chunk: 0 })
        ));
        // Every bit of the file matters.
        for i in 0..file.len() * 8 {
            let mut bad = file.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decrypt(&key, &bad).is_err(), "bit {i}");
        }
        // Every truncation is refused (cut at a chunk boundary loses the last flag).
        for n in 0..file.len() {
            assert!(decrypt(&key, &file[..n]).is_err(), "cut at {n}");
        }
        // Extension by a copy of a chunk is refused.
        let full = 64 + TAG_LEN;
        let mut ext = file.clone();
        ext.extend_from_slice(&file[HEADER_LEN..HEADER_LEN + full]);
        assert!(decrypt(&key, &ext).is_err());
        // Swapping two full chunks is refused.
        let mut swapped = file.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + full);
        let first = file[a..a + full].to_vec();
        swapped.copy_within(b..b + full, a);
        swapped[b..b + full].copy_from_slice(&first);
        assert!(matches!(
            decrypt(&key, &swapped),
            Err(WeightsError::Aead { chunk: 0 })
        ));
    }

    #[test]
    fn bad_headers_and_chunk_sizes() {
        let key = WeightsKey::generate(&mut rand_core::OsRng);
        assert!(matches!(
            encrypt(&key, 8, &b""[..], Vec::new(), &mut rand_core::OsRng),
            Err(WeightsError::ChunkSize { got: 8 })
        ));
        let mut file = enc(&key, 64, b"x");
        file[0] = b'X';
        assert!(matches!(
            decrypt(&key, &file),
            Err(WeightsError::BadHeader { .. })
        ));
        assert!(WeightsKey::from_bytes(&[0; 31]).is_err());
    }
}
