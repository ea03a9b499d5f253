//! What a CDN serves: the keys a client needs (the gateway's key config, the issuer's key)
//! and each CVM's attestation bundle with its key config, as static files that carry their
//! own proofs of being logged. Any static file server or CDN can serve them; the client
//! verifies each against the log key and the witness quorum before use, so the files need no
//! trust in whoever serves them, and fetching them shows the operator nothing.
//!
//! | path (under the CDN's base URL) | body |
//! |---|---|
//! | [`GATEWAY_PATH`] | [`Published`]: the gateway's `keyconfig` statement |
//! | [`ISSUER_PATH`] | [`Published`]: the issuer's `issuer` statement |
//! | [`cvm_path`]`(key id)` | [`PublishedCvm`]: a CVM's bundle (no nonce) and its `keyconfig` statement |
//!
//! A [`Published`] is a statement note with a C2SP `tlog-proof` of its inclusion under a
//! checkpoint that the witness quorum cosigned. Verifying it ([`Published::verify`]) checks
//! the operator's signature, the checkpoint's log signature and witness quorum, and the
//! inclusion proof; it asks nobody. Without the last seen checkpoint's consistency check,
//! a split view would need the witnesses' collusion, as for any witnessed checkpoint.

use serde::{Deserialize, Serialize};

use crate::checkpoint::WitnessedCheckpoint;
use crate::merkle::LeafHash;
use crate::statement::{verify_statement, SignedStatement, StatementError};
use crate::tlog_proof::{TlogProof, TlogProofError};
use crate::trust::TrustSettings;

/// The gateway's key config statement.
pub const GATEWAY_PATH: &str = "/lucent/v1/gateway.json";
/// The issuer's key statement.
pub const ISSUER_PATH: &str = "/lucent/v1/issuer.json";
/// Largest published file a client reads (a bundle and a statement with their proofs).
pub const MAX_PUBLISHED_BYTES: usize = 1 << 20;

/// The path of the CVM with key id `key_id`.
pub fn cvm_path(key_id: u8) -> String {
    format!("/lucent/v1/cvms/{key_id}.json")
}

/// A logged statement with the proof that it is logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The statement note: the exact log entry.
    #[serde(with = "crate::log_api::bytes_b64")]
    pub statement: Vec<u8>,
    /// Its C2SP `tlog-proof` (text).
    pub proof: String,
}

/// A CVM's attestation bundle (taken without a nonce) and its key config statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedCvm {
    /// The CVM's base URL (where the gateway reaches it; clients do not).
    pub url: String,
    /// The `lucent/bundle/v1` JSON bytes.
    #[serde(with = "crate::log_api::bytes_b64")]
    pub bundle: Vec<u8>,
    /// The CVM's `keyconfig` statement.
    pub keyconfig: Published,
}

/// A published statement that verified.
#[derive(Clone, Debug)]
pub struct VerifiedPublished {
    /// The statement and who signed it.
    pub signed: SignedStatement,
    /// Its index in the log.
    pub index: u64,
    /// The witnessed checkpoint it is proven under.
    pub checkpoint: WitnessedCheckpoint,
}

