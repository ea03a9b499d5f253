//! Privacy Pass tokens (RFC 9576 architecture, RFC 9577 challenge and token, RFC 9578
//! issuance): token type `0x0001`, privately verifiable, VOPRF(P-384, SHA-384) of RFC 9497
//! through the `voprf` crate (no curve arithmetic here). The issuer, the gateway that redeems
//! and `lucent-client` all use these types; nobody declares them again.
//!
//! ```text
//! TokenChallenge = token_type (2) ‖ issuer_name<1..2^16-1> ‖ redemption_context<0..32> ‖ origin_info<0..2^16-1>
//! TokenRequest   = token_type (2) ‖ truncated_token_key_id (1) ‖ blinded_msg (Ne = 49)
//! TokenResponse  = evaluate_msg (Ne = 49) ‖ evaluate_proof (2 × Ns = 96)
//! Token          = token_type (2) ‖ nonce (32) ‖ challenge_digest (32) ‖ token_key_id (32) ‖ authenticator (Nk = 48)
//! token_key_id   = SHA-256(SerializeElement(pkI));  challenge_digest = SHA-256(TokenChallenge)
//! token_input    = token_type ‖ nonce ‖ challenge_digest ‖ token_key_id
//! ```
//!
//! The client blinds `token_input` ([`request_token`]), the issuer evaluates it without
//! learning it ([`IssuerKey::issue`]), the client checks the issuer's proof against the
//! issuer's public key and unblinds ([`PendingToken::finalize`]); the token is redeemed
//! by whoever holds the private key ([`IssuerKey::verify`]). The issuer sees the blinded
//! message, the redeemer the token: nothing links the two. Key consistency (every client
//! using the same issuer key) is what makes that hold, which is why the issuer key is logged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use p384::NistP384;
use rand_core::CryptoRngCore;
use sha2::{Digest as _, Sha256};
use voprf::{BlindedElement, EvaluationElement, Group as _, Proof, VoprfClient, VoprfServer};
use zeroize::Zeroizing;

/// The token type: privately verifiable, VOPRF(P-384, SHA-384) (RFC 9578 §8.2.1).
pub const TOKEN_TYPE: u16 = 0x0001;
/// Size of a serialized P-384 element (compressed point).
pub const ELEMENT_LEN: usize = 49;
/// Size of a serialized P-384 scalar.
pub const SCALAR_LEN: usize = 48;
/// Size of the authenticator (the VOPRF output, SHA-384).
pub const AUTHENTICATOR_LEN: usize = 48;
/// Size of a [`TokenRequest`].
pub const TOKEN_REQUEST_LEN: usize = 2 + 1 + ELEMENT_LEN;
/// Size of a [`TokenResponse`].
pub const TOKEN_RESPONSE_LEN: usize = ELEMENT_LEN + 2 * SCALAR_LEN;
/// Size of a [`Token`].
pub const TOKEN_LEN: usize = 2 + 32 + 32 + 32 + AUTHENTICATOR_LEN;
/// Media type of a token request (RFC 9578 §5.1).
pub const TOKEN_REQUEST_MEDIA_TYPE: &str = "message/token-request";
/// Media type of a token response (RFC 9578 §5.2).
pub const TOKEN_RESPONSE_MEDIA_TYPE: &str = "message/token-response";
/// Issuance at `lucent-issuer`: `POST` a batch of token requests
/// ([`BATCH_REQUEST_MEDIA_TYPE`], [`encode_batch`]) with the account's
/// `Authorization: Bearer <account>.<secret>`; the answer is the batch of token responses
/// ([`BATCH_RESPONSE_MEDIA_TYPE`]), in the same order.
pub const ISSUE_PATH: &str = "/v1/token-requests";
/// The issuer's name and public key ([`IssuerInfo`]); a client uses the key only once it
/// found it logged.
pub const ISSUER_INFO_PATH: &str = "/v1/issuer";
/// Media type of a batch of token requests: a 2-byte count, then that many
/// [`TokenRequest`]s.
pub const BATCH_REQUEST_MEDIA_TYPE: &str = "application/lucent-token-requests";
/// Media type of a batch of token responses: a 2-byte count, then that many
/// [`TokenResponse`]s.
pub const BATCH_RESPONSE_MEDIA_TYPE: &str = "application/lucent-token-responses";
/// Most tokens one batch may ask for.
pub const MAX_BATCH: usize = 100;
/// The `DeriveKeyPair` info of issuer keys (RFC 9578 §5.5).
const KEY_INFO: &[u8] = b"PrivacyPass";

