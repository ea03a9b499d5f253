//! Lucent's verification core.
