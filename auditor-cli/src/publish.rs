//! `keygen` and `publish`: operator and witness keys; building, signing and submitting
//! `release`, `keyconfig` and `revoke` statements; and checking the log's answer (its
//! inclusion proof under a checkpoint signed by the log key) when asked to wait.

use std::io::Write as _;
use std::path::Path;

use lucent_verifier::checkpoint::{verify_checkpoint, LogKey};
use lucent_verifier::cosignature::WitnessSigner;
use lucent_verifier::log_api::{ErrorBody, SubmitAnswer};
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::{KeyError, NoteSigner};
use lucent_verifier::privacy_pass::IssuerPublicKey;
use lucent_verifier::statement::{
    parse_unverified, Issuer, KeyConfig, Measurement, Platform, Release, Revoke, Statement,
};
use serde_json::json;

use crate::audit::Report;
use crate::fetch::LogClient;
use crate::measure::{self, MeasureInputs};
use crate::{witness, AuditError};

/// Writes a new private key file with mode 0600; refuses to overwrite one.
pub fn write_private(path: &Path, text: &str) -> Result<(), AuditError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| AuditError::io(path, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io(path, e))
}

/// The error for a key name that a key cannot have.
fn bad_name(name: &str) -> impl FnOnce(KeyError) -> AuditError + '_ {
    move |source| AuditError::Key {
        what: format!("name {name:?}"),
        source,
    }
}

/// Makes an operator (statement-signing) key; returns its verifier key text.
pub fn keygen_operator(name: &str, out: &Path) -> Result<String, AuditError> {
    let signer = NoteSigner::generate(&mut rand_core::OsRng, name).map_err(bad_name(name))?;
    write_private(out, &format!("{}\n", signer.to_private_string()))?;
    Ok(signer.verifier_key().to_string())
}

/// Makes a witness (`cosignature/v1`) key; returns its verifier key text.
pub fn keygen_witness(name: &str, out: &Path) -> Result<String, AuditError> {
    let signer = WitnessSigner::generate(&mut rand_core::OsRng, name).map_err(bad_name(name))?;
    write_private(out, &witness::key_file_text(&signer))?;
    Ok(signer.witness_key().as_str().to_owned())
}

/// Reads an operator private key file.
pub fn load_operator_key(path: &Path) -> Result<NoteSigner, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
    NoteSigner::parse(text.trim()).map_err(|source| AuditError::Key {
        what: path.display().to_string(),
        source,
    })
}

fn hex_bytes(what: &'static str, s: &str) -> Result<Vec<u8>, AuditError> {
    hex::decode(s).map_err(|_| AuditError::Usage(format!("{what}: {s:?} is not hex")))
}

fn hex32(what: &'static str, s: &str) -> Result<[u8; 32], AuditError> {
    hex_bytes(what, s)?
        .try_into()
        .map_err(|_| AuditError::Usage(format!("{what}: want 32 bytes of hex")))
}

fn platform(s: &str) -> Result<Platform, AuditError> {
    match s {
        "sev-snp" => Ok(Platform::SevSnp),
        "tdx" => Ok(Platform::Tdx),
        _ => Err(AuditError::Usage(format!(
            "platform {s:?}: want sev-snp or tdx"
        ))),
    }
}

fn measurement(p: Platform, hex: &str) -> Result<Measurement, AuditError> {
    Measurement::new(p, &hex_bytes("measurement", hex)?).map_err(|source| AuditError::Statement {
        index: None,
        source,
    })
}

/// What a release is built from.
#[derive(Debug, Clone)]
pub struct ReleaseInput {
    /// `sev-snp` or `tdx`.
    pub platform: String,
    /// The measurement (hex); for SEV-SNP it is computed from the artifacts and, when
    /// given, must match.
    pub measurement: Option<String>,
    /// Artifacts and VM shape (for SEV-SNP also the measurement inputs).
    pub artifacts: MeasureInputs,
    /// Release version.
    pub version: String,
    /// Source repository URL.
    pub source: String,
    /// Source commit (hex).
    pub commit: String,
    /// Model weights digest (hex, 32 bytes).
    pub model: String,
    /// Minimum TCB (hex).
    pub min_tcb: String,
    /// Not valid after (Unix seconds).
    pub not_after: u64,
}

