//! Lucent's verification core.

// --- attestation (issue 4) modules ---
// --- end attestation ---
