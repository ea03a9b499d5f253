//! Reading the log's public files: over HTTP(S), or from a directory mirror with the same
//! layout. Everything read here is untrusted until a caller checks it against a verified
//! checkpoint; this module only bounds sizes and parses framing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::try_join_all;
use lucent_verifier::merkle::{ConsistencyProof, Hash, InclusionProof};
use lucent_verifier::note::MAX_NOTE_BYTES;
use lucent_verifier::tiles::{
    decode_bundle, TilePath, MAX_BUNDLE_BYTES, MAX_HASH_TILE_BYTES, TILE_HEIGHT,
};
use tlog_tiles::{HashReader, Tile, TileHashReader, TileReader};

use crate::AuditError;

/// Largest JSON answer read.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
enum Source {
    Http {
        base: String,
        client: reqwest::Client,
    },
    Dir(PathBuf),
}

/// A reader of one log's public files.
#[derive(Debug, Clone)]
pub struct LogClient {
    source: Source,
}

impl LogClient {
    /// `location` is an `http://` or `https://` URL prefix, or a directory.
    pub fn new(location: &str) -> Result<Self, AuditError> {
        let source = if location.starts_with("http://") || location.starts_with("https://") {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build()
                .map_err(|e| AuditError::Internal(format!("HTTP client: {e}")))?;
            Source::Http {
                base: location.trim_end_matches('/').to_owned(),
                client,
            }
        } else if let Some(dir) = location.strip_prefix("file://") {
            Source::Dir(PathBuf::from(dir))
        } else if location.contains("://") {
            return Err(AuditError::Usage(format!(
                "log location {location:?}: want http(s):// or a directory"
            )));
        } else if Path::new(location).is_dir() {
            Source::Dir(PathBuf::from(location))
        } else {
            return Err(AuditError::Usage(format!(
                "--log {location:?} is neither an http(s):// URL nor a directory; for a log \
                 server give its URL, for example --log http://{location}"
            )));
        };
        Ok(LogClient { source })
    }

    /// Whether the log is reached over HTTP (JSON endpoints are available).
    pub fn is_http(&self) -> bool {
        matches!(self.source, Source::Http { .. })
    }

    /// Human form of where a path is read from.
    pub fn url(&self, path: &str) -> String {
        match &self.source {
            Source::Http { base, .. } => format!("{base}/{path}"),
            Source::Dir(d) => d.join(path).display().to_string(),
        }
    }

