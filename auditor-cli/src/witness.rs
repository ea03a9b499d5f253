//! `witness serve`: a C2SP `tlog-witness` server.
//!
//! `POST /add-checkpoint` with the `tlog-witness` body ([`lucent_verifier::witness_protocol`]).
//! For each known log origin it keeps, durably, the latest checkpoint it cosigned, and it
//! cosigns (`cosignature/v1`) only a checkpoint that is signed by that log and proven
//! consistent with it. The answers follow the spec:
//!
//! | status | when |
//! |---|---|
//! | 200 | cosigned: one cosignature line |
//! | 400 | malformed body, or checkpoint smaller than `old` (a rollback) |
//! | 403 | the checkpoint is not signed by the log's key |
//! | 404 | unknown log origin |
//! | 409 | `old` is not the size this witness holds (body: that size, `text/x.tlog.size`), or same size with another root (a fork) |
//! | 422 | the consistency proof does not verify (a fork) |
//!
//! The new state is written (fsync, atomic rename) before the cosignature is returned, and
//! one lock serialises check-and-update, so two racing requests cannot both advance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use lucent_verifier::checkpoint::{verify_checkpoint, Checkpoint, CheckpointError, LogKey};
use lucent_verifier::cosignature::WitnessSigner;
use lucent_verifier::merkle::{ConsistencyProof, TreeSize};
use lucent_verifier::note::{self, NoteError};
use lucent_verifier::witness_protocol::{
    build_cosignature_response, build_size_body, parse_add_checkpoint, MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
};
use tokio::sync::Mutex;

use crate::state::{read_optional, write_atomic};
use crate::AuditError;

/// A witness: its key, the logs it follows, and its state directory.
pub struct Witness {
    signer: WitnessSigner,
    logs: HashMap<String, LogKey>,
    dir: PathBuf,
    lock: Mutex<()>,
}

/// Why a request was refused: the status and a one-line reason.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
}

impl Refusal {
    fn text(status: StatusCode, msg: impl Into<String>) -> Self {
        let mut body = msg.into().into_bytes();
        body.push(b'\n');
        Refusal {
            status,
            body,
            content_type: "text/plain; charset=utf-8",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }
}

/// Private witness key file format: one line `lucent-witness-key <name> <hex seed>`.
pub fn parse_key_file(text: &str) -> Result<WitnessSigner, AuditError> {
    let bad = || {
        AuditError::Usage("witness key file: want `lucent-witness-key <name> <hex seed>`".into())
    };
    let mut parts = text.split_whitespace();
    if parts.next() != Some("lucent-witness-key") {
        return Err(bad());
    }
    let name = parts.next().ok_or_else(bad)?;
    let seed = parts
        .next()
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(bad)?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| bad())?;
    if parts.next().is_some() {
        return Err(bad());
    }
    WitnessSigner::from_seed(name, &seed).map_err(|source| AuditError::Key {
        what: format!("witness name {name:?}"),
        source,
    })
}

/// The private key file text for a witness key.
pub fn key_file_text(signer: &WitnessSigner) -> String {
    format!(
        "lucent-witness-key {} {}\n",
        signer.name(),
        hex::encode(signer.seed())
    )
}

/// The latest cosigned checkpoint for one log.
struct Latest {
    checkpoint: Checkpoint,
}

impl Witness {
    /// A witness for `logs`, keeping its state under `dir`.
    pub fn new(signer: WitnessSigner, logs: Vec<LogKey>, dir: PathBuf) -> Result<Self, AuditError> {
        std::fs::create_dir_all(&dir).map_err(|e| AuditError::io(&dir, e))?;
        let logs = logs.into_iter().map(|l| (l.origin.clone(), l)).collect();
        Ok(Witness {
            signer,
            logs,
            dir,
            lock: Mutex::new(()),
        })
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        self.dir
            .join(format!("{}.checkpoint", hex::encode(origin.as_bytes())))
    }

    /// The latest size cosigned for `origin` (0 if none), re-verified from disk.
    pub fn latest_size(&self, origin: &str) -> Result<u64, AuditError> {
        let log = self
            .logs
            .get(origin)
            .ok_or_else(|| AuditError::Usage(format!("unknown log {origin:?}")))?;
        Ok(self.load(log)?.map(|l| l.checkpoint.size.0).unwrap_or(0))
    }

    fn load(&self, log: &LogKey) -> Result<Option<Latest>, AuditError> {
        let path = self.state_path(&log.origin);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let signed = verify_checkpoint(&bytes, log).map_err(|e| AuditError::StateCorrupt {
            path,
            why: e.to_string(),
        })?;
        Ok(Some(Latest {
            checkpoint: signed.checkpoint,
        }))
    }

