//! Publishing: after each batch, offer the new checkpoint to every configured witness with
//! C2SP `tlog-witness` `add-checkpoint`, keep the cosignatures that verify, mirror the new
//! tiles, and publish the checkpoint with its cosignatures. A witness that is slow or down
//! costs at most its timeout; the checkpoint is published with what was gathered.

use std::path::PathBuf;
use std::time::Duration;

use lucent_client::log::read_body;
use lucent_verifier::cosignature::WitnessKey;
use lucent_verifier::merkle::TreeSize;
use lucent_verifier::note::{self, NoteSignature};
use lucent_verifier::witness_protocol::{self, MAX_RESPONSE_BYTES};
use thiserror::Error;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::store::{SharedStore, StoreError, StoredCheckpoint};
use crate::tree::{self, TilePath};

/// One configured witness: where to reach it and its cosignature key.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// Submission prefix; requests go to `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's `cosignature/v1` verifier key.
    pub key: WitnessKey,
}

/// Why a witness spec could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WitnessSpecError {
    /// Not `url=…,key=…`.
    #[error("witness spec {0:?} is not url=<url>,key=<verifier key>")]
    Format(String),
    /// The key does not parse.
    #[error("witness key in {spec:?}: {why}")]
    Key {
        /// The spec.
        spec: String,
        /// Why.
        why: String,
    },
}

impl std::str::FromStr for WitnessConfig {
    type Err = WitnessSpecError;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut url = None;
        let mut key = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("url", v)) if url.is_none() => url = Some(v.trim_end_matches('/')),
                Some(("key", v)) if key.is_none() => key = Some(v),
                _ => return Err(WitnessSpecError::Format(spec.to_owned())),
            }
        }
        let (Some(url), Some(key)) = (url, key) else {
            return Err(WitnessSpecError::Format(spec.to_owned()));
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(WitnessSpecError::Format(spec.to_owned()));
        }
        let key = WitnessKey::parse(key).map_err(|e| WitnessSpecError::Key {
            spec: spec.to_owned(),
            why: e.to_string(),
        })?;
        Ok(WitnessConfig {
            url: url.to_owned(),
            key,
        })
    }
}

/// Writes tiles and the checkpoint under a directory in the `tlog-tiles` layout, so any
/// static file server can serve the log.
#[derive(Debug, Clone)]
pub struct Mirror {
    dir: PathBuf,
}

impl Mirror {
    /// A mirror rooted at `dir` (created when needed).
    pub fn new(dir: PathBuf) -> Self {
        Mirror { dir }
    }

    fn write(&self, rel: &str, data: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        lucent_client::store::write_atomic(&path, data)
    }

    /// The size of the checkpoint mirrored last (0 if none).
    fn mirrored_size(&self) -> u64 {
        std::fs::read(self.dir.join("checkpoint"))
            .ok()
            .and_then(|n| note::parse_unverified(&n).ok())
            .and_then(|(text, _)| lucent_verifier::checkpoint::Checkpoint::parse(&text).ok())
            .map(|c| c.size.0)
            .unwrap_or(0)
    }
}