/// Why a Privacy Pass message or operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A message of the wrong size.
    #[error("{what} of {got} bytes, expected {want}")]
    Length {
        /// Which message.
        what: &'static str,
        /// Its size.
        got: usize,
        /// The size it must have.
        want: usize,
    },
    /// A message with a bad inner length or trailing bytes (challenges).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Another token type than `0x0001`.
    #[error("token type {0:#06x} is not supported (only 0x0001)")]
    TokenType(u16),
    /// A request or token for another issuer key.
    #[error("{what} is for another issuer key")]
    WrongKey {
        /// Which message.
        what: &'static str,
    },
    /// A point or scalar that does not decode (not on the curve, the identity, out of range).
    #[error("{0} does not decode as a P-384 element or scalar")]
    Encoding(&'static str),
    /// The issuer's proof does not verify against its public key (a key of its own for this
    /// client, or a forged answer).
    #[error("the issuer's proof does not verify against the issuer key")]
    Proof,
    /// The token's authenticator is not the issuer key's evaluation of its input.
    #[error("the token does not verify under the issuer key")]
    Invalid,
    /// A token for another challenge than the one expected.
    #[error("the token answers another challenge")]
    WrongChallenge,
    /// An `Authorization` value that is not `PrivateToken token=<base64url>`.
    #[error("authorization value is not `PrivateToken token=<base64url>`: {0}")]
    Header(&'static str),
    /// The VOPRF library refused an operation that cannot fail on valid inputs.
    #[error("VOPRF operation failed: {0}")]
    Voprf(String),
}

/// An issuer's public key, as published (and logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerPublicKey {
    bytes: [u8; ELEMENT_LEN],
    key_id: [u8; 32],
}

impl IssuerPublicKey {
    /// Parses `SerializeElement(pkI)`: a compressed P-384 point, not the identity.
    pub fn parse(bytes: &[u8]) -> Result<Self, TokenError> {
        let bytes: [u8; ELEMENT_LEN] = bytes.try_into().map_err(|_| TokenError::Length {
            what: "issuer public key",
            got: bytes.len(),
            want: ELEMENT_LEN,
        })?;
        NistP384::deserialize_elem(&bytes)
            .map_err(|_| TokenError::Encoding("issuer public key"))?;
        Ok(IssuerPublicKey {
            key_id: Sha256::digest(bytes).into(),
            bytes,
        })
    }

    /// Its encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `token_key_id`: SHA-256 of the encoding.
    pub fn key_id(&self) -> [u8; 32] {
        self.key_id
    }

    fn element(&self) -> Result<<NistP384 as voprf::Group>::Elem, TokenError> {
        NistP384::deserialize_elem(&self.bytes)
            .map_err(|_| TokenError::Encoding("issuer public key"))
    }
}

/// What a token is for (RFC 9577 §2.1). Lucent's gateway accepts one challenge from everyone,
/// [`TokenChallenge::for_issuer`] (no redemption context, no origin), so that tokens can be
/// fetched ahead in batches and a token says nothing about who asks or when it was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenChallenge {
    /// The issuer's name.
    pub issuer_name: Vec<u8>,
    /// Empty, or 32 bytes binding the token to one context.
    pub redemption_context: Vec<u8>,
    /// The origins the token may be redeemed at, comma-separated (may be empty).
    pub origin_info: Vec<u8>,
}

