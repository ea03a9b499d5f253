//! Reading the log over HTTP: its checkpoint, proofs and lookups, as the typed answers of
//! `lucent_verifier::log_api`, each read with a size limit. Nothing here decides trust: the
//! caller verifies what it gets with `lucent_verifier`.
//!
//! Used by the embedded [`crate::Client`], the CVM runtime's boot self-check and the key
//! broker's and services' other HTTP reads ([`read_limited`]).

use lucent_verifier::log_api::{
    page_path, read_all_pages, ConsistencyAnswer, ErrorBody, InclusionAnswer, IssuersAnswer,
    KeyConfigsAnswer, LookupAnswer, PagesError, ReleasesAnswer, LOOKUP_PAGE_BYTES,
};
use lucent_verifier::merkle::{ConsistencyProof, InclusionProof};
use lucent_verifier::statement::Measurement;
use lucent_verifier::tiles::{decode_bundle, TilePath, MAX_BUNDLE_BYTES};

/// Largest answer read from the log: lookups list at most a bounded number of entries of at
/// most 64 KiB each, and every other answer is far smaller.
pub const MAX_LOG_ANSWER_BYTES: usize = 4 << 20;
const _: () = assert!(LOOKUP_PAGE_BYTES * 3 / 2 < MAX_LOG_ANSWER_BYTES);

