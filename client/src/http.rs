//! The client an app embeds (feature `http`): fetch a CVM's attestation bundle, verify it
//! with the app's trust settings and its last seen checkpoint, seal a request to that CVM's
//! attested key, and open the answer (DESIGN.md flow 5).
//!
//! Fail closed: a request can only be sealed to a [`VerifiedCvm`], and the only way to get one
//! is [`Client::attest`], which runs every check below and returns a specific
//! [`ClientError`] at the first one that fails. No plaintext leaves the app before that.
//!
//! [`Client::attest`] does, in order:
//! 1. picks a fresh 32-byte nonce and fetches `GET {cvm}/v1/attestation?nonce=…`;
//! 2. loads the last seen checkpoint from its [`LastSeenStore`] (verified again with the log
//!    key: the store is not trusted more than the network) and, when the sizes differ, fetches a
//!    consistency proof between the two from the log (a CVM's checkpoint may lag behind the
//!    newest this client has seen: it must then be a prefix of it);
//! 3. fetches the revocations the log holds for the bundle's measurement, keeping those an
//!    operator signed;
//! 4. runs [`verify_bundle`] (checkpoint signature, witness quorum, last seen consistency,
//!    inclusion, release signature, expiry and revocation, evidence and policy, measurement,
//!    key and nonce binding);
//! 5. checks that the CVM's key config is itself logged: an operator-signed `keyconfig`
//!    statement with exactly these bytes, valid now, included under a witnessed checkpoint
//!    (key consistency: every client is offered the same keys). The operator logs a key
//!    config after the CVM booted, so this usually needs the log's current checkpoint,
//!    which is verified (signature, witness quorum) and proven consistent with the newest
//!    one already trusted;
//! 6. replaces the stored checkpoint (durably, see [`crate::store`]) with the newest verified
//!    checkpoint, never with an older one.
//!
//! Without asking the CVM or the log: [`Client::attest_from_cdn`], [`Client::gateway_from_cdn`]
//! and [`Client::issuer_from_cdn`] take the CVM's bundle and the keys from static files that
//! carry their own log proofs ([`lucent_verifier::published`]), served by any CDN.
//!
//! HTTP contract with `cvm-runtime`: `GET /v1/attestation[?nonce=<base64>]` answers the
//! `lucent/bundle/v1` JSON; `POST /v1/summarize` and `POST /v1/suggest` take an RFC 9458
//! encapsulated request ([`lucent_verifier::encapsulation::MediaLabels::LUCENT_CVM`]) whose plaintext is
//! `{"text": string, "max_tokens": u32?}` (padded to its bucket) and answer the sealed
//! response, whose plaintext is `{"output": string, "tokens": u32, ...}` or, when the CVM
//! opened the request and refused it, `{"error": code, "message": text}`
//! ([`lucent_verifier::cvm_api::TaskReply`], [`ClientError::TaskRefused`]). Errors before
//! the request is opened are plain `{"error": code, "message": text}`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};

use lucent_verifier::bundle::{
    verify_bundle, Bundle, BundleError, BundlePolicy, BundleStep, BundleVerdict, LastSeen,
    MAX_BUNDLE_BYTES,
};
use lucent_verifier::checkpoint::{
    verify_checkpoint, verify_witnessed, CheckpointError, SignedCheckpoint,
};
use lucent_verifier::cvm_api::{pad_to_bucket, padded_len, Task, TaskReply, TaskRequest};
use lucent_verifier::encapsulation::{
    open_response, seal_request, seal_request_with, EncapsulationError, KeyConfig as HpkeKeyConfig,
    MediaLabels, ResponseContext,
};
use lucent_verifier::last_seen::check_update;
use lucent_verifier::log_api::Entry;
use lucent_verifier::merkle::{LeafHash, ProofError};
use lucent_verifier::oblivious::{
    ErrorSource, ForwardRequest, GatewayAnswer, ERROR_SOURCE_HEADER, MAX_ERROR_BODY_BYTES,
    MAX_OUTER_RESPONSE_BYTES, OHTTP_PATH, REQUEST_MEDIA_TYPE,
};
use lucent_verifier::privacy_pass::{
    decode_batch, encode_batch, request_token, IssuerInfo, IssuerPublicKey, Token, TokenChallenge,
    TokenError, TokenResponse, BATCH_REQUEST_MEDIA_TYPE, ISSUER_INFO_PATH, ISSUE_PATH, MAX_BATCH,
    TOKEN_RESPONSE_LEN, TOKEN_TYPE,
};
use lucent_verifier::published::{
    cvm_path, Published, PublishedCvm, PublishedError, VerifiedPublished, GATEWAY_PATH,
    ISSUER_PATH, MAX_PUBLISHED_BYTES,
};
use lucent_verifier::statement::{parse_unverified, verify_statement, Statement};
use lucent_verifier::trust::TrustSettings;

use crate::log::{fetch, read_body, read_limited, FetchError, LogClient};
use crate::store::{load_verified, LastSeenStore, StoreError};

/// Largest answer read from the log or a CVM (bundles are at most [`MAX_BUNDLE_BYTES`]).
pub const MAX_RESPONSE_BYTES: usize = MAX_BUNDLE_BYTES + 64 * 1024;

