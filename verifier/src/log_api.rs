//! The log's HTTP API beside C2SP `tlog-tiles`: the JSON answers of submission, entries,
//! proofs and lookups, and the error answer every Lucent service gives. The log server
//! serialises these types and every reader (the embedded client, the CVM runtime, the key
//! broker, the auditor, the tests) deserialises the same ones; nobody declares them again.
//!
//! Encodings: hashes in proofs are base64 (as in C2SP `tlog-proof`), leaf hashes are hex,
//! entries are the base64 of their exact bytes, checkpoints are the note's text. A field
//! that does not decode is a deserialisation error, so a reader never sees a half-valid
//! answer.
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /v1/statements[?wait=N]` | [`SubmitAnswer`] (200, or 202 when no checkpoint covers it yet) |
//! | `GET /v1/entries/{index}` | [`Entry`] |
//! | `GET /v1/proof/inclusion?index=I\|leaf_hash=H[&size=S]` | [`InclusionAnswer`] |
//! | `GET /v1/proof/consistency?old=A[&new=B]` | [`ConsistencyAnswer`] |
//! | `GET /v1/releases/{measurement hex}[?before=I]` | [`ReleasesAnswer`], one page |
//! | `GET /v1/keyconfigs/{key id}[?before=I]` | [`KeyConfigsAnswer`], one page |
//! | `GET /v1/issuers/{token key id hex}[?before=I]` | [`IssuersAnswer`], one page |
//! | `GET /v1/log` | [`LogInfo`] |
//! | `GET /healthz` | [`Health`] |
//! | any failure | [`ErrorBody`] with a stable `error` code |
//!
//! Lookups answer newest first, one page at a time: at most [`LOOKUP_PAGE_ENTRIES`] entries
//! and [`LOOKUP_PAGE_BYTES`] of entry bytes (a page holds at least one entry, which is at most
//! 65,535 bytes), with the totals over all pages and `next_before`, the `?before=` of the
//! next page. A reader that must see everything (revocations) reads every page and checks
//! the count against the totals; nobody can push the newest entries off the first page.

use serde::{Deserialize, Serialize};

use crate::merkle::{ConsistencyProof, Hash, InclusionProof, LeafHash, ProofError};
use crate::note::NoteVerifierKey;
use crate::statement::{verify_statement, Measurement, SignedStatement, Statement};

/// Submission of a signed statement (the body is the statement's exact bytes).
pub const STATEMENTS_PATH: &str = "/v1/statements";
/// Most entries on one lookup page.
pub const LOOKUP_PAGE_ENTRIES: usize = 256;
/// Most entry bytes on one lookup page (base64 in JSON makes the answer about 4/3 of this).
pub const LOOKUP_PAGE_BYTES: usize = 1 << 20;
/// Most pages a reader reads of one lookup (about a million entries).
pub const MAX_LOOKUP_PAGES: usize = 4096;
/// Longest `?wait=` a submission may ask for, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// The error answer of every Lucent service: a stable machine-readable code and a message
/// for people. Some codes carry more facts (`already_logged` carries the index and leaf).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code (`already_logged`, `unknown_signer`, `not_found`, …).
    pub error: String,
    /// What went wrong, for people.
    #[serde(default)]
    pub message: String,
    /// `already_logged`: where the statement is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// `already_logged`: its leaf hash.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_leaf_hex"
    )]
    pub leaf_hash: Option<LeafHash>,
}

impl ErrorBody {
    /// An error answer with a code and a message.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            message: message.into(),
            index: None,
            leaf_hash: None,
        }
    }
}

/// The answer to a submission. Without `wait`, or when no published checkpoint covers the
/// entry before the wait ends (HTTP 202, with `message`), only the index and leaf hash are
/// set; after a successful wait, the inclusion proof and the checkpoint it is proven under
/// too, also as one C2SP `tlog-proof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitAnswer {
    /// The entry's index.
    pub index: u64,
    /// The entry's leaf hash.
    #[serde(with = "leaf_hex")]
    pub leaf_hash: LeafHash,
    /// Size of the checkpoint the proof is under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// Inclusion proof hashes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_hashes_b64"
    )]
    pub inclusion_proof: Option<Vec<Hash>>,
    /// The published (witnessed) checkpoint note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The same proof as a C2SP `tlog-proof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlog_proof: Option<String>,
    /// Why the proof is missing (HTTP 202).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SubmitAnswer {
    /// The inclusion proof, when the answer carries one.
    pub fn proof(&self) -> Option<Result<InclusionProof, ProofError>> {
        let (size, hashes) = (self.tree_size?, self.inclusion_proof.as_ref()?);
        Some(InclusionProof::from_raw(self.index, size, &raw(hashes)))
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its index.
    pub index: u64,
    /// Its leaf hash (a reader recomputes it from `entry`; see [`Entry::check`]).
    #[serde(with = "leaf_hex")]
    pub leaf_hash: LeafHash,
    /// The entry's exact bytes.
    #[serde(with = "bytes_b64")]
    pub entry: Vec<u8>,
}

