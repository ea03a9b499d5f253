//! Log entries: `release`, `keyconfig`, `issuer` and `revoke` statements, each a signed note whose
//! text is a type line and then `key value` lines in a fixed order.
//!
//! ```text
//! lucent/release/v1
//! platform sev-snp
//! measurement 5f…(96 hex)
//! version 1.4.0
//! …
//! not-after 1798761600
//!
//! — operator.example.com Az3g…
//! ```
//!
//! Parsing is strict so that one statement has exactly one encoding: known keys only, each
//! once and in the documented order, canonical decimal numbers and lowercase hex of the exact
//! length, a size limit. The exact bytes of the whole note are the log entry: nothing is
//! re-serialised before hashing or signing.

use std::fmt;

use thiserror::Error;

use crate::note::{self, NoteError, NoteKey, NoteSigner, NoteVerifierKey};
use crate::privacy_pass::{IssuerPublicKey, ELEMENT_LEN, TOKEN_TYPE};
use crate::tiles;

/// Largest statement note accepted (the log's submit limit): the largest entry a C2SP entry
/// bundle can carry, so every statement the log accepts can be served in its tiles.
pub const MAX_STATEMENT_BYTES: usize = tiles::MAX_ENTRY_BYTES;
const _: () = assert!(MAX_STATEMENT_BYTES <= tiles::MAX_ENTRY_BYTES);
const _: () = assert!(MAX_STATEMENT_BYTES <= note::MAX_NOTE_BYTES);
/// Largest key config carried by a `keyconfig` statement.
pub const MAX_KEY_CONFIG_BYTES: usize = 1024;
/// Longest free-text value (source URL, reason).
pub const MAX_TEXT_LEN: usize = 512;
/// Longest short token (version, vCPU type, VMM type).
pub const MAX_TOKEN_LEN: usize = 64;

/// First line of a release statement.
pub const RELEASE_V1: &str = "lucent/release/v1";
/// First line of a key config statement.
pub const KEYCONFIG_V1: &str = "lucent/keyconfig/v1";
/// First line of a revocation statement.
pub const REVOKE_V1: &str = "lucent/revoke/v1";
/// Type line of a Privacy Pass issuer key statement.
pub const ISSUER_V1: &str = "lucent/issuer/v1";

/// Why a statement was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum StatementError {
    /// Larger than [`MAX_STATEMENT_BYTES`].
    #[error("statement is {got} bytes, the limit is {limit}")]
    TooLarge {
        /// Size.
        got: usize,
        /// Limit.
        limit: usize,
    },
    /// The signed-note layer failed (layout, or no operator signature).
    #[error("statement note: {0}")]
    Note(#[from] NoteError),
    /// The first line names no statement type this version knows.
    #[error("unknown statement type {0:?}")]
    UnknownType(String),
    /// A line is not `key value` with one space.
    #[error("line {line}: not a `key value` line")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// A key this statement type does not have, or a known one out of order or repeated.
    #[error("line {line}: unexpected key {got:?}, want {want:?}")]
    UnexpectedKey {
        /// 1-based line number.
        line: usize,
        /// Key found.
        got: String,
        /// Key expected at this point.
        want: &'static str,
    },
    /// A required key is missing at the end.
    #[error("missing key {0:?}")]
    MissingKey(&'static str),
    /// Lines after the last known key.
    #[error("line {line}: unexpected trailing key {got:?}")]
    TrailingKey {
        /// 1-based line number.
        line: usize,
        /// Key found.
        got: String,
    },
    /// A value that does not fit its key's syntax.
    #[error("key {key:?}: {why}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The validity window is empty.
    #[error("not-before {not_before} is after not-after {not_after}")]
    EmptyValidity {
        /// Start.
        not_before: u64,
        /// End.
        not_after: u64,
    },
    /// For the log: a signature line by a key that is not an allowed operator's. A log
    /// entry carries operator signatures only, so nobody else can make a new entry of a
    /// logged statement by adding a line.
    #[error("signature line by {name}+{id:08x}, which is not an allowed operator key")]
    ForeignSignature {
        /// The line's key name.
        name: String,
        /// The line's key ID.
        id: u32,
    },
    /// For the log: the same operator key signs twice.
    #[error("operator key {name}+{id:08x} signs more than once")]
    DuplicateSignature {
        /// The key name.
        name: String,
        /// The key ID.
        id: u32,
    },
}

/// The TEE platform of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// AMD SEV-SNP: the measurement is the 48-byte launch digest.
    SevSnp,
    /// Intel TDX: the measurement is MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3 (5 × 48 bytes).
    Tdx,
}

