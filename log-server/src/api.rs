//! The HTTP API: submission, the C2SP `tlog-tiles` read API, JSON proofs and lookups,
//! health and metrics. Handlers are thin: checks are `lucent_verifier`'s, storage is the
//! [`LogStore`](crate::store::LogStore)'s, and every failure is an [`ApiError`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use lucent_verifier::log_api::{
    ConsistencyAnswer, Entry, Health, InclusionAnswer, IssuersAnswer, KeyConfigsAnswer, LogInfo,
    ReleasesAnswer, SubmitAnswer, LOOKUP_PAGE_BYTES, LOOKUP_PAGE_ENTRIES,
};
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::NoteVerifierKey;
use lucent_verifier::statement::{self, Platform, MAX_STATEMENT_BYTES};
use lucent_verifier::tlog_proof::TlogProof;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::sequencer::{lookup_key, Placed, SequencerWatch, Submission};
use crate::store::{Candidate, LookupPage, PageRequest, SharedStore};
use crate::tree::{self, TilePath};

pub use lucent_verifier::log_api::MAX_WAIT_SECONDS;
/// Bytes of full tiles kept in memory (they never change).
const TILE_CACHE_BYTES: usize = 64 << 20;

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Submissions per second over all clients (`None`: unlimited).
    pub submit_rate: Option<f64>,
    /// How long a server that is not the sequencer waits for a queued submission.
    pub follower_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            submit_rate: None,
            follower_wait: Duration::from_secs(10),
        }
    }
}

/// The log-wide submission rate limit.
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `limits.submit_rate`, if there is one.
    pub(crate) fn for_limits(limits: &Limits) -> Option<Mutex<TokenBucket>> {
        limits.submit_rate.map(|rate| {
            Mutex::new(TokenBucket {
                rate,
                tokens: rate.max(1.0),
                last: Instant::now(),
            })
        })
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let burst = self.rate.max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Recently served full tiles.
#[derive(Default)]
pub(crate) struct TileCache {
    tiles: HashMap<TilePath, Bytes>,
    bytes: usize,
}

/// Everything a handler needs; [`crate::server`] assembles it.
pub struct AppState {
    pub(crate) store: SharedStore,
    pub(crate) operators: Vec<NoteVerifierKey>,
    pub(crate) log_key: NoteVerifierKey,
    pub(crate) submit: mpsc::Sender<Submission>,
    pub(crate) seq: SequencerWatch,
    pub(crate) published: watch::Receiver<u64>,
    pub(crate) metrics: Metrics,
    pub(crate) limits: Limits,
    pub(crate) bucket: Option<Mutex<TokenBucket>>,
    pub(crate) tiles: Mutex<TileCache>,
}

type AppResult = Result<Response, ApiError>;
type St = State<Arc<AppState>>;

/// The router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/statements", post(submit))
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*rest}", get(tile))
        .route("/v1/entries/{index}", get(entry))
        .route("/v1/proof/inclusion", get(inclusion))
        .route("/v1/proof/consistency", get(consistency))
        .route("/v1/releases/{measurement}", get(releases))
        .route("/v1/keyconfigs/{key_id}", get(keyconfigs))
        .route("/v1/issuers/{key_id}", get(issuers))
        .route("/v1/log", get(log_info))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::NotFound {
                code: "no_such_endpoint",
                message: "no such endpoint".into(),
            }
        })
        // A method an endpoint does not take: the usual JSON error, not an empty 405.
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::MethodNotAllowed {
                method: method.to_string(),
            }
        })
        .with_state(state)
}

fn query_u64(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => {
            if v.is_empty()
                || !v.bytes().all(|b| b.is_ascii_digit())
                || (v.len() > 1 && v.starts_with('0'))
            {
                return Err(ApiError::BadParameter(format!(
                    "{name}={v:?} is not a canonical decimal number"
                )));
            }
            v.parse()
                .map(Some)
                .map_err(|_| ApiError::BadParameter(format!("{name}={v:?} is too large")))
        }
    }
}

fn query_map(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadParameter(e.body_text()))
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > MAX_STATEMENT_BYTES {
            return Err(ApiError::TooLarge {
                got: len,
                limit: MAX_STATEMENT_BYTES,
            });
        }
    }
    match http_body_util::Limited::new(body, MAX_STATEMENT_BYTES)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge {
            got: MAX_STATEMENT_BYTES + 1,
            limit: MAX_STATEMENT_BYTES,
        }),
        Err(e) => Err(ApiError::BodyRead(e.to_string())),
    }
}

