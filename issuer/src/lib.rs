//! Lucent's Privacy Pass issuer (RFC 9576 architecture, RFC 9578 issuance, token type
//! `0x0001`, VOPRF(P-384, SHA-384) through [`lucent_verifier::privacy_pass`]).
//!
//! An app's account asks for a batch of tokens; the issuer checks the account's credential
//! (the `accounts` table stands in for the app's login), that the batch fits the account's
//! daily limit, evaluates each blinded request with its key and a proof, and records only how
//! many tokens the account got that day. It never sees the tokens: the client blinds them, and
//! the gateway that redeems them sees nothing the issuer saw. Its public key is logged as an
//! `issuer` statement, so that every client gets tokens under the same key; a client refuses
//! a key it cannot find logged.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/issuer` | | [`IssuerInfo`] |
//! | `POST /v1/token-requests` | a batch of token requests ([`BATCH_REQUEST_MEDIA_TYPE`]), `Authorization: Bearer <account>.<secret>` | the batch of token responses ([`BATCH_RESPONSE_MEDIA_TYPE`]) |
//! | any failure | | `{"error", "message"}`: 401 `unauthenticated`, 429 `daily_limit`, 415 `wrong_media_type`, 413 `too_large`, 400 `bad_request`, 422 `wrong_key` |
//!
//! Bad input changes nothing: the batch is parsed and evaluated before the account's count is
//! raised, and the count is raised atomically only if the whole batch fits the limit.
//!
//! What it stores: per account, the hash of its secret and its limit; per account and UTC day,
//! the number of tokens issued. It logs no request and no address.

pub mod cli;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lucent_service::db::{self, Database, DbError};
use lucent_verifier::log_api::ErrorBody;
use lucent_verifier::privacy_pass::{
    decode_batch, encode_batch, IssuerInfo, IssuerKey, TokenError, TokenRequest,
    BATCH_REQUEST_MEDIA_TYPE, BATCH_RESPONSE_MEDIA_TYPE, ISSUER_INFO_PATH, ISSUE_PATH, MAX_BATCH,
    TOKEN_REQUEST_LEN, TOKEN_TYPE,
};
use lucent_verifier::statement::{is_token, MAX_TOKEN_LEN};
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Length of the issuer key's seed file (RFC 9578 §5.5 `DeriveKeyPair` seed).
pub const SEED_LEN: usize = 48;
/// Largest batch body.
pub const MAX_BATCH_BYTES: usize = 2 + MAX_BATCH * TOKEN_REQUEST_LEN;

/// The issuer's configuration file (TOML).
///
/// ```toml
/// listen = "127.0.0.1:8800"
/// name = "issuer.lucent.example"                      # the tokens' issuer_name, as logged
/// key_file = "/var/lib/lucent/issuer.key"            # 48-byte seed; made (0600) when absent
/// database_url = "sqlite:/var/lib/lucent/issuer.db"  # or postgres://…
/// default_daily_limit = 100                           # for accounts added without one
///
/// [http]                                              # lucent_service::http::HttpLimits
/// per_source_per_second = 100
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Address to listen on.
    pub listen: String,
    /// The issuer's name: `[A-Za-z0-9._+-]`, at most 64 characters (a statement token).
    pub name: String,
    /// The key's secret seed (48 bytes, raw or 96 hex digits).
    pub key_file: PathBuf,
    /// The account database.
    pub database_url: String,
    /// Tokens a day for accounts added without a limit of their own.
    #[serde(default = "default_daily_limit")]
    pub default_daily_limit: u64,
    /// Connection limits.
    #[serde(default)]
    pub http: lucent_service::http::HttpLimits,
}

fn default_daily_limit() -> u64 {
    100
}

pub use lucent_service::config_file::ConfigError;