impl TokenChallenge {
    /// The one challenge Lucent's tokens answer: the issuer's name, no redemption context
    /// and no origin info (tokens redeemable at any of the operator's gateways, fetched
    /// before they are needed).
    pub fn for_issuer(issuer_name: &str) -> Self {
        TokenChallenge {
            issuer_name: issuer_name.as_bytes().to_vec(),
            redemption_context: Vec::new(),
            origin_info: Vec::new(),
        }
    }

    /// Its encoding; refused when a field is longer than its length prefix allows (an issuer
    /// name or origin info over 65,535 bytes) or the context is neither empty nor 32 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, TokenError> {
        let bad = |reason| TokenError::Malformed {
            what: "token challenge",
            reason,
        };
        let name_len = u16::try_from(self.issuer_name.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad("issuer name empty or over 65,535 bytes"))?;
        let context_len = match self.redemption_context.len() {
            0 => 0u8,
            32 => 32u8,
            _ => return Err(bad("redemption context neither empty nor 32 bytes")),
        };
        let origin_len = u16::try_from(self.origin_info.len())
            .map_err(|_| bad("origin info over 65,535 bytes"))?;
        let mut out = Vec::with_capacity(7 + self.issuer_name.len() + self.origin_info.len() + 32);
        out.extend_from_slice(&TOKEN_TYPE.to_be_bytes());
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(&self.issuer_name);
        out.push(context_len);
        out.extend_from_slice(&self.redemption_context);
        out.extend_from_slice(&origin_len.to_be_bytes());
        out.extend_from_slice(&self.origin_info);
        Ok(out)
    }

    /// Parses an encoding: token type 0x0001, a non-empty issuer name, a context of 0 or
    /// 32 bytes, and nothing after the origin info.
    pub fn decode(bytes: &[u8]) -> Result<Self, TokenError> {
        let bad = |reason| TokenError::Malformed {
            what: "token challenge",
            reason,
        };
        let mut r = Reader(bytes);
        let token_type = r.u16().ok_or_else(|| bad("truncated token type"))?;
        if token_type != TOKEN_TYPE {
            return Err(TokenError::TokenType(token_type));
        }
        let n = usize::from(r.u16().ok_or_else(|| bad("truncated issuer name"))?);
        let issuer_name = r
            .take(n)
            .ok_or_else(|| bad("truncated issuer name"))?
            .to_vec();
        if issuer_name.is_empty() {
            return Err(bad("empty issuer name"));
        }
        let n = usize::from(
            *r.take(1)
                .ok_or_else(|| bad("truncated context"))?
                .first()
                .unwrap_or(&0),
        );
        if n != 0 && n != 32 {
            return Err(bad("redemption context neither empty nor 32 bytes"));
        }
        let redemption_context = r.take(n).ok_or_else(|| bad("truncated context"))?.to_vec();
        let n = usize::from(r.u16().ok_or_else(|| bad("truncated origin info"))?);
        let origin_info = r
            .take(n)
            .ok_or_else(|| bad("truncated origin info"))?
            .to_vec();
        if !r.0.is_empty() {
            return Err(bad("bytes after the origin info"));
        }
        Ok(TokenChallenge {
            issuer_name,
            redemption_context,
            origin_info,
        })
    }

    /// `challenge_digest`: SHA-256 of the encoding.
    pub fn digest(&self) -> Result<[u8; 32], TokenError> {
        Ok(Sha256::digest(self.encode()?).into())
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

fn check_len(what: &'static str, bytes: &[u8], want: usize) -> Result<(), TokenError> {
    if bytes.len() == want {
        Ok(())
    } else {
        Err(TokenError::Length {
            what,
            got: bytes.len(),
            want,
        })
    }
}

fn check_type(bytes: &[u8]) -> Result<(), TokenError> {
    let token_type = u16::from_be_bytes([bytes[0], bytes[1]]);
    if token_type == TOKEN_TYPE {
        Ok(())
    } else {
        Err(TokenError::TokenType(token_type))
    }
}

/// A blinded request for one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The last byte of the issuer's `token_key_id`.
    pub truncated_key_id: u8,
    /// `SerializeElement(blinded_element)`.
    pub blinded: [u8; ELEMENT_LEN],
}

