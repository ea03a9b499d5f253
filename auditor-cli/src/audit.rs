//! Checkpoints and proofs: `checkpoint`, `inclusion` and `consistency`.
//!
//! Every proof is computed here from hash tiles that `tlog_tiles` authenticates against a
//! verified checkpoint, then checked with [`lucent_verifier`]. The log's JSON API is used
//! only as an index hint (which leaf to prove); a wrong hint fails the proof.

use lucent_verifier::checkpoint::{
    verify_checkpoint, verify_witnessed, LogKey, SignedCheckpoint, WitnessedCheckpoint,
};
use lucent_verifier::cosignature::WitnessPolicy;
use lucent_verifier::last_seen::{check_update, LastSeenError, Update};
use lucent_verifier::log_api::{
    page_path, read_all_pages, InclusionAnswer, PagesError, ReleasesAnswer,
};
use lucent_verifier::merkle::{InclusionProof, LeafHash};
use lucent_verifier::note::NoteVerifierKey;
use lucent_verifier::statement::{
    parse_unverified, verify_statement, Release, Statement, StatementError,
};
use lucent_verifier::tiles::{TilePath, TILE_WIDTH};
use serde_json::{json, Value};

use crate::fetch::{self, LogClient};
use crate::state::StateDir;
use crate::AuditError;

/// What a successful command reports: a JSON document and its human rendering.
#[derive(Debug, Clone)]
pub struct Report {
    /// Machine-readable result (`--json`).
    pub json: Value,
    /// Human-readable result.
    pub human: String,
    /// Set when the command completed but found something that must fail the run
    /// (for example a revoked release); the text says what.
    pub failed: Option<String>,
}

impl Report {
    /// A report with no failure.
    pub fn ok(json: Value, human: String) -> Self {
        Report {
            json,
            human,
            failed: None,
        }
    }
}

/// Who is trusted: the log key and the witness policy.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The log's checkpoint key and origin.
    pub log: LogKey,
    /// Which witnesses must cosign, and how many.
    pub witnesses: WitnessPolicy,
}

/// A log to audit: where it is, whom to trust, where to keep state.
#[derive(Debug, Clone)]
pub struct Auditor {
    /// Reader of the log's files.
    pub client: LogClient,
    /// Keys and policy.
    pub trust: Trust,
    /// Local state.
    pub state: StateDir,
}

/// The result of [`check_checkpoint`].
#[derive(Debug, Clone)]
pub struct CheckedCheckpoint {
    /// The verified, consistent, now stored checkpoint.
    pub witnessed: WitnessedCheckpoint,
    /// How it relates to the one seen before.
    pub update: Update,
}

impl CheckedCheckpoint {
    /// Tree size.
    pub fn size(&self) -> u64 {
        self.witnessed.checkpoint().size.0
    }

    /// JSON form.
    pub fn to_json(&self) -> Value {
        let cp = self.witnessed.checkpoint();
        let (update, from) = match self.update {
            Update::First => ("first", None),
            Update::Unchanged => ("unchanged", Some(cp.size.0)),
            Update::Advanced { from, .. } => ("advanced", Some(from.0)),
            Update::Behind { seen, .. } => ("behind", Some(seen.0)),
        };
        json!({
            "ok": true,
            "origin": cp.origin,
            "size": cp.size.0,
            "root": cp.root.to_hex(),
            "update": update,
            "previous_size": from,
            "cosignatures": self.witnessed.cosignatures.iter().map(|c| json!({
                "witness": c.witness, "timestamp": c.timestamp,
            })).collect::<Vec<_>>(),
            "checkpoint": String::from_utf8_lossy(&self.witnessed.signed.note),
        })
    }

    /// Human form.
    pub fn to_human(&self) -> String {
        let cp = self.witnessed.checkpoint();
        let update = match self.update {
            Update::First => "first checkpoint seen for this log (trust on first use)".to_owned(),
            Update::Unchanged => "unchanged since last check".to_owned(),
            Update::Advanced { from, to } => {
                format!("consistent with the last seen size {from} -> {to}")
            }
            Update::Behind { size, seen } => {
                format!("older than the last seen size {seen}, and a prefix of it ({size})")
            }
        };
        let witnesses: Vec<String> = self
            .witnessed
            .cosignatures
            .iter()
            .map(|c| format!("{} at {}", c.witness, c.timestamp))
            .collect();
        format!(
            "checkpoint OK: {} size {} root {}\n  {update}\n  cosigned by: {}\n",
            cp.origin,
            cp.size,
            cp.root,
            if witnesses.is_empty() {
                "(no witnesses required)".to_owned()
            } else {
                witnesses.join(", ")
            }
        )
    }
}

