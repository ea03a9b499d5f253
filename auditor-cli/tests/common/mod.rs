//! Shared helpers for the end-to-end tests: spawn the real `lucent-log-server` and
//! `lucent-auditor` processes on 127.0.0.1, make statements, run the CLI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lucent_verifier::checkpoint::{verify_checkpoint, LogKey, SignedCheckpoint};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{KeyConfig, Measurement, Platform, Release, Revoke, Statement};

/// The `lucent-auditor` binary under test.
pub fn auditor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lucent-auditor"))
}

/// The `lucent-log-server` binary (built with `cargo build -p lucent-log-server`), or `None`.
pub fn log_server_bin() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("LUCENT_LOG_SERVER_BIN") {
        candidates.push(PathBuf::from(p));
    }
    // Our own binary sits in <target>/debug/; the log server is built next to it.
    if let Some(dir) = auditor_bin().parent() {
        candidates.push(dir.join("lucent-log-server"));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("debug/lucent-log-server"));
    }
    candidates
        .push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/lucent-log-server"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Returns the log server binary or prints why the test is skipped.
pub fn need_log_server(test: &str) -> Option<PathBuf> {
    let bin = log_server_bin();
    if bin.is_none() {
        println!("SKIPPED: {test}: lucent-log-server binary not found; run `cargo build -p lucent-log-server` first (or set LUCENT_LOG_SERVER_BIN)");
    }
    bin
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub url: String,
    pub addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a command whose first stdout line is `listening on http://<addr>`.
pub fn spawn_listening(mut cmd: Command) -> Proc {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let addr = url.trim_start_matches("http://").to_owned();
    Proc { child, url, addr }
}

/// A log: its private key file, operator key and data directory.
pub struct LogSetup {
    pub name: String,
    pub key_file: PathBuf,
    pub signer: NoteSigner,
    pub operator: NoteSigner,
}

impl LogSetup {
    pub fn new(dir: &Path, name: &str) -> Self {
        let signer = NoteSigner::generate(&mut rand_core::OsRng, name).unwrap();
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&key_file, format!("{}\n", signer.to_private_string())).unwrap();
        let operator = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
        LogSetup {
            name: name.into(),
            key_file,
            signer,
            operator,
        }
    }

    pub fn log_key(&self) -> LogKey {
        LogKey::new(self.signer.verifier_key())
    }

    pub fn vkey(&self) -> String {
        self.signer.verifier_key().to_string()
    }

    pub fn operator_vkey(&self) -> String {
        self.operator.verifier_key().to_string()
    }

    /// Starts a log server on this key with its own data directory.
    pub fn start(
        &self,
        bin: &Path,
        data: &Path,
        witnesses: &[(String, String)],
        tiles_dir: Option<&Path>,
    ) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--log-key-file")
            .arg(&self.key_file)
            .arg("--operator-key")
            .arg(self.operator_vkey())
            .arg("--batch-interval-ms")
            .arg("20")
            .arg("--witness-timeout-ms")
            .arg("2000")
            // The tests read and write thousands of entries from one address.
            .args([
                "--per-source-per-second",
                "1000000",
                "--per-source-burst",
                "1000000",
            ])
            .env("RUST_LOG", "warn");
        for (url, key) in witnesses {
            cmd.arg("--witness").arg(format!("url={url},key={key}"));
        }
        if let Some(t) = tiles_dir {
            cmd.arg("--tiles-dir").arg(t);
        }
        spawn_listening(cmd)
    }
}

/// The `i`-th test statement of a log tagged `tag`: mostly releases, every 10th a key
/// config, every 25th a revocation of an earlier release.
pub fn statement(tag: u8, i: u32) -> Statement {
    let mut m = [0u8; 48];
    m[0] = tag;
    m[1..5].copy_from_slice(&i.to_be_bytes());
    if i % 25 == 24 {
        let mut r = m;
        r[1..5].copy_from_slice(&(i - 1).to_be_bytes());
        return Statement::Revoke(Revoke {
            measurement: Measurement::new(Platform::SevSnp, &r).unwrap(),
            reason: format!("test revocation {i}"),
        });
    }
    if i % 10 == 9 {
        return Statement::KeyConfig(KeyConfig {
            key_id: (i % 256) as u8,
            config: vec![tag; 41],
            not_before: 1_700_000_000,
            not_after: 1_800_000_000 + u64::from(i),
        });
    }
    Statement::Release(Release {
        version: format!("1.0.{i}"),
        commit: vec![tag; 20],
        ..Release::example(
            Measurement::new(Platform::SevSnp, &m).unwrap(),
            1_900_000_000,
        )
    })
}

