//! Lucent's verification core: the checks every party runs, in one place.
//!
//! Clients, the key broker, the CVM itself, the log server and auditors all call this crate
//! to decide whether to trust something. It is pure: it takes bytes, keys and the time as
//! arguments and has no I/O, no clock and no async runtime, so the same code runs anywhere.
//!
//! What it implements:
//! - [`merkle`]: RFC 6962 / RFC 9162 leaf and node hashing, inclusion and consistency proofs;
//! - [`note`]: C2SP `signed-note` keys, opening and signing;
//! - [`checkpoint`]: C2SP `tlog-checkpoint` parsing, signing and verification;
//! - [`cosignature`]: C2SP `tlog-cosignature` (`cosignature/v1`) and k-of-n witness policies;
//! - [`statement`]: Lucent's `release`, `keyconfig` and `revoke` log entries;
//! - [`last_seen`]: consistency of a new checkpoint with the last one seen (split views);
//! - [`tlog_proof`]: C2SP `tlog-proof`, the offline proof that an entry is logged.
//!
//! What it does not do: fetch anything, store anything, or keep time.
//!
//! ```
//! use lucent_verifier::checkpoint::{verify_witnessed, Checkpoint, LogKey};
//! use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
//! use lucent_verifier::merkle::{LeafHash, MemoryTree};
//! use lucent_verifier::note::{append_signatures, NoteSigner};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand_core::OsRng;
//! let log = NoteSigner::generate(&mut rng, "log.example.com")?;
//! let witness = WitnessSigner::generate(&mut rng, "witness.example.com")?;
//!
//! // The log appends entries and signs a checkpoint; a witness cosigns it.
//! let mut tree = MemoryTree::new();
//! for entry in [&b"first"[..], b"second", b"third"] {
//!     tree.push_entry(entry);
//! }
//! let cp = Checkpoint { origin: "log.example.com".into(), size: tree.size(), root: tree.root(), extension: String::new() };
//! let note = cp.sign(&log)?;
//! let note = append_signatures(&note, &[witness.cosign(&cp.to_text()?, 1_700_000_000)])?;
//!
//! // A client checks the checkpoint against the log key and a 1-of-1 witness policy,
//! // then an inclusion proof under it.
//! let policy = WitnessPolicy::new(vec![witness.witness_key()], 1)?;
//! let trusted = verify_witnessed(&note, &LogKey::new(log.verifier_key()), &policy)?;
//! let proof = tree.prove_inclusion(1, 3)?;
//! proof.verify(&LeafHash::of_entry(b"second"), &trusted.checkpoint().root)?;
//! # Ok(())
//! # }
//! ```

pub mod checkpoint;
pub mod cosignature;
pub mod last_seen;
pub mod merkle;
pub mod note;
pub mod statement;
pub mod tlog_proof;

// --- attestation (issue 4) modules ---
// --- end attestation ---