/// Fetches the latest checkpoint, verifies the log signature and witness quorum, proves it
/// consistent with the last seen checkpoint (from hash tiles authenticated against the new
/// root), and only then stores it as the last seen one.
pub async fn check_checkpoint(a: &Auditor) -> Result<CheckedCheckpoint, AuditError> {
    let note = a.client.checkpoint().await?;
    let witnessed = verify_witnessed(&note, &a.trust.log, &a.trust.witnesses)?;
    let stored = a.state.last_seen(&a.trust.log)?;
    let new = &witnessed.signed.checkpoint;
    let proof = match &stored {
        Some(old) if old.checkpoint.size.0 > 0 && old.checkpoint.size < new.size => Some(
            fetch::prove_consistency(&a.client, old.checkpoint.size.0, new.size.0, new.root)
                .await?,
        ),
        _ => None,
    };
    let update = match check_update(stored.as_ref(), &witnessed.signed, proof.as_ref()) {
        Ok(u) => u,
        Err(e) => {
            if let LastSeenError::SplitView(view) = e {
                // Keep the evidence even if the caller loses the output; the error says
                // where. Failing to write it must not hide the split view itself.
                let saved = a.state.save_evidence(&new.origin, &view).ok();
                return Err(AuditError::SplitView { view, saved });
            }
            return Err(e.into());
        }
    };
    if update != Update::Unchanged {
        a.state.store_last_seen(&witnessed.signed)?;
    }
    Ok(CheckedCheckpoint { witnessed, update })
}

/// What `inclusion` proves.
#[derive(Debug, Clone)]
pub enum Target {
    /// The exact bytes of a statement note (a log entry).
    Entry(Vec<u8>),
    /// A leaf hash.
    Leaf(LeafHash),
    /// A release measurement (hex): every release and revocation the log lists for it.
    Measurement(String),
}

fn proof_json(p: &InclusionProof) -> Value {
    Value::from(p.hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>())
}

async fn index_hint(a: &Auditor, leaf: &LeafHash, size: u64) -> Result<u64, AuditError> {
    let v = a
        .client
        .json(&format!("v1/proof/inclusion?leaf_hash={leaf}&size={size}"))
        .await
        .map_err(|e| match e {
            AuditError::Http {
                status: 404, body, ..
            } => AuditError::NotIncluded {
                what: format!("leaf {leaf}"),
                why: format!("the log does not know it: {body}"),
            },
            e => e,
        })?;
    serde_json::from_value::<InclusionAnswer>(v)
        .map(|answer| answer.index)
        .map_err(|e| AuditError::Fetch {
            url: a.client.url("v1/proof/inclusion"),
            why: format!("malformed answer: {e}"),
        })
}

/// An inclusion proof of `leaf` under `cp`, and the index hint given if it was wrong.
///
/// `index` is a hint: when the leaf is not there, the log is asked where it is (and that
/// answer is only a hint too: the proof decides).
async fn prove_leaf(
    a: &Auditor,
    cp: &CheckedCheckpoint,
    leaf: LeafHash,
    index: Option<u64>,
) -> Result<(InclusionProof, Option<u64>), AuditError> {
    let c = cp.witnessed.checkpoint();
    if let Some(hint) = index {
        if hint < c.size.0 {
            let proof = fetch::prove_inclusion(&a.client, hint, c.size.0, c.root).await?;
            if proof.verify(&leaf, &c.root).is_ok() {
                return Ok((proof, None));
            }
        }
    }
    let at = index_hint(a, &leaf, c.size.0)
        .await
        .map_err(|e| match (e, index) {
            (AuditError::NotIncluded { what, why }, Some(hint)) => AuditError::NotIncluded {
                what,
                why: format!("not at index {hint} (the --index hint), and {why}"),
            },
            (e, _) => e,
        })?;
    let proof = fetch::prove_inclusion(&a.client, at, c.size.0, c.root).await?;
    proof
        .verify(&leaf, &c.root)
        .map_err(|e| AuditError::NotIncluded {
            what: format!("leaf {leaf}"),
            why: format!("not at index {at} of tree size {}: {e}", c.size),
        })?;
    Ok((proof, index))
}

/// The human note for a wrong `--index` hint.
fn hint_note(wrong: Option<u64>, proof: &InclusionProof) -> String {
    wrong.map_or_else(String::new, |hint| {
        format!(
            "  note: the --index hint {hint} was wrong; the leaf is at index {}\n",
            proof.index
        )
    })
}

