//! C2SP signed notes (<https://c2sp.org/signed-note>): verifier keys, opening a note against
//! a set of known keys, and signing.
//!
//! Parsing and the Ed25519 (type 0x01) signatures are `signed_note`'s; this module adds the
//! key handling the rest of Lucent needs and the C2SP timestamped cosignature type (0x04)
//! through [`crate::cosignature`].

use std::fmt;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use signed_note::{Note, NoteError as RawNoteError, StandardSigner, Verifier};
use thiserror::Error;

/// Largest note Lucent accepts anywhere (statements and checkpoints are far smaller).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Signature type byte of plain Ed25519 note signatures.
pub const ALG_ED25519: u8 = 0x01;
/// Signature type byte of C2SP `cosignature/v1` (timestamped Ed25519) signatures.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// Why a verifier key string was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum KeyError {
    /// Not of the form `name+hexid+base64`.
    #[error("verifier key is not of the form name+keyid+base64key")]
    Format,
    /// The key ID does not match the name and key.
    #[error("verifier key id {got:08x} does not match its name and key (want {want:08x})")]
    KeyId {
        /// The ID written in the key string.
        got: u32,
        /// The ID the name and key hash to.
        want: u32,
    },
    /// A signature type this code does not know, or not the one expected here.
    #[error("verifier key has signature type {got:#04x}, want {want:#04x}")]
    Algorithm {
        /// Type byte in the key.
        got: u8,
        /// Type byte required in this place.
        want: u8,
    },
    /// The public key bytes are not a valid Ed25519 point.
    #[error("verifier key does not hold a valid Ed25519 public key")]
    PublicKey,
    /// A private key string that does not parse.
    #[error("signer key is malformed")]
    SignerFormat,
}

/// Why a note was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum NoteError {
    /// Larger than [`MAX_NOTE_BYTES`].
    #[error("note is {got} bytes, the limit is {limit}")]
    TooLarge {
        /// Size of the note.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a well-formed signed note (encoding, control characters, layout, signature lines).
    #[error("malformed note")]
    Malformed,
    /// A signature by a known key did not verify: the whole note is rejected.
    #[error("invalid signature by known key {name}+{id:08x}")]
    BadSignature {
        /// Key name on the signature line.
        name: String,
        /// Key ID on the signature line.
        id: u32,
    },
    /// No signature from any of the given keys.
    #[error("note carries no signature by a known key")]
    NoKnownSignature,
    /// The same (name, ID) was configured twice with different keys, and used.
    #[error("key {name}+{id:08x} is configured more than once")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key ID.
        id: u32,
    },
}

impl From<RawNoteError> for NoteError {
    fn from(e: RawNoteError) -> Self {
        use signed_note::VerificationError as V;
        match e {
            RawNoteError::InvalidSignature { name, id } => NoteError::BadSignature { name, id },
            RawNoteError::UnverifiedNote => NoteError::NoKnownSignature,
            RawNoteError::VerificationError(V::AmbiguousKey { name, id }) => {
                NoteError::AmbiguousKey { name, id }
            }
            _ => NoteError::Malformed,
        }
    }
}

/// Splits `name+hexid+base64` into its parts, checking the ID against the name and key.
/// Only the first two `+` separate fields: standard base64 may itself contain `+`.
fn split_vkey(vkey: &str) -> Result<(&str, u32, Vec<u8>), KeyError> {
    let (name, rest) = vkey.split_once('+').ok_or(KeyError::Format)?;
    let (id_hex, key_b64) = rest.split_once('+').ok_or(KeyError::Format)?;
    if !signed_note::is_key_name_valid(name)
        || id_hex.len() != 8
        || !id_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(KeyError::Format);
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| KeyError::Format)?;
    let key = BASE64.decode(key_b64).map_err(|_| KeyError::Format)?;
    if key.is_empty() {
        return Err(KeyError::Format);
    }
    let want = signed_note::key_id(name, &key);
    if id != want {
        return Err(KeyError::KeyId { got: id, want });
    }
    Ok((name, id, key))
}

/// Reads the 32-byte Ed25519 key that follows the type byte `alg`.
fn ed25519_key(key: &[u8], alg: u8) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
    match key.split_first() {
        Some((&got, rest)) if got == alg => {
            let bytes: [u8; 32] = rest.try_into().map_err(|_| KeyError::PublicKey)?;
            ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::PublicKey)
        }
        Some((&got, _)) => Err(KeyError::Algorithm { got, want: alg }),
        None => Err(KeyError::Format),
    }
}