impl TokenRequest {
    /// Its encoding.
    pub fn encode(&self) -> [u8; TOKEN_REQUEST_LEN] {
        let mut out = [0u8; TOKEN_REQUEST_LEN];
        out[..2].copy_from_slice(&TOKEN_TYPE.to_be_bytes());
        out[2] = self.truncated_key_id;
        out[3..].copy_from_slice(&self.blinded);
        out
    }

    /// Parses an encoding (the element is checked when evaluated).
    pub fn decode(bytes: &[u8]) -> Result<Self, TokenError> {
        check_len("token request", bytes, TOKEN_REQUEST_LEN)?;
        check_type(bytes)?;
        let mut blinded = [0u8; ELEMENT_LEN];
        blinded.copy_from_slice(&bytes[3..]);
        Ok(TokenRequest {
            truncated_key_id: bytes[2],
            blinded,
        })
    }
}

/// The issuer's evaluation of a [`TokenRequest`], with its proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenResponse {
    /// `SerializeElement(evaluated_element)`.
    pub evaluated: [u8; ELEMENT_LEN],
    /// `SerializeScalar(c) ‖ SerializeScalar(s)`.
    pub proof: [u8; 2 * SCALAR_LEN],
}

impl TokenResponse {
    /// Its encoding.
    pub fn encode(&self) -> [u8; TOKEN_RESPONSE_LEN] {
        let mut out = [0u8; TOKEN_RESPONSE_LEN];
        out[..ELEMENT_LEN].copy_from_slice(&self.evaluated);
        out[ELEMENT_LEN..].copy_from_slice(&self.proof);
        out
    }

    /// Parses an encoding (the element and proof are checked when finalized).
    pub fn decode(bytes: &[u8]) -> Result<Self, TokenError> {
        check_len("token response", bytes, TOKEN_RESPONSE_LEN)?;
        let mut evaluated = [0u8; ELEMENT_LEN];
        evaluated.copy_from_slice(&bytes[..ELEMENT_LEN]);
        let mut proof = [0u8; 2 * SCALAR_LEN];
        proof.copy_from_slice(&bytes[ELEMENT_LEN..]);
        Ok(TokenResponse { evaluated, proof })
    }
}

/// A token (RFC 9577 §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The client's random nonce.
    pub nonce: [u8; 32],
    /// SHA-256 of the challenge it answers.
    pub challenge_digest: [u8; 32],
    /// The issuer key's `token_key_id`.
    pub token_key_id: [u8; 32],
    /// The VOPRF output over the token input.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
}

impl Token {
    /// Its encoding.
    pub fn encode(&self) -> [u8; TOKEN_LEN] {
        let mut out = [0u8; TOKEN_LEN];
        out[..98].copy_from_slice(&token_input(
            &self.nonce,
            &self.challenge_digest,
            &self.token_key_id,
        ));
        out[98..].copy_from_slice(&self.authenticator);
        out
    }