/// Why the client refused, or could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A request to the log or the CVM failed, was refused, or got a malformed answer.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The bundle did not verify (the error names the step).
    #[error("attestation bundle of {url} rejected: {source}")]
    Bundle {
        /// The CVM.
        url: String,
        /// The failed step.
        source: BundleError,
    },
    /// The log's current checkpoint does not verify (log signature or witness quorum).
    #[error("log checkpoint {url}: {source}")]
    Checkpoint {
        /// Where it came from.
        url: String,
        /// Why it was rejected.
        source: CheckpointError,
    },
    /// The CVM's or the gateway's key config is not logged by an operator, valid now, under
    /// the checkpoint.
    #[error("key config {key_id} of {url} is not logged: {reason}")]
    KeyConfigNotLogged {
        /// The CVM, or `gateway via <relay>`.
        url: String,
        /// The key id.
        key_id: u8,
        /// What is missing.
        reason: String,
    },
    /// The issuer's key is not logged by an operator, valid now, under the checkpoint: its
    /// tokens could single this client out, so none are fetched.
    #[error("issuer key {key_id} of {url} is not logged: {reason}")]
    IssuerKeyNotLogged {
        /// The issuer.
        url: String,
        /// The token key id, hex.
        key_id: String,
        /// What is missing.
        reason: String,
    },
    /// A token message from or for the issuer was refused (a proof that does not verify
    /// against the logged key, a malformed answer).
    #[error("tokens from {url}: {source}")]
    Token {
        /// The issuer.
        url: String,
        /// The failure.
        source: TokenError,
    },
    /// A file from the CDN did not verify (operator signature, log proof, witness quorum).
    #[error("{url}: {source}")]
    Published {
        /// The file's URL.
        url: String,
        /// Why.
        source: PublishedError,
    },
    /// The last seen checkpoint could not be read, verified or stored.
    #[error(transparent)]
    LastSeen(#[from] StoreError),
    /// The [`VerifiedCvm`] is past its release's or its key config's not-after: attest again.
    #[error("the verification of {url} was valid until {valid_until}, now is {now}; attest again")]
    VerificationExpired {
        /// The CVM.
        url: String,
        /// Until when it was valid.
        valid_until: u64,
        /// The time of the attempt.
        now: u64,
    },
    /// The CVM opened the request and refused it (sealed: only this client saw why).
    #[error("{url}: the CVM refused the request ({code}): {message}")]
    TaskRefused {
        /// The task's URL.
        url: String,
        /// The stable code (`bad_request`, `model_refused`, `busy`, `timeout`, `internal`).
        code: String,
        /// The CVM's message.
        message: String,
    },
    /// A party of the oblivious path could not be reached, or refused the request before
    /// the CVM opened it: the relay (it names itself, or the client could not reach it), the
    /// gateway (in its sealed answer, or before it opened the request, through the relay), or
    /// the CVM (through the gateway: closed, for example).
    #[error("{party} refused the request (HTTP {status}, {code}): {message}")]
    Oblivious {
        /// Who: relay, gateway or CVM.
        party: ErrorSource,
        /// The HTTP status (0: the party could not be reached).
        status: u16,
        /// The stable code (`gateway_unreachable`, `unknown_key_id`, `not_logged`, …).
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// Sealing the request or opening the answer failed.
    #[error("encrypted channel to {url}: {source}")]
    Encapsulation {
        /// The CVM.
        url: String,
        /// The failure.
        source: EncapsulationError,
    },
}

impl ClientError {
    /// The bundle step that failed, when a bundle was rejected.
    pub fn bundle_step(&self) -> Option<BundleStep> {
        match self {
            ClientError::Bundle { source, .. } => source.step(),
            _ => None,
        }
    }
}

/// What the app trusts and where it keeps its last seen checkpoint.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the log (for consistency proofs, revocations and key configs).
    pub log_url: String,
    /// Log key, witness quorum, operators, vendor roots.
    pub trust: TrustSettings,
    /// Evidence policy (its `nonce` is replaced by a fresh one on every attestation).
    pub policy: BundlePolicy,
    /// Where the last seen checkpoint is kept (an [`crate::AtomicFile`] for most apps).
    pub last_seen: Arc<dyn LastSeenStore>,
    /// Time limit for each HTTP request.
    pub timeout: Duration,
    /// The local address outgoing connections are made from (the system's choice when
    /// absent).
    pub local_address: Option<std::net::IpAddr>,
}

/// Where the time of one attestation went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttestTimings {
    /// Fetching the bundle, proofs, revocations and key configs.
    pub network: Duration,
    /// Running the checks.
    pub verification: Duration,
}

/// A CVM whose bundle verified; requests can be sealed to it and to nothing else.
#[derive(Clone, Debug)]
pub struct VerifiedCvm {
    url: String,
    key_config: HpkeKeyConfig,
    verdict: BundleVerdict,
    key_config_index: u64,
    timings: AttestTimings,
    valid_until: u64,
}

