//! The boot self-check (DESIGN.md flow 3): attest with `report_data` binding this boot's key
//! config, find the runtime's own release in the log by measurement, fetch the latest
//! checkpoint and the release's inclusion proof, and verify the resulting bundle with
//! [`lucent_verifier::bundle::verify_bundle`] under the measured configuration's trust (log
//! key, witness policy, operators) plus the operator-signed revocations the log holds.
//!
//! Anything short of a verified bundle is a [`Closed`] naming the measurement and the log
//! size checked. Nothing here re-implements a check: every decision is `verify_bundle`'s.

use std::time::Duration;

use lucent_client::LogClient;
use lucent_verifier::binding::report_data;
use lucent_verifier::bundle::{verify_bundle, Bundle, BundleError, BundleVerdict, LastSeen};
use lucent_verifier::checkpoint::{verify_checkpoint, SignedCheckpoint};

use crate::attester::{Attester, Evidence};
use crate::config::RuntimeConfig;
use crate::error::Closed;

/// A verified self-check: the bundle (evidence without a nonce) and its verdict.
#[derive(Debug, Clone)]
pub struct SelfCheck {
    /// The bundle this runtime hands out (fresh evidence replaces its evidence per nonce).
    pub bundle: Bundle,
    /// What `verify_bundle` established.
    pub verdict: BundleVerdict,
    /// The evidence's measurement (hex).
    pub measurement: String,
}

impl SelfCheck {
    /// The verified checkpoint's size.
    pub fn log_size(&self) -> u64 {
        self.verdict.checkpoint.checkpoint().size.0
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Attests with `report_data(key_config, nonce)`.
pub fn attest(
    attester: &dyn Attester,
    key_config: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Evidence, Closed> {
    attester
        .attest(&report_data(key_config, nonce))
        .map_err(|e| Closed {
            code: "attestation_failed",
            measurement: None,
            log_size: None,
            reason: e.to_string(),
        })
}

/// Runs the self-check. `last_seen` is the checkpoint the previous check verified (kept in
/// memory only): the new one must be consistent with it.
pub async fn self_check(
    config: &RuntimeConfig,
    attester: &dyn Attester,
    log: &LogClient,
    key_config: &[u8],
    last_seen: Option<&SignedCheckpoint>,
    timeout: Duration,
) -> Result<SelfCheck, Closed> {
    let evidence = attest(attester, key_config, None)?;
    let measurement = evidence.measurement.to_hex();
    let closed = |code: &'static str, log_size: Option<u64>, reason: String| Closed {
        code,
        measurement: Some(measurement.clone()),
        log_size,
        reason,
    };
    let fetch = async {
        let note = log
            .checkpoint()
            .await
            .map_err(|e| closed("log_unreachable", None, e.to_string()))?;
        // The size decides which proofs to fetch; `verify_bundle` checks it all again.
        let signed = verify_checkpoint(&note, &config.trust.log).map_err(|e| {
            closed(
                "unverifiable",
                None,
                format!("the log's checkpoint does not verify with the configured log key: {e}"),
            )
        })?;
        let size = signed.checkpoint.size.0;
        let lookup = log
            .releases(&evidence.measurement)
            .await
            .map_err(|e| closed("log_unreachable", Some(size), e.to_string()))?;
        // The newest operator-signed release of this measurement under the checkpoint.
        let found = lookup
            .newest_release(&config.trust.operators, &evidence.measurement, size)
            .map(|e| (e.index, e.entry.clone()));
        let Some((index, release)) = found else {
            return Err(closed(
                "not_logged",
                Some(size),
                format!(
                    "no operator-signed release of this measurement is in the log (size {size})"
                ),
            ));
        };
        // Revocations act as soon as an operator signed them, logged under this checkpoint
        // or not yet.
        let revoked = lookup.verified_revocations(&config.trust.operators);
        let inclusion = log
            .inclusion(index, size)
            .await
            .map_err(|e| closed("log_unreachable", Some(size), e.to_string()))?;
        let consistency = match last_seen {
            Some(old) if old.checkpoint.size.0 < size => Some(
                log.consistency(old.checkpoint.size.0, size)
                    .await
                    .map_err(|e| closed("log_unreachable", Some(size), e.to_string()))?,
            ),
            _ => None,
        };
        Ok((note, size, release, inclusion, revoked, consistency))
    };
    let (note, size, release, inclusion, revoked, consistency) =
        tokio::time::timeout(timeout, fetch).await.map_err(|_| {
            closed(
                "log_unreachable",
                None,
                format!("the log did not answer within {} ms", timeout.as_millis()),
            )
        })??;

    let bundle = Bundle {
        evidence: evidence.evidence,
        key_config: key_config.to_vec(),
        release,
        inclusion,
        checkpoint: note,
    };
    let mut trust = config.trust.clone();
    trust.revoked.extend(revoked);
    let verdict = verify_bundle(
        &bundle,
        &trust,
        &config.policy,
        last_seen.map(|checkpoint| LastSeen {
            checkpoint,
            proof: consistency.as_ref(),
        }),
        now_unix(),
    )
    .map_err(|e| {
        let code = match &e {
            BundleError::ReleaseExpired { .. } => "expired",
            BundleError::ReleaseRevoked { .. } => "revoked",
            _ => "unverifiable",
        };
        closed(code, Some(size), e.to_string())
    })?;
    Ok(SelfCheck {
        bundle,
        verdict,
        measurement,
    })
}