    /// Reads one file of at most `limit` bytes.
    pub async fn get(&self, path: &str, limit: usize) -> Result<Vec<u8>, AuditError> {
        let url = self.url(path);
        match &self.source {
            Source::Dir(d) => {
                let p = d.join(path);
                let data = tokio::fs::read(&p).await.map_err(|e| AuditError::Fetch {
                    url: url.clone(),
                    why: e.to_string(),
                })?;
                if data.len() > limit {
                    return Err(AuditError::TooLarge { url, limit });
                }
                Ok(data)
            }
            Source::Http { client, .. } => {
                let resp = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| fetch_error(&url, &e))?;
                read_limited(&url, resp, limit).await
            }
        }
    }

    /// The latest checkpoint note (unverified).
    pub async fn checkpoint(&self) -> Result<Vec<u8>, AuditError> {
        self.get("checkpoint", MAX_NOTE_BYTES).await
    }

    /// The data of hash tiles, fetched concurrently (unverified).
    pub async fn tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, AuditError> {
        try_join_all(tiles.iter().map(|t| async move {
            let path = TilePath::try_from(*t)
                .map_err(|e| AuditError::Internal(format!("tile {}: {e}", t.path())))?
                .path();
            let data = self.get(&path, MAX_HASH_TILE_BYTES).await?;
            let want = t.width() as usize * 32;
            if data.len() != want {
                return Err(AuditError::BadTile {
                    path,
                    why: format!("{} bytes, want {want}", data.len()),
                });
            }
            Ok(data)
        }))
        .await
    }

    /// The entries of an entry bundle (unverified).
    pub async fn bundle(&self, tile: TilePath) -> Result<Vec<Vec<u8>>, AuditError> {
        let path = tile.path();
        let data = self.get(&path, MAX_BUNDLE_BYTES).await?;
        // A bundle's width is at most 256, so it fits.
        let want = usize::try_from(tile.width()).unwrap_or(usize::MAX);
        decode_bundle(&data, want).map_err(|e| AuditError::BadTile {
            path,
            why: e.to_string(),
        })
    }

    /// A JSON answer from the log's API (hints only: never trusted).
    pub async fn json(&self, path_and_query: &str) -> Result<serde_json::Value, AuditError> {
        if !self.is_http() {
            return Err(AuditError::Usage(format!(
                "{path_and_query}: the log's JSON API needs an http(s) log location"
            )));
        }
        let data = self.get(path_and_query, MAX_JSON_BYTES).await?;
        serde_json::from_slice(&data).map_err(|e| AuditError::Fetch {
            url: self.url(path_and_query),
            why: format!("not JSON: {e}"),
        })
    }

    /// Submits a statement note; returns the status and the JSON answer.
    pub async fn submit(
        &self,
        note: &[u8],
        wait_seconds: u64,
    ) -> Result<(u16, serde_json::Value), AuditError> {
        let Source::Http { base, client } = &self.source else {
            return Err(AuditError::Usage(
                "publishing needs an http(s) log URL".into(),
            ));
        };
        let url = if wait_seconds > 0 {
            format!("{base}/v1/statements?wait={wait_seconds}")
        } else {
            format!("{base}/v1/statements")
        };
        let resp = client
            .post(&url)
            .timeout(Duration::from_secs(wait_seconds + 30))
            .body(note.to_vec())
            .send()
            .await
            .map_err(|e| fetch_error(&url, &e))?;
        let status = resp.status().as_u16();
        let body = read_body(&url, resp, MAX_JSON_BYTES).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            serde_json::json!({
                "raw": String::from_utf8_lossy(&body[..body.len().min(512)]),
            })
        });
        Ok((status, v))
    }
}

fn fetch_error(url: &str, e: &reqwest::Error) -> AuditError {
    let mut why = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        why.push_str(": ");
        why.push_str(&s.to_string());
        src = s.source();
    }
    AuditError::Fetch {
        url: url.to_owned(),
        why,
    }
}

async fn read_body(
    url: &str,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, AuditError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(AuditError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_error(url, &e))? {
        if out.len() + chunk.len() > limit {
            return Err(AuditError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn read_limited(
    url: &str,
    resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, AuditError> {
    let status = resp.status();
    let body = read_body(url, resp, limit).await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(AuditError::Http {
            url: url.to_owned(),
            status: status.as_u16(),
            body: text,
        });
    }
    Ok(body)
}

/// A synchronous [`TileReader`] over a [`LogClient`], for `tlog_tiles`' proof code. It must
/// run on a blocking thread (it blocks on the async client); fetch errors are kept so the
/// caller sees the real cause instead of `tlog_tiles`' generic error.
struct BlockingTiles {
    client: LogClient,
    handle: tokio::runtime::Handle,
    cache: Mutex<HashMap<Tile, Vec<u8>>>,
    error: Mutex<Option<AuditError>>,
}

impl TileReader for BlockingTiles {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let missing: Vec<Tile> = {
            let cache = self.cache.lock().map_err(|_| tlog_tiles::Error::BadMath)?;
            tiles
                .iter()
                .filter(|t| !cache.contains_key(t))
                .copied()
                .collect()
        };
        if !missing.is_empty() {
            match self.handle.block_on(self.client.tiles(&missing)) {
                Ok(data) => {
                    let mut cache = self.cache.lock().map_err(|_| tlog_tiles::Error::BadMath)?;
                    for (t, d) in missing.into_iter().zip(data) {
                        cache.insert(t, d);
                    }
                }
                Err(e) => {
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e);
                    }
                    return Err(tlog_tiles::Error::InvalidTile);
                }
            }
        }
        let cache = self.cache.lock().map_err(|_| tlog_tiles::Error::BadMath)?;
        tiles
            .iter()
            .map(|t| cache.get(t).cloned().ok_or(tlog_tiles::Error::BadMath))
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// Runs `f` with a hash reader whose every hash is authenticated against the tree of `size`
/// with root `root` (a verified checkpoint), reading hash tiles from the log.
async fn with_authenticated_hashes<T, F>(
    client: &LogClient,
    size: u64,
    root: Hash,
    f: F,
) -> Result<T, AuditError>
where
    T: Send + 'static,
    F: FnOnce(&dyn HashReader) -> Result<T, tlog_tiles::Error> + Send + 'static,
{
    let reader = Arc::new(BlockingTiles {
        client: client.clone(),
        handle: tokio::runtime::Handle::current(),
        cache: Mutex::new(HashMap::new()),
        error: Mutex::new(None),
    });
    let r2 = Arc::clone(&reader);
    let result = tokio::task::spawn_blocking(move || {
        let hashes = TileHashReader::new(size, tlog_tiles::Hash(root.0), &*r2);
        f(&hashes)
    })
    .await
    .map_err(|e| AuditError::Internal(format!("proof task: {e}")))?;
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            if let Some(fetch) = reader.error.lock().ok().and_then(|mut s| s.take()) {
                return Err(fetch);
            }
            Err(AuditError::TilesMismatch {
                size,
                root: root.to_hex(),
                why: e.to_string(),
            })
        }
    }
}

struct DynReader<'a>(&'a dyn HashReader);