impl Entry {
    /// The entry for `index` holding `bytes`.
    pub fn new(index: u64, bytes: Vec<u8>) -> Self {
        Entry {
            index,
            leaf_hash: LeafHash::of_entry(&bytes),
            entry: bytes,
        }
    }

    /// Whether the stated leaf hash is the hash of the bytes.
    pub fn check(&self) -> bool {
        LeafHash::of_entry(&self.entry) == self.leaf_hash
    }
}

/// An inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionAnswer {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The tree's root at that size.
    #[serde(with = "hash_b64")]
    pub root: Hash,
    /// The proof.
    #[serde(with = "hashes_b64")]
    pub hashes: Vec<Hash>,
    /// The published checkpoint of exactly that size, when there is one.
    #[serde(default)]
    pub checkpoint: Option<String>,
}

/// An answer that does not prove what was asked, or whose proof is malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer proves something else than what was asked.
    #[error("the log proved {got:?} when asked for {asked:?}")]
    Mismatch {
        /// What was asked: (index, size) or (old, new).
        asked: (u64, u64),
        /// What the answer proves.
        got: (u64, u64),
    },
    /// The proof is malformed.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A lookup page does not continue the pages before it (an entry at or above the cursor,
    /// or a cursor that does not go down).
    #[error("lookup page after index {before}: {why}")]
    PageOutOfOrder {
        /// The cursor the page was asked with.
        before: u64,
        /// What is wrong.
        why: String,
    },
    /// More pages than a reader reads ([`MAX_LOOKUP_PAGES`]).
    #[error("the lookup has more than {limit} pages")]
    TooManyPages {
        /// The page limit.
        limit: usize,
    },
    /// The pages hold fewer or more entries than the log counts.
    #[error("the lookup's pages hold {got} entries, the log counts {total}")]
    Incomplete {
        /// Entries read.
        got: u64,
        /// Entries the log counts.
        total: u64,
    },
}

/// A paged lookup answer ([`ReleasesAnswer`], [`KeyConfigsAnswer`]): what a reader needs to
/// read every page and know it has them all.
pub trait LookupAnswer: serde::de::DeserializeOwned {
    /// `?before=` of the next page, if there is one.
    fn next_before(&self) -> Option<u64>;
    /// Every entry of this page, in order.
    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_>;
    /// For each kind of entry the answer lists: (entries here, entries the log counts).
    fn counts(&self) -> Vec<(u64, u64)>;
    /// Appends `page`'s entries and takes its cursor (no checks; see [`LookupAnswer::append`]).
    fn take(&mut self, page: Self);

    /// Appends the page asked for with `?before=` this answer's cursor: every entry of it is
    /// below the cursor, newest first, and its own cursor is lower still.
    fn append(&mut self, page: Self) -> Result<(), AnswerError> {
        let Some(before) = self.next_before() else {
            return Err(AnswerError::PageOutOfOrder {
                before: u64::MAX,
                why: "there is no next page to append".into(),
            });
        };
        let out_of_order = |why: String| AnswerError::PageOutOfOrder { before, why };
        if let Some(e) = page.entries().find(|e| e.index >= before) {
            return Err(out_of_order(format!("it holds entry {}", e.index)));
        }
        if let Some(next) = page.next_before().filter(|&n| n >= before) {
            return Err(out_of_order(format!("its cursor {next} does not go down")));
        }
        self.take(page);
        Ok(())
    }

