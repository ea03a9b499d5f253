//! Log server benchmarks, each beside a baseline measured in the same run:
//!
//! 1. sequencer integration rate (plan + sign + one transaction per batch, durable) on SQLite
//!    and PostgreSQL, beside a raw batched `INSERT` of the same rows;
//! 2. HTTP submit rate (statement parse + operator signature check + sequencing) beside the
//!    raw Ed25519 verify rate of the same statements;
//! 3. tile reads per second from the server beside a plain static file server (`tower-http`
//!    `ServeDir`) serving the same tiles from the server's mirror; proof reads per second;
//! 4. p50/p99 time from submit to integration at a steady offered load.
//!
//! Run: `cargo bench -p lucent-log-server --bench log` (set `LUCENT_BENCH_POSTGRES_URL` or
//! rely on the default local server; PostgreSQL parts are skipped when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lucent_log_server::config::{Config, ServeArgs};
use lucent_log_server::sequencer::plan_batch;
use lucent_log_server::server::Log;
use lucent_log_server::store::{values_sql, Candidate, LogStore, Plan, SharedStore, SqlStore};
use lucent_log_server::tree;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{self, KeyConfig, Statement};
use lucent_verifier::tiles::{CompactRange, TilePath};
use sqlx::Connection as _;

const BATCH: usize = 4096;

fn candidates(n: usize, salt: u64) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            // About the size of a real statement note.
            let mut data =
                format!("lucent/keyconfig/v1\nkey-id 1\nconfig {salt:016x}{i:016x}\n").into_bytes();
            data.resize(300, b'x');
            Candidate::new(data, "keyconfig", vec![1])
        })
        .collect()
}

/// Entries per second through the sequencer's commit path.
async fn sequencer_rate(store: &SqlStore, rows: &[Candidate]) -> f64 {
    let signer = NoteSigner::generate(&mut rand_core::OsRng, "bench.log").unwrap();
    let mut frontier = tree::load_range(store, store.tree_size().await.unwrap())
        .await
        .unwrap();
    let start = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let current = frontier.clone();
        let mut next = None;
        let mut planner = |size: u64, leaves: &[LeafHash]| -> Result<Plan, String> {
            let (plan, f) = plan_batch(&current, size, leaves, &signer, true)?;
            next = Some(f);
            Ok(plan)
        };
        store
            .integrate(current.size(), chunk, &mut planner)
            .await
            .unwrap();
        frontier = next.unwrap();
    }
    rows.len() as f64 / start.elapsed().as_secs_f64()
}

/// The stored-hash rows the sequencer writes for `rows`, batch by batch (computed here,
/// untimed, so the raw insert writes exactly the same rows).
fn hash_rows(rows: &[Candidate]) -> Vec<Vec<(u8, u64, lucent_verifier::merkle::Hash)>> {
    let mut f = CompactRange::new();
    rows.chunks(BATCH)
        .map(|chunk| {
            let leaves: Vec<LeafHash> = chunk.iter().map(|c| c.leaf).collect();
            f.append(&leaves)
                .unwrap()
                .into_iter()
                .map(Into::into)
                .collect()
        })
        .collect()
}

