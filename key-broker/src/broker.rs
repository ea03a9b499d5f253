//! The broker's decision, without HTTP: check the nonce, verify the bundle with the
//! broker's trust and policy (nonce bound), advance the last seen checkpoint, check the
//! release against the broker's own view of the log (no revocation of its measurement, the
//! view confirmed recently and covering the bundle's checkpoint), spend the nonce, seal the
//! key.

use std::sync::{Arc, Mutex};

use lucent_client::follow::Follower;
use lucent_verifier::bundle::{verify_bundle, BundlePolicy, LastSeen};
use lucent_verifier::checkpoint::{verify_checkpoint, SignedCheckpoint};
use lucent_verifier::encapsulation::KeyConfig;
use lucent_verifier::key_release::weights::WeightsKey;
use lucent_verifier::key_release::{seal_weights_key, KeyReleaseError};
use lucent_verifier::trust::TrustSettings;

use crate::error::BrokerError;
use crate::nonce::{Nonce, NonceStore};
use lucent_client::store::{AtomicFile, LastSeenStore as _, StoreError};

/// A CVM's key request, decoded ([`lucent_verifier::key_release::KeyRequestBody::decode`]).
pub use lucent_verifier::key_release::KeyRequest;

/// The current time in Unix seconds; injected so tests control it.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// What the broker trusts and holds.
pub struct BrokerConfig {
    /// Log key, witnesses, operators, vendor roots, revocations.
    pub trust: TrustSettings,
    /// Evidence policy (its `nonce` is replaced by each request's).
    pub policy: BundlePolicy,
    /// Nonce lifetime, seconds.
    pub nonce_ttl_secs: u64,
    /// Where the last seen checkpoint is kept.
    pub state_file: AtomicFile,
    /// The model-weights key to release.
    pub weights_key: WeightsKey,
    /// The broker's follower of the log (its view of every release and revocation).
    pub follower: Arc<Follower>,
    /// Longest time since the view was last confirmed before the broker stops releasing.
    pub max_view_age_secs: u64,
}

/// A fresh nonce for a CVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceGrant {
    /// The nonce to bind in `report_data`.
    pub nonce: Nonce,
    /// Its expiry (Unix seconds).
    pub expires_at: u64,
    /// Size of the broker's last seen checkpoint: the CVM sends a consistency proof from
    /// it to its bundle's checkpoint (none needed when absent or equal).
    pub last_seen_size: Option<u64>,
}

/// A released key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRelease {
    /// The weights key, sealed to the CVM's key config
    /// ([`lucent_verifier::key_release::seal_weights_key`]).
    pub sealed_key: Vec<u8>,
    /// The CVM key id it is sealed to.
    pub key_id: u8,
    /// The release that matched.
    pub release_version: String,
    /// Its measurement (hex).
    pub measurement: String,
    /// Its index in the log.
    pub release_index: u64,
    /// Size of the checkpoint it was verified under.
    pub checkpoint_size: u64,
}

/// The key broker.
pub struct Broker {
    trust: TrustSettings,
    policy: BundlePolicy,
    state_file: AtomicFile,
    weights_key: WeightsKey,
    follower: Arc<Follower>,
    max_view_age_secs: u64,
    nonces: Mutex<NonceStore>,
    last_seen: Mutex<Option<SignedCheckpoint>>,
    clock: Clock,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> BrokerError {
    BrokerError::Internal("a broker lock was poisoned".into())
}

impl Broker {
    /// A broker; loads and re-verifies the last seen checkpoint.
    pub fn new(config: BrokerConfig, clock: Clock) -> Result<Self, StoreError> {
        let last_seen = config.state_file.load_verified(&config.trust.log)?;
        Ok(Broker {
            trust: config.trust,
            policy: config.policy,
            state_file: config.state_file,
            weights_key: config.weights_key,
            follower: config.follower,
            max_view_age_secs: config.max_view_age_secs,
            nonces: Mutex::new(NonceStore::new(
                config.nonce_ttl_secs,
                &mut rand_core::OsRng,
            )),
            last_seen: Mutex::new(last_seen),
            clock,
        })
    }

    /// Size of the last seen checkpoint.
    pub fn last_seen_size(&self) -> Result<Option<u64>, BrokerError> {
        let guard = self.last_seen.lock().map_err(|_| poisoned())?;
        Ok(guard.as_ref().map(|c| c.checkpoint.size.0))
    }

