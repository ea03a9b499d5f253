//! A compact range: the roots of the perfect subtrees covering a tree's leaves, enough to
//! extend the tree and compute its RFC 6962 root with O(log n) state. The monitor keeps one
//! so it can resume from where it stopped without re-reading the log.

use lucent_verifier::merkle::{node_hash, Hash, LeafHash};
use serde::{Deserialize, Serialize};

/// Roots of the perfect subtrees of a tree, left to right (one per set bit of the size).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

/// Why a stored compact range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compact range for size {size} has {got} hashes, want {want}")]
pub struct BadCompactRange {
    /// Claimed size.
    pub size: u64,
    /// Hashes given.
    pub got: usize,
    /// Hashes a range of that size has.
    pub want: usize,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from stored parts, checking the shape.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, BadCompactRange> {
        let want = size.count_ones() as usize;
        if hashes.len() != want {
            return Err(BadCompactRange {
                size,
                got: hashes.len(),
                want,
            });
        }
        Ok(CompactRange { size, hashes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, left to right.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf.
    pub fn push(&mut self, leaf: LeafHash) {
        let mut h = leaf.0;
        let mut s = self.size;
        // Each trailing one bit is a perfect subtree of the same height: merge it.
        while s & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            s >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The RFC 6962 root of the tree.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return Hash::empty_tree();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Serialisable form (hex hashes) for the state directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredRange {
    /// Number of leaves.
    pub size: u64,
    /// Subtree roots, hex.
    pub hashes: Vec<String>,
}

impl From<&CompactRange> for StoredRange {
    fn from(r: &CompactRange) -> Self {
        StoredRange {
            size: r.size,
            hashes: r.hashes.iter().map(Hash::to_hex).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lucent_verifier::merkle::MemoryTree;

    #[test]
    fn matches_memory_tree_at_every_size() {
        let (mut r, mut t) = (CompactRange::new(), MemoryTree::new());
        assert_eq!(r.root(), t.root());
        for i in 0u32..600 {
            r.push(LeafHash::of_entry(&i.to_be_bytes()));
            t.push_entry(&i.to_be_bytes());
            assert_eq!(r.root(), t.root(), "size {}", i + 1);
            let again = CompactRange::from_parts(r.size(), r.hashes().to_vec()).unwrap();
            assert_eq!(again, r);
        }
        assert!(CompactRange::from_parts(3, vec![Hash::empty_tree()]).is_err());
    }
}
