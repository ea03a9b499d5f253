//! The operator's Oblivious HTTP gateway (RFC 9458 §5): it holds the outer layer's key,
//! whose key config is a logged `keyconfig` statement (so every client is offered the same
//! key), opens each request that a relay forwards, and passes the **inner** request, still
//! sealed to one attested CVM's key, to that CVM. The CVM's sealed answer goes back inside
//! the outer response. The wire contract is [`lucent_verifier::oblivious`].
//!
//! `POST /v1/ohttp` (`message/ohttp-req`):
//! 1. refuses a wrong media type (415 `wrong_media_type`), a body over
//!    [`MAX_OUTER_REQUEST_BYTES`] (413 `too_large`), a request for another key
//!    (422 `unknown_gateway_key`) or one that does not open (400 `bad_request`), as plain
//!    `{"error", "message"}`: the only errors anyone but the client can read, and they say
//!    nothing about the request's content;
//! 2. reads the opened Binary HTTP request ([`ForwardRequest`]); routes it by the inner
//!    request's key id to the CVM that announced that key id in its `/v1/status`
//!    (refreshed every `cvm_refresh_secs`);
//! 3. forwards the sealed inner request to `{cvm}{task path}` and seals the CVM's answer, or
//!    the reason there is none, as a [`GatewayAnswer`] in the outer response (200,
//!    `message/ohttp-res`): `unknown_key_id` (404, no CVM has that key id), `ambiguous_key_id`
//!    (503, two CVMs announced it), `cvm_unreachable` (502), `cvm_timeout` (504),
//!    `bad_cvm_answer` (502), or the CVM's own refusal before it opened the request
//!    (`lucent-error-source: cvm`, e.g. 503 `not_logged` from a closed CVM).
//!
//! `GET /v1/status`: the gateway's key config (hex) and the CVMs it routes to.
//!
//! What the gateway sees: the relay's address (never a client's), the task, the inner key
//! id, a padded sealed inner request and the sealed answer's size. What it cannot see: the
//! plaintext (the inner layer is sealed to the CVM's attested key) or who asked. It logs no
//! request: routing changes and failures only.

pub mod cli;
pub mod tokens;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lucent_verifier::cvm_api::{self, STATUS_PATH};
use lucent_verifier::encapsulation::{open_request_with, EncapsulationError, KeyPair, MediaLabels};
use lucent_verifier::log_api::ErrorBody;
use lucent_verifier::oblivious::{
    ErrorSource, ForwardRequest, GatewayAnswer, ObliviousError, JSON_MEDIA_TYPE,
    MAX_ERROR_BODY_BYTES, MAX_MESSAGE_BYTES, MAX_OUTER_REQUEST_BYTES, OHTTP_PATH,
    REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

/// Room the Binary HTTP framing of an answer needs around the CVM's sealed answer.
const ANSWER_FRAMING_BYTES: usize = 256;

/// The gateway's configuration file (TOML).
///
/// ```toml
/// listen = "127.0.0.1:8700"
/// key_file = "/var/lib/lucent/gateway.key"   # 32-byte secret seed of the OHTTP key; made (0600) when absent
/// key_id = 1                                  # the RFC 9458 key id of its key config
/// cvms = ["http://10.0.0.5:8443", "http://10.0.0.6:8443"]
/// cvm_refresh_secs = 10                       # how often it reads each CVM's /v1/status
/// cvm_timeout_ms = 120000                     # longest wait for a CVM's answer
///
/// [http]                                      # lucent_service::http::HttpLimits; every
/// per_source_per_second = 1000                # request comes from a relay's address
///
/// [tokens]                                    # tokens::TokensConfig (required)
/// issuer_name = "issuer.lucent.example"
/// issuer_key_files = ["/var/lib/lucent/issuer.key"]   # the issuer's 48-byte seeds
/// spent_database_url = "sqlite:/var/lib/lucent/gateway-spent.db"
/// log_url = "https://log.example.com"         # the log whose issuer keys it follows
/// follow_every_secs = 10
/// [tokens.trust]                              # lucent_verifier::trust::TrustConfig
/// log_key = "log.example.com+1234abcd+A..."
/// witnesses = ["witness.example.com+...+..."]
/// operators = ["operator.example.com+...+..."]
/// ```
///
/// Without `[tokens]` the gateway refuses to start, unless `dangerous_no_tokens = true`
/// (tests of routing only): then it forwards requests that carry no token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: String,
    /// The OHTTP key's secret seed (32 bytes, raw or 64 hex digits).
    pub key_file: PathBuf,
    /// The key config's key id.
    #[serde(default = "default_key_id")]
    pub key_id: u8,
    /// Base URLs of the CVMs it forwards to.
    pub cvms: Vec<String>,
    /// Seconds between reads of each CVM's status.
    #[serde(default = "default_refresh")]
    pub cvm_refresh_secs: u64,
    /// Longest wait for a CVM's whole answer, in milliseconds.
    #[serde(default = "default_cvm_timeout")]
    pub cvm_timeout_ms: u64,
    /// Connection limits: header and body read timeouts, per-source rate limit.
    #[serde(default)]
    pub http: lucent_service::http::HttpLimits,
    /// Anonymous tokens: the issuer's keys, the spent-token store, the log.
    #[serde(default)]
    pub tokens: Option<tokens::TokensConfig>,
    /// Forward requests without tokens (no `[tokens]` table). Tests of routing only: anyone
    /// who reaches the gateway can then use the CVMs without limit.
    #[serde(default)]
    pub dangerous_no_tokens: bool,
}