/// An Ed25519 verifier key `name+hexid+base64(type ‖ public key)` whose type byte is `ALG`:
/// [`NoteVerifierKey`] (0x01, a log's or an operator's key) or
/// [`crate::cosignature::WitnessKey`] (0x04, a witness's `cosignature/v1` key).
///
/// Two keys are equal when their strings are.
#[derive(Clone)]
pub struct Ed25519VerifierKey<const ALG: u8> {
    text: String,
    pub(crate) name: String,
    pub(crate) id: u32,
    pub(crate) key: ed25519_dalek::VerifyingKey,
}

/// An Ed25519 note verifier key, such as a log's or an operator's:
/// `name+hexid+base64(0x01 ‖ public key)`.
pub type NoteVerifierKey = Ed25519VerifierKey<ALG_ED25519>;

impl<const ALG: u8> Ed25519VerifierKey<ALG> {
    /// Parses and checks a verifier key string.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let (name, id, key) = split_vkey(vkey)?;
        let key = ed25519_key(&key, ALG)?;
        Ok(Ed25519VerifierKey {
            text: vkey.to_owned(),
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The key for `name` and the public half of `signing_key` (a signer's own verifier key).
    fn of_signer(name: &str, signing_key: &SigningKey) -> Self {
        let key = signing_key.verifying_key();
        let mut raw = vec![ALG];
        raw.extend_from_slice(key.as_bytes());
        let id = signed_note::key_id(name, &raw);
        Ed25519VerifierKey {
            text: format!("{name}+{id:08x}+{}", BASE64.encode(raw)),
            name: name.to_owned(),
            id,
            key,
        }
    }

    /// The key name (for a log: its origin; for a witness: its name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key ID.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The key string as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }
}

impl Verifier for NoteVerifierKey {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        ed25519_dalek::Signature::from_slice(sig)
            .map(|sig| self.key.verify(msg, &sig).is_ok())
            .unwrap_or(false)
    }
}

impl<const ALG: u8> fmt::Debug for Ed25519VerifierKey<ALG> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<const ALG: u8> fmt::Display for Ed25519VerifierKey<ALG> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<const ALG: u8> PartialEq for Ed25519VerifierKey<ALG> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<const ALG: u8> Eq for Ed25519VerifierKey<ALG> {}

impl<const ALG: u8> std::str::FromStr for Ed25519VerifierKey<ALG> {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s)
    }
}

/// A key a note may be opened with: a plain Ed25519 [`NoteVerifierKey`] (type 0x01), or a
/// witness's `cosignature/v1` key (type 0x04, `crate::cosignature::WitnessKey`).
pub trait NoteKey {
    /// The `signed_note` verifier for this key.
    fn note_verifier(&self) -> Box<dyn Verifier>;
}

impl<const ALG: u8> NoteKey for Ed25519VerifierKey<ALG>
where
    Self: Verifier,
{
    fn note_verifier(&self) -> Box<dyn Verifier> {
        Box::new(self.clone())
    }
}

/// One signature line of a note: who signed (by name and key ID) and the signature bytes
/// after the key ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub id: u32,
    /// Signature bytes (for type 0x04: 8-byte timestamp then 64-byte signature).
    pub signature: Vec<u8>,
}

/// A note whose text is signed by at least one known key.
#[derive(Clone, Debug)]
pub struct OpenedNote {
    /// The signed text, ending in a newline.
    pub text: Vec<u8>,
    /// Signatures that verified, in note order, duplicates removed.
    pub verified: Vec<NoteSignature>,
    /// Signatures from unknown keys, ignored but kept, duplicates removed.
    pub unverified: Vec<NoteSignature>,
}

fn convert(sigs: Vec<signed_note::Signature>) -> Vec<NoteSignature> {
    sigs.into_iter()
        .map(|s| NoteSignature {
            name: s.name().to_owned(),
            id: s.id(),
            signature: s.signature().to_vec(),
        })
        .collect()
}

/// Opens a signed note with the given keys, following `golang.org/x/mod/sumdb/note`'s `Open`:
/// signatures from unknown keys are ignored, a failing signature from a known key rejects
/// the note, and at least one known key must have signed.
pub fn open(note: &[u8], keys: &[&dyn NoteKey]) -> Result<OpenedNote, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge {
            got: note.len(),
            limit: MAX_NOTE_BYTES,
        });
    }
    let parsed = Note::from_bytes(note)?;
    let list = signed_note::VerifierList::new(keys.iter().map(|k| k.note_verifier()).collect());
    let (verified, unverified) = parsed.verify(&list)?;
    Ok(OpenedNote {
        text: parsed.text().to_vec(),
        verified: convert(verified),
        unverified: convert(unverified),
    })
}

