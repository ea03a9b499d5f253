//! A local Lucent network of real processes on loopback sockets: a transparency log (SQLite
//! or PostgreSQL), witnesses (`lucent-auditor witness serve`), the key broker, and any number
//! of CVM runtimes on the simulated TEE. Used by the end-to-end tests, and meant for a devnet
//! command and the system scenarios (honest, unlogged, revoked, expired, key config not
//! logged, split view, witness quorum missing, CVM restarted with a new key).
//!
//! Every process writes its stdout and stderr to files under the devnet's directory, so a
//! test can search everything any process printed or wrote ([`Devnet::files`]).
//!
//! Statements are signed here with the operator key and submitted to the log's API
//! (`POST /v1/statements?wait=`), so any release, revocation or key config can be published,
//! including ones `auditor publish` would refuse to build (a simulated measurement).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use lucent_auditor::image;
use lucent_verifier::bundle::{verify_bundle, Bundle, BundlePolicy};
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
use lucent_verifier::encapsulation::{
    open_response, seal_request, KeyConfig as HpkeKeyConfig, ResponseContext,
};
use lucent_verifier::key_release::weights::{self, WeightsKey, DEFAULT_CHUNK_SIZE};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::published::Published;
use lucent_verifier::snp::SnpTrust;
use lucent_verifier::statement::{KeyConfig, Measurement, Platform, Release, Revoke, Statement};
use lucent_verifier::tdx::TdxTrust;
use lucent_verifier::trust::TrustSettings;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};

/// The [`Bins`] this package's test targets were built with (`CARGO_BIN_EXE_*`, expanded
/// where the macro is used; `LUCENT_LOG_SERVER_BIN` overrides the log server).
#[macro_export]
macro_rules! test_bins {
    () => {
        $crate::net::Bins {
            log: std::env::var_os("LUCENT_LOG_SERVER_BIN")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_lucent-log-server-e2e").into()),
            auditor: env!("CARGO_BIN_EXE_lucent-auditor-e2e").into(),
            broker: env!("CARGO_BIN_EXE_lucent-key-broker-e2e").into(),
            runtime: env!("CARGO_BIN_EXE_lucent-cvm-runtime-e2e").into(),
            gateway: env!("CARGO_BIN_EXE_lucent-gateway-e2e").into(),
            relay: env!("CARGO_BIN_EXE_lucent-relay-e2e").into(),
            issuer: env!("CARGO_BIN_EXE_lucent-issuer-e2e").into(),
        }
    };
}

/// The binaries a devnet runs (each test crate passes its `CARGO_BIN_EXE_*` paths).
#[derive(Debug, Clone)]
pub struct Bins {
    /// `lucent-log-server`.
    pub log: PathBuf,
    /// `lucent-auditor` (witness).
    pub auditor: PathBuf,
    /// `lucent-key-broker`.
    pub broker: PathBuf,
    /// `lucent-cvm-runtime`.
    pub runtime: PathBuf,
    /// `lucent-gateway`.
    pub gateway: PathBuf,
    /// `lucent-relay`.
    pub relay: PathBuf,
    /// `lucent-issuer`.
    pub issuer: PathBuf,
}

/// The log's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the log's data directory.
    Sqlite,
    /// A PostgreSQL URL (see [`crate::log_process::postgres_test_url`]).
    Postgres(String),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The log's database.
    pub backend: Backend,
    /// How many witnesses to run.
    pub witnesses: usize,
    /// How many cosignatures the broker and runtimes require.
    pub quorum: usize,
    /// Keys to use instead of fresh ones (a second log sharing another's keys: a fork).
    pub keys: Option<DevnetKeys>,
}

/// The signing keys of a devnet.
#[derive(Clone)]
pub struct DevnetKeys {
    /// The log's checkpoint key.
    pub log: NoteSigner,
    /// The operator's statement key.
    pub operator: NoteSigner,
    /// The witnesses' keys (as many as `witnesses`).
    pub witnesses: Vec<WitnessSigner>,
}

impl std::fmt::Debug for DevnetKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetKeys")
            .field("log", &self.log.name())
            .field("witnesses", &self.witnesses.len())
            .finish_non_exhaustive()
    }
}

impl Default for DevnetOptions {
    fn default() -> Self {
        DevnetOptions {
            backend: Backend::Sqlite,
            witnesses: 1,
            quorum: 1,
            keys: None,
        }
    }
}

