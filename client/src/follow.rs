//! Following the log: a party's own verified view of every statement in it.
//!
//! The key broker and the CVM runtime do not ask the log which releases, revocations and
//! key configs exist (an answer the log could leave incomplete); they read every entry
//! themselves. A [`Follower`] fetches the log's checkpoint, verifies its signature and
//! witness quorum, reads every new entry bundle, hashes each entry into the tree and
//! compares the recomputed root with the checkpoint's: the view is then complete up to a
//! witnessed checkpoint, and a revocation the log hid from this party would be a split view
//! that witnesses refuse to sign. Entries an operator did not sign are counted and ignored.
//!
//! The log holds thousands of entries, not millions, so the whole view is kept in memory
//! (at most [`MAX_FOLLOWED_ENTRIES`]) and built again from the start after a restart.
//!
//! Availability is not trust: a sync that fails because the log, a replica or the witnesses
//! are unreachable or behind ([`FollowError::is_availability`]) leaves the last view as it
//! was, with the time it was last confirmed ([`LogView::verified_at`]); the caller decides
//! how long it may act on it. A sync that shows the log lying (a bad signature, a root that
//! does not match, two checkpoints that cannot both be true) is not an outage.
//!
//! Cosignature age: a checkpoint whose quorum of witnesses last cosigned more than
//! [`FollowPolicy::max_cosignature_lag_secs`] before the newest quorum this follower has
//! seen is stale (a replayed old checkpoint); it confirms nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use lucent_verifier::checkpoint::{verify_checkpoint, CheckpointError, WitnessedCheckpoint};
use lucent_verifier::last_seen::{check_behind, LastSeenError, Update};
use lucent_verifier::merkle::{ConsistencyProof, Hash, InclusionProof, MemoryTree};
use lucent_verifier::statement::{verify_statement, Measurement, Release, Statement};
use lucent_verifier::tiles::{TilePath, TILE_WIDTH};
use lucent_verifier::trust::TrustSettings;

use crate::log::{FetchError, LogClient};

/// Most entries a follower reads into memory (each costs about 64 bytes of tree hashes plus
/// the statement if an operator signed it); a larger log is refused with
/// [`FollowError::TooLarge`] rather than exhausting the process.
pub const MAX_FOLLOWED_ENTRIES: u64 = 1 << 20;

/// How a follower judges checkpoints beyond their signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowPolicy {
    /// A checkpoint whose quorum cosigned more than this long before the newest quorum seen
    /// is stale. Default one hour.
    pub max_cosignature_lag_secs: u64,
}

impl Default for FollowPolicy {
    fn default() -> Self {
        FollowPolicy {
            max_cosignature_lag_secs: 3600,
        }
    }
}

/// A logged release, as the follower verified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRelease {
    /// Its index in the log.
    pub index: u64,
    /// The statement.
    pub release: Release,
    /// The exact entry bytes (what an inclusion proof is for).
    pub entry: Vec<u8>,
}

/// A logged revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRevocation {
    /// Its index in the log.
    pub index: u64,
    /// Why, as the operator wrote it.
    pub reason: String,
}

/// A logged key config statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedKeyConfig {
    /// Its index in the log.
    pub index: u64,
    /// The statement.
    pub statement: lucent_verifier::statement::KeyConfig,
}

/// A logged issuer key statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedIssuer {
    /// Its index in the log.
    pub index: u64,
    /// The statement.
    pub statement: lucent_verifier::statement::Issuer,
}

/// Everything the log holds up to a verified, witnessed checkpoint.
#[derive(Clone)]
pub struct LogView {
    checkpoint: WitnessedCheckpoint,
    tree: MemoryTree,
    releases: HashMap<Measurement, Vec<LoggedRelease>>,
    revocations: HashMap<Measurement, Vec<LoggedRevocation>>,
    keyconfigs: HashMap<u8, Vec<LoggedKeyConfig>>,
    issuers: HashMap<[u8; 32], Vec<LoggedIssuer>>,
    unsigned: u64,
    verified_at: u64,
    newest_quorum: u64,
}