/// Parses a note's layout without checking any signature: text and every signature line.
pub fn parse_unverified(note: &[u8]) -> Result<(Vec<u8>, Vec<NoteSignature>), NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge {
            got: note.len(),
            limit: MAX_NOTE_BYTES,
        });
    }
    let parsed = Note::from_bytes(note)?;
    // `Note` keeps its signatures private; re-read them from the signature block.
    let text = parsed.text().to_vec();
    let block = &note[text.len() + 1..];
    let mut sigs = Vec::new();
    for line in block.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").ok_or(NoteError::Malformed)?;
        let s = signed_note::Signature::from_bytes(line)?;
        sigs.push(NoteSignature {
            name: s.name().to_owned(),
            id: s.id(),
            signature: s.signature().to_vec(),
        });
    }
    Ok((text, sigs))
}

/// SHA-256 of a note's signed text (everything before its signature block): equal for every
/// encoding of the same text, however many and whichever signatures follow.
pub fn text_hash(note: &[u8]) -> Result<[u8; 32], NoteError> {
    use sha2::{Digest as _, Sha256};
    let (text, _) = parse_unverified(note)?;
    Ok(Sha256::digest(&text).into())
}

/// An Ed25519 private key whose verifier key has the type byte `ALG`: [`NoteSigner`] (0x01)
/// or [`crate::cosignature::WitnessSigner`] (0x04).
#[derive(Clone)]
pub struct Ed25519Signer<const ALG: u8> {
    name: String,
    signing_key: SigningKey,
}

/// An Ed25519 note signer (a log's or an operator's private key).
pub type NoteSigner = Ed25519Signer<ALG_ED25519>;

impl<const ALG: u8> fmt::Debug for Ed25519Signer<ALG> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ed25519Signer({}, type {ALG:#04x}, <private>)",
            self.name
        )
    }
}

impl<const ALG: u8> Ed25519Signer<ALG> {
    /// Makes a fresh key for `name`.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R, name: &str) -> Result<Self, KeyError> {
        Self::from_seed(name, &SigningKey::generate(rng).to_bytes())
    }

    /// Builds a key for `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(KeyError::Format);
        }
        Ok(Ed25519Signer {
            name: name.to_owned(),
            signing_key: SigningKey::from_bytes(seed),
        })
    }

    /// The 32-byte seed (keep it secret).
    pub fn seed(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.verifier_key().key_id()
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> Ed25519VerifierKey<ALG> {
        Ed25519VerifierKey::of_signer(&self.name, &self.signing_key)
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }
}

impl NoteSigner {
    /// Parses the Go `note` private key format: `PRIVATE+KEY+name+hexid+base64(0x01 ‖ seed)`.
    pub fn parse(skey: &str) -> Result<Self, KeyError> {
        // `StandardSigner` checks the layout and the key ID against the derived public key.
        StandardSigner::new(skey).map_err(|_| KeyError::SignerFormat)?;
        let fields: Vec<&str> = skey.splitn(5, '+').collect();
        let [_, _, name, _, b64] = fields[..] else {
            return Err(KeyError::SignerFormat);
        };
        let key = BASE64.decode(b64).map_err(|_| KeyError::SignerFormat)?;
        let seed: [u8; 32] = key
            .get(1..)
            .and_then(|s| s.try_into().ok())
            .ok_or(KeyError::SignerFormat)?;
        Self::from_seed(name, &seed)
    }

    /// The private key in Go `note` format (keep it secret).
    pub fn to_private_string(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.signing_key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id(),
            BASE64.encode(key)
        )
    }

    /// Signs `text` (which must be a valid note text ending in a newline) and returns the
    /// whole note.
    pub fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        let mut note = Note::new(text, &[])?;
        note.add_sigs(&[self as &dyn signed_note::Signer])?;
        Ok(note.to_bytes())
    }
}

impl signed_note::Signer for NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        NoteSigner::key_id(self)
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        use ed25519_dalek::Signer as _;
        Ok(self.signing_key.sign(msg).to_bytes().to_vec())
    }
}

/// Appends signature lines to an existing signed note (for example a witness cosignature).
pub fn append_signatures(note: &[u8], extra: &[NoteSignature]) -> Result<Vec<u8>, NoteError> {
    let (_, existing) = parse_unverified(note)?;
    let mut out = note.to_vec();
    for sig in extra {
        if existing.contains(sig) {
            continue;
        }
        let line = signed_note::Signature::new(sig.name.clone(), sig.id, sig.signature.clone())?;
        out.extend_from_slice(&line.to_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signer_roundtrip() {
        let signer = NoteSigner::generate(&mut rand_core::OsRng, "example.com/log").unwrap();
        let parsed = NoteSigner::parse(&signer.to_private_string()).unwrap();
        assert_eq!(parsed.verifier_key(), signer.verifier_key());
        let vkey = NoteVerifierKey::parse(signer.verifier_key().as_str()).unwrap();
        let note = signer.sign(b"hello\n").unwrap();
        let opened = open(&note, &[&vkey]).unwrap();
        assert_eq!(opened.text, b"hello\n");
        assert_eq!(opened.verified.len(), 1);
    }
}
