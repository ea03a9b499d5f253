//! C2SP `tlog-witness` (<https://c2sp.org/tlog-witness>) wire format: the body of an
//! `add-checkpoint` request and the bodies of its answers.
//!
//! ```text
//! old <size>\n
//! <base64 consistency proof hash>\n    (zero to MAX_PROOF_LINES lines)
//! \n
//! <checkpoint signed note>
//! ```
//!
//! A witness answers `200` with one or more cosignature lines (`— <name> <base64>\n`, the
//! signature-line syntax of C2SP `signed-note`), or `409 Conflict` with its latest size for
//! this log as a `text/x.tlog.size` body (`<size>\n`). This module is pure: it builds and
//! parses bytes, and checks limits. Checking the checkpoint signature, the consistency proof
//! and each cosignature is the caller's job, with [`crate::checkpoint`], [`crate::merkle`]
//! and [`crate::cosignature`].

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use thiserror::Error;

use crate::merkle::{Hash, TreeSize};
use crate::note::{self, NoteError, NoteSignature, MAX_NOTE_BYTES};

/// Most consistency proof lines an `add-checkpoint` request may carry (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// Largest `add-checkpoint` request body: the proof lines, the `old` line and a note.
pub const MAX_REQUEST_BYTES: usize = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_BYTES;

/// Most cosignature lines accepted in one witness response.
pub const MAX_COSIGNATURE_LINES: usize = 16;

/// Largest witness response body accepted (cosignature lines are under 200 bytes each).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024;

/// Content type of a `409 Conflict` answer carrying the witness's latest size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why a `tlog-witness` message was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum WitnessProtocolError {
    /// The body is larger than the limit for its kind.
    #[error("body is {got} bytes, the limit is {limit}")]
    TooLarge {
        /// Size of the body.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// The first line is not `old <canonical decimal>`.
    #[error("first line is not `old <size>`")]
    BadOldLine,
    /// A proof line is not the base64 of exactly 32 bytes.
    #[error("consistency proof line {line} is not a base64 32-byte hash")]
    BadProofLine {
        /// One-based line number in the body.
        line: usize,
    },
    /// More proof lines than [`MAX_PROOF_LINES`].
    #[error("{got} consistency proof lines, the limit is {MAX_PROOF_LINES}")]
    TooManyProofLines {
        /// Lines found (counting stops just past the limit).
        got: usize,
    },
    /// No empty line separates the proof from the checkpoint.
    #[error("no empty line before the checkpoint")]
    MissingSeparator,
    /// The checkpoint part is not a well-formed signed note.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// A response line is not a signed-note signature line.
    #[error("response line {line} is not a cosignature line")]
    BadCosignatureLine {
        /// One-based line number in the response.
        line: usize,
    },
    /// The response carries no cosignature at all.
    #[error("response carries no cosignature")]
    NoCosignature,
    /// More cosignature lines than [`MAX_COSIGNATURE_LINES`].
    #[error("{got} cosignature lines, the limit is {MAX_COSIGNATURE_LINES}")]
    TooManyCosignatures {
        /// Lines found.
        got: usize,
    },
    /// A `text/x.tlog.size` body is not `<canonical decimal>\n`.
    #[error("size body is not a canonical decimal number and newline")]
    BadSizeBody,
}

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the last checkpoint the log believes the witness cosigned (0 for none).
    pub old: TreeSize,
    /// Consistency proof from `old` to the new checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint note, signature lines included, exactly as sent.
    pub checkpoint: Vec<u8>,
}