fn statement_summary(s: &Statement) -> Value {
    match s {
        Statement::Release(r) => json!({
            "type": "release", "platform": r.measurement.platform().as_str(),
            "measurement": r.measurement.to_hex(), "version": r.version,
            "source": r.source, "commit": hex::encode(&r.commit), "not_after": r.not_after,
        }),
        Statement::KeyConfig(k) => json!({
            "type": "keyconfig", "key_id": k.key_id, "config": hex::encode(&k.config),
            "not_before": k.not_before, "not_after": k.not_after,
        }),
        Statement::Revoke(r) => json!({
            "type": "revoke", "platform": r.measurement.platform().as_str(),
            "measurement": r.measurement.to_hex(), "reason": r.reason,
        }),
        Statement::Issuer(i) => json!({
            "type": "issuer", "name": i.name,
            "public_key": hex::encode(i.public_key.as_bytes()),
            "key_id": hex::encode(i.public_key.key_id()),
            "not_before": i.not_before, "not_after": i.not_after,
        }),
    }
}

/// Checks a statement note: against operator keys when given, else its layout only.
pub fn check_statement(
    bytes: &[u8],
    operators: &[NoteVerifierKey],
    index: Option<u64>,
) -> Result<Statement, AuditError> {
    let r: Result<Statement, StatementError> = if operators.is_empty() {
        parse_unverified(bytes)
    } else {
        verify_statement(bytes, operators).map(|s| s.statement)
    };
    r.map_err(|source| AuditError::Statement { index, source })
}

/// Proves a statement, leaf or measurement is in the log under a fresh, verified checkpoint.
pub async fn inclusion(
    a: &Auditor,
    target: Target,
    index: Option<u64>,
    operators: &[NoteVerifierKey],
) -> Result<Report, AuditError> {
    let cp = check_checkpoint(a).await?;
    let c = cp.witnessed.checkpoint().clone();
    match target {
        Target::Entry(bytes) => {
            let st = check_statement(&bytes, operators, None)?;
            let leaf = LeafHash::of_entry(&bytes);
            let (proof, wrong_hint) = prove_leaf(a, &cp, leaf, index).await?;
            let json = json!({
                "ok": true, "checkpoint_size": c.size.0, "root": c.root.to_hex(),
                "index": proof.index, "wrong_index_hint": wrong_hint, "leaf_hash": leaf.to_string(),
                "statement": statement_summary(&st),
                "signature_checked": !operators.is_empty(), "proof": proof_json(&proof),
            });
            let human = format!(
                "included: {} statement, leaf {leaf} at index {} of tree size {} (root {})\n{}",
                st.type_line(),
                proof.index,
                c.size,
                c.root,
                hint_note(wrong_hint, &proof)
            );
            Ok(Report::ok(json, human))
        }
        Target::Leaf(leaf) => {
            let (proof, wrong_hint) = prove_leaf(a, &cp, leaf, index).await?;
            let json = json!({
                "ok": true, "checkpoint_size": c.size.0, "root": c.root.to_hex(),
                "index": proof.index, "wrong_index_hint": wrong_hint, "leaf_hash": leaf.to_string(),
                "proof": proof_json(&proof),
            });
            let human = format!(
                "included: leaf {leaf} at index {} of tree size {} (root {})\n{}",
                proof.index,
                c.size,
                c.root,
                hint_note(wrong_hint, &proof)
            );
            Ok(Report::ok(json, human))
        }
        Target::Measurement(m) => measurement_inclusion(a, &cp, &m, operators).await,
    }
}

/// Every page of the log's releases and revocations of `m`, checked to continue each other
/// and to add up to the log's totals.
async fn releases(a: &Auditor, m: &str) -> Result<ReleasesAnswer, AuditError> {
    let path = format!("v1/releases/{m}");
    let malformed = |path: &str, why: String| AuditError::Fetch {
        url: a.client.url(path),
        why: format!("malformed answer: {why}"),
    };
    read_all_pages(|before| {
        let page = page_path(&path, before);
        async move {
            let v = a.client.json(&page).await?;
            serde_json::from_value::<ReleasesAnswer>(v).map_err(|e| malformed(&page, e.to_string()))
        }
    })
    .await
    .map_err(|e| match e {
        PagesError::Fetch(e) => e,
        PagesError::Answer(e) => malformed(&path, e.to_string()),
    })
}

