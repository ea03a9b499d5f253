//! Every error the HTTP API answers, mapped to a status and a stable code in one place.
//!
//! Bodies are `{"error": code, "message": text}`. Messages carry lengths, ids, limits,
//! measurements and log sizes, never request content.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the runtime is closed: it has not (or no longer) verified its own release, or has no
/// weights key. While closed it answers every request with this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// Stable code: `booting`, `attestation_failed`, `log_unreachable`, `log_view_stale`,
    /// `not_logged`, `revoked`, `expired`, `unverifiable`, `key_refused`, `model_failed`.
    pub code: &'static str,
    /// The measurement checked (hex), when the attester produced one.
    pub measurement: Option<String>,
    /// The log size checked, when a checkpoint was read.
    pub log_size: Option<u64>,
    /// The reason in words.
    pub reason: String,
}

impl Closed {
    /// The message answered to requests.
    pub fn message(&self) -> String {
        format!(
            "runtime closed: measurement {} checked against the log at size {}: {}",
            self.measurement.as_deref().unwrap_or("unknown"),
            self.log_size
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            self.reason
        )
    }
}

/// An API error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The runtime is closed.
    #[error("{}", .0.message())]
    Closed(Closed),
    /// The body is over the limit.
    #[error("request body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Shorter than an encapsulated request's fixed parts.
    #[error("encapsulated request truncated: {got} bytes, need at least {need}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// The request names another key.
    #[error("request is for key id {got}; this runtime's key id is {want}")]
    UnknownKeyId {
        /// Key id in the request.
        got: u8,
        /// Ours.
        want: u8,
    },
    /// The frame is not an encapsulated request this runtime can open.
    #[error("bad encapsulated request: {reason}")]
    BadFrame {
        /// What failed (lengths and ids only).
        reason: String,
    },
    /// This `enc` was seen before.
    #[error("replayed request: this encapsulated key was already used")]
    Replayed,
    /// The opened request is not `{"text": string, "max_tokens": u32?}`.
    #[error("bad request: {reason}")]
    BadRequest {
        /// What is wrong (positions only).
        reason: String,
    },
    /// A bad `nonce` query parameter.
    #[error("bad nonce: {reason}")]
    BadNonce {
        /// What is wrong.
        reason: String,
    },
    /// The model refused the input.
    #[error("the model refused the request: {reason}")]
    ModelRefused {
        /// Counts and limits only.
        reason: String,
    },
    /// The model ran over the time limit.
    #[error("the model ran over the {limit_ms} ms limit")]
    Timeout {
        /// The limit.
        limit_ms: u64,
    },
    /// Too many model runs at once.
    #[error("busy: {limit} requests are already running")]
    Busy {
        /// The limit.
        limit: usize,
    },
    /// Nothing here.
    #[error("no such endpoint")]
    NotFound,
    /// A bug or resource failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Closed(c) => (StatusCode::SERVICE_UNAVAILABLE, c.code),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Truncated { .. } => (StatusCode::BAD_REQUEST, "truncated"),
            ApiError::UnknownKeyId { .. } => (StatusCode::BAD_REQUEST, "unknown_key_id"),
            ApiError::BadFrame { .. } => (StatusCode::BAD_REQUEST, "bad_frame"),
            ApiError::Replayed => (StatusCode::CONFLICT, "replayed"),
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::BadNonce { .. } => (StatusCode::BAD_REQUEST, "bad_nonce"),
            ApiError::ModelRefused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "model_refused"),
            ApiError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "no_such_endpoint"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = lucent_verifier::log_api::ErrorBody::new(code, self.to_string());
        (status, axum::Json(body)).into_response()
    }
}