    /// Handles one `add-checkpoint` body: the cosignature response, or a refusal.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        use StatusCode as S;
        let req =
            parse_add_checkpoint(body).map_err(|e| Refusal::text(S::BAD_REQUEST, e.to_string()))?;
        let (text, _) = note::parse_unverified(&req.checkpoint)
            .map_err(|e| Refusal::text(S::BAD_REQUEST, e.to_string()))?;
        let origin = Checkpoint::parse(&text)
            .map_err(|e| Refusal::text(S::BAD_REQUEST, e.to_string()))?
            .origin;
        let log = self
            .logs
            .get(&origin)
            .ok_or_else(|| Refusal::text(S::NOT_FOUND, format!("unknown log origin {origin:?}")))?;
        let signed = verify_checkpoint(&req.checkpoint, log).map_err(|e| match e {
            CheckpointError::Note(NoteError::Malformed) | CheckpointError::MalformedBody => {
                Refusal::text(S::BAD_REQUEST, e.to_string())
            }
            _ => Refusal::text(S::FORBIDDEN, format!("not signed by the log key: {e}")),
        })?;
        let new = &signed.checkpoint;

        let _guard = self.lock.lock().await;
        let latest = self
            .load(log)
            .map_err(|e| Refusal::text(S::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let held = latest.as_ref().map(|l| l.checkpoint.size.0).unwrap_or(0);
        if req.old.0 != held {
            return Err(Refusal {
                status: S::CONFLICT,
                body: build_size_body(TreeSize(held)),
                content_type: SIZE_CONTENT_TYPE,
            });
        }
        if new.size < req.old {
            return Err(Refusal::text(
                S::BAD_REQUEST,
                format!(
                    "checkpoint size {} is smaller than old size {}",
                    new.size, req.old
                ),
            ));
        }
        match &latest {
            Some(l) if l.checkpoint.size == new.size => {
                if l.checkpoint.root != new.root {
                    return Err(Refusal::text(
                        S::CONFLICT,
                        format!(
                            "fork: size {} with root {}, I hold root {}",
                            new.size, new.root, l.checkpoint.root
                        ),
                    ));
                }
                if !req.proof.is_empty() {
                    return Err(Refusal::text(
                        S::BAD_REQUEST,
                        "same size needs an empty proof",
                    ));
                }
            }
            Some(l) if l.checkpoint.size.0 > 0 => {
                let proof = ConsistencyProof {
                    old: l.checkpoint.size,
                    new: new.size,
                    hashes: req.proof.clone(),
                };
                proof.verify(&l.checkpoint.root, &new.root).map_err(|e| {
                    Refusal::text(
                        S::UNPROCESSABLE_ENTITY,
                        format!(
                            "consistency proof {} -> {} does not verify: {e}",
                            l.checkpoint.size, new.size
                        ),
                    )
                })?;
            }
            _ => {
                if !req.proof.is_empty() {
                    return Err(Refusal::text(
                        S::BAD_REQUEST,
                        "old size 0 needs an empty proof",
                    ));
                }
            }
        }
        let advanced = latest.as_ref().is_none_or(|l| l.checkpoint.size < new.size);
        if advanced {
            // Store the log-signed note only (not other cosignatures): it is what we vouch for.
            let stored = log_signed_only(&req.checkpoint, &signed.other_signatures)
                .map_err(|e| Refusal::text(S::INTERNAL_SERVER_ERROR, e.to_string()))?;
            write_atomic(&self.state_path(&origin), &stored)
                .map_err(|e| Refusal::text(S::INTERNAL_SERVER_ERROR, e.to_string()))?;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let sig = self.signer.cosign(&signed.text, now);
        build_cosignature_response(&[sig])
            .map_err(|e| Refusal::text(S::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

/// Rebuilds a note keeping only the signatures that are not in `others` (the log's own).
fn log_signed_only(
    note_bytes: &[u8],
    others: &[lucent_verifier::note::NoteSignature],
) -> Result<Vec<u8>, NoteError> {
    let (text, sigs) = note::parse_unverified(note_bytes)?;
    let mut out = text;
    out.push(b'\n');
    let mut kept = 0;
    for s in sigs.iter().filter(|s| !others.contains(s)) {
        out.extend_from_slice(&signed_line(s));
        kept += 1;
    }
    if kept == 0 {
        return Err(NoteError::Malformed);
    }
    Ok(out)
}

fn signed_line(s: &lucent_verifier::note::NoteSignature) -> Vec<u8> {
    use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
    let mut raw = s.id.to_be_bytes().to_vec();
    raw.extend_from_slice(&s.signature);
    format!("\u{2014} {} {}\n", s.name, BASE64.encode(raw)).into_bytes()
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    match w.add_checkpoint(&body).await {
        Ok(sigs) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            sigs,
        )
            .into_response(),
        Err(r) => r.into_response(),
    }
}

/// The witness's router: `POST /add-checkpoint`.
pub fn app(w: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(w)
}

/// Serves until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    w: Arc<Witness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AuditError> {
    axum::serve(listener, app(w))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| AuditError::Internal(format!("witness server: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lucent_verifier::checkpoint::Checkpoint;
    use lucent_verifier::merkle::MemoryTree;
    use lucent_verifier::note::NoteSigner;
    use lucent_verifier::witness_protocol::{build_add_checkpoint, parse_cosignature_response};

    fn cp_note(log: &NoteSigner, tree: &MemoryTree, size: u64) -> Vec<u8> {
        Checkpoint {
            origin: log.name().into(),
            size: TreeSize(size),
            root: tree.root_at(size).unwrap(),
            extension: String::new(),
        }
        .sign(log)
        .unwrap()
    }

    #[tokio::test]
    async fn cosigns_consistent_refuses_forks_rollbacks_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = NoteSigner::generate(&mut rand_core::OsRng, "log.example").unwrap();
        let key = LogKey::new(log.verifier_key());
        let ws = WitnessSigner::generate(&mut rand_core::OsRng, "w.example").unwrap();
        let w = Witness::new(ws.clone(), vec![key.clone()], dir.path().into()).unwrap();
        let mut tree = MemoryTree::new();
        let mut fork = MemoryTree::new();
        for i in 0u32..20 {
            tree.push_entry(&i.to_be_bytes());
            fork.push_entry(&(if i < 5 { i } else { i + 100 }).to_be_bytes());
        }
        // First checkpoint: old 0.
        let body = build_add_checkpoint(TreeSize(0), &[], &cp_note(&log, &tree, 8)).unwrap();
        let sigs = parse_cosignature_response(&w.add_checkpoint(&body).await.unwrap()).unwrap();
        let text = Checkpoint::parse(&note::parse_unverified(&cp_note(&log, &tree, 8)).unwrap().0)
            .unwrap()
            .to_text()
            .unwrap();
        assert!(ws
            .witness_key()
            .verify_cosignature(&text, &sigs[0].signature)
            .is_some());
        // Wrong old size: 409 with our size.
        let r = w.add_checkpoint(&body).await.unwrap_err();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (StatusCode::CONFLICT, &b"8\n"[..])
        );
        // Consistent advance.
        let p = tree.prove_consistency(8, 12).unwrap();
        let body = build_add_checkpoint(TreeSize(8), &p.hashes, &cp_note(&log, &tree, 12)).unwrap();
        w.add_checkpoint(&body).await.unwrap();
        // Fork: a proof from the forked tree does not verify against what we hold.
        let p = fork.prove_consistency(12, 20).unwrap();
        let body =
            build_add_checkpoint(TreeSize(12), &p.hashes, &cp_note(&log, &fork, 20)).unwrap();
        assert_eq!(
            w.add_checkpoint(&body).await.unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // Same size, other root: 409.
        let body = build_add_checkpoint(TreeSize(12), &[], &cp_note(&log, &fork, 12)).unwrap();
        assert_eq!(
            w.add_checkpoint(&body).await.unwrap_err().status,
            StatusCode::CONFLICT
        );
        // Rollback: smaller than old.
        let body = build_add_checkpoint(TreeSize(12), &[], &cp_note(&log, &tree, 10)).unwrap();
        assert_eq!(
            w.add_checkpoint(&body).await.unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        // Wrong key: 403. Unknown origin: 404.
        let other = NoteSigner::generate(&mut rand_core::OsRng, "log.example").unwrap();
        let p = tree.prove_consistency(12, 20).unwrap();
        let body =
            build_add_checkpoint(TreeSize(12), &p.hashes, &cp_note(&other, &tree, 20)).unwrap();
        assert_eq!(
            w.add_checkpoint(&body).await.unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let stranger = NoteSigner::generate(&mut rand_core::OsRng, "other.example").unwrap();
        let body = build_add_checkpoint(TreeSize(0), &[], &cp_note(&stranger, &tree, 3)).unwrap();
        assert_eq!(
            w.add_checkpoint(&body).await.unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            w.add_checkpoint(b"garbage").await.unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        // Restart: the state is kept.
        drop(w);
        let w = Witness::new(ws, vec![key], dir.path().into()).unwrap();
        assert_eq!(w.latest_size("log.example").unwrap(), 12);
    }

    #[test]
    fn key_file_round_trip() {
        let ws = WitnessSigner::generate(&mut rand_core::OsRng, "w.example").unwrap();
        let back = parse_key_file(&key_file_text(&ws)).unwrap();
        assert_eq!(back.witness_key(), ws.witness_key());
        assert!(parse_key_file("lucent-witness-key w.example 00").is_err());
    }
}