async fn measurement_inclusion(
    a: &Auditor,
    cp: &CheckedCheckpoint,
    m: &str,
    operators: &[NoteVerifierKey],
) -> Result<Report, AuditError> {
    let m = m.to_ascii_lowercase();
    if hex::decode(&m).is_err() {
        return Err(AuditError::Usage(format!("measurement {m:?} is not hex")));
    }
    let c = cp.witnessed.checkpoint().clone();
    let answer = releases(a, &m).await?;
    let mut found = Vec::new();
    let mut human = String::new();
    let mut revoked = Vec::new();
    for (kind, list) in [
        ("release", &answer.releases),
        ("revoke", &answer.revocations),
    ] {
        for e in list {
            let (index, bytes) = (e.index, &e.entry);
            if index >= c.size.0 {
                // Sequenced after our checkpoint: not provable yet.
                continue;
            }
            let st = check_statement(bytes, operators, Some(index))?;
            let measured = match &st {
                Statement::Release(r) => r.measurement.to_hex(),
                Statement::Revoke(r) => r.measurement.to_hex(),
                Statement::KeyConfig(_) | Statement::Issuer(_) => String::new(),
            };
            if measured != m || st.type_line().split('/').nth(1) != Some(kind) {
                return Err(AuditError::NotIncluded {
                    what: format!("measurement {m}"),
                    why: format!(
                        "the log lists entry {index}, which is a {} for {measured:?}",
                        st.type_line()
                    ),
                });
            }
            let (proof, _) = prove_leaf(a, cp, LeafHash::of_entry(bytes), Some(index)).await?;
            if let Statement::Revoke(r) = &st {
                revoked.push(format!("index {index}: {}", r.reason));
            }
            human.push_str(&format!(
                "  {kind} at index {index}: {}\n",
                statement_summary(&st)
            ));
            found.push(json!({
                "kind": kind, "index": index, "leaf_hash": LeafHash::of_entry(bytes).to_string(),
                "statement": statement_summary(&st), "proof": proof_json(&proof),
            }));
        }
    }
    let released = found.iter().any(|f| f["kind"] == "release");
    if !released && revoked.is_empty() {
        return Err(AuditError::NotIncluded {
            what: format!("measurement {m}"),
            why: format!(
                "no release or revocation for it in the tree of size {}",
                c.size
            ),
        });
    }
    let failed = if !released {
        // What was verified is still shown: the revocations are in the log.
        Some(format!(
            "no release for measurement {m} in the tree of size {}; its {} revocation(s) are \
             included: {}",
            c.size,
            revoked.len(),
            revoked.join("; ")
        ))
    } else {
        (!revoked.is_empty()).then(|| format!("measurement {m} is revoked: {}", revoked.join("; ")))
    };
    let json = json!({
        "ok": failed.is_none(), "checkpoint_size": c.size.0, "root": c.root.to_hex(),
        "measurement": m, "entries": found, "released": released, "revoked": !revoked.is_empty(),
        "signature_checked": !operators.is_empty(),
    });
    let what = if released {
        "included"
    } else {
        "no release, only revocations"
    };
    let human = format!(
        "measurement {m}: {what} under tree size {} (root {})\n{human}",
        c.size, c.root
    );
    Ok(Report {
        json,
        human,
        failed,
    })
}

/// What `consistency` compares.
#[derive(Debug, Clone)]
pub enum ConsistencyArgs {
    /// Two sizes of the current log.
    Sizes {
        /// Older size.
        old: u64,
        /// Newer size (default: the latest checkpoint's).
        new: Option<u64>,
    },
    /// Two checkpoint notes (files).
    Checkpoints(Vec<u8>, Vec<u8>),
}

