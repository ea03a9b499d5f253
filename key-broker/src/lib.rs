//! Lucent key broker: releases the model-weights key only to confidential VMs whose
//! attestation bundle verifies, with [`lucent_verifier::bundle::verify_bundle`], against a
//! release in the transparency log (DESIGN.md flow 4).
//!
//! What it does:
//! - issues single-use nonces with a short lifetime ([`nonce`]), keeping no state for them
//!   (each carries its expiry and a MAC), so a flood of nonce requests cannot crowd out a
//!   CVM's; a CVM binds one into its evidence's `report_data` ([`lucent_verifier::binding`]),
//!   so evidence cannot be replayed, and a stale, unknown or reused nonce is refused with its
//!   own error;
//! - verifies the CVM's bundle (checkpoint signature, witness quorum, consistency with the
//!   broker's last seen checkpoint, inclusion of the release, operator signature, expiry and
//!   revocation, evidence chain and policy, measurement, key and nonce binding) ([`broker`]);
//! - follows the log itself ([`lucent_client::follow`]): reads every entry up to a witnessed
//!   checkpoint, so a release revoked in the log is refused with no configuration change;
//!   stops releasing when its view covers less than the CVM's checkpoint or was last
//!   confirmed longer ago than `max_log_view_age_secs` ([`config`]);
//! - keeps its last seen checkpoint in one file, replaced only after a successful
//!   verification (`lucent_client::AtomicFile`: write, fsync, rename, fsync the directory);
//! - seals the weights key to the CVM's attested HPKE key config with RFC 9458 framing
//!   under labels of its own; only the CVM holding the private key can open it. The messages,
//!   the sealing and the weights-at-rest format are the contract in
//!   [`lucent_verifier::key_release`], which the CVM uses too.
//!
//! What it does not do: fetch proofs for the CVM (the CVM brings the consistency proof from
//! the broker's last seen size, which the nonce answer tells it), or keep any state on disk
//! but the checkpoint (the view of the log is read again after a restart).
//!
//! HTTP ([`api`]): `POST /v1/nonce`, `POST /v1/key`; errors are
//! `{"error": code, "message": text}` from one `IntoResponse` ([`error::BrokerError`]).
//!
//! Simulated evidence is accepted only by a build with the `dangerous-simulated-tee` feature
//! and `[trust.dangerous] trust_simulated_root = true` ([`config`]); other builds refuse it.
//!
//! The weights the broker's key unlocks, encrypted at rest:
//!
//! ```
//! use lucent_verifier::key_release::weights::{decrypt, encrypt, WeightsKey, DEFAULT_CHUNK_SIZE};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = WeightsKey::generate(&mut rand_core::OsRng);
//! let mut file = Vec::new();
//! encrypt(&key, DEFAULT_CHUNK_SIZE, &b"model weights"[..], &mut file, &mut rand_core::OsRng)?;
//! assert_eq!(&decrypt(&key, &file)?[..], b"model weights");
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod broker;
pub mod cli;
pub mod config;
pub mod error;
pub mod nonce;

pub use api::{app, run};
pub use broker::{Broker, BrokerConfig};
pub use error::BrokerError;
