//! Every way a request can fail, and the one place that turns a failure into an HTTP answer:
//! a specific status and a JSON body `{"error": "<stable code>", "message": "…"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lucent_verifier::log_api::ErrorBody;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::NoteError;
use lucent_verifier::statement::StatementError;
use thiserror::Error;

use crate::store::StoreError;
use crate::tree::ProveError;

/// A request failure. Each variant has one status and one stable code.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is larger than a statement may be.
    #[error("statement is {got} bytes, the limit is {limit}")]
    TooLarge {
        /// Bytes received (or announced).
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// The body could not be read completely (truncated, connection closed).
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// The body is not a well-formed signed note.
    #[error("statement is not a well-formed signed note: {0}")]
    Malformed(String),
    /// The note is well formed and signed by an operator, but is not a valid statement.
    #[error("invalid statement: {0}")]
    InvalidStatement(String),
    /// No signature by any allowed operator key.
    #[error("statement is not signed by an allowed operator key")]
    UnknownSigner,
    /// Signature lines a log entry may not carry: a key that is not an allowed operator's
    /// ([`StatementError::ForeignSignature`]) or one key twice
    /// ([`StatementError::DuplicateSignature`]).
    #[error("{0}; a log entry carries each allowed operator's signature at most once")]
    NotCanonical(StatementError),
    /// A signature by an allowed operator key does not verify.
    #[error("signature by operator key {name}+{id:08x} does not verify")]
    BadSignature {
        /// Key name.
        name: String,
        /// Key ID.
        id: u32,
    },
    /// The exact statement is already in the log.
    #[error("statement is already logged at index {index}")]
    AlreadyLogged {
        /// Its index.
        index: u64,
        /// Its leaf hash.
        leaf: LeafHash,
    },
    /// A tile path that names no tile.
    #[error("{0}")]
    BadTilePath(String),
    /// A query parameter is malformed.
    #[error("{0}")]
    BadParameter(String),
    /// Proof parameters that name no proof (index past size, old past new, …).
    #[error("{0}")]
    BadProofParameters(String),
    /// Something asked for is not (yet) in the log.
    #[error("{message}")]
    NotFound {
        /// Stable code (`tile_not_found`, `entry_not_found`, …).
        code: &'static str,
        /// What was missing.
        message: String,
    },
    /// The endpoint exists, but not for this method.
    #[error("{method} is not allowed here")]
    MethodNotAllowed {
        /// The method asked with.
        method: String,
    },
    /// Too many submissions per second.
    #[error("too many submissions; retry later")]
    RateLimited,
    /// Accepted and durably queued, but not sequenced within the time allowed; retrying the
    /// same statement is safe (it is deduplicated).
    #[error("statement queued but not sequenced yet; retry to learn its index")]
    NotSequenced,
    /// The server is stopping.
    #[error("server is shutting down")]
    ShuttingDown,
    /// Storage or an internal invariant failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the stable machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "statement_too_large"),
            ApiError::BodyRead(_) => (StatusCode::BAD_REQUEST, "body_unreadable"),
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_statement"),
            ApiError::InvalidStatement(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_statement")
            }
            ApiError::UnknownSigner => (StatusCode::FORBIDDEN, "unknown_signer"),
            ApiError::BadSignature { .. } => (StatusCode::FORBIDDEN, "bad_signature"),
            ApiError::NotCanonical(StatementError::ForeignSignature { .. }) => {
                (StatusCode::FORBIDDEN, "foreign_signature")
            }
            ApiError::NotCanonical(_) => (StatusCode::BAD_REQUEST, "duplicate_signature"),
            ApiError::AlreadyLogged { .. } => (StatusCode::CONFLICT, "already_logged"),
            ApiError::BadTilePath(_) => (StatusCode::BAD_REQUEST, "bad_tile_path"),
            ApiError::BadParameter(_) => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::BadProofParameters(_) => (StatusCode::BAD_REQUEST, "bad_proof_parameters"),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            ApiError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotSequenced => (StatusCode::SERVICE_UNAVAILABLE, "not_sequenced_yet"),
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StatementError> for ApiError {
    fn from(e: StatementError) -> Self {
        match e {
            StatementError::TooLarge { got, limit } => ApiError::TooLarge { got, limit },
            StatementError::Note(NoteError::TooLarge { got, limit }) => {
                ApiError::TooLarge { got, limit }
            }
            StatementError::Note(NoteError::NoKnownSignature) => ApiError::UnknownSigner,
            e @ (StatementError::ForeignSignature { .. }
            | StatementError::DuplicateSignature { .. }) => ApiError::NotCanonical(e),
            StatementError::Note(NoteError::BadSignature { name, id }) => {
                ApiError::BadSignature { name, id }
            }
            StatementError::Note(other) => ApiError::Malformed(other.to_string()),
            other => ApiError::InvalidStatement(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<ProveError> for ApiError {
    fn from(e: ProveError) -> Self {
        match e {
            ProveError::OutOfRange(m) => ApiError::BadProofParameters(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        }
        let mut body = ErrorBody::new(code, self.to_string());
        if let ApiError::AlreadyLogged { index, leaf } = &self {
            body.index = Some(*index);
            body.leaf_hash = Some(*leaf);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::RateLimited | ApiError::NotSequenced) {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}
