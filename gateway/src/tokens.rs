//! Redeeming anonymous tokens (RFC 9577 privately verifiable, type `0x0001`): every request
//! through the gateway carries one, inside the outer layer, so the relay never sees it.
//!
//! A token is accepted when, in this order: there is one (`token_required`); it is under an
//! issuer key whose seed this gateway holds (`unknown_issuer_key`); that key is logged by an
//! operator under the issuer's name, as the gateway's own verified view of the log shows
//! (`issuer_key_not_logged`; `no_log_view` before the first sync); the key is within its
//! logged validity (`issuer_key_expired`, `issuer_key_not_yet_valid`); it answers the one
//! challenge Lucent's tokens answer (`wrong_challenge`); its authenticator verifies
//! (`invalid_token`); and it was never redeemed before (`token_spent`). It is then spent,
//! durably, before the request goes on.
//!
//! The spent-token store (`spent_tokens` in SQLite or PostgreSQL) holds only the token key
//! id and the client's random nonce: nothing the issuer ever saw. Rows of keys past their
//! not-after are deleted, since their tokens are refused anyway: the store is bounded by
//! issuer key rotation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use lucent_client::follow::{FollowPolicy, Follower};
use lucent_client::LogClient;
use lucent_service::db::{self, Database, DbError};
use lucent_verifier::privacy_pass::{IssuerKey, Token, TokenChallenge, TokenError};
use lucent_verifier::trust::TrustConfig;
use serde::Deserialize;

use crate::ConfigError;

/// Length of an issuer key's seed file (RFC 9578 §5.5 `DeriveKeyPair` seed).
pub const ISSUER_SEED_LEN: usize = 48;

/// The `[tokens]` table of the gateway's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// The issuer's name (the challenge's `issuer_name`, and the name its key is logged
    /// under).
    pub issuer_name: String,
    /// The issuer's key seeds (the issuer's own files: the gateway verifies tokens with the
    /// private key). Several during a rotation.
    pub issuer_key_files: Vec<PathBuf>,
    /// The spent-token store: `sqlite:<path>` or `postgres://…`.
    pub spent_database_url: String,
    /// The log whose issuer statements the gateway follows.
    pub log_url: String,
    /// Seconds between reads of the log.
    #[serde(default = "default_follow_every")]
    pub follow_every_secs: u64,
    /// What the gateway trusts when it follows the log (log key, witnesses, operators).
    pub trust: TrustConfig,
}

fn default_follow_every() -> u64 {
    10
}

/// Why a token was refused. The code of each is stable; all answer 401 but
/// `NoLogView` (503) and `Store` (500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// The request carried no token.
    #[error("this gateway takes requests only with a token (Authorization: PrivateToken)")]
    Missing,
    /// The `authorization` field is no token.
    #[error("the token does not parse: {0}")]
    Malformed(TokenError),
    /// The token is under a key this gateway does not hold.
    #[error("the token is under issuer key {0}, which this gateway does not hold")]
    UnknownKey(String),
    /// The token's key is not logged under the issuer's name.
    #[error("issuer key {0} is not logged under this issuer's name")]
    NotLogged(String),
    /// The token's key is past its logged not-after.
    #[error("issuer key {key} expired at {not_after}; fetch tokens under the current key")]
    Expired {
        /// The key id, hex.
        key: String,
        /// Its not-after.
        not_after: u64,
    },
    /// The token's key is not valid yet.
    #[error("issuer key {key} is valid only from {not_before}")]
    NotYetValid {
        /// The key id, hex.
        key: String,
        /// Its not-before.
        not_before: u64,
    },
    /// The token answers another challenge.
    #[error("the token answers another challenge than this gateway's")]
    WrongChallenge,
    /// The token's authenticator does not verify.
    #[error("the token does not verify under its issuer key")]
    Invalid,
    /// The token was redeemed before.
    #[error("the token was already spent")]
    Spent,
    /// The gateway has not read the log yet.
    #[error("the gateway has not read the log yet; try again shortly")]
    NoLogView,
    /// The spent-token store failed.
    #[error("spent-token store: {0}")]
    Store(String),
}

impl RedeemError {
    /// HTTP status and stable code.
    pub fn status_code(&self) -> (u16, &'static str) {
        match self {
            RedeemError::Missing => (401, "token_required"),
            RedeemError::Malformed(_) => (401, "invalid_token"),
            RedeemError::UnknownKey(_) => (401, "unknown_issuer_key"),
            RedeemError::NotLogged(_) => (401, "issuer_key_not_logged"),
            RedeemError::Expired { .. } => (401, "issuer_key_expired"),
            RedeemError::NotYetValid { .. } => (401, "issuer_key_not_yet_valid"),
            RedeemError::WrongChallenge => (401, "wrong_challenge"),
            RedeemError::Invalid => (401, "invalid_token"),
            RedeemError::Spent => (401, "token_spent"),
            RedeemError::NoLogView => (503, "no_log_view"),
            RedeemError::Store(_) => (500, "internal"),
        }
    }
}

/// The durable set of redeemed tokens.
#[derive(Debug, Clone)]
pub struct SpentStore {
    db: Database,
}

