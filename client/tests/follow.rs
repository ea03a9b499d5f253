//! The log follower against a log published as plain files (checkpoint, entry bundles, and
//! the consistency proofs a lagging replica answers) by a file server on a real socket: what
//! it reads, what it refuses, and which failures leave its last view standing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/file_server.rs"]
mod file_server;

use file_server::{serve_files, Files};
use lucent_client::follow::{FollowError, FollowPolicy, Follower, Synced};
use lucent_client::LogClient;
use lucent_verifier::checkpoint::{Checkpoint, LogKey};
use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
use lucent_verifier::log_api::ConsistencyAnswer;
use lucent_verifier::merkle::{MemoryTree, TreeSize};
use lucent_verifier::note::{append_signatures, NoteSigner};
use lucent_verifier::snp::SnpTrust;
use lucent_verifier::statement::{KeyConfig, Measurement, Platform, Release, Revoke, Statement};
use lucent_verifier::tdx::TdxTrust;
use lucent_verifier::tiles::{encode_bundle, TilePath, TILE_WIDTH};
use lucent_verifier::trust::TrustSettings;

const NOW: u64 = 1_900_000_000;

fn measurement(b: u8) -> Measurement {
    Measurement::new(Platform::SevSnp, &[b; 48]).unwrap()
}

struct Log {
    signer: NoteSigner,
    witnesses: Vec<WitnessSigner>,
    operator: NoteSigner,
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
    files: Files,
    url: String,
}

impl Log {
    async fn new() -> Self {
        let files = Files::default();
        let url = serve_files(files.clone()).await;
        Log {
            signer: NoteSigner::from_seed("log.follow.test", &[1; 32]).unwrap(),
            witnesses: (0..2u8)
                .map(|i| WitnessSigner::from_seed(&format!("w{i}.test"), &[9 + i; 32]).unwrap())
                .collect(),
            operator: NoteSigner::from_seed("operator.follow.test", &[2; 32]).unwrap(),
            tree: MemoryTree::new(),
            entries: Vec::new(),
            files,
            url,
        }
    }

    fn trust(&self) -> TrustSettings {
        TrustSettings {
            log: LogKey::new(self.signer.verifier_key()),
            witnesses: WitnessPolicy::new(
                self.witnesses.iter().map(|w| w.witness_key()).collect(),
                2,
            )
            .unwrap(),
            operators: vec![self.operator.verifier_key()],
            snp: SnpTrust::amd(),
            tdx: TdxTrust::intel(),
            amd_crls: Default::default(),
            revoked: vec![],
        }
    }

    fn follower(&self) -> Follower {
        Follower::new(
            LogClient::new(reqwest::Client::new(), &self.url),
            self.trust(),
            FollowPolicy::default(),
        )
    }

    fn checkpoint(&self, size: u64, cosigned_at: u64, cosigners: usize) -> Vec<u8> {
        let cp = Checkpoint {
            origin: "log.follow.test".into(),
            size: TreeSize(size),
            root: self.tree.root_at(size).unwrap(),
            extension: String::new(),
        };
        let note = cp.sign(&self.signer).unwrap();
        let text = cp.to_text().unwrap();
        let cosigs: Vec<_> = self.witnesses[..cosigners]
            .iter()
            .map(|w| w.cosign(&text, cosigned_at))
            .collect();
        append_signatures(&note, &cosigs).unwrap()
    }

    /// Appends entries (without publishing).
    fn append(&mut self, entries: impl IntoIterator<Item = Vec<u8>>) {
        for e in entries {
            self.tree.push_entry(&e);
            self.entries.push(e);
        }
    }

    fn signed(&self, st: Statement) -> Vec<u8> {
        st.sign(&self.operator).unwrap()
    }