/// Rows per second for a plain batched insert of the same rows (entries with their body hash
/// under the same unique index, and their stored hashes), one transaction per batch: no dedup
/// lookup, no hashing, no signing, no checkpoint.
async fn raw_insert_rate(store: &SqlStore, rows: &[Candidate], backend_pg: bool) -> f64 {
    let pool = store.pool();
    let backend = store.backend();
    let blob = if backend_pg { "BYTEA" } else { "BLOB" };
    sqlx::query(&format!("CREATE TABLE raw_entries (idx BIGINT PRIMARY KEY, leaf_hash {blob} NOT NULL UNIQUE, data {blob} NOT NULL, kind TEXT NOT NULL, lookup {blob} NOT NULL, body_hash {blob} NOT NULL UNIQUE)"))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE TABLE raw_hashes (level BIGINT NOT NULL, idx BIGINT NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx))"))
        .execute(pool)
        .await
        .unwrap();
    let hashes = hash_rows(rows);
    let start = Instant::now();
    let mut idx = 0i64;
    for (chunk, hashes) in rows.chunks(BATCH).zip(hashes) {
        let mut tx = pool.begin().await.unwrap();
        for sub in chunk.chunks(1000) {
            let sql = format!(
                "INSERT INTO raw_entries (idx, leaf_hash, data, kind, lookup, body_hash) VALUES {}",
                values_sql(backend, sub.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for c in sub {
                q = q
                    .bind(idx)
                    .bind(c.leaf.0 .0.to_vec())
                    .bind(c.data.clone())
                    .bind(c.kind)
                    .bind(c.lookup.clone())
                    .bind(c.body.to_vec());
                idx += 1;
            }
            q.execute(&mut *tx).await.unwrap();
        }
        for sub in hashes.chunks(1000) {
            let sql = format!(
                "INSERT INTO raw_hashes (level, idx, hash) VALUES {}",
                values_sql(backend, sub.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (l, i, h) in sub {
                q = q.bind(i64::from(*l)).bind(*i as i64).bind(h.0.to_vec());
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    rows.len() as f64 / start.elapsed().as_secs_f64()
}

async fn pg_url() -> Option<String> {
    let base = std::env::var("LUCENT_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let mut conn =
        tokio::time::timeout(Duration::from_secs(3), sqlx::AnyConnection::connect(&base))
            .await
            .ok()?
            .ok()?;
    let schema = format!("lucent_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .ok()?;
    Some(format!("{base}?options=-c%20search_path%3D{schema}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn http_load(url: &str, paths: Arc<Vec<String>>, concurrency: usize, total: usize) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    let per = total / concurrency;
    for w in 0..concurrency {
        let (client, paths, url) = (client.clone(), paths.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let p = &paths[(w * per + i) % paths.len()];
                let r = client.get(format!("{url}/{p}")).send().await.unwrap();
                assert!(r.status().is_success(), "{p}: {}", r.status());
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * concurrency) as f64 / start.elapsed().as_secs_f64()
}

fn config(dir: &std::path::Path) -> Config {
    let mut c = ServeArgs::default().resolve().unwrap();
    c.data_dir = dir.to_owned();
    c.tiles_dir = Some(dir.join("tiles"));
    // The load comes from one address: measure the server, not its per-source limit.
    c.http.dangerous_no_rate_limit = true;
    c
}

async fn serve_log(
    store: SharedStore,
    op: &NoteSigner,
    cfg: &Config,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let signer = NoteSigner::generate(&mut rand_core::OsRng, "bench.log").unwrap();
    let log = Log::start(store, signer, vec![op.verifier_key()], Vec::new(), cfg)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(async move {
        log.serve(listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (url, tx, h)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run());
}

async fn run() {
    let n: usize = std::env::var("LUCENT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    println!(
        "cores: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // 1. Sequencer vs raw insert.
    for backend in ["sqlite", "postgres"] {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
            _ => match pg_url().await {
                Some(u) => u,
                None => {
                    println!("SKIPPED: PostgreSQL not reachable");
                    continue;
                }
            },
        };
        let store = SqlStore::connect(&url).await.unwrap();
        let rows = candidates(n, 1);
        let raw = raw_insert_rate(&store, &rows, backend == "postgres").await;
        let seq = sequencer_rate(&store, &rows).await;
        println!(
            "sequencer[{backend}]: {seq:.0} entries/s durable; raw batched insert: {raw:.0} rows/s; ratio {:.2}",
            seq / raw
        );
        store.pool().close().await;
    }

    // 2.-4. Over HTTP on SQLite.
    let dir = tempfile::tempdir().unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "bench.operator").unwrap();
    let m = 40_000usize;
    let statements: Vec<Vec<u8>> = (0..m)
        .map(|i| {
            Statement::KeyConfig(KeyConfig {
                key_id: (i % 256) as u8,
                config: (i as u64).to_be_bytes().to_vec(),
                not_before: 0,
                not_after: 1,
            })
            .sign(&op)
            .unwrap()
        })
        .collect();
    // Raw verify: the statement check alone, one core.
    let keys = vec![op.verifier_key()];
    let start = Instant::now();
    for s in &statements {
        statement::verify_statement(s, &keys).unwrap();
    }
    let raw_verify = m as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for s in &statements {
        let (text, sigs) = lucent_verifier::note::parse_unverified(s).unwrap();
        use ed25519_dalek::Verifier as _;
        let sig = ed25519_dalek::Signature::from_slice(&sigs[0].signature).unwrap();
        op.verifier_key().public_key().verify(&text, &sig).unwrap();
    }
    let raw_ed25519 = m as f64 / start.elapsed().as_secs_f64();

    let store: SharedStore = Arc::new(
        SqlStore::connect(&format!("sqlite://{}", dir.path().join("log.db").display()))
            .await
            .unwrap(),
    );
    let cfg = config(dir.path());
    let (url, stop, handle) = serve_log(store.clone(), &op, &cfg).await;
    // Each submission is answered only once its batch is durably committed (at most
    // `batch_interval_ms` = 25 ms after the batch's first entry), so a closed loop of
    // `concurrency` clients can do at most about concurrency / latency per second: 64
    // clients measure the latency bound, 1024 clients the server's capacity.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let (first, rest) = statements.split_at(m / 4);
    for (concurrency, batch) in [(64usize, first), (1024, rest)] {
        let batch = Arc::new(batch.to_vec());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let (client, batch, url) = (client.clone(), batch.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while i < batch.len() {
                    let r = client
                        .post(format!("{url}/v1/statements"))
                        .body(batch[i].clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    i += concurrency;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let submit_rate = batch.len() as f64 / start.elapsed().as_secs_f64();
        println!(
            "http submit ({concurrency} clients, {} statements, sig checks, durable): {submit_rate:.0}/s; raw verify_statement: {raw_verify:.0}/s (one core); raw ed25519 verify: {raw_ed25519:.0}/s (one core); ratio vs ed25519 {:.2}",
            batch.len(),
            submit_rate / raw_ed25519
        );
    }

    // 3. Tile reads: server vs a static file server over the mirror.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let size = store.tree_size().await.unwrap();
    let full = size / 256;
    let mut paths = Vec::new();
    for t in 0..full {
        paths.push(TilePath::hashes(0, t, 256).unwrap().path());
        paths.push(TilePath::entries(t, 256).unwrap().path());
    }
    let paths = Arc::new(paths);
    let tiles_dir = dir.path().join("tiles");
    let static_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let static_url = format!("http://{}", static_listener.local_addr().unwrap());
    let static_app =
        axum::Router::new().fallback_service(tower_http::services::ServeDir::new(&tiles_dir));
    let static_task = tokio::spawn(async move {
        // TCP_NODELAY as any tuned static server (nginx's default) and the log server set:
        // `ServeDir` writes headers and body separately, and Nagle would hold the body for
        // the client's delayed ACK (~40 ms per request).
        let listener = axum::serve::ListenerExt::tap_io(static_listener, |tcp| {
            tcp.set_nodelay(true).unwrap();
        });
        axum::serve(listener, static_app).await.unwrap();
    });
    let reads = 40_000;
    // Warm both (the server's full-tile cache, the page cache for the files).
    http_load(&url, paths.clone(), 16, paths.len()).await;
    http_load(&static_url, paths.clone(), 16, paths.len()).await;
    let server_tiles = http_load(&url, paths.clone(), 16, reads).await;
    let static_tiles = http_load(&static_url, paths.clone(), 16, reads).await;
    println!(
        "tile reads (16 clients, {} full tiles): server {server_tiles:.0}/s; static file server {static_tiles:.0}/s; ratio {:.2}",
        paths.len(),
        server_tiles / static_tiles
    );
    let proof_paths: Vec<String> = (0..1000u64)
        .map(|i| format!("v1/proof/inclusion?index={}&size={size}", i * 17 % size))
        .collect();
    let proofs = http_load(&url, Arc::new(proof_paths), 16, 10_000).await;
    println!("inclusion proof reads (16 clients): {proofs:.0}/s");

    // 4. Latency at a steady offered load.
    let rate = 1000.0;
    let count = 5000usize;
    let op2 = op.clone();
    let mut tasks = Vec::new();
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let body = Statement::KeyConfig(KeyConfig {
            key_id: 3,
            config: (1_000_000 + i as u64).to_be_bytes().to_vec(),
            not_before: 0,
            not_after: 1,
        })
        .sign(&op2)
        .unwrap();
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(format!("{url}/v1/statements"))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            t.elapsed()
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    let offered = count as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "submit->integrated latency at {offered:.0}/s offered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
    let _ = stop.send(());
    handle.await.unwrap();
    static_task.abort();
}
