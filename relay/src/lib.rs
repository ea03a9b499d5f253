//! An Oblivious HTTP relay (RFC 9458 §4), run by a third party: it forwards encapsulated
//! requests from clients to its one configured gateway and the gateway's answers back, so
//! that the operator behind the gateway never sees a client's address.
//!
//! What it does:
//! - `POST /v1/ohttp` with `content-type: message/ohttp-req`: reads the body (at most
//!   [`MAX_OUTER_REQUEST_BYTES`], within the `[http]` body read timeout), sends the same
//!   bytes to `{gateway_url}/v1/ohttp` in a **new** request that carries only
//!   `content-type` (no client header, address, cookie, `Forwarded` or `Via`), waits at most
//!   `gateway_timeout_ms`, and answers with the gateway's status and body (at most
//!   [`MAX_OUTER_RESPONSE_BYTES`]) and `content-type` only;
//! - `GET /v1/status`: counters, and nothing per request.
//!
//! Its own refusals are `{"error": code, "message": text}` with
//! `lucent-error-source: relay` (`wrong_media_type` 415, `too_large` 413, `bad_request` 400,
//! `gateway_unreachable` 502, `gateway_timeout` 504, `bad_gateway_answer` 502, `rate_limited`
//! 429); an error the gateway sent comes back unchanged with `lucent-error-source: gateway`.
//!
//! What it cannot do: read a request or an answer (it holds no key; both are sealed between
//! the client and the gateway), or tell the gateway who asked. What it keeps: the counters.
//! Each request is logged only at `debug` level (peer address, sizes, status), which is off
//! by default.

pub mod cli;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lucent_verifier::log_api::ErrorBody;
use lucent_verifier::oblivious::{
    ErrorSource, ERROR_SOURCE_HEADER, JSON_MEDIA_TYPE, MAX_ERROR_BODY_BYTES,
    MAX_OUTER_REQUEST_BYTES, MAX_OUTER_RESPONSE_BYTES, OHTTP_PATH, REQUEST_MEDIA_TYPE,
    RESPONSE_MEDIA_TYPE,
};
use serde::{Deserialize, Serialize};

/// The status route.
pub const STATUS_PATH: &str = "/v1/status";

/// The relay's configuration file (TOML).
///
/// ```toml
/// listen = "0.0.0.0:8800"
/// gateway_url = "https://gateway.example.com"   # the one gateway it relays to
/// gateway_timeout_ms = 120000                    # longest wait for the gateway's answer
///
/// [http]                                         # lucent_service::http::HttpLimits
/// per_source_per_second = 100                    # the rate limit is per client address
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Address to listen on.
    pub listen: String,
    /// Base URL of the gateway.
    pub gateway_url: String,
    /// Longest wait for the gateway's whole answer, in milliseconds.
    #[serde(default = "default_gateway_timeout")]
    pub gateway_timeout_ms: u64,
    /// Connection limits: header and body read timeouts, per-source rate limit.
    #[serde(default)]
    pub http: lucent_service::http::HttpLimits,
}

fn default_gateway_timeout() -> u64 {
    120_000
}

pub use lucent_service::config_file::ConfigError;

impl RelayConfig {
    /// Reads, parses and checks the file.
    pub fn read(path: &std::path::Path) -> Result<Self, ConfigError> {
        let config: Self = lucent_service::config_file::read(path)?;
        config.check()?;
        Ok(config)
    }

    /// Checks every setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.http
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.gateway_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "gateway_timeout_ms must be positive".into(),
            ));
        }
        if !(self.gateway_url.starts_with("http://") || self.gateway_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "gateway_url {:?} is not an http(s) URL",
                self.gateway_url
            )));
        }
        Ok(())
    }
}

/// What the relay counts: totals only, never anything about one request.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests received on the relay route.
    pub requests: u64,
    /// Requests refused before forwarding (media type, size, unreadable body).
    pub refused: u64,
    /// Requests forwarded to the gateway.
    pub forwarded: u64,
    /// Forwarded requests that got no usable answer (unreachable, timeout, bad answer).
    pub gateway_failures: u64,
}

#[derive(Default)]
struct AtomicCounters {
    requests: AtomicU64,
    refused: AtomicU64,
    forwarded: AtomicU64,
    gateway_failures: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        Counters {
            requests: self.requests.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            gateway_failures: self.gateway_failures.load(Ordering::Relaxed),
        }
    }
}

/// The relay: where it forwards, and its counters.
pub struct Relay {
    http: reqwest::Client,
    target: String,
    timeout_ms: u64,
    counters: AtomicCounters,
}

impl Relay {
    /// A relay for `config`.
    pub fn new(config: &RelayConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.gateway_timeout_ms))
            // The client's identity stops here: no user agent (reqwest sends none unless
            // told), no cookies, no redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Relay {
            http,
            target: format!("{}{OHTTP_PATH}", config.gateway_url.trim_end_matches('/')),
            timeout_ms: config.gateway_timeout_ms,
            counters: AtomicCounters::default(),
        })
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }
}

