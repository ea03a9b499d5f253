//! RFC 6962 / RFC 9162 Merkle tree hashing and proof verification.
//!
//! The arithmetic is `tlog_tiles`' (a port of Go's `golang.org/x/mod/sumdb/tlog`); this module
//! wraps it in small types that cannot hold a malformed value, and checks the exact proof
//! length first so that a wrong proof gets a specific error rather than a generic one.

use std::fmt;

use sha2::{Digest, Sha256};
use thiserror::Error;
use tlog_tiles::HashReader;

/// Length of every hash in the tree (SHA-256).
pub const HASH_LEN: usize = 32;

/// A proof for a tree of at most 2^64 leaves never holds more than this many hashes.
pub const MAX_PROOF_HASHES: usize = 64;

/// A node or root hash of the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// Reads a hash from exactly [`HASH_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ProofError> {
        <[u8; HASH_LEN]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| ProofError::HashLength { got: bytes.len() })
    }

    /// Parses lowercase or uppercase hex of exactly 32 bytes.
    pub fn from_hex(text: &str) -> Result<Self, ProofError> {
        let bytes = hex::decode(text).map_err(|_| ProofError::HashEncoding)?;
        Self::from_slice(&bytes)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The root of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1).
    pub fn empty_tree() -> Self {
        Hash(Sha256::digest([]).into())
    }

    pub(crate) fn to_tlog(self) -> tlog_tiles::Hash {
        tlog_tiles::Hash(self.0)
    }
}

impl From<tlog_tiles::Hash> for Hash {
    fn from(h: tlog_tiles::Hash) -> Self {
        Hash(h.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// The hash of one leaf: `SHA-256(0x00 ‖ entry bytes)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafHash(pub Hash);

impl LeafHash {
    /// Hashes the exact bytes of an entry as an RFC 6962 leaf.
    pub fn of_entry(entry: &[u8]) -> Self {
        LeafHash(tlog_tiles::record_hash(entry).into())
    }

    /// Takes an already computed leaf hash; it must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ProofError> {
        Hash::from_slice(bytes).map(LeafHash)
    }
}

impl fmt::Debug for LeafHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for LeafHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    tlog_tiles::node_hash(left.to_tlog(), right.to_tlog()).into()
}

/// The number of leaves in a tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct TreeSize(pub u64);

impl fmt::Display for TreeSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a proof was rejected.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ProofError {
    /// A hash was not 32 bytes.
    #[error("hash is {got} bytes, want 32")]
    HashLength {
        /// Length of the hash that was given.
        got: usize,
    },
    /// A hash was not valid hex.
    #[error("hash is not valid hex")]
    HashEncoding,
    /// An inclusion proof named a leaf outside the tree.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// A consistency proof went backwards.
    #[error("consistency proof from size {old} to smaller size {new}")]
    SizesReversed {
        /// The older (claimed smaller) tree size.
        old: u64,
        /// The newer tree size.
        new: u64,
    },
    /// Consistency from the empty tree is meaningless and rejected (as transparency-dev does).
    #[error("consistency proof from an empty tree")]
    EmptyOldTree,
    /// The proof has the wrong number of hashes for its index and sizes.
    #[error("proof has {got} hashes, want {want}")]
    WrongLength {
        /// Number of hashes in the proof.
        got: usize,
        /// Number the index and sizes require.
        want: usize,
    },
    /// The proof did not lead to the expected root hash(es).
    #[error("proof does not match the root hash")]
    RootMismatch,
}

/// Number of hashes an inclusion proof of `index` in a tree of `size` must hold
/// (RFC 9162 section 2.1.3.2). `index < size` must hold.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Number of hashes a consistency proof from `old` to `new` must hold
/// (RFC 9162 section 2.1.4.2). `0 < old < new` must hold.
fn consistency_proof_len(old: u64, new: u64) -> usize {
    let index = old - 1;
    let inner = 64 - (index ^ (new - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    let shift = old.trailing_zeros();
    // The proof starts with the root of the 2^shift subtree unless that subtree is the old tree.
    let seed = usize::from(old != 1u64 << shift);
    seed + (inner - shift + border) as usize
}

/// Reads a proof's hashes, rejecting any that is not 32 bytes and any path longer than a
/// 2^64-leaf tree allows.
fn proof_hashes(hashes: &[&[u8]]) -> Result<Vec<Hash>, ProofError> {
    if hashes.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength {
            got: hashes.len(),
            want: MAX_PROOF_HASHES,
        });
    }
    hashes.iter().map(|h| Hash::from_slice(h)).collect()
}

/// A proof that the leaf at `index` is in the tree of `size` leaves (RFC 6962 audit path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Zero-based position of the leaf.
    pub index: u64,
    /// Size of the tree the proof is for.
    pub size: TreeSize,
    /// The audit path, from the leaf's sibling upwards.
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Builds a proof from raw hash bytes, rejecting any that is not 32 bytes and any path
    /// longer than a 2^64-leaf tree allows.
    pub fn from_raw(index: u64, size: u64, hashes: &[&[u8]]) -> Result<Self, ProofError> {
        let hashes = proof_hashes(hashes)?;
        Ok(InclusionProof {
            index,
            size: TreeSize(size),
            hashes,
        })
    }

    /// Checks that `leaf` is at `self.index` in the tree of `self.size` whose root is `root`.
    pub fn verify(&self, leaf: &LeafHash, root: &Hash) -> Result<(), ProofError> {
        let (index, size) = (self.index, self.size.0);
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let want = inclusion_proof_len(index, size);
        if self.hashes.len() != want {
            return Err(ProofError::WrongLength {
                got: self.hashes.len(),
                want,
            });
        }
        let path: Vec<tlog_tiles::Hash> = self.hashes.iter().map(|h| h.to_tlog()).collect();
        tlog_tiles::check_record(&path, size, root.to_tlog(), index, leaf.0.to_tlog())
            .map_err(|_| ProofError::RootMismatch)
    }
}