    /// Parses an encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, TokenError> {
        check_len("token", bytes, TOKEN_LEN)?;
        check_type(bytes)?;
        let mut t = Token {
            nonce: [0; 32],
            challenge_digest: [0; 32],
            token_key_id: [0; 32],
            authenticator: [0; AUTHENTICATOR_LEN],
        };
        t.nonce.copy_from_slice(&bytes[2..34]);
        t.challenge_digest.copy_from_slice(&bytes[34..66]);
        t.token_key_id.copy_from_slice(&bytes[66..98]);
        t.authenticator.copy_from_slice(&bytes[98..]);
        Ok(t)
    }

    /// The `Authorization` header value that carries it (RFC 9577 §2.2.2).
    pub fn authorization(&self) -> String {
        format!("PrivateToken token={}", B64URL.encode(self.encode()))
    }

    /// Reads an `Authorization` header value: scheme `PrivateToken` (any case) with a
    /// `token` parameter in base64url (padding optional).
    pub fn from_authorization(value: &str) -> Result<Self, TokenError> {
        let value = value.trim();
        let (scheme, params) = value
            .split_once(' ')
            .ok_or(TokenError::Header("no parameters"))?;
        if !scheme.eq_ignore_ascii_case("PrivateToken") {
            return Err(TokenError::Header("scheme is not PrivateToken"));
        }
        let token = params
            .split(',')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("token"))
            .map(|(_, v)| v.trim().trim_matches('"').trim_end_matches('='))
            .ok_or(TokenError::Header("no token parameter"))?;
        let bytes = B64URL
            .decode(token)
            .map_err(|_| TokenError::Header("token is not base64url"))?;
        Token::decode(&bytes)
    }
}

/// A batch's encoding: a 2-byte count (1 to [`MAX_BATCH`]), then the items.
pub fn encode_batch<const N: usize>(items: &[[u8; N]]) -> Result<Vec<u8>, TokenError> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(TokenError::Malformed {
            what: "batch",
            reason: "want 1 to MAX_BATCH items",
        });
    }
    let mut out = Vec::with_capacity(2 + items.len() * N);
    out.extend_from_slice(&(items.len() as u16).to_be_bytes());
    for item in items {
        out.extend_from_slice(item);
    }
    Ok(out)
}

/// Splits a batch of `N`-byte items (`what`: which messages, for errors): the count must
/// be 1 to [`MAX_BATCH`] and match the bytes exactly.
pub fn decode_batch<'a, const N: usize>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = &'a [u8]>, TokenError> {
    let bad = |reason| TokenError::Malformed { what, reason };
    let mut r = Reader(bytes);
    let count = usize::from(r.u16().ok_or_else(|| bad("truncated count"))?);
    if count == 0 || count > MAX_BATCH {
        return Err(bad("count not 1 to MAX_BATCH"));
    }
    if r.0.len() != count * N {
        return Err(TokenError::Length {
            what,
            got: bytes.len(),
            want: 2 + count * N,
        });
    }
    Ok(r.0.chunks_exact(N))
}

/// What `GET /v1/issuer` answers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IssuerInfo {
    /// The issuer's name (the challenge's `issuer_name`).
    pub name: String,
    /// The token type (`1`).
    pub token_type: u16,
    /// `SerializeElement(pkI)`, hex.
    pub public_key: String,
}

fn token_input(nonce: &[u8; 32], challenge_digest: &[u8; 32], key_id: &[u8; 32]) -> [u8; 98] {
    let mut input = [0u8; 98];
    input[..2].copy_from_slice(&TOKEN_TYPE.to_be_bytes());
    input[2..34].copy_from_slice(nonce);
    input[34..66].copy_from_slice(challenge_digest);
    input[66..].copy_from_slice(key_id);
    input
}

/// An issuer's key pair: issues tokens, and verifies them at redemption.
pub struct IssuerKey {
    server: VoprfServer<NistP384>,
    public: IssuerPublicKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("public", &hex::encode(self.public.as_bytes()))
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// The key pair `DeriveKeyPair(seed, "PrivacyPass")` (RFC 9578 §5.5); `seed` is 48
    /// random bytes kept secret.
    pub fn derive(seed: &[u8]) -> Result<Self, TokenError> {
        let server = VoprfServer::<NistP384>::new_from_seed(seed, KEY_INFO)
            .map_err(|e| TokenError::Voprf(e.to_string()))?;
        Self::from_server(server)
    }

    /// The key pair of a serialized private scalar.
    pub fn from_private_key(key: &[u8]) -> Result<Self, TokenError> {
        let server = VoprfServer::<NistP384>::new_with_key(key)
            .map_err(|_| TokenError::Encoding("issuer private key"))?;
        Self::from_server(server)
    }