/// Why an HTTP read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request could not be made or its answer not read (connection, timeout).
    #[error("{what} {url}: {reason}")]
    Http {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// Why.
        reason: String,
        /// Whether the client's time limit ran out (as opposed to a refused or broken
        /// connection).
        timed_out: bool,
    },
    /// The answer is larger than the reader accepts.
    #[error("{what} {url}: answer larger than {limit} bytes")]
    TooLarge {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The server answered with an error.
    #[error("{what} {url}: HTTP {status}: {code}: {message}")]
    Refused {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's error code ([`ErrorBody::error`]), or `http_<status>`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// An answer was not in the expected form.
    #[error("{what} {url}: malformed answer: {reason}")]
    Malformed {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
}

impl FetchError {
    /// The [`FetchError::Http`] of a failed request or read of `what` at `url`.
    pub fn from_reqwest(what: &'static str, url: &str, e: &reqwest::Error) -> Self {
        FetchError::Http {
            what,
            url: url.to_owned(),
            reason: e.to_string(),
            timed_out: e.is_timeout(),
        }
    }
}

/// Reads a whole answer body, whatever its status, at most `limit` bytes.
pub async fn read_body(
    what: &'static str,
    url: &str,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        what,
        url: url.to_owned(),
        limit,
    };
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FetchError::from_reqwest(what, url, &e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a whole answer, at most `limit` bytes; a non-success status becomes
/// [`FetchError::Refused`] with the server's [`ErrorBody`] code when it sent one.
pub async fn read_limited(
    what: &'static str,
    url: &str,
    resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let status = resp.status();
    let body = read_body(what, url, resp, limit).await?;
    if !status.is_success() {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => (e.error, e.message),
            Err(_) => (
                format!("http_{}", status.as_u16()),
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            ),
        };
        return Err(FetchError::Refused {
            what,
            url: url.to_owned(),
            status: status.as_u16(),
            code,
            message,
        });
    }
    Ok(body)
}

/// Sends `request` and reads the answer with [`read_limited`].
pub async fn fetch(
    what: &'static str,
    url: &str,
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let resp = request
        .send()
        .await
        .map_err(|e| FetchError::from_reqwest(what, url, &e))?;
    read_limited(what, url, resp, limit).await
}

/// The log's read API.
#[derive(Debug, Clone)]
pub struct LogClient {
    http: reqwest::Client,
    base: String,
}

impl LogClient {
    /// A client for the log at `base` (an http(s) URL prefix).
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        LogClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn malformed(&self, what: &'static str, path: &str, e: impl std::fmt::Display) -> FetchError {
        FetchError::Malformed {
            what,
            url: self.url(path),
            reason: e.to_string(),
        }
    }

    async fn get(&self, what: &'static str, path: &str) -> Result<Vec<u8>, FetchError> {
        let url = self.url(path);
        fetch(what, &url, self.http.get(&url), MAX_LOG_ANSWER_BYTES).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
    ) -> Result<T, FetchError> {
        self.get_checked(what, path, Ok::<T, serde_json::Error>)
            .await
    }

    /// Fetches and parses the JSON answer at `path`, then applies `check` to it; a failure of
    /// either is a malformed answer.
    async fn get_checked<A, T, E>(
        &self,
        what: &'static str,
        path: &str,
        check: impl FnOnce(A) -> Result<T, E>,
    ) -> Result<T, FetchError>
    where
        A: serde::de::DeserializeOwned,
        E: std::fmt::Display,
    {
        let body = self.get(what, path).await?;
        let answer = serde_json::from_slice(&body).map_err(|e| self.malformed(what, path, e))?;
        check(answer).map_err(|e| self.malformed(what, path, e))
    }

    /// The latest checkpoint note (unverified).
    pub async fn checkpoint(&self) -> Result<Vec<u8>, FetchError> {
        self.get("checkpoint", "/checkpoint").await
    }

    /// A consistency proof from `old` to `new` (checked for shape, not verified).
    pub async fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProof, FetchError> {
        let path = format!("/v1/proof/consistency?old={old}&new={new}");
        self.get_checked("consistency proof", &path, |a: ConsistencyAnswer| {
            a.proof_of(old, new)
        })
        .await
    }

    /// An inclusion proof of `index` in the tree of `size` (checked for shape, not verified).
    pub async fn inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, FetchError> {
        let path = format!("/v1/proof/inclusion?index={index}&size={size}");
        self.get_checked("inclusion proof", &path, |a: InclusionAnswer| {
            a.proof_of(index, size)
        })
        .await
    }

    /// The releases and revocations logged for `measurement`, every page, newest first
    /// (unverified entries).
    pub async fn releases(&self, measurement: &Measurement) -> Result<ReleasesAnswer, FetchError> {
        self.lookup(
            "releases",
            &format!("/v1/releases/{}", measurement.to_hex()),
        )
        .await
    }

    /// The key configs logged under `key_id`, every page, newest first (unverified entries).
    pub async fn keyconfigs(&self, key_id: u8) -> Result<KeyConfigsAnswer, FetchError> {
        self.lookup("key configs", &format!("/v1/keyconfigs/{key_id}"))
            .await
    }

    /// The issuer key statements logged for `key_id` (a token key id), every page, newest
    /// first (unverified entries).
    pub async fn issuers(&self, key_id: &[u8; 32]) -> Result<IssuersAnswer, FetchError> {
        self.lookup(
            "issuer keys",
            &format!("/v1/issuers/{}", hex::encode(key_id)),
        )
        .await
    }

    /// Every page of the lookup at `path`, joined; refused unless each page continues the
    /// last and the entries add up to the log's totals.
    async fn lookup<A: LookupAnswer>(
        &self,
        what: &'static str,
        path: &str,
    ) -> Result<A, FetchError> {
        read_all_pages(|before| {
            let page = page_path(path, before);
            async move { self.get_json(what, &page).await }
        })
        .await
        .map_err(|e| match e {
            PagesError::Fetch(e) => e,
            PagesError::Answer(e) => self.malformed(what, path, e),
        })
    }
}

impl LogClient {
    /// The entries of the entry bundle `tile` (C2SP `tlog-tiles`), split but unverified: the
    /// caller hashes them into the tree and compares the root with a verified checkpoint.
    pub async fn bundle(&self, tile: TilePath) -> Result<Vec<Vec<u8>>, FetchError> {
        let path = format!("/{}", tile.path());
        let url = self.url(&path);
        let data = fetch("entry bundle", &url, self.http.get(&url), MAX_BUNDLE_BYTES).await?;
        // A tile is at most 256 wide.
        let want = usize::try_from(tile.width()).unwrap_or(usize::MAX);
        decode_bundle(&data, want).map_err(|e| self.malformed("entry bundle", &path, e))
    }
}