impl std::fmt::Debug for LogView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (releases, revocations, keyconfigs, unsigned) = self.counts();
        f.debug_struct("LogView")
            .field("size", &self.size())
            .field("releases", &releases)
            .field("revocations", &revocations)
            .field("keyconfigs", &keyconfigs)
            .field("unsigned", &unsigned)
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

impl LogView {
    /// The checkpoint the view is complete up to.
    pub fn checkpoint(&self) -> &WitnessedCheckpoint {
        &self.checkpoint
    }

    /// Entries read (the checkpoint's size).
    pub fn size(&self) -> u64 {
        self.tree.size().0
    }

    /// Proof that entry `index` is in the tree of the view's checkpoint, computed from the
    /// entries read (no request to the log).
    pub fn prove_inclusion(&self, index: u64) -> Option<InclusionProof> {
        self.tree.prove_inclusion(index, self.size()).ok()
    }

    /// Proof that the tree of size `old` is a prefix of the view's, computed from the
    /// entries read; `None` when `old` is 0 or larger than the view.
    pub fn prove_consistency(&self, old: u64) -> Option<ConsistencyProof> {
        self.tree.prove_consistency(old, self.size()).ok()
    }

    /// When (Unix seconds) a sync last verified a checkpoint at least as new as this view's:
    /// until then, nothing newer could have been hidden from it.
    pub fn verified_at(&self) -> u64 {
        self.verified_at
    }

