//! Key release (DESIGN.md flow 4): ask the broker for a nonce, attest with it bound, send
//! the bundle (and a consistency proof from the broker's last seen size), open the sealed
//! weights key with this boot's private key, decrypt the `lucentw1` weights in memory, check
//! their digest against the release, and load the model. The messages, the opening and the
//! weights format are [`lucent_verifier::key_release`]'s, the broker's contract.

use std::path::Path;
use std::time::Duration;

use lucent_model::{LanguageModel, ModelLimits};
use lucent_verifier::encapsulation::KeyPair;
use lucent_verifier::key_release::{
    open_sealed_key, weights, KeyRequestBody, KeyResponse, NonceResponse, KEY_PATH,
    MAX_ANSWER_BYTES, NONCE_PATH,
};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::attester::Attester;
use crate::boot::{attest, SelfCheck};
use crate::error::Closed;
use lucent_client::log::{fetch, FetchError};
use lucent_client::LogClient;

/// POSTs `body` (as JSON, if any) to the broker's `path` and reads its JSON answer.
async fn post_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    broker: &str,
    path: &str,
    what: &'static str,
    body: Option<&KeyRequestBody>,
) -> Result<T, FetchError> {
    let url = format!("{broker}{path}");
    let request = match body {
        Some(body) => http.post(&url).json(body),
        None => http.post(&url),
    };
    let bytes = fetch(what, &url, request, MAX_ANSWER_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|e| FetchError::Malformed {
        what,
        url,
        reason: e.to_string(),
    })
}

/// Gets the weights key and loads the model.
#[allow(clippy::too_many_arguments)]
pub async fn release_and_load(
    http: &reqwest::Client,
    broker_url: &str,
    log: &LogClient,
    attester: &dyn Attester,
    keypair: &KeyPair,
    check: &SelfCheck,
    weights_file: &Path,
    limits: ModelLimits,
    timeout: Duration,
) -> Result<LanguageModel, Closed> {
    let size = check.log_size();
    let closed = |code: &'static str, reason: String| Closed {
        code,
        measurement: Some(check.measurement.clone()),
        log_size: Some(size),
        reason,
    };
    let broker = broker_url.trim_end_matches('/');
    // A broker that cannot be reached may come back; one that refuses or answers nonsense
    // will not, until something changes.
    let broker_error = |e: FetchError| match e {
        FetchError::Refused { code, message, .. } => closed(
            "key_refused",
            format!("the broker refused ({code}): {message}"),
        ),
        FetchError::Http { .. } => closed("broker_unreachable", e.to_string()),
        other => closed("key_refused", other.to_string()),
    };
    let exchange = async {
        let grant: NonceResponse = post_json(http, broker, NONCE_PATH, "broker nonce", None)
            .await
            .map_err(broker_error)?;
        let nonce = grant
            .nonce_bytes()
            .map_err(|e| closed("key_refused", format!("broker nonce answer: {e}")))?;
        let consistency = match grant.last_seen_size {
            Some(old) if old < size => Some(
                log.consistency(old, size)
                    .await
                    .map_err(|e| closed("log_unreachable", e.to_string()))?,
            ),
            Some(old) if old > size => {
                return Err(closed(
                    "key_refused",
                    format!(
                    "the broker has seen the log at size {old}, newer than this runtime's {size}; \
                         the next self-check catches up"
                ),
                ))
            }
            _ => None,
        };
        let evidence = attest(attester, &check.bundle.key_config, Some(&nonce))?;
        let mut bundle = check.bundle.clone();
        bundle.evidence = evidence.evidence;
        let body = KeyRequestBody::new(&nonce, &bundle, consistency.as_ref())
            .map_err(|e| closed("key_refused", e.to_string()))?;
        let answer: KeyResponse = post_json(http, broker, KEY_PATH, "broker key", Some(&body))
            .await
            .map_err(broker_error)?;
        let sealed = answer
            .sealed_key_bytes()
            .map_err(|e| closed("key_refused", e.to_string()))?;
        open_sealed_key(keypair, &sealed).map_err(|e| closed("key_refused", e.to_string()))
    };
    let key = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            closed(
                "broker_unreachable",
                format!(
                    "the broker did not answer within {} ms",
                    timeout.as_millis()
                ),
            )
        })??;

    let file = weights_file.to_owned();
    let want = check.verdict.release.model;
    let load = move || -> Result<LanguageModel, (&'static str, String)> {
        let encrypted = std::fs::read(&file)
            .map_err(|e| ("model_failed", format!("reading {}: {e}", file.display())))?;
        let plain: Zeroizing<Vec<u8>> = weights::decrypt(&key, &encrypted)
            .map_err(|e| ("model_failed", format!("decrypting the weights: {e}")))?;
        drop(key);
        let got: [u8; 32] = Sha256::digest(&plain[..]).into();
        if got != want {
            return Err((
                "model_mismatch",
                format!(
                    "decrypted weights have SHA-256 {}, the release names {}",
                    hex::encode(got),
                    hex::encode(want)
                ),
            ));
        }
        LanguageModel::from_gguf_bytes(&plain, limits)
            .map_err(|e| ("model_failed", format!("loading the model: {e}")))
    };
    tokio::task::spawn_blocking(load)
        .await
        .map_err(|e| closed("model_failed", e.to_string()))?
        .map_err(|(code, reason)| closed(code, reason))
}
