//! RFC 9458 (Oblivious HTTP) request encapsulation and response sealing, on HPKE (RFC 9180,
//! crate `hpke`), for the inner layer between a client and one attested CVM.
//!
//! The formats are exactly RFC 9458's; only the media-type labels differ. Lucent's inner CVM
//! layer uses [`MediaLabels::LUCENT_CVM`] (`"lucent/cvm request"` / `"lucent/cvm response"`),
//! so a ciphertext made for one layer can never be opened as the other (an OHTTP gateway
//! would use [`MediaLabels::OHTTP_BHTTP`], the RFC's own labels, which also check this code
//! against RFC 9458 Appendix A).
//!
//! # Key configuration (RFC 9458 §3)
//!
//! ```text
//! key_id (1) ‖ kem_id (2) ‖ public_key (Npk = 32) ‖ len (2) ‖ [kdf_id (2) ‖ aead_id (2)]*
//! ```
//!
//! Only KEM `0x0020` (DHKEM(X25519, HKDF-SHA256)) is accepted. The symmetric list may name
//! algorithms this code does not implement (they are kept, and skipped when choosing);
//! implemented are KDF `0x0001` (HKDF-SHA256) with AEAD `0x0001` (AES-128-GCM) or `0x0003`
//! (ChaCha20-Poly1305).
//!
//! # Encapsulated request (RFC 9458 §4.3)
//!
//! ```text
//! hdr   = key_id (1) ‖ kem_id (2) ‖ kdf_id (2) ‖ aead_id (2)
//! info  = request_label ‖ 0x00 ‖ hdr
//! enc, ctx = SetupBaseS(pkR, info)
//! enc_request = hdr ‖ enc (32) ‖ ctx.Seal(aad = "", request)
//! ```
//!
//! # Encapsulated response (RFC 9458 §4.4)
//!
//! ```text
//! secret = ctx.Export(response_label, max(Nn, Nk))
//! response_nonce = random(max(Nn, Nk))
//! prk = HKDF-Extract(salt = enc ‖ response_nonce, secret)
//! key = HKDF-Expand(prk, "key", Nk);  nonce = HKDF-Expand(prk, "nonce", Nn)
//! enc_response = response_nonce ‖ AEAD-Seal(key, nonce, aad = "", response)
//! ```
//!
//! Limits: plaintexts up to [`MAX_PLAINTEXT_BYTES`]; anything longer, shorter than the
//! fixed parts, or naming another key or algorithm is refused with a typed
//! [`EncapsulationError`] before any cryptography. Decrypted plaintexts and derived secrets
//! are held in [`Zeroizing`] buffers. Pure: randomness comes in as an argument.
//!
//! ```
//! use lucent_verifier::encapsulation::{open_request, open_response, seal_request, KeyConfig, KeyPair};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand_core::OsRng;
//! // The CVM: a fresh key pair; its config goes into the attestation bundle.
//! let server = KeyPair::generate(7, &mut rng);
//! let config = KeyConfig::parse(&server.key_config_bytes())?;
//!
//! // The client seals a request to the config; the CVM opens it and seals the answer.
//! let (request, client_ctx) = seal_request(&config, b"summarise: ...", &mut rng)?;
//! let (plaintext, sealer) = open_request(&server, &request)?;
//! assert_eq!(&plaintext[..], b"summarise: ...");
//! let response = sealer.seal_response(b"a summary", &mut rng)?;
//! assert_eq!(&open_response(&client_ctx, &response)?[..], b"a summary");
//! # Ok(())
//! # }
//! ```

use aes_gcm::aead::{AeadInPlace, KeyInit};
use hkdf::Hkdf;
use hpke::aead::{Aead as HpkeAead, AeadTag, AesGcm128, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// KEM id of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1).
pub const KEM_X25519_HKDF_SHA256: u16 = 0x0020;
/// KDF id of HKDF-SHA256 (RFC 9180 §7.2).
pub const KDF_HKDF_SHA256: u16 = 0x0001;
/// AEAD id of AES-128-GCM (RFC 9180 §7.3).
pub const AEAD_AES_128_GCM: u16 = 0x0001;
/// AEAD id of ChaCha20-Poly1305 (RFC 9180 §7.3).
pub const AEAD_CHACHA20_POLY1305: u16 = 0x0003;

/// Largest request or response plaintext accepted or produced (1 MiB).
pub const MAX_PLAINTEXT_BYTES: usize = 1 << 20;
/// Length of an X25519 public key and of `enc` (Npk = Nenc).
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of the request header (`key_id ‖ kem_id ‖ kdf_id ‖ aead_id`).
pub const REQUEST_HEADER_LEN: usize = 7;
/// AEAD tag length of both implemented AEADs.
pub const TAG_LEN: usize = 16;
/// Most `(kdf, aead)` pairs accepted in one key config.
pub const MAX_SYMMETRIC_ALGORITHMS: usize = 64;
/// Shortest encapsulated request (empty plaintext).
pub const MIN_REQUEST_BYTES: usize = REQUEST_HEADER_LEN + PUBLIC_KEY_LEN + TAG_LEN;
/// Longest encapsulated request.
pub const MAX_REQUEST_BYTES: usize = MIN_REQUEST_BYTES + MAX_PLAINTEXT_BYTES;
/// Longest encapsulated response (32-byte nonce for ChaCha20-Poly1305).
pub const MAX_RESPONSE_BYTES: usize = 32 + TAG_LEN + MAX_PLAINTEXT_BYTES;

const AEAD_NONCE_LEN: usize = 12;

/// The media-type labels that separate one use of this encapsulation from another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaLabels {
    /// HPKE `info` prefix of requests.
    pub request: &'static [u8],
    /// Exporter context of responses.
    pub response: &'static [u8],
}

