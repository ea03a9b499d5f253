//! `lucent-auditor`: the auditor's and operator's tool for Lucent's transparency log.
//!
//! It needs nothing but the log's public files (C2SP `tlog-tiles`: `/checkpoint`,
//! `/tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]`), served over HTTP or mirrored to a
//! directory, plus the keys it is told to trust. Every check is made with
//! [`lucent_verifier`], the same code clients, the key broker and the CVM run: this crate
//! only fetches, stores and prints.
//!
//! What it does:
//! - [`audit::check_checkpoint`]: fetch the checkpoint, verify the log signature and the
//!   witness quorum, prove it consistent with the last one seen (kept in a [`state::StateDir`])
//!   from hash tiles, and only then store it. A split view keeps both checkpoints and the
//!   failed proof as evidence.
//! - [`audit::inclusion`], [`audit::consistency`]: proofs computed from tiles authenticated
//!   against a verified checkpoint.
//! - [`monitor::run`]: follow the log entry bundle by entry bundle, recompute the root,
//!   verify every statement, list releases, key configs and revocations; resumable.
//! - [`witness`]: a C2SP `tlog-witness` server (`cosignature/v1`) with durable per-origin state.
//! - [`measure`]: the expected SEV-SNP launch digest (the `sev` crate's measurement module)
//!   checked against a release statement.
//! - [`image`]: the CVM image (firmware, kernel, initrd holding the runtime and its
//!   configuration) built reproducibly, its manifest, and a rebuild compared with a logged
//!   release.
//! - [`publish`]: operator keys; signing and submitting `release`, `keyconfig`, `revoke`.
//! - [`bundle`]: a CVM's attestation bundle checked offline, step by step.
//!
//! What it does not do: trust the log's JSON endpoints for anything but hints (which index
//! to prove), or write unverified data into its state.
//!
//! Exit codes of the `lucent-auditor` binary:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok: everything checked out |
//! | 1 | verification failed: bad signature, quorum not met, split view, rollback, bad proof, corrupted tile, root mismatch, unsigned statement, measurement mismatch |
//! | 2 | could not check: log unreachable, HTTP error, file missing, state unreadable |
//! | 64 | usage: bad command line or key |
//!
//! ```
//! use lucent_verifier::merkle::{LeafHash, MemoryTree};
//! use lucent_verifier::tiles::CompactRange;
//!
//! # fn main() -> Result<(), lucent_verifier::tiles::CompactRangeError> {
//! // The monitor recomputes roots from entries with a compact range (O(log n) state).
//! let (mut range, mut tree) = (CompactRange::new(), MemoryTree::new());
//! for e in [&b"a"[..], b"b", b"c"] {
//!     range.push(LeafHash::of_entry(e))?;
//!     tree.push_entry(e);
//! }
//! assert_eq!(range.root(), tree.root());
//! # Ok(())
//! # }
//! ```

pub mod audit;
pub mod bundle;
pub mod cli;
pub mod error;
pub mod fetch;
pub mod image;
pub mod measure;
pub mod monitor;
pub mod publish;
pub mod state;
pub mod witness;

pub use error::AuditError;

/// Exit code: everything checked out.
pub const EXIT_OK: u8 = 0;
/// Exit code: verification failed (evidence of a bad log, witness or file).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: could not check (network, files, local state).
pub const EXIT_CANNOT_CHECK: u8 = 2;
/// Exit code: bad command line (BSD `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
