//! Lucent CVM runtime: the service that runs inside the confidential VM.
//!
//! It attests, checks that its own release is in the transparency log, receives the
//! model-weights key from the key broker, answers HPKE-encrypted requests with the model,
//! and keeps nothing.

/// The language model (SmolLM2 in burn) behind summaries and writing suggestions.
pub mod model;