impl Platform {
    /// Name used in statements.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::SevSnp => "sev-snp",
            Platform::Tdx => "tdx",
        }
    }

    /// Length of this platform's measurement in bytes.
    pub fn measurement_len(self) -> usize {
        match self {
            Platform::SevSnp => 48,
            Platform::Tdx => 5 * 48,
        }
    }

    /// Length of a release's `min-tcb` for the platform: SEV-SNP's 8-byte TCB_VERSION,
    /// TDX's 16-byte TEE_TCB_SVN.
    pub fn min_tcb_len(self) -> usize {
        match self {
            Platform::SevSnp => 8,
            Platform::Tdx => 16,
        }
    }

    fn parse(value: &str) -> Result<Self, StatementError> {
        match value {
            "sev-snp" => Ok(Platform::SevSnp),
            "tdx" => Ok(Platform::Tdx),
            other => Err(StatementError::BadValue {
                key: "platform",
                why: format!("unknown platform {other:?} (want sev-snp or tdx)"),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform measurement of the right length for its platform.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Measurement {
    platform: Platform,
    bytes: Vec<u8>,
}

impl Measurement {
    /// Checks the length for the platform.
    pub fn new(platform: Platform, bytes: &[u8]) -> Result<Self, StatementError> {
        if bytes.len() != platform.measurement_len() {
            return Err(StatementError::BadValue {
                key: "measurement",
                why: format!(
                    "{} bytes, {platform} needs {}",
                    bytes.len(),
                    platform.measurement_len()
                ),
            });
        }
        Ok(Measurement {
            platform,
            bytes: bytes.to_vec(),
        })
    }

    /// The platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The raw measurement.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

impl fmt::Debug for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.to_hex())
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A SHA-256 digest of an artifact.
pub type Digest256 = [u8; 32];

/// A CVM release: what runs, and everything needed to recompute its measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Platform and measurement.
    pub measurement: Measurement,
    /// Release version (token).
    pub version: String,
    /// Source repository URL.
    pub source: String,
    /// Source commit (20- or 32-byte hash).
    pub commit: Vec<u8>,
    /// SHA-256 of the firmware image (OVMF / TDVF).
    pub firmware: Digest256,
    /// SHA-256 of the kernel.
    pub kernel: Digest256,
    /// SHA-256 of the initrd.
    pub initrd: Digest256,
    /// SHA-256 of the kernel command line (as measured: with its trailing NUL).
    pub cmdline: Digest256,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// vCPU model (for example `EPYC-v4`).
    pub vcpu_type: String,
    /// Guest features (SEV_FEATURES) as a number.
    pub guest_features: u64,
    /// VMM type (for example `qemu`, `ec2`).
    pub vmm_type: String,
    /// SHA-256 of the model weights file.
    pub model: Digest256,
    /// Minimum TCB as platform bytes (SNP: 8-byte TCB_VERSION; TDX: 16-byte TEE_TCB_SVN).
    pub min_tcb: Vec<u8>,
    /// Seconds since the Unix epoch after which the release must not be trusted.
    pub not_after: u64,
}

impl Release {
    /// A release of `measurement` valid until `not_after`, describing no real build:
    /// placeholder digests (firmware `01…`, kernel `02…`, initrd `03…`, command line `04…`,
    /// model `05…`), version `1.0.0`, 4 `EPYC-v4` vCPUs on `qemu`, and a zero minimum TCB.
    /// For examples, tests and benchmarks; change fields with struct update syntax.
    ///
    /// ```
    /// use lucent_verifier::statement::{Measurement, Platform, Release};
    /// let m = Measurement::new(Platform::SevSnp, &[0xab; 48]).unwrap();
    /// let r = Release { version: "2.0.0".into(), ..Release::example(m, 1_900_000_000) };
    /// assert_eq!(r.min_tcb.len(), Platform::SevSnp.min_tcb_len());
    /// ```
    pub fn example(measurement: Measurement, not_after: u64) -> Release {
        let min_tcb = vec![0; measurement.platform().min_tcb_len()];
        Release {
            measurement,
            version: "1.0.0".into(),
            source: "https://github.com/lucent-tee/lucent".into(),
            commit: vec![0x11; 20],
            firmware: [1; 32],
            kernel: [2; 32],
            initrd: [3; 32],
            cmdline: [4; 32],
            vcpus: 4,
            vcpu_type: "EPYC-v4".into(),
            guest_features: 1,
            vmm_type: "qemu".into(),
            model: [5; 32],
            min_tcb,
            not_after,
        }
    }
}

/// An RFC 9458 key configuration published for clients, with its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    /// The RFC 9458 key identifier.
    pub key_id: u8,
    /// The encoded key configuration.
    pub config: Vec<u8>,
    /// Start of validity (seconds since the Unix epoch).
    pub not_before: u64,
    /// End of validity.
    pub not_after: u64,
}

/// A Privacy Pass issuer's public key (token type `0x0001`), logged so that every client
/// gets tokens under the same key: a key made for one person would tell the gateway who
/// redeems. The gateway accepts tokens only under a logged key, within its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The issuer's name: the token challenge's `issuer_name`.
    pub name: String,
    /// `SerializeElement(pkI)` (a compressed P-384 point, checked when parsed).
    pub public_key: IssuerPublicKey,
    /// Start of validity (seconds since the Unix epoch).
    pub not_before: u64,
    /// End of validity: tokens under the key are refused afterwards.
    pub not_after: u64,
}

/// Withdraws a release, by measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke {
    /// The revoked measurement.
    pub measurement: Measurement,
    /// Why, for humans.
    pub reason: String,
}