/// A proof that the tree of `old` leaves is a prefix of the tree of `new` leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old: TreeSize,
    /// Size of the newer tree.
    pub new: TreeSize,
    /// The proof hashes (RFC 6962 section 2.1.2).
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Builds a proof from raw hash bytes (see [`InclusionProof::from_raw`]).
    pub fn from_raw(old: u64, new: u64, hashes: &[&[u8]]) -> Result<Self, ProofError> {
        let hashes = proof_hashes(hashes)?;
        Ok(ConsistencyProof {
            old: TreeSize(old),
            new: TreeSize(new),
            hashes,
        })
    }

    /// Checks that `old_root` (of `self.old` leaves) is a prefix of `new_root`
    /// (of `self.new` leaves).
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        let (old, new) = (self.old.0, self.new.0);
        if old > new {
            return Err(ProofError::SizesReversed { old, new });
        }
        if old == 0 {
            return Err(ProofError::EmptyOldTree);
        }
        let want = if old == new {
            0
        } else {
            consistency_proof_len(old, new)
        };
        if self.hashes.len() != want {
            return Err(ProofError::WrongLength {
                got: self.hashes.len(),
                want,
            });
        }
        let path: Vec<tlog_tiles::Hash> = self.hashes.iter().map(|h| h.to_tlog()).collect();
        tlog_tiles::check_tree(&path, new, new_root.to_tlog(), old, old_root.to_tlog())
            .map_err(|_| ProofError::RootMismatch)
    }
}

/// An append-only tree held in memory: every stored hash of the tree, in `tlog_tiles`'
/// storage order. It proves as well as verifies, so auditors can recompute a log's root from
/// its entries and tests can produce proofs for any (index, size).
#[derive(Default, Clone)]
pub struct MemoryTree {
    stored: Vec<tlog_tiles::Hash>,
    size: u64,
}

/// Failure inside [`MemoryTree`]: a request outside the tree.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("tree of size {size} cannot answer for index {index} / size {requested}")]
pub struct OutOfTree {
    /// Current size of the tree.
    pub size: u64,
    /// Requested index (or old size).
    pub index: u64,
    /// Requested tree size.
    pub requested: u64,
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.stored.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }

    /// Appends a leaf by its hash.
    pub fn push(&mut self, leaf: LeafHash) {
        let new = tlog_tiles::stored_hashes_for_record_hash(self.size, leaf.0.to_tlog(), self)
            .expect("a memory tree holds every hash it needs to extend itself");
        self.stored.extend(new);
        self.size += 1;
    }

    /// Appends an entry by its bytes.
    pub fn push_entry(&mut self, entry: &[u8]) {
        self.push(LeafHash::of_entry(entry));
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, OutOfTree> {
        self.check(0, size)?;
        tlog_tiles::tree_hash(size, self)
            .map(Hash::from)
            .map_err(|_| self.out_of_tree(0, size))
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        // A tree can always hash itself; `root_at(self.size)` cannot be out of range.
        self.root_at(self.size)
            .unwrap_or_else(|_| Hash::empty_tree())
    }

    /// Proof that leaf `index` is in the tree of the first `size` leaves.
    pub fn prove_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, OutOfTree> {
        self.check(index, size)?;
        if index >= size {
            return Err(self.out_of_tree(index, size));
        }
        let hashes = tlog_tiles::prove_record(size, index, self)
            .map_err(|_| self.out_of_tree(index, size))?;
        Ok(InclusionProof {
            index,
            size: TreeSize(size),
            hashes: hashes.into_iter().map(Hash::from).collect(),
        })
    }

    /// Proof that the first `old` leaves are a prefix of the first `new` leaves.
    pub fn prove_consistency(&self, old: u64, new: u64) -> Result<ConsistencyProof, OutOfTree> {
        self.check(old, new)?;
        if old == 0 || old > new {
            return Err(self.out_of_tree(old, new));
        }
        let hashes =
            tlog_tiles::prove_tree(new, old, self).map_err(|_| self.out_of_tree(old, new))?;
        Ok(ConsistencyProof {
            old: TreeSize(old),
            new: TreeSize(new),
            hashes: hashes.into_iter().map(Hash::from).collect(),
        })
    }

    fn check(&self, index: u64, requested: u64) -> Result<(), OutOfTree> {
        if requested > self.size {
            Err(self.out_of_tree(index, requested))
        } else {
            Ok(())
        }
    }

    fn out_of_tree(&self, index: u64, requested: u64) -> OutOfTree {
        OutOfTree {
            size: self.size,
            index,
            requested,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_lengths_match_generated_proofs() {
        let mut tree = MemoryTree::new();
        for i in 0..70u32 {
            tree.push_entry(&i.to_be_bytes());
        }
        for size in 1..=70 {
            for index in 0..size {
                let p = tree.prove_inclusion(index, size).expect("in range");
                assert_eq!(
                    p.hashes.len(),
                    inclusion_proof_len(index, size),
                    "{index}/{size}"
                );
            }
            for old in 1..size {
                let p = tree.prove_consistency(old, size).expect("in range");
                assert_eq!(
                    p.hashes.len(),
                    consistency_proof_len(old, size),
                    "{old}->{size}"
                );
            }
        }
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(
            MemoryTree::new().root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
