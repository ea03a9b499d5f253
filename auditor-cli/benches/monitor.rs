//! `monitor` throughput over a local log, beside the raw baseline (download every entry
//! bundle with the same concurrency, split it, SHA-256 every leaf, fold the root), in the
//! same run and against the same server.
//!
//! Needs the `lucent-log-server` binary (`cargo build -p lucent-log-server`; found next to
//! this bench's target dir or via `LUCENT_LOG_SERVER_BIN`). `LUCENT_BENCH_ENTRIES` sets the
//! log size (default 20000). Prints a Markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};
use lucent_auditor::audit::{Auditor, Trust};
use lucent_auditor::fetch::{self, LogClient};
use lucent_auditor::monitor::{self, MonitorOptions};
use lucent_auditor::state::StateDir;
use lucent_verifier::checkpoint::{verify_checkpoint, LogKey};
use lucent_verifier::cosignature::WitnessPolicy;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{Measurement, Platform, Release, Statement};
use lucent_verifier::tiles::{CompactRange, TilePath};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LUCENT_LOG_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    // <target>/<profile>/deps/monitor-… → try <target>/debug and <target>/release.
    let target = exe.parent()?.parent()?.parent()?;
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("lucent-log-server"))
        .find(|b| b.is_file())
}

fn release(i: u32) -> Statement {
    let mut m = [0u8; 48];
    m[..4].copy_from_slice(&i.to_be_bytes());
    Statement::Release(Release {
        version: format!("1.0.{i}"),
        ..Release::example(
            Measurement::new(Platform::SevSnp, &m).unwrap(),
            1_900_000_000,
        )
    })
}

async fn raw_baseline(
    url: &str,
    size: u64,
    concurrency: usize,
) -> (u64, lucent_verifier::merkle::Hash, Vec<Vec<u8>>) {
    let client = LogClient::new(url).unwrap();
    let tiles = (0..size.div_ceil(256)).map(|n| TilePath::in_tree(None, n, size).unwrap());
    let mut bundles = stream::iter(tiles)
        .map(|t| {
            let c = client.clone();
            async move { c.bundle(t).await.unwrap() }
        })
        .buffered(concurrency);
    let mut range = CompactRange::new();
    let mut all = Vec::new();
    while let Some(entries) = bundles.next().await {
        range
            .extend(entries.iter().map(|e| LeafHash::of_entry(e)))
            .unwrap();
        all.extend(entries);
    }
    (range.size(), range.root(), all)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u32 = std::env::var("LUCENT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 600 } else { 20_000 });
    let Some(server) = server_bin() else {
        assert!(
            quick,
            "lucent-log-server not found: cargo build -p lucent-log-server"
        );
        println!("SKIPPED: monitor bench: lucent-log-server not found (cargo build -p lucent-log-server)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = NoteSigner::generate(&mut rand_core::OsRng, "log.bench").unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.bench").unwrap();
    let key_file = dir.path().join("log.key");
    std::fs::write(&key_file, log.to_private_string()).unwrap();
    let mut child = Command::new(server)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--batch-interval-ms", "20"])
        .arg("--log-key-file")
        .arg(&key_file)
        .args(["--operator-key", &op.verifier_key().to_string()])
        // The load comes from one address: measure the server, not its per-source limit.
        .arg("--dangerous-no-rate-limit")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Kill(child);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = LogKey::new(log.verifier_key());
    rt.block_on(async {
        let http = reqwest::Client::new();
        let notes: Vec<Vec<u8>> = (0..n).map(|i| release(i).sign(&op).unwrap()).collect();
        let fill = Instant::now();
        stream::iter(notes)
            .map(|b| http.post(format!("{url}/v1/statements")).body(b).send())
            .buffer_unordered(64)
            .for_each(|r| async move {
                assert!(r.unwrap().status().is_success());
            })
            .await;
        let cp = loop {
            let body = http
                .get(format!("{url}/checkpoint"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            if let Ok(cp) = verify_checkpoint(&body, &key) {
                if cp.checkpoint.size.0 == u64::from(n) {
                    break cp;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!("filled {n} entries in {:.1}s", fill.elapsed().as_secs_f64());
        let size = cp.checkpoint.size.0;

        let mut rows = Vec::new();
        let mut cpu_rows = Vec::new();
        for concurrency in [1usize, 16] {
            let t = Instant::now();
            let (got, root, entries) = raw_baseline(&url, size, concurrency).await;
            let secs = t.elapsed().as_secs_f64();
            assert_eq!((got, root), (size, cp.checkpoint.root));
            if concurrency == 1 {
                // Where the monitor's extra time goes: per-entry statement work, in memory,
                // one thread.
                let t = Instant::now();
                for e in &entries {
                    lucent_verifier::statement::parse_unverified(e).unwrap();
                }
                cpu_rows.push((
                    "parse statement layout (in memory, 1 thread)",
                    t.elapsed().as_secs_f64(),
                ));
                let keys = [op.verifier_key()];
                let t = Instant::now();
                for e in &entries {
                    lucent_verifier::statement::verify_statement(e, &keys).unwrap();
                }
                cpu_rows.push((
                    "parse + verify operator signature (in memory, 1 thread)",
                    t.elapsed().as_secs_f64(),
                ));
            }
            rows.push((
                format!(
                    "raw: download bundles + SHA-256 leaves + root (concurrency {concurrency})"
                ),
                secs,
            ));

            for (label, operators) in [
                ("monitor, layouts only", vec![]),
                (
                    "monitor, operator signatures verified",
                    vec![op.verifier_key()],
                ),
            ] {
                let state = tempfile::tempdir().unwrap();
                let a = Auditor {
                    client: LogClient::new(&url).unwrap(),
                    trust: Trust {
                        log: key.clone(),
                        witnesses: WitnessPolicy::dangerous_no_witnesses(),
                    },
                    state: StateDir::open(state.path()).unwrap(),
                };
                let opts = MonitorOptions {
                    operators,
                    concurrency,
                    ..MonitorOptions::default()
                };
                let t = Instant::now();
                let report = monitor::run(&a, &opts).await.unwrap();
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(report.json["to"], size);
                assert!(report.failed.is_none());
                rows.push((format!("{label} (concurrency {concurrency})"), secs));
            }
        }
        // Also: the proof path (consistency 1 -> size from authenticated hash tiles).
        let client = LogClient::new(&url).unwrap();
        let t = Instant::now();
        let p = fetch::prove_consistency(&client, size / 3, size, cp.checkpoint.root)
            .await
            .unwrap();
        let proof_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(!p.hashes.is_empty());

        println!(
            "\nlog of {size} entries (release statements, ~{} bytes each), server on 127.0.0.1\n",
            {
                let b = release(0).sign(&op).unwrap();
                b.len()
            }
        );
        println!("| what | seconds | entries/s |");
        println!("|---|---:|---:|");
        for (label, secs) in rows {
            println!("| {label} | {secs:.3} | {:.0} |", size as f64 / secs);
        }
        for (label, secs) in cpu_rows {
            println!("| {label} | {secs:.3} | {:.0} |", size as f64 / secs);
        }
        println!(
            "\nconsistency proof {} -> {size} from hash tiles: {proof_ms:.1} ms",
            size / 3
        );
    });
}