/// Any statement.
// A release is a few hundred bytes and statements are parsed one at a time; boxing it would
// only add an allocation and noise at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `lucent/release/v1`.
    Release(Release),
    /// `lucent/keyconfig/v1`.
    KeyConfig(KeyConfig),
    /// `lucent/revoke/v1`.
    Revoke(Revoke),
    /// `lucent/issuer/v1`.
    Issuer(Issuer),
}

impl Statement {
    /// The type line.
    pub fn type_line(&self) -> &'static str {
        match self {
            Statement::Release(_) => RELEASE_V1,
            Statement::KeyConfig(_) => KEYCONFIG_V1,
            Statement::Revoke(_) => REVOKE_V1,
            Statement::Issuer(_) => ISSUER_V1,
        }
    }

    /// The canonical note text (type line and fields, each line ending in a newline).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut put = |k: &str, v: &str| {
            out.push_str(k);
            out.push(' ');
            out.push_str(v);
            out.push('\n');
        };
        match self {
            Statement::Release(r) => {
                put("platform", r.measurement.platform.as_str());
                put("measurement", &r.measurement.to_hex());
                put("version", &r.version);
                put("source", &r.source);
                put("commit", &hex::encode(&r.commit));
                put("firmware", &hex::encode(r.firmware));
                put("kernel", &hex::encode(r.kernel));
                put("initrd", &hex::encode(r.initrd));
                put("cmdline", &hex::encode(r.cmdline));
                put("vcpus", &r.vcpus.to_string());
                put("vcpu-type", &r.vcpu_type);
                put("guest-features", &r.guest_features.to_string());
                put("vmm-type", &r.vmm_type);
                put("model", &hex::encode(r.model));
                put("min-tcb", &hex::encode(&r.min_tcb));
                put("not-after", &r.not_after.to_string());
            }
            Statement::KeyConfig(k) => {
                put("key-id", &k.key_id.to_string());
                put("config", &hex::encode(&k.config));
                put("not-before", &k.not_before.to_string());
                put("not-after", &k.not_after.to_string());
            }
            Statement::Revoke(r) => {
                put("platform", r.measurement.platform.as_str());
                put("measurement", &r.measurement.to_hex());
                put("reason", &r.reason);
            }
            Statement::Issuer(i) => {
                put("token-type", &TOKEN_TYPE.to_string());
                put("name", &i.name);
                put("public-key", &hex::encode(i.public_key.as_bytes()));
                put("not-before", &i.not_before.to_string());
                put("not-after", &i.not_after.to_string());
            }
        }
        format!("{}\n{out}", self.type_line())
    }

    /// Signs the canonical text and returns the statement note: the exact bytes to submit.
    /// The statement is checked by parsing it back, so a value that would not parse is refused.
    pub fn sign(&self, signer: &NoteSigner) -> Result<Vec<u8>, StatementError> {
        let text = self.to_text();
        let parsed = parse_text(text.as_bytes())?;
        if &parsed != self {
            return Err(StatementError::BadValue {
                key: "statement",
                why: "does not survive a parse round trip".into(),
            });
        }
        Ok(signer.sign(text.as_bytes())?)
    }
}