    fn from_server(server: VoprfServer<NistP384>) -> Result<Self, TokenError> {
        let public = IssuerPublicKey::parse(&NistP384::serialize_elem(server.get_public_key()))?;
        Ok(IssuerKey { server, public })
    }

    /// The public key to publish.
    pub fn public_key(&self) -> &IssuerPublicKey {
        &self.public
    }

    /// Evaluates a token request for this key, with a proof (RFC 9578 §5.2).
    pub fn issue<R: CryptoRngCore>(
        &self,
        request: &TokenRequest,
        rng: &mut R,
    ) -> Result<TokenResponse, TokenError> {
        if request.truncated_key_id != self.public.key_id[31] {
            return Err(TokenError::WrongKey {
                what: "token request",
            });
        }
        let blinded = BlindedElement::<NistP384>::deserialize(&request.blinded)
            .map_err(|_| TokenError::Encoding("blinded message"))?;
        let result = self.server.blind_evaluate(rng, &blinded);
        let mut evaluated = [0u8; ELEMENT_LEN];
        evaluated.copy_from_slice(&result.message.serialize());
        let mut proof = [0u8; 2 * SCALAR_LEN];
        proof.copy_from_slice(&result.proof.serialize());
        Ok(TokenResponse { evaluated, proof })
    }

    /// Checks a token at redemption: for this key, and its authenticator the evaluation of
    /// its input (compared in constant time). Whether it was spent before is the
    /// redeemer's to check.
    pub fn verify(&self, token: &Token) -> Result<(), TokenError> {
        if token.token_key_id != self.public.key_id {
            return Err(TokenError::WrongKey { what: "token" });
        }
        let input = token_input(&token.nonce, &token.challenge_digest, &token.token_key_id);
        let expected = Zeroizing::new(
            self.server
                .evaluate(&input)
                .map_err(|e| TokenError::Voprf(e.to_string()))?
                .to_vec(),
        );
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            &token.authenticator[..],
        )) {
            Ok(())
        } else {
            Err(TokenError::Invalid)
        }
    }
}

/// A client's state between sending a [`TokenRequest`] and finalizing the answer.
pub struct PendingToken {
    client: VoprfClient<NistP384>,
    nonce: [u8; 32],
    challenge_digest: [u8; 32],
    key: IssuerPublicKey,
}

/// Blinds a request for one token for `challenge` under the issuer key `key`.
pub fn request_token<R: CryptoRngCore>(
    key: &IssuerPublicKey,
    challenge: &TokenChallenge,
    rng: &mut R,
) -> Result<(TokenRequest, PendingToken), TokenError> {
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let challenge_digest = challenge.digest()?;
    let input = token_input(&nonce, &challenge_digest, &key.key_id);
    let blind = VoprfClient::<NistP384>::blind(&input, rng)
        .map_err(|e| TokenError::Voprf(e.to_string()))?;
    Ok(pending(key, nonce, challenge_digest, blind))
}

fn pending(
    key: &IssuerPublicKey,
    nonce: [u8; 32],
    challenge_digest: [u8; 32],
    blind: voprf::VoprfClientBlindResult<NistP384>,
) -> (TokenRequest, PendingToken) {
    let mut blinded = [0u8; ELEMENT_LEN];
    blinded.copy_from_slice(&blind.message.serialize());
    (
        TokenRequest {
            truncated_key_id: key.key_id[31],
            blinded,
        },
        PendingToken {
            client: blind.state,
            nonce,
            challenge_digest,
            key: key.clone(),
        },
    )
}