/// One of the relay's own refusals.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("content type must be {REQUEST_MEDIA_TYPE}")]
    WrongMediaType,
    #[error("request body larger than {MAX_OUTER_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("request body could not be read")]
    BadRequest,
    #[error("the gateway could not be reached")]
    GatewayUnreachable,
    #[error("the gateway did not answer within {0} ms")]
    GatewayTimeout(u64),
    #[error("the gateway's answer was unusable: {0}")]
    BadGatewayAnswer(String),
}

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            RelayError::WrongMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "wrong_media_type"),
            RelayError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            RelayError::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            RelayError::GatewayUnreachable => (StatusCode::BAD_GATEWAY, "gateway_unreachable"),
            RelayError::GatewayTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "gateway_timeout"),
            RelayError::BadGatewayAnswer(_) => (StatusCode::BAD_GATEWAY, "bad_gateway_answer"),
        };
        let mut response = (status, Json(ErrorBody::new(code, self.to_string()))).into_response();
        response.headers_mut().insert(
            ERROR_SOURCE_HEADER,
            HeaderValue::from_static(ErrorSource::Relay.as_str()),
        );
        response
    }
}

/// The router.
pub fn app(relay: Arc<Relay>) -> Router {
    Router::new()
        .route(OHTTP_PATH, post(forward))
        .route(STATUS_PATH, get(status))
        .with_state(relay)
}

/// Serves `app(relay)` on `listener` with `limits` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    relay: Arc<Relay>,
    limits: &lucent_service::http::HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    lucent_service::http::serve(
        listener,
        app(relay),
        limits,
        shutdown,
        Duration::from_secs(30),
    )
    .await
}

async fn status(State(relay): State<Arc<Relay>>) -> Json<Counters> {
    Json(relay.counters())
}

async fn forward(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RelayError> {
    relay.counters.requests.fetch_add(1, Ordering::Relaxed);
    let refused = |e: RelayError| {
        relay.counters.refused.fetch_add(1, Ordering::Relaxed);
        e
    };
    if !lucent_service::http::content_type_is(&headers, REQUEST_MEDIA_TYPE) {
        return Err(refused(RelayError::WrongMediaType));
    }
    let request = lucent_service::http::read_body(&headers, body, MAX_OUTER_REQUEST_BYTES)
        .await
        .map_err(|e| {
            refused(match e {
                lucent_service::http::BodyError::TooLarge { .. } => RelayError::TooLarge,
                _ => RelayError::BadRequest,
            })
        })?;
    let sent = request.len();
    relay.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let answer = relay.relay(request).await;
    match &answer {
        Ok((status, body, _)) => {
            tracing::debug!(%peer, sent, received = body.len(), status = status.as_u16(), "relayed")
        }
        Err(e) => {
            relay
                .counters
                .gateway_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, sent, error = %e, "not relayed");
        }
    }
    let (status, body, media) = answer?;
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media);
    if !status.is_success() {
        headers.insert(
            ERROR_SOURCE_HEADER,
            HeaderValue::from_static(ErrorSource::Gateway.as_str()),
        );
    }
    Ok(response)
}

impl Relay {
    /// Sends `request` to the gateway; its status, body and media type, checked.
    async fn relay(
        &self,
        request: axum::body::Bytes,
    ) -> Result<(StatusCode, Vec<u8>, HeaderValue), RelayError> {
        let resp = self
            .http
            .post(&self.target)
            .header(header::CONTENT_TYPE, REQUEST_MEDIA_TYPE)
            .body(request)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    RelayError::GatewayTimeout(self.timeout_ms)
                } else {
                    RelayError::GatewayUnreachable
                }
            })?;
        let status = StatusCode::from_u16(resp.status().as_u16())
            .map_err(|e| RelayError::BadGatewayAnswer(e.to_string()))?;
        let media = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (want, limit) = if status == StatusCode::OK {
            (RESPONSE_MEDIA_TYPE, MAX_OUTER_RESPONSE_BYTES)
        } else {
            (JSON_MEDIA_TYPE, MAX_ERROR_BODY_BYTES)
        };
        if !media.starts_with(want) {
            return Err(RelayError::BadGatewayAnswer(format!(
                "HTTP {status} with content type {media:?}, expected {want}"
            )));
        }
        let body = lucent_client::log::read_body("gateway answer", &self.target, resp, limit)
            .await
            .map_err(|e| match e {
                lucent_client::FetchError::TooLarge { limit, .. } => {
                    RelayError::BadGatewayAnswer(format!("larger than {limit} bytes"))
                }
                lucent_client::FetchError::Http {
                    timed_out: true, ..
                } => RelayError::GatewayTimeout(self.timeout_ms),
                _ => RelayError::GatewayUnreachable,
            })?;
        Ok((status, body, HeaderValue::from_static(want)))
    }
}
