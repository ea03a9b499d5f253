//! The boot self-check (DESIGN.md flow 3), run at start and on every tick: attest with
//! `report_data` binding this boot's key config, bring the runtime's own view of the log up
//! to date ([`lucent_client::follow`]: every entry read and checked against a witnessed
//! checkpoint), find its own release there by measurement, and verify the resulting bundle
//! with [`lucent_verifier::bundle::verify_bundle`] under the measured configuration's trust
//! plus every revocation an operator logged. Inclusion and consistency proofs come from the
//! entries the follower read, not from the log.
//!
//! When the log, a replica or the witnesses cannot be reached (or are behind), the last
//! verified view stands for `max_log_view_age_secs`; the bundle is still verified at the
//! current time, so the release's not-after closes the runtime whatever the network does.
//!
//! Anything short of a verified bundle is a [`Closed`] naming the measurement and the log
//! size checked. Nothing here re-implements a check: every decision is `verify_bundle`'s.

use std::time::Duration;

use lucent_client::follow::{FollowError, Follower};
use lucent_client::FetchError;
use lucent_verifier::binding::report_data;
use lucent_verifier::bundle::{verify_bundle, Bundle, BundleError, BundleVerdict, LastSeen};
use lucent_verifier::checkpoint::SignedCheckpoint;

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

/// The system clock, in Unix seconds.
pub fn now_unix() -> u64 {
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

/// Runs the self-check at `now` (Unix seconds). `last_seen` is the checkpoint the previous
/// check verified (kept in memory only): the new one must be consistent with it.
pub async fn self_check(
    config: &RuntimeConfig,
    attester: &dyn Attester,
    follower: &Follower,
    key_config: &[u8],
    last_seen: Option<&SignedCheckpoint>,
    timeout: Duration,
    now: u64,
) -> Result<SelfCheck, Closed> {
    let evidence = attest(attester, key_config, None)?;
    let measurement = evidence.measurement.to_hex();
    let closed = |code: &'static str, log_size: Option<u64>, reason: String| Closed {
        code,
        measurement: Some(measurement.clone()),
        log_size,
        reason,
    };
    // Bring the view up to date; an outage leaves the last one standing, within its age.
    // (whether the failure is one of availability, its code without a view, why)
    let synced = match tokio::time::timeout(timeout, follower.sync(now)).await {
        Ok(r) => r.map_err(|e| {
            let code = match e {
                FollowError::Fetch(FetchError::Http { .. } | FetchError::Refused { .. }) => {
                    "log_unreachable"
                }
                _ => "unverifiable",
            };
            (e.is_availability(), code, e.to_string())
        }),
        Err(_) => Err((
            true,
            "log_unreachable",
            format!("the log did not answer within {} ms", timeout.as_millis()),
        )),
    };
    let view = follower.view();
    let view = match (synced, view) {
        (Ok(_), Some(view)) => view,
        (Err((true, _, reason)), Some(view)) => {
            let age = view.age(now);
            let limit = config.file.max_log_view_age_secs;
            if age > limit {
                return Err(closed(
                    "log_view_stale",
                    Some(view.size()),
                    format!(
                        "the view of the log was last confirmed {age} s ago (limit {limit} s): \
                         {reason}"
                    ),
                ));
            }
            tracing::warn!(
                %reason,
                view_age_secs = age,
                limit_secs = limit,
                "could not confirm the view of the log; keeping the last verified view"
            );
            view
        }
        (Err((true, code, reason)), None) => return Err(closed(code, None, reason)),
        (Err((false, _, reason)), view) => {
            return Err(closed(
                "unverifiable",
                view.map(|v| v.size()),
                format!("the log's answer does not verify: {reason}"),
            ))
        }
        (Ok(_), None) => {
            return Err(closed(
                "internal",
                None,
                "the follower has no view after a sync".into(),
            ))
        }
    };
    let size = view.size();
    // The newest operator-signed release of this measurement in the view.
    let Some(release) = view.newest_release(&evidence.measurement) else {
        return Err(closed(
            "not_logged",
            Some(size),
            format!("no operator-signed release of this measurement is in the log (size {size})"),
        ));
    };
    let inclusion = view.prove_inclusion(release.index).ok_or_else(|| {
        closed(
            "internal",
            Some(size),
            format!("no inclusion proof of entry {} in the view", release.index),
        )
    })?;
    let consistency = last_seen
        .map(|l| l.checkpoint.size.0)
        .filter(|&old| old > 0 && old < size)
        .and_then(|old| view.prove_consistency(old));

    let bundle = Bundle {
        evidence: evidence.evidence,
        key_config: key_config.to_vec(),
        release: release.entry.clone(),
        inclusion,
        checkpoint: view.checkpoint().signed.note.clone(),
    };
    // Every revocation an operator logged acts, whatever the configuration says.
    let mut trust = config.trust.clone();
    trust.revoked.extend(view.revoked().cloned());
    let verdict = verify_bundle(
        &bundle,
        &trust,
        &config.policy,
        last_seen.map(|checkpoint| LastSeen {
            checkpoint,
            proof: consistency.as_ref(),
        }),
        now,
    )
    .map_err(|e| {
        let code = match &e {
            BundleError::ReleaseExpired { .. } => "expired",
            BundleError::ReleaseRevoked { .. } => "revoked",
            _ => "unverifiable",
        };
        let reason = match view.revocations(&evidence.measurement).first() {
            Some(r) if code == "revoked" => {
                format!("{e} (logged at index {}: {})", r.index, r.reason)
            }
            _ => e.to_string(),
        };
        closed(code, Some(size), reason)
    })?;
    Ok(SelfCheck {
        bundle,
        verdict,
        measurement,
    })
}