impl PendingToken {
    /// Checks the issuer's proof against the issuer key and unblinds: the token.
    pub fn finalize(self, response: &TokenResponse) -> Result<Token, TokenError> {
        let evaluated = EvaluationElement::<NistP384>::deserialize(&response.evaluated)
            .map_err(|_| TokenError::Encoding("evaluated element"))?;
        let proof = Proof::<NistP384>::deserialize(&response.proof)
            .map_err(|_| TokenError::Encoding("proof"))?;
        let input = token_input(&self.nonce, &self.challenge_digest, &self.key.key_id);
        let output = self
            .client
            .finalize(&input, &evaluated, &proof, self.key.element()?)
            .map_err(|e| match e {
                voprf::Error::ProofVerification => TokenError::Proof,
                e => TokenError::Voprf(e.to_string()),
            })?;
        let mut authenticator = [0u8; AUTHENTICATOR_LEN];
        authenticator.copy_from_slice(&output);
        Ok(Token {
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: self.key.key_id,
            authenticator,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    /// RFC 9578 Appendix A.1 (`tests/vectors/privacy_pass/README.md`).
    const VECTORS: &str = include_str!("../tests/vectors/privacy_pass/rfc9578_private.json");

    fn h(v: &serde_json::Value, k: &str) -> Vec<u8> {
        hex::decode(v[k].as_str().unwrap()).unwrap()
    }

    #[test]
    fn rfc9578_issuance_vectors() {
        let vectors: Vec<serde_json::Value> = serde_json::from_str(VECTORS).unwrap();
        assert_eq!(vectors.len(), 5);
        for (i, v) in vectors.iter().enumerate() {
            let issuer = IssuerKey::from_private_key(&h(v, "skS")).unwrap();
            assert_eq!(issuer.public_key().as_bytes(), &h(v, "pkS")[..], "pkS {i}");
            let challenge = TokenChallenge::decode(&h(v, "token_challenge")).unwrap();
            assert_eq!(
                challenge.encode().unwrap(),
                h(v, "token_challenge"),
                "challenge {i}"
            );

            // The client, with the vector's nonce and blind.
            let nonce: [u8; 32] = h(v, "nonce").try_into().unwrap();
            let digest = challenge.digest().unwrap();
            let input = token_input(&nonce, &digest, &issuer.public_key().key_id());
            let blind = NistP384::deserialize_scalar(&h(v, "blind")).unwrap();
            let blinded =
                VoprfClient::<NistP384>::deterministic_blind_unchecked(&input, blind).unwrap();
            let (request, pending) = pending(issuer.public_key(), nonce, digest, blinded);
            assert_eq!(
                request.encode().to_vec(),
                h(v, "token_request"),
                "request {i}"
            );
            assert_eq!(
                TokenRequest::decode(&h(v, "token_request")).unwrap(),
                request
            );

            // The issuer's evaluation is deterministic; its proof is not (a fresh scalar).
            let ours = issuer.issue(&request, &mut OsRng).unwrap();
            let theirs = TokenResponse::decode(&h(v, "token_response")).unwrap();
            assert_eq!(ours.evaluated, theirs.evaluated, "evaluated element {i}");

            // The vector's response (with the vector's proof) finalizes to the vector's token.
            let token = pending.finalize(&theirs).unwrap();
            assert_eq!(token.encode().to_vec(), h(v, "token"), "token {i}");
            assert_eq!(Token::decode(&h(v, "token")).unwrap(), token);
            issuer.verify(&token).unwrap();
        }
    }

    fn setup() -> (IssuerKey, TokenChallenge) {
        let mut seed = [0u8; 48];
        OsRng.fill_bytes(&mut seed);
        let challenge = TokenChallenge {
            issuer_name: b"issuer.lucent.test".to_vec(),
            redemption_context: Vec::new(),
            origin_info: b"gateway.lucent.test".to_vec(),
        };
        (IssuerKey::derive(&seed).unwrap(), challenge)
    }

    use rand_core::RngCore as _;

    #[test]
    fn issue_finalize_verify_and_every_refusal() {
        let (issuer, challenge) = setup();
        let (request, pending_token) =
            request_token(issuer.public_key(), &challenge, &mut OsRng).unwrap();
        let response = issuer.issue(&request, &mut OsRng).unwrap();
        let token = pending_token.finalize(&response).unwrap();
        issuer.verify(&token).unwrap();
        assert_eq!(token.challenge_digest, challenge.digest().unwrap());
        assert_eq!(
            Token::from_authorization(&token.authorization()).unwrap(),
            token
        );

        // A tampered token, and one under another key.
        let mut forged = token.clone();
        forged.nonce[0] ^= 1;
        assert_eq!(issuer.verify(&forged), Err(TokenError::Invalid));
        let (other, _) = setup();
        assert_eq!(
            other.verify(&token),
            Err(TokenError::WrongKey { what: "token" })
        );

        // An answer made with another key than the client expected: the proof fails, so a
        // client cannot be given tokens from a key of its own.
        let (request, pending_token) =
            request_token(issuer.public_key(), &challenge, &mut OsRng).unwrap();
        let mut retargeted = request.clone();
        retargeted.truncated_key_id = other.public_key().key_id()[31];
        let wrong = other.issue(&retargeted, &mut OsRng).unwrap();
        assert_eq!(pending_token.finalize(&wrong), Err(TokenError::Proof));
        assert_eq!(
            other.issue(&request, &mut OsRng),
            Err(TokenError::WrongKey {
                what: "token request"
            })
        );
    }

    #[test]
    fn malformed_messages_get_specific_errors() {
        let (issuer, challenge) = setup();
        let (request, _) = request_token(issuer.public_key(), &challenge, &mut OsRng).unwrap();
        let bytes = request.encode();
        assert!(matches!(
            TokenRequest::decode(&bytes[..51]),
            Err(TokenError::Length { got: 51, .. })
        ));
        let mut typed = bytes;
        typed[1] = 2;
        assert_eq!(TokenRequest::decode(&typed), Err(TokenError::TokenType(2)));
        let mut off_curve = request.clone();
        off_curve.blinded = [0xff; ELEMENT_LEN];
        assert_eq!(
            issuer.issue(&off_curve, &mut OsRng),
            Err(TokenError::Encoding("blinded message"))
        );
        assert!(matches!(
            IssuerPublicKey::parse(&[2u8; 48]),
            Err(TokenError::Length { .. })
        ));
        assert!(IssuerPublicKey::parse(&[0u8; 49]).is_err());
        assert!(matches!(
            Token::decode(&[0u8; TOKEN_LEN + 1]),
            Err(TokenError::Length { .. })
        ));
        for bad in [
            "Bearer abc",
            "PrivateToken",
            "PrivateToken nonce=abc",
            "PrivateToken token=***",
        ] {
            assert!(
                matches!(Token::from_authorization(bad), Err(TokenError::Header(_))),
                "{bad}"
            );
        }
        let enc = challenge.encode().unwrap();
        for cut in 0..enc.len() {
            assert!(TokenChallenge::decode(&enc[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(TokenChallenge::decode(&longer).is_err());
        let mut context = challenge.clone();
        context.redemption_context = vec![1; 5];
        assert!(matches!(
            context.encode(),
            Err(TokenError::Malformed { .. })
        ));
        let mut bytes = challenge.encode().unwrap();
        let at = 2 + 2 + challenge.issuer_name.len();
        bytes[at] = 5;
        bytes.splice(at + 1..at + 1, [1u8; 5]);
        assert!(TokenChallenge::decode(&bytes).is_err(), "a 5-byte context");
        // Fields longer than their length prefix are refused, not truncated.
        let mut long = challenge.clone();
        long.origin_info = vec![b'o'; 65_536];
        assert!(matches!(long.encode(), Err(TokenError::Malformed { .. })));
        assert!(request_token(issuer.public_key(), &long, &mut OsRng).is_err());
        let mut unnamed = challenge.clone();
        unnamed.issuer_name.clear();
        assert!(unnamed.encode().is_err());
    }
}