/// Builds a release statement, computing the SEV-SNP measurement from the artifacts.
pub fn build_release(r: &ReleaseInput) -> Result<Statement, AuditError> {
    let p = platform(&r.platform)?;
    let a = &r.artifacts;
    let (m, digests) = match p {
        Platform::SevSnp => {
            let measured = measure::measure(a)?;
            let computed = hex::encode(measured.measurement);
            if let Some(given) = &r.measurement {
                if given.to_ascii_lowercase() != computed {
                    return Err(AuditError::MeasurementMismatch(format!(
                        "--measurement {given} but the artifacts measure {computed}"
                    )));
                }
            }
            let d = (
                measured.firmware,
                measured.kernel,
                measured.initrd,
                measured.cmdline,
            );
            (measurement(p, &computed)?, d)
        }
        Platform::Tdx => {
            let given = r
                .measurement
                .as_deref()
                .ok_or_else(|| AuditError::Usage("a TDX release needs --measurement".into()))?;
            let file = |p: Option<&std::path::PathBuf>| -> Result<[u8; 32], AuditError> {
                use sha2::{Digest as _, Sha256};
                let data = match p {
                    Some(p) => std::fs::read(p).map_err(|e| AuditError::io(p, e))?,
                    None => Vec::new(),
                };
                Ok(Sha256::digest(&data).into())
            };
            let d = (
                file(Some(&a.ovmf))?,
                file(a.kernel.as_ref())?,
                file(a.initrd.as_ref())?,
                measure::cmdline_digest(a.append.as_deref()),
            );
            (measurement(p, given)?, d)
        }
    };
    Ok(Statement::Release(Release {
        measurement: m,
        version: r.version.clone(),
        source: r.source.clone(),
        commit: hex_bytes("commit", &r.commit)?,
        firmware: digests.0,
        kernel: digests.1,
        initrd: digests.2,
        cmdline: digests.3,
        vcpus: a.vcpus,
        vcpu_type: a.vcpu_type.clone(),
        guest_features: a.guest_features,
        vmm_type: a.vmm_type.clone(),
        model: hex32("model", &r.model)?,
        min_tcb: hex_bytes("min-tcb", &r.min_tcb)?,
        not_after: r.not_after,
    }))
}

/// Builds a key config statement.
pub fn build_keyconfig(key_id: u8, config: Vec<u8>, not_before: u64, not_after: u64) -> Statement {
    Statement::KeyConfig(KeyConfig {
        key_id,
        config,
        not_before,
        not_after,
    })
}

/// Builds an issuer key statement.
pub fn build_issuer(
    name: &str,
    public_key: &str,
    not_before: u64,
    not_after: u64,
) -> Result<Statement, AuditError> {
    let public_key = IssuerPublicKey::parse(&hex_bytes("public-key", public_key)?)
        .map_err(|e| AuditError::Usage(format!("--public-key: {e}")))?;
    Ok(Statement::Issuer(Issuer {
        name: name.to_owned(),
        public_key,
        not_before,
        not_after,
    }))
}

/// Builds a revocation statement.
pub fn build_revoke(platform_name: &str, m: &str, reason: &str) -> Result<Statement, AuditError> {
    let p = platform(platform_name)?;
    Ok(Statement::Revoke(Revoke {
        measurement: measurement(p, m)?,
        reason: reason.to_owned(),
    }))
}

/// Signs a statement (checked by parsing it back).
pub fn sign(st: &Statement, key: &NoteSigner) -> Result<Vec<u8>, AuditError> {
    st.sign(key).map_err(|source| AuditError::Statement {
        index: None,
        source,
    })
}

/// Submits a signed statement; with `wait`, checks the returned inclusion proof under a
/// checkpoint signed by `log` (when given) and, with `published_out`, writes the statement
/// and its `tlog-proof` there as a CDN file ([`lucent_verifier::published::Published`]).
pub async fn submit(
    client: &LogClient,
    note: &[u8],
    wait: u64,
    log: Option<&LogKey>,
    published_out: Option<&std::path::Path>,
) -> Result<Report, AuditError> {
    parse_unverified(note).map_err(|source| AuditError::Statement {
        index: None,
        source,
    })?;
    let leaf = LeafHash::of_entry(note);
    let (status, v) = client.submit(note, wait).await?;
    let url = client.url("v1/statements");
    let malformed = |e: serde_json::Error| AuditError::Fetch {
        url: url.clone(),
        why: format!("malformed answer: {e}"),
    };
    if !(200..300).contains(&status) {
        let err: ErrorBody = serde_json::from_value(v.clone()).map_err(malformed)?;
        if status == 409 && err.error == "already_logged" {
            let json = json!({"ok": true, "already_logged": true, "index": err.index, "leaf_hash": leaf.to_string()});
            let at = err.index.map_or_else(|| "?".into(), |i| i.to_string());
            let human = format!("already logged at index {at} (leaf {leaf})\n");
            return Ok(Report::ok(json, human));
        }
        return Err(AuditError::Refused {
            url,
            status,
            code: err.error,
            message: err.message,
        });
    }
    let answer: SubmitAnswer = serde_json::from_value(v.clone()).map_err(malformed)?;
    let index = answer.index;
    let mut human = format!("submitted: index {index}, leaf {leaf}\n");
    let mut json = json!({
        "ok": true, "index": index, "leaf_hash": leaf.to_string(), "status": status,
        "inclusion_verified": false, "log_answer": v,
    });
    match (log, &answer.checkpoint) {
        (Some(log), Some(_)) => match verify_submitted(&answer, &leaf, log) {
            Ok((size, root)) => {
                json["inclusion_verified"] = json!(true);
                human.push_str(&format!(
                    "  included under the log-signed checkpoint of size {size} (root {root}): \
                     proof verified\n"
                ));
            }
            Err(e) => {
                // The statement is logged whatever we think of the answer: say where, so
                // that nobody publishes it again.
                json["ok"] = json!(false);
                json["verification_error"] = json!(e.to_string());
                return Ok(Report {
                    json,
                    human,
                    failed: Some(format!(
                        "the statement is logged at index {index}, but the log's proof of it \
                         did not verify: {e}"
                    )),
                });
            }
        },
        (None, Some(_)) => human.push_str("  included (proof not checked: no --log-key given)\n"),
        (_, None) if wait > 0 => human.push_str("  not yet covered by a published checkpoint\n"),
        (_, None) => {}
    }
    if let Some(path) = published_out {
        let Some(proof) = &answer.tlog_proof else {
            return Ok(Report {
                json,
                human,
                failed: Some(format!(
                    "the statement is logged at index {index}, but no witnessed checkpoint \
                     covered it within --wait; {} not written",
                    path.display()
                )),
            });
        };
        let file = lucent_verifier::published::Published {
            statement: note.to_vec(),
            proof: proof.clone(),
        };
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| AuditError::Usage(e.to_string()))?;
        crate::state::write_atomic(path, &bytes)?;
        json["published_out"] = json!(path.display().to_string());
        human.push_str(&format!(
            "  statement and proof written to {}\n",
            path.display()
        ));
    }
    Ok(Report::ok(json, human))
}

