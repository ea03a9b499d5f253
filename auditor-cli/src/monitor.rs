//! `monitor`: follow the log entry bundle by entry bundle from where the last run stopped.
//!
//! For every new entry it recomputes the leaf hash and extends a compact range, so the root
//! of everything read is recomputed and compared with the verified checkpoint; it parses
//! every statement and checks its operator signature, and lists new releases, key configs
//! and revocations. Bundles are fetched concurrently and parsed on blocking threads; the
//! tree is extended in order. The position is stored only at roots that were checked against
//! the checkpoint (every `commit_every` bundles, through authenticated hash tiles, and at
//! the end), so an interrupted run resumes without trusting anything unverified.

use std::time::Instant;

use futures_util::stream::{self, StreamExt as _};
use lucent_verifier::merkle::{Hash, LeafHash};
use lucent_verifier::note::NoteVerifierKey;
use lucent_verifier::statement::Statement;
use lucent_verifier::tiles::{CompactRange, TilePath, TILE_WIDTH};
use serde_json::{json, Value};

use crate::audit::{check_checkpoint, check_statement, Auditor, Report};
use crate::fetch::{self, LogClient};
use crate::state::MonitorState;
use crate::AuditError;

/// Monitor options.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Operator keys every statement must be signed by (empty: layout only).
    pub operators: Vec<NoteVerifierKey>,
    /// Entry bundles fetched at once.
    pub concurrency: usize,
    /// Show progress on standard error: a bar on a terminal, plain periodic lines otherwise.
    pub progress: bool,
    /// Store a checked position every this many bundles.
    pub commit_every: u64,
    /// Stop after about this many new entries (at a bundle boundary).
    pub max_entries: Option<u64>,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            operators: Vec::new(),
            concurrency: 16,
            progress: false,
            commit_every: 64,
            max_entries: None,
        }
    }
}

/// Progress on standard error: a bar on a terminal, otherwise a plain line at the start,
/// every [`Progress::LINE_EVERY`] and at the end (for logs of cron jobs and CI).
enum Progress {
    Off,
    Bar(indicatif::ProgressBar),
    Lines {
        start: u64,
        end: u64,
        done: u64,
        began: std::time::Instant,
        last: std::time::Instant,
    },
}

impl Progress {
    const LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(enabled: bool, start: u64, end: u64) -> Self {
        use std::io::IsTerminal as _;
        if !enabled {
            return Progress::Off;
        }
        if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(end - start);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} entries ({per_sec}, eta {eta})",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            return Progress::Bar(b);
        }
        eprintln!(
            "monitor: reading entries {start}..{end} ({} new)",
            end - start
        );
        let now = std::time::Instant::now();
        Progress::Lines {
            start,
            end,
            done: 0,
            began: now,
            last: now,
        }
    }

    fn inc(&mut self, n: u64) {
        match self {
            Progress::Off => {}
            Progress::Bar(b) => b.inc(n),
            Progress::Lines {
                start,
                end,
                done,
                began,
                last,
            } => {
                *done += n;
                if last.elapsed() >= Self::LINE_EVERY {
                    *last = std::time::Instant::now();
                    let total = (*end - *start).max(1);
                    let rate = *done as f64 / began.elapsed().as_secs_f64().max(1e-3);
                    eprintln!(
                        "monitor: {done}/{total} entries ({:.1} %), {rate:.0} entries/s",
                        *done as f64 * 100.0 / total as f64
                    );
                }
            }
        }
    }

    fn finish(self) {
        match self {
            Progress::Off => {}
            Progress::Bar(b) => b.finish_and_clear(),
            Progress::Lines { done, began, .. } => eprintln!(
                "monitor: read {done} entries in {:.1} s",
                began.elapsed().as_secs_f64()
            ),
        }
    }
}

/// One bundle, hashed and checked.
struct Checked {
    leaves: Vec<LeafHash>,
    findings: Vec<Value>,
    problems: Vec<String>,
}