    /// Checks that the pages read hold, kind by kind, as many entries as the log counts.
    fn check_complete(&self) -> Result<(), AnswerError> {
        let counts = self.counts();
        if self.next_before().is_some() || counts.iter().any(|(got, total)| got != total) {
            return Err(AnswerError::Incomplete {
                got: counts.iter().map(|c| c.0).sum(),
                total: counts.iter().map(|c| c.1).sum(),
            });
        }
        Ok(())
    }
}

/// Why [`read_all_pages`] stopped.
#[derive(Debug)]
pub enum PagesError<E> {
    /// Fetching a page failed.
    Fetch(E),
    /// The pages do not join, are too many, or do not add up to the totals.
    Answer(AnswerError),
}

/// Reads every page of a lookup, the one way every reader does: `fetch(None)` for the first
/// page and `fetch(Some(before))` for each next one, joined with [`LookupAnswer::append`],
/// at most [`MAX_LOOKUP_PAGES`] pages, then checked with [`LookupAnswer::check_complete`].
pub async fn read_all_pages<A, E, Fut>(
    mut fetch: impl FnMut(Option<u64>) -> Fut,
) -> Result<A, PagesError<E>>
where
    A: LookupAnswer,
    Fut: std::future::Future<Output = Result<A, E>>,
{
    let mut all = fetch(None).await.map_err(PagesError::Fetch)?;
    let mut pages = 1;
    while let Some(before) = all.next_before() {
        if pages == MAX_LOOKUP_PAGES {
            return Err(PagesError::Answer(AnswerError::TooManyPages {
                limit: MAX_LOOKUP_PAGES,
            }));
        }
        let page = fetch(Some(before)).await.map_err(PagesError::Fetch)?;
        all.append(page).map_err(PagesError::Answer)?;
        pages += 1;
    }
    all.check_complete().map_err(PagesError::Answer)?;
    Ok(all)
}

/// The path of a lookup page: `path` itself, or with `?before=` the previous page's cursor.
pub fn page_path(path: &str, before: Option<u64>) -> String {
    match before {
        None => path.to_owned(),
        Some(b) => format!("{path}?before={b}"),
    }
}

fn same(asked: (u64, u64), got: (u64, u64)) -> Result<(), AnswerError> {
    if asked == got {
        Ok(())
    } else {
        Err(AnswerError::Mismatch { asked, got })
    }
}

impl InclusionAnswer {
    /// The proof of `index` in the tree of `size`, checked for shape (verify it against a
    /// trusted root yourself); an answer for anything else is refused.
    pub fn proof_of(&self, index: u64, size: u64) -> Result<InclusionProof, AnswerError> {
        same((index, size), (self.index, self.tree_size))?;
        Ok(InclusionProof::from_raw(index, size, &raw(&self.hashes))?)
    }
}

/// A consistency proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyAnswer {
    /// The older size.
    pub old: u64,
    /// The newer size.
    pub new: u64,
    /// The proof.
    #[serde(with = "hashes_b64")]
    pub hashes: Vec<Hash>,
}

impl ConsistencyAnswer {
    /// The proof from `old` to `new`, checked for shape; an answer for other sizes is refused.
    pub fn proof_of(&self, old: u64, new: u64) -> Result<ConsistencyProof, AnswerError> {
        same((old, new), (self.old, self.new))?;
        Ok(ConsistencyProof::from_raw(old, new, &raw(&self.hashes))?)
    }
}

/// The releases and revocations logged for one measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasesAnswer {
    /// The measurement, lowercase hex.
    pub measurement: String,
    /// `release` entries, newest first.
    pub releases: Vec<Entry>,
    /// `revoke` entries, newest first.
    pub revocations: Vec<Entry>,
    /// `release` entries for the measurement in the whole log.
    pub total_releases: u64,
    /// `revoke` entries for the measurement in the whole log.
    pub total_revocations: u64,
    /// `?before=` of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

