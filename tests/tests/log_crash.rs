//! Crash test: a real `lucent-log-server` process under concurrent submissions is killed with
//! SIGKILL at random moments, many times. After each restart, every acknowledged entry is at
//! its index, the checkpoint never shrinks, and every tile and proof verifies with
//! `lucent_verifier`. Statements in flight at the kill are resubmitted: each is then either
//! sequenced once or reported as already logged at its one index.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lucent_tests::log_check::{LogClient, Submitted};
use lucent_tests::log_process::{LogOptions, LogProcess};
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::{NoteSigner, NoteVerifierKey};
use lucent_verifier::statement::{KeyConfig, Statement};
use rand::Rng as _;

const BIN: &str = env!("CARGO_BIN_EXE_lucent-log-server-e2e");

fn iterations() -> usize {
    std::env::var("LUCENT_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

fn statement(op: &NoteSigner, iteration: usize, worker: usize, seq: u64) -> Vec<u8> {
    let mut config = Vec::new();
    config.extend_from_slice(&(iteration as u32).to_be_bytes());
    config.extend_from_slice(&(worker as u32).to_be_bytes());
    config.extend_from_slice(&seq.to_be_bytes());
    Statement::KeyConfig(KeyConfig {
        key_id: (seq % 256) as u8,
        config,
        not_before: 0,
        not_after: 1,
    })
    .sign(op)
    .unwrap()
}

#[derive(Default)]
struct Book {
    /// Acknowledged: index -> entry bytes.
    acked: HashMap<u64, Vec<u8>>,
    /// Submitted but not answered when the server died.
    in_flight: Vec<Vec<u8>>,
}

fn record(book: &Mutex<Book>, index: u64, entry: Vec<u8>) {
    let mut b = book.lock().unwrap();
    if let Some(prev) = b.acked.insert(index, entry.clone()) {
        assert_eq!(
            prev, entry,
            "two different entries acknowledged at index {index}"
        );
    }
}

#[test]
fn sigkill_under_load_loses_nothing_sqlite() {
    crash_run(None, iterations());
}

#[test]
fn sigkill_under_load_loses_nothing_postgres() {
    let Some(url) = lucent_tests::log_process::postgres_test_url() else {
        return;
    };
    crash_run(Some(url), iterations() / 2);
}

fn crash_run(database_url: Option<String>, iterations: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.crash").unwrap();
    std::fs::write(
        data.join("operators.txt"),
        format!("{}\n", op.verifier_key()),
    )
    .unwrap();
    let mut opts = LogOptions::new(BIN, &data);
    opts.database_url = database_url.clone();
    opts.extra_args = vec!["--batch-interval-ms".into(), "5".into()];

    let book = Arc::new(Mutex::new(Book::default()));
    let mut last_cp: Option<lucent_verifier::checkpoint::Checkpoint> = None;
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let mut log_key: Option<LogKey> = None;

    for iteration in 0..iterations {
        let server = LogProcess::spawn(&opts).unwrap();
        let key = log_key.get_or_insert_with(|| {
            let text = std::fs::read_to_string(data.join("log.key.pub")).unwrap();
            LogKey::new(NoteVerifierKey::parse(text.trim()).unwrap())
        });
        let client = Arc::new(LogClient::new(&server.url, key.clone()).unwrap());

        // After a restart: everything acknowledged is there, the checkpoint did not shrink,
        // all tiles and a sample of proofs verify.
        let cp = client.checkpoint().unwrap();
        if let Some(prev) = &last_cp {
            assert!(
                cp.size >= prev.size,
                "checkpoint shrank: {} -> {}",
                prev.size,
                cp.size
            );
            client.verify_consistency(prev, &cp).unwrap();
        }
        let entries = client.verify_all(&cp).unwrap();
        {
            let b = book.lock().unwrap();
            for (index, entry) in &b.acked {
                let got = entries.get(*index as usize);
                assert_eq!(
                    got,
                    Some(entry),
                    "acknowledged entry {index} missing or moved (iteration {iteration})"
                );
            }
            let mut seen = std::collections::HashSet::new();
            for e in &entries {
                assert!(
                    seen.insert(LeafHash::of_entry(e)),
                    "an entry is logged twice"
                );
            }
            for _ in 0..5.min(entries.len()) {
                let i = rng.gen_range(0..entries.len());
                client.verify_inclusion(i as u64, &entries[i], &cp).unwrap();
            }
        }
        last_cp = Some(cp);

        // Resubmit what was in flight at the last kill: sequenced once, or already logged.
        let retry: Vec<Vec<u8>> = std::mem::take(&mut book.lock().unwrap().in_flight);
        for e in retry {
            match client.submit(&e).unwrap() {
                Submitted::Acked(i) => record(&book, i, e),
                other => panic!("resubmission refused: {other:?}"),
            }
        }

        // Concurrent load, then SIGKILL at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for w in 0..4 {
            let (client, book, stop, op) = (client.clone(), book.clone(), stop.clone(), op.clone());
            workers.push(std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let e = statement(&op, iteration, w, seq);
                    seq += 1;
                    match client.submit(&e) {
                        Ok(Submitted::Acked(i)) => record(&book, i, e),
                        Ok(other) => panic!("refused: {other:?}"),
                        Err(_) => {
                            // The server died with this request open: it may or may not be
                            // logged. Resubmitted after the restart.
                            book.lock().unwrap().in_flight.push(e);
                            return;
                        }
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..1000)));
        let mut server = server;
        server.kill().unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
    }

    // Final restart and full check.
    let server = LogProcess::spawn(&opts).unwrap();
    let client = LogClient::new(&server.url, log_key.clone().unwrap()).unwrap();
    let retry: Vec<Vec<u8>> = std::mem::take(&mut book.lock().unwrap().in_flight);
    for e in retry {
        match client.submit(&e).unwrap() {
            Submitted::Acked(i) => record(&book, i, e),
            other => panic!("resubmission refused: {other:?}"),
        }
    }
    let cp = client.checkpoint().unwrap();
    let entries = client.verify_all(&cp).unwrap();
    let b = book.lock().unwrap();
    for (index, entry) in &b.acked {
        assert_eq!(entries.get(*index as usize), Some(entry), "entry {index}");
    }
    println!(
        "crash test ({}): {} iterations, {} acknowledged entries, final size {}, {:.1}s",
        if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        iterations,
        b.acked.len(),
        cp.size,
        started.elapsed().as_secs_f64()
    );
    assert!(b.acked.len() as u64 <= cp.size.0);
    assert!(!b.acked.is_empty());
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.term").unwrap();
    std::fs::write(
        data.join("operators.txt"),
        format!("{}\n", op.verifier_key()),
    )
    .unwrap();
    let opts = LogOptions::new(BIN, &data);
    let mut server = LogProcess::spawn(&opts).unwrap();
    let text = std::fs::read_to_string(data.join("log.key.pub")).unwrap();
    let key = LogKey::new(NoteVerifierKey::parse(text.trim()).unwrap());
    let client = LogClient::new(&server.url, key.clone()).unwrap();
    let mut acked = Vec::new();
    for s in 0..20 {
        let e = statement(&op, 0, 0, s);
        match client.submit(&e).unwrap() {
            Submitted::Acked(i) => acked.push((i, e)),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        server.terminate(Duration::from_secs(20)).unwrap(),
        "clean exit: {}",
        server.stderr()
    );
    let server = LogProcess::spawn(&opts).unwrap();
    let client = LogClient::new(&server.url, key).unwrap();
    let cp = client.checkpoint().unwrap();
    let entries = client.verify_all(&cp).unwrap();
    for (i, e) in acked {
        assert_eq!(entries[i as usize], e);
    }
}