/// A statement whose operator signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedStatement {
    /// The typed statement.
    pub statement: Statement,
    /// The exact note bytes (the log entry).
    pub bytes: Vec<u8>,
    /// Names of the operator keys that signed it.
    pub signers: Vec<String>,
}

/// Refuses a note larger than [`MAX_STATEMENT_BYTES`].
fn check_size(note_bytes: &[u8]) -> Result<(), StatementError> {
    match note_bytes.len() {
        got if got > MAX_STATEMENT_BYTES => Err(StatementError::TooLarge {
            got,
            limit: MAX_STATEMENT_BYTES,
        }),
        _ => Ok(()),
    }
}

/// Parses a statement note and checks that an operator key signed it.
pub fn verify_statement(
    note_bytes: &[u8],
    operators: &[NoteVerifierKey],
) -> Result<SignedStatement, StatementError> {
    check_size(note_bytes)?;
    let keys: Vec<&dyn NoteKey> = operators.iter().map(|k| k as &dyn NoteKey).collect();
    let opened = note::open(note_bytes, &keys)?;
    let statement = parse_text(&opened.text)?;
    Ok(SignedStatement {
        statement,
        bytes: note_bytes.to_vec(),
        signers: opened.verified.into_iter().map(|s| s.name).collect(),
    })
}

/// The log's submission rule: [`verify_statement`], and every signature line is by an allowed
/// operator key, each key once. One statement then has few encodings, all an operator's own;
/// the log also keeps each statement text once ([`crate::note::text_hash`]).
pub fn verify_log_entry(
    note_bytes: &[u8],
    operators: &[NoteVerifierKey],
) -> Result<SignedStatement, StatementError> {
    let signed = verify_statement(note_bytes, operators)?;
    let (_, lines) = note::parse_unverified(note_bytes)?;
    let mut seen: Vec<(&str, u32)> = Vec::with_capacity(lines.len());
    for line in &lines {
        let known = operators
            .iter()
            .any(|k| k.name() == line.name && k.key_id() == line.id);
        if !known {
            return Err(StatementError::ForeignSignature {
                name: line.name.clone(),
                id: line.id,
            });
        }
        if seen.contains(&(line.name.as_str(), line.id)) {
            return Err(StatementError::DuplicateSignature {
                name: line.name.clone(),
                id: line.id,
            });
        }
        seen.push((&line.name, line.id));
    }
    Ok(signed)
}

/// Parses a statement note without checking signatures (for display and for monitors that
/// collect unknown operators); the layout of the note is still checked.
pub fn parse_unverified(note_bytes: &[u8]) -> Result<Statement, StatementError> {
    check_size(note_bytes)?;
    let (text, _) = note::parse_unverified(note_bytes)?;
    parse_text(&text)
}