    /// Publishes every entry bundle and a checkpoint of the whole tree.
    fn publish(&self, cosigned_at: u64, cosigners: usize) {
        let size = self.tree.size().0;
        let mut files = self.files.lock().unwrap();
        for n in 0..size.div_ceil(TILE_WIDTH) {
            let tile = TilePath::in_tree(None, n, size).unwrap();
            let range = tile.items().unwrap();
            let bundle =
                encode_bundle(&self.entries[range.start as usize..range.end as usize]).unwrap();
            files.insert(tile.path(), bundle);
        }
        files.insert(
            "checkpoint".into(),
            self.checkpoint(size, cosigned_at, cosigners),
        );
    }
}

#[tokio::test]
async fn reads_every_entry_and_keeps_what_an_operator_signed() {
    let mut log = Log::new().await;
    // 300 entries: two bundles, the second partial; statements among unsigned noise.
    let release = Release::example(measurement(1), NOW + 86_400);
    let release_note = log.signed(Statement::Release(release.clone()));
    let stranger = NoteSigner::generate(&mut rand_core::OsRng, "stranger.test").unwrap();
    let forged = Statement::Revoke(Revoke {
        measurement: measurement(1),
        reason: "not an operator".into(),
    })
    .sign(&stranger)
    .unwrap();
    let mut entries: Vec<Vec<u8>> = (0..297u32).map(|i| i.to_be_bytes().to_vec()).collect();
    entries.insert(10, release_note.clone());
    entries.insert(
        200,
        log.signed(Statement::KeyConfig(KeyConfig {
            key_id: 7,
            config: vec![1, 2, 3],
            not_before: 0,
            not_after: NOW,
        })),
    );
    entries.push(forged);
    log.append(entries);
    log.publish(NOW - 5, 2);

    let follower = log.follower();
    assert_eq!(
        follower.sync(NOW).await.unwrap(),
        Synced::First { size: 300 }
    );
    let view = follower.view().unwrap();
    assert_eq!(view.size(), 300);
    assert_eq!(view.counts(), (1, 0, 1, 298));
    let found = view.newest_release(&measurement(1)).unwrap();
    assert_eq!((found.index, &found.entry), (10, &release_note));
    assert!(
        view.revocations(&measurement(1)).is_empty(),
        "a stranger cannot revoke"
    );
    assert_eq!(view.keyconfigs(7)[0].index, 200);
    // The proofs the view gives verify against its checkpoint.
    let root = view.checkpoint().checkpoint().root;
    view.prove_inclusion(10)
        .unwrap()
        .verify(
            &lucent_verifier::merkle::LeafHash::of_entry(&release_note),
            &root,
        )
        .unwrap();

    // The operator revokes it; the next sync reads only the new entry.
    log.append([log.signed(Statement::Revoke(Revoke {
        measurement: measurement(1),
        reason: "withdrawn".into(),
    }))]);
    log.publish(NOW + 5, 2);
    assert_eq!(
        follower.sync(NOW + 10).await.unwrap(),
        Synced::Advanced { from: 300, to: 301 }
    );
    let view = follower.view().unwrap();
    assert_eq!(view.revocations(&measurement(1))[0].index, 300);
    assert_eq!(view.verified_at(), NOW + 10);
    // Unchanged log: confirmed again.
    assert_eq!(
        follower.sync(NOW + 20).await.unwrap(),
        Synced::Unchanged { size: 301 }
    );
    assert_eq!(follower.view().unwrap().age(NOW + 25), 5);
}