impl HashReader for DynReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        self.0.read_hashes(indexes)
    }
}

/// A consistency proof from `old` to the tree of `size`/`root`, built from hash tiles that
/// were authenticated against `root`. Checking it against the old root is the caller's job.
pub async fn prove_consistency(
    client: &LogClient,
    old: u64,
    size: u64,
    root: Hash,
) -> Result<ConsistencyProof, AuditError> {
    if old == 0 || old > size {
        return Err(AuditError::Usage(format!(
            "no consistency proof from size {old} to {size}"
        )));
    }
    if old == size {
        return Ok(ConsistencyProof {
            old: lucent_verifier::merkle::TreeSize(old),
            new: lucent_verifier::merkle::TreeSize(size),
            hashes: vec![],
        });
    }
    let hashes = with_authenticated_hashes(client, size, root, move |r| {
        tlog_tiles::prove_tree(size, old, &DynReader(r))
    })
    .await?;
    Ok(ConsistencyProof {
        old: lucent_verifier::merkle::TreeSize(old),
        new: lucent_verifier::merkle::TreeSize(size),
        hashes: hashes.into_iter().map(Hash::from).collect(),
    })
}

/// An inclusion proof for `index` in the tree of `size`/`root`, from authenticated tiles.
pub async fn prove_inclusion(
    client: &LogClient,
    index: u64,
    size: u64,
    root: Hash,
) -> Result<InclusionProof, AuditError> {
    if index >= size {
        return Err(AuditError::NotIncluded {
            what: format!("index {index}"),
            why: format!("the tree has only {size} entries"),
        });
    }
    let hashes = with_authenticated_hashes(client, size, root, move |r| {
        tlog_tiles::prove_record(size, index, &DynReader(r))
    })
    .await?;
    Ok(InclusionProof {
        index,
        size: lucent_verifier::merkle::TreeSize(size),
        hashes: hashes.into_iter().map(Hash::from).collect(),
    })
}

/// The root of the first `at` entries, from tiles authenticated against `size`/`root`.
pub async fn root_at(
    client: &LogClient,
    at: u64,
    size: u64,
    root: Hash,
) -> Result<Hash, AuditError> {
    if at == size {
        return Ok(root);
    }
    if at == 0 {
        return Ok(Hash::empty_tree());
    }
    if at > size {
        return Err(AuditError::Usage(format!(
            "size {at} is beyond the checkpoint's size {size}"
        )));
    }
    let h = with_authenticated_hashes(client, size, root, move |r| {
        tlog_tiles::tree_hash(at, &DynReader(r))
    })
    .await?;
    Ok(Hash::from(h))
}