/// Counts (releases, keyconfigs, revocations) among statements `0..n`.
pub fn kinds(n: u32) -> (u64, u64, u64) {
    let mut c = (0, 0, 0);
    for i in 0..n {
        match statement(0, i) {
            Statement::Release(_) => c.0 += 1,
            Statement::KeyConfig(_) => c.1 += 1,
            Statement::Revoke(_) => c.2 += 1,
            Statement::Issuer(_) => unreachable!("statement() makes no issuer statements"),
        }
    }
    c
}

/// Submits statements `range` concurrently; returns the signed notes in order.
pub fn submit_all(
    url: &str,
    operator: &NoteSigner,
    tag: u8,
    range: std::ops::Range<u32>,
) -> Vec<Vec<u8>> {
    let notes: Vec<Vec<u8>> = range
        .map(|i| statement(tag, i).sign(operator).unwrap())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use futures_util::stream::{self, StreamExt as _};
        let client = reqwest::Client::new();
        let url = format!("{url}/v1/statements");
        let results: Vec<_> = stream::iter(notes.iter().cloned())
            .map(|n| {
                let client = client.clone();
                let url = url.clone();
                async move {
                    client
                        .post(&url)
                        .body(n)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for r in results {
            let s = r.expect("submit");
            assert!(s == 200 || s == 202, "submit status {s}");
        }
    });
    notes
}

/// GETs a URL's body.
pub fn get(url: &str) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.expect("get");
        let s = r.status().as_u16();
        (s, r.bytes().await.expect("body").to_vec())
    })
}

/// POSTs a body; returns status and body.
pub fn post(url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .body(body)
            .send()
            .await
            .expect("post");
        let s = r.status().as_u16();
        (s, r.bytes().await.expect("body").to_vec())
    })
}

/// Waits until the log publishes a checkpoint of at least `size` (and, when `cosigners` is
/// given, carrying that many signatures beyond the log's); returns it verified.
pub fn wait_for_checkpoint(
    url: &str,
    key: &LogKey,
    size: u64,
    cosigners: usize,
) -> SignedCheckpoint {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(&format!("{url}/checkpoint"));
        if status == 200 {
            let cp = verify_checkpoint(&body, key).expect("log checkpoint verifies");
            if cp.checkpoint.size.0 >= size && cp.other_signatures.len() >= cosigners {
                return cp;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the auditor CLI.
pub fn auditor(args: &[&str]) -> Output {
    Command::new(auditor_bin())
        .args(args)
        .output()
        .expect("run lucent-auditor")
}

/// Runs the auditor with `--json` and parses stdout.
pub fn auditor_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = auditor(&all);
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, v, stderr)
}

/// Starts a witness (`lucent-auditor witness serve`) for `log_vkey`, on `listen`.
pub fn start_witness(key_file: &Path, log_vkey: &str, state: &Path, listen: &str) -> Proc {
    let mut cmd = Command::new(auditor_bin());
    cmd.args(["witness", "serve", "--key"])
        .arg(key_file)
        .args(["--log-key", log_vkey, "--state-dir"])
        .arg(state)
        .args(["--listen", listen]);
    spawn_listening(cmd)
}

/// Runs `lucent-auditor keygen --name NAME --out FILE` (an operator key).
pub fn keygen_operator(name: &str, file: &Path) -> Output {
    auditor(&["keygen", "--name", name, "--out", file.to_str().unwrap()])
}

/// Makes a witness key `name` with the CLI and starts that witness for `log`, keeping its
/// state in `dir/witness`; returns the witness and its verifier key.
pub fn start_witness_for(dir: &Path, log: &LogSetup, name: &str) -> (Proc, String) {
    let (wfile, wkey) = witness_key(dir, name);
    let witness = start_witness(&wfile, &log.vkey(), &dir.join("witness"), "127.0.0.1:0");
    (witness, wkey)
}

/// Makes a witness key with the CLI; returns (key file, verifier key).
pub fn witness_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(format!("{name}.wkey"));
    let out = auditor(&[
        "keygen",
        "--witness",
        "--name",
        name,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    (file, vkey)
}
