//! Assembling and running a log: storage, keys, the sequencer and publisher tasks, the
//! router, and a graceful shutdown that integrates every accepted submission first.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use lucent_verifier::note::{NoteSigner, NoteVerifierKey};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, Limits, TokenBucket};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::sequencer::Sequencer;
use crate::store::{SharedStore, SqlStore, StoreError};
use crate::witness::{witness_client, Mirror, Publisher, WitnessConfig, WitnessSpecError};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key file could not be read or written.
    #[error("{path}: {source}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// A key does not parse.
    #[error("{what}: {why}")]
    Key {
        /// Which key.
        what: String,
        /// Why.
        why: String,
    },
    /// A witness spec does not parse.
    #[error(transparent)]
    Witness(#[from] WitnessSpecError),
    /// Metrics registration or the HTTP client failed.
    #[error("setup: {0}")]
    Setup(String),
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

const OPERATORS_TEMPLATE: &str = "\
# Operator verifier keys allowed to submit statements to this log, one per line
# (name+hexid+base64, as printed by `auditor-cli` or any C2SP signed-note tool).
# Lines starting with # are ignored. Restart the server after editing.
";

/// Reads the log key, or makes one on first start (mode 0600, verifier key beside it in
/// `<file>.pub`). Returns the signer and whether it was just made.
pub fn load_or_create_log_key(path: &Path, name: &str) -> Result<(NoteSigner, bool), ServerError> {
    let key_err = |source| ServerError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer = NoteSigner::parse(text.trim()).map_err(|e| ServerError::Key {
                what: format!("log key {}", path.display()),
                why: e.to_string(),
            })?;
            Ok((signer, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = NoteSigner::generate(&mut rand_core::OsRng, name).map_err(|e| {
                ServerError::Key {
                    what: format!("log name {name:?}"),
                    why: e.to_string(),
                }
            })?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(key_err)?;
            }
            write_private(path, signer.to_private_string().as_bytes()).map_err(key_err)?;
            let mut pubpath = path.as_os_str().to_owned();
            pubpath.push(".pub");
            std::fs::write(&pubpath, format!("{}\n", signer.verifier_key())).map_err(key_err)?;
            Ok((signer, true))
        }
        Err(e) => Err(key_err(e)),
    }
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Operator keys: the flags' and the operators file's (a template is written if missing).
pub fn load_operators(config: &Config) -> Result<Vec<NoteVerifierKey>, ServerError> {
    let mut lines: Vec<(String, String)> = config
        .operator_keys
        .iter()
        .map(|k| ("--operator-key".to_owned(), k.clone()))
        .collect();
    let path = &config.operators_file;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    lines.push((format!("{}:{}", path.display(), n + 1), line.to_owned()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| ServerError::KeyFile {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            std::fs::write(path, OPERATORS_TEMPLATE).map_err(|source| ServerError::KeyFile {
                path: path.clone(),
                source,
            })?;
        }
        Err(source) => {
            return Err(ServerError::KeyFile {
                path: path.clone(),
                source,
            })
        }
    }
    let mut keys = Vec::new();
    for (origin, k) in lines {
        let key = NoteVerifierKey::parse(&k).map_err(|e| ServerError::Key {
            what: format!("operator key at {origin}"),
            why: e.to_string(),
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// How long open connections may finish their requests after the shutdown signal.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// A running log: its router and background tasks.
pub struct Log {
    router: Router,
    http: lucent_service::http::HttpLimits,
    store: SharedStore,
    verifier_key: NoteVerifierKey,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Log {
    /// Opens storage, loads keys, and starts the sequencer and publisher tasks.
    pub async fn open(config: &Config) -> Result<Self, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::KeyFile {
            path: config.data_dir.clone(),
            source,
        })?;
        let (signer, created) = load_or_create_log_key(&config.log_key_file, &config.log_name)?;
        if created {
            tracing::info!(
                file = %config.log_key_file.display(),
                verifier_key = %signer.verifier_key(),
                "generated a new log key"
            );
        }
        let operators = load_operators(config)?;
        if operators.is_empty() {
            tracing::warn!(
                file = %config.operators_file.display(),
                "no operator keys configured: every submission will be refused"
            );
        }
        let witnesses = config
            .witnesses
            .iter()
            .map(|s| s.parse::<WitnessConfig>())
            .collect::<Result<Vec<_>, _>>()?;
        let store: SharedStore = Arc::new(SqlStore::connect(&config.database_url).await?);
        Self::start(store, signer, operators, witnesses, config).await
    }

    /// Starts a log over an already opened store.
    pub async fn start(
        store: SharedStore,
        signer: NoteSigner,
        operators: Vec<NoteVerifierKey>,
        witnesses: Vec<WitnessConfig>,
        config: &Config,
    ) -> Result<Self, ServerError> {
        let metrics = Metrics::new().map_err(|e| ServerError::Setup(e.to_string()))?;
        let (stop, stop_rx) = watch::channel(false);
        let verifier_key = signer.verifier_key();
        let (sequencer, submit, seq_watch) = Sequencer::new(
            store.clone(),
            signer,
            metrics.clone(),
            config.batch,
            witnesses.is_empty(),
            stop_rx.clone(),
        );
        let (published_tx, published_rx) = watch::channel(0);
        let publisher = Publisher {
            store: store.clone(),
            witnesses,
            timeout: config.witness_timeout,
            client: witness_client(config.witness_timeout)
                .map_err(|e| ServerError::Setup(e.to_string()))?,
            metrics: metrics.clone(),
            mirror: config.tiles_dir.clone().map(Mirror::new),
            integrated: seq_watch.integrated.clone(),
            leader: seq_watch.leader.clone(),
            published: published_tx,
            stop: stop_rx,
        };
        let tasks = vec![tokio::spawn(sequencer.run()), tokio::spawn(publisher.run())];
        let limits = Limits {
            submit_rate: config.submit_rate,
            ..Limits::default()
        };
        let state = Arc::new(AppState {
            store: store.clone(),
            operators,
            log_key: verifier_key.clone(),
            submit,
            seq: seq_watch,
            published: published_rx,
            metrics,
            bucket: TokenBucket::for_limits(&limits),
            limits,
            tiles: Default::default(),
        });
        let router = api::app(state)
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                config.max_in_flight,
            ))
            .layer(tower_http::trace::TraceLayer::new_for_http());
        Ok(Log {
            router,
            http: config.http.clone(),
            store,
            verifier_key,
            stop,
            tasks,
        })
    }

    /// The HTTP router (for `tower::ServiceExt::oneshot` in tests, or to serve).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The log's verifier key.
    pub fn verifier_key(&self) -> &NoteVerifierKey {
        &self.verifier_key
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Stops the tasks after integrating every submission already handed to the sequencer.
    pub async fn shutdown(self) {
        let Log {
            router,
            store,
            stop,
            tasks,
            ..
        } = self;
        // The router holds the submission channel; nothing can be submitted once it is gone.
        drop(router);
        stop.send_replace(true);
        for t in tasks {
            let _ = t.await;
        }
        let _ = store.close().await;
    }

    /// Serves on `listener` until `shutdown` resolves, then drains: in-flight requests finish
    /// (their statements are integrated), then the tasks stop.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = self.router();
        let served =
            lucent_service::http::serve(listener, router, &self.http, shutdown, DRAIN_TIME).await;
        self.shutdown().await;
        served.map_err(ServerError::Serve)
    }
}