impl MediaLabels {
    /// Lucent's inner layer between a client and a CVM.
    pub const LUCENT_CVM: MediaLabels = MediaLabels {
        request: b"lucent/cvm request",
        response: b"lucent/cvm response",
    };
    /// RFC 9458's own labels (Binary HTTP messages through an OHTTP gateway).
    pub const OHTTP_BHTTP: MediaLabels = MediaLabels {
        request: b"message/bhttp request",
        response: b"message/bhttp response",
    };
}

/// Which message a failure concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// A key configuration.
    KeyConfig,
    /// An encapsulated request.
    Request,
    /// An encapsulated response.
    Response,
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::KeyConfig => "key config",
            Message::Request => "encapsulated request",
            Message::Response => "encapsulated response",
        })
    }
}

/// Why an encapsulation step failed. Variants carry lengths and ids, never message content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncapsulationError {
    /// Shorter than its fixed parts.
    #[error("{message} truncated: {got} bytes, need at least {need}")]
    Truncated {
        /// Which message.
        message: Message,
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// Longer than the limit.
    #[error("{message} oversized: {got} bytes, limit {limit}")]
    Oversized {
        /// Which message.
        message: Message,
        /// Limit.
        limit: usize,
        /// Bytes given.
        got: usize,
    },
    /// A key config with bytes after its symmetric algorithm list.
    #[error("key config has {extra} trailing bytes")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A key config whose symmetric algorithm list length is malformed.
    #[error(
        "key config symmetric algorithms length {len} is not a non-zero multiple of 4 up to {max}"
    )]
    BadAlgorithmList {
        /// Length field.
        len: usize,
        /// Largest accepted (bytes).
        max: usize,
    },
    /// The request is for another key.
    #[error("request is for key id {got}, this key is {want}")]
    WrongKeyId {
        /// Key id in the request.
        got: u8,
        /// Key id of the key pair.
        want: u8,
    },
    /// A KEM other than X25519-HKDF-SHA256.
    #[error("{message} names unsupported KEM {id:#06x}")]
    UnsupportedKem {
        /// Which message.
        message: Message,
        /// KEM id.
        id: u16,
    },
    /// A KDF other than HKDF-SHA256.
    #[error("{message} names unsupported KDF {id:#06x}")]
    UnsupportedKdf {
        /// Which message.
        message: Message,
        /// KDF id.
        id: u16,
    },
    /// An AEAD other than AES-128-GCM or ChaCha20-Poly1305.
    #[error("{message} names unsupported AEAD {id:#06x}")]
    UnsupportedAead {
        /// Which message.
        message: Message,
        /// AEAD id.
        id: u16,
    },
    /// The request uses a supported pair the key config does not offer.
    #[error("request uses KDF {kdf:#06x} / AEAD {aead:#06x}, which key {key_id} does not offer")]
    AlgorithmNotOffered {
        /// Key id.
        key_id: u8,
        /// KDF id.
        kdf: u16,
        /// AEAD id.
        aead: u16,
    },
    /// The key config offers no implemented `(kdf, aead)` pair.
    #[error("key config {key_id} offers no supported symmetric algorithms")]
    NoSupportedAlgorithm {
        /// Key id.
        key_id: u8,
    },
    /// The X25519 exchange with the encapsulated key failed (a low-order point).
    #[error("decapsulation of the request's encapsulated key failed")]
    Decapsulation,
    /// The AEAD rejected the ciphertext (tampered, wrong key, wrong label or header).
    #[error("{message} did not authenticate")]
    Aead {
        /// Which message.
        message: Message,
    },
    /// The HPKE library refused an operation that cannot fail on valid inputs.
    #[error("HPKE operation failed: {0}")]
    Hpke(String),
}

/// An implemented AEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// AES-128-GCM (`0x0001`).
    Aes128Gcm,
    /// ChaCha20-Poly1305 (`0x0003`).
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    /// The RFC 9180 id.
    pub fn id(self) -> u16 {
        match self {
            AeadAlgorithm::Aes128Gcm => AEAD_AES_128_GCM,
            AeadAlgorithm::ChaCha20Poly1305 => AEAD_CHACHA20_POLY1305,
        }
    }

    /// The algorithm with RFC 9180 id `id`, if implemented.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            AEAD_AES_128_GCM => Some(AeadAlgorithm::Aes128Gcm),
            AEAD_CHACHA20_POLY1305 => Some(AeadAlgorithm::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// Key length Nk.
    pub fn key_len(self) -> usize {
        match self {
            AeadAlgorithm::Aes128Gcm => 16,
            AeadAlgorithm::ChaCha20Poly1305 => 32,
        }
    }

    /// `max(Nn, Nk)`: the exported secret's and the response nonce's length.
    pub fn response_nonce_len(self) -> usize {
        self.key_len().max(AEAD_NONCE_LEN)
    }
}

/// One `(kdf, aead)` pair of a key config, as listed (possibly not implemented here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymmetricAlgorithms {
    /// KDF id.
    pub kdf: u16,
    /// AEAD id.
    pub aead: u16,
}

impl SymmetricAlgorithms {
    /// HKDF-SHA256 with AES-128-GCM.
    pub const HKDF_SHA256_AES_128_GCM: Self = Self {
        kdf: KDF_HKDF_SHA256,
        aead: AEAD_AES_128_GCM,
    };
    /// HKDF-SHA256 with ChaCha20-Poly1305.
    pub const HKDF_SHA256_CHACHA20_POLY1305: Self = Self {
        kdf: KDF_HKDF_SHA256,
        aead: AEAD_CHACHA20_POLY1305,
    };