/// A child process whose stdout and stderr go to files. Dropping it kills it.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// A name for messages.
    pub name: String,
    /// Its standard output.
    pub stdout_path: PathBuf,
    /// Its standard error.
    pub stderr_path: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with output to `<dir>/<name>.stdout` and `.stderr`.
    pub fn spawn(mut cmd: Command, dir: &Path, name: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let stdout_path = dir.join(format!("{name}.stdout"));
        let stderr_path = dir.join(format!("{name}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path)?)
            .stderr(std::fs::File::create(&stderr_path)?)
            .env("NO_COLOR", "1");
        let child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        Ok(Proc {
            child,
            name: name.to_owned(),
            stdout_path,
            stderr_path,
        })
    }

    /// Both outputs so far.
    pub fn output(&self) -> String {
        format!(
            "{}{}",
            std::fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
        )
    }

    /// Waits for a stdout line `listening on <url>` and returns the URL.
    pub fn wait_listening(&mut self, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let out = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with("listening on ")) {
                if out.contains('\n') {
                    return Ok(line.trim_start_matches("listening on ").trim().to_owned());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status}: {}", self.name, self.output());
            }
            if Instant::now() > deadline {
                bail!("{} did not start in time: {}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port (bound and released; a race with other processes is possible but
/// unlikely on loopback).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The CVM image's pinned kernel, modules and firmware: the folder
/// `scripts/fetch-image-inputs.sh` fills (it fetches them on first use, from the Debian
/// mirror apt names, and checks every digest), found once per process.
pub fn image_inputs() -> anyhow::Result<PathBuf> {
    static FOUND: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-image-inputs.sh");
            let o = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if !o.status.success() {
                return Err(format!(
                    "the CVM image's kernel and firmware are unavailable ({}): {}",
                    script.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Ok(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Where this checkout's runtime came from: its commit and toolchain, built with
/// `dangerous-simulated-tee` (what the devnet's images and releases name); found once per
/// process.
pub fn checkout_provenance() -> anyhow::Result<image::Provenance> {
    static FOUND: std::sync::OnceLock<Result<image::Provenance, String>> =
        std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| find_provenance().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn find_provenance() -> anyhow::Result<image::Provenance> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |cmd: &str, args: &[&str]| -> anyhow::Result<String> {
        let o = Command::new(cmd)
            .args(args)
            .current_dir(&repo)
            .output()
            .with_context(|| format!("running {cmd}"))?;
        if !o.status.success() {
            bail!("{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    Ok(image::Provenance {
        repository: env!("CARGO_PKG_REPOSITORY").into(),
        commit: run("git", &["rev-parse", "HEAD"])?,
        toolchain: run("rustc", &["--version"])?,
        target: "x86_64-unknown-linux-gnu".into(),
        features: vec!["dangerous-simulated-tee".into()],
        dirty: !run("git", &["status", "--porcelain", "--untracked-files=no"])?.is_empty(),
    })
}

/// [`image::runtime_member`], compressed once per process for each distinct runtime binary
/// and module set (gzip level 9 of a test build of the runtime takes seconds; tests build an
/// image per configuration).
fn cached_runtime_member(
    runtime: &[u8],
    modules: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, lucent_auditor::AuditError> {
    type Members = std::collections::HashMap<[u8; 32], Vec<u8>>;
    static MEMBERS: std::sync::Mutex<Option<Members>> = std::sync::Mutex::new(None);
    let mut h = Sha256::new();
    h.update((runtime.len() as u64).to_be_bytes());
    h.update(runtime);
    for (name, data) in modules {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((data.len() as u64).to_be_bytes());
        h.update(data);
    }
    let key: [u8; 32] = h.finalize().into();
    let mut members = MEMBERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let members = members.get_or_insert_with(Default::default);
    if let Some(m) = members.get(&key) {
        return Ok(m.clone());
    }
    let m = image::runtime_member(runtime, modules)?;
    members.insert(key, m.clone());
    Ok(m)
}

/// A started network.
pub struct Devnet {
    /// Everything lives under here (kept only while the devnet lives).
    pub dir: tempfile::TempDir,
    /// The binaries.
    pub bins: Bins,
    /// The log's signing key.
    pub log_signer: NoteSigner,
    /// The operator's release signing key.
    pub operator: NoteSigner,
    /// Witness signing keys.
    pub witness_signers: Vec<WitnessSigner>,
    /// Quorum the broker and runtimes use.
    pub quorum: usize,
    /// The log.
    pub log: Proc,
    /// Its URL.
    pub log_url: String,
    /// Witness processes.
    pub witnesses: Vec<Proc>,
    /// The broker.
    pub broker: Proc,
    /// Its URL.
    pub broker_url: String,
    /// The encrypted weights file.
    pub weights_file: PathBuf,
    /// SHA-256 of the plaintext weights (the releases' model digest).
    pub model_digest: [u8; 32],
    /// `RUST_LOG` of runtimes started from now on (default `debug`: the tests that search
    /// the logs for leaks want every line there is; benchmarks use `info`, the default).
    pub runtime_log: String,
    http: reqwest::blocking::Client,
    /// Each statement published so far with its proof (as the log's `?wait` answer gave it):
    /// what the operator puts on the CDN.
    proofs: std::sync::Mutex<std::collections::HashMap<u64, Published>>,
    /// The image built so far for each runtime configuration text: its folder and manifest.
    images: std::sync::Mutex<std::collections::HashMap<String, (PathBuf, image::Manifest)>>,
}

/// A running CVM runtime.
pub struct RuntimeProc {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
    /// Its configuration text (the initrd's: the launch measurement covers it).
    pub config: String,
    /// The launch measurement of its image, which the simulated TEE reports.
    pub measurement: Measurement,
}

/// A running gateway.
pub struct GatewayProc {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
    /// Its OHTTP key config (what the operator logs).
    pub key_config: Vec<u8>,
}

/// A running issuer.
pub struct IssuerProc {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
    /// Its name and public key (what the operator logs).
    pub info: lucent_verifier::privacy_pass::IssuerInfo,
    /// Its key seed (the gateway verifies tokens with it).
    pub key_file: PathBuf,
    /// Its account database (SQLite).
    pub database: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
}

/// A running CDN (a static file server).
pub struct CdnProc {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
    /// The directory it serves.
    pub root: PathBuf,
}

impl CdnProc {
    /// Writes `bytes` at `path` (a URL path under the root).
    pub fn put(&self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let file = self.root.join(path.trim_start_matches('/'));
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(file, bytes)?;
        Ok(())
    }
}

/// A running relay.
pub struct RelayProc {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
}

/// Settings of one runtime's configuration.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Log key to trust (default: the devnet's).
    pub log_key: Option<String>,
    /// Witness quorum (default: the devnet's).
    pub quorum: Option<usize>,
    /// Witness keys trusted besides the devnet's (witnesses that never cosign).
    pub extra_witnesses: Vec<String>,
    /// Largest body.
    pub max_body_bytes: usize,
    /// Output tokens cap.
    pub max_output_tokens: usize,
    /// Self-check interval.
    pub recheck_secs: u64,
    /// How long the runtime stays open on a view of the log it cannot confirm.
    pub max_log_view_age_secs: u64,
    /// Anything that makes the configuration (and so the measurement) distinct.
    pub label: String,
    /// Fixed key id.
    pub key_id: Option<u8>,
    /// Weights file (default: the devnet's tiny model).
    pub weights_file: Option<PathBuf>,
    /// No per-source rate limit (load benchmarks from one address).
    pub dangerous_no_rate_limit: bool,
    /// Where the runtime follows the log (default: the devnet's log; a replica or a proxy
    /// in front of it in tests of a lagging log).
    pub log_url: Option<String>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            log_key: None,
            quorum: None,
            extra_witnesses: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_output_tokens: 24,
            recheck_secs: 300,
            max_log_view_age_secs: 3600,
            label: "default".into(),
            key_id: None,
            weights_file: None,
            dangerous_no_rate_limit: false,
            log_url: None,
        }
    }
}

impl Devnet {
    /// Starts witnesses, the log, and the broker, with a tiny model's weights encrypted
    /// under a fresh weights key.
    pub fn start(bins: Bins, opts: DevnetOptions) -> anyhow::Result<Self> {
        let gguf = lucent_model::tiny_model::tiny_gguf(0x5eed);
        Self::start_with_model(bins, opts, &gguf)
    }

    /// As [`Devnet::start`] with the given GGUF bytes as the model.
    pub fn start_with_model(bins: Bins, opts: DevnetOptions, gguf: &[u8]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lucent-devnet-")
            .tempdir()?;
        let root = dir.path().to_owned();
        let mut rng = OsRng;
        let (log_signer, operator) = match &opts.keys {
            Some(k) => (k.log.clone(), k.operator.clone()),
            None => (
                NoteSigner::generate(&mut rng, "log.devnet.lucent")?,
                NoteSigner::generate(&mut rng, "operator.devnet.lucent")?,
            ),
        };
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;

        // Witnesses first: the log offers every checkpoint to them.
        let mut witness_signers = Vec::new();
        let mut witnesses = Vec::new();
        let mut witness_specs = Vec::new();
        for i in 0..opts.witnesses {
            let signer = match opts.keys.as_ref().and_then(|k| k.witnesses.get(i)) {
                Some(w) => w.clone(),
                None => WitnessSigner::generate(&mut rng, &format!("witness{i}.devnet.lucent"))?,
            };
            let wdir = root.join(format!("witness{i}"));
            std::fs::create_dir_all(&wdir)?;
            let key_file = wdir.join("witness.key");
            std::fs::write(&key_file, lucent_auditor::witness::key_file_text(&signer))?;
            let mut cmd = Command::new(&bins.auditor);
            cmd.args(["witness", "serve", "--key"])
                .arg(&key_file)
                .arg("--log-key")
                .arg(log_signer.verifier_key().as_str())
                .arg("--state-dir")
                .arg(wdir.join("state"))
                .args(["--listen", "127.0.0.1:0"]);
            let mut p = Proc::spawn(cmd, &root.join("logs"), &format!("witness{i}"))?;
            let url = p.wait_listening(Duration::from_secs(30))?;
            witness_specs.push(format!("url={url},key={}", signer.witness_key().as_str()));
            witness_signers.push(signer);
            witnesses.push(p);
        }

        // The log, with the key made here so the witnesses could be told it.
        let ldir = root.join("log");
        std::fs::create_dir_all(&ldir)?;
        let key_file = ldir.join("log.key");
        std::fs::write(&key_file, log_signer.to_private_string())?;
        let mut cmd = Command::new(&bins.log);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&ldir)
            .arg("--log-key-file")
            .arg(&key_file)
            .arg("--operator-key")
            .arg(operator.verifier_key().as_str())
            .args(["--batch-interval-ms", "10"]);
        for w in &witness_specs {
            cmd.arg("--witness").arg(w);
        }
        if let Backend::Postgres(url) = &opts.backend {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env("RUST_LOG", "warn,lucent_log_server=info");
        let mut log = Proc::spawn(cmd, &root.join("logs"), "log")?;
        let log_url = log.wait_listening(Duration::from_secs(60))?;
        wait_http_ok(&http, &format!("{log_url}/checkpoint"), &mut log)?;

        // Weights: the tiny model, encrypted at rest; the key goes only to the broker.
        let weights_key = WeightsKey::generate(&mut rng);
        let mut encrypted = Vec::new();
        weights::encrypt(
            &weights_key,
            DEFAULT_CHUNK_SIZE,
            gguf,
            &mut encrypted,
            &mut rng,
        )?;
        let weights_file = root.join("model.gguf.lucentw");
        std::fs::write(&weights_file, &encrypted)?;
        let model_digest: [u8; 32] = Sha256::digest(gguf).into();

        // The broker.
        let bdir = root.join("broker");
        std::fs::create_dir_all(&bdir)?;
        let key_path = bdir.join("weights.key");
        std::fs::write(&key_path, hex::encode(weights_key.as_bytes()))?;
        drop(weights_key);
        let port = free_port()?;
        let broker_config = format!(
            "listen = \"127.0.0.1:{port}\"\nlog_url = {log_url:?}\nfollow_every_secs = 1\n\
             state_file = {state:?}\nweights_key_file = {key:?}\n\
             [trust]\nlog_key = {log_key:?}\nwitnesses = {witnesses:?}\nwitness_quorum = {quorum}\n\
             operators = [{operator:?}]\n[trust.dangerous]\ntrust_simulated_root = true\n",
            state = bdir.join("last-seen.note").display().to_string(),
            key = key_path.display().to_string(),
            log_key = log_signer.verifier_key().as_str(),
            witnesses = witness_signers
                .iter()
                .map(|w| w.witness_key().as_str().to_owned())
                .collect::<Vec<_>>(),
            quorum = opts.quorum,
            operator = operator.verifier_key().as_str(),
        );
        let config_path = bdir.join("broker.toml");
        std::fs::write(&config_path, broker_config)?;
        let mut cmd = Command::new(&bins.broker);
        cmd.arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info");
        let mut broker = Proc::spawn(cmd, &root.join("logs"), "broker")?;
        let broker_url = format!("http://127.0.0.1:{port}");
        wait_tcp(port, &mut broker)?;

        Ok(Devnet {
            dir,
            bins,
            log_signer,
            operator,
            witness_signers,
            quorum: opts.quorum,
            log,
            log_url,
            witnesses,
            broker,
            broker_url,
            weights_file,
            model_digest,
            runtime_log: "debug".into(),
            http,
            proofs: Default::default(),
            images: Default::default(),
        })
    }

    /// The log's checkpoint verifier key.
    pub fn log_key(&self) -> String {
        self.log_signer.verifier_key().as_str().to_owned()
    }

    /// The witnesses' cosignature verifier keys.
    pub fn witness_keys(&self) -> Vec<String> {
        self.witness_signers
            .iter()
            .map(|w| w.witness_key().as_str().to_owned())
            .collect()
    }

    /// The configuration of a client of this devnet: its own last seen checkpoint in
    /// `clients/<name>/`, this devnet's keys, connections from `local` (the system's choice
    /// when `None`), a 10-minute request timeout (SmolLM2 on two busy cores is slow).
    pub fn client_config(
        &self,
        name: &str,
        local: Option<std::net::IpAddr>,
    ) -> anyhow::Result<lucent_client::ClientConfig> {
        Ok(lucent_client::ClientConfig {
            log_url: self.log_url.clone(),
            trust: self.client_trust()?,
            policy: BundlePolicy::default(),
            last_seen: std::sync::Arc::new(lucent_client::AtomicFile::new(
                self.dir
                    .path()
                    .join("clients")
                    .join(name)
                    .join("last-seen.note"),
            )),
            timeout: Duration::from_secs(600),
            local_address: local,
        })
    }

    /// What a client of this devnet trusts.
    pub fn client_trust(&self) -> anyhow::Result<TrustSettings> {
        Ok(TrustSettings {
            log: LogKey::new(self.log_signer.verifier_key()),
            witnesses: WitnessPolicy::new(
                self.witness_signers
                    .iter()
                    .map(|w| w.witness_key())
                    .collect(),
                self.quorum,
            )?,
            operators: vec![self.operator.verifier_key()],
            snp: SnpTrust::amd().dangerous_trust_simulated_root(),
            tdx: TdxTrust::intel(),
            amd_crls: Default::default(),
            revoked: Vec::new(),
        })
    }

    /// A runtime configuration file's text.
    pub fn runtime_config(&self, s: &RuntimeSettings) -> String {
        let mut text = format!(
            "# {label}\nlisten = \"127.0.0.1:0\"\nlog_url = {log_url:?}\n\
             broker_url = {broker:?}\nweights_file = {weights:?}\nattester = \"simulated\"\n\
             dangerous_simulated_tee = true\nrecheck_secs = {recheck}\n\
             max_log_view_age_secs = {view_age}\nmax_body_bytes = {body}\n\
             max_output_tokens = {out}\nmax_input_tokens = 1024\nrequest_timeout_ms = 60000\n",
            label = s.label,
            log_url = s.log_url.as_ref().unwrap_or(&self.log_url),
            broker = self.broker_url,
            weights = s
                .weights_file
                .as_ref()
                .unwrap_or(&self.weights_file)
                .display()
                .to_string(),
            recheck = s.recheck_secs,
            view_age = s.max_log_view_age_secs,
            body = s.max_body_bytes,
            out = s.max_output_tokens,
        );
        if let Some(id) = s.key_id {
            text.push_str(&format!("key_id = {id}\n"));
        }
        if s.dangerous_no_rate_limit {
            text.push_str("[http]\ndangerous_no_rate_limit = true\n");
        }
        text.push_str(&format!(
            "[trust]\nlog_key = {log_key:?}\nwitnesses = {witnesses:?}\nwitness_quorum = {quorum}\n\
             operators = [{operator:?}]\n",
            log_key = s.log_key.clone().unwrap_or_else(|| self.log_key()),
            witnesses = self
                .witness_keys()
                .into_iter()
                .chain(s.extra_witnesses.iter().cloned())
                .collect::<Vec<_>>(),
            quorum = s.quorum.unwrap_or(self.quorum),
            operator = self.operator.verifier_key().as_str(),
        ));
        text
    }

    /// The CVM image of the runtime configuration `config` around this devnet's runtime
    /// binary, with the pinned kernel, modules and firmware ([`image_inputs`]), built on first
    /// use into `images/<n>`: its folder and manifest.
    pub fn image_of(&self, config: &str) -> anyhow::Result<(PathBuf, image::Manifest)> {
        let mut images = self
            .images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = images.get(config) {
            return Ok(found.clone());
        }
        let name = format!("config-{}", images.len());
        let built = self.build_image(
            &self.bins.runtime,
            &image_inputs()?,
            config,
            checkout_provenance()?,
            &name,
        )?;
        images.insert(config.to_owned(), built.clone());
        Ok(built)
    }

    /// The launch measurement of the image of `config` ([`Devnet::image_of`]).
    pub fn measurement_of(&self, config: &str) -> anyhow::Result<Measurement> {
        let (_, m) = self.image_of(config)?;
        Ok(Measurement::new(
            Platform::SevSnp,
            &hex::decode(&m.measurement)?,
        )?)
    }

    /// The release of the image of `config` ([`Devnet::image_of`]), valid until `not_after`.
    pub fn release_for(&self, config: &str, not_after: u64) -> anyhow::Result<Release> {
        let (_, m) = self.image_of(config)?;
        self.release_of_image(&m, not_after)
    }

    /// Signs `statement` with the operator key, submits it and waits until a published
    /// (witnessed) checkpoint covers it. Returns its index.
    pub fn publish(&self, statement: &Statement) -> anyhow::Result<u64> {
        let note = statement.sign(&self.operator)?;
        let resp = self
            .http
            .post(format!("{}/v1/statements?wait=30", self.log_url))
            .body(note.clone())
            .send()?;
        let status = resp.status();
        let body: serde_json::Value = resp.json()?;
        if status.as_u16() != 200 {
            bail!("publishing failed: HTTP {status}: {body}");
        }
        let index = body["index"].as_u64().context("no index in the answer")?;
        if let Some(proof) = body["tlog_proof"].as_str() {
            self.proofs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(
                    index,
                    Published {
                        statement: note,
                        proof: proof.to_owned(),
                    },
                );
        }
        Ok(index)
    }

    /// The statement published at `index` with its proof: the CDN's file for it.
    pub fn published(&self, index: u64) -> anyhow::Result<Published> {
        self.proofs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&index)
            .cloned()
            .with_context(|| format!("no proof of the statement at index {index} was returned"))
    }

    /// Starts a CDN: a plain static file server (Python's `http.server`, as any static host
    /// would do) over a directory of its own, which [`CdnProc::put`] fills.
    pub fn start_cdn(&self, name: &str) -> anyhow::Result<CdnProc> {
        let root = self.dir.path().join(name).join("www");
        std::fs::create_dir_all(&root)?;
        let port = free_port()?;
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(&root)
            .arg(port.to_string());
        let mut proc = Proc::spawn(cmd, &self.dir.path().join("logs"), name)?;
        wait_tcp(port, &mut proc)?;
        Ok(CdnProc {
            proc,
            url: format!("http://127.0.0.1:{port}"),
            root,
        })
    }

    /// Puts on `cdn` what the operator publishes there: the gateway's key config (logged at
    /// `gateway_index`), the issuer's key (`issuer_index`), and each CVM's bundle (fetched
    /// without a nonce) with its key config statement (logged at the index paired with it).
    /// Returns the CVMs' key ids, which name their files.
    pub fn fill_cdn(
        &self,
        cdn: &CdnProc,
        gateway_index: u64,
        issuer_index: u64,
        cvms: &[(&RuntimeProc, u64)],
    ) -> anyhow::Result<Vec<u8>> {
        let mut key_ids = Vec::new();
        cdn.put(
            lucent_verifier::published::GATEWAY_PATH,
            &serde_json::to_vec(&self.published(gateway_index)?)?,
        )?;
        cdn.put(
            lucent_verifier::published::ISSUER_PATH,
            &serde_json::to_vec(&self.published(issuer_index)?)?,
        )?;
        for (rt, keyconfig_index) in cvms {
            let bundle = self
                .http
                .get(format!("{}/v1/attestation", rt.url))
                .send()?
                .error_for_status()?
                .bytes()?
                .to_vec();
            let key_id = Bundle::decode(&bundle)
                .ok()
                .and_then(|b| HpkeKeyConfig::parse(&b.key_config).ok())
                .context("the CVM's bundle has no key config")?
                .key_id;
            let file = lucent_verifier::published::PublishedCvm {
                url: rt.url.clone(),
                bundle,
                keyconfig: self.published(*keyconfig_index)?,
            };
            cdn.put(
                &lucent_verifier::published::cvm_path(key_id),
                &serde_json::to_vec(&file)?,
            )?;
            key_ids.push(key_id);
        }
        Ok(key_ids)
    }

    /// Publishes the release of the image of `config`, valid for a day.
    pub fn publish_release_for(&self, config: &str) -> anyhow::Result<u64> {
        let r = self.release_for(config, now_unix() + 86_400)?;
        self.publish(&Statement::Release(r))
    }

    /// Publishes a revocation of `measurement`.
    pub fn revoke(&self, measurement: Measurement, reason: &str) -> anyhow::Result<u64> {
        self.publish(&Statement::Revoke(Revoke {
            measurement,
            reason: reason.into(),
        }))
    }

    /// Starts a runtime with configuration `config`, named `name`: launches the image of
    /// `config` ([`Devnet::image_of`], [`Devnet::launch_image`]).
    pub fn start_runtime(&self, config: &str, name: &str) -> anyhow::Result<RuntimeProc> {
        let (dir, _) = self.image_of(config)?;
        self.launch_image(&dir, name)
    }

    /// Builds the CVM image of `config` around the runtime binary `runtime` into the
    /// devnet's folder `images/<name>`, with the pinned kernel and firmware in `inputs`
    /// (`scripts/fetch-image-inputs.sh`); returns its folder and manifest.
    pub fn build_image(
        &self,
        runtime: &Path,
        inputs: &Path,
        config: &str,
        source: image::Provenance,
        name: &str,
    ) -> anyhow::Result<(PathBuf, image::Manifest)> {
        let dir = self.dir.path().join("images").join(name);
        std::fs::create_dir_all(&dir)?;
        let config_path = dir.join("input-runtime.toml");
        std::fs::write(&config_path, config)?;
        let spec = image::ImageSpec::from_inputs(
            runtime.to_owned(),
            config_path,
            inputs,
            image::DEFAULT_CMDLINE.into(),
            image::Launch {
                vcpus: 1,
                vcpu_type: "EPYC-v4".into(),
                guest_features: 1,
                vmm_type: "qemu".into(),
            },
            source,
        )?;
        let manifest = image::build_with(&spec, &dir, cached_runtime_member)?;
        Ok((dir, manifest))
    }

    /// A release of the image `m`, valid until `not_after`: every digest, the VM shape, the
    /// source and the measurement are the manifest's; the model is this devnet's.
    pub fn release_of_image(&self, m: &image::Manifest, not_after: u64) -> anyhow::Result<Release> {
        let d32 = |h: &str| -> anyhow::Result<[u8; 32]> {
            hex::decode(h)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("{h} is not 32 bytes"))
        };
        Ok(Release {
            measurement: Measurement::new(Platform::SevSnp, &hex::decode(&m.measurement)?)?,
            version: format!("devnet-{}", now_unix()),
            source: m.source.repository.clone(),
            commit: hex::decode(&m.source.commit)?,
            firmware: d32(&m.firmware.sha256)?,
            kernel: d32(&m.kernel.sha256)?,
            initrd: d32(&m.initrd.sha256)?,
            cmdline: d32(&m.cmdline_sha256)?,
            vcpus: m.launch.vcpus,
            vcpu_type: m.launch.vcpu_type.clone(),
            guest_features: m.launch.guest_features,
            vmm_type: m.launch.vmm_type.clone(),
            model: self.model_digest,
            min_tcb: vec![0; Platform::SevSnp.min_tcb_len()],
            not_after,
        })
    }

    /// Launches the image in `dir` on the simulated platform, as a host with SEV-SNP would:
    /// the platform measures what it launches (firmware, kernel, initrd and command line of
    /// the folder, for the manifest's VM shape; the manifest's own measurement is not
    /// trusted), and what runs is the initrd's `/init` with the initrd's configuration; the
    /// simulated TEE reports that launch measurement. Returns the runtime and the measurement.
    pub fn launch_image(&self, dir: &Path, name: &str) -> anyhow::Result<RuntimeProc> {
        let manifest: image::Manifest =
            serde_json::from_slice(&std::fs::read(dir.join(image::MANIFEST_FILE))?)?;
        let measured = lucent_auditor::measure::measure(&image::measure_inputs(
            dir,
            &manifest.cmdline,
            &manifest.launch,
        ))?;
        let measurement = hex::encode(measured.measurement);
        let (runtime, config) =
            image::unpack_initrd(&std::fs::read(dir.join(image::INITRD_FILE))?)?;
        let rdir = self.dir.path().join("runtimes").join(name);
        std::fs::create_dir_all(&rdir)?;
        let config_path = rdir.join("runtime.toml");
        std::fs::write(&config_path, &config)?;
        // The initrd's `/init`, written once per distinct binary (named by its digest): many
        // runtimes of one devnet run the same binary.
        let init = self
            .dir
            .path()
            .join("runtimes")
            .join(format!("init-{}", hex::encode(Sha256::digest(&runtime))));
        if !init.exists() {
            use std::os::unix::fs::PermissionsExt as _;
            let tmp = rdir.join("init.tmp");
            std::fs::write(&tmp, &runtime)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
            std::fs::rename(&tmp, &init)?;
        }
        let mut cmd = Command::new(&init);
        cmd.arg("--config")
            .arg(&config_path)
            .env(
                "LUCENT_DANGEROUS_SIMULATED_LAUNCH_MEASUREMENT",
                &measurement,
            )
            .env("RUST_LOG", &self.runtime_log);
        let mut proc = Proc::spawn(cmd, &self.dir.path().join("logs"), name)?;
        let url = proc.wait_listening(Duration::from_secs(30))?;
        Ok(RuntimeProc {
            proc,
            url,
            config: String::from_utf8(config)?,
            measurement: Measurement::new(Platform::SevSnp, &measured.measurement)?,
        })
    }

    /// Polls `/v1/status` until the runtime has finished booting (open, or closed for a
    /// reason other than `booting`); returns the status.
    pub fn wait_settled(&self, rt: &mut RuntimeProc) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(format!("{}/v1/status", rt.url)).send() {
                let v: serde_json::Value = r.json()?;
                if v["code"] != "booting" {
                    return Ok(v);
                }
            }
            if !rt.proc.running() {
                bail!("runtime exited: {}", rt.proc.output());
            }
            if Instant::now() > deadline {
                bail!("runtime did not settle: {}", rt.proc.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The operator's step after a runtime opened: fetch its bundle, verify it, and log its
    /// key config (valid for a day) so clients can check key consistency.
    pub fn publish_keyconfig_of(&self, rt: &RuntimeProc) -> anyhow::Result<u64> {
        let bytes = self
            .http
            .get(format!("{}/v1/attestation", rt.url))
            .send()?
            .bytes()?;
        let bundle = Bundle::decode(&bytes)?;
        let verdict = verify_bundle(
            &bundle,
            &self.client_trust()?,
            &BundlePolicy::default(),
            None,
            now_unix(),
        )?;
        let config = HpkeKeyConfig::parse(&verdict.key_config)?;
        self.publish(&Statement::KeyConfig(KeyConfig {
            key_id: config.key_id,
            config: verdict.key_config,
            not_before: now_unix().saturating_sub(60),
            not_after: now_unix() + 86_400,
        }))
    }

    /// Starts a gateway (`name`, key id `key_id`) in front of the CVMs at `cvms`, reading
    /// their status every second. Its key is made on first start and kept in its directory,
    /// so a restart under the same name keeps the key config.
    ///
    /// With `issuers` (all named alike), it takes requests only with tokens under their keys
    /// (its spent tokens in `spent.db` in its directory; it follows this devnet's log for the
    /// issuers' keys); with none, it is started with `dangerous_no_tokens`.
    pub fn start_gateway(
        &self,
        cvms: &[&str],
        key_id: u8,
        name: &str,
        issuers: &[&IssuerProc],
    ) -> anyhow::Result<GatewayProc> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let mut config = format!(
            "listen = \"127.0.0.1:{port}\"\nkey_file = {key:?}\nkey_id = {key_id}\n\
             cvms = {cvms:?}\ncvm_refresh_secs = 1\n",
            key = dir.join("gateway.key").display().to_string(),
        );
        match issuers.first() {
            None => config.push_str("dangerous_no_tokens = true\n"),
            Some(issuer) => config.push_str(&format!(
                "[tokens]\nissuer_name = {name:?}\nissuer_key_files = {keys:?}\n\
                 spent_database_url = {db:?}\nlog_url = {log:?}\nfollow_every_secs = 1\n\
                 [tokens.trust]\nlog_key = {log_key:?}\nwitnesses = {witnesses:?}\n\
                 witness_quorum = {quorum}\noperators = [{operator:?}]\n",
                name = issuer.info.name,
                keys = issuers
                    .iter()
                    .map(|i| i.key_file.display().to_string())
                    .collect::<Vec<_>>(),
                db = format!("sqlite:{}", dir.join("spent.db").display()),
                log = self.log_url,
                log_key = self.log_key(),
                witnesses = self.witness_keys(),
                quorum = self.quorum,
                operator = self.operator.verifier_key().as_str(),
            )),
        }
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, config)?;
        let out = Command::new(&self.bins.gateway)
            .arg("--config")
            .arg(&config_path)
            .arg("key-config")
            .output()
            .context("running lucent-gateway key-config")?;
        if !out.status.success() {
            bail!(
                "lucent-gateway key-config failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let key_config = hex::decode(String::from_utf8_lossy(&out.stdout).trim())
            .context("lucent-gateway key-config printed no hex")?;
        let mut cmd = Command::new(&self.bins.gateway);
        cmd.arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env("RUST_LOG", &self.runtime_log);
        let mut proc = Proc::spawn(cmd, &self.dir.path().join("logs"), name)?;
        wait_tcp(port, &mut proc)?;
        Ok(GatewayProc {
            proc,
            url: format!("http://127.0.0.1:{port}"),
            key_config,
        })
    }

    /// Logs a gateway's key config (valid for a day), as the operator does.
    pub fn publish_gateway_keyconfig(&self, gateway: &GatewayProc) -> anyhow::Result<u64> {
        let config = HpkeKeyConfig::parse(&gateway.key_config)?;
        self.publish(&Statement::KeyConfig(KeyConfig {
            key_id: config.key_id,
            config: gateway.key_config.clone(),
            not_before: now_unix().saturating_sub(60),
            not_after: now_unix() + 86_400,
        }))
    }

    /// Starts an issuer (`name`, "issuer.lucent.test"); its key is made on first start and
    /// kept in its directory.
    pub fn start_issuer(&self, name: &str) -> anyhow::Result<IssuerProc> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let key_file = dir.join("issuer.key");
        let database = dir.join("issuer.db");
        let config = dir.join("issuer.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nname = \"issuer.lucent.test\"\nkey_file = {key:?}\n\
                 database_url = {db:?}\ndefault_daily_limit = 20\n",
                key = key_file.display().to_string(),
                db = format!("sqlite:{}", database.display()),
            ),
        )?;
        let out = Command::new(&self.bins.issuer)
            .arg("--config")
            .arg(&config)
            .arg("info")
            .output()
            .context("running lucent-issuer info")?;
        if !out.status.success() {
            bail!(
                "lucent-issuer info failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let info =
            serde_json::from_slice(&out.stdout).context("lucent-issuer info printed no JSON")?;
        let mut cmd = Command::new(&self.bins.issuer);
        cmd.arg("--config").arg(&config).arg("serve");
        let mut proc = Proc::spawn(cmd, &self.dir.path().join("logs"), name)?;
        wait_tcp(port, &mut proc)?;
        Ok(IssuerProc {
            proc,
            url: format!("http://127.0.0.1:{port}"),
            info,
            key_file,
            database,
            config,
        })
    }

    /// Adds an account with `daily_limit` tokens a day to `issuer` (its command, as an
    /// operator does); the account's credential.
    pub fn add_account(
        &self,
        issuer: &IssuerProc,
        account: &str,
        daily_limit: u64,
    ) -> anyhow::Result<String> {
        let out = Command::new(&self.bins.issuer)
            .arg("--config")
            .arg(&issuer.config)
            .args(["add-account", account, "--daily-limit"])
            .arg(daily_limit.to_string())
            .output()
            .context("running lucent-issuer add-account")?;
        if !out.status.success() {
            bail!(
                "lucent-issuer add-account failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Logs `issuer`'s key, valid from a minute ago to `not_after`, as the operator does.
    pub fn publish_issuer(&self, issuer: &IssuerProc, not_after: u64) -> anyhow::Result<u64> {
        let key = lucent_verifier::privacy_pass::IssuerPublicKey::parse(&hex::decode(
            &issuer.info.public_key,
        )?)?;
        self.publish(&Statement::Issuer(lucent_verifier::statement::Issuer {
            name: issuer.info.name.clone(),
            public_key: key,
            not_before: now_unix().saturating_sub(60),
            not_after,
        }))
    }

    /// Starts a relay (`name`) in front of the gateway at `gateway_url`, logging at `debug`
    /// (its per-request lines, with the client's address, are only written at that level).
    pub fn start_relay(&self, gateway_url: &str, name: &str) -> anyhow::Result<RelayProc> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let config_path = dir.join("relay.toml");
        std::fs::write(
            &config_path,
            format!("listen = \"127.0.0.1:{port}\"\ngateway_url = {gateway_url:?}\n"),
        )?;
        let mut cmd = Command::new(&self.bins.relay);
        cmd.arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "debug");
        let mut proc = Proc::spawn(cmd, &self.dir.path().join("logs"), name)?;
        wait_tcp(port, &mut proc)?;
        Ok(RelayProc {
            proc,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The blocking HTTP client.
    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Every file under the devnet's directory (process outputs, databases, state files).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.path().to_owned()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// A client of one CVM: fetches and verifies its bundle with a fresh nonce, then seals
/// requests to its attested key.
pub struct CvmClient {
    /// The CVM.
    pub url: String,
    /// Its attested key config.
    pub key_config: HpkeKeyConfig,
    http: reqwest::blocking::Client,
}

/// One answer, opened.
#[derive(Debug)]
pub struct Opened {
    /// The output text.
    pub output: String,
    /// Tokens generated.
    pub tokens: u64,
    /// The raw sealed bytes.
    pub sealed: Vec<u8>,
}

impl CvmClient {
    /// Attests `url` with `trust` (every `verify_bundle` step, nonce bound).
    pub fn attest(url: &str, trust: &TrustSettings) -> anyhow::Result<Self> {
        // No connection reuse: a server may close a connection after refusing an oversized
        // body unread, and the next request must not race that close on a pooled socket.
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(0)
            .build()?;
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);
        let resp = http
            .get(format!("{url}/v1/attestation"))
            .query(&[("nonce", B64.encode(nonce))])
            .send()?;
        if !resp.status().is_success() {
            bail!("attestation: HTTP {}: {}", resp.status(), resp.text()?);
        }
        let bundle = Bundle::decode(&resp.bytes()?)?;
        let verdict = verify_bundle(
            &bundle,
            trust,
            &BundlePolicy {
                nonce: Some(nonce.to_vec()),
                ..BundlePolicy::default()
            },
            None,
            now_unix(),
        )?;
        Ok(CvmClient {
            url: url.to_owned(),
            key_config: HpkeKeyConfig::parse(&verdict.key_config)?,
            http,
        })
    }

    /// Seals `plaintext` to the CVM's key.
    pub fn seal(&self, plaintext: &[u8]) -> anyhow::Result<(Vec<u8>, ResponseContext)> {
        Ok(seal_request(&self.key_config, plaintext, &mut OsRng)?)
    }

    /// Posts raw bytes to `path`; returns status and body.
    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> anyhow::Result<(u16, Vec<u8>)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "message/ohttp-req")
            .body(body)
            .send()?;
        let status = resp.status().as_u16();
        let mut out = Vec::new();
        resp.take(16 << 20).read_to_end(&mut out)?;
        Ok((status, out))
    }

    /// Asks `path` (`/v1/summarize` or `/v1/suggest`) about `text` and opens the answer.
    pub fn ask(&self, path: &str, text: &str, max_tokens: Option<u32>) -> anyhow::Result<Opened> {
        let plain =
            serde_json::to_vec(&serde_json::json!({"text": text, "max_tokens": max_tokens}))?;
        let (req, ctx) = self.seal(&plain)?;
        let (status, body) = self.post_raw(path, req)?;
        if status != 200 {
            bail!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        let opened = open_response(&ctx, &body)?;
        let v: serde_json::Value = serde_json::from_slice(&opened)?;
        if let Some(code) = v["error"].as_str() {
            bail!(
                "{path}: refused inside the encryption: {code}: {}",
                v["message"]
            );
        }
        Ok(Opened {
            output: v["output"].as_str().context("no output")?.to_owned(),
            tokens: v["tokens"].as_u64().context("no tokens")?,
            sealed: body,
        })
    }
}

fn wait_http_ok(http: &reqwest::blocking::Client, url: &str, p: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http.get(url).send().is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if !p.running() {
            bail!("{} exited: {}", p.name, p.output());
        }
        if Instant::now() > deadline {
            bail!("{url} not ready: {}", p.output());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_tcp(port: u16, p: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if !p.running() {
            bail!("{} exited: {}", p.name, p.output());
        }
        if Instant::now() > deadline {
            bail!("{} not listening: {}", p.name, p.output());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