fn default_key_id() -> u8 {
    1
}

fn default_refresh() -> u64 {
    10
}

fn default_cvm_timeout() -> u64 {
    120_000
}

pub use lucent_service::config_file::ConfigError;

impl GatewayConfig {
    /// Reads, parses and checks the file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = lucent_service::config_file::read(path)?;
        config.check()?;
        Ok(config)
    }

    /// Checks every setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.http
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.cvm_timeout_ms == 0 || self.cvm_refresh_secs == 0 {
            return Err(ConfigError::Invalid(
                "cvm_timeout_ms and cvm_refresh_secs must be positive".into(),
            ));
        }
        if self.cvms.is_empty() {
            return Err(ConfigError::Invalid("cvms lists no CVM".into()));
        }
        if let Some(bad) = self
            .cvms
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(ConfigError::Invalid(format!(
                "cvms: {bad:?} is not an http(s) URL"
            )));
        }
        match (&self.tokens, self.dangerous_no_tokens) {
            (None, false) => {
                return Err(ConfigError::Invalid(
                    "no [tokens] table: the gateway takes requests only with anonymous tokens \
                     (dangerous_no_tokens = true serves without them, for tests only)"
                        .into(),
                ))
            }
            (Some(_), true) => {
                return Err(ConfigError::Invalid(
                    "dangerous_no_tokens = true beside a [tokens] table: choose one".into(),
                ))
            }
            (Some(t), false) if t.follow_every_secs == 0 => {
                return Err(ConfigError::Invalid(
                    "[tokens] follow_every_secs must be positive".into(),
                ))
            }
            (Some(t), false) if !lucent_verifier::statement::is_token(&t.issuer_name) => {
                return Err(ConfigError::Invalid(format!(
                    "[tokens] issuer_name {:?} can be no logged issuer's name \
                     (1 to 64 of [A-Za-z0-9._+-])",
                    t.issuer_name
                )))
            }
            _ => {}
        }
        Ok(())
    }

    /// The OHTTP key pair from `key_file`; a new seed is written there (mode 0600, never
    /// over an existing file) when the file does not exist.
    pub fn key_pair(&self) -> Result<KeyPair, ConfigError> {
        let (seed, made) = lucent_service::secret_file::load(&self.key_file, 32, true)?;
        if made {
            tracing::info!(path = %self.key_file.display(), "made a new gateway key");
        }
        Ok(KeyPair::derive(self.key_id, &seed))
    }
}

