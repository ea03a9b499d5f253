//! Helpers for Lucent's end-to-end tests: starting real processes on loopback sockets.
