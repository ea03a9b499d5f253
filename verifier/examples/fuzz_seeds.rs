//! Writes valid seed inputs for the fuzz targets (signed statements, a checkpoint, a
//! tlog-proof) with the same fixed keys the targets use.
//!
//! Run: `cargo run -p lucent-verifier --example fuzz_seeds -- fuzz/seeds`

use std::path::PathBuf;

use lucent_verifier::checkpoint::Checkpoint;
use lucent_verifier::cosignature::WitnessSigner;
use lucent_verifier::merkle::{MemoryTree, TreeSize};
use lucent_verifier::note::{append_signatures, NoteSigner};
use lucent_verifier::statement::{KeyConfig, Measurement, Platform, Release, Revoke, Statement};
use lucent_verifier::tlog_proof::TlogProof;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    let op = NoteSigner::from_seed("operator.example", &[3; 32])?;
    let log = NoteSigner::from_seed("log.example", &[1; 32])?;
    let witness = WitnessSigner::from_seed("witness.example", &[2; 32])?;

    let release = Statement::Release(Release::example(
        Measurement::new(Platform::SevSnp, &[0x5a; 48])?,
        1_900_000_000,
    ));
    let keyconfig = Statement::KeyConfig(KeyConfig {
        key_id: 1,
        config: vec![1, 0, 32, 0xaa, 0xbb],
        not_before: 1_700_000_000,
        not_after: 1_800_000_000,
    });
    let revoke = Statement::Revoke(Revoke {
        measurement: Measurement::new(Platform::Tdx, &[7; 240])?,
        reason: "superseded by 1.0.1".into(),
    });
    let dir = out.join("statement");
    std::fs::create_dir_all(&dir)?;
    let mut tree = MemoryTree::new();
    for (name, st) in [
        ("release", &release),
        ("keyconfig", &keyconfig),
        ("revoke", &revoke),
    ] {
        let note = st.sign(&op)?;
        std::fs::write(dir.join(format!("{name}.note")), &note)?;
        std::fs::write(dir.join(format!("{name}.txt")), st.to_text())?;
        tree.push_entry(&note);
    }

    let cp = Checkpoint {
        origin: "log.example".into(),
        size: TreeSize(tree.size().0),
        root: tree.root(),
        extension: String::new(),
    };
    let note = cp.sign(&log)?;
    let note = append_signatures(&note, &[witness.cosign(&cp.to_text()?, 1_700_000_000)])?;
    std::fs::create_dir_all(out.join("checkpoint"))?;
    std::fs::write(out.join("checkpoint/lucent-witnessed.note"), &note)?;

    let proof = TlogProof {
        extra: None,
        index: 1,
        hashes: tree.prove_inclusion(1, 3)?.hashes,
        checkpoint: note,
    };
    std::fs::create_dir_all(out.join("proof"))?;
    std::fs::write(out.join("proof/keyconfig.tlog-proof"), proof.to_bytes())?;
    println!("seeds written under {}", out.display());
    Ok(())
}