/// Parses a canonical decimal number: no sign, no leading zeros (except `0` itself).
fn parse_canonical_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if text.len() > 1 && text[0] == b'0' {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Builds an `add-checkpoint` request body.
pub fn build_add_checkpoint(
    old: TreeSize,
    proof: &[Hash],
    checkpoint_note: &[u8],
) -> Result<Vec<u8>, WitnessProtocolError> {
    if proof.len() > MAX_PROOF_LINES {
        return Err(WitnessProtocolError::TooManyProofLines { got: proof.len() });
    }
    // Refuse to send what a witness must refuse.
    note::parse_unverified(checkpoint_note)?;
    let mut body = format!("old {}\n", old.0).into_bytes();
    for h in proof {
        body.extend_from_slice(BASE64.encode(h.0).as_bytes());
        body.push(b'\n');
    }
    body.push(b'\n');
    body.extend_from_slice(checkpoint_note);
    Ok(body)
}

/// Parses an `add-checkpoint` request body strictly. The checkpoint note's layout is
/// checked; its signatures are not.
pub fn parse_add_checkpoint(body: &[u8]) -> Result<AddCheckpoint, WitnessProtocolError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(WitnessProtocolError::TooLarge {
            got: body.len(),
            limit: MAX_REQUEST_BYTES,
        });
    }
    let (first, mut rest) = split_line(body).ok_or(WitnessProtocolError::BadOldLine)?;
    let old = first
        .strip_prefix(b"old ")
        .and_then(parse_canonical_u64)
        .ok_or(WitnessProtocolError::BadOldLine)?;
    let mut proof = Vec::new();
    let mut line_no = 1;
    loop {
        let (line, after) = split_line(rest).ok_or(WitnessProtocolError::MissingSeparator)?;
        line_no += 1;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(WitnessProtocolError::TooManyProofLines {
                got: MAX_PROOF_LINES + 1,
            });
        }
        let raw = BASE64
            .decode(line)
            .map_err(|_| WitnessProtocolError::BadProofLine { line: line_no })?;
        let hash = Hash::from_slice(&raw)
            .map_err(|_| WitnessProtocolError::BadProofLine { line: line_no })?;
        proof.push(hash);
    }
    note::parse_unverified(rest)?;
    Ok(AddCheckpoint {
        old: TreeSize(old),
        proof,
        checkpoint: rest.to_vec(),
    })
}

/// Builds a `200` response body: one signature line per cosignature.
pub fn build_cosignature_response(
    cosignatures: &[NoteSignature],
) -> Result<Vec<u8>, WitnessProtocolError> {
    if cosignatures.is_empty() {
        return Err(WitnessProtocolError::NoCosignature);
    }
    if cosignatures.len() > MAX_COSIGNATURE_LINES {
        return Err(WitnessProtocolError::TooManyCosignatures {
            got: cosignatures.len(),
        });
    }
    let mut out = Vec::new();
    for sig in cosignatures {
        let line = signed_note::Signature::new(sig.name.clone(), sig.id, sig.signature.clone())
            .map_err(|_| WitnessProtocolError::BadCosignatureLine { line: 0 })?;
        out.extend_from_slice(&line.to_bytes());
    }
    Ok(out)
}

/// Parses a `200` response body into its signature lines. Whether each one is a valid
/// cosignature by a configured witness is checked afterwards with
/// [`crate::cosignature::WitnessKey::verify_cosignature`].
pub fn parse_cosignature_response(body: &[u8]) -> Result<Vec<NoteSignature>, WitnessProtocolError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(WitnessProtocolError::TooLarge {
            got: body.len(),
            limit: MAX_RESPONSE_BYTES,
        });
    }
    let mut sigs = Vec::new();
    let mut rest = body;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let (line, after) =
            split_line(rest).ok_or(WitnessProtocolError::BadCosignatureLine { line: line_no })?;
        rest = after;
        if sigs.len() == MAX_COSIGNATURE_LINES {
            return Err(WitnessProtocolError::TooManyCosignatures {
                got: MAX_COSIGNATURE_LINES + 1,
            });
        }
        let s = signed_note::Signature::from_bytes(line)
            .map_err(|_| WitnessProtocolError::BadCosignatureLine { line: line_no })?;
        sigs.push(NoteSignature {
            name: s.name().to_owned(),
            id: s.id(),
            signature: s.signature().to_vec(),
        });
    }
    if sigs.is_empty() {
        return Err(WitnessProtocolError::NoCosignature);
    }
    Ok(sigs)
}

/// Builds a `409 Conflict` body: the witness's latest size for the log.
pub fn build_size_body(size: TreeSize) -> Vec<u8> {
    format!("{}\n", size.0).into_bytes()
}

/// Parses a `409 Conflict` (`text/x.tlog.size`) body.
pub fn parse_size_body(body: &[u8]) -> Result<TreeSize, WitnessProtocolError> {
    body.strip_suffix(b"\n")
        .filter(|b| b.len() <= 20)
        .and_then(parse_canonical_u64)
        .map(TreeSize)
        .ok_or(WitnessProtocolError::BadSizeBody)
}

