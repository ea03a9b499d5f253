//! The CVM runtime's HTTP contract with clients: the routes, the plaintext of a sealed
//! request and of its sealed answer, and the status answer. The runtime serialises and
//! deserialises these types, and so does `lucent-client`; nobody declares them again.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/attestation[?nonce=<base64>]` | — | `lucent/bundle/v1` JSON ([`crate::bundle::Bundle`]) |
//! | `POST /v1/summarize`, `POST /v1/suggest` | RFC 9458 request ([`crate::encapsulation`], `message/ohttp-req`) sealing a [`TaskRequest`] | sealed [`TaskAnswer`] (`message/ohttp-res`) |
//! | `GET /v1/status` | — | [`Status`] |
//! | any failure | — | [`crate::log_api::ErrorBody`] |

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

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
}
