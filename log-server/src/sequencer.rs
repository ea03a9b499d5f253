//! The sequencer: the one task, in the one elected process, that appends to the tree.
//!
//! It batches submissions (up to `batch_max`, or `batch_interval` after the first), and for
//! each batch writes entries, stored hashes, the signed checkpoint and the new size in one
//! transaction. Only after the commit does it tell anyone an index. It also drains the
//! `pending` table, where servers that are not the sequencer leave their submissions.

use std::time::Duration;

use lucent_verifier::checkpoint::Checkpoint;
use lucent_verifier::merkle::{LeafHash, TreeSize};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{self, Statement};
use lucent_verifier::tiles::CompactRange;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::store::{Candidate, Plan, SequencerLock, SharedStore, StoreError};
use crate::tree;

/// Where a submission ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Its index in the log.
    pub index: u64,
    /// Whether the same statement was already logged.
    pub duplicate: bool,
}

/// Why the sequencer could not place a submission (nothing was written for it).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SequenceError {
    /// The batch could not be committed.
    #[error("batch not committed: {0}")]
    Store(String),
    /// This process stopped being the sequencer.
    #[error("this server is no longer the sequencer")]
    NotLeader,
}

/// A verified statement handed to the sequencer.
pub struct Submission {
    /// The entry.
    pub candidate: Candidate,
    /// Told the index once the batch is durable.
    pub reply: oneshot::Sender<Result<Placed, SequenceError>>,
}

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most entries per batch.
    pub max: usize,
    /// Longest wait after the first entry of a batch.
    pub interval: Duration,
    /// How often the `pending` table is checked when idle.
    pub pending_poll: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max: 4096,
            interval: Duration::from_millis(25),
            pending_poll: Duration::from_millis(100),
        }
    }
}

/// Kind and lookup key of a statement (for lookups by measurement and key id).
pub fn lookup_key(statement: &Statement) -> (&'static str, Vec<u8>) {
    match statement {
        Statement::Release(r) => ("release", r.measurement.as_bytes().to_vec()),
        Statement::KeyConfig(k) => ("keyconfig", vec![k.key_id]),
        Statement::Revoke(r) => ("revoke", r.measurement.as_bytes().to_vec()),
        Statement::Issuer(i) => ("issuer", i.public_key.key_id().to_vec()),
    }
}

/// Channels the sequencer publishes its state on.
#[derive(Clone)]
pub struct SequencerWatch {
    /// Integrated tree size (durable), while this process is the sequencer.
    pub integrated: watch::Receiver<u64>,
    /// Whether this process is the sequencer.
    pub leader: watch::Receiver<bool>,
}

/// The sequencer task's state.
pub struct Sequencer {
    store: SharedStore,
    signer: NoteSigner,
    metrics: Metrics,
    batch: BatchConfig,
    publish_now: bool,
    rx: mpsc::Receiver<Submission>,
    integrated: watch::Sender<u64>,
    leader: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
}