impl IssuerConfig {
    /// Reads, parses and checks the file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = lucent_service::config_file::read(path)?;
        config.check()?;
        Ok(config)
    }

    /// Checks every setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.http
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if !is_token(&self.name) {
            return Err(ConfigError::Invalid(format!(
                "name {:?}: want 1 to {MAX_TOKEN_LEN} of [A-Za-z0-9._+-] (it is logged as is)",
                self.name
            )));
        }
        if self.default_daily_limit == 0 || self.default_daily_limit > i64::MAX as u64 {
            return Err(ConfigError::Invalid(
                "default_daily_limit must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The issuer key from `key_file`; a new seed is written there (mode 0600, never over an
    /// existing file) when the file does not exist.
    pub fn key(&self) -> Result<IssuerKey, ConfigError> {
        let (seed, made) = lucent_service::secret_file::load(&self.key_file, SEED_LEN, true)?;
        if made {
            tracing::info!(path = %self.key_file.display(), "made a new issuer key");
        }
        IssuerKey::derive(&seed).map_err(|e| ConfigError::Invalid(format!("issuer key: {e}")))
    }
}

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// Not [`BATCH_REQUEST_MEDIA_TYPE`].
    #[error("content type must be {BATCH_REQUEST_MEDIA_TYPE}")]
    WrongMediaType,
    /// A body over [`MAX_BATCH_BYTES`].
    #[error("request body larger than {MAX_BATCH_BYTES} bytes")]
    TooLarge,
    /// The body could not be read.
    #[error("request body could not be read")]
    Unreadable,
    /// No credential, an unknown account or a wrong secret (not told apart).
    #[error("no valid account credential (Authorization: Bearer <account>.<secret>)")]
    Unauthenticated,
    /// The batch does not fit the account's daily limit.
    #[error(
        "the account may get {limit} tokens a day; {used} were issued today, {asked} more asked"
    )]
    DailyLimit {
        /// The account's limit.
        limit: u64,
        /// Tokens issued today.
        used: u64,
        /// Tokens in this batch.
        asked: u64,
    },
    /// A malformed batch or token request.
    #[error("{0}")]
    Malformed(TokenError),
    /// A request for another issuer key.
    #[error(
        "a token request is for another issuer key (truncated key id {got}, this key's {want})"
    )]
    WrongKey {
        /// The request's truncated key id.
        got: u8,
        /// This key's.
        want: u8,
    },
    /// The database failed.
    #[error("account database: {0}")]
    Store(String),
}

impl IntoResponse for IssueError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            IssueError::WrongMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "wrong_media_type"),
            IssueError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            IssueError::Unreadable | IssueError::Malformed(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            IssueError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            IssueError::DailyLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "daily_limit"),
            IssueError::WrongKey { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong_key"),
            IssueError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let mut response = (status, Json(ErrorBody::new(code, self.to_string()))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn store_err(e: sqlx::Error) -> IssueError {
    IssueError::Store(e.to_string())
}

/// The account table and the daily counts.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: Database,
}

/// Hex SHA-256 of an account secret (secrets are 32 random bytes: a plain hash suffices).
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn to_i64(n: u64) -> Result<i64, IssueError> {
    i64::try_from(n).map_err(|_| IssueError::Store(format!("{n} does not fit the database")))
}

impl Accounts {
    /// Opens (and migrates) the database at `url`.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let db = db::open(url, 8).await?;
        db::migrator(&[(
            "accounts",
            include_str!("../../migrations/issuer/0001_accounts.sql"),
        )])
        .run(&db.pool)
        .await?;
        Ok(Accounts { db })
    }

    /// The database (for tests that read every stored field).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Adds an account with `daily_limit` tokens a day; its credential
    /// (`<account>.<secret>`), shown once: only the secret's hash is kept.
    pub async fn add(&self, account: &str, daily_limit: u64) -> Result<String, ConfigError> {
        if !is_token(account) {
            return Err(ConfigError::Invalid(format!(
                "account {account:?}: want 1 to {MAX_TOKEN_LEN} of [A-Za-z0-9._+-]"
            )));
        }
        if daily_limit == 0 || daily_limit > i64::MAX as u64 {
            return Err(ConfigError::Invalid("daily limit must be positive".into()));
        }
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let done = sqlx::query(
            "INSERT INTO accounts (account, secret_hash, daily_limit) VALUES ($1, $2, $3) \
             ON CONFLICT (account) DO NOTHING",
        )
        .bind(account)
        .bind(secret_hash(&secret))
        .bind(daily_limit as i64)
        .execute(&self.db.pool)
        .await
        .map_err(|e| ConfigError::Db(DbError::Sql(e)))?;
        if done.rows_affected() == 0 {
            return Err(ConfigError::Invalid(format!(
                "account {account:?} exists already"
            )));
        }
        Ok(format!("{account}.{secret}"))
    }

    /// The account a credential (`<account>.<secret>`) names, and its daily limit, if the
    /// secret matches. The secret is hex, so the last dot separates it from an account name
    /// that may hold dots itself.
    pub async fn authenticate(&self, credential: &str) -> Result<(String, u64), IssueError> {
        let (account, secret) = credential
            .rsplit_once('.')
            .filter(|(a, s)| is_token(a) && s.len() == 64)
            .ok_or(IssueError::Unauthenticated)?;
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT secret_hash, daily_limit FROM accounts WHERE account = $1")
                .bind(account)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(store_err)?;
        // An unknown account is checked against a hash too, so that timing tells nothing.
        let (stored, limit) = row.unwrap_or_else(|| (secret_hash(""), 0));
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), secret_hash(secret).as_bytes()).into();
        if !matches || limit <= 0 {
            return Err(IssueError::Unauthenticated);
        }
        Ok((account.to_owned(), limit as u64))
    }

    /// Tokens issued to `account` on `day` (days since the Unix epoch, UTC).
    pub async fn issued(&self, account: &str, day: u64) -> Result<u64, IssueError> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT tokens FROM issued WHERE account = $1 AND day = $2")
                .bind(account)
                .bind(to_i64(day)?)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(store_err)?;
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    /// Counts `n` more tokens for `account` on `day`, only if the total stays within
    /// `limit` (one atomic update: concurrent batches cannot both slip under the limit).
    pub async fn reserve(
        &self,
        account: &str,
        day: u64,
        n: u64,
        limit: u64,
    ) -> Result<(), IssueError> {
        let day_i = to_i64(day)?;
        sqlx::query(
            "INSERT INTO issued (account, day, tokens) VALUES ($1, $2, 0) \
             ON CONFLICT (account, day) DO NOTHING",
        )
        .bind(account)
        .bind(day_i)
        .execute(&self.db.pool)
        .await
        .map_err(store_err)?;
        let done = sqlx::query(
            "UPDATE issued SET tokens = tokens + $3 \
             WHERE account = $1 AND day = $2 AND tokens + $3 <= $4",
        )
        .bind(account)
        .bind(day_i)
        .bind(to_i64(n)?)
        .bind(to_i64(limit)?)
        .execute(&self.db.pool)
        .await
        .map_err(store_err)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(IssueError::DailyLimit {
                limit,
                used: self.issued(account, day).await?,
                asked: n,
            })
        }
    }
}

