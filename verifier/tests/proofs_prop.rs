//! Property tests: for random trees, every generated proof verifies and any single change
//! to a hash, the index or a size makes it fail.

use lucent_verifier::merkle::{
    ConsistencyProof, Hash, InclusionProof, LeafHash, MemoryTree, TreeSize,
};
use proptest::prelude::*;

fn tree(n: u64, seed: u64) -> MemoryTree {
    let mut t = MemoryTree::new();
    for i in 0..n {
        t.push_entry(&[seed.to_be_bytes(), i.to_be_bytes()].concat());
    }
    t
}

fn flip(h: &Hash, byte: usize, bit: u8) -> Hash {
    let mut out = *h;
    out.0[byte % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inclusion_verifies_and_any_change_fails(
        size in 1u64..300, index_seed in any::<u64>(), seed in any::<u64>(),
        pick in any::<usize>(), byte in any::<usize>(), bit in any::<u8>(), delta in 1u64..5,
    ) {
        // The tree holds a few more leaves, so other sizes have real roots to be checked against.
        let t = tree(size + 5, seed);
        let index = index_seed % size;
        let root = t.root_at(size).expect("root");
        let leaf = LeafHash::of_entry(&[seed.to_be_bytes(), index.to_be_bytes()].concat());
        let proof = t.prove_inclusion(index, size).expect("in range");
        prop_assert_eq!(proof.verify(&leaf, &root), Ok(()));

        // A changed leaf or root.
        prop_assert!(proof.verify(&LeafHash(flip(&leaf.0, byte, bit)), &root).is_err());
        prop_assert!(proof.verify(&leaf, &flip(&root, byte, bit)).is_err());
        // A changed proof hash.
        if !proof.hashes.is_empty() {
            let mut p = proof.clone();
            let i = pick % p.hashes.len();
            p.hashes[i] = flip(&p.hashes[i], byte, bit);
            prop_assert!(p.verify(&leaf, &root).is_err());
        }
        // A changed index.
        let moved = InclusionProof { index: index ^ delta, ..proof.clone() };
        prop_assert!(moved.verify(&leaf, &root).is_err());
        // The same path claimed for another tree size, checked against that size's root.
        let grown = InclusionProof { size: TreeSize(size + delta), ..proof.clone() };
        prop_assert!(grown.verify(&leaf, &t.root_at(size + delta).expect("root")).is_err());
        if size > delta && index < size - delta {
            let shrunk = InclusionProof { size: TreeSize(size - delta), ..proof.clone() };
            prop_assert!(shrunk.verify(&leaf, &t.root_at(size - delta).expect("root")).is_err());
        }
    }

    #[test]
    fn consistency_verifies_and_any_change_fails(
        new in 2u64..300, old_seed in any::<u64>(), seed in any::<u64>(),
        pick in any::<usize>(), byte in any::<usize>(), bit in any::<u8>(), delta in 1u64..5,
    ) {
        let t = tree(new + 5, seed);
        let old = 1 + old_seed % (new - 1);
        let (r1, r2) = (t.root_at(old).expect("root"), t.root_at(new).expect("root"));
        let proof = t.prove_consistency(old, new).expect("in range");
        prop_assert_eq!(proof.verify(&r1, &r2), Ok(()));

        prop_assert!(proof.verify(&flip(&r1, byte, bit), &r2).is_err());
        prop_assert!(proof.verify(&r1, &flip(&r2, byte, bit)).is_err());
        if !proof.hashes.is_empty() {
            let mut p = proof.clone();
            let i = pick % p.hashes.len();
            p.hashes[i] = flip(&p.hashes[i], byte, bit);
            prop_assert!(p.verify(&r1, &r2).is_err());
        }
        // The same hashes claimed for other sizes, checked against those sizes' roots.
        let root = |n: u64| t.root_at(n).expect("root");
        if old + delta <= new {
            let p = ConsistencyProof { old: TreeSize(old + delta), ..proof.clone() };
            prop_assert!(p.verify(&root(old + delta), &r2).is_err());
        }
        let p = ConsistencyProof { new: TreeSize(new + delta), ..proof.clone() };
        prop_assert!(p.verify(&r1, &root(new + delta)).is_err());
        if old > delta {
            let p = ConsistencyProof { old: TreeSize(old - delta), ..proof.clone() };
            prop_assert!(p.verify(&root(old - delta), &r2).is_err());
        }
    }
}
