//! The broker's errors and their one mapping to HTTP: a status and a stable
//! machine-readable code, as `{"error": code, "message": text}`. Messages carry facts
//! (measurements, sizes, steps), never the request body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lucent_verifier::bundle::BundleError;
use lucent_verifier::encapsulation::EncapsulationError;
use lucent_verifier::key_release::KeyReleaseError;
use lucent_verifier::log_api::ErrorBody;

use crate::nonce::NonceError;
use lucent_client::StoreError;

/// Why a broker request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The body is over the limit.
    #[error("request body over {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not a key request (position and kind only; the body is not echoed).
    #[error("request body is not a key request: {reason}")]
    BadRequest {
        /// Where and what kind of error.
        reason: String,
    },
    /// The nonce was refused.
    #[error("{0}")]
    Nonce(#[from] NonceError),
    /// The bundle was refused.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// The bundle's key config is not an RFC 9458 key config this broker can seal to.
    #[error("bundle key config: {0}")]
    BadKeyConfig(EncapsulationError),
    /// Sealing the key failed.
    #[error("sealing the key: {0}")]
    Seal(EncapsulationError),
    /// The last seen checkpoint could not be stored.
    #[error("{0}")]
    State(#[from] StoreError),
    /// Anything else that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BrokerError {
    /// The HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use BundleError as B;
        use StatusCode as S;
        match self {
            BrokerError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too_large"),
            BrokerError::BadRequest { .. } => (S::BAD_REQUEST, "bad_request"),
            BrokerError::Nonce(NonceError::Unknown) => (S::FORBIDDEN, "nonce_unknown"),
            BrokerError::Nonce(NonceError::Replayed { .. }) => (S::CONFLICT, "nonce_replayed"),
            BrokerError::Nonce(NonceError::Stale { .. }) => (S::GONE, "nonce_stale"),
            BrokerError::Nonce(NonceError::TooMany { .. }) => {
                (S::SERVICE_UNAVAILABLE, "too_many_nonces")
            }
            BrokerError::Bundle(e) => match e {
                B::Decode { .. } => (S::BAD_REQUEST, "bundle_malformed"),
                B::CheckpointSignature(_) => (S::FORBIDDEN, "checkpoint_signature"),
                B::WitnessQuorum(_) => (S::FORBIDDEN, "witness_quorum"),
                B::LastSeen(_) => (S::CONFLICT, "checkpoint_inconsistent"),
                B::Inclusion { .. } | B::InclusionSize { .. } => {
                    (S::FORBIDDEN, "release_not_logged")
                }
                B::ReleaseSignature(_) | B::NotARelease { .. } => {
                    (S::FORBIDDEN, "release_signature")
                }
                B::ReleaseExpired { .. } => (S::FORBIDDEN, "release_expired"),
                B::ReleaseRevoked { .. } => (S::FORBIDDEN, "release_revoked"),
                B::PlatformMismatch { .. }
                | B::ReleaseMinTcb { .. }
                | B::TdxTcbBelowRelease { .. }
                | B::Snp(_)
                | B::Tdx(_) => (S::FORBIDDEN, "evidence_rejected"),
                B::MeasurementMismatch { .. } => (S::FORBIDDEN, "measurement_mismatch"),
                B::KeyNotBound(_) => (S::FORBIDDEN, "key_not_bound"),
                // A reason added later is still a refusal, never a grant.
                _ => (S::FORBIDDEN, "bundle_rejected"),
            },
            BrokerError::BadKeyConfig(_) => (S::BAD_REQUEST, "bad_key_config"),
            BrokerError::Seal(_) | BrokerError::State(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
            BrokerError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "key request failed");
        } else {
            tracing::info!(code, error = %self, "key request refused");
        }
        let body = ErrorBody::new(code, self.to_string());
        (status, Json(body)).into_response()
    }
}

/// A key request that does not decode: a malformed bundle keeps its own code
/// (`bundle_malformed`), anything else is a bad request.
impl From<KeyReleaseError> for BrokerError {
    fn from(e: KeyReleaseError) -> Self {
        match e {
            KeyReleaseError::Bundle(e) => BrokerError::Bundle(e),
            KeyReleaseError::KeyConfig(e) => BrokerError::BadKeyConfig(e),
            KeyReleaseError::Seal(e) => BrokerError::Seal(e),
            other => BrokerError::BadRequest {
                reason: other.to_string(),
            },
        }
    }
}