/// Reads `key value` lines in a fixed order.
struct Fields<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Fields<'a> {
    /// Line number of the next field line in the note text (the type line is line 1).
    fn line_no(&self) -> usize {
        self.pos + 2
    }

    fn next(&mut self, want: &'static str) -> Result<&'a str, StatementError> {
        let line_no = self.line_no();
        let Some(&line) = self.lines.get(self.pos) else {
            return Err(StatementError::MissingKey(want));
        };
        self.pos += 1;
        let (key, value) = line
            .split_once(' ')
            .ok_or(StatementError::BadLine { line: line_no })?;
        if key != want {
            return Err(StatementError::UnexpectedKey {
                line: line_no,
                got: key.chars().take(MAX_TOKEN_LEN).collect(),
                want,
            });
        }
        if value.is_empty() || value.starts_with(' ') || value.ends_with(' ') {
            return Err(StatementError::BadValue {
                key: want,
                why: "empty value or stray spaces".into(),
            });
        }
        Ok(value)
    }

    fn finish(self) -> Result<(), StatementError> {
        match self.lines.get(self.pos) {
            None => Ok(()),
            Some(line) => Err(StatementError::TrailingKey {
                line: self.line_no(),
                got: line
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(MAX_TOKEN_LEN)
                    .collect(),
            }),
        }
    }

    fn hex_exact(&mut self, key: &'static str, len: usize) -> Result<Vec<u8>, StatementError> {
        let v = self.next(key)?;
        decode_hex(key, v, Some(len))
    }

    fn digest(&mut self, key: &'static str) -> Result<Digest256, StatementError> {
        let v = self.hex_exact(key, 32)?;
        v.try_into().map_err(|_| StatementError::BadValue {
            key,
            why: "want 32 bytes".into(),
        })
    }

    /// `not-before` and `not-after`, a non-empty window.
    fn validity(&mut self) -> Result<(u64, u64), StatementError> {
        let not_before = self.number("not-before")?;
        let not_after = self.number("not-after")?;
        if not_before > not_after {
            return Err(StatementError::EmptyValidity {
                not_before,
                not_after,
            });
        }
        Ok((not_before, not_after))
    }

    fn number(&mut self, key: &'static str) -> Result<u64, StatementError> {
        let v = self.next(key)?;
        parse_decimal(key, v)
    }

    fn token(&mut self, key: &'static str) -> Result<String, StatementError> {
        let v = self.next(key)?;
        if !is_token(v) {
            return Err(StatementError::BadValue {
                key,
                why: format!("want 1 to {MAX_TOKEN_LEN} of [A-Za-z0-9._+-]"),
            });
        }
        Ok(v.to_owned())
    }

    fn text(&mut self, key: &'static str, spaces: bool) -> Result<String, StatementError> {
        let v = self.next(key)?;
        let ok = v.len() <= MAX_TEXT_LEN
            && v.bytes()
                .all(|b| b.is_ascii_graphic() || (spaces && b == b' '));
        if !ok {
            return Err(StatementError::BadValue {
                key,
                why: format!("want at most {MAX_TEXT_LEN} printable ASCII characters"),
            });
        }
        Ok(v.to_owned())
    }
}

fn decode_hex(key: &'static str, v: &str, len: Option<usize>) -> Result<Vec<u8>, StatementError> {
    if !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(StatementError::BadValue {
            key,
            why: "want lowercase hex".into(),
        });
    }
    let bytes = hex::decode(v).map_err(|_| StatementError::BadValue {
        key,
        why: "odd number of hex digits".into(),
    })?;
    if let Some(len) = len {
        if bytes.len() != len {
            return Err(StatementError::BadValue {
                key,
                why: format!("{} bytes, want {len}", bytes.len()),
            });
        }
    }
    Ok(bytes)
}

fn parse_decimal(key: &'static str, v: &str) -> Result<u64, StatementError> {
    let canonical =
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    if !canonical {
        return Err(StatementError::BadValue {
            key,
            why: "want a canonical decimal number".into(),
        });
    }
    v.parse().map_err(|_| StatementError::BadValue {
        key,
        why: "number does not fit in 64 bits".into(),
    })
}

fn measurement(f: &mut Fields<'_>) -> Result<Measurement, StatementError> {
    let platform = Platform::parse(f.next("platform")?)?;
    let bytes = f.hex_exact("measurement", platform.measurement_len())?;
    Measurement::new(platform, &bytes)
}

