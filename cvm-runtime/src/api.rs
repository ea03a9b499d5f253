//! The HTTP API, serving the contract in [`lucent_verifier::cvm_api`] that `lucent_client`
//! reads.
//!
//! - `GET /v1/attestation[?nonce=<standard base64 of 16 to 64 bytes>]` → 200
//!   `application/json`: the `lucent/bundle/v1` bundle, its evidence binding
//!   `report_data(key_config, nonce)` (fresh evidence when a nonce is given).
//! - `POST /v1/summarize`, `POST /v1/suggest`: an RFC 9458 encapsulated request
//!   ([`MediaLabels::LUCENT_CVM`](lucent_verifier::encapsulation::MediaLabels::LUCENT_CVM))
//!   whose plaintext is `{"text": string, "max_tokens": u32?}` → 200
//!   `message/ohttp-res`: the sealed response, whose plaintext is
//!   `{"output": string, "tokens": u32, "model_ms": u64}`.
//! - `GET /v1/status` → `{"state": "open"|"closed", "code", "measurement", "log_size",
//!   "key_id", "attester"}` (public facts only).
//!
//! Errors are `{"error": code, "message": text}` ([`ApiError`]): while closed, every
//! endpoint but `/v1/status` answers 503 with the closed code (`not_logged`, `revoked`,
//! `expired`, `unverifiable`, `key_refused`, …) and a message naming the measurement and the
//! log size checked. Request errors: `too_large` (413), `truncated`, `unknown_key_id`,
//! `bad_frame`, `bad_request`, `bad_nonce` (400), `replayed` (409), `model_refused` (422),
//! `timeout` (504), `busy` (503). No error message contains request content.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Query, State};
use axum::http::{header, HeaderMap, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lucent_model::{LanguageModel, ModelError, StopReason, Task};
use lucent_verifier::cvm_api::{
    self, pad_to_bucket, padded_len, Status, TaskAnswer, TaskReply, TaskRequest,
};
use lucent_verifier::encapsulation::{
    open_request, EncapsulationError, MIN_REQUEST_BYTES, PUBLIC_KEY_LEN, REQUEST_HEADER_LEN,
};
use zeroize::Zeroizing;

use crate::boot::attest;
use crate::error::ApiError;
use crate::runtime::{Phase, Runtime};

/// Shortest nonce accepted on `/v1/attestation`.
pub const MIN_NONCE_BYTES: usize = 16;
/// Longest nonce accepted on `/v1/attestation`.
pub const MAX_NONCE_BYTES: usize = 64;

/// The router.
pub fn app(rt: Arc<Runtime>) -> Router {
    let mut router = Router::new().route(cvm_api::ATTESTATION_PATH, get(attestation));
    for task in Task::ALL {
        let serve = move |State(rt): State<Arc<Runtime>>, headers: HeaderMap, body: Body| async move {
            handle(rt, task, &headers, body).await
        };
        router = router.route(task.path(), post(serve));
    }
    router
        .route(cvm_api::STATUS_PATH, get(status))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn(access_log))
        .with_state(rt)
}

/// Serves `app(rt)` on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    rt: Arc<Runtime>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = rt.config.file.http.clone();
    lucent_service::http::serve(
        listener,
        app(rt),
        &limits,
        shutdown,
        std::time::Duration::from_secs(30),
    )
    .await
}

/// Allow-listed fields only: route template, status and a coarse duration bucket. Never the
/// query, headers, body, or a precise time.
async fn access_log(req: Request<Body>, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let t = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        method = %method,
        route = %route,
        status = resp.status().as_u16(),
        duration = coarse_duration(t.elapsed()),
        "request"
    );
    resp
}

/// A request's duration as a coarse bucket: the log must not tell how long the model ran on
/// someone's text (which depends on its length and content).
fn coarse_duration(d: Duration) -> &'static str {
    match d.as_millis() {
        0..=99 => "<0.1s",
        100..=999 => "<1s",
        1000..=9_999 => "<10s",
        _ => ">=10s",
    }
}

fn open_phase(rt: &Runtime) -> Result<Arc<crate::runtime::Open>, ApiError> {
    match rt.phase() {
        Phase::Open(o) => Ok(o),
        Phase::Closed(c) => Err(ApiError::Closed(c)),
    }
}