fn check_bundle(first: u64, entries: Vec<Vec<u8>>, operators: &[NoteVerifierKey]) -> Checked {
    let mut out = Checked {
        leaves: Vec::with_capacity(entries.len()),
        findings: Vec::new(),
        problems: Vec::new(),
    };
    for (i, e) in entries.iter().enumerate() {
        let index = first + i as u64;
        out.leaves.push(LeafHash::of_entry(e));
        match check_statement(e, operators, Some(index)) {
            Ok(st) => out.findings.push(finding(index, &st)),
            Err(err) => out.problems.push(err.to_string()),
        }
    }
    out
}

fn finding(index: u64, st: &Statement) -> Value {
    match st {
        Statement::Release(r) => json!({
            "index": index, "type": "release", "platform": r.measurement.platform().as_str(),
            "measurement": r.measurement.to_hex(), "version": r.version, "source": r.source,
            "commit": hex::encode(&r.commit), "not_after": r.not_after,
        }),
        Statement::KeyConfig(k) => json!({
            "index": index, "type": "keyconfig", "key_id": k.key_id,
            "not_before": k.not_before, "not_after": k.not_after,
        }),
        Statement::Revoke(r) => json!({
            "index": index, "type": "revoke", "measurement": r.measurement.to_hex(),
            "reason": r.reason,
        }),
        Statement::Issuer(i) => json!({
            "index": index, "type": "issuer", "name": i.name,
            "key_id": hex::encode(i.public_key.key_id()),
            "not_before": i.not_before, "not_after": i.not_after,
        }),
    }
}

/// Checks that the compact range's root equals the root at its size in the signed tree.
async fn check_position(
    client: &LogClient,
    range: &CompactRange,
    size: u64,
    root: Hash,
) -> Result<(), AuditError> {
    let signed = fetch::root_at(client, range.size(), size, root).await?;
    let computed = range.root();
    if signed != computed {
        return Err(AuditError::RootMismatch {
            size: range.size(),
            computed: computed.to_hex(),
            signed: signed.to_hex(),
        });
    }
    Ok(())
}