/// The issuer: its key, its name and its accounts.
pub struct Issuer {
    key: Arc<IssuerKey>,
    name: String,
    accounts: Accounts,
}

impl Issuer {
    /// An issuer named `name` with `key`, issuing to `accounts`.
    pub fn new(name: String, key: IssuerKey, accounts: Accounts) -> Self {
        Issuer {
            key: Arc::new(key),
            name,
            accounts,
        }
    }

    /// Its name and public key.
    pub fn info(&self) -> IssuerInfo {
        IssuerInfo {
            name: self.name.clone(),
            token_type: TOKEN_TYPE,
            public_key: hex::encode(self.key.public_key().as_bytes()),
        }
    }

    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Answers a batch of token requests from the account `credential` at time `now`.
    pub async fn issue(
        &self,
        credential: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<Vec<u8>, IssueError> {
        let (account, limit) = self
            .accounts
            .authenticate(credential.ok_or(IssueError::Unauthenticated)?)
            .await?;
        let want = self.key.public_key().key_id()[31];
        let requests = decode_batch::<TOKEN_REQUEST_LEN>("token requests", body)
            .map_err(IssueError::Malformed)?
            .map(|r| {
                let r = TokenRequest::decode(r).map_err(IssueError::Malformed)?;
                if r.truncated_key_id != want {
                    return Err(IssueError::WrongKey {
                        got: r.truncated_key_id,
                        want,
                    });
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = requests.len() as u64;
        let day = now / 86_400;
        let used = self.accounts.issued(&account, day).await?;
        if used + n > limit {
            return Err(IssueError::DailyLimit {
                limit,
                used,
                asked: n,
            });
        }
        // The evaluations (a scalar multiplication and a proof each) run off the async
        // threads, and before the count is raised: a batch that fails changes nothing.
        let key = self.key.clone();
        let responses = tokio::task::spawn_blocking(move || {
            requests
                .iter()
                .map(|r| key.issue(r, &mut OsRng).map(|r| r.encode()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| IssueError::Store(format!("evaluation task: {e}")))?
        .map_err(IssueError::Malformed)?;
        self.accounts.reserve(&account, day, n, limit).await?;
        encode_batch(&responses).map_err(IssueError::Malformed)
    }
}

/// The router.
pub fn app(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route(ISSUER_INFO_PATH, get(info))
        .route(ISSUE_PATH, post(issue))
        .with_state(issuer)
}

/// Serves `app(issuer)` on `listener` with `limits` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    issuer: Arc<Issuer>,
    limits: &lucent_service::http::HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    lucent_service::http::serve(
        listener,
        app(issuer),
        limits,
        shutdown,
        Duration::from_secs(30),
    )
    .await
}

async fn info(State(issuer): State<Arc<Issuer>>) -> Json<IssuerInfo> {
    Json(issuer.info())
}

async fn issue(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IssueError> {
    if !lucent_service::http::content_type_is(&headers, BATCH_REQUEST_MEDIA_TYPE) {
        return Err(IssueError::WrongMediaType);
    }
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, value) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("Bearer")
                .then(|| value.trim().to_owned())
        });
    let body = lucent_service::http::read_body(&headers, body, MAX_BATCH_BYTES)
        .await
        .map_err(|e| match e {
            lucent_service::http::BodyError::TooLarge { .. } => IssueError::TooLarge,
            _ => IssueError::Unreadable,
        })?;
    let answer = issuer
        .issue(credential.as_deref(), &body, lucent_service::now_unix())
        .await?;
    let mut response = answer.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(BATCH_RESPONSE_MEDIA_TYPE),
    );
    Ok(response)
}