/// Why a published statement was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishedError {
    /// The statement is not signed by a trusted operator, or does not parse.
    #[error("statement: {0}")]
    Statement(#[from] StatementError),
    /// The proof does not parse, its checkpoint fails, or the statement is not under it.
    #[error("log proof: {0}")]
    Proof(#[from] TlogProofError),
}

impl Published {
    /// The file for `statement` (a note) and its `tlog-proof`.
    pub fn new(statement: Vec<u8>, proof: &TlogProof) -> Self {
        Published {
            statement,
            proof: String::from_utf8_lossy(&proof.to_bytes()).into_owned(),
        }
    }

    /// Checks the operator's signature, then the proof: the checkpoint's log signature and
    /// witness quorum, and the statement's inclusion under it.
    pub fn verify(&self, trust: &TrustSettings) -> Result<VerifiedPublished, PublishedError> {
        let signed = verify_statement(&self.statement, &trust.operators)?;
        let proof = TlogProof::parse(self.proof.as_bytes())?;
        let checkpoint = proof.verify(
            &LeafHash::of_entry(&self.statement),
            &trust.log,
            &trust.witnesses,
        )?;
        Ok(VerifiedPublished {
            signed,
            index: proof.index,
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::checkpoint::{Checkpoint, LogKey};
    use crate::cosignature::{WitnessPolicy, WitnessSigner};
    use crate::merkle::{MemoryTree, TreeSize};
    use crate::note::{append_signatures, NoteSigner};
    use crate::statement::{KeyConfig, Statement};

    struct Fixture {
        trust: TrustSettings,
        file: Published,
        log: NoteSigner,
        witness: WitnessSigner,
    }

    /// A log of three entries whose middle one is an operator's key config statement, and
    /// the file for it under a witnessed checkpoint.
    fn fixture() -> Fixture {
        let mut rng = rand_core::OsRng;
        let log = NoteSigner::generate(&mut rng, "log.example").unwrap();
        let operator = NoteSigner::generate(&mut rng, "operator.example").unwrap();
        let witness = WitnessSigner::generate(&mut rng, "witness.example").unwrap();
        let statement = Statement::KeyConfig(KeyConfig {
            key_id: 3,
            config: vec![3, 0, 32, 1, 2],
            not_before: 1,
            not_after: 2,
        })
        .sign(&operator)
        .unwrap();
        let mut tree = MemoryTree::new();
        for e in [&b"first"[..], &statement, b"third"] {
            tree.push_entry(e);
        }
        let file = Published::new(statement, &proof_for(&tree, 1, &log, &witness));
        let trust = TrustSettings {
            log: LogKey::new(log.verifier_key()),
            witnesses: WitnessPolicy::new(vec![witness.witness_key()], 1).unwrap(),
            operators: vec![operator.verifier_key()],
            snp: crate::snp::SnpTrust::amd(),
            tdx: crate::tdx::TdxTrust::intel(),
            amd_crls: Default::default(),
            revoked: Vec::new(),
        };
        Fixture {
            trust,
            file,
            log,
            witness,
        }
    }

    fn proof_for(
        tree: &MemoryTree,
        index: u64,
        log: &NoteSigner,
        witness: &WitnessSigner,
    ) -> TlogProof {
        let size = tree.size().0;
        let cp = Checkpoint {
            origin: "log.example".into(),
            size: TreeSize(size),
            root: tree.root(),
            extension: String::new(),
        };
        let note = cp.sign(log).unwrap();
        let note = append_signatures(&note, &[witness.cosign(&cp.to_text().unwrap(), 9)]).unwrap();
        TlogProof {
            extra: None,
            index,
            hashes: tree.prove_inclusion(index, size).unwrap().hashes,
            checkpoint: note,
        }
    }

    #[test]
    fn a_published_statement_verifies_and_round_trips_as_json() {
        let f = fixture();
        let v = f.file.verify(&f.trust).unwrap();
        assert_eq!(v.index, 1);
        assert_eq!(v.checkpoint.checkpoint().size.0, 3);
        assert!(matches!(v.signed.statement, Statement::KeyConfig(_)));
        let json = serde_json::to_vec(&f.file).unwrap();
        assert_eq!(serde_json::from_slice::<Published>(&json).unwrap(), f.file);
    }

    #[test]
    fn every_forgery_is_refused_by_name() {
        let f = fixture();
        // Another operator's statement.
        let mut other = f.trust.clone();
        other.operators = vec![
            NoteSigner::generate(&mut rand_core::OsRng, "operator.example")
                .unwrap()
                .verifier_key(),
        ];
        assert!(matches!(
            f.file.verify(&other),
            Err(PublishedError::Statement(_))
        ));
        // A statement changed after signing.
        let mut changed = f.file.clone();
        let at = changed.statement.len() / 3;
        changed.statement[at] ^= 1;
        assert!(matches!(
            changed.verify(&f.trust),
            Err(PublishedError::Statement(_))
        ));
        // The proof of another index (an honest statement not at the position claimed).
        let mut tree = MemoryTree::new();
        for e in [&b"first"[..], &f.file.statement, b"third"] {
            tree.push_entry(e);
        }
        let wrong_index = Published::new(
            f.file.statement.clone(),
            &proof_for(&tree, 2, &f.log, &f.witness),
        );
        assert!(matches!(
            wrong_index.verify(&f.trust),
            Err(PublishedError::Proof(TlogProofError::Inclusion { .. }))
        ));
        // A checkpoint no witness cosigned.
        let mut unwitnessed = proof_for(&tree, 1, &f.log, &f.witness);
        let cp = Checkpoint {
            origin: "log.example".into(),
            size: TreeSize(3),
            root: tree.root(),
            extension: String::new(),
        };
        unwitnessed.checkpoint = cp.sign(&f.log).unwrap();
        let file = Published::new(f.file.statement.clone(), &unwitnessed);
        assert!(matches!(
            file.verify(&f.trust),
            Err(PublishedError::Proof(TlogProofError::Checkpoint(_)))
        ));
        // Not a proof at all.
        let garbage = Published {
            statement: f.file.statement.clone(),
            proof: "c2sp.org/tlog-proof@v1\nindex x\n\n".into(),
        };
        assert!(matches!(
            garbage.verify(&f.trust),
            Err(PublishedError::Proof(TlogProofError::Malformed(_)))
        ));
    }
}
