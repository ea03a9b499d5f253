//! Lucent CVM runtime: the service that runs inside the confidential VM.
//!
//! It attests, checks that its own release is in the transparency log, receives the
//! model-weights key from the key broker, answers HPKE-encrypted requests with the model,
//! and keeps nothing (DESIGN.md flows 3 to 5).
//!
//! What it does:
//! - [`attester`]: hardware evidence for a 64-byte `report_data` from Linux configfs-tsm
//!   (SEV-SNP, TDX), `/dev/sev-guest`, or the simulated TEE (only in builds with the
//!   `dangerous-simulated-tee` feature, and only with `dangerous_simulated_tee`);
//! - [`boot`]: at start and every `recheck_secs`, a fresh self-check: evidence binding this
//!   boot's HPKE key config, the runtime's own view of the log brought up to date (every
//!   entry read and checked against a witnessed checkpoint, `lucent_client::follow`), its
//!   release found there by measurement, verified with
//!   `lucent_verifier::bundle::verify_bundle` under the measured configuration's log key,
//!   witness policy and operators, with every logged revocation. Through an outage of the
//!   log or the witnesses it stays open on its last view for `max_log_view_age_secs`, never
//!   past its release's not-after. Anything else leaves it **closed**: no key requested, no
//!   bundle (so no key config) handed out, and every request answered with a specific error
//!   naming the measurement and the log size checked ([`error::Closed`]);
//! - [`key_release`]: the broker's nonce bound in fresh evidence, the sealed weights key
//!   opened with this boot's private key, the `lucentw1` weights decrypted in memory and
//!   checked against the release's model digest;
//! - [`api`]: the HTTP contract clients (`lucent_client`) use:
//!   `GET /v1/attestation[?nonce=<base64, 16..=64 bytes>]` → the `lucent/bundle/v1` JSON;
//!   `POST /v1/summarize` and `POST /v1/suggest` → an RFC 9458 encapsulated request
//!   (labels `MediaLabels::LUCENT_CVM`) with plaintext `{"text": string, "max_tokens": u32?}`,
//!   answered with the sealed response, plaintext `{"output": string, "tokens": u32,
//!   "model_ms": u64}`; errors `{"error": code, "message": text}`;
//! - [`init`]: as the image's init process (PID 1), the machine's set-up (mounts, the
//!   image's kernel modules), the image's configuration by default, and power-off at the end;
//! - statelessness: no disk writes after start-up (the key pair, the weights and every
//!   request live in memory only), allow-listed log fields (route, status, duration, codes,
//!   measurement, sizes — never bodies or queries), plaintext and key buffers in
//!   `Zeroizing`, core dumps disabled ([`hardening`]).
//!
//! What it does not do: publish its key config to the log. Logging a `keyconfig` statement
//! needs an operator signature (DESIGN.md: the operator publishes releases and key configs),
//! and the runtime holds no operator key; the operator reads the key config from
//! `/v1/attestation`, which only an open runtime answers, and publishes it.
//!
//! The measured configuration, and what the simulated TEE (feature
//! `dangerous-simulated-tee`) reports as the measurement: see [`config`].

pub mod api;
pub mod attester;
pub mod boot;
pub mod cli;
pub mod config;
pub mod error;
pub mod hardening;
pub mod init;
pub mod key_release;
pub mod runtime;

pub use api::{app, run};
pub use runtime::Runtime;
