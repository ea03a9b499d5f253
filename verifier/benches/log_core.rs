//! Checkpoint and inclusion verification beside the raw primitives they are made of,
//! measured in the same run: one Ed25519 verification and one SHA-256 node hash.
//!
//! Run: `cargo bench -p lucent-verifier --bench log_core`

// `criterion_group!` generates undocumented public items.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use lucent_verifier::checkpoint::{verify_checkpoint, Checkpoint, LogKey};
use lucent_verifier::merkle::{LeafHash, MemoryTree, TreeSize};
use lucent_verifier::note::NoteSigner;
use sha2::{Digest, Sha256};

fn bench(c: &mut Criterion) {
    // A tree of 2^20 leaves: the proof for any leaf holds exactly 20 hashes.
    let size: u64 = 1 << 20;
    let mut tree = MemoryTree::new();
    for i in 0..size {
        tree.push_entry(&i.to_be_bytes());
    }
    let index = 123_457;
    let proof = tree.prove_inclusion(index, size).expect("in tree");
    assert_eq!(proof.hashes.len(), 20);
    let leaf = LeafHash::of_entry(&index.to_be_bytes());
    let root = tree.root();

    let log = NoteSigner::from_seed("log.example.com", &[9; 32]).expect("name");
    let key = LogKey::new(log.verifier_key());
    let cp = Checkpoint {
        origin: "log.example.com".into(),
        size: TreeSize(size),
        root,
        extension: String::new(),
    };
    let note = cp.sign(&log).expect("sign");
    let text = cp.to_text().expect("text");

    // Raw primitives.
    let raw_key = SigningKey::from_bytes(&[9; 32]);
    let raw_sig = raw_key.sign(&text);
    let raw_vk = raw_key.verifying_key();
    c.bench_function("raw/ed25519_verify_checkpoint_text", |b| {
        b.iter(|| {
            raw_vk
                .verify(black_box(&text), black_box(&raw_sig))
                .expect("valid")
        })
    });
    let node = [7u8; 65];
    c.bench_function("raw/sha256_65_bytes_x20", |b| {
        b.iter(|| {
            for _ in 0..20 {
                black_box(Sha256::digest(black_box(&node)));
            }
        })
    });

    // Lucent.
    c.bench_function("lucent/inclusion_verify_20_hashes", |b| {
        b.iter(|| {
            proof
                .verify(black_box(&leaf), black_box(&root))
                .expect("valid")
        })
    });
    c.bench_function("lucent/checkpoint_verify", |b| {
        b.iter(|| verify_checkpoint(black_box(&note), &key).expect("valid"))
    });
    c.bench_function("lucent/checkpoint_and_inclusion", |b| {
        b.iter(|| {
            let signed = verify_checkpoint(black_box(&note), &key).expect("valid");
            proof.verify(&leaf, &signed.checkpoint.root).expect("valid");
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