/// One CVM as the gateway last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CvmRoute {
    /// Its base URL.
    pub url: String,
    /// The key id it announced (absent until its status was first read).
    pub key_id: Option<u8>,
    /// Its state then (`open` or `closed`).
    pub state: Option<String>,
    /// Why the last status read failed, if it did.
    pub error: Option<String>,
}

/// The gateway's status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStatus {
    /// The OHTTP key config clients must find logged, hex.
    pub key_config: String,
    /// The CVMs it forwards to.
    pub cvms: Vec<CvmRoute>,
}

/// The gateway: its key, its CVMs and an HTTP client for them.
pub struct Gateway {
    key: KeyPair,
    http: reqwest::Client,
    timeout_ms: u64,
    routes: RwLock<Vec<CvmRoute>>,
    redeemer: Option<tokens::Redeemer>,
}

/// Where a request for a key id goes.
enum Route {
    To(String),
    Unknown,
    Ambiguous(usize),
}

impl Gateway {
    /// A gateway with `key` forwarding to the CVMs of `config` (none routable until
    /// [`Gateway::refresh`] read their status).
    pub fn new(config: &GatewayConfig, key: KeyPair) -> Result<Self, ConfigError> {
        config.check()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.cvm_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))?;
        let routes = config
            .cvms
            .iter()
            .map(|u| CvmRoute {
                url: u.trim_end_matches('/').to_owned(),
                key_id: None,
                state: None,
                error: None,
            })
            .collect();
        Ok(Gateway {
            key,
            http,
            timeout_ms: config.cvm_timeout_ms,
            routes: RwLock::new(routes),
            redeemer: None,
        })
    }

    /// The gateway that redeems a token with every request ([`tokens`]).
    pub fn with_tokens(self, redeemer: tokens::Redeemer) -> Self {
        Gateway {
            redeemer: Some(redeemer),
            ..self
        }
    }

    /// The token redeemer, when tokens are required.
    pub fn redeemer(&self) -> Option<&tokens::Redeemer> {
        self.redeemer.as_ref()
    }

    /// The key config clients seal to (RFC 9458 encoding).
    pub fn key_config(&self) -> Vec<u8> {
        self.key.key_config_bytes()
    }

    /// The gateway's status.
    pub fn status(&self) -> GatewayStatus {
        GatewayStatus {
            key_config: hex::encode(self.key_config()),
            cvms: self.routes(),
        }
    }

    fn routes(&self) -> Vec<CvmRoute> {
        self.routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads every CVM's `/v1/status` (key id and state). A CVM that does not answer keeps
    /// the key id it announced before, so that requests for it fail as `cvm_unreachable`.
    pub async fn refresh(&self) {
        let mut routes = self.routes();
        for route in &mut routes {
            let url = format!("{}{STATUS_PATH}", route.url);
            let read = async {
                let resp = self
                    .http
                    .get(&url)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let body = lucent_client::log::read_limited("CVM status", &url, resp, 64 * 1024)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::from_slice::<cvm_api::Status>(&body).map_err(|e| e.to_string())
            };
            match read.await {
                Ok(status) => {
                    if route.key_id != Some(status.key_id) || route.error.is_some() {
                        tracing::info!(cvm = %route.url, key_id = status.key_id, state = %status.state, "CVM routed");
                    }
                    route.key_id = Some(status.key_id);
                    route.state = Some(status.state);
                    route.error = None;
                }
                Err(e) => {
                    if route.error.is_none() {
                        tracing::warn!(cvm = %route.url, error = %e, "CVM status unreadable");
                    }
                    route.error = Some(e);
                }
            }
        }
        *self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = routes;
    }

    fn route(&self, key_id: u8) -> Route {
        let routes = self
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut matching = routes.iter().filter(|r| r.key_id == Some(key_id));
        match (matching.next(), matching.count()) {
            (None, _) => Route::Unknown,
            (Some(r), 0) => Route::To(r.url.clone()),
            (Some(_), more) => Route::Ambiguous(more + 1),
        }
    }

    /// Opens an outer request and answers it: the outer response, or a refusal before
    /// the request could be opened.
    pub async fn handle(&self, request: &[u8]) -> Result<Vec<u8>, GatewayError> {
        let (plaintext, sealer) = open_request_with(&self.key, &MediaLabels::OHTTP_BHTTP, request)
            .map_err(|e| match e {
                EncapsulationError::WrongKeyId { got, want } => {
                    GatewayError::UnknownGatewayKey { got, want }
                }
                e => GatewayError::BadRequest(e),
            })?;
        let answer = match ForwardRequest::decode(&plaintext) {
            Ok(forward) => match self.redeem(forward.token.as_ref()).await {
                Ok(()) => self.forward(forward).await,
                Err(e) => {
                    let (status, code) = e.status_code();
                    GatewayAnswer::error(status, code, e.to_string())
                }
            },
            Err(ObliviousError::Token(e)) => GatewayAnswer::error(
                401,
                "invalid_token",
                format!("the token does not parse: {e}"),
            ),
            Err(e) => GatewayAnswer::error(400, "bad_request", e.to_string()),
        };
        drop(plaintext);
        sealer
            .seal_response(&answer.encode(), &mut OsRng)
            .map_err(GatewayError::Seal)
    }

    async fn redeem(
        &self,
        token: Option<&lucent_verifier::privacy_pass::Token>,
    ) -> Result<(), tokens::RedeemError> {
        match &self.redeemer {
            Some(r) => r.redeem(token, lucent_service::now_unix()).await,
            None => Ok(()),
        }
    }

    /// Forwards one sealed inner request to its CVM; the CVM's answer or the reason there
    /// is none.
    async fn forward(&self, forward: ForwardRequest) -> GatewayAnswer {
        let key_id = forward.key_id();
        let base = match self.route(key_id) {
            Route::To(url) => url,
            Route::Unknown => {
                return GatewayAnswer::error(
                    404,
                    "unknown_key_id",
                    format!("no CVM behind this gateway has key id {key_id}"),
                )
            }
            Route::Ambiguous(n) => {
                return GatewayAnswer::error(
                    503,
                    "ambiguous_key_id",
                    format!(
                        "{n} CVMs announced key id {key_id}; the operator must give each its own"
                    ),
                )
            }
        };
        let url = format!("{base}{}", forward.task.path());
        let resp = match self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, REQUEST_MEDIA_TYPE)
            .body(forward.sealed)
            .send()
            .await
        {
            Ok(resp) => resp,
            Err(e) if e.is_timeout() => return self.cvm_timeout(),
            Err(_) => {
                return GatewayAnswer::error(
                    502,
                    "cvm_unreachable",
                    format!("the CVM with key id {key_id} could not be reached"),
                )
            }
        };
        let status = resp.status().as_u16();
        let limit = if status == 200 {
            MAX_MESSAGE_BYTES - ANSWER_FRAMING_BYTES
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let media_ok = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| {
                m.to_ascii_lowercase().starts_with(if status == 200 {
                    RESPONSE_MEDIA_TYPE
                } else {
                    JSON_MEDIA_TYPE
                })
            });
        let body = match lucent_client::log::read_body("CVM answer", &url, resp, limit).await {
            Ok(body) => body,
            Err(lucent_client::FetchError::TooLarge { limit, .. }) => {
                return bad_cvm_answer(format!("larger than {limit} bytes"))
            }
            Err(lucent_client::FetchError::Http {
                timed_out: true, ..
            }) => return self.cvm_timeout(),
            Err(e) => return bad_cvm_answer(e.to_string()),
        };
        if !media_ok {
            return bad_cvm_answer(format!("HTTP {status} with an unexpected content type"));
        }
        if status == 200 {
            return GatewayAnswer::Sealed(body);
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(body) => GatewayAnswer::Error {
                status,
                source: ErrorSource::Cvm,
                body,
            },
            Err(_) => bad_cvm_answer(format!("HTTP {status} without an error body")),
        }
    }

    fn cvm_timeout(&self) -> GatewayAnswer {
        GatewayAnswer::error(
            504,
            "cvm_timeout",
            format!("the CVM did not answer within {} ms", self.timeout_ms),
        )
    }
}