impl ReleasesAnswer {
    /// The measurements withdrawn by the `revoke` entries an operator in `operators` signed.
    /// An entry that does not verify is not a revocation anyone can act on, and is skipped.
    pub fn verified_revocations(&self, operators: &[NoteVerifierKey]) -> Vec<Measurement> {
        self.revocations
            .iter()
            .filter_map(|e| match verify_statement(&e.entry, operators) {
                Ok(SignedStatement {
                    statement: Statement::Revoke(r),
                    ..
                }) => Some(r.measurement),
                _ => None,
            })
            .collect()
    }

    /// The newest `release` entry of `measurement` that an operator in `operators` signed,
    /// among those at an index below `size` (under a checkpoint of that size).
    pub fn newest_release(
        &self,
        operators: &[NoteVerifierKey],
        measurement: &Measurement,
        size: u64,
    ) -> Option<&Entry> {
        self.releases
            .iter()
            .filter(|e| {
                e.index < size
                    && matches!(
                        verify_statement(&e.entry, operators),
                        Ok(SignedStatement { statement: Statement::Release(r), .. })
                            if r.measurement == *measurement
                    )
            })
            .max_by_key(|e| e.index)
    }
}

/// The key configs logged under one key id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyConfigsAnswer {
    /// The key id.
    pub key_id: u8,
    /// `keyconfig` entries, newest first.
    pub keyconfigs: Vec<Entry>,
    /// `keyconfig` entries under the key id in the whole log.
    pub total: u64,
    /// `?before=` of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

impl LookupAnswer for KeyConfigsAnswer {
    fn next_before(&self) -> Option<u64> {
        self.next_before
    }
    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_> {
        Box::new(self.keyconfigs.iter())
    }
    fn counts(&self) -> Vec<(u64, u64)> {
        vec![(self.keyconfigs.len() as u64, self.total)]
    }
    fn take(&mut self, page: Self) {
        self.keyconfigs.extend(page.keyconfigs);
        self.next_before = page.next_before;
    }
}

/// The issuer key statements logged for one `token_key_id` (SHA-256 of the public key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuersAnswer {
    /// The token key id, lowercase hex.
    pub key_id: String,
    /// `issuer` entries, newest first.
    pub issuers: Vec<Entry>,
    /// `issuer` entries for the key id in the whole log.
    pub total: u64,
    /// `?before=` of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

impl LookupAnswer for IssuersAnswer {
    fn next_before(&self) -> Option<u64> {
        self.next_before
    }
    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_> {
        Box::new(self.issuers.iter())
    }
    fn counts(&self) -> Vec<(u64, u64)> {
        vec![(self.issuers.len() as u64, self.total)]
    }
    fn take(&mut self, page: Self) {
        self.issuers.extend(page.issuers);
        self.next_before = page.next_before;
    }
}

impl LookupAnswer for ReleasesAnswer {
    fn next_before(&self) -> Option<u64> {
        self.next_before
    }
    fn entries(&self) -> Box<dyn Iterator<Item = &Entry> + '_> {
        Box::new(self.releases.iter().chain(&self.revocations))
    }
    fn counts(&self) -> Vec<(u64, u64)> {
        vec![
            (self.releases.len() as u64, self.total_releases),
            (self.revocations.len() as u64, self.total_revocations),
        ]
    }
    fn take(&mut self, page: Self) {
        self.releases.extend(page.releases);
        self.revocations.extend(page.revocations);
        self.next_before = page.next_before;
    }
}

/// What the log says of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    /// The log's origin (checkpoint name).
    pub origin: String,
    /// Its checkpoint verifier key.
    pub verifier_key: String,
    /// Entries sequenced.
    pub tree_size: u64,
    /// Size of the newest published checkpoint.
    pub published_size: u64,
    /// Whether this server is the sequencer.
    pub sequencer: bool,
}

/// The health answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Entries sequenced.
    pub tree_size: u64,
    /// Whether this server is the sequencer.
    pub sequencer: bool,
}

fn raw(hashes: &[Hash]) -> Vec<&[u8]> {
    hashes.iter().map(|h| h.0.as_slice()).collect()
}

mod hash_b64 {
    use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(h.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).map_err(D::Error::custom)
    }

    pub fn decode(text: &str) -> Result<Hash, String> {
        let bytes = B64
            .decode(text)
            .map_err(|e| format!("hash is not base64: {e}"))?;
        Hash::from_slice(&bytes).map_err(|e| e.to_string())
    }
}