/// Proves two tree sizes, or two signed checkpoints, consistent.
pub async fn consistency(a: &Auditor, args: ConsistencyArgs) -> Result<Report, AuditError> {
    match args {
        ConsistencyArgs::Sizes { old, new } => {
            let cp = check_checkpoint(a).await?;
            let c = cp.witnessed.checkpoint().clone();
            let new = new.unwrap_or(c.size.0);
            if old == 0 || old > new || new > c.size.0 {
                return Err(AuditError::Usage(format!(
                    "want 0 < old ({old}) <= new ({new}) <= checkpoint size ({})",
                    c.size
                )));
            }
            let old_root = fetch::root_at(&a.client, old, c.size.0, c.root).await?;
            let new_root = fetch::root_at(&a.client, new, c.size.0, c.root).await?;
            let proof = fetch::prove_consistency(&a.client, old, new, new_root).await?;
            proof.verify(&old_root, &new_root)?;
            let json = json!({
                "ok": true, "old": old, "new": new, "old_root": old_root.to_hex(),
                "new_root": new_root.to_hex(), "checkpoint_size": c.size.0,
                "proof": proof.hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
            });
            let human = format!(
                "consistent: size {old} (root {old_root}) is a prefix of size {new} (root {new_root}), \
                 under the verified checkpoint of size {}\n",
                c.size
            );
            Ok(Report::ok(json, human))
        }
        ConsistencyArgs::Checkpoints(x, y) => {
            let x = verify_checkpoint(&x, &a.trust.log)?;
            let y = verify_checkpoint(&y, &a.trust.log)?;
            if x.checkpoint.size > y.checkpoint.size {
                return Err(AuditError::Usage(format!(
                    "--checkpoints OLD NEW: the first checkpoint (size {}) is newer than the \
                     second (size {}); give the older one first",
                    x.checkpoint.size, y.checkpoint.size
                )));
            }
            let (old, new): (SignedCheckpoint, SignedCheckpoint) = (x, y);
            let (o, n) = (&old.checkpoint, &new.checkpoint);
            let proof = if o.size.0 > 0 && o.size < n.size {
                Some(fetch::prove_consistency(&a.client, o.size.0, n.size.0, n.root).await?)
            } else {
                None
            };
            check_update(Some(&old), &new, proof.as_ref())?;
            let json = json!({
                "ok": true, "old": o.size.0, "new": n.size.0, "old_root": o.root.to_hex(),
                "new_root": n.root.to_hex(),
                "proof": proof.map(|p| p.hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>()),
            });
            let human = format!(
                "consistent: checkpoint size {} (root {}) is a prefix of checkpoint size {} (root {})\n",
                o.size, o.root, n.size, n.root
            );
            Ok(Report::ok(json, human))
        }
    }
}

/// A release from the log, proven included under a fresh, verified checkpoint: the entry at
/// `index` (read from its entry bundle), or else the newest release of `measurement`.
/// Returns its index and the release.
pub async fn logged_release(
    a: &Auditor,
    index: Option<u64>,
    measurement: Option<&str>,
    operators: &[NoteVerifierKey],
) -> Result<(u64, Release), AuditError> {
    let cp = check_checkpoint(a).await?;
    let size = cp.witnessed.checkpoint().size.0;
    let (index, bytes) = match (index, measurement) {
        (Some(i), _) => {
            if i >= size {
                return Err(AuditError::NotIncluded {
                    what: format!("index {i}"),
                    why: format!("the verified checkpoint has only {size} entries"),
                });
            }
            let n = i / TILE_WIDTH;
            let width = (size - n * TILE_WIDTH).min(TILE_WIDTH);
            let tile = TilePath::entries(n, width)
                .map_err(|e| AuditError::Internal(format!("entry bundle of {i}: {e}")))?;
            let entries = a.client.bundle(tile).await?;
            let at = usize::try_from(i % TILE_WIDTH).unwrap_or(usize::MAX);
            let bytes = entries
                .get(at)
                .cloned()
                .ok_or_else(|| AuditError::NotIncluded {
                    what: format!("index {i}"),
                    why: "its entry bundle is short".into(),
                })?;
            (i, bytes)
        }
        (None, Some(m)) => {
            let m = m.to_ascii_lowercase();
            let answer = releases(a, &m).await?;
            let newest = answer
                .releases
                .into_iter()
                .filter(|e| e.index < size)
                .max_by_key(|e| e.index)
                .ok_or_else(|| AuditError::NotIncluded {
                    what: format!("measurement {m}"),
                    why: format!("no release for it in the tree of size {size}"),
                })?;
            (newest.index, newest.entry)
        }
        (None, None) => {
            return Err(AuditError::Usage("give --index or --measurement".into()));
        }
    };
    let st = check_statement(&bytes, operators, Some(index))?;
    prove_leaf(a, &cp, LeafHash::of_entry(&bytes), Some(index)).await?;
    match st {
        Statement::Release(r) => {
            if let Some(m) = measurement {
                if !r.measurement.to_hex().eq_ignore_ascii_case(m) {
                    return Err(AuditError::NotIncluded {
                        what: format!("measurement {m}"),
                        why: format!("entry {index} is a release of {}", r.measurement.to_hex()),
                    });
                }
            }
            Ok((index, r))
        }
        other => Err(AuditError::Usage(format!(
            "entry {index} is a {}, not a release",
            other.type_line()
        ))),
    }
}