    /// Seconds since [`LogView::verified_at`].
    pub fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.verified_at)
    }

    /// The newest operator-signed release of `measurement`.
    pub fn newest_release(&self, measurement: &Measurement) -> Option<&LoggedRelease> {
        self.releases.get(measurement).and_then(|r| r.last())
    }

    /// The operator-signed revocations of `measurement`, oldest first.
    pub fn revocations(&self, measurement: &Measurement) -> &[LoggedRevocation] {
        self.revocations
            .get(measurement)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every measurement an operator revoked.
    pub fn revoked(&self) -> impl Iterator<Item = &Measurement> {
        self.revocations.keys()
    }

    /// The operator-signed key configs under `key_id`, oldest first.
    pub fn keyconfigs(&self, key_id: u8) -> &[LoggedKeyConfig] {
        self.keyconfigs
            .get(&key_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The operator-signed issuer key statements for the token key id `key_id`, oldest
    /// first.
    pub fn issuers(&self, key_id: &[u8; 32]) -> &[LoggedIssuer] {
        self.issuers
            .get(key_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Counts of (releases, revocations, key configs, entries no operator signed).
    pub fn counts(&self) -> (usize, usize, usize, u64) {
        (
            self.releases.values().map(Vec::len).sum(),
            self.revocations.values().map(Vec::len).sum(),
            self.keyconfigs.values().map(Vec::len).sum(),
            self.unsigned,
        )
    }

    fn add(&mut self, index: u64, entry: Vec<u8>, trust: &TrustSettings) {
        match verify_statement(&entry, &trust.operators).map(|s| s.statement) {
            Ok(Statement::Release(release)) => self
                .releases
                .entry(release.measurement.clone())
                .or_default()
                .push(LoggedRelease {
                    index,
                    release,
                    entry,
                }),
            Ok(Statement::Revoke(r)) => {
                self.revocations
                    .entry(r.measurement)
                    .or_default()
                    .push(LoggedRevocation {
                        index,
                        reason: r.reason,
                    })
            }
            Ok(Statement::KeyConfig(k)) => {
                self.keyconfigs
                    .entry(k.key_id)
                    .or_default()
                    .push(LoggedKeyConfig {
                        index,
                        statement: k,
                    })
            }
            Ok(Statement::Issuer(i)) => self
                .issuers
                .entry(i.public_key.key_id())
                .or_default()
                .push(LoggedIssuer {
                    index,
                    statement: i,
                }),
            Err(_) => self.unsigned += 1,
        }
    }
}

/// Why a sync did not produce a newer view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The log could not be read.
    #[error("reading the log: {0}")]
    Fetch(#[from] FetchError),
    /// The checkpoint is not signed by the log's key for its origin.
    #[error("the log's checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// Too few witnesses cosigned the checkpoint (an outage, or a view they refused).
    #[error("the log's checkpoint: {0}")]
    Witnesses(CheckpointError),
    /// The checkpoint is older than the view, and proven a prefix of it (a lagging replica).
    #[error("the log answered a checkpoint of size {size}, behind this view's {seen}")]
    Behind {
        /// The checkpoint's size.
        size: u64,
        /// The view's.
        seen: u64,
    },
    /// The checkpoint's quorum cosigned long before the newest quorum seen (a replay).
    #[error(
        "the checkpoint's witnesses cosigned at {cosigned}, more than {max_lag} s before the \
         newest cosignatures seen ({newest})"
    )]
    StaleCosignatures {
        /// The quorum's time in the checkpoint.
        cosigned: u64,
        /// The newest quorum time seen.
        newest: u64,
        /// The allowed lag.
        max_lag: u64,
    },
    /// The checkpoint contradicts the view (split view, rollback without proof).
    #[error("the log's checkpoint contradicts the view: {0}")]
    Inconsistent(LastSeenError),
    /// The entries read do not hash to the checkpoint's root.
    #[error("entries 0..{size} hash to {computed}, the checkpoint says {signed}")]
    RootMismatch {
        /// Tree size.
        size: u64,
        /// Root of the entries read.
        computed: Hash,
        /// Root in the checkpoint.
        signed: Hash,
    },
    /// The log is larger than a follower reads.
    #[error("the log holds {size} entries; a follower reads at most {MAX_FOLLOWED_ENTRIES}")]
    TooLarge {
        /// The checkpoint's size.
        size: u64,
    },
}

impl FollowError {
    /// Whether the failure is one of availability (the log, a replica or the witnesses
    /// unreachable, behind or replayed), after which the last view still holds; otherwise
    /// the log showed something that cannot be true.
    pub fn is_availability(&self) -> bool {
        match self {
            FollowError::Fetch(FetchError::Http { .. } | FetchError::Refused { .. })
            | FollowError::Witnesses(_)
            | FollowError::Behind { .. }
            | FollowError::StaleCosignatures { .. }
            | FollowError::TooLarge { .. } => true,
            FollowError::Fetch(_)
            | FollowError::Checkpoint(_)
            | FollowError::Inconsistent(_)
            | FollowError::RootMismatch { .. } => false,
        }
    }
}

/// What a successful sync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// The first view, of this many entries.
    First {
        /// Entries read.
        size: u64,
    },
    /// The log has not grown; the view is confirmed as of now.
    Unchanged {
        /// The view's size.
        size: u64,
    },
    /// New entries were read.
    Advanced {
        /// The old size.
        from: u64,
        /// The new size.
        to: u64,
    },
}

/// A party's follower of one log. Cheap to share: syncs take turns, readers get the last
/// complete view.
#[derive(Debug)]
pub struct Follower {
    log: LogClient,
    trust: TrustSettings,
    policy: FollowPolicy,
    view: RwLock<Option<Arc<LogView>>>,
    sync_lock: tokio::sync::Mutex<()>,
}

/// The time `quorum` witnesses had all cosigned by: the quorum-th newest timestamp (with no
/// witnesses required, `now`).
fn quorum_time(checkpoint: &WitnessedCheckpoint, quorum: usize, now: u64) -> u64 {
    if quorum == 0 {
        return now;
    }
    let mut times: Vec<u64> = checkpoint
        .cosignatures
        .iter()
        .map(|c| c.timestamp)
        .collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    times.get(quorum - 1).copied().unwrap_or(0)
}

impl Follower {
    /// A follower of the log `log` under `trust` (log key, witnesses, operators).
    pub fn new(log: LogClient, trust: TrustSettings, policy: FollowPolicy) -> Self {
        Follower {
            log,
            trust,
            policy,
            view: RwLock::new(None),
            sync_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The last complete view, if a sync has succeeded.
    pub fn view(&self) -> Option<Arc<LogView>> {
        self.view.read().ok().and_then(|v| v.clone())
    }

    fn set_view(&self, view: LogView) {
        if let Ok(mut v) = self.view.write() {
            *v = Some(Arc::new(view));
        }
    }

    /// Reads the log's checkpoint and every entry not read yet; on success the view is
    /// complete up to that checkpoint and confirmed at `now` (Unix seconds).
    pub async fn sync(&self, now: u64) -> Result<Synced, FollowError> {
        let _turn = self.sync_lock.lock().await;
        let note = self.log.checkpoint().await?;
        let signed = verify_checkpoint(&note, &self.trust.log).map_err(FollowError::Checkpoint)?;
        let cosignatures = self
            .trust
            .witnesses
            .check(&signed.text, &signed.other_signatures)
            .map_err(|source| {
                FollowError::Witnesses(CheckpointError::Witnesses {
                    size: signed.checkpoint.size.0,
                    source,
                })
            })?;
        let witnessed = WitnessedCheckpoint {
            signed,
            cosignatures,
        };
        let quorum = quorum_time(&witnessed, self.trust.witnesses.quorum(), now);
        let size = witnessed.checkpoint().size.0;
        if size > MAX_FOLLOWED_ENTRIES {
            return Err(FollowError::TooLarge { size });
        }
        let old = self.view();
        if let Some(old) = &old {
            let max_lag = self.policy.max_cosignature_lag_secs;
            if quorum.saturating_add(max_lag) < old.newest_quorum {
                return Err(FollowError::StaleCosignatures {
                    cosigned: quorum,
                    newest: old.newest_quorum,
                    max_lag,
                });
            }
            if size <= old.size() {
                let proof = if size < old.size() {
                    Some(self.log.consistency(size, old.size()).await?)
                } else {
                    None
                };
                let update =
                    check_behind(&old.checkpoint.signed, &witnessed.signed, proof.as_ref())
                        .map_err(FollowError::Inconsistent)?;
                if let Update::Behind { size, seen } = update {
                    return Err(FollowError::Behind {
                        size: size.0,
                        seen: seen.0,
                    });
                }
                let mut view = LogView::clone(old);
                view.checkpoint = witnessed;
                view.verified_at = view.verified_at.max(now);
                view.newest_quorum = view.newest_quorum.max(quorum);
                self.set_view(view);
                return Ok(Synced::Unchanged { size });
            }
        }
        let mut view = match &old {
            Some(old) => LogView::clone(old),
            None => LogView {
                checkpoint: witnessed.clone(),
                tree: MemoryTree::new(),
                releases: HashMap::new(),
                revocations: HashMap::new(),
                keyconfigs: HashMap::new(),
                issuers: HashMap::new(),
                unsigned: 0,
                verified_at: 0,
                newest_quorum: 0,
            },
        };
        let from = view.size();
        self.read_entries(&mut view, size).await?;
        let computed = view.tree.root();
        if computed != witnessed.checkpoint().root {
            return Err(FollowError::RootMismatch {
                size,
                computed,
                signed: witnessed.checkpoint().root,
            });
        }
        view.checkpoint = witnessed;
        view.verified_at = now;
        view.newest_quorum = view.newest_quorum.max(quorum);
        self.set_view(view);
        Ok(match old {
            None => Synced::First { size },
            Some(_) => Synced::Advanced { from, to: size },
        })
    }

    /// Reads entries `view.size()..size` bundle by bundle into `view`.
    async fn read_entries(&self, view: &mut LogView, size: u64) -> Result<(), FollowError> {
        let start = view.size();
        if start >= size {
            return Ok(());
        }
        for n in start / TILE_WIDTH..=(size - 1) / TILE_WIDTH {
            let Some(tile) = TilePath::in_tree(None, n, size) else {
                break;
            };
            let first = n * TILE_WIDTH;
            let skip = start.saturating_sub(first);
            let entries = self.log.bundle(tile).await?;
            for (i, entry) in entries.into_iter().enumerate().skip(skip as usize) {
                let index = first + i as u64;
                view.tree.push_entry(&entry);
                view.add(index, entry, &self.trust);
            }
        }
        Ok(())
    }
}