async fn submit(
    State(st): St,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> AppResult {
    let result = submit_inner(&st, q, &headers, body).await;
    let outcome = match &result {
        Ok(_) => "accepted",
        Err(e) => e.status_and_code().1,
    };
    st.metrics.submissions.with_label_values(&[outcome]).inc();
    result
}

async fn submit_inner(
    st: &AppState,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> AppResult {
    let q = query_map(q)?;
    let wait = query_u64(&q, "wait")?.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::BadParameter(format!(
            "wait={wait} exceeds {MAX_WAIT_SECONDS} seconds"
        )));
    }
    if let Some(b) = &st.bucket {
        let ok = b.lock().map(|mut b| b.take()).unwrap_or(false);
        if !ok {
            return Err(ApiError::RateLimited);
        }
    }
    let bytes = read_body(headers, body).await?;
    let signed = statement::verify_log_entry(&bytes, &st.operators)?;
    let (kind, lookup) = lookup_key(&signed.statement);
    let candidate = Candidate::new(bytes.to_vec(), kind, lookup);
    let (leaf, body) = (candidate.leaf, candidate.body);
    if let Some((index, leaf)) = st.store.find_body(body).await? {
        return Err(ApiError::AlreadyLogged { index, leaf });
    }
    let placed = if *st.seq.leader.borrow() {
        let (reply, rx) = oneshot::channel();
        st.submit
            .send(Submission { candidate, reply })
            .await
            .map_err(|_| ApiError::ShuttingDown)?;
        rx.await
            .map_err(|_| ApiError::ShuttingDown)?
            .map_err(|e| ApiError::Internal(e.to_string()))?
    } else {
        st.store.add_pending(candidate).await?;
        let deadline = Instant::now() + st.limits.follower_wait;
        loop {
            if let Some((index, logged)) = st.store.find_body(body).await? {
                // Another server may have sequenced another encoding of the statement.
                break Placed {
                    index,
                    duplicate: logged != leaf,
                };
            }
            if Instant::now() >= deadline {
                return Err(ApiError::NotSequenced);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if placed.duplicate {
        let logged = st.store.find_body(body).await?.map_or(leaf, |(_, l)| l);
        return Err(ApiError::AlreadyLogged {
            index: placed.index,
            leaf: logged,
        });
    }
    let mut answer = SubmitAnswer {
        index: placed.index,
        leaf_hash: leaf,
        tree_size: None,
        inclusion_proof: None,
        checkpoint: None,
        tlog_proof: None,
        message: None,
    };
    if wait == 0 {
        return Ok(Json(answer).into_response());
    }
    let need = placed.index + 1;
    let deadline = Instant::now() + Duration::from_secs(wait);
    let cp = loop {
        if let Some(cp) = st.store.latest_checkpoint(true).await? {
            if cp.size >= need {
                break Some(cp);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        let mut published = st.published.clone();
        let _ = tokio::time::timeout(
            left.min(Duration::from_millis(100)),
            published.wait_for(|&s| s >= need),
        )
        .await;
    };
    let Some(cp) = cp else {
        answer.message = Some("sequenced; no published checkpoint covers it yet".into());
        return Ok((StatusCode::ACCEPTED, Json(answer)).into_response());
    };
    let proof = tree::prove_inclusion(&*st.store, placed.index, cp.size).await?;
    let bundle = TlogProof {
        extra: None,
        index: placed.index,
        hashes: proof.hashes.clone(),
        checkpoint: cp.note.clone(),
    };
    answer.tree_size = Some(cp.size);
    answer.inclusion_proof = Some(proof.hashes);
    answer.checkpoint = Some(String::from_utf8_lossy(&cp.note).into_owned());
    answer.tlog_proof = Some(String::from_utf8_lossy(&bundle.to_bytes()).into_owned());
    Ok(Json(answer).into_response())
}

async fn checkpoint(State(st): St) -> AppResult {
    let cp = st
        .store
        .latest_checkpoint(true)
        .await?
        .ok_or(ApiError::NotFound {
            code: "checkpoint_not_found",
            message: "no checkpoint published yet".into(),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        cp.note,
    )
        .into_response())
}

async fn tile(State(st): St, path: Result<Path<String>, PathRejection>) -> AppResult {
    let Path(rest) = path.map_err(|e| ApiError::BadTilePath(e.body_text()))?;
    let t = TilePath::parse(&rest).map_err(|e| ApiError::BadTilePath(e.to_string()))?;
    if t.is_full() {
        let hit = st.tiles.lock().ok().and_then(|c| c.tiles.get(&t).cloned());
        if let Some(data) = hit {
            return Ok(tile_response(&t, data));
        }
    }
    let size = st.store.tree_size().await?;
    let data = tree::read_tile(&*st.store, t, size)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "tile_not_found",
            message: format!("{} is not in the tree of size {size}", t.path()),
        })?;
    let data = Bytes::from(data);
    if t.is_full() {
        if let Ok(mut c) = st.tiles.lock() {
            if c.bytes + data.len() > TILE_CACHE_BYTES {
                c.tiles.clear();
                c.bytes = 0;
            }
            c.bytes += data.len();
            c.tiles.insert(t, data.clone());
        }
    }
    Ok(tile_response(&t, data))
}

fn tile_response(t: &TilePath, data: Bytes) -> Response {
    let cache = if t.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    let mut resp = data.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

fn path_u64(p: Result<Path<String>, PathRejection>, what: &str) -> Result<u64, ApiError> {
    let Path(v) = p.map_err(|e| ApiError::BadParameter(e.body_text()))?;
    let mut m = HashMap::new();
    m.insert(what.to_owned(), v);
    query_u64(&m, what)?.ok_or_else(|| ApiError::BadParameter(format!("missing {what}")))
}

async fn entry(State(st): St, p: Result<Path<String>, PathRejection>) -> AppResult {
    let index = path_u64(p, "index")?;
    let not_found = || ApiError::NotFound {
        code: "entry_not_found",
        message: format!("no entry at index {index}"),
    };
    // Any index past the tree is simply absent, however large (the store's indexes are
    // 63-bit).
    if index >= st.store.tree_size().await? {
        return Err(not_found());
    }
    let e = st
        .store
        .entries(index, index.saturating_add(1))
        .await?
        .pop()
        .ok_or_else(not_found)?;
    Ok(Json(Entry::new(index, e)).into_response())
}

/// The tree size a proof is asked at: `size=` or the latest published checkpoint's.
async fn proof_size(st: &AppState, size: Option<u64>) -> Result<u64, ApiError> {
    let tree_size = st.store.tree_size().await?;
    match size {
        Some(s) if s > tree_size => Err(ApiError::BadProofParameters(format!(
            "size {s} is beyond the tree (size {tree_size})"
        ))),
        Some(s) => Ok(s),
        None => Ok(st
            .store
            .latest_checkpoint(true)
            .await?
            .map(|c| c.size)
            .unwrap_or(0)),
    }
}

async fn inclusion(
    State(st): St,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> AppResult {
    let q = query_map(q)?;
    let size = proof_size(&st, query_u64(&q, "size")?).await?;
    let index = match (query_u64(&q, "index")?, q.get("leaf_hash")) {
        (Some(i), None) => i,
        (None, Some(h)) => {
            let leaf = lucent_verifier::merkle::Hash::from_hex(h)
                .map(LeafHash)
                .map_err(|e| ApiError::BadParameter(format!("leaf_hash: {e}")))?;
            st.store
                .find_leaf(leaf)
                .await?
                .ok_or_else(|| ApiError::NotFound {
                    code: "leaf_not_found",
                    message: format!("leaf {leaf} is not in the log"),
                })?
        }
        _ => {
            return Err(ApiError::BadProofParameters(
                "give exactly one of index= and leaf_hash=".into(),
            ))
        }
    };
    let proof = tree::prove_inclusion(&*st.store, index, size).await?;
    let root = tree::root_at(&*st.store, size).await?;
    let cp = st.store.checkpoint_at(size).await?;
    Ok(Json(InclusionAnswer {
        index,
        tree_size: size,
        root,
        hashes: proof.hashes,
        checkpoint: cp
            .filter(|c| c.published)
            .map(|c| String::from_utf8_lossy(&c.note).into_owned()),
    })
    .into_response())
}

async fn consistency(
    State(st): St,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> AppResult {
    let q = query_map(q)?;
    let old = query_u64(&q, "old")?
        .ok_or_else(|| ApiError::BadProofParameters("old= is required".into()))?;
    let new = proof_size(&st, query_u64(&q, "new")?).await?;
    let proof = tree::prove_consistency(&*st.store, old, new).await?;
    Ok(Json(ConsistencyAnswer {
        old,
        new,
        hashes: proof.hashes,
    })
    .into_response())
}

/// The page `?before=` asks for, within the contract's page bounds.
fn page_request(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<PageRequest, ApiError> {
    let q = query_map(q)?;
    if let Some(other) = q.keys().find(|k| k.as_str() != "before") {
        return Err(ApiError::BadParameter(format!(
            "unknown parameter {other:?}"
        )));
    }
    Ok(PageRequest {
        before: query_u64(&q, "before")?,
        max_entries: LOOKUP_PAGE_ENTRIES,
        max_bytes: LOOKUP_PAGE_BYTES,
    })
}

/// The page's entries of `kind`, newest first.
fn entries_of(page: &LookupPage, kind: &str) -> Vec<Entry> {
    page.entries
        .iter()
        .filter(|(_, k, _)| k == kind)
        .map(|(index, _, e)| Entry::new(*index, e.clone()))
        .collect()
}

async fn releases(
    State(st): St,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> AppResult {
    let Path(m) = p.map_err(|e| ApiError::BadParameter(e.body_text()))?;
    // A measurement is as long as one platform's (SEV-SNP 48 bytes, TDX 240): the lengths
    // come from the statement format, so every release the log holds can be looked up.
    let bytes = hex::decode(&m)
        .ok()
        .filter(|b| {
            [Platform::SevSnp, Platform::Tdx]
                .iter()
                .any(|p| p.measurement_len() == b.len())
        })
        .ok_or_else(|| {
            ApiError::BadParameter(
                "measurement is not the hex of a 48-byte (SEV-SNP) or 240-byte (TDX) digest".into(),
            )
        })?;
    let page = st
        .store
        .lookup(&["release", "revoke"], bytes, page_request(q)?)
        .await?;
    Ok(Json(ReleasesAnswer {
        measurement: m.to_ascii_lowercase(),
        releases: entries_of(&page, "release"),
        revocations: entries_of(&page, "revoke"),
        total_releases: page.totals[0],
        total_revocations: page.totals[1],
        next_before: page.next_before,
    })
    .into_response())
}

async fn keyconfigs(
    State(st): St,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> AppResult {
    let id = path_u64(p, "key_id")?;
    let id = u8::try_from(id)
        .map_err(|_| ApiError::BadParameter(format!("key id {id} is not 0 to 255")))?;
    let page = st
        .store
        .lookup(&["keyconfig"], vec![id], page_request(q)?)
        .await?;
    Ok(Json(KeyConfigsAnswer {
        key_id: id,
        keyconfigs: entries_of(&page, "keyconfig"),
        total: page.totals[0],
        next_before: page.next_before,
    })
    .into_response())
}

async fn issuers(
    State(st): St,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> AppResult {
    let Path(id) = p.map_err(|e| ApiError::BadParameter(e.body_text()))?;
    let bytes = hex::decode(&id)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            ApiError::BadParameter("key id is not the hex of a 32-byte token key id".into())
        })?;
    let page = st
        .store
        .lookup(&["issuer"], bytes, page_request(q)?)
        .await?;
    Ok(Json(IssuersAnswer {
        key_id: id.to_ascii_lowercase(),
        issuers: entries_of(&page, "issuer"),
        total: page.totals[0],
        next_before: page.next_before,
    })
    .into_response())
}

async fn log_info(State(st): St) -> AppResult {
    Ok(Json(LogInfo {
        origin: st.log_key.name().to_owned(),
        verifier_key: st.log_key.as_str().to_owned(),
        tree_size: st.store.tree_size().await?,
        published_size: *st.published.borrow(),
        sequencer: *st.seq.leader.borrow(),
    })
    .into_response())
}

async fn healthz(State(st): St) -> AppResult {
    let size = st.store.tree_size().await?;
    Ok(Json(Health {
        status: "ok".into(),
        tree_size: size,
        sequencer: *st.seq.leader.borrow(),
    })
    .into_response())
}

async fn metrics(State(st): St) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}
