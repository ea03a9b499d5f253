//! The CVM runtime's HTTP contract with clients: the routes, the plaintext of a sealed
//! request and of its sealed answer, and the status answer. The runtime serialises and
//! deserialises these types, and so does `lucent-client`; nobody declares them again.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/attestation[?nonce=<base64>]` | — | `lucent/bundle/v1` JSON ([`crate::bundle::Bundle`]) |
//! | `POST /v1/summarize`, `POST /v1/suggest` | RFC 9458 request ([`crate::encapsulation`], `message/ohttp-req`) sealing a [`TaskRequest`] | sealed [`TaskReply`] (`message/ohttp-res`), HTTP 200 |
//! | `GET /v1/status` | — | [`Status`] |
//! | any failure before the request is opened | — | [`crate::log_api::ErrorBody`] |
//!
//! **What the wire shows.** Once a request has been opened, every outcome (the answer, a
//! request the model refuses, a busy or timed-out model, a malformed plaintext) is sealed to
//! the client as a [`TaskReply`] with HTTP 200: the network and the operator see neither
//! the error nor its details. Both plaintexts are padded with trailing spaces (which JSON
//! ignores) to the next of [`PADDING_BUCKETS`] ([`pad_to_bucket`]), so the ciphertext's
//! length tells only the bucket: a request adds 55 bytes of framing to its bucket, an answer
//! its response nonce and tag (32 bytes with AES-128-GCM, 48 with ChaCha20-Poly1305).

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::log_api::ErrorBody;

/// Plaintext sizes (bytes) that sealed requests and answers are padded to: the smallest that
/// holds the JSON, or above the largest, the next multiple of the largest.
pub const PADDING_BUCKETS: [usize; 4] = [1024, 4096, 16384, 65536];

/// The padded size of a `len`-byte plaintext.
pub fn padded_len(len: usize) -> usize {
    let largest = PADDING_BUCKETS[PADDING_BUCKETS.len() - 1];
    PADDING_BUCKETS
        .iter()
        .copied()
        .find(|&b| b >= len)
        .unwrap_or_else(|| len.div_ceil(largest).saturating_mul(largest))
}

/// Pads a JSON plaintext with spaces to [`padded_len`]: the JSON reads the same.
pub fn pad_to_bucket(plaintext: &mut Vec<u8>) {
    plaintext.resize(padded_len(plaintext.len()), b' ');
}

/// The attestation route.
pub const ATTESTATION_PATH: &str = "/v1/attestation";
/// The status route.
pub const STATUS_PATH: &str = "/v1/status";

/// The tasks a CVM offers, each on its own route.
///
/// Not `non_exhaustive`: a new task must be handled (routed, prompted) everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// Summarise a conversation: `POST /v1/summarize`.
    Summarize,
    /// Suggest a better wording of a draft: `POST /v1/suggest`.
    Suggest,
}

impl Task {
    /// Every task.
    pub const ALL: [Task; 2] = [Task::Summarize, Task::Suggest];

    /// Its route.
    pub fn path(self) -> &'static str {
        match self {
            Task::Summarize => "/v1/summarize",
            Task::Suggest => "/v1/suggest",
        }
    }
}

/// The plaintext of a sealed request. The text is wiped from memory when dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// The user's text (a conversation to summarise, a draft to improve).
    pub text: String,
    /// At most this many tokens of output (the CVM caps it at its own limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// The plaintext of a sealed answer. The output is wiped from memory when dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct TaskAnswer {
    /// The model's text.
    pub output: String,
    /// Tokens generated.
    pub tokens: u32,
    /// The CVM's own account of the model's time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ms: Option<u64>,
}

/// The plaintext of every sealed answer: the model's answer, or why the opened request got
/// none (`bad_request`, `model_refused`, `busy`, `timeout`, `internal`), sealed so that only
/// the client learns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskReply {
    /// The answer.
    Answer(TaskAnswer),
    /// The refusal, in the error body every service uses.
    Error(ErrorBody),
}

/// Whether the CVM serves (`open`) or refuses everything (`closed`), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `open` or `closed`.
    pub state: String,
    /// `open`, or the reason code of the closed state (`not_logged`, `revoked`, …).
    pub code: String,
    /// The CVM's measurement, hex, once attested.
    #[serde(default)]
    pub measurement: Option<String>,
    /// Size of the log checkpoint the last self-check verified.
    #[serde(default)]
    pub log_size: Option<u64>,
    /// Index of the CVM's release in the log (open only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_index: Option<u64>,
    /// Why it is closed, for people (closed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The key id of the CVM's HPKE key config.
    pub key_id: u8,
    /// Which attester produced the evidence.
    pub attester: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_refuses_unknown_fields_and_round_trips() {
        let r: TaskRequest = serde_json::from_str(r#"{"text":"hi"}"#).unwrap();
        assert_eq!(r.max_tokens, None);
        assert!(serde_json::from_str::<TaskRequest>(r#"{"text":"hi","x":1}"#).is_err());
        assert!(serde_json::from_str::<TaskRequest>(r#"{"max_tokens":1}"#).is_err());
        let a = TaskAnswer {
            output: "ok".into(),
            tokens: 1,
            model_ms: Some(5),
        };
        let back: TaskAnswer = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert_eq!(Task::Suggest.path(), "/v1/suggest");
    }

    #[test]
    fn padding_fills_buckets_and_json_reads_the_same() {
        for (len, want) in [
            (0, 1024),
            (1, 1024),
            (1024, 1024),
            (1025, 4096),
            (16_385, 65_536),
            (65_536, 65_536),
            (65_537, 131_072),
            (200_000, 262_144),
        ] {
            assert_eq!(padded_len(len), want, "{len}");
        }
        let mut short = serde_json::to_vec(&TaskRequest {
            text: "hi".into(),
            max_tokens: None,
        })
        .unwrap();
        let mut long = serde_json::to_vec(&TaskRequest {
            text: "a much longer message about the meeting on Friday".into(),
            max_tokens: Some(9),
        })
        .unwrap();
        pad_to_bucket(&mut short);
        pad_to_bucket(&mut long);
        assert_eq!(short.len(), long.len());
        let back: TaskRequest = serde_json::from_slice(&long).unwrap();
        assert_eq!(back.max_tokens, Some(9));
    }

    #[test]
    fn a_reply_is_an_answer_or_an_error() {
        let answer: TaskReply = serde_json::from_str(r#"{"output":"ok","tokens":1}"#).unwrap();
        assert!(matches!(answer, TaskReply::Answer(a) if a.output == "ok"));
        let error: TaskReply =
            serde_json::from_str(r#"{"error":"busy","message":"2 running"}"#).unwrap();
        assert!(matches!(error, TaskReply::Error(e) if e.error == "busy"));
        assert!(serde_json::from_str::<TaskReply>(r#"{"tokens":1}"#).is_err());
    }
}