    /// The AEAD, when this pair is implemented.
    pub fn supported(self) -> Option<AeadAlgorithm> {
        if self.kdf == KDF_HKDF_SHA256 {
            AeadAlgorithm::from_id(self.aead)
        } else {
            None
        }
    }
}

/// An RFC 9458 key configuration for DHKEM(X25519, HKDF-SHA256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyConfig {
    /// Key identifier.
    pub key_id: u8,
    /// The X25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Offered `(kdf, aead)` pairs, in the order listed (never empty).
    pub symmetric: Vec<SymmetricAlgorithms>,
}

/// Encoded length of a key config with `n` symmetric pairs.
fn key_config_len(n: usize) -> usize {
    1 + 2 + PUBLIC_KEY_LEN + 2 + 4 * n
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl KeyConfig {
    /// Largest encoded key config accepted.
    pub const MAX_BYTES: usize = 1 + 2 + PUBLIC_KEY_LEN + 2 + 4 * MAX_SYMMETRIC_ALGORITHMS;

    /// Parses exactly one key config (no trailing bytes). Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, EncapsulationError> {
        let message = Message::KeyConfig;
        if bytes.len() > Self::MAX_BYTES {
            return Err(EncapsulationError::Oversized {
                message,
                limit: Self::MAX_BYTES,
                got: bytes.len(),
            });
        }
        let fixed = key_config_len(0);
        if bytes.len() < fixed {
            return Err(EncapsulationError::Truncated {
                message,
                need: fixed,
                got: bytes.len(),
            });
        }
        let key_id = bytes[0];
        let kem = be16(bytes, 1);
        if kem != KEM_X25519_HKDF_SHA256 {
            return Err(EncapsulationError::UnsupportedKem { message, id: kem });
        }
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        public_key.copy_from_slice(&bytes[3..3 + PUBLIC_KEY_LEN]);
        let list_len = usize::from(be16(bytes, 3 + PUBLIC_KEY_LEN));
        if list_len == 0 || list_len % 4 != 0 || list_len > 4 * MAX_SYMMETRIC_ALGORITHMS {
            return Err(EncapsulationError::BadAlgorithmList {
                len: list_len,
                max: 4 * MAX_SYMMETRIC_ALGORITHMS,
            });
        }
        let need = fixed + list_len;
        if bytes.len() < need {
            return Err(EncapsulationError::Truncated {
                message,
                need,
                got: bytes.len(),
            });
        }
        if bytes.len() > need {
            return Err(EncapsulationError::TrailingBytes {
                extra: bytes.len() - need,
            });
        }
        let symmetric = bytes[fixed..]
            .chunks_exact(4)
            .map(|c| SymmetricAlgorithms {
                kdf: be16(c, 0),
                aead: be16(c, 2),
            })
            .collect();
        Ok(KeyConfig {
            key_id,
            public_key,
            symmetric,
        })
    }

    /// The RFC 9458 encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(key_config_len(self.symmetric.len()));
        out.push(self.key_id);
        out.extend_from_slice(&KEM_X25519_HKDF_SHA256.to_be_bytes());
        out.extend_from_slice(&self.public_key);
        // At most MAX_SYMMETRIC_ALGORITHMS pairs come from `parse` or `KeyPair`; a longer
        // hand-built list saturates and would then be refused by `parse`.
        let list_len = u16::try_from(4 * self.symmetric.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&list_len.to_be_bytes());
        for s in &self.symmetric {
            out.extend_from_slice(&s.kdf.to_be_bytes());
            out.extend_from_slice(&s.aead.to_be_bytes());
        }
        out
    }

    /// The first listed pair this code implements.
    pub fn preferred(&self) -> Result<AeadAlgorithm, EncapsulationError> {
        self.symmetric.iter().find_map(|s| s.supported()).ok_or(
            EncapsulationError::NoSupportedAlgorithm {
                key_id: self.key_id,
            },
        )
    }
}

type PrivateKey = <X25519HkdfSha256 as hpke::Kem>::PrivateKey;
type PublicKey = <X25519HkdfSha256 as hpke::Kem>::PublicKey;
type EncappedKey = <X25519HkdfSha256 as hpke::Kem>::EncappedKey;

/// A CVM's (or gateway's) HPKE key pair with its key id and offered algorithms. The private
/// key zeroises itself on drop and is never printed.
#[derive(Clone)]
pub struct KeyPair {
    key_id: u8,
    private_key: PrivateKey,
    public_key: PublicKey,
    symmetric: Vec<SymmetricAlgorithms>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("key_id", &self.key_id)
            .field("public_key", &hex::encode(self.public_key.to_bytes()))
            .finish_non_exhaustive()
    }
}

/// Both implemented pairs, AES-128-GCM first (RFC 9458's mandatory-to-implement suite).
const DEFAULT_SYMMETRIC: [SymmetricAlgorithms; 2] = [
    SymmetricAlgorithms::HKDF_SHA256_AES_128_GCM,
    SymmetricAlgorithms::HKDF_SHA256_CHACHA20_POLY1305,
];

