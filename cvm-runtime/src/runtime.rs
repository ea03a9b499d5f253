//! The runtime's state: this boot's key pair, closed or open, and the loop that keeps
//! checking its own release against the log.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lucent_model::{LanguageModel, ModelLimits};
use lucent_verifier::checkpoint::SignedCheckpoint;
use lucent_verifier::encapsulation::KeyPair;
use rand_core::{OsRng, RngCore as _};

use crate::attester::Attester;
use crate::boot::{now_unix, self_check, SelfCheck};
use crate::config::RuntimeConfig;
use crate::error::Closed;
use crate::key_release::release_and_load;
use lucent_client::follow::{FollowPolicy, Follower};
use lucent_client::LogClient;

/// How long one round trip to the log or broker may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

/// Open: the release verified and the model is loaded.
#[derive(Debug)]
pub struct Open {
    /// The verified self-check (its bundle is what `/v1/attestation` hands out).
    pub check: SelfCheck,
    /// The model, one run at a time.
    pub model: Arc<Mutex<LanguageModel>>,
}

/// Closed or open.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Refusing everything, with the reason.
    Closed(Closed),
    /// Serving.
    Open(Arc<Open>),
}

/// The `enc` values of recent requests, bounded: the oldest are forgotten first. This
/// boot's key pair exists only in memory, so a request can never be replayed to another
/// boot; within one boot, replays within the window are refused.
#[derive(Debug)]
pub struct ReplayWindow {
    order: VecDeque<[u8; 32]>,
    seen: HashSet<[u8; 32]>,
    capacity: usize,
}

impl ReplayWindow {
    /// A window of `capacity` values.
    pub fn new(capacity: usize) -> Self {
        ReplayWindow {
            order: VecDeque::new(),
            seen: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `enc` was seen.
    pub fn contains(&self, enc: &[u8; 32]) -> bool {
        self.seen.contains(enc)
    }

    /// Records `enc`; false if it was already there.
    pub fn insert(&mut self, enc: [u8; 32]) -> bool {
        if !self.seen.insert(enc) {
            return false;
        }
        self.order.push_back(enc);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// The runtime.
pub struct Runtime {
    /// The configuration.
    pub config: RuntimeConfig,
    /// The attester.
    pub attester: Box<dyn Attester>,
    /// This boot's HPKE key pair (memory only).
    pub keypair: KeyPair,
    /// Its RFC 9458 key config.
    pub key_config: Vec<u8>,
    http: reqwest::Client,
    log: LogClient,
    follower: Follower,
    phase: RwLock<Phase>,
    last_seen: Mutex<Option<SignedCheckpoint>>,
    /// Request `enc` values seen.
    pub replay: Mutex<ReplayWindow>,
    /// Model runs in flight or waiting.
    pub running: tokio::sync::Semaphore,
    /// Fresh attestation reports being made.
    pub attestations: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("attester", &self.attester.name())
            .field("key_id", &self.keypair.key_id())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A closed runtime with a fresh key pair; fails only when the HTTP client cannot be
    /// built.
    pub fn new(config: RuntimeConfig, attester: Box<dyn Attester>) -> Result<Self, reqwest::Error> {
        let key_id = config
            .file
            .key_id
            .unwrap_or_else(|| (OsRng.next_u32() & 0xff) as u8);
        let keypair = KeyPair::generate(key_id, &mut OsRng);
        let key_config = keypair.key_config_bytes();
        let http = reqwest::Client::builder()
            .timeout(NETWORK_TIMEOUT)
            .build()?;
        let log = LogClient::new(http.clone(), &config.file.log_url);
        let follower = Follower::new(log.clone(), config.trust.clone(), FollowPolicy::default());
        Ok(Runtime {
            follower,
            replay: Mutex::new(ReplayWindow::new(config.file.replay_window)),
            running: tokio::sync::Semaphore::new(config.file.max_concurrent),
            attestations: tokio::sync::Semaphore::new(config.file.max_concurrent_attestations),
            config,
            attester,
            keypair,
            key_config,
            http,
            log,
            phase: RwLock::new(Phase::Closed(Closed {
                code: "booting",
                measurement: None,
                log_size: None,
                reason: "the self-check has not finished".into(),
            })),
            last_seen: Mutex::new(None),
        })
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.read() {
            Ok(p) => p.clone(),
            Err(_) => Phase::Closed(Closed {
                code: "internal",
                measurement: None,
                log_size: None,
                reason: "state lock poisoned".into(),
            }),
        }
    }

    fn set_phase(&self, phase: Phase) {
        if let Ok(mut p) = self.phase.write() {
            *p = phase;
        }
    }

    /// Closes with `closed`, logging why (`what` names the step that failed).
    fn close(&self, closed: Closed, what: &'static str) {
        tracing::warn!(
            code = closed.code,
            measurement = closed.measurement.as_deref().unwrap_or("unknown"),
            log_size = closed.log_size,
            reason = %closed.reason,
            "{what}: closed"
        );
        self.set_phase(Phase::Closed(closed));
    }

    /// The model limits from the configuration.
    pub fn model_limits(&self) -> ModelLimits {
        ModelLimits {
            max_input_tokens: self.config.file.max_input_tokens,
            max_output_tokens: self.config.file.max_output_tokens,
        }
    }

    /// One self-check; on success, a key release if no model is loaded yet.
    pub async fn check_once(&self) {
        let last_seen = self.last_seen.lock().ok().and_then(|l| l.clone());
        let check = self_check(
            &self.config,
            self.attester.as_ref(),
            &self.follower,
            &self.key_config,
            last_seen.as_ref(),
            NETWORK_TIMEOUT,
            now_unix(),
        )
        .await;
        let check = match check {
            Ok(c) => c,
            Err(closed) => {
                self.close(closed, "self-check failed");
                return;
            }
        };
        // Keep the newest checkpoint: one that lags behind it (a log replica) was only
        // proven a prefix of it and must not replace it.
        if check.verdict.update.replaces_stored() {
            if let Ok(mut l) = self.last_seen.lock() {
                *l = Some(check.verdict.checkpoint.signed.clone());
            }
        }
        tracing::info!(
            measurement = %check.measurement,
            log_size = check.log_size(),
            release = %check.verdict.release.version,
            release_index = check.verdict.release_index,
            "self-check passed"
        );
        let model = match self.phase() {
            Phase::Open(open) => Some(open.model.clone()),
            Phase::Closed(_) => None,
        };
        let model = match model {
            Some(m) => m,
            None => {
                let loaded = release_and_load(
                    &self.http,
                    &self.config.file.broker_url,
                    &self.log,
                    self.attester.as_ref(),
                    &self.keypair,
                    &check,
                    &self.config.file.weights_file,
                    self.model_limits(),
                    NETWORK_TIMEOUT,
                )
                .await;
                match loaded {
                    Ok(m) => {
                        tracing::info!(
                            measurement = %check.measurement,
                            key_id = self.keypair.key_id(),
                            "weights key released, model loaded: open"
                        );
                        Arc::new(Mutex::new(m))
                    }
                    Err(closed) => {
                        self.close(closed, "key release failed");
                        return;
                    }
                }
            }
        };
        self.set_phase(Phase::Open(Arc::new(Open { check, model })));
    }

    /// Checks now, then every `recheck_secs`, forever.
    pub async fn supervise(self: Arc<Self>) {
        let every = Duration::from_secs(self.config.file.recheck_secs.max(1));
        loop {
            self.check_once().await;
            tokio::time::sleep(every).await;
        }
    }
}
