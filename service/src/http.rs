//! Serving HTTP the same way in every Lucent service: one connection per task, and the limits
//! that keep a slow or greedy client from holding what others need, on by default.
//!
//! - **Header read timeout** ([`HttpLimits::header_read_timeout_ms`], default 10 s): a
//!   connection that does not finish sending a request's headers in time is closed
//!   (hyper's HTTP/1 `header_read_timeout`, also between requests on a kept-alive
//!   connection).
//! - **Body read timeout** ([`HttpLimits::body_read_timeout_ms`], default 30 s): a request
//!   body not fully received in time fails the read, so a handler waiting on it returns
//!   (tower-http's `RequestBodyTimeoutLayer`).
//! - **Per-source rate limit** ([`HttpLimits::per_source_per_second`] and
//!   [`HttpLimits::per_source_burst`], default 100 per second after a burst of 1,000): a
//!   token bucket per peer IP address (the `governor` crate through `tower_governor`);
//!   past it, 429 `rate_limited` with `Retry-After`. Only
//!   [`HttpLimits::dangerous_no_rate_limit`] turns it off.
//!
//! A service behind a reverse proxy sees the proxy's address: the per-source limit then
//! applies to the proxy as a whole, which fails safe (it limits more, never less).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tower::ServiceExt as _;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::{KeyExtractor, PeerIpKeyExtractor};
use tower_governor::{GovernorError, GovernorLayer};

/// The limits every service applies to its connections (a `[http]` table in its
/// configuration file). Defaults are the safe settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Longest time to receive a request's headers, in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Longest time to receive a request's body, in milliseconds.
    pub body_read_timeout_ms: u64,
    /// Requests per second one peer address may send, sustained.
    pub per_source_per_second: u32,
    /// Requests one peer address may send at once before the sustained rate applies.
    pub per_source_burst: u32,
    /// No per-source rate limit at all: any one address can then take every slot the
    /// service has. For load tests on one machine only.
    pub dangerous_no_rate_limit: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            per_source_per_second: 100,
            per_source_burst: 1_000,
            dangerous_no_rate_limit: false,
        }
    }
}

/// Why the limits cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpLimitsError {
    /// A timeout or rate of zero (turn the rate limit off with `dangerous_no_rate_limit`).
    #[error("[http] {0} must be positive")]
    Zero(&'static str),
}

impl HttpLimits {
    /// Checks that every limit is usable.
    pub fn check(&self) -> Result<(), HttpLimitsError> {
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            (
                "per_source_per_second",
                u64::from(self.per_source_per_second),
            ),
            ("per_source_burst", u64::from(self.per_source_burst)),
        ] {
            if value == 0 {
                return Err(HttpLimitsError::Zero(name));
            }
        }
        Ok(())
    }

    /// `router` with the body read timeout and the per-source rate limit applied. Requests
    /// must carry their peer's `ConnectInfo<SocketAddr>` ([`serve`] adds it); a request
    /// without one is limited as one shared source.
    pub fn apply(&self, router: Router) -> Result<Router, HttpLimitsError> {
        self.check()?;
        let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_millis(self.body_read_timeout_ms),
        ));
        if self.dangerous_no_rate_limit {
            return Ok(router);
        }
        // One token every 1/rate seconds, at least one nanosecond.
        let period =
            Duration::from_nanos((1_000_000_000 / u64::from(self.per_source_per_second)).max(1));
        let config = GovernorConfigBuilder::default()
            .key_extractor(PeerOrShared)
            .period(period)
            .burst_size(self.per_source_burst)
            .finish()
            .ok_or(HttpLimitsError::Zero("per_source_per_second"))?;
        let limiter = config.limiter().clone();
        // Forget sources idle long enough to have refilled, so spraying addresses cannot
        // grow the table for ever.
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                limiter.retain_recent();
            }
        });
        Ok(router.layer(GovernorLayer::new(Arc::new(config)).error_handler(rate_limited)))
    }
}

/// The peer's IP address, or one shared key for requests that carry none (in-process
/// tests): never an error, so no request escapes the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PeerOrShared;

impl KeyExtractor for PeerOrShared {
    type Key = Option<IpAddr>;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        Ok(PeerIpKeyExtractor.extract(req).ok())
    }
}

/// The answer past the limit: 429 with the one error body every service gives.
fn rate_limited(e: GovernorError) -> Response<Body> {
    let (status, wait, message) = match e {
        GovernorError::TooManyRequests { wait_time, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            wait_time.max(1),
            format!(
                "too many requests from this address; retry in {} s",
                wait_time.max(1)
            ),
        ),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            1,
            format!("rate limiter: {other}"),
        ),
    };
    let code = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limited"
    } else {
        "internal"
    };
    let body = lucent_verifier::log_api::ErrorBody::new(code, message);
    let json = serde_json::to_vec(&body).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::RETRY_AFTER, wait.to_string())
        .body(Body::from(json))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then lets the
/// connections finish their requests (at most `drain`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let router = limits
        .apply(router)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // No Nagle delay: a response written in more than one piece must not wait for the
        // client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let service = router
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let service = hyper::service::service_fn(move |req| {
            let service = service.clone();
            async move {
                let response = match service.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response)
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_ms = drain.as_millis(),
            "connections still open after the drain time; closing them"
        );
    }
    Ok(())
}

/// Why a request body could not be read whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// Longer than the limit (said by its `Content-Length`, or found while reading).
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The connection failed or timed out before the body was complete.
    #[error("the request body could not be read")]
    Unreadable,
}

/// Whether the request's `content-type` is `media` (ASCII case ignored, no parameters).
pub fn content_type_is(headers: &axum::http::HeaderMap, media: &str) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(media))
}

/// Reads a whole request body of at most `limit` bytes; a `Content-Length` over the limit
/// is refused before anything is read.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(BodyError::TooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            BodyError::TooLarge { limit }
        } else {
            BodyError::Unreadable
        }
    })
}