#[tokio::test]
async fn outages_and_lagging_replicas_leave_the_view_standing() {
    let mut log = Log::new().await;
    log.append((0..5u32).map(|i| i.to_be_bytes().to_vec()));
    log.publish(NOW - 5, 2);
    let follower = log.follower();
    follower.sync(NOW).await.unwrap();

    // A replica behind the view: an older checkpoint, proven a prefix of the view's.
    let proof = log.tree.prove_consistency(3, 5).unwrap();
    let answer = ConsistencyAnswer {
        old: 3,
        new: 5,
        hashes: proof.hashes.clone(),
    };
    {
        let mut files = log.files.lock().unwrap();
        files.insert("checkpoint".into(), log.checkpoint(3, NOW - 5, 2));
        files.insert(
            "v1/proof/consistency?old=3&new=5".into(),
            serde_json::to_vec(&answer).unwrap(),
        );
    }
    let e = follower.sync(NOW + 10).await.unwrap_err();
    assert!(matches!(e, FollowError::Behind { size: 3, seen: 5 }), "{e}");
    assert!(e.is_availability());
    // The witnesses are down: the log's newest checkpoint has one cosignature of two.
    log.append([b"more".to_vec()]);
    log.publish(NOW + 20, 1);
    let e = follower.sync(NOW + 30).await.unwrap_err();
    assert!(matches!(e, FollowError::Witnesses(_)), "{e}");
    assert!(e.is_availability());
    // The log is gone.
    log.files.lock().unwrap().clear();
    let e = follower.sync(NOW + 40).await.unwrap_err();
    assert!(
        matches!(e, FollowError::Fetch(_)) && e.is_availability(),
        "{e}"
    );
    // Through all of it the view stands, confirmed when it was.
    let view = follower.view().unwrap();
    assert_eq!((view.size(), view.verified_at()), (5, NOW));
    assert_eq!(view.age(NOW + 40), 40);
}

#[tokio::test]
async fn a_log_that_lies_is_not_an_outage() {
    let mut log = Log::new().await;
    log.append((0..5u32).map(|i| i.to_be_bytes().to_vec()));
    log.publish(NOW - 5, 2);
    let follower = log.follower();
    follower.sync(NOW).await.unwrap();

    // A new checkpoint whose entry bundle does not hash to its root.
    log.append([b"six".to_vec()]);
    log.publish(NOW, 2);
    let tile = TilePath::in_tree(None, 0, 6).unwrap();
    let mut other = log.entries.clone();
    other[5] = b"something else".to_vec();
    log.files
        .lock()
        .unwrap()
        .insert(tile.path(), encode_bundle(&other).unwrap());
    let e = follower.sync(NOW + 10).await.unwrap_err();
    assert!(
        matches!(e, FollowError::RootMismatch { size: 6, .. }),
        "{e}"
    );
    assert!(!e.is_availability());

    // A checkpoint of the same size with another root: a split view.
    let mut forked = Log::new().await;
    forked.append((0..4u32).map(|i| i.to_be_bytes().to_vec()));
    forked.append([b"forked".to_vec()]);
    let note = forked.checkpoint(5, NOW, 2);
    log.files.lock().unwrap().insert("checkpoint".into(), note);
    let e = follower.sync(NOW + 10).await.unwrap_err();
    assert!(matches!(e, FollowError::Inconsistent(_)), "{e}");
    assert!(!e.is_availability());
    assert_eq!(follower.view().unwrap().size(), 5);
}

#[tokio::test]
async fn a_replayed_checkpoint_with_old_cosignatures_confirms_nothing() {
    let mut log = Log::new().await;
    log.append((0..5u32).map(|i| i.to_be_bytes().to_vec()));
    log.publish(NOW - 10_000, 2);
    let old = log.checkpoint(5, NOW - 10_000, 2);
    let follower = log.follower();
    follower.sync(NOW - 9_000).await.unwrap();
    // The witnesses cosign the same checkpoint again, later.
    log.publish(NOW, 2);
    follower.sync(NOW).await.unwrap();
    // Someone in the middle serves the old note again: more than an hour older than the
    // newest cosignatures seen.
    log.files.lock().unwrap().insert("checkpoint".into(), old);
    let e = follower.sync(NOW + 60).await.unwrap_err();
    assert!(matches!(e, FollowError::StaleCosignatures { .. }), "{e}");
    assert_eq!(follower.view().unwrap().verified_at(), NOW);
}
