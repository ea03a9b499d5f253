//! The client an app embeds (feature `client`): fetch a CVM's attestation bundle, verify it
//! with the app's trust settings and its last seen checkpoint, seal a request to that CVM's
//! attested key, and open the answer (DESIGN.md flow 5).
//!
//! Fail closed: a request can only be sealed to a [`VerifiedCvm`], and the only way to get one
//! is [`Client::attest`], which runs every check below and returns a specific
//! [`ClientError`] at the first one that fails. No plaintext leaves the app before that.
//!
//! [`Client::attest`] does, in order:
//! 1. picks a fresh 32-byte nonce and fetches `GET {cvm}/v1/attestation?nonce=…`;
//! 2. loads the last seen checkpoint from the state file (verified again with the log key:
//!    the file is not trusted more than the network) and, when the sizes differ, fetches a
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
//! 6. replaces the state file (write, sync, rename) with the newest verified checkpoint,
//!    never with an older one.
//!
//! HTTP contract with `cvm-runtime`: `GET /v1/attestation[?nonce=<base64>]` answers the
//! `lucent/bundle/v1` JSON; `POST /v1/summarize` and `POST /v1/suggest` take an RFC 9458
//! encapsulated request ([`crate::encapsulation::MediaLabels::LUCENT_CVM`]) whose plaintext is
//! `{"text": string, "max_tokens": u32?}` and answer the sealed response, whose plaintext is
//! `{"output": string, "tokens": u32, ...}`. Errors are `{"error": code, "message": text}`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;

use crate::bundle::{
    verify_bundle, Bundle, BundleError, BundlePolicy, BundleStep, BundleTrust, BundleVerdict,
    LastSeen, MAX_BUNDLE_BYTES,
};
use crate::checkpoint::{verify_checkpoint, verify_witnessed, CheckpointError, SignedCheckpoint};
use crate::encapsulation::{
    open_response, seal_request, EncapsulationError, KeyConfig as HpkeKeyConfig,
};
use crate::last_seen::check_update;
use crate::merkle::{ConsistencyProof, InclusionProof, LeafHash, ProofError};
use crate::statement::{parse_unverified, verify_statement, Measurement, Statement};

/// Largest answer read from the log or a CVM (bundles are at most [`MAX_BUNDLE_BYTES`]).
pub const MAX_RESPONSE_BYTES: usize = MAX_BUNDLE_BYTES + 64 * 1024;

/// Largest checkpoint note accepted from the state file.
const MAX_STATE_BYTES: usize = 64 * 1024;

/// Why the client refused, or could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A request could not be made or its answer not read (connection, timeout, size).
    #[error("{what} {url}: {reason}")]
    Http {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{what} {url}: HTTP {status}: {code}: {message}")]
    Refused {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's error code (`{"error": code}`), or `http_<status>`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// An answer was not in the expected form.
    #[error("{what} {url}: malformed answer: {reason}")]
    Malformed {
        /// What was being fetched.
        what: &'static str,
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
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
    /// The CVM's key config is not logged by an operator, valid now, under the checkpoint.
    #[error("key config {key_id} of {url} is not logged: {reason}")]
    KeyConfigNotLogged {
        /// The CVM.
        url: String,
        /// The key id.
        key_id: u8,
        /// What is missing.
        reason: String,
    },
    /// The state file holding the last seen checkpoint could not be used.
    #[error("state file {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
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
    pub trust: BundleTrust,
    /// Evidence policy (its `nonce` is replaced by a fresh one on every attestation).
    pub policy: BundlePolicy,
    /// File holding the last seen checkpoint note (created on first use).
    pub state_file: PathBuf,
    /// Time limit for each HTTP request.
    pub timeout: Duration,
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

/// The two tasks a CVM offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// `POST /v1/summarize`.
    Summarize,
    /// `POST /v1/suggest`.
    Suggest,
}

impl Task {
    fn path(self) -> &'static str {
        match self {
            Task::Summarize => "/v1/summarize",
            Task::Suggest => "/v1/suggest",
        }
    }
}

/// The client.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
}