    /// Issues a nonce.
    pub fn issue_nonce(&self) -> Result<NonceGrant, BrokerError> {
        let now = (self.clock)();
        let (nonce, expires_at) = self
            .nonces
            .lock()
            .map_err(|_| poisoned())?
            .issue(&mut rand_core::OsRng, now);
        Ok(NonceGrant {
            nonce,
            expires_at,
            last_seen_size: self.last_seen_size()?,
        })
    }

    /// The broker's follower of the log.
    pub fn follower(&self) -> &Arc<Follower> {
        &self.follower
    }

    /// Reads the log now when the request's checkpoint (log-signed) is newer than the
    /// broker's view, so that a CVM on a fresh checkpoint need not wait for the next
    /// scheduled sync. A failure is left to [`Broker::release_key`] to refuse.
    pub async fn catch_up(&self, req: &KeyRequest) {
        let Ok(signed) = verify_checkpoint(&req.bundle.checkpoint, &self.trust.log) else {
            return;
        };
        let behind = self
            .follower
            .view()
            .is_none_or(|v| v.size() < signed.checkpoint.size.0);
        if behind {
            if let Err(e) = self.follower.sync((self.clock)()).await {
                tracing::warn!(error = %e, "reading the log for a key request failed");
            }
        }
    }

    /// Checks the nonce, verifies the bundle, advances the last seen checkpoint, checks the
    /// release against the broker's view of the log, spends the nonce and seals the weights
    /// key to the CVM's key config.
    pub fn release_key(&self, req: &KeyRequest) -> Result<KeyRelease, BrokerError> {
        // Checked before the nonce is spent: a key config nothing can be sealed to is the
        // request's fault.
        let config = KeyConfig::parse(&req.bundle.key_config).map_err(BrokerError::BadKeyConfig)?;
        config.preferred().map_err(BrokerError::BadKeyConfig)?;
        let now = (self.clock)();
        // Issued here, unexpired and unspent; spent below only once the release succeeds.
        self.nonces
            .lock()
            .map_err(|_| poisoned())?
            .check(&req.nonce, now)?;

        let policy = BundlePolicy {
            nonce: Some(req.nonce.clone()),
            ..self.policy.clone()
        };
        // Held across verification and storing, so two releases cannot race the update.
        let mut last_seen = self.last_seen.lock().map_err(|_| poisoned())?;
        let verdict = verify_bundle(
            &req.bundle,
            &self.trust,
            &policy,
            last_seen.as_ref().map(|checkpoint| LastSeen {
                checkpoint,
                proof: req.consistency.as_ref(),
            }),
            now,
        )?;
        if verdict.update.replaces_stored() {
            self.state_file.store(&verdict.checkpoint.signed.note)?;
            *last_seen = Some(verdict.checkpoint.signed.clone());
        }
        drop(last_seen);

        // The broker's own view of the log: complete up to the bundle's checkpoint, confirmed
        // recently, and holding no revocation of this measurement.
        let view = self.follower.view().ok_or(BrokerError::NoLogView)?;
        let age = view.age(now);
        if age > self.max_view_age_secs {
            return Err(BrokerError::LogViewStale {
                age,
                limit: self.max_view_age_secs,
            });
        }
        let bundle_size = verdict.checkpoint.checkpoint().size.0;
        if view.size() < bundle_size {
            return Err(BrokerError::LogViewBehind {
                view: view.size(),
                bundle: bundle_size,
            });
        }
        if let Some(r) = view.revocations(&verdict.release.measurement).first() {
            return Err(BrokerError::RevokedInLog {
                measurement: verdict.release.measurement.to_hex(),
                index: r.index,
                reason: r.reason.clone(),
            });
        }

        // Spent atomically: of two requests racing with one nonce, one gets the key.
        self.nonces
            .lock()
            .map_err(|_| poisoned())?
            .spend(&req.nonce, now)?;
        let sealed_key = seal_weights_key(&config, &self.weights_key, &mut rand_core::OsRng)
            .map_err(|e| match e {
                KeyReleaseError::KeyConfig(e) => BrokerError::BadKeyConfig(e),
                KeyReleaseError::Seal(e) => BrokerError::Seal(e),
                other => BrokerError::Internal(other.to_string()),
            })?;
        Ok(KeyRelease {
            sealed_key,
            key_id: config.key_id,
            release_version: verdict.release.version.clone(),
            measurement: verdict.release.measurement.to_hex(),
            release_index: verdict.release_index,
            checkpoint_size: verdict.checkpoint.checkpoint().size.0,
        })
    }
}