/// The publishing task; [`crate::server`] assembles it.
pub struct Publisher {
    pub(crate) store: SharedStore,
    pub(crate) witnesses: Vec<WitnessConfig>,
    /// Per-witness request timeout.
    pub(crate) timeout: Duration,
    /// Built by `witness_client`.
    pub(crate) client: reqwest::Client,
    pub(crate) metrics: Metrics,
    pub(crate) mirror: Option<Mirror>,
    pub(crate) integrated: watch::Receiver<u64>,
    pub(crate) leader: watch::Receiver<bool>,
    /// The size of the latest published checkpoint.
    pub(crate) published: watch::Sender<u64>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// The HTTP client the publisher asks witnesses with.
pub(crate) fn witness_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("lucent-log-server/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Publisher {
    /// Runs until stopped, publishing each new checkpoint while this process sequences.
    pub async fn run(mut self) {
        let mut mirrored = self.mirror.as_ref().map(Mirror::mirrored_size).unwrap_or(0);
        loop {
            if *self.stop.borrow() {
                // One last pass so the final batch is published before exit.
                if *self.leader.borrow() {
                    let _ = self.publish_latest(&mut mirrored).await;
                }
                return;
            }
            if *self.leader.borrow() {
                if let Err(e) = self.publish_latest(&mut mirrored).await {
                    tracing::error!(error = %e, "publishing failed; will retry");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                r = self.integrated.changed() => if r.is_err() { return },
                r = self.leader.changed() => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    }

    async fn publish_latest(&mut self, mirrored: &mut u64) -> Result<(), StoreError> {
        let Some(cp) = self.store.latest_checkpoint(false).await? else {
            return Ok(());
        };
        // A tile that cannot be mirrored never holds up the checkpoint: it is published all
        // the same, and the mirror (tiles, then its checkpoint) is retried on the next pass.
        let mut mirror_complete = true;
        if let Some(m) = &self.mirror {
            if cp.size > *mirrored || cp.size == 0 {
                for t in TilePath::changed(*mirrored, cp.size) {
                    let written = match tree::read_tile(&*self.store, t, cp.size).await {
                        Ok(Some(data)) => m.write(&t.path(), &data).map_err(|e| e.to_string()),
                        Ok(None) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = written {
                        tracing::error!(error = %e, tile = %t.path(), "mirroring tile failed");
                        mirror_complete = false;
                    }
                }
            }
        }
        let note = if cp.published {
            cp.note.clone()
        } else {
            let note = self.witness(&cp).await?;
            self.store.publish_checkpoint(cp.size, note.clone()).await?;
            note
        };
        if let Some(m) = self.mirror.as_ref().filter(|_| mirror_complete) {
            if cp.size >= *mirrored {
                if let Err(e) = m.write("checkpoint", &note) {
                    tracing::error!(error = %e, "mirroring checkpoint failed");
                } else {
                    *mirrored = cp.size;
                }
            }
        }
        self.metrics
            .published_size
            .set(i64::try_from(cp.size).unwrap_or(i64::MAX));
        self.published.send_replace(cp.size);
        Ok(())
    }

    /// Offers the checkpoint to every witness at once and returns the note with every
    /// cosignature that verified.
    async fn witness(&self, cp: &StoredCheckpoint) -> Result<Vec<u8>, StoreError> {
        let (text, _) = note::parse_unverified(&cp.note)
            .map_err(|e| StoreError::Corrupt(format!("stored checkpoint: {e}")))?;
        let calls = self.witnesses.iter().map(|w| {
            let text = text.clone();
            async move {
                let name = w.key.name().to_owned();
                let outcome =
                    tokio::time::timeout(self.timeout * 2, self.ask_witness(w, cp, &text)).await;
                let (label, sigs) = match outcome {
                    Ok(Ok(sigs)) => ("cosigned", sigs),
                    Ok(Err(e)) => {
                        tracing::warn!(witness = %name, error = %e, size = cp.size, "witness refused");
                        ("error", Vec::new())
                    }
                    Err(_) => {
                        tracing::warn!(witness = %name, size = cp.size, "witness timed out");
                        ("timeout", Vec::new())
                    }
                };
                self.metrics
                    .witness_requests
                    .with_label_values(&[&name, label])
                    .inc();
                sigs
            }
        });
        let gathered: Vec<NoteSignature> = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect();
        note::append_signatures(&cp.note, &gathered)
            .map_err(|e| StoreError::Corrupt(format!("appending cosignatures: {e}")))
    }

    async fn ask_witness(
        &self,
        w: &WitnessConfig,
        cp: &StoredCheckpoint,
        text: &[u8],
    ) -> Result<Vec<NoteSignature>, String> {
        let name = w.key.name().to_owned();
        let mut old = self
            .store
            .witness_size(name.clone())
            .await
            .map_err(|e| e.to_string())?;
        for _attempt in 0..2 {
            if old > cp.size {
                return Err(format!("witness is at size {old}, past {}", cp.size));
            }
            let proof = if old == 0 || old == cp.size {
                Vec::new()
            } else {
                tree::prove_consistency(&*self.store, old, cp.size)
                    .await
                    .map_err(|e| e.to_string())?
                    .hashes
            };
            let body = witness_protocol::build_add_checkpoint(TreeSize(old), &proof, &cp.note)
                .map_err(|e| e.to_string())?;
            let url = format!("{}/add-checkpoint", w.url);
            let resp = self
                .client
                .post(&url)
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let bytes = read_body("witness answer", &url, resp, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            match status.as_u16() {
                200 => {
                    let lines = witness_protocol::parse_cosignature_response(&bytes)
                        .map_err(|e| e.to_string())?;
                    let valid: Vec<NoteSignature> = lines
                        .into_iter()
                        .filter(|s| s.name == w.key.name() && s.id == w.key.key_id())
                        .filter(|s| w.key.verify_cosignature(text, &s.signature).is_some())
                        .collect();
                    if valid.is_empty() {
                        return Err("no valid cosignature in the answer".into());
                    }
                    self.store
                        .set_witness_size(name.clone(), cp.size)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(valid);
                }
                409 => {
                    let theirs =
                        witness_protocol::parse_size_body(&bytes).map_err(|e| e.to_string())?;
                    tracing::info!(witness = %name, ours = old, theirs = theirs.0, "witness size differs");
                    old = theirs.0;
                    self.store
                        .set_witness_size(name.clone(), old)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                other => {
                    return Err(format!(
                        "status {other}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ))
                }
            }
        }
        Err("witness size kept changing".into())
    }
}