impl KeyPair {
    /// A fresh key pair offering both implemented AEADs.
    pub fn generate<R: CryptoRngCore + ?Sized>(key_id: u8, rng: &mut R) -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut ikm[..]);
        Self::derive(key_id, &ikm[..])
    }

    /// A key pair derived from input keying material (RFC 9180 `DeriveKeyPair`), offering
    /// both implemented AEADs. For tests and benchmarks; use [`KeyPair::generate`] otherwise.
    pub fn derive(key_id: u8, ikm: &[u8]) -> Self {
        let (private_key, public_key) = X25519HkdfSha256::derive_keypair(ikm);
        KeyPair {
            key_id,
            private_key,
            public_key,
            symmetric: DEFAULT_SYMMETRIC.to_vec(),
        }
    }

    /// A key pair from a raw X25519 private key and the pairs to offer (those not
    /// implemented here are refused).
    pub fn from_private_key(
        key_id: u8,
        private_key: &[u8],
        symmetric: Vec<SymmetricAlgorithms>,
    ) -> Result<Self, EncapsulationError> {
        if symmetric.is_empty() || symmetric.len() > MAX_SYMMETRIC_ALGORITHMS {
            return Err(EncapsulationError::BadAlgorithmList {
                len: 4 * symmetric.len(),
                max: 4 * MAX_SYMMETRIC_ALGORITHMS,
            });
        }
        for s in &symmetric {
            if s.kdf != KDF_HKDF_SHA256 {
                return Err(EncapsulationError::UnsupportedKdf {
                    message: Message::KeyConfig,
                    id: s.kdf,
                });
            }
            if AeadAlgorithm::from_id(s.aead).is_none() {
                return Err(EncapsulationError::UnsupportedAead {
                    message: Message::KeyConfig,
                    id: s.aead,
                });
            }
        }
        let private_key = PrivateKey::from_bytes(private_key)
            .map_err(|e| EncapsulationError::Hpke(e.to_string()))?;
        let public_key = X25519HkdfSha256::sk_to_pk(&private_key);
        Ok(KeyPair {
            key_id,
            private_key,
            public_key,
            symmetric,
        })
    }

    /// The key id.
    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// The public key config.
    pub fn key_config(&self) -> KeyConfig {
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        public_key.copy_from_slice(&self.public_key.to_bytes());
        KeyConfig {
            key_id: self.key_id,
            public_key,
            symmetric: self.symmetric.clone(),
        }
    }

    /// The public key config, RFC 9458-encoded (what the CVM binds in its report data).
    pub fn key_config_bytes(&self) -> Vec<u8> {
        self.key_config().encode()
    }
}

/// Adapts the workspace's `rand_core` 0.6 RNG to the 0.9 traits `hpke` 0.13 takes.
struct HpkeRng<'a, R: ?Sized>(&'a mut R);

impl<R: CryptoRngCore + ?Sized> hpke::rand_core::RngCore for HpkeRng<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}

impl<R: CryptoRngCore + ?Sized> hpke::rand_core::CryptoRng for HpkeRng<'_, R> {}

fn request_header(key_id: u8, aead: AeadAlgorithm) -> [u8; REQUEST_HEADER_LEN] {
    let mut h = [0u8; REQUEST_HEADER_LEN];
    h[0] = key_id;
    h[1..3].copy_from_slice(&KEM_X25519_HKDF_SHA256.to_be_bytes());
    h[3..5].copy_from_slice(&KDF_HKDF_SHA256.to_be_bytes());
    h[5..7].copy_from_slice(&aead.id().to_be_bytes());
    h
}

fn request_info(labels: &MediaLabels, hdr: &[u8]) -> Vec<u8> {
    let mut info = Vec::with_capacity(labels.request.len() + 1 + hdr.len());
    info.extend_from_slice(labels.request);
    info.push(0);
    info.extend_from_slice(hdr);
    info
}

/// What a client keeps to open the response to its request: the exported secret and the
/// request's `enc`. Single use; zeroised on drop.
pub struct ResponseContext {
    aead: AeadAlgorithm,
    enc: [u8; PUBLIC_KEY_LEN],
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ResponseContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseContext")
            .field("aead", &self.aead)
            .finish_non_exhaustive()
    }
}

/// What a server keeps to seal the response to one request. Single use; zeroised on drop.
pub struct ResponseSealer {
    ctx: ResponseContext,
}

impl std::fmt::Debug for ResponseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSealer")
            .field("aead", &self.ctx.aead)
            .finish_non_exhaustive()
    }
}

fn hpke_err(e: hpke::HpkeError) -> EncapsulationError {
    EncapsulationError::Hpke(e.to_string())
}

fn seal_generic<A: HpkeAead, R: CryptoRngCore + ?Sized>(
    pk: &PublicKey,
    info: &[u8],
    export_label: &[u8],
    secret_len: usize,
    plaintext: &[u8],
    out: &mut Vec<u8>,
    rng: &mut R,
) -> Result<([u8; PUBLIC_KEY_LEN], Zeroizing<Vec<u8>>), EncapsulationError> {
    let (encapped, mut ctx) = hpke::setup_sender::<A, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        pk,
        info,
        &mut HpkeRng(rng),
    )
    .map_err(hpke_err)?;
    let mut enc = [0u8; PUBLIC_KEY_LEN];
    enc.copy_from_slice(&encapped.to_bytes());
    out.extend_from_slice(&enc);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = ctx
        .seal_in_place_detached(&mut out[start..], b"")
        .map_err(hpke_err)?;
    out.extend_from_slice(&tag.to_bytes());
    let mut secret = Zeroizing::new(vec![0u8; secret_len]);
    ctx.export(export_label, &mut secret[..])
        .map_err(hpke_err)?;
    Ok((enc, secret))
}