#[derive(Deserialize)]
struct WireError {
    error: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct WireConsistency {
    old: u64,
    new: u64,
    hashes: Vec<String>,
}

#[derive(Deserialize)]
struct WireInclusion {
    index: u64,
    #[serde(rename = "tree_size")]
    size: u64,
    hashes: Vec<String>,
}

#[derive(Deserialize)]
struct WireEntry {
    index: u64,
    entry: String,
}

#[derive(Deserialize)]
struct WireReleases {
    revocations: Vec<WireEntry>,
}

#[derive(Deserialize)]
struct WireKeyConfigs {
    keyconfigs: Vec<WireEntry>,
}

#[derive(Deserialize)]
struct WireAnswer {
    output: String,
    tokens: u32,
    #[serde(default)]
    model_ms: Option<u64>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn decode_hashes(
    what: &'static str,
    url: &str,
    hashes: &[String],
) -> Result<Vec<Vec<u8>>, ClientError> {
    hashes
        .iter()
        .map(|h| {
            B64.decode(h).map_err(|e| ClientError::Malformed {
                what,
                url: url.to_owned(),
                reason: format!("hash is not base64: {e}"),
            })
        })
        .collect()
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ClientError::Http {
                what: "client set-up",
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Client { http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    async fn fetch(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let http_err = |e: reqwest::Error| ClientError::Http {
            what,
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let mut resp = request.send().await.map_err(http_err)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Http {
                    what,
                    url: url.to_owned(),
                    reason: format!("answer larger than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<WireError>(&body) {
                Ok(e) => (e.error, e.message),
                Err(_) => (
                    format!("http_{}", status.as_u16()),
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                ),
            };
            return Err(ClientError::Refused {
                what,
                url: url.to_owned(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok(body)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        url: String,
    ) -> Result<T, ClientError> {
        let body = self.fetch(what, self.http.get(&url), &url).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Malformed {
            what,
            url,
            reason: e.to_string(),
        })
    }

    fn log(&self, path: &str) -> String {
        format!("{}{path}", self.config.log_url.trim_end_matches('/'))
    }

    /// The last seen checkpoint from the state file, verified with the log key.
    pub fn last_seen(&self) -> Result<Option<SignedCheckpoint>, ClientError> {
        let path = &self.config.state_file;
        let state_err = |reason: String| ClientError::State {
            path: path.clone(),
            reason,
        };
        let note = match std::fs::read(path) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_err(e.to_string())),
        };
        if note.len() > MAX_STATE_BYTES {
            return Err(state_err(format!("larger than {MAX_STATE_BYTES} bytes")));
        }
        verify_checkpoint(&note, &self.config.trust.log)
            .map(Some)
            .map_err(|e: CheckpointError| {
                state_err(format!("stored checkpoint does not verify: {e}"))
            })
    }

    fn store_last_seen(&self, note: &[u8]) -> Result<(), ClientError> {
        write_atomically(&self.config.state_file, note).map_err(|e| ClientError::State {
            path: self.config.state_file.clone(),
            reason: e.to_string(),
        })
    }

    async fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProof, ClientError> {
        let url = self.log(&format!("/v1/proof/consistency?old={old}&new={new}"));
        let wire: WireConsistency = self.get_json("consistency proof", url.clone()).await?;
        let hashes = decode_hashes("consistency proof", &url, &wire.hashes)?;
        let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
        ConsistencyProof::from_raw(wire.old, wire.new, &refs).map_err(|e: ProofError| {
            ClientError::Malformed {
                what: "consistency proof",
                url,
                reason: e.to_string(),
            }
        })
    }

    /// Operator-signed revocations the log holds for `measurement`.
    async fn revocations(
        &self,
        measurement: &Measurement,
    ) -> Result<Vec<Measurement>, ClientError> {
        let url = self.log(&format!("/v1/releases/{}", measurement.to_hex()));
        let wire: WireReleases = self.get_json("revocations", url).await?;
        let mut revoked = Vec::new();
        for e in wire.revocations {
            let Ok(bytes) = B64.decode(&e.entry) else {
                continue;
            };
            // An entry that does not verify is not a revocation this client can act on.
            if let Ok(s) = verify_statement(&bytes, &self.config.trust.operators) {
                if let Statement::Revoke(r) = s.statement {
                    revoked.push(r.measurement);
                }
            }
        }
        Ok(revoked)
    }

    /// The log's current checkpoint, verified (signature and witness quorum) and proven
    /// consistent with `trusted`; `trusted` itself when the log has not grown.
    async fn newer_checkpoint(
        &self,
        trusted: &SignedCheckpoint,
    ) -> Result<SignedCheckpoint, ClientError> {
        let url = self.log("/checkpoint");
        let note = self.fetch("checkpoint", self.http.get(&url), &url).await?;
        let latest = verify_witnessed(&note, &self.config.trust.log, &self.config.trust.witnesses)
            .map_err(|source| ClientError::Checkpoint {
                url: url.clone(),
                source,
            })?
            .signed;
        let (old, new) = (trusted.checkpoint.size.0, latest.checkpoint.size.0);
        let proof = if old > 0 && old < new {
            Some(self.consistency(old, new).await?)
        } else {
            None
        };
        check_update(Some(trusted), &latest, proof.as_ref()).map_err(|e| ClientError::Bundle {
            url,
            source: BundleError::LastSeen(e),
        })?;
        Ok(latest)
    }

    /// Checks that `key_config` is logged (operator-signed, valid at `now`) under `cp` or,
    /// when it was logged after `cp`, under the log's current checkpoint. Returns its index
    /// and the checkpoint it is proven under.
    async fn key_config_logged(
        &self,
        url: &str,
        key_config: &[u8],
        key_id: u8,
        cp: SignedCheckpoint,
        now: u64,
    ) -> Result<(u64, SignedCheckpoint), ClientError> {
        let not_logged = |reason: String| ClientError::KeyConfigNotLogged {
            url: url.to_owned(),
            key_id,
            reason,
        };
        let list_url = self.log(&format!("/v1/keyconfigs/{key_id}"));
        let wire: WireKeyConfigs = self.get_json("key configs", list_url).await?;
        let size = cp.checkpoint.size.0;
        let mut seen_other = false;
        for e in wire.keyconfigs.iter().rev() {
            let Ok(bytes) = B64.decode(&e.entry) else {
                continue;
            };
            let Ok(signed) = verify_statement(&bytes, &self.config.trust.operators) else {
                continue;
            };
            let Statement::KeyConfig(k) = signed.statement else {
                continue;
            };
            if k.config != key_config {
                seen_other = true;
                continue;
            }
            if now < k.not_before || now > k.not_after {
                return Err(not_logged(format!(
                    "its statement at index {} is valid from {} to {}, now is {now}",
                    e.index, k.not_before, k.not_after
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
            let proof_url = self.log(&format!(
                "/v1/proof/inclusion?index={}&size={size}",
                e.index
            ));
            let wire: WireInclusion = self.get_json("inclusion proof", proof_url.clone()).await?;
            let hashes = decode_hashes("inclusion proof", &proof_url, &wire.hashes)?;
            let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
            if (wire.index, wire.size) != (e.index, size) {
                return Err(not_logged(format!(
                    "the log proved index {} in size {} when asked for {} in {size}",
                    wire.index, wire.size, e.index
                )));
            }
            InclusionProof::from_raw(wire.index, wire.size, &refs)
                .and_then(|p| p.verify(&LeafHash::of_entry(&bytes), &cp.checkpoint.root))
                .map_err(|err: ProofError| {
                    not_logged(format!(
                        "inclusion of index {} in size {size}: {err}",
                        e.index
                    ))
                })?;
            return Ok((e.index, cp));
        }
        Err(not_logged(if seen_other {
            "the log holds other key configs under this id, not this one".into()
        } else {
            "the log holds no operator-signed key config under this id".into()
        }))
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
        let body = self
            .fetch("attestation bundle", self.http.get(&url), &url)
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
                    Some(self.consistency(a.min(b), a.max(b)).await?)
                } else {
                    None
                }
            }
            None => None,
        };
        let mut trust_revoked = Vec::new();
        if let Some(Statement::Release(r)) = &release {
            trust_revoked = self.revocations(&r.measurement).await?;
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
        let (key_config_index, newest) = self
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
            self.store_last_seen(&newest.note)?;
        }
        Ok(VerifiedCvm {
            url: cvm_url,
            key_config,
            verdict,
            key_config_index,
            timings,
        })
    }

    /// Seals `text` to the verified CVM, sends it for `task`, and opens the answer.
    pub async fn ask(
        &self,
        cvm: &VerifiedCvm,
        task: Task,
        text: &str,
        max_tokens: Option<u32>,
    ) -> Result<Answer, ClientError> {
        let enc_err = |source| ClientError::Encapsulation {
            url: cvm.url.clone(),
            source,
        };
        let t = Instant::now();
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "text": text, "max_tokens": max_tokens }))
                .map_err(|e| ClientError::Malformed {
                    what: "request",
                    url: cvm.url.clone(),
                    reason: e.to_string(),
                })?,
        );
        let (request, context) =
            seal_request(&cvm.key_config, &plaintext, &mut OsRng).map_err(enc_err)?;
        let mut crypto = t.elapsed();

        let url = format!("{}{}", cvm.url, task.path());
        let t = Instant::now();
        let body = self
            .fetch(
                "encrypted request",
                self.http
                    .post(&url)
                    .header("content-type", "message/ohttp-req")
                    .body(request),
                &url,
            )
            .await?;
        let round_trip = t.elapsed();

        let t = Instant::now();
        let opened = open_response(&context, &body).map_err(enc_err)?;
        let answer: WireAnswer =
            serde_json::from_slice(&opened).map_err(|e| ClientError::Malformed {
                what: "answer",
                url: url.clone(),
                reason: e.to_string(),
            })?;
        crypto += t.elapsed();
        Ok(Answer {
            output: answer.output,
            tokens: answer.tokens,
            model_time: answer.model_ms.map(Duration::from_millis),
            round_trip,
            crypto,
        })
    }
}

/// Base64 in a query string: `+`, `/` and `=` percent-encoded.
fn urlencode_b64(b64: &str) -> String {
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// Replaces `path` with `bytes`: write a temporary file beside it, sync, rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
