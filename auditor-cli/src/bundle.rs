//! `verify-bundle`: checks a CVM's attestation bundle offline with
//! [`lucent_verifier::bundle::verify_bundle`] and reports each step's result.
//!
//! Offline by default: with no state directory the checkpoint is taken on first use. With a
//! state directory the bundle's checkpoint must be consistent with the last one seen; the
//! consistency proof is then computed from the log's hash tiles (`--log`), authenticated
//! against the bundle's checkpoint, and the bundle's checkpoint is stored once everything
//! verified.

use lucent_verifier::bundle::{
    verify_bundle, Bundle, BundlePolicy, BundleStep, EvidenceVerdict, LastSeen,
};
use lucent_verifier::checkpoint::verify_checkpoint;
use lucent_verifier::trust::TrustSettings;
use serde_json::{json, Value};

use crate::audit::Report;
use crate::fetch::{self, LogClient};
use crate::state::StateDir;
use crate::AuditError;

/// The steps, in order, with their names for output.
pub const STEPS: [(BundleStep, &str); 9] = [
    (
        BundleStep::CheckpointSignature,
        "checkpoint signed by the log key",
    ),
    (BundleStep::WitnessQuorum, "witness quorum"),
    (
        BundleStep::LastSeenConsistency,
        "consistent with the last seen checkpoint",
    ),
    (
        BundleStep::Inclusion,
        "release statement included under the checkpoint",
    ),
    (
        BundleStep::ReleaseSignature,
        "release signed by an operator",
    ),
    (
        BundleStep::ReleaseValidity,
        "release not expired, not revoked",
    ),
    (
        BundleStep::Evidence,
        "evidence chain to the vendor root, and policy",
    ),
    (
        BundleStep::MeasurementMatch,
        "evidence measurement equals the release's",
    ),
    (
        BundleStep::KeyBinding,
        "report data binds the key config (and nonce)",
    ),
];

/// Where the last seen checkpoint comes from.
pub struct LastSeenSource<'a> {
    /// The state directory.
    pub state: &'a StateDir,
    /// The log, to fetch a consistency proof from (none: offline, sizes must match).
    pub log: Option<&'a LogClient>,
}

/// Verifies a bundle at `now` and reports every step.
pub async fn verify(
    bytes: &[u8],
    trust: &TrustSettings,
    policy: &BundlePolicy,
    last_seen: Option<LastSeenSource<'_>>,
    now: u64,
) -> Result<Report, AuditError> {
    let bundle = Bundle::decode(bytes).map_err(|e| AuditError::Bundle(e.to_string()))?;
    let stored = match &last_seen {
        Some(src) => src.state.last_seen(&trust.log)?,
        None => None,
    };
    // A proof between the last seen size and the bundle's, when both are known and differ:
    // up from the last seen one, or, for an older bundle, from it up to the last seen one.
    let mut proof = None;
    if let (Some(src), Some(old)) = (&last_seen, &stored) {
        if let (Some(client), Ok(new)) =
            (src.log, verify_checkpoint(&bundle.checkpoint, &trust.log))
        {
            let (o, n) = (old.checkpoint.size.0, new.checkpoint.size.0);
            if o > 0 && o < n {
                proof = Some(fetch::prove_consistency(client, o, n, new.checkpoint.root).await?);
            } else if n > 0 && n < o {
                proof = Some(fetch::prove_consistency(client, n, o, old.checkpoint.root).await?);
            }
        }
    }
    let ls = stored.as_ref().map(|checkpoint| LastSeen {
        checkpoint,
        proof: proof.as_ref(),
    });
    let result = verify_bundle(&bundle, trust, policy, ls, now);
    let failed_step = result.as_ref().err().and_then(|e| e.step());
    let mut steps = Vec::new();
    let mut human = String::new();
    let mut reached_failure = false;
    for (step, name) in STEPS {
        let status = if reached_failure {
            "not reached"
        } else if Some(step) == failed_step {
            reached_failure = true;
            "FAILED"
        } else if result.is_err() && failed_step.is_none() {
            "not reached"
        } else {
            "ok"
        };
        human.push_str(&format!("  [{status:>11}] {name}\n"));
        steps.push(json!({"step": format!("{step:?}"), "name": name, "result": status}));
    }
    match result {
        Ok(v) => {
            if let Some(src) = &last_seen {
                if v.update.replaces_stored() {
                    src.state.store_last_seen(&v.checkpoint.signed)?;
                }
            }
            let evidence: Value = match &v.evidence {
                EvidenceVerdict::Snp(r) => {
                    json!({"platform": "sev-snp", "measurement": hex::encode(r.measurement)})
                }
                EvidenceVerdict::Tdx(_) => json!({"platform": "tdx"}),
            };
            let json = json!({
                "ok": true, "steps": steps, "release_version": v.release.version,
                "release_index": v.release_index, "release_signers": v.release_signers,
                "checkpoint_size": v.checkpoint.checkpoint().size.0,
                "measurement": v.release.measurement.to_hex(), "evidence": evidence,
                "key_config": hex::encode(&v.key_config),
            });
            let human = format!(
                "bundle OK: release {} (index {}, measurement {})\n{human}",
                v.release.version,
                v.release_index,
                v.release.measurement.to_hex()
            );
            Ok(Report::ok(json, human))
        }
        Err(e) => {
            let json = json!({"ok": false, "steps": steps, "error": e.to_string()});
            let human = format!("bundle REJECTED: {e}\n{human}");
            Ok(Report {
                json,
                human,
                failed: Some(e.to_string()),
            })
        }
    }
}