/// Seals `plaintext` to `config` with Lucent's CVM labels, using the first implemented
/// algorithm pair it lists. Returns the encapsulated request and the context that opens
/// the response.
pub fn seal_request<R: CryptoRngCore + ?Sized>(
    config: &KeyConfig,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<(Vec<u8>, ResponseContext), EncapsulationError> {
    seal_request_with(
        config,
        config.preferred()?,
        &MediaLabels::LUCENT_CVM,
        plaintext,
        rng,
    )
}

/// [`seal_request`] with a chosen AEAD (which the config must offer) and labels.
pub fn seal_request_with<R: CryptoRngCore + ?Sized>(
    config: &KeyConfig,
    aead: AeadAlgorithm,
    labels: &MediaLabels,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<(Vec<u8>, ResponseContext), EncapsulationError> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(EncapsulationError::Oversized {
            message: Message::Request,
            limit: MAX_PLAINTEXT_BYTES,
            got: plaintext.len(),
        });
    }
    let pair = SymmetricAlgorithms {
        kdf: KDF_HKDF_SHA256,
        aead: aead.id(),
    };
    if !config.symmetric.contains(&pair) {
        return Err(EncapsulationError::AlgorithmNotOffered {
            key_id: config.key_id,
            kdf: pair.kdf,
            aead: pair.aead,
        });
    }
    let pk = PublicKey::from_bytes(&config.public_key).map_err(hpke_err)?;
    let hdr = request_header(config.key_id, aead);
    let info = request_info(labels, &hdr);
    let mut out = Vec::with_capacity(MIN_REQUEST_BYTES + plaintext.len());
    out.extend_from_slice(&hdr);
    let n = aead.response_nonce_len();
    let (enc, secret) = match aead {
        AeadAlgorithm::Aes128Gcm => {
            seal_generic::<AesGcm128, _>(&pk, &info, labels.response, n, plaintext, &mut out, rng)?
        }
        AeadAlgorithm::ChaCha20Poly1305 => seal_generic::<ChaCha20Poly1305, _>(
            &pk,
            &info,
            labels.response,
            n,
            plaintext,
            &mut out,
            rng,
        )?,
    };
    Ok((out, ResponseContext { aead, enc, secret }))
}

/// A plaintext or derived secret, zeroised on drop.
type Secret = Zeroizing<Vec<u8>>;

fn open_generic<A: HpkeAead>(
    sk: &PrivateKey,
    enc: &[u8],
    info: &[u8],
    export_label: &[u8],
    secret_len: usize,
    sealed: &[u8],
) -> Result<(Secret, Secret), EncapsulationError> {
    let encapped = EncappedKey::from_bytes(enc).map_err(hpke_err)?;
    let mut ctx = hpke::setup_receiver::<A, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        sk,
        &encapped,
        info,
    )
    .map_err(|_| EncapsulationError::Decapsulation)?;
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let tag = AeadTag::<A>::from_bytes(tag).map_err(hpke_err)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    ctx.open_in_place_detached(&mut buf[..], b"", &tag)
        .map_err(|_| EncapsulationError::Aead {
            message: Message::Request,
        })?;
    let mut secret = Zeroizing::new(vec![0u8; secret_len]);
    ctx.export(export_label, &mut secret[..])
        .map_err(hpke_err)?;
    Ok((buf, secret))
}

/// Opens an encapsulated request with Lucent's CVM labels. Returns the plaintext and the
/// sealer for its response.
pub fn open_request(
    keypair: &KeyPair,
    request: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, ResponseSealer), EncapsulationError> {
    open_request_with(keypair, &MediaLabels::LUCENT_CVM, request)
}

/// [`open_request`] with other labels.
pub fn open_request_with(
    keypair: &KeyPair,
    labels: &MediaLabels,
    request: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, ResponseSealer), EncapsulationError> {
    let message = Message::Request;
    if request.len() > MAX_REQUEST_BYTES {
        return Err(EncapsulationError::Oversized {
            message,
            limit: MAX_REQUEST_BYTES,
            got: request.len(),
        });
    }
    if request.len() < MIN_REQUEST_BYTES {
        return Err(EncapsulationError::Truncated {
            message,
            need: MIN_REQUEST_BYTES,
            got: request.len(),
        });
    }
    let (hdr, rest) = request.split_at(REQUEST_HEADER_LEN);
    if hdr[0] != keypair.key_id {
        return Err(EncapsulationError::WrongKeyId {
            got: hdr[0],
            want: keypair.key_id,
        });
    }
    let (kem, kdf, aead_id) = (be16(hdr, 1), be16(hdr, 3), be16(hdr, 5));
    if kem != KEM_X25519_HKDF_SHA256 {
        return Err(EncapsulationError::UnsupportedKem { message, id: kem });
    }
    if kdf != KDF_HKDF_SHA256 {
        return Err(EncapsulationError::UnsupportedKdf { message, id: kdf });
    }
    let aead = AeadAlgorithm::from_id(aead_id).ok_or(EncapsulationError::UnsupportedAead {
        message,
        id: aead_id,
    })?;
    if !keypair
        .symmetric
        .contains(&SymmetricAlgorithms { kdf, aead: aead_id })
    {
        return Err(EncapsulationError::AlgorithmNotOffered {
            key_id: keypair.key_id,
            kdf,
            aead: aead_id,
        });
    }
    let (enc, sealed) = rest.split_at(PUBLIC_KEY_LEN);
    let info = request_info(labels, hdr);
    let n = aead.response_nonce_len();
    let sk = &keypair.private_key;
    let (plaintext, secret) = match aead {
        AeadAlgorithm::Aes128Gcm => {
            open_generic::<AesGcm128>(sk, enc, &info, labels.response, n, sealed)?
        }
        AeadAlgorithm::ChaCha20Poly1305 => {
            open_generic::<ChaCha20Poly1305>(sk, enc, &info, labels.response, n, sealed)?
        }
    };
    let mut enc_arr = [0u8; PUBLIC_KEY_LEN];
    enc_arr.copy_from_slice(enc);
    Ok((
        plaintext,
        ResponseSealer {
            ctx: ResponseContext {
                aead,
                enc: enc_arr,
                secret,
            },
        },
    ))
}

