//! A `lucent-log-server` process on a free loopback port with its own data directory.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Options for one server process.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The binary to run.
    pub bin: PathBuf,
    /// Data directory (log key, operators.txt, SQLite database).
    pub data_dir: PathBuf,
    /// `--database-url`, if not the default SQLite file.
    pub database_url: Option<String>,
    /// Extra flags.
    pub extra_args: Vec<String>,
    /// `--per-source-per-second` and `--per-source-burst`: the tests send thousands of
    /// requests from one address, so the harness raises the limit unless a test sets this
    /// to `None` (the server's defaults) or to the limit it tests.
    pub rate_limit: Option<(u32, u32)>,
}

impl LogOptions {
    /// Options for `bin` over `data_dir`; `LUCENT_LOG_SERVER_BIN` overrides the binary.
    pub fn new(bin: &str, data_dir: &Path) -> Self {
        LogOptions {
            bin: std::env::var_os("LUCENT_LOG_SERVER_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(bin)),
            data_dir: data_dir.to_owned(),
            database_url: None,
            extra_args: Vec::new(),
            rate_limit: Some((1_000_000, 1_000_000)),
        }
    }
}

/// A running server. Dropping it kills the process.
pub struct LogProcess {
    child: Child,
    /// Base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// Where its standard error goes.
    pub stderr_path: PathBuf,
}

impl LogProcess {
    /// Starts the server on `127.0.0.1:0`, reads the address it bound from its first line of
    /// output, and waits until `/healthz` and `/checkpoint` answer.
    pub fn spawn(opts: &LogOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&opts.data_dir)?;
        let stderr_path = opts.data_dir.join(format!(
            "server-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut cmd = Command::new(&opts.bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&opts.data_dir);
        if let Some(url) = &opts.database_url {
            cmd.arg("--database-url").arg(url);
        }
        if let Some((rate, burst)) = opts.rate_limit {
            cmd.arg("--per-source-per-second")
                .arg(rate.to_string())
                .arg("--per-source-burst")
                .arg(burst.to_string());
        }
        cmd.args(&opts.extra_args)
            .env("RUST_LOG", "warn,lucent_log_server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", opts.bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "server did not start: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        let url = line
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        let mut p = LogProcess {
            child,
            url,
            stderr_path,
        };
        p.wait_healthy(Duration::from_secs(30))?;
        Ok(p)
    }

    /// Waits until `/healthz` and `/checkpoint` answer 200.
    pub fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + within;
        loop {
            // Healthy, and a checkpoint is published (the sequencer has started).
            let ok = |path: &str| {
                client
                    .get(format!("{}/{path}", self.url))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            };
            if ok("healthz") && ok("checkpoint") {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("server exited with {status}: {}", self.stderr());
            }
            if Instant::now() > deadline {
                bail!("server not healthy in time: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        // `Child::kill` sends SIGKILL on Unix.
        let _ = self.child.kill();
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits up to `within` for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<bool> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                self.kill()?;
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LogProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PostgreSQL URL tests use (`LUCENT_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`) with a fresh schema, or `None` after printing
/// that the test is skipped.
pub fn postgres_test_url() -> Option<String> {
    let base = std::env::var("LUCENT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let schema = format!("lucent_e2e_{}", hex::encode(rand::random::<[u8; 6]>()));
    let made = rt.block_on(async {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn =
            tokio::time::timeout(Duration::from_secs(3), sqlx::AnyConnection::connect(&base))
                .await
                .ok()?
                .ok()?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .ok()?;
        Some(())
    });
    if made.is_none() {
        println!("SKIPPED: PostgreSQL not reachable at {base}");
        return None;
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}