impl VerifiedCvm {
    /// The CVM's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// What was checked, the matching release, the checkpoint and the evidence facts.
    pub fn verdict(&self) -> &BundleVerdict {
        &self.verdict
    }
    /// The attested HPKE key config.
    pub fn key_config(&self) -> &HpkeKeyConfig {
        &self.key_config
    }
    /// Index of the `keyconfig` statement that logs the key config.
    pub fn key_config_index(&self) -> u64 {
        self.key_config_index
    }
    /// Where the time of the attestation went.
    pub fn timings(&self) -> AttestTimings {
        self.timings
    }
    /// Until when (Unix seconds) it may be used: the earlier of its release's and its key
    /// config's not-after. [`Client::ask`] refuses it afterwards; attest again.
    pub fn valid_until(&self) -> u64 {
        self.valid_until
    }
}

/// A gateway whose key config the client found logged, reached through a relay; requests
/// go through it with [`Client::ask_oblivious`].
#[derive(Clone, Debug)]
pub struct VerifiedGateway {
    relay_url: String,
    key_config: HpkeKeyConfig,
    key_config_index: u64,
    valid_until: u64,
}

impl VerifiedGateway {
    /// The relay's base URL.
    pub fn relay_url(&self) -> &str {
        &self.relay_url
    }
    /// The gateway's logged key config.
    pub fn key_config(&self) -> &HpkeKeyConfig {
        &self.key_config
    }
    /// Index of the `keyconfig` statement that logs it.
    pub fn key_config_index(&self) -> u64 {
        self.key_config_index
    }
    /// Until when (Unix seconds) the key config is valid.
    pub fn valid_until(&self) -> u64 {
        self.valid_until
    }
}

/// An issuer whose key the client found logged; tokens are fetched from it with
/// [`Client::fetch_tokens`].
#[derive(Clone, Debug)]
pub struct VerifiedIssuer {
    url: String,
    name: String,
    public_key: IssuerPublicKey,
    index: u64,
    valid_until: u64,
}

impl VerifiedIssuer {
    /// The issuer's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// Its name (the tokens' challenge names it).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its logged public key.
    pub fn public_key(&self) -> &IssuerPublicKey {
        &self.public_key
    }
    /// Index of the `issuer` statement that logs the key.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// Until when (Unix seconds) the key is valid; the gateway refuses its tokens afterwards.
    pub fn valid_until(&self) -> u64 {
        self.valid_until
    }
}

/// An opened answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The model's text.
    pub output: String,
    /// Tokens generated.
    pub tokens: u32,
    /// The CVM's own account of the model's time, when it gives one.
    pub model_time: Option<Duration>,
    /// Round trip of the HTTP request (network and the CVM's work).
    pub round_trip: Duration,
    /// Sealing the request and opening the answer.
    pub crypto: Duration,
}

impl Answer {
    fn new(
        answer: &lucent_verifier::cvm_api::TaskAnswer,
        round_trip: Duration,
        crypto: Duration,
    ) -> Self {
        Answer {
            output: answer.output.clone(),
            tokens: answer.tokens,
            model_time: answer.model_ms.map(Duration::from_millis),
            round_trip,
            crypto,
        }
    }
}