/// The response AEAD key and nonce (RFC 9458 §4.4 steps 3–5).
fn response_key(
    ctx: &ResponseContext,
    response_nonce: &[u8],
) -> (Zeroizing<Vec<u8>>, [u8; AEAD_NONCE_LEN]) {
    let mut salt = Vec::with_capacity(PUBLIC_KEY_LEN + response_nonce.len());
    salt.extend_from_slice(&ctx.enc);
    salt.extend_from_slice(response_nonce);
    let hk = Hkdf::<Sha256>::new(Some(&salt), &ctx.secret);
    let mut key = Zeroizing::new(vec![0u8; ctx.aead.key_len()]);
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    // Both lengths are far below HKDF-SHA256's 255 * 32 byte limit.
    hk.expand(b"key", &mut key[..])
        .expect("HKDF-SHA256 expands 16 or 32 bytes");
    hk.expand(b"nonce", &mut nonce)
        .expect("HKDF-SHA256 expands 12 bytes");
    (key, nonce)
}

fn response_aead_seal(
    aead: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8; AEAD_NONCE_LEN],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN], EncapsulationError> {
    let fail = |_| EncapsulationError::Hpke("response AEAD seal".into());
    let tag = match aead {
        AeadAlgorithm::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(|_| EncapsulationError::Hpke("AES-128-GCM key length".into()))?
            .encrypt_in_place_detached(nonce.into(), b"", buf)
            .map_err(fail)?,
        AeadAlgorithm::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| EncapsulationError::Hpke("ChaCha20-Poly1305 key length".into()))?
            .encrypt_in_place_detached(nonce.into(), b"", buf)
            .map_err(fail)?,
    };
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&tag);
    Ok(out)
}

fn response_aead_open(
    aead: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8; AEAD_NONCE_LEN],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), EncapsulationError> {
    let fail = |_| EncapsulationError::Aead {
        message: Message::Response,
    };
    match aead {
        AeadAlgorithm::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(|_| EncapsulationError::Hpke("AES-128-GCM key length".into()))?
            .decrypt_in_place_detached(nonce.into(), b"", buf, tag.into())
            .map_err(fail),
        AeadAlgorithm::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| EncapsulationError::Hpke("ChaCha20-Poly1305 key length".into()))?
            .decrypt_in_place_detached(nonce.into(), b"", buf, tag.into())
            .map_err(fail),
    }
}

impl ResponseSealer {
    /// The AEAD the request used (the response uses the same).
    pub fn aead(&self) -> AeadAlgorithm {
        self.ctx.aead
    }