fn bad_cvm_answer(reason: String) -> GatewayAnswer {
    GatewayAnswer::error(502, "bad_cvm_answer", format!("the CVM's answer: {reason}"))
}

/// A refusal before the outer request was opened: the only answers a relay can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Not `message/ohttp-req`.
    #[error("content type must be {REQUEST_MEDIA_TYPE}")]
    WrongMediaType,
    /// A body over the limit.
    #[error("request body larger than {MAX_OUTER_REQUEST_BYTES} bytes")]
    TooLarge,
    /// The body could not be read.
    #[error("request body could not be read")]
    Unreadable,
    /// A request for another key id (a client with a stale or unlogged key config).
    #[error("request is for key id {got}; this gateway's key id is {want}")]
    UnknownGatewayKey {
        /// Key id in the request.
        got: u8,
        /// This gateway's.
        want: u8,
    },
    /// The request did not open.
    #[error("request does not open: {0}")]
    BadRequest(EncapsulationError),
    /// The answer could not be sealed.
    #[error("answer could not be sealed: {0}")]
    Seal(EncapsulationError),
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            GatewayError::WrongMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "wrong_media_type")
            }
            GatewayError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            GatewayError::Unreadable => (StatusCode::BAD_REQUEST, "bad_request"),
            GatewayError::UnknownGatewayKey { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unknown_gateway_key")
            }
            GatewayError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            GatewayError::Seal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        (status, Json(ErrorBody::new(code, self.to_string()))).into_response()
    }
}

