//! Two `lucent-log-server` processes on one PostgreSQL database: only one sequences (the
//! advisory lock); both accept submissions; killing the sequencer lets the other take over
//! without a gap or a duplicate. Skipped, saying so, when PostgreSQL is not reachable.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lucent_tests::log_check::{LogClient, Submitted};
use lucent_tests::log_process::{postgres_test_url, LogOptions, LogProcess};
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::{NoteSigner, NoteVerifierKey};
use lucent_verifier::statement::{KeyConfig, Statement};

const BIN: &str = env!("CARGO_BIN_EXE_lucent-log-server-e2e");

fn statement(op: &NoteSigner, n: u64) -> Vec<u8> {
    Statement::KeyConfig(KeyConfig {
        key_id: (n % 256) as u8,
        config: n.to_be_bytes().to_vec(),
        not_before: 0,
        not_after: 1,
    })
    .sign(op)
    .unwrap()
}

fn batches(url: &str) -> u64 {
    let text = reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("lucent_log_batches_total "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn two_sequencers_one_database_failover() {
    let Some(db) = postgres_test_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.pg").unwrap();
    // Both servers share the log key and the operator list, but not a data directory.
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(
        shared.join("operators.txt"),
        format!("{}\n", op.verifier_key()),
    )
    .unwrap();
    let key_file = shared.join("log.key");
    let opts = |name: &str| {
        let mut o = LogOptions::new(BIN, &dir.path().join(name));
        o.database_url = Some(db.clone());
        o.extra_args = vec![
            "--log-key-file".into(),
            key_file.display().to_string(),
            "--operators-file".into(),
            shared.join("operators.txt").display().to_string(),
            "--batch-interval-ms".into(),
            "5".into(),
        ];
        o
    };
    let mut a = LogProcess::spawn(&opts("a")).unwrap();
    let b = LogProcess::spawn(&opts("b")).unwrap();
    let text = std::fs::read_to_string(shared.join("log.key.pub")).unwrap();
    let key = LogKey::new(NoteVerifierKey::parse(text.trim()).unwrap());
    let ca = LogClient::new(&a.url, key.clone()).unwrap();
    let cb = LogClient::new(&b.url, key.clone()).unwrap();

    // Exactly one sequencer: the first started.
    assert_eq!(ca.health().unwrap()["sequencer"], true);
    assert_eq!(cb.health().unwrap()["sequencer"], false);

    let mut acked: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut n = 0u64;
    for _ in 0..30 {
        for c in [&ca, &cb] {
            let e = statement(&op, n);
            n += 1;
            match c.submit(&e).unwrap() {
                Submitted::Acked(i) => assert!(acked.insert(i, e).is_none(), "index {i} twice"),
                other => panic!("{other:?}"),
            }
        }
    }
    // Only A ever committed a batch; B's submissions went through the pending table.
    assert!(batches(&a.url) > 0);
    assert_eq!(batches(&b.url), 0, "the follower sequenced");
    let before = ca.checkpoint().unwrap();

    // Kill the sequencer; B takes over.
    a.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while cb.health().unwrap()["sequencer"] != true {
        assert!(
            Instant::now() < deadline,
            "B never took over: {}",
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..30 {
        let e = statement(&op, n);
        n += 1;
        match cb.submit(&e).unwrap() {
            Submitted::Acked(i) => assert!(acked.insert(i, e).is_none(), "index {i} twice"),
            other => panic!("{other:?}"),
        }
    }
    let after = cb.checkpoint().unwrap();
    cb.verify_consistency(&before, &after).unwrap();
    let entries = cb.verify_all(&after).unwrap();
    // No gap: every index below the size holds an acknowledged entry; no duplicate.
    assert_eq!(after.size.0, n);
    assert_eq!(entries.len() as u64, n);
    for (i, e) in &acked {
        assert_eq!(&entries[*i as usize], e, "entry {i}");
    }
    let distinct: std::collections::HashSet<_> =
        entries.iter().map(|e| LeafHash::of_entry(e)).collect();
    assert_eq!(distinct.len() as u64, n);
    assert!(batches(&b.url) > 0);
}