mod hashes_b64 {
    use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::merkle::{Hash, MAX_PROOF_HASHES};

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(|h| B64.encode(h.0)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        if texts.len() > MAX_PROOF_HASHES {
            return Err(D::Error::custom(format!(
                "{} proof hashes; a proof has at most {MAX_PROOF_HASHES}",
                texts.len()
            )));
        }
        texts
            .into_iter()
            .map(|t| super::hash_b64::decode(&t).map_err(D::Error::custom))
            .collect()
    }
}

mod opt_hashes_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub fn serialize<S: Serializer>(hashes: &Option<Vec<Hash>>, s: S) -> Result<S::Ok, S::Error> {
        match hashes {
            Some(h) => super::hashes_b64::serialize(h, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Hash>>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::hashes_b64")] Vec<Hash>);
        Ok(Option::<W>::deserialize(d)?.map(|W(h)| h))
    }
}

mod leaf_hex {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::merkle::{Hash, LeafHash};

    pub fn serialize<S: Serializer>(h: &LeafHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.0.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LeafHash, D::Error> {
        let text = String::deserialize(d)?;
        Hash::from_hex(&text)
            .map(LeafHash)
            .map_err(|e| D::Error::custom(format!("leaf hash: {e}")))
    }
}

mod opt_leaf_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::merkle::LeafHash;