/// The router.
pub fn app(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(OHTTP_PATH, post(ohttp))
        .route(STATUS_PATH, get(status))
        .with_state(gateway)
}

/// Serves `app(gateway)` on `listener` with `limits` until `shutdown` completes, reading the
/// CVMs' status every `refresh`.
pub async fn run(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    refresh: Duration,
    limits: &lucent_service::http::HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            loop {
                gateway.refresh().await;
                tokio::time::sleep(refresh).await;
            }
        }
    });
    let follower = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            let Some(redeemer) = gateway.redeemer() else {
                return;
            };
            loop {
                redeemer.sync(lucent_service::now_unix()).await;
                tokio::time::sleep(redeemer.follow_every()).await;
            }
        }
    });
    let served = lucent_service::http::serve(
        listener,
        app(gateway),
        limits,
        shutdown,
        Duration::from_secs(30),
    )
    .await;
    refresher.abort();
    follower.abort();
    served
}

async fn status(State(gateway): State<Arc<Gateway>>) -> Json<GatewayStatus> {
    Json(gateway.status())
}

async fn ohttp(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    if !lucent_service::http::content_type_is(&headers, REQUEST_MEDIA_TYPE) {
        return Err(GatewayError::WrongMediaType);
    }
    let request = lucent_service::http::read_body(&headers, body, MAX_OUTER_REQUEST_BYTES)
        .await
        .map_err(|e| match e {
            lucent_service::http::BodyError::TooLarge { .. } => GatewayError::TooLarge,
            _ => GatewayError::Unreadable,
        })?;
    let sealed = gateway.handle(&request).await.inspect_err(|e| {
        tracing::debug!(error = %e, "outer request refused");
    })?;
    let mut response = sealed.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RESPONSE_MEDIA_TYPE),
    );
    Ok(response)
}