    /// Seals the response with a fresh random response nonce.
    pub fn seal_response<R: CryptoRngCore + ?Sized>(
        self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, EncapsulationError> {
        let mut nonce = vec![0u8; self.ctx.aead.response_nonce_len()];
        rng.fill_bytes(&mut nonce);
        self.seal_response_with_nonce(plaintext, &nonce)
    }

    /// Seals the response with a given response nonce (RFC 9458 test vectors; otherwise
    /// use [`ResponseSealer::seal_response`]).
    pub fn seal_response_with_nonce(
        self,
        plaintext: &[u8],
        response_nonce: &[u8],
    ) -> Result<Vec<u8>, EncapsulationError> {
        let want = self.ctx.aead.response_nonce_len();
        if response_nonce.len() != want {
            return Err(EncapsulationError::Truncated {
                message: Message::Response,
                need: want,
                got: response_nonce.len(),
            });
        }
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(EncapsulationError::Oversized {
                message: Message::Response,
                limit: MAX_PLAINTEXT_BYTES,
                got: plaintext.len(),
            });
        }
        let (key, nonce) = response_key(&self.ctx, response_nonce);
        let mut out = Vec::with_capacity(want + plaintext.len() + TAG_LEN);
        out.extend_from_slice(response_nonce);
        out.extend_from_slice(plaintext);
        let tag = response_aead_seal(self.ctx.aead, &key, &nonce, &mut out[want..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }
}

/// Opens an encapsulated response with the context kept from [`seal_request`].
pub fn open_response(
    ctx: &ResponseContext,
    response: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EncapsulationError> {
    let message = Message::Response;
    let n = ctx.aead.response_nonce_len();
    let limit = n + TAG_LEN + MAX_PLAINTEXT_BYTES;
    if response.len() > limit {
        return Err(EncapsulationError::Oversized {
            message,
            limit,
            got: response.len(),
        });
    }
    if response.len() < n + TAG_LEN {
        return Err(EncapsulationError::Truncated {
            message,
            need: n + TAG_LEN,
            got: response.len(),
        });
    }
    let (response_nonce, sealed) = response.split_at(n);
    let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let (key, nonce) = response_key(ctx, response_nonce);
    let mut buf = Zeroizing::new(ct.to_vec());
    response_aead_open(ctx.aead, &key, &nonce, &mut buf[..], tag)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 9458 Appendix A ("Complete Example of a Request and Response"), verbatim.
    const RFC_SK: &str = "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a";
    const RFC_CONFIG: &str =
        "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003";
    const RFC_REQUEST: &str = "00034745540568747470730b6578616d706c652e636f6d012f";
    const RFC_ENC_REQUEST: &str = "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525";
    const RFC_RESPONSE: &str = "0140c8";
    const RFC_RESPONSE_NONCE: &str = "c789e7151fcba46158ca84b04464910d";
    const RFC_ENC_RESPONSE: &str =
        "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd";

    fn rfc_keypair() -> KeyPair {
        KeyPair::from_private_key(1, &unhex(RFC_SK), DEFAULT_SYMMETRIC.to_vec()).unwrap()
    }

    #[test]
    fn rfc9458_key_config_vector() {
        let kp = rfc_keypair();
        assert_eq!(hex::encode(kp.key_config_bytes()), RFC_CONFIG);
        let parsed = KeyConfig::parse(&unhex(RFC_CONFIG)).unwrap();
        assert_eq!(parsed, kp.key_config());
        assert_eq!(parsed.encode(), unhex(RFC_CONFIG));
    }

    #[test]
    fn rfc9458_gateway_vector() {
        let kp = rfc_keypair();
        let (plain, sealer) =
            open_request_with(&kp, &MediaLabels::OHTTP_BHTTP, &unhex(RFC_ENC_REQUEST)).unwrap();
        assert_eq!(&plain[..], &unhex(RFC_REQUEST)[..]);
        let resp = sealer
            .seal_response_with_nonce(&unhex(RFC_RESPONSE), &unhex(RFC_RESPONSE_NONCE))
            .unwrap();
        assert_eq!(hex::encode(resp), RFC_ENC_RESPONSE);
    }

    #[test]
    fn lucent_labels_do_not_open_rfc_requests() {
        let kp = rfc_keypair();
        assert_eq!(
            open_request(&kp, &unhex(RFC_ENC_REQUEST)).unwrap_err(),
            EncapsulationError::Aead {
                message: Message::Request
            }
        );
    }

    fn round_trip(aead: AeadAlgorithm, labels: &MediaLabels, len: usize) {
        let mut rng = rand_core::OsRng;
        let kp = KeyPair::generate(9, &mut rng);
        let config = KeyConfig::parse(&kp.key_config_bytes()).unwrap();
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let (req, ctx) = seal_request_with(&config, aead, labels, &msg, &mut rng).unwrap();
        assert_eq!(req.len(), MIN_REQUEST_BYTES + len);
        let (plain, sealer) = open_request_with(&kp, labels, &req).unwrap();
        assert_eq!(&plain[..], &msg[..]);
        assert_eq!(sealer.aead(), aead);
        let resp = sealer.seal_response(&msg, &mut rng).unwrap();
        assert_eq!(resp.len(), aead.response_nonce_len() + len + TAG_LEN);
        assert_eq!(&open_response(&ctx, &resp).unwrap()[..], &msg[..]);
    }

    #[test]
    fn round_trips_both_aeads_and_sizes() {
        for aead in [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::ChaCha20Poly1305] {
            for len in [0, 1, 100, 4096] {
                round_trip(aead, &MediaLabels::LUCENT_CVM, len);
                round_trip(aead, &MediaLabels::OHTTP_BHTTP, len);
            }
        }
        round_trip(
            AeadAlgorithm::ChaCha20Poly1305,
            &MediaLabels::LUCENT_CVM,
            MAX_PLAINTEXT_BYTES,
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_request_is_rejected() {
        let mut rng = rand_core::OsRng;
        for aead in [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::ChaCha20Poly1305] {
            let kp = KeyPair::generate(3, &mut rng);
            let (req, _) = seal_request_with(
                &kp.key_config(),
                aead,
                &MediaLabels::LUCENT_CVM,
                b"hello cvm",
                &mut rng,
            )
            .unwrap();
            assert!(open_request(&kp, &req).is_ok());
            for n in 0..req.len() {
                let err = open_request(&kp, &req[..n]).unwrap_err();
                if n < MIN_REQUEST_BYTES {
                    assert!(
                        matches!(err, EncapsulationError::Truncated { .. }),
                        "{n}: {err}"
                    );
                } else {
                    assert_eq!(
                        err,
                        EncapsulationError::Aead {
                            message: Message::Request
                        }
                    );
                }
            }
            for i in 0..req.len() * 8 {
                let mut bad = req.clone();
                bad[i / 8] ^= 1 << (i % 8);
                let err = open_request(&kp, &bad).unwrap_err();
                match i / 8 {
                    0 => assert!(matches!(err, EncapsulationError::WrongKeyId { .. })),
                    1 | 2 => assert!(matches!(err, EncapsulationError::UnsupportedKem { .. })),
                    3 | 4 => assert!(matches!(err, EncapsulationError::UnsupportedKdf { .. })),
                    _ => assert!(
                        matches!(
                            err,
                            EncapsulationError::UnsupportedAead { .. }
                                | EncapsulationError::Aead { .. }
                                | EncapsulationError::Decapsulation
                        ),
                        "bit {i}: {err}"
                    ),
                }
            }
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_response_is_rejected() {
        let mut rng = rand_core::OsRng;
        for aead in [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::ChaCha20Poly1305] {
            let kp = KeyPair::generate(3, &mut rng);
            let (req, ctx) = seal_request_with(
                &kp.key_config(),
                aead,
                &MediaLabels::LUCENT_CVM,
                b"q",
                &mut rng,
            )
            .unwrap();
            let (_, sealer) = open_request(&kp, &req).unwrap();
            let resp = sealer.seal_response(b"an answer", &mut rng).unwrap();
            let min = aead.response_nonce_len() + TAG_LEN;
            for n in 0..resp.len() {
                let err = open_response(&ctx, &resp[..n]).unwrap_err();
                if n < min {
                    assert!(matches!(err, EncapsulationError::Truncated { .. }));
                } else {
                    assert_eq!(
                        err,
                        EncapsulationError::Aead {
                            message: Message::Response
                        }
                    );
                }
            }
            for i in 0..resp.len() * 8 {
                let mut bad = resp.clone();
                bad[i / 8] ^= 1 << (i % 8);
                assert_eq!(
                    open_response(&ctx, &bad).unwrap_err(),
                    EncapsulationError::Aead {
                        message: Message::Response
                    }
                );
            }
            // A response to another request does not open under this context.
            let (req2, _) = seal_request(&kp.key_config(), b"q", &mut rng).unwrap();
            let (_, sealer2) = open_request(&kp, &req2).unwrap();
            let other = sealer2.seal_response(b"an answer", &mut rng).unwrap();
            assert!(open_response(&ctx, &other).is_err());
        }
    }

    #[test]
    fn wrong_key_id_wrong_key_and_unoffered_algorithms() {
        let mut rng = rand_core::OsRng;
        let kp = KeyPair::generate(1, &mut rng);
        let other_id = KeyPair::derive(2, &[7; 32]);
        let (req, _) = seal_request(&kp.key_config(), b"x", &mut rng).unwrap();
        assert_eq!(
            open_request(&other_id, &req).unwrap_err(),
            EncapsulationError::WrongKeyId { got: 1, want: 2 }
        );
        // Same key id, different key: the AEAD fails.
        let same_id = KeyPair::derive(1, &[7; 32]);
        assert_eq!(
            open_request(&same_id, &req).unwrap_err(),
            EncapsulationError::Aead {
                message: Message::Request
            }
        );
        // A key pair offering only AES-128-GCM refuses a ChaCha20-Poly1305 request.
        let aes_only = KeyPair::from_private_key(
            4,
            &[9; 32],
            vec![SymmetricAlgorithms::HKDF_SHA256_AES_128_GCM],
        )
        .unwrap();
        let mut cfg = aes_only.key_config();
        cfg.symmetric
            .push(SymmetricAlgorithms::HKDF_SHA256_CHACHA20_POLY1305);
        let (req, _) = seal_request_with(
            &cfg,
            AeadAlgorithm::ChaCha20Poly1305,
            &MediaLabels::LUCENT_CVM,
            b"x",
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            open_request(&aes_only, &req).unwrap_err(),
            EncapsulationError::AlgorithmNotOffered {
                key_id: 4,
                kdf: 1,
                aead: 3
            }
        );
        // And the client refuses to use an unoffered pair.
        assert!(matches!(
            seal_request_with(
                &aes_only.key_config(),
                AeadAlgorithm::ChaCha20Poly1305,
                &MediaLabels::LUCENT_CVM,
                b"x",
                &mut rng
            ),
            Err(EncapsulationError::AlgorithmNotOffered { .. })
        ));
    }

    #[test]
    fn oversized_is_refused_before_crypto() {
        let mut rng = rand_core::OsRng;
        let kp = KeyPair::generate(1, &mut rng);
        let big = vec![0u8; MAX_PLAINTEXT_BYTES + 1];
        assert!(matches!(
            seal_request(&kp.key_config(), &big, &mut rng),
            Err(EncapsulationError::Oversized {
                message: Message::Request,
                ..
            })
        ));
        let req = vec![1u8; MAX_REQUEST_BYTES + 1];
        assert_eq!(
            open_request(&kp, &req).unwrap_err(),
            EncapsulationError::Oversized {
                message: Message::Request,
                limit: MAX_REQUEST_BYTES,
                got: MAX_REQUEST_BYTES + 1
            }
        );
        let (req, ctx) = seal_request(&kp.key_config(), b"x", &mut rng).unwrap();
        let (_, sealer) = open_request(&kp, &req).unwrap();
        assert!(matches!(
            sealer.seal_response(&big, &mut rng),
            Err(EncapsulationError::Oversized {
                message: Message::Response,
                ..
            })
        ));
        let resp = vec![0u8; 16 + TAG_LEN + MAX_PLAINTEXT_BYTES + 1];
        assert!(matches!(
            open_response(&ctx, &resp),
            Err(EncapsulationError::Oversized {
                message: Message::Response,
                ..
            })
        ));
    }

    #[test]
    fn key_config_parse_rejections() {
        let good = unhex(RFC_CONFIG);
        for n in 0..good.len() {
            let err = KeyConfig::parse(&good[..n]).unwrap_err();
            assert!(
                matches!(
                    err,
                    EncapsulationError::Truncated { .. }
                        | EncapsulationError::BadAlgorithmList { .. }
                ),
                "{n}: {err}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            KeyConfig::parse(&long).unwrap_err(),
            EncapsulationError::TrailingBytes { extra: 1 }
        );
        let mut kem = good.clone();
        kem[2] = 0x10; // P-256
        assert_eq!(
            KeyConfig::parse(&kem).unwrap_err(),
            EncapsulationError::UnsupportedKem {
                message: Message::KeyConfig,
                id: 0x0010
            }
        );
        let mut odd = good.clone();
        odd[36] = 6;
        assert!(matches!(
            KeyConfig::parse(&odd),
            Err(EncapsulationError::BadAlgorithmList { len: 6, .. })
        ));
        // Unknown pairs are kept but skipped when choosing.
        let mut unknown = good.clone();
        unknown[38..40].copy_from_slice(&[0, 2]); // HKDF-SHA384 first
        let cfg = KeyConfig::parse(&unknown).unwrap();
        assert_eq!(cfg.preferred().unwrap(), AeadAlgorithm::ChaCha20Poly1305);
        assert!(KeyConfig::parse(&vec![0u8; KeyConfig::MAX_BYTES + 1]).is_err());
    }
}