/// Whether `v` is a statement token (a version, a name): 1 to [`MAX_TOKEN_LEN`] of
/// `[A-Za-z0-9._+-]`. Services check names they will publish (an issuer's) with it.
pub fn is_token(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_TOKEN_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// Parses the text of a statement note (type line, fields; ends in a newline).
pub fn parse_text(text: &[u8]) -> Result<Statement, StatementError> {
    if text.len() > MAX_STATEMENT_BYTES {
        return Err(StatementError::TooLarge {
            got: text.len(),
            limit: MAX_STATEMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(text).map_err(|_| StatementError::Note(NoteError::Malformed))?;
    let body = text
        .strip_suffix('\n')
        .ok_or(StatementError::Note(NoteError::Malformed))?;
    let (type_line, rest) = body.split_once('\n').unwrap_or((body, ""));
    let mut f = Fields {
        lines: if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('\n').collect()
        },
        pos: 0,
    };
    let statement = match type_line {
        RELEASE_V1 => {
            let measurement = measurement(&mut f)?;
            let version = f.token("version")?;
            let source = f.text("source", false)?;
            let commit_hex = f.next("commit")?;
            let commit = decode_hex("commit", commit_hex, None)?;
            if commit.len() != 20 && commit.len() != 32 {
                return Err(StatementError::BadValue {
                    key: "commit",
                    why: format!("{} bytes, want 20 or 32", commit.len()),
                });
            }
            let firmware = f.digest("firmware")?;
            let kernel = f.digest("kernel")?;
            let initrd = f.digest("initrd")?;
            let cmdline = f.digest("cmdline")?;
            let vcpus = f.number("vcpus")?;
            let vcpus = u32::try_from(vcpus)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| StatementError::BadValue {
                    key: "vcpus",
                    why: "want 1 to 2^32-1".into(),
                })?;
            let vcpu_type = f.token("vcpu-type")?;
            let guest_features = f.number("guest-features")?;
            let vmm_type = f.token("vmm-type")?;
            let model = f.digest("model")?;
            let min_tcb = f.hex_exact("min-tcb", measurement.platform.min_tcb_len())?;
            let not_after = f.number("not-after")?;
            Statement::Release(Release {
                measurement,
                version,
                source,
                commit,
                firmware,
                kernel,
                initrd,
                cmdline,
                vcpus,
                vcpu_type,
                guest_features,
                vmm_type,
                model,
                min_tcb,
                not_after,
            })
        }
        KEYCONFIG_V1 => {
            let key_id = f.number("key-id")?;
            let key_id = u8::try_from(key_id).map_err(|_| StatementError::BadValue {
                key: "key-id",
                why: "want 0 to 255".into(),
            })?;
            let config = decode_hex("config", f.next("config")?, None)?;
            if config.is_empty() || config.len() > MAX_KEY_CONFIG_BYTES {
                return Err(StatementError::BadValue {
                    key: "config",
                    why: format!("want 1 to {MAX_KEY_CONFIG_BYTES} bytes"),
                });
            }
            let (not_before, not_after) = f.validity()?;
            Statement::KeyConfig(KeyConfig {
                key_id,
                config,
                not_before,
                not_after,
            })
        }
        ISSUER_V1 => {
            let token_type = f.number("token-type")?;
            if token_type != u64::from(TOKEN_TYPE) {
                return Err(StatementError::BadValue {
                    key: "token-type",
                    why: format!("only {TOKEN_TYPE} is supported"),
                });
            }
            let name = f.token("name")?;
            let public_key = f.hex_exact("public-key", ELEMENT_LEN)?;
            let public_key =
                IssuerPublicKey::parse(&public_key).map_err(|e| StatementError::BadValue {
                    key: "public-key",
                    why: e.to_string(),
                })?;
            let (not_before, not_after) = f.validity()?;
            Statement::Issuer(Issuer {
                name,
                public_key,
                not_before,
                not_after,
            })
        }
        REVOKE_V1 => {
            let measurement = measurement(&mut f)?;
            let reason = f.text("reason", true)?;
            Statement::Revoke(Revoke {
                measurement,
                reason,
            })
        }
        other => {
            return Err(StatementError::UnknownType(
                other.chars().take(MAX_TOKEN_LEN).collect(),
            ))
        }
    };
    f.finish()?;
    Ok(statement)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn sample_release() -> Release {
        Release::example(
            Measurement::new(Platform::SevSnp, &[0xab; 48]).unwrap(),
            1_900_000_000,
        )
    }

    #[test]
    fn roundtrip_and_strictness() {
        let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
        let st = Statement::Release(sample_release());
        let note = st.sign(&op).unwrap();
        let signed = verify_statement(&note, &[op.verifier_key()]).unwrap();
        assert_eq!(signed.statement, st);
        assert_eq!(signed.signers, vec!["operator.example".to_string()]);

        let text = st.to_text();
        let bad = [
            text.replace("vcpus 4", "vcpus 04"),
            text.replace("vcpus 4", "vcpus +4"),
            text.replace("vcpus 4", "vcpus  4"),
            text.replace(&"ab".repeat(48), &"AB".repeat(48)),
            text.replace(&"ab".repeat(48), &"ab".repeat(47)),
            text.replace("version 1.0.0\n", "version 1.0.0\nversion 1.0.0\n"),
            text.replace("version 1.0.0\n", ""),
            text.replace("platform sev-snp", "platform sgx"),
            text.replace("not-after", "not-before"),
            format!("{text}extra 1\n"),
            text.replace("lucent/release/v1", "lucent/release/v2"),
            text.replace("not-after 1900000000", "not-after 99999999999999999999"),
        ];
        for b in &bad {
            assert!(parse_text(b.as_bytes()).is_err(), "accepted: {b}");
        }
    }

    #[test]
    fn keyconfig_and_revoke() {
        let k = Statement::KeyConfig(KeyConfig {
            key_id: 7,
            config: vec![7, 0, 32, 1, 2],
            not_before: 10,
            not_after: 20,
        });
        assert_eq!(parse_text(k.to_text().as_bytes()).unwrap(), k);
        let r = Statement::Revoke(Revoke {
            measurement: Measurement::new(Platform::Tdx, &[1; 240]).unwrap(),
            reason: "CVE-2026-0001 in the initrd".into(),
        });
        assert_eq!(parse_text(r.to_text().as_bytes()).unwrap(), r);
        let empty = "lucent/keyconfig/v1\nkey-id 1\nconfig 00\nnot-before 5\nnot-after 4\n";
        assert!(matches!(
            parse_text(empty.as_bytes()),
            Err(StatementError::EmptyValidity { .. })
        ));
    }

    #[test]
    fn issuer_statement_is_strict() {
        let key = crate::privacy_pass::IssuerKey::derive(&[9; 48]).unwrap();
        let i = Statement::Issuer(Issuer {
            name: "issuer.lucent.example".into(),
            public_key: key.public_key().clone(),
            not_before: 10,
            not_after: 20,
        });
        let text = i.to_text();
        assert_eq!(parse_text(text.as_bytes()).unwrap(), i);
        let pk = hex::encode(key.public_key().as_bytes());
        // The x coordinate of the key with the other sign byte is not the same key; a byte
        // that is no point prefix is no key at all.
        let bad = [
            text.replace("token-type 1", "token-type 2"),
            text.replace("name issuer.lucent.example", "name issuer lucent"),
            text.replace(&pk, &pk[..96]),
            text.replace(&pk, &format!("04{}", &pk[2..])),
            text.replace(&pk, &"00".repeat(49)),
            text.replace("not-before 10", "not-before 30"),
            text.replace("name issuer.lucent.example\n", ""),
        ];
        for b in &bad {
            assert!(parse_text(b.as_bytes()).is_err(), "accepted: {b}");
        }
    }

    #[test]
    fn size_limit_is_the_largest_bundle_entry() {
        assert_eq!(MAX_STATEMENT_BYTES, crate::tiles::MAX_ENTRY_BYTES);
        let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
        let keys = [op.verifier_key()];
        let too_large = vec![b'a'; crate::tiles::MAX_ENTRY_BYTES + 1];
        let want = StatementError::TooLarge {
            got: 65_536,
            limit: 65_535,
        };
        assert_eq!(verify_statement(&too_large, &keys).unwrap_err(), want);
        assert_eq!(parse_unverified(&too_large).unwrap_err(), want);
        assert_eq!(parse_text(&too_large).unwrap_err(), want);
        // One byte less passes the size check (and fails later, as a malformed note).
        let largest = &too_large[..MAX_STATEMENT_BYTES];
        assert!(!matches!(
            verify_statement(largest, &keys),
            Err(StatementError::TooLarge { .. })
        ));
        assert!(!matches!(
            parse_unverified(largest),
            Err(StatementError::TooLarge { .. })
        ));
    }
}
