//! The broker's HTTP API.
//!
//! - `POST /v1/nonce` → `{"nonce": b64, "expires_at": u64, "last_seen_size": u64 | null}`
//! - `POST /v1/key` with `{"nonce": b64, "bundle": {lucent/bundle/v1 object},
//!   "consistency": {"old": u64, "new": u64, "hashes": [b64]} | null}` →
//!   `{"sealed_key": b64, "key_id": u8, "release": {"version", "measurement", "index"},
//!   "checkpoint_size": u64}`
//!
//! Errors are `{"error": code, "message": text}` ([`crate::error::BrokerError`]).

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lucent_verifier::bundle::{Bundle, MAX_BUNDLE_BYTES};
use lucent_verifier::merkle::ConsistencyProof;
use serde::{Deserialize, Serialize};

use crate::broker::{Broker, KeyRequest};
use crate::error::BrokerError;

/// Largest `POST /v1/key` body: a bundle and a consistency proof.
pub const MAX_KEY_REQUEST_BYTES: usize = MAX_BUNDLE_BYTES + 64 * 1024;

/// `POST /v1/nonce` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NonceResponse {
    /// Base64 nonce.
    pub nonce: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// The broker's last seen checkpoint size.
    pub last_seen_size: Option<u64>,
}

/// A consistency proof on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WireConsistency {
    /// Old size.
    pub old: u64,
    /// New size.
    pub new: u64,
    /// Base64 hashes.
    pub hashes: Vec<String>,
}

/// `POST /v1/key` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequestBody {
    /// Base64 nonce from `/v1/nonce`.
    pub nonce: String,
    /// The `lucent/bundle/v1` object.
    pub bundle: serde_json::Value,
    /// Consistency proof from the broker's last seen size, when it differs.
    #[serde(default)]
    pub consistency: Option<WireConsistency>,
}

impl KeyRequestBody {
    /// Builds a body (the CVM side).
    pub fn new(
        nonce: &[u8],
        bundle: &Bundle,
        consistency: Option<&ConsistencyProof>,
    ) -> Result<Self, BrokerError> {
        let bundle = bundle.encode()?;
        let bundle =
            serde_json::from_slice(&bundle).map_err(|e| BrokerError::Internal(e.to_string()))?;
        Ok(KeyRequestBody {
            nonce: B64.encode(nonce),
            bundle,
            consistency: consistency.map(|p| WireConsistency {
                old: p.old.0,
                new: p.new.0,
                hashes: p.hashes.iter().map(|h| B64.encode(h.0)).collect(),
            }),
        })
    }

    fn decode(self) -> Result<KeyRequest, BrokerError> {
        let bad = |reason: &str| BrokerError::BadRequest {
            reason: reason.to_string(),
        };
        let nonce = B64
            .decode(&self.nonce)
            .map_err(|_| bad("nonce is not base64"))?;
        let bundle_bytes =
            serde_json::to_vec(&self.bundle).map_err(|_| bad("bundle is not JSON"))?;
        let bundle = Bundle::decode(&bundle_bytes)?;
        let consistency = match self.consistency {
            None => None,
            Some(c) => {
                let hashes = c
                    .hashes
                    .iter()
                    .map(|h| B64.decode(h))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| bad("consistency hash is not base64"))?;
                let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
                Some(
                    ConsistencyProof::from_raw(c.old, c.new, &refs)
                        .map_err(|e| bad(&format!("consistency proof: {e}")))?,
                )
            }
        };
        Ok(KeyRequest {
            nonce,
            bundle,
            consistency,
        })
    }
}

/// `POST /v1/key` answer's release facts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// Release version.
    pub version: String,
    /// Measurement, hex.
    pub measurement: String,
    /// Log index.
    pub index: u64,
}

/// `POST /v1/key` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyResponse {
    /// Base64 of the sealed weights key.
    pub sealed_key: String,
    /// CVM key id it is sealed to.
    pub key_id: u8,
    /// The matching release.
    pub release: ReleaseInfo,
    /// Checkpoint size verified under.
    pub checkpoint_size: u64,
}

/// The router.
pub fn app(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/v1/nonce", post(nonce))
        .route("/v1/key", post(key))
        .with_state(broker)
}

/// Serves `app(broker)` on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(broker))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn nonce(State(broker): State<Arc<Broker>>) -> Result<Json<NonceResponse>, BrokerError> {
    let grant = broker.issue_nonce()?;
    Ok(Json(NonceResponse {
        nonce: B64.encode(grant.nonce),
        expires_at: grant.expires_at,
        last_seen_size: grant.last_seen_size,
    }))
}

async fn key(
    State(broker): State<Arc<Broker>>,
    body: Body,
) -> Result<Json<KeyResponse>, BrokerError> {
    let bytes = axum::body::to_bytes(body, MAX_KEY_REQUEST_BYTES)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit")
            {
                BrokerError::TooLarge {
                    limit: MAX_KEY_REQUEST_BYTES,
                }
            } else {
                BrokerError::BadRequest {
                    reason: "request body could not be read".into(),
                }
            }
        })?;
    let body: KeyRequestBody =
        serde_json::from_slice(&bytes).map_err(|e| BrokerError::BadRequest {
            // Category and position only: serde's message can quote the input.
            reason: format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        })?;
    let request = body.decode()?;
    // Verification is CPU work (signatures, certificate chains): keep it off the reactor.
    let release = tokio::task::spawn_blocking(move || broker.release_key(&request))
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))??;
    tracing::info!(
        measurement = %release.measurement,
        version = %release.release_version,
        checkpoint_size = release.checkpoint_size,
        "weights key released"
    );
    Ok(Json(KeyResponse {
        sealed_key: B64.encode(&release.sealed_key),
        key_id: release.key_id,
        release: ReleaseInfo {
            version: release.release_version,
            measurement: release.measurement,
            index: release.release_index,
        },
        checkpoint_size: release.checkpoint_size,
    }))
}
