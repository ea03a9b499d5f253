//! Helpers for Lucent's end-to-end tests: starting real processes on loopback sockets,
//! waiting for them to be healthy, killing them with SIGKILL, and checking a log from the
//! outside with `lucent_verifier` only.

pub mod log_check;
pub mod log_process;
pub mod net;
