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
//! - [`cvm_api`]: the CVM runtime's HTTP contract (routes, sealed request and answer, status);
//! - [`cosignature`]: C2SP `tlog-cosignature` (`cosignature/v1`) and k-of-n witness policies;
//! - [`statement`]: Lucent's `release`, `keyconfig` and `revoke` log entries;
//! - [`last_seen`]: consistency of a new checkpoint with the last one seen (split views);
//! - [`log_api`]: the JSON answers of the log's HTTP API and the error answer of every service;
//! - [`tlog_proof`]: C2SP `tlog-proof`, the offline proof that an entry is logged;
//! - [`tiles`]: C2SP `tlog-tiles` paths, entry bundles, and the compact range (the tree's
//!   right edge) the log and its readers share;
//! - [`trust`]: what a party trusts (log key, witnesses and quorum, operators, vendor roots),
//!   read from configuration files and command lines with one set of rules;
//! - [`snp`] and [`tdx`]: AMD SEV-SNP reports and Intel TDX quotes checked against the pinned
//!   vendor roots, certificate validity at `now`, and a strict typed policy per platform;
//! - [`binding`]: the `report_data` that binds a CVM's HPKE key config (and a nonce) to its
//!   evidence;
//! - [`bundle`]: the attestation bundle a CVM hands out, and `verify_bundle`, which performs
//!   every step of a client's check in one call;
//! - [`key_release`]: the key-release protocol between a CVM and the key broker (nonce, key
//!   request and sealed-key messages, sealing the weights key to an attested key config) and
//!   the `lucentw1` weights-at-rest format;
//! - `simulated` (only with the `dangerous-simulated-tee` feature): a simulated SEV-SNP TEE
//!   for running the system without hardware, trusted only through
//!   `SnpTrust::dangerous_trust_simulated_root`, which exists only with the same feature;
//! - [`encapsulation`]: RFC 9458 request encapsulation and response sealing on HPKE;
//! - [`witness_protocol`]: C2SP `tlog-witness` requests and answers.
//!
//! What it does not do: fetch anything (evidence collateral and CRLs are passed in), store
//! anything, or keep time. The HTTP client an app embeds, and the durable store of the last
//! seen checkpoint, are the `lucent-client` crate, built on this one.
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
pub mod cvm_api;
pub mod encapsulation;
pub mod key_release;
pub mod last_seen;
pub mod log_api;
pub mod merkle;
pub mod note;
pub mod oblivious;
pub mod privacy_pass;
pub mod published;
pub mod statement;
pub mod tiles;
pub mod tlog_proof;
pub mod trust;
pub mod witness_protocol;

// Attestation modules.
pub mod binding;
pub mod bundle;
#[cfg(feature = "dangerous-simulated-tee")]
pub mod simulated;
pub mod snp;
pub mod tdx;