impl Sequencer {
    /// Builds the sequencer and the sender handlers submit through. `publish_now`: no
    /// witnesses are configured, so checkpoints are published in the batch's transaction.
    pub fn new(
        store: SharedStore,
        signer: NoteSigner,
        metrics: Metrics,
        batch: BatchConfig,
        publish_now: bool,
        stop: watch::Receiver<bool>,
    ) -> (Self, mpsc::Sender<Submission>, SequencerWatch) {
        let (tx, rx) = mpsc::channel(batch.max.max(1) * 4);
        let (integrated, integrated_rx) = watch::channel(0);
        let (leader, leader_rx) = watch::channel(false);
        (
            Sequencer {
                store,
                signer,
                metrics,
                batch,
                publish_now,
                rx,
                integrated,
                leader,
                stop,
            },
            tx,
            SequencerWatch {
                integrated: integrated_rx,
                leader: leader_rx,
            },
        )
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs until told to stop; then integrates every submission already handed over.
    pub async fn run(mut self) {
        loop {
            let mut stop = self.stop.clone();
            let store = self.store.clone();
            let lock = tokio::select! {
                lock = store.acquire_sequencer() => Some(lock),
                _ = stop.wait_for(|s| *s) => None,
            };
            let lock = match lock {
                None => {
                    self.reject_all(SequenceError::NotLeader);
                    return;
                }
                Some(Ok(lock)) => lock,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "sequencer election failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            tracing::info!("this server is the sequencer");
            match self.lead(lock).await {
                Ok(()) => {
                    self.leader.send_replace(false);
                    self.metrics.is_sequencer.set(0);
                    return;
                }
                Err(e) => {
                    self.leader.send_replace(false);
                    self.metrics.is_sequencer.set(0);
                    tracing::error!(error = %e, "sequencer stepped down");
                    self.reject_all(SequenceError::NotLeader);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    fn reject_all(&mut self, why: SequenceError) {
        while let Ok(s) = self.rx.try_recv() {
            let _ = s.reply.send(Err(why.clone()));
        }
    }

    async fn ensure_first_checkpoint(&self, size: u64) -> Result<(), StoreError> {
        if size == 0 && self.store.latest_checkpoint(false).await?.is_none() {
            let root = CompactRange::new().root();
            let note = self.checkpoint(0, root).map_err(StoreError::Plan)?;
            self.store
                .insert_checkpoint(0, root, note, self.publish_now)
                .await?;
        }
        Ok(())
    }

    fn checkpoint(
        &self,
        size: u64,
        root: lucent_verifier::merkle::Hash,
    ) -> Result<Vec<u8>, String> {
        Checkpoint {
            origin: self.signer.name().to_owned(),
            size: TreeSize(size),
            root,
            extension: String::new(),
        }
        .sign(&self.signer)
        .map_err(|e| e.to_string())
    }

    async fn lead(&mut self, mut lock: SequencerLock) -> Result<(), StoreError> {
        let size = self.store.tree_size().await?;
        self.ensure_first_checkpoint(size).await?;
        let mut frontier = tree::load_range(&*self.store, size).await?;
        self.integrated.send_replace(size);
        self.leader.send_replace(true);
        self.metrics.is_sequencer.set(1);
        self.metrics
            .tree_size
            .set(i64::try_from(size).unwrap_or(i64::MAX));
        let mut last_check = Instant::now();
        loop {
            let stopping = self.stopping();
            let mut batch: Vec<Submission> = Vec::new();
            if stopping {
                while batch.len() < self.batch.max {
                    match self.rx.try_recv() {
                        Ok(s) => batch.push(s),
                        Err(_) => break,
                    }
                }
                if batch.is_empty() {
                    return Ok(());
                }
            } else {
                let mut stop = self.stop.clone();
                let first = tokio::select! {
                    s = self.rx.recv() => Some(s),
                    _ = tokio::time::sleep(self.batch.pending_poll) => None,
                    _ = stop.wait_for(|s| *s) => Some(None),
                };
                match first {
                    Some(Some(s)) => batch.push(s),
                    // Told to stop (or every sender is gone): the next turn drains.
                    Some(None) => {
                        if !self.stopping() {
                            return Ok(());
                        }
                        continue;
                    }
                    None => {}
                }
                if !batch.is_empty() {
                    let deadline = Instant::now() + self.batch.interval;
                    while batch.len() < self.batch.max {
                        tokio::select! {
                            s = self.rx.recv() => match s {
                                Some(s) => batch.push(s),
                                None => break,
                            },
                            _ = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                }
            }
            if last_check.elapsed() > Duration::from_secs(1) {
                lock.check().await?;
                last_check = Instant::now();
            }
            let room = self.batch.max.saturating_sub(batch.len());
            let pending = if room > 0 && !stopping {
                self.store.pending(room).await?
            } else {
                Vec::new()
            };
            if batch.is_empty() && pending.is_empty() {
                continue;
            }
            let mut candidates = Vec::with_capacity(batch.len() + pending.len());
            let mut replies = Vec::with_capacity(batch.len());
            for s in batch {
                candidates.push(s.candidate);
                replies.push(s.reply);
            }
            for (_, data) in pending {
                // Verified by the server that queued it; parsed again only for lookups.
                let (kind, lookup) = statement::parse_unverified(&data)
                    .map(|s| lookup_key(&s))
                    .unwrap_or(("other", Vec::new()));
                candidates.push(Candidate::new(data, kind, lookup));
            }
            let started = Instant::now();
            let mut result = self.commit(&mut frontier, &candidates).await;
            if let Err(StoreError::SizeMoved { expected, found }) = &result {
                tracing::warn!(
                    expected,
                    found,
                    "tree moved under this sequencer; reloading"
                );
                frontier = tree::load_range(&*self.store, *found).await?;
                result = self.commit(&mut frontier, &candidates).await;
            }
            match result {
                Ok(placed) => {
                    let new = frontier.size();
                    let fresh = placed.iter().filter(|p| !p.duplicate).count();
                    self.metrics.batches.inc();
                    self.metrics.entries_integrated.inc_by(fresh as u64);
                    self.metrics.batch_size.observe(fresh as f64);
                    self.metrics
                        .batch_seconds
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics
                        .tree_size
                        .set(i64::try_from(new).unwrap_or(i64::MAX));
                    self.integrated.send_replace(new);
                    for (reply, p) in replies.into_iter().zip(placed) {
                        let _ = reply.send(Ok(p));
                    }
                }
                Err(e) => {
                    let why = SequenceError::Store(e.to_string());
                    for reply in replies {
                        let _ = reply.send(Err(why.clone()));
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Commits one batch; on success `frontier` is the new tree's.
    async fn commit(
        &self,
        frontier: &mut CompactRange,
        candidates: &[Candidate],
    ) -> Result<Vec<Placed>, StoreError> {
        let mut next: Option<CompactRange> = None;
        let signer = &self.signer;
        let publish_now = self.publish_now;
        let current = frontier.clone();
        let integrated = {
            let mut planner = |size: u64, leaves: &[LeafHash]| -> Result<Plan, String> {
                let (plan, f) = plan_batch(&current, size, leaves, signer, publish_now)?;
                next = Some(f);
                Ok(plan)
            };
            self.store
                .integrate(current.size(), candidates, &mut planner)
                .await?
        };
        if let Some(f) = next {
            if f.size() == integrated.new_size {
                *frontier = f;
            }
        }
        Ok(integrated
            .placed
            .into_iter()
            .map(|(index, duplicate)| Placed { index, duplicate })
            .collect())
    }
}

/// The plan for appending `leaves` to the tree whose right edge is `current` (of `size`
/// leaves): every new stored hash, the new root and its signed checkpoint, with the new right
/// edge. The one planner the sequencer commits with (and the benchmark measures).
pub fn plan_batch(
    current: &CompactRange,
    size: u64,
    leaves: &[LeafHash],
    signer: &NoteSigner,
    publish_now: bool,
) -> Result<(Plan, CompactRange), String> {
    if size != current.size() {
        return Err(format!(
            "frontier is at {}, the tree at {size}",
            current.size()
        ));
    }
    let mut next = current.clone();
    let hashes = next
        .append(leaves)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(Into::into)
        .collect();
    let root = next.root();
    let checkpoint_note = Checkpoint {
        origin: signer.name().to_owned(),
        size: TreeSize(next.size()),
        root,
        extension: String::new(),
    }
    .sign(signer)
    .map_err(|e| e.to_string())?;
    Ok((
        Plan {
            hashes,
            root,
            checkpoint_note,
            publish_now,
        },
        next,
    ))
}
