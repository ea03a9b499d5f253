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
    /// The broker has not read the log yet (its follower has no view).
    #[error("the broker has not yet read the log; try again shortly")]
    NoLogView,
    /// The broker's view of the log was last confirmed too long ago.
    #[error(
        "the broker's view of the log was last confirmed {age} s ago (limit {limit} s): \
         it cannot rule out a revocation"
    )]
    LogViewStale {
        /// Seconds since the view was confirmed.
        age: u64,
        /// The limit.
        limit: u64,
    },
    /// The bundle's checkpoint is newer than everything the broker has read.
    #[error(
        "the bundle's checkpoint (size {bundle}) is newer than the broker's view of the log \
         (size {view}): entries in between could revoke the release"
    )]
    LogViewBehind {
        /// The broker's view's size.
        view: u64,
        /// The bundle's checkpoint's size.
        bundle: u64,
    },
    /// An operator revoked the release's measurement in the log.
    #[error("measurement {measurement} was revoked in the log at index {index}: {reason}")]
    RevokedInLog {
        /// The measurement (hex).
        measurement: String,
        /// The revocation's index.
        index: u64,
        /// The operator's reason.
        reason: String,
    },
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
                B::ReleaseLifetimeTooLong { .. } => (S::FORBIDDEN, "release_lifetime"),
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
            BrokerError::NoLogView
            | BrokerError::LogViewStale { .. }
            | BrokerError::LogViewBehind { .. } => (S::SERVICE_UNAVAILABLE, "log_view_unavailable"),
            BrokerError::RevokedInLog { .. } => (S::FORBIDDEN, "release_revoked"),
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