async fn status(State(rt): State<Arc<Runtime>>) -> Response {
    let key_id = rt.keypair.key_id();
    let attester = rt.attester.name().to_owned();
    let body = match rt.phase() {
        Phase::Open(o) => Status {
            state: "open".into(),
            code: "open".into(),
            measurement: Some(o.check.measurement.clone()),
            log_size: Some(o.check.log_size()),
            release_index: Some(o.check.verdict.release_index),
            message: None,
            key_id,
            attester,
        },
        Phase::Closed(c) => Status {
            state: "closed".into(),
            code: c.code.into(),
            measurement: c.measurement.clone(),
            log_size: c.log_size,
            release_index: None,
            message: Some(c.message()),
            key_id,
            attester,
        },
    };
    axum::Json(body).into_response()
}

fn parse_nonce(q: &HashMap<String, String>) -> Result<Option<Vec<u8>>, ApiError> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "nonce") {
        return Err(ApiError::BadNonce {
            reason: format!("unknown query parameter ({} bytes long name)", k.len()),
        });
    }
    let Some(text) = q.get("nonce") else {
        return Ok(None);
    };
    let nonce = B64.decode(text).map_err(|_| ApiError::BadNonce {
        reason: "nonce is not standard padded base64".into(),
    })?;
    if !(MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&nonce.len()) {
        return Err(ApiError::BadNonce {
            reason: format!(
                "nonce is {} bytes, want {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES}",
                nonce.len()
            ),
        });
    }
    Ok(Some(nonce))
}

async fn attestation(
    State(rt): State<Arc<Runtime>>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let open = open_phase(&rt)?;
    let q = q.map(|Query(q)| q).map_err(|_| ApiError::BadNonce {
        reason: "the query string is malformed".into(),
    })?;
    let nonce = parse_nonce(&q)?;
    let mut bundle = open.check.bundle.clone();
    if let Some(nonce) = nonce {
        // Each fresh report is the hardware's work: at most a few at once (the per-source
        // rate limit bounds how often one address asks).
        let _slot = rt.attestations.try_acquire().map_err(|_| ApiError::Busy {
            limit: rt.config.file.max_concurrent_attestations,
        })?;
        let rt2 = rt.clone();
        let evidence = tokio::task::spawn_blocking(move || {
            attest(rt2.attester.as_ref(), &rt2.key_config, Some(&nonce))
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|c| ApiError::Internal(c.reason))?;
        bundle.evidence = evidence.evidence;
    }
    let bytes = bundle
        .encode()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let bytes = lucent_service::http::read_body(headers, body, limit)
        .await
        .map_err(|e| match e {
            lucent_service::http::BodyError::TooLarge { limit } => ApiError::TooLarge { limit },
            _ => ApiError::BadFrame {
                reason: "the request body could not be read".into(),
            },
        })?;
    Ok(Zeroizing::new(bytes.to_vec()))
}

fn encapsulation_error(e: EncapsulationError) -> ApiError {
    match e {
        EncapsulationError::Truncated { need, got, .. } => ApiError::Truncated { need, got },
        EncapsulationError::WrongKeyId { got, want } => ApiError::UnknownKeyId { got, want },
        EncapsulationError::Oversized { limit, .. } => ApiError::TooLarge { limit },
        // Every other variant carries only ids and lengths.
        other => ApiError::BadFrame {
            reason: other.to_string(),
        },
    }
}

async fn handle(
    rt: Arc<Runtime>,
    task: Task,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let open = open_phase(&rt)?;
    let bytes = read_body(headers, body, rt.config.file.max_body_bytes).await?;
    if bytes.len() < MIN_REQUEST_BYTES {
        return Err(ApiError::Truncated {
            need: MIN_REQUEST_BYTES,
            got: bytes.len(),
        });
    }
    if bytes[0] != rt.keypair.key_id() {
        return Err(ApiError::UnknownKeyId {
            got: bytes[0],
            want: rt.keypair.key_id(),
        });
    }
    let mut enc = [0u8; PUBLIC_KEY_LEN];
    enc.copy_from_slice(&bytes[REQUEST_HEADER_LEN..REQUEST_HEADER_LEN + PUBLIC_KEY_LEN]);
    if rt.replay.lock().map(|r| r.contains(&enc)).unwrap_or(true) {
        return Err(ApiError::Replayed);
    }
    let (plaintext, sealer) = open_request(&rt.keypair, &bytes).map_err(encapsulation_error)?;
    // Only requests that authenticated are remembered, so garbage cannot fill the window.
    if !rt.replay.lock().map(|mut r| r.insert(enc)).unwrap_or(false) {
        return Err(ApiError::Replayed);
    }
    // From here on every outcome is sealed to the client and padded: the wire shows the same
    // status and the bucket's length whether the model answered or refused.
    let reply = match answer(&rt, &open, task, plaintext).await {
        Ok(answer) => TaskReply::Answer(answer),
        Err(e) => {
            let (_, code) = e.status_and_code();
            TaskReply::Error(lucent_verifier::log_api::ErrorBody::new(
                code,
                e.to_string(),
            ))
        }
    };
    let json =
        Zeroizing::new(serde_json::to_vec(&reply).map_err(|e| ApiError::Internal(e.to_string()))?);
    drop(reply);
    // Room for the padding up front, so no copy of the answer is left behind unwiped.
    let mut plain = Zeroizing::new(Vec::with_capacity(padded_len(json.len())));
    plain.extend_from_slice(&json);
    drop(json);
    pad_to_bucket(&mut plain);
    let sealed = sealer
        .seal_response(&plain, &mut rand_core::OsRng)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "message/ohttp-res")], sealed).into_response())
}