/// The client.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    log: LogClient,
    config: ClientConfig,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .local_address(config.local_address)
            .build()
            .map_err(|e| FetchError::from_reqwest("client set-up", "", &e))?;
        let log = LogClient::new(http.clone(), &config.log_url);
        Ok(Client { http, log, config })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The last seen checkpoint from the store, verified with the log key.
    pub fn last_seen(&self) -> Result<Option<SignedCheckpoint>, ClientError> {
        Ok(load_verified(
            &*self.config.last_seen,
            &self.config.trust.log,
        )?)
    }

    /// The log's current checkpoint, verified (signature and witness quorum).
    async fn current_checkpoint(&self) -> Result<SignedCheckpoint, ClientError> {
        let note = self.log.checkpoint().await?;
        Ok(
            verify_witnessed(&note, &self.config.trust.log, &self.config.trust.witnesses)
                .map_err(|source| ClientError::Checkpoint {
                    url: self.log.url("/checkpoint"),
                    source,
                })?
                .signed,
        )
    }

    /// The log's current checkpoint, verified (signature and witness quorum) and proven
    /// consistent with `trusted`; `trusted` itself when the log has not grown.
    async fn newer_checkpoint(
        &self,
        trusted: &SignedCheckpoint,
    ) -> Result<SignedCheckpoint, ClientError> {
        let url = self.log.url("/checkpoint");
        let latest = self.current_checkpoint().await?;
        let (old, new) = (trusted.checkpoint.size.0, latest.checkpoint.size.0);
        let proof = if old > 0 && old < new {
            Some(self.log.consistency(old, new).await?)
        } else {
            None
        };
        check_update(Some(trusted), &latest, proof.as_ref()).map_err(|e| ClientError::Bundle {
            url,
            source: BundleError::LastSeen(e),
        })?;
        Ok(latest)
    }

    /// Finds, among `entries` (a lookup's answer), the operator-signed statement that
    /// `wanted` picks (answering its validity window), checks it is valid at `now` and
    /// proves it included under `cp` or, when it was logged after `cp`, under the log's
    /// current checkpoint. Returns its index, its not-after and the checkpoint it is proven
    /// under; `not_logged` makes the error.
    async fn statement_logged(
        &self,
        entries: &[Entry],
        wanted: impl Fn(&Statement) -> Option<(u64, u64)>,
        not_logged: impl Fn(String) -> ClientError,
        what: &str,
        cp: SignedCheckpoint,
        now: u64,
    ) -> Result<(u64, u64, SignedCheckpoint), ClientError> {
        let size = cp.checkpoint.size.0;
        let mut seen_other = false;
        for e in entries {
            let bytes = &e.entry;
            let Ok(signed) = verify_statement(bytes, &self.config.trust.operators) else {
                continue;
            };
            let Some((not_before, not_after)) = wanted(&signed.statement) else {
                seen_other = true;
                continue;
            };
            if now < not_before || now > not_after {
                return Err(not_logged(format!(
                    "its statement at index {} is valid from {not_before} to {not_after}, now is {now}",
                    e.index
                )));
            }
            let cp = if e.index < size {
                cp
            } else {
                self.newer_checkpoint(&cp).await?
            };
            let size = cp.checkpoint.size.0;
            if e.index >= size {
                return Err(not_logged(format!(
                    "its statement at index {} is not under the log's checkpoint of size {size}",
                    e.index
                )));
            }
            self.log
                .inclusion(e.index, size)
                .await?
                .verify(&LeafHash::of_entry(bytes), &cp.checkpoint.root)
                .map_err(|err: ProofError| {
                    not_logged(format!(
                        "inclusion of index {} in size {size}: {err}",
                        e.index
                    ))
                })?;
            return Ok((e.index, not_after, cp));
        }
        Err(not_logged(if seen_other {
            format!("the log holds other {what}s under this id, not this one")
        } else {
            format!("the log holds no operator-signed {what} under this id")
        }))
    }

    /// Checks that `key_config` is logged: an operator-signed `keyconfig` statement with
    /// exactly these bytes, valid at `now` ([`Client::statement_logged`]).
    async fn key_config_logged(
        &self,
        url: &str,
        key_config: &[u8],
        key_id: u8,
        cp: SignedCheckpoint,
        now: u64,
    ) -> Result<(u64, u64, SignedCheckpoint), ClientError> {
        let answer = self.log.keyconfigs(key_id).await?;
        self.statement_logged(
            &answer.keyconfigs,
            |s| match s {
                Statement::KeyConfig(k) if k.config == key_config => {
                    Some((k.not_before, k.not_after))
                }
                _ => None,
            },
            |reason| ClientError::KeyConfigNotLogged {
                url: url.to_owned(),
                key_id,
                reason,
            },
            "key config",
            cp,
            now,
        )
        .await
    }

    /// Fetches and verifies the bundle of the CVM at `cvm_url` (every step in the module
    /// docs), and stores the verified checkpoint as the new last seen one.
    pub async fn attest(&self, cvm_url: &str) -> Result<VerifiedCvm, ClientError> {
        let cvm_url = cvm_url.trim_end_matches('/').to_owned();
        let mut timings = AttestTimings::default();
        let mut nonce = [0u8; 32];
        OsRng.fill_bytes(&mut nonce);

        let t = Instant::now();
        let url = format!(
            "{cvm_url}/v1/attestation?nonce={}",
            urlencode_b64(&B64.encode(nonce))
        );
        let body = fetch(
            "attestation bundle",
            &url,
            self.http.get(&url),
            MAX_RESPONSE_BYTES,
        )
        .await?;
        timings.network += t.elapsed();

        let t = Instant::now();
        let bundle_err = |source| ClientError::Bundle {
            url: cvm_url.clone(),
            source,
        };
        let bundle = Bundle::decode(&body).map_err(bundle_err)?;
        let stored = self.last_seen()?;
        // The bundle's checkpoint size decides which consistency proof to fetch; it is
        // verified again, in order, by `verify_bundle`.
        let new_cp = verify_checkpoint(&bundle.checkpoint, &self.config.trust.log)
            .map_err(|e| bundle_err(BundleError::CheckpointSignature(e)))?;
        let release = parse_unverified(&bundle.release).ok();
        timings.verification += t.elapsed();

        let t = Instant::now();
        // A proof between the two sizes, smaller to larger (none for equal sizes).
        let proof = match &stored {
            Some(old) => {
                let (a, b) = (old.checkpoint.size.0, new_cp.checkpoint.size.0);
                if a.min(b) > 0 && a != b {
                    Some(self.log.consistency(a.min(b), a.max(b)).await?)
                } else {
                    None
                }
            }
            None => None,
        };
        let mut trust_revoked = Vec::new();
        if let Some(Statement::Release(r)) = &release {
            trust_revoked = self
                .log
                .releases(&r.measurement)
                .await?
                .verified_revocations(&self.config.trust.operators);
        }
        timings.network += t.elapsed();

        let t = Instant::now();
        let mut trust = self.config.trust.clone();
        trust.revoked.extend(trust_revoked);
        let policy = BundlePolicy {
            nonce: Some(nonce.to_vec()),
            ..self.config.policy.clone()
        };
        let now = now_unix();
        let last_seen = stored.as_ref().map(|checkpoint| LastSeen {
            checkpoint,
            proof: proof.as_ref(),
        });
        let verdict =
            verify_bundle(&bundle, &trust, &policy, last_seen, now).map_err(bundle_err)?;
        let key_config = HpkeKeyConfig::parse(&verdict.key_config).map_err(|source| {
            ClientError::Encapsulation {
                url: cvm_url.clone(),
                source,
            }
        })?;
        timings.verification += t.elapsed();

        // The newest checkpoint trusted so far: the bundle's, or the stored one it lags.
        let newest = if verdict.update.replaces_stored() {
            verdict.checkpoint.signed.clone()
        } else {
            stored
                .clone()
                .unwrap_or_else(|| verdict.checkpoint.signed.clone())
        };
        let t = Instant::now();
        let (key_config_index, key_config_not_after, newest) = self
            .key_config_logged(
                &cvm_url,
                &verdict.key_config,
                key_config.key_id,
                newest,
                now,
            )
            .await?;
        timings.network += t.elapsed();

        let grew = stored
            .as_ref()
            .is_none_or(|s| s.checkpoint.size.0 < newest.checkpoint.size.0);
        if grew {
            self.config.last_seen.store(&newest.note)?;
        }
        let valid_until = verdict.release.not_after.min(key_config_not_after);
        Ok(VerifiedCvm {
            url: cvm_url,
            key_config,
            verdict,
            key_config_index,
            timings,
            valid_until,
        })
    }

    /// Checks that `key_config` (the gateway's, as a CDN or the operator serves it) is
    /// logged: an operator-signed `keyconfig` statement with exactly these bytes, valid now,
    /// under a witnessed checkpoint consistent with the last seen one. The result sends
    /// requests to that gateway through the relay at `relay_url`.
    pub async fn gateway(
        &self,
        relay_url: &str,
        key_config: &[u8],
    ) -> Result<VerifiedGateway, ClientError> {
        let relay_url = relay_url.trim_end_matches('/').to_owned();
        let what = format!("gateway via {relay_url}");
        let parsed =
            HpkeKeyConfig::parse(key_config).map_err(|source| ClientError::Encapsulation {
                url: what.clone(),
                source,
            })?;
        let stored = self.last_seen()?;
        let trusted = match &stored {
            Some(cp) => cp.clone(),
            None => self.current_checkpoint().await?,
        };
        let (key_config_index, valid_until, newest) = self
            .key_config_logged(&what, key_config, parsed.key_id, trusted, now_unix())
            .await?;
        if stored
            .as_ref()
            .is_none_or(|s| s.checkpoint.size.0 < newest.checkpoint.size.0)
        {
            self.config.last_seen.store(&newest.note)?;
        }
        Ok(VerifiedGateway {
            relay_url,
            key_config: parsed,
            key_config_index,
            valid_until,
        })
    }

    /// Reads the name and public key of the issuer at `issuer_url` (`GET /v1/issuer`) and
    /// checks them with [`Client::verify_issuer`].
    pub async fn issuer(&self, issuer_url: &str) -> Result<VerifiedIssuer, ClientError> {
        let issuer_url = issuer_url.trim_end_matches('/').to_owned();
        let url = format!("{issuer_url}{ISSUER_INFO_PATH}");
        let body = fetch("issuer key", &url, self.http.get(&url), 4096).await?;
        let info: IssuerInfo =
            serde_json::from_slice(&body).map_err(|e| FetchError::Malformed {
                what: "issuer key",
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let token_err = |source| ClientError::Token {
            url: issuer_url.clone(),
            source,
        };
        if info.token_type != TOKEN_TYPE {
            return Err(token_err(TokenError::TokenType(info.token_type)));
        }
        let key = hex::decode(&info.public_key)
            .map_err(|_| token_err(TokenError::Encoding("issuer public key")))?;
        let key = IssuerPublicKey::parse(&key).map_err(token_err)?;
        self.verify_issuer(&issuer_url, &info.name, key).await
    }

    /// Checks that the issuer key `public_key` named `name` (as the issuer, a CDN or the app
    /// gave it) is logged: an operator-signed `issuer` statement with this name and key,
    /// valid now, under a witnessed checkpoint consistent with the last seen one. Without
    /// that, an issuer could give this client a key of its own and recognise its tokens.
    pub async fn verify_issuer(
        &self,
        issuer_url: &str,
        name: &str,
        public_key: IssuerPublicKey,
    ) -> Result<VerifiedIssuer, ClientError> {
        let issuer_url = issuer_url.trim_end_matches('/').to_owned();
        let key_id = public_key.key_id();
        let stored = self.last_seen()?;
        let trusted = match &stored {
            Some(cp) => cp.clone(),
            None => self.current_checkpoint().await?,
        };
        let answer = self.log.issuers(&key_id).await?;
        let (index, valid_until, newest) = self
            .statement_logged(
                &answer.issuers,
                |s| match s {
                    Statement::Issuer(i) if i.public_key == public_key && i.name == name => {
                        Some((i.not_before, i.not_after))
                    }
                    _ => None,
                },
                |reason| ClientError::IssuerKeyNotLogged {
                    url: issuer_url.clone(),
                    key_id: hex::encode(key_id),
                    reason,
                },
                "issuer key",
                trusted,
                now_unix(),
            )
            .await?;
        if stored
            .as_ref()
            .is_none_or(|s| s.checkpoint.size.0 < newest.checkpoint.size.0)
        {
            self.config.last_seen.store(&newest.note)?;
        }
        Ok(VerifiedIssuer {
            url: issuer_url,
            name: name.to_owned(),
            public_key,
            index,
            valid_until,
        })
    }

    /// Fetches `count` tokens (1 to [`MAX_BATCH`]) from a verified issuer in one batch,
    /// authenticated as the account `credential` (`<account>.<secret>`). The issuer sees
    /// the account and blinded messages; the tokens it cannot recognise later. Each answer's
    /// proof is checked against the logged key.
    pub async fn fetch_tokens(
        &self,
        issuer: &VerifiedIssuer,
        credential: &str,
        count: usize,
    ) -> Result<Vec<Token>, ClientError> {
        let now = now_unix();
        if now > issuer.valid_until {
            return Err(ClientError::VerificationExpired {
                url: issuer.url.clone(),
                valid_until: issuer.valid_until,
                now,
            });
        }
        let token_err = |source| ClientError::Token {
            url: issuer.url.clone(),
            source,
        };
        let challenge = TokenChallenge::for_issuer(&issuer.name);
        let mut requests = Vec::with_capacity(count);
        let mut pending = Vec::with_capacity(count);
        for _ in 0..count {
            let (request, state) =
                request_token(&issuer.public_key, &challenge, &mut OsRng).map_err(token_err)?;
            requests.push(request.encode());
            pending.push(state);
        }
        let body = encode_batch(&requests).map_err(token_err)?;
        let url = format!("{}{ISSUE_PATH}", issuer.url);
        let answer = fetch(
            "token responses",
            &url,
            self.http
                .post(&url)
                .bearer_auth(credential)
                .header("content-type", BATCH_REQUEST_MEDIA_TYPE)
                .body(body),
            2 + MAX_BATCH * TOKEN_RESPONSE_LEN,
        )
        .await?;
        let responses = decode_batch::<TOKEN_RESPONSE_LEN>("token responses", &answer)
            .map_err(token_err)?
            .collect::<Vec<_>>();
        if responses.len() != count {
            return Err(token_err(TokenError::Length {
                what: "token responses",
                got: responses.len(),
                want: count,
            }));
        }
        pending
            .into_iter()
            .zip(responses)
            .map(|(state, response)| {
                state
                    .finalize(&TokenResponse::decode(response).map_err(token_err)?)
                    .map_err(token_err)
            })
            .collect()
    }

    /// Fetches the JSON file at `path` under the CDN's `cdn_url` (size-limited).
    async fn fetch_published<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        cdn_url: &str,
        path: &str,
    ) -> Result<(String, T), ClientError> {
        let url = format!("{}{path}", cdn_url.trim_end_matches('/'));
        let body = fetch(what, &url, self.http.get(&url), MAX_PUBLISHED_BYTES).await?;
        let file = serde_json::from_slice(&body).map_err(|e| FetchError::Malformed {
            what,
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok((url, file))
    }

    /// Verifies a published statement (operator signature, log proof, witness quorum).
    fn verify_published(
        &self,
        url: &str,
        file: &Published,
    ) -> Result<VerifiedPublished, ClientError> {
        file.verify(&self.config.trust)
            .map_err(|source| ClientError::Published {
                url: url.to_owned(),
                source,
            })
    }

    /// The `keyconfig` statement of a published file, valid at `now` and for `config`
    /// (when given).
    fn published_key_config(
        &self,
        url: &str,
        file: &Published,
        config: Option<&[u8]>,
        now: u64,
    ) -> Result<(HpkeKeyConfig, u64, u64), ClientError> {
        let verified = self.verify_published(url, file)?;
        let not_logged = |key_id, reason: String| ClientError::KeyConfigNotLogged {
            url: url.to_owned(),
            key_id,
            reason,
        };
        let Statement::KeyConfig(k) = verified.signed.statement else {
            return Err(not_logged(
                0,
                "the published statement is no key config".into(),
            ));
        };
        if config.is_some_and(|c| c != k.config) {
            return Err(not_logged(
                k.key_id,
                "the published statement logs another key config than the CVM's".into(),
            ));
        }
        if now < k.not_before || now > k.not_after {
            return Err(not_logged(
                k.key_id,
                format!(
                    "its statement at index {} is valid from {} to {}, now is {now}",
                    verified.index, k.not_before, k.not_after
                ),
            ));
        }
        let parsed =
            HpkeKeyConfig::parse(&k.config).map_err(|source| ClientError::Encapsulation {
                url: url.to_owned(),
                source,
            })?;
        Ok((parsed, verified.index, k.not_after))
    }

    /// [`Client::gateway`] with the gateway's key config from a CDN ([`GATEWAY_PATH`]): the
    /// file carries its own log proof, so neither the operator nor the log sees the fetch.
    pub async fn gateway_from_cdn(
        &self,
        cdn_url: &str,
        relay_url: &str,
    ) -> Result<VerifiedGateway, ClientError> {
        let (url, file) = self
            .fetch_published::<Published>("gateway key config", cdn_url, GATEWAY_PATH)
            .await?;
        let (key_config, key_config_index, valid_until) =
            self.published_key_config(&url, &file, None, now_unix())?;
        Ok(VerifiedGateway {
            relay_url: relay_url.trim_end_matches('/').to_owned(),
            key_config,
            key_config_index,
            valid_until,
        })
    }

    /// [`Client::issuer`] with the issuer's key from a CDN ([`ISSUER_PATH`]): logged, under a
    /// witnessed checkpoint, valid now. Tokens are then fetched from `issuer_url`.
    pub async fn issuer_from_cdn(
        &self,
        cdn_url: &str,
        issuer_url: &str,
    ) -> Result<VerifiedIssuer, ClientError> {
        let (url, file) = self
            .fetch_published::<Published>("issuer key", cdn_url, ISSUER_PATH)
            .await?;
        let verified = self.verify_published(&url, &file)?;
        let now = now_unix();
        let not_logged = |key_id: String, reason: String| ClientError::IssuerKeyNotLogged {
            url: url.clone(),
            key_id,
            reason,
        };
        let Statement::Issuer(i) = verified.signed.statement else {
            return Err(not_logged(
                String::new(),
                "the published statement is no issuer key".into(),
            ));
        };
        if now < i.not_before || now > i.not_after {
            return Err(not_logged(
                hex::encode(i.public_key.key_id()),
                format!(
                    "its statement at index {} is valid from {} to {}, now is {now}",
                    verified.index, i.not_before, i.not_after
                ),
            ));
        }
        Ok(VerifiedIssuer {
            url: issuer_url.trim_end_matches('/').to_owned(),
            name: i.name,
            public_key: i.public_key,
            index: verified.index,
            valid_until: i.not_after,
        })
    }

    /// [`Client::attest`] from a CDN: the CVM's published bundle ([`cvm_path`]`(key_id)`,
    /// taken without a nonce) and its key config statement, both verified as `attest` does
    /// (checkpoint signature and witness quorum, release inclusion, signature, validity,
    /// evidence, policy, measurement, key binding; the key config logged and valid now).
    /// Nobody is asked: the CVM and the log do not see the client. What it gives up: the
    /// evidence is not fresh (no nonce; the key binding and the release's validity still
    /// hold), revocations are those the bundle's checkpoint held (a revoked CVM closes
    /// itself and refuses through the gateway), and the last seen checkpoint is neither
    /// checked against nor updated (a split view needs the witness quorum's collusion).
    pub async fn attest_from_cdn(
        &self,
        cdn_url: &str,
        key_id: u8,
    ) -> Result<VerifiedCvm, ClientError> {
        let mut timings = AttestTimings::default();
        let t = Instant::now();
        let (url, file) = self
            .fetch_published::<PublishedCvm>("published CVM", cdn_url, &cvm_path(key_id))
            .await?;
        timings.network += t.elapsed();
        let t = Instant::now();
        let bundle_err = |source| ClientError::Bundle {
            url: url.clone(),
            source,
        };
        let bundle = Bundle::decode(&file.bundle).map_err(bundle_err)?;
        let now = now_unix();
        let policy = BundlePolicy {
            nonce: None,
            ..self.config.policy.clone()
        };
        let verdict =
            verify_bundle(&bundle, &self.config.trust, &policy, None, now).map_err(bundle_err)?;
        let (key_config, key_config_index, key_config_not_after) =
            self.published_key_config(&url, &file.keyconfig, Some(&verdict.key_config), now)?;
        timings.verification += t.elapsed();
        let valid_until = verdict.release.not_after.min(key_config_not_after);
        Ok(VerifiedCvm {
            url: file.url.trim_end_matches('/').to_owned(),
            key_config,
            verdict,
            key_config_index,
            timings,
            valid_until,
        })
    }

    /// The padded plaintext of a task request, sealed to a verified CVM that is still valid.
    fn seal_task(
        &self,
        cvm: &VerifiedCvm,
        text: &str,
        max_tokens: Option<u32>,
    ) -> Result<(Vec<u8>, ResponseContext), ClientError> {
        // A verification is good only as long as what it verified: re-checked on every use.
        let now = now_unix();
        if now > cvm.valid_until {
            return Err(ClientError::VerificationExpired {
                url: cvm.url.clone(),
                valid_until: cvm.valid_until,
                now,
            });
        }
        let request = TaskRequest {
            text: text.to_owned(),
            max_tokens,
        };
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&request).map_err(|e| {
            FetchError::Malformed {
                what: "request",
                url: cvm.url.clone(),
                reason: e.to_string(),
            }
        })?);
        drop(request);
        // Padded to its bucket, so the ciphertext's length tells only the bucket; the room is
        // reserved first so that no unwiped copy of the text is left behind.
        let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(padded_len(json.len())));
        plaintext.extend_from_slice(&json);
        drop(json);
        pad_to_bucket(&mut plaintext);
        seal_request(&cvm.key_config, &plaintext, &mut OsRng).map_err(|source| {
            ClientError::Encapsulation {
                url: cvm.url.clone(),
                source,
            }
        })
    }

    /// Opens the CVM's sealed answer to a task request.
    fn open_task(
        cvm: &VerifiedCvm,
        url: &str,
        context: &ResponseContext,
        body: &[u8],
    ) -> Result<lucent_verifier::cvm_api::TaskAnswer, ClientError> {
        let opened = open_response(context, body).map_err(|source| ClientError::Encapsulation {
            url: cvm.url.clone(),
            source,
        })?;
        let reply: TaskReply =
            serde_json::from_slice(&opened).map_err(|e| FetchError::Malformed {
                what: "answer",
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        match reply {
            TaskReply::Answer(a) => Ok(a),
            TaskReply::Error(e) => Err(ClientError::TaskRefused {
                url: url.to_owned(),
                code: e.error,
                message: e.message,
            }),
        }
    }

    /// Seals `text` to the verified CVM, sends it for `task`, and opens the answer.
    pub async fn ask(
        &self,
        cvm: &VerifiedCvm,
        task: Task,
        text: &str,
        max_tokens: Option<u32>,
    ) -> Result<Answer, ClientError> {
        let t = Instant::now();
        let (request, context) = self.seal_task(cvm, text, max_tokens)?;
        let mut crypto = t.elapsed();

        let url = format!("{}{}", cvm.url, task.path());
        let t = Instant::now();
        let body = fetch(
            "encrypted request",
            &url,
            self.http
                .post(&url)
                .header("content-type", REQUEST_MEDIA_TYPE)
                .body(request),
            MAX_RESPONSE_BYTES,
        )
        .await?;
        let round_trip = t.elapsed();

        let t = Instant::now();
        let answer = Self::open_task(cvm, &url, &context, &body)?;
        crypto += t.elapsed();
        Ok(Answer::new(&answer, round_trip, crypto))
    }

    /// [`Client::ask`] without showing the operator who asks: the request, sealed to the
    /// verified CVM, is sealed again to the verified gateway (RFC 9458 outer layer, Binary
    /// HTTP inside, [`lucent_verifier::oblivious`]) with `token` (from
    /// [`Client::fetch_tokens`]; spent by this request, whatever its outcome) and sent
    /// through the relay. The relay sees this client's address and the ciphertext's size;
    /// the gateway sees the relay, a valid token and a sealed inner request; only the CVM
    /// sees the text. Every refusal on the way names its party ([`ClientError::Oblivious`]).
    pub async fn ask_oblivious(
        &self,
        gateway: &VerifiedGateway,
        cvm: &VerifiedCvm,
        token: Token,
        task: Task,
        text: &str,
        max_tokens: Option<u32>,
    ) -> Result<Answer, ClientError> {
        let what = || format!("gateway via {}", gateway.relay_url);
        let now = now_unix();
        if now > gateway.valid_until {
            return Err(ClientError::VerificationExpired {
                url: what(),
                valid_until: gateway.valid_until,
                now,
            });
        }
        let t = Instant::now();
        let (inner, context) = self.seal_task(cvm, text, max_tokens)?;
        let forward = ForwardRequest {
            task,
            sealed: inner,
            token: Some(token),
        }
        .encode();
        let outer_err = |source| ClientError::Encapsulation {
            url: what(),
            source,
        };
        let aead = gateway.key_config.preferred().map_err(outer_err)?;
        let (request, outer_context) = seal_request_with(
            &gateway.key_config,
            aead,
            &MediaLabels::OHTTP_BHTTP,
            &forward,
            &mut OsRng,
        )
        .map_err(outer_err)?;
        let mut crypto = t.elapsed();

        let url = format!("{}{OHTTP_PATH}", gateway.relay_url);
        let t = Instant::now();
        let resp = self
            .http
            .post(&url)
            .header("content-type", REQUEST_MEDIA_TYPE)
            .body(request)
            .send()
            .await
            .map_err(|e| ClientError::Oblivious {
                party: ErrorSource::Relay,
                status: 0,
                code: "relay_unreachable".into(),
                message: format!("{url}: {e}"),
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            // The relay says whether the refusal is its own or the gateway's; anything else
            // is counted as the relay's.
            let party = resp
                .headers()
                .get(ERROR_SOURCE_HEADER)
                .and_then(|v| ErrorSource::parse(v.as_bytes()))
                .filter(|p| *p == ErrorSource::Gateway)
                .unwrap_or(ErrorSource::Relay);
            let refused = read_limited("oblivious request", &url, resp, MAX_ERROR_BODY_BYTES).await;
            let (code, message) = match refused {
                Err(FetchError::Refused { code, message, .. }) => (code, message),
                Err(e) => (format!("http_{status}"), e.to_string()),
                Ok(_) => (format!("http_{status}"), String::new()),
            };
            return Err(ClientError::Oblivious {
                party,
                status,
                code,
                message,
            });
        }
        let body = read_body("oblivious answer", &url, resp, MAX_OUTER_RESPONSE_BYTES).await?;
        let round_trip = t.elapsed();

        let t = Instant::now();
        let opened = open_response(&outer_context, &body).map_err(outer_err)?;
        let answer = GatewayAnswer::decode(&opened).map_err(|e| FetchError::Malformed {
            what: "gateway answer",
            url: url.clone(),
            reason: e.to_string(),
        })?;
        drop(opened);
        let sealed = match answer {
            GatewayAnswer::Sealed(sealed) => sealed,
            GatewayAnswer::Error {
                status,
                source,
                body,
            } => {
                return Err(ClientError::Oblivious {
                    party: source,
                    status,
                    code: body.error,
                    message: body.message,
                })
            }
        };
        let answer = Self::open_task(
            cvm,
            &format!("{}{}", cvm.url, task.path()),
            &context,
            &sealed,
        )?;
        crypto += t.elapsed();
        Ok(Answer::new(&answer, round_trip, crypto))
    }
}

/// Base64 in a query string: `+`, `/` and `=` percent-encoded.
fn urlencode_b64(b64: &str) -> String {
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
