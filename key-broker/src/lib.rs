//! Lucent key broker: releases the model-weights key only to confidential VMs whose
//! attestation bundle verifies (with `lucent-verifier`) against a logged release.
//!
//! Not yet implemented: this crate is a placeholder that later work fills (see the
//! key-release issue). It holds no logic of its own so far.