/// Parses an opened request and runs the model on it.
async fn answer(
    rt: &Arc<Runtime>,
    open: &crate::runtime::Open,
    task: Task,
    plaintext: Zeroizing<Vec<u8>>,
) -> Result<TaskAnswer, ApiError> {
    let req: TaskRequest = serde_json::from_slice(&plaintext).map_err(|e| ApiError::BadRequest {
        // Category and position only: serde's message can quote the input.
        reason: format!(
            "plaintext is not {{\"text\": string, \"max_tokens\": u32?}}: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    })?;
    drop(plaintext);
    let permit = rt.running.try_acquire().map_err(|_| ApiError::Busy {
        limit: rt.config.file.max_concurrent,
    })?;
    let limit_ms = rt.config.file.request_timeout_ms;
    let max_tokens = req
        .max_tokens
        .map(|m| m as usize)
        .unwrap_or(rt.config.file.max_output_tokens)
        .min(rt.config.file.max_output_tokens);
    let model = open.model.clone();
    let t = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let deadline = t + Duration::from_millis(limit_ms);
        let guard = model
            .lock()
            .map_err(|_| ApiError::Internal("model lock poisoned".into()))?;
        run_task(&guard, task, &req, max_tokens, deadline, limit_ms)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    drop(permit);
    let (mut output, tokens) = result?;
    // The answer takes the text; it wipes it when dropped, as `output` would have.
    Ok(TaskAnswer {
        output: std::mem::take(&mut *output),
        tokens,
        model_ms: Some(t.elapsed().as_millis() as u64),
    })
}

fn model_error(e: ModelError) -> ApiError {
    match e {
        ModelError::InputTooLong { tokens, limit } => ApiError::ModelRefused {
            reason: format!("input is {tokens} tokens, limit {limit}"),
        },
        ModelError::InputTooLarge { bytes, limit, .. } => ApiError::ModelRefused {
            reason: format!("input is {bytes} bytes, limit {limit}"),
        },
        ModelError::EmptyInput(what) => ApiError::ModelRefused {
            reason: format!("empty input ({what})"),
        },
        // Other failures are the model's, not the input's; name the kind only.
        _ => ApiError::Internal("the model failed".into()),
    }
}

/// Runs one task on the model (`POST /v1/summarize` is [`Task::Summarize`], `POST
/// /v1/suggest` [`Task::Suggest`]; the prompt is the model's): the output text and the number
/// of tokens generated.
pub fn run_task_text(
    model: &LanguageModel,
    task: Task,
    text: &str,
    max_tokens: usize,
    deadline: Instant,
) -> Result<(Zeroizing<String>, u32), ApiError> {
    let answer = model
        .answer(task, text, max_tokens, &mut |_| {
            if Instant::now() > deadline {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .map_err(model_error)?;
    let output = Zeroizing::new(answer.text);
    if answer.stop == StopReason::Callback {
        return Err(ApiError::Timeout { limit_ms: 0 });
    }
    Ok((output, u32::try_from(answer.tokens).unwrap_or(u32::MAX)))
}

fn run_task(
    model: &LanguageModel,
    task: Task,
    req: &TaskRequest,
    max_tokens: usize,
    deadline: Instant,
    limit_ms: u64,
) -> Result<(Zeroizing<String>, u32), ApiError> {
    if Instant::now() > deadline {
        return Err(ApiError::Timeout { limit_ms });
    }
    run_task_text(model, task, &req.text, max_tokens, deadline).map_err(|e| match e {
        ApiError::Timeout { .. } => ApiError::Timeout { limit_ms },
        other => other,
    })
}