/// Splits off one `\n`-terminated line; `None` when no newline is left.
fn split_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let pos = data.iter().position(|&b| b == b'\n')?;
    Some((&data[..pos], &data[pos + 1..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::checkpoint::fixtures::tree_and_checkpoint;
    use crate::cosignature::WitnessSigner;
    use crate::note::NoteSigner;

    fn fixture() -> (Vec<u8>, Vec<u8>, Vec<Hash>) {
        let log = NoteSigner::from_seed("log.example", &[7; 32]).unwrap();
        let (tree, cp) = tree_and_checkpoint("log.example", 13);
        let proof = tree.prove_consistency(5, 13).unwrap().hashes;
        (cp.to_text().unwrap(), cp.sign(&log).unwrap(), proof)
    }

    #[test]
    fn request_round_trip() {
        let (_, note, proof) = fixture();
        let body = build_add_checkpoint(TreeSize(5), &proof, &note).unwrap();
        assert!(body.starts_with(b"old 5\n"));
        let parsed = parse_add_checkpoint(&body).unwrap();
        assert_eq!(parsed.old, TreeSize(5));
        assert_eq!(parsed.proof, proof);
        assert_eq!(parsed.checkpoint, note);
        // No proof from size 0.
        let body = build_add_checkpoint(TreeSize(0), &[], &note).unwrap();
        let parsed = parse_add_checkpoint(&body).unwrap();
        assert_eq!(parsed.old, TreeSize(0));
        assert!(parsed.proof.is_empty());
    }

    #[test]
    fn request_rejections() {
        let (_, note, proof) = fixture();
        let good = build_add_checkpoint(TreeSize(5), &proof, &note).unwrap();
        type Want = fn(&WitnessProtocolError) -> bool;
        let cases: Vec<(Vec<u8>, Want)> = vec![
            (b"old 05\n\n".to_vec(), |e| {
                matches!(e, WitnessProtocolError::BadOldLine)
            }),
            (b"old -1\n\n".to_vec(), |e| {
                matches!(e, WitnessProtocolError::BadOldLine)
            }),
            (b"new 5\n\n".to_vec(), |e| {
                matches!(e, WitnessProtocolError::BadOldLine)
            }),
            (b"old 5\nAAAA\n\n".to_vec(), |e| {
                matches!(e, WitnessProtocolError::BadProofLine { line: 2 })
            }),
            (b"old 5\n".to_vec(), |e| {
                matches!(e, WitnessProtocolError::MissingSeparator)
            }),
            (good[..good.len() - 3].to_vec(), |e| {
                matches!(e, WitnessProtocolError::Note(_))
            }),
        ];
        for (body, want) in cases {
            let err = parse_add_checkpoint(&body).unwrap_err();
            assert!(want(&err), "{:?}: {err:?}", String::from_utf8_lossy(&body));
        }
        let mut many = b"old 1\n".to_vec();
        for _ in 0..=MAX_PROOF_LINES {
            many.extend_from_slice(BASE64.encode([0u8; 32]).as_bytes());
            many.push(b'\n');
        }
        many.push(b'\n');
        many.extend_from_slice(&note);
        assert!(matches!(
            parse_add_checkpoint(&many),
            Err(WitnessProtocolError::TooManyProofLines { .. })
        ));
        let huge = vec![b'a'; MAX_REQUEST_BYTES + 1];
        assert!(matches!(
            parse_add_checkpoint(&huge),
            Err(WitnessProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn response_round_trip_and_verify() {
        let (text, _, _) = fixture();
        let w = WitnessSigner::from_seed("witness.example", &[9; 32]).unwrap();
        let sig = w.cosign(&text, 1_700_000_000);
        let body = build_cosignature_response(std::slice::from_ref(&sig)).unwrap();
        let parsed = parse_cosignature_response(&body).unwrap();
        assert_eq!(parsed, vec![sig]);
        assert_eq!(
            w.witness_key()
                .verify_cosignature(&text, &parsed[0].signature),
            Some(1_700_000_000)
        );
        assert!(matches!(
            parse_cosignature_response(b""),
            Err(WitnessProtocolError::NoCosignature)
        ));
        assert!(matches!(
            parse_cosignature_response(b"not a signature line\n"),
            Err(WitnessProtocolError::BadCosignatureLine { line: 1 })
        ));
        // A line without its newline is truncated.
        assert!(parse_cosignature_response(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn size_body() {
        assert_eq!(
            parse_size_body(&build_size_body(TreeSize(42))),
            Ok(TreeSize(42))
        );
        for bad in [
            &b"42"[..],
            b"042\n",
            b"\n",
            b"4 2\n",
            b"-1\n",
            b"99999999999999999999\n",
        ] {
            assert!(parse_size_body(bad).is_err(), "{bad:?}");
        }
    }
}