/// Checks the checkpoint and inclusion proof a submission was answered with; the checkpoint's
/// size and root.
fn verify_submitted(
    answer: &SubmitAnswer,
    leaf: &LeafHash,
    log: &LogKey,
) -> Result<(u64, lucent_verifier::merkle::Hash), AuditError> {
    let (Some(cp), Some(proof), Some(size)) =
        (&answer.checkpoint, answer.proof(), answer.tree_size)
    else {
        return Err(AuditError::NotIncluded {
            what: format!("leaf {leaf}"),
            why: "the answer carries a checkpoint without a proof".into(),
        });
    };
    let signed = verify_checkpoint(cp.as_bytes(), log)?;
    let proof = proof?;
    if signed.checkpoint.size.0 != size {
        return Err(AuditError::NotIncluded {
            what: format!("leaf {leaf}"),
            why: format!(
                "proof is for size {size}, checkpoint is {}",
                signed.checkpoint.size
            ),
        });
    }
    proof.verify(leaf, &signed.checkpoint.root)?;
    Ok((size, signed.checkpoint.root))
}

/// Reads a `--not-after`: Unix seconds, or a time from `now` as `+<n>d`, `+<n>h` or `+<n>s`.
pub fn parse_not_after(text: &str, now: u64) -> Result<u64, AuditError> {
    let bad = || {
        AuditError::Usage(format!(
            "--not-after {text:?}: want Unix seconds, or +<n>d, +<n>h or +<n>s from now"
        ))
    };
    let Some(rel) = text.strip_prefix('+') else {
        return text.parse().map_err(|_| bad());
    };
    let (n, unit) = rel.split_at(rel.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "s" => Some(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    now.checked_add(secs).ok_or_else(bad)
}

/// Refuses a release valid for longer than verifiers accept
/// ([`lucent_verifier::bundle::DEFAULT_MAX_RELEASE_LIFETIME_SECS`] from now): every broker,
/// CVM and client would refuse it until its not-after came within reach. Releases are
/// re-published before they expire instead.
pub fn check_release_lifetime(not_after: u64, now: u64) -> Result<(), AuditError> {
    let max = lucent_verifier::bundle::DEFAULT_MAX_RELEASE_LIFETIME_SECS;
    if not_after > now.saturating_add(max) {
        return Err(AuditError::Usage(format!(
            "--not-after {not_after} is {} days from now; verifiers refuse releases valid for \
             more than {} days (re-publish the release before it expires, e.g. --not-after +30d)",
            (not_after - now) / 86_400,
            max / 86_400
        )));
    }
    Ok(())
}

#[cfg(test)]
mod lifetime_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn not_after_is_absolute_or_relative_and_at_most_the_maximum_lifetime() {
        let now = 1_800_000_000;
        assert_eq!(parse_not_after("1800086400", now).unwrap(), 1_800_086_400);
        assert_eq!(parse_not_after("+1d", now).unwrap(), now + 86_400);
        assert_eq!(parse_not_after("+2h", now).unwrap(), now + 7_200);
        assert_eq!(parse_not_after("+30s", now).unwrap(), now + 30);
        for bad in [
            "",
            "+",
            "+d",
            "+1w",
            "soon",
            "-1d",
            "+99999999999999999999d",
        ] {
            let e = parse_not_after(bad, now).unwrap_err().to_string();
            assert!(e.contains("want Unix seconds"), "{bad}: {e}");
        }
        check_release_lifetime(now + 30 * 86_400, now).unwrap();
        let e = check_release_lifetime(now + 30 * 86_400 + 1, now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 30 days"), "{e}");
    }
}