/// Runs the monitor once: verify the checkpoint, then read every entry not read before.
pub async fn run(a: &Auditor, opts: &MonitorOptions) -> Result<Report, AuditError> {
    let started = Instant::now();
    let cp = check_checkpoint(a).await?;
    let c = cp.witnessed.checkpoint().clone();
    let origin = c.origin.clone();
    let (mut counts, mut range) = match a.state.monitor(&origin)? {
        Some((st, range)) => ((st.releases, st.keyconfigs, st.revocations), range),
        None => ((0, 0, 0), CompactRange::new()),
    };
    let start = range.size();
    if start > c.size.0 {
        return Err(AuditError::LastSeen(
            lucent_verifier::last_seen::LastSeenError::Rollback {
                stored: start,
                new: c.size.0,
            },
        ));
    }
    // What we read before must still be a prefix of the signed tree.
    if start > 0 {
        check_position(&a.client, &range, c.size.0, c.root).await?;
    }
    let end = match opts.max_entries {
        Some(m) => c
            .size
            .0
            .min(start.saturating_add(m).div_ceil(TILE_WIDTH) * TILE_WIDTH),
        None => c.size.0,
    };
    let mut bar = Progress::new(opts.progress, start, end);
    let (mut releases, mut keyconfigs, mut revocations) = (
        Vec::<Value>::new(),
        Vec::<Value>::new(),
        Vec::<Value>::new(),
    );
    let mut problems: Vec<String> = Vec::new();
    if start < end {
        let first_tile = start / TILE_WIDTH;
        let last_tile = (end - 1) / TILE_WIDTH;
        let c_size = c.size.0;
        let tiles = (first_tile..=last_tile).filter_map(|n| TilePath::in_tree(None, n, c_size));
        let client = a.client.clone();
        let operators = opts.operators.clone();
        let mut bundles = stream::iter(tiles)
            .map(move |tile| {
                let client = client.clone();
                let operators = operators.clone();
                async move {
                    let entries = client.bundle(tile).await?;
                    let n = tile.index();
                    let skip = start.saturating_sub(n * TILE_WIDTH) as usize;
                    let first = n * TILE_WIDTH + skip as u64;
                    let entries = entries.into_iter().skip(skip).collect();
                    tokio::task::spawn_blocking(move || check_bundle(first, entries, &operators))
                        .await
                        .map_err(|e| AuditError::Internal(format!("bundle task: {e}")))
                }
            })
            .buffered(opts.concurrency.max(1));
        let mut done_tiles = 0u64;
        while let Some(checked) = bundles.next().await {
            let checked = checked?;
            range
                .extend(checked.leaves.iter().copied())
                .map_err(|e| AuditError::Internal(e.to_string()))?;
            bar.inc(checked.leaves.len() as u64);
            for f in checked.findings {
                match f["type"].as_str() {
                    Some("release") => {
                        counts.0 += 1;
                        releases.push(f);
                    }
                    Some("keyconfig") => {
                        counts.1 += 1;
                        keyconfigs.push(f);
                    }
                    _ => {
                        counts.2 += 1;
                        revocations.push(f);
                    }
                }
            }
            problems.extend(checked.problems);
            done_tiles += 1;
            if done_tiles % opts.commit_every.max(1) == 0 && range.size() < c_size {
                check_position(&a.client, &range, c_size, c.root).await?;
                a.state.store_monitor(
                    &origin,
                    &MonitorState::new(&range, counts.0, counts.1, counts.2),
                )?;
            }
        }
    }
    bar.finish();
    if range.size() == c.size.0 {
        let computed = range.root();
        if computed != c.root {
            return Err(AuditError::RootMismatch {
                size: c.size.0,
                computed: computed.to_hex(),
                signed: c.root.to_hex(),
            });
        }
    } else {
        check_position(&a.client, &range, c.size.0, c.root).await?;
    }
    a.state.store_monitor(
        &origin,
        &MonitorState::new(&range, counts.0, counts.1, counts.2),
    )?;

    let secs = started.elapsed().as_secs_f64();
    let read = range.size() - start;
    let json = json!({
        "ok": problems.is_empty(),
        "origin": origin,
        "checkpoint_size": c.size.0,
        "root": range.root().to_hex(),
        "from": start,
        "to": range.size(),
        "entries_read": read,
        "seconds": secs,
        "entries_per_second": if secs > 0.0 { read as f64 / secs } else { 0.0 },
        "signatures_checked": !opts.operators.is_empty(),
        "new_releases": releases,
        "new_keyconfigs": keyconfigs,
        "new_revocations": revocations,
        "problems": problems,
        "totals": { "releases": counts.0, "keyconfigs": counts.1, "revocations": counts.2 },
    });
    let mut human = format!(
        "monitor: {origin} entries {start}..{} of {} read in {secs:.2}s; root {} matches the checkpoint\n",
        range.size(),
        c.size,
        range.root()
    );
    if opts.operators.is_empty() {
        human.push_str("  (no --operator-key given: statement layouts checked, signatures not)\n");
    }
    for (name, list) in [
        ("release", &releases),
        ("keyconfig", &keyconfigs),
        ("revocation", &revocations),
    ] {
        human.push_str(&format!("  new {name}s: {}\n", list.len()));
        for f in list.iter().take(20) {
            human.push_str(&format!("    {f}\n"));
        }
        if list.len() > 20 {
            human.push_str(&format!(
                "    … and {} more (see --json)\n",
                list.len() - 20
            ));
        }
    }
    for p in problems.iter().take(50) {
        human.push_str(&format!("  PROBLEM: {p}\n"));
    }
    let failed = (!problems.is_empty())
        .then(|| format!("{} entries failed statement checks", problems.len()));
    Ok(Report {
        json,
        human,
        failed,
    })
}
