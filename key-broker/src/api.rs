//! The broker's HTTP API: `POST /v1/nonce` and `POST /v1/key`, whose messages are
//! [`lucent_verifier::key_release`]'s (`NonceResponse`; `KeyRequestBody` → `KeyResponse`).
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
use lucent_verifier::key_release::{
    KeyRequestBody, KeyResponse, NonceResponse, ReleaseInfo, KEY_PATH, MAX_KEY_REQUEST_BYTES,
    NONCE_PATH,
};

use crate::broker::Broker;
use crate::error::BrokerError;

/// The router.
pub fn app(broker: Arc<Broker>) -> Router {
    Router::new()
        .route(NONCE_PATH, post(nonce))
        .route(KEY_PATH, post(key))
        .with_state(broker)
}

/// Serves `app(broker)` on `listener` with `limits` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    broker: Arc<Broker>,
    limits: &lucent_service::http::HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    lucent_service::http::serve(
        listener,
        app(broker),
        limits,
        shutdown,
        std::time::Duration::from_secs(30),
    )
    .await
}

async fn nonce(State(broker): State<Arc<Broker>>) -> Result<Json<NonceResponse>, BrokerError> {
    let grant = broker.issue_nonce()?;
    Ok(Json(NonceResponse::new(
        &grant.nonce,
        grant.expires_at,
        grant.last_seen_size,
    )))
}

async fn key(
    State(broker): State<Arc<Broker>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<KeyResponse>, BrokerError> {
    let bytes = lucent_service::http::read_body(&headers, body, MAX_KEY_REQUEST_BYTES)
        .await
        .map_err(|e| match e {
            lucent_service::http::BodyError::TooLarge { limit } => BrokerError::TooLarge { limit },
            _ => BrokerError::BadRequest {
                reason: "request body could not be read".into(),
            },
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
    broker.catch_up(&request).await;
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