    pub fn serialize<S: Serializer>(h: &Option<LeafHash>, s: S) -> Result<S::Ok, S::Error> {
        match h {
            Some(h) => super::leaf_hex::serialize(h, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LeafHash>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::leaf_hex")] LeafHash);
        Ok(Option::<W>::deserialize(d)?.map(|W(h)| h))
    }
}

pub(crate) mod bytes_b64 {
    use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text)
            .map_err(|e| D::Error::custom(format!("entry is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MemoryTree;

    #[test]
    fn answers_round_trip_and_proofs_verify() {
        let mut tree = MemoryTree::new();
        for e in [&b"a"[..], b"b", b"c"] {
            tree.push_entry(e);
        }
        let p = tree.prove_inclusion(1, 3).unwrap();
        let answer = InclusionAnswer {
            index: 1,
            tree_size: 3,
            root: tree.root(),
            hashes: p.hashes.clone(),
            checkpoint: None,
        };
        let text = serde_json::to_string(&answer).unwrap();
        let back: InclusionAnswer = serde_json::from_str(&text).unwrap();
        assert_eq!(back, answer);
        back.proof_of(1, 3)
            .unwrap()
            .verify(&LeafHash::of_entry(b"b"), &tree.root())
            .unwrap();
        // An answer for another index or size than asked is refused, not verified.
        assert!(matches!(
            back.proof_of(2, 3),
            Err(AnswerError::Mismatch {
                asked: (2, 3),
                got: (1, 3)
            })
        ));
        assert!(matches!(
            back.proof_of(1, 4),
            Err(AnswerError::Mismatch { .. })
        ));

        let e = Entry::new(7, b"statement".to_vec());
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(&e.leaf_hash.to_string()), "{text}");
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert!(back.check());
        assert_eq!(back, e);
    }

    #[test]
    fn malformed_answers_are_refused() {
        let good = serde_json::json!({ "old": 1, "new": 2, "hashes": [] });
        assert!(serde_json::from_value::<ConsistencyAnswer>(good).is_ok());
        for bad in [
            serde_json::json!({ "old": 1, "new": 2, "hashes": ["not base64!"] }),
            serde_json::json!({ "old": 1, "new": 2, "hashes": ["AAAA"] }),
            serde_json::json!({ "old": 1, "new": 2, "hashes": vec!["A".repeat(43) + "="; 65] }),
            serde_json::json!({ "old": -1, "new": 2, "hashes": [] }),
            serde_json::json!({ "old": 1, "hashes": [] }),
        ] {
            assert!(
                serde_json::from_value::<ConsistencyAnswer>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        for bad in [
            serde_json::json!({ "index": 0, "leaf_hash": "zz", "entry": "" }),
            serde_json::json!({ "index": 0, "leaf_hash": "00".repeat(31), "entry": "" }),
            serde_json::json!({ "index": 0, "leaf_hash": "00".repeat(32), "entry": "%%" }),
        ] {
            assert!(
                serde_json::from_value::<Entry>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        // A stated leaf hash that is not the entry's is caught by `check`.
        let lie: Entry = serde_json::from_value(
            serde_json::json!({ "index": 0, "leaf_hash": "00".repeat(32), "entry": "" }),
        )
        .unwrap();
        assert!(!lie.check());
    }

    #[test]
    fn error_body_carries_the_already_logged_facts() {
        let leaf = LeafHash::of_entry(b"x");
        let body = ErrorBody {
            index: Some(4),
            leaf_hash: Some(leaf),
            ..ErrorBody::new("already_logged", "statement is already logged at index 4")
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["leaf_hash"], leaf.to_string());
        let plain = serde_json::to_value(ErrorBody::new("not_found", "no")).unwrap();
        assert_eq!(
            plain,
            serde_json::json!({ "error": "not_found", "message": "no" })
        );
        let back: ErrorBody = serde_json::from_value(v).unwrap();
        assert_eq!(back, body);
    }

    /// Runs a future that never waits (the fetches below answer at once).
    fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the fetch waited"),
        }
    }

    fn releases_page(
        releases: &[u64],
        revocations: &[u64],
        totals: (u64, u64),
        next_before: Option<u64>,
    ) -> ReleasesAnswer {
        let entries = |ix: &[u64]| ix.iter().map(|&i| Entry::new(i, vec![i as u8])).collect();
        ReleasesAnswer {
            measurement: "ab".into(),
            releases: entries(releases),
            revocations: entries(revocations),
            total_releases: totals.0,
            total_revocations: totals.1,
            next_before,
        }
    }

    #[test]
    fn every_page_is_read_and_counted_kind_by_kind() {
        // Two pages: entries 9, 7 (release) and 8 (revoke), then 2 (revoke).
        let pages = |first: ReleasesAnswer, second: ReleasesAnswer| {
            let mut asked = Vec::new();
            let got = ready(read_all_pages(|before| {
                asked.push(before);
                let page = if before.is_none() {
                    first.clone()
                } else {
                    second.clone()
                };
                async move { Ok::<_, ()>(page) }
            }));
            (got, asked)
        };
        let (got, asked) = pages(
            releases_page(&[9, 7], &[8], (2, 2), Some(7)),
            releases_page(&[], &[2], (2, 2), None),
        );
        assert_eq!(asked, vec![None, Some(7)]);
        let all = got.unwrap();
        assert_eq!(
            all.revocations.iter().map(|e| e.index).collect::<Vec<_>>(),
            [8, 2]
        );

        // The same number of entries, but a revocation counted as a release: incomplete.
        let (got, _) = pages(
            releases_page(&[9, 7], &[8], (3, 1), Some(7)),
            releases_page(&[], &[2], (3, 1), None),
        );
        assert!(matches!(
            got,
            Err(PagesError::Answer(AnswerError::Incomplete {
                got: 4,
                total: 4
            }))
        ));
        // A page that does not go below the cursor.
        let (got, _) = pages(
            releases_page(&[9, 7], &[8], (2, 2), Some(7)),
            releases_page(&[], &[7], (2, 2), None),
        );
        assert!(matches!(
            got,
            Err(PagesError::Answer(AnswerError::PageOutOfOrder {
                before: 7,
                ..
            }))
        ));
        // A log that never stops paging is cut off.
        let mut n = 0u64;
        let got = ready(read_all_pages(|_| {
            n += 1;
            let page = releases_page(&[], &[], (0, 0), Some(u64::MAX - n));
            async move { Ok::<_, ()>(page) }
        }));
        assert!(matches!(
            got,
            Err(PagesError::Answer(AnswerError::TooManyPages {
                limit: MAX_LOOKUP_PAGES
            }))
        ));
        // A fetch failure is passed through as it is.
        let got = ready(read_all_pages::<ReleasesAnswer, _, _>(|_| async {
            Err("down")
        }));
        assert!(matches!(got, Err(PagesError::Fetch("down"))));
    }
}