impl SpentStore {
    /// Opens (and migrates) the store at `url`.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let db = db::open(url, 8).await?;
        db::migrator(&[(
            "spent_tokens",
            include_str!("../../migrations/gateway/0001_spent_tokens.sql"),
        )])
        .run(&db.pool)
        .await?;
        Ok(SpentStore { db })
    }

    /// Records the token `(key_id, nonce)` as spent; false when it already was.
    pub async fn spend(&self, key_id: &[u8; 32], nonce: &[u8; 32]) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO spent_tokens (token_key_id, nonce) VALUES ($1, $2) \
             ON CONFLICT (token_key_id, nonce) DO NOTHING",
        )
        .bind(hex::encode(key_id))
        .bind(hex::encode(nonce))
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes the spent tokens of `key_id` (a key past its not-after); the count deleted.
    pub async fn forget_key(&self, key_id: &[u8; 32]) -> Result<u64, sqlx::Error> {
        Ok(
            sqlx::query("DELETE FROM spent_tokens WHERE token_key_id = $1")
                .bind(hex::encode(key_id))
                .execute(&self.db.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Spent tokens stored.
    pub async fn count(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spent_tokens")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

/// Checks and spends tokens.
pub struct Redeemer {
    follow_every: std::time::Duration,
    issuer_name: String,
    challenge_digest: [u8; 32],
    keys: HashMap<[u8; 32], IssuerKey>,
    follower: Arc<Follower>,
    spent: SpentStore,
}

impl std::fmt::Debug for Redeemer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redeemer")
            .field("issuer_name", &self.issuer_name)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Redeemer {
    /// A redeemer for `config`: reads the key seeds, opens the spent-token store, and makes
    /// the follower of the log (which has no view until [`Redeemer::sync`]).
    pub async fn new(config: &TokensConfig) -> Result<Self, ConfigError> {
        let invalid = |s: String| ConfigError::Invalid(format!("[tokens] {s}"));
        if config.issuer_key_files.is_empty() {
            return Err(invalid("issuer_key_files lists no key".into()));
        }
        let challenge_digest = TokenChallenge::for_issuer(&config.issuer_name)
            .digest()
            .map_err(|e| invalid(format!("issuer_name: {e}")))?;
        let mut keys = HashMap::new();
        for path in &config.issuer_key_files {
            let (seed, _) = lucent_service::secret_file::load(path, ISSUER_SEED_LEN, false)?;
            let key = IssuerKey::derive(&seed)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            keys.insert(key.public_key().key_id(), key);
        }
        let trust = config
            .trust
            .settings()
            .map_err(|e| invalid(format!("trust: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let follower = Arc::new(Follower::new(
            LogClient::new(http, &config.log_url),
            trust,
            FollowPolicy::default(),
        ));
        let spent = SpentStore::open(&config.spent_database_url)
            .await
            .map_err(|e| invalid(format!("spent_database_url: {e}")))?;
        Ok(Redeemer {
            follow_every: std::time::Duration::from_secs(config.follow_every_secs.max(1)),
            issuer_name: config.issuer_name.clone(),
            challenge_digest,
            keys,
            follower,
            spent,
        })
    }

    /// How often [`Redeemer::sync`] should run.
    pub fn follow_every(&self) -> std::time::Duration {
        self.follow_every
    }

    /// The spent-token store.
    pub fn spent(&self) -> &SpentStore {
        &self.spent
    }

    /// Brings the view of the log up to date, then forgets the spent tokens of held keys
    /// past their logged not-after.
    pub async fn sync(&self, now: u64) {
        if let Err(e) = self.follower.sync(now).await {
            tracing::warn!(error = %e, "reading the log failed");
        }
        let Some(view) = self.follower.view() else {
            return;
        };
        for key_id in self.keys.keys() {
            let newest = view
                .issuers(key_id)
                .iter()
                .filter(|l| l.statement.name == self.issuer_name)
                .map(|l| l.statement.not_after)
                .max();
            if newest.is_some_and(|not_after| now > not_after) {
                match self.spent.forget_key(key_id).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(key = %hex::encode(key_id), tokens = n, "forgot the spent tokens of an expired issuer key")
                    }
                    Err(e) => tracing::warn!(error = %e, "pruning spent tokens failed"),
                }
            }
        }
    }

    /// Checks `token` (see the module docs, in order) and spends it.
    pub async fn redeem(&self, token: Option<&Token>, now: u64) -> Result<(), RedeemError> {
        let token = token.ok_or(RedeemError::Missing)?;
        let key_hex = || hex::encode(token.token_key_id);
        let key = self
            .keys
            .get(&token.token_key_id)
            .ok_or_else(|| RedeemError::UnknownKey(key_hex()))?;
        let view = self.follower.view().ok_or(RedeemError::NoLogView)?;
        let logged = view
            .issuers(&token.token_key_id)
            .iter()
            .filter(|l| {
                l.statement.name == self.issuer_name && l.statement.public_key == *key.public_key()
            })
            .max_by_key(|l| l.statement.not_after)
            .ok_or_else(|| RedeemError::NotLogged(key_hex()))?;
        if now > logged.statement.not_after {
            return Err(RedeemError::Expired {
                key: key_hex(),
                not_after: logged.statement.not_after,
            });
        }
        if now < logged.statement.not_before {
            return Err(RedeemError::NotYetValid {
                key: key_hex(),
                not_before: logged.statement.not_before,
            });
        }
        if token.challenge_digest != self.challenge_digest {
            return Err(RedeemError::WrongChallenge);
        }
        key.verify(token).map_err(|e| match e {
            TokenError::Invalid => RedeemError::Invalid,
            e => RedeemError::Malformed(e),
        })?;
        if self
            .spent
            .spend(&token.token_key_id, &token.nonce)
            .await
            .map_err(|e| RedeemError::Store(e.to_string()))?
        {
            Ok(())
        } else {
            Err(RedeemError::Spent)
        }
    }
}
