//! Lucent transparency log server.
