//! The oblivious path's wire contract (DESIGN.md flow 7): client → relay → gateway → CVM.
//! The relay, the gateway and `lucent-client` all read and write these types; nobody
//! declares them again.
//!
//! | party | route | body | answer |
//! |---|---|---|---|
//! | relay (a third party) | `POST /v1/ohttp` | `message/ohttp-req`: an outer request | what the gateway answered, or the relay's own [`ErrorBody`] |
//! | gateway (the operator) | `POST /v1/ohttp` | the same bytes, forwarded | `message/ohttp-res`: an outer response, or an [`ErrorBody`] before it could open the request |
//!
//! **Outer layer.** RFC 9458 encapsulation ([`crate::encapsulation`] with
//! [`MediaLabels::OHTTP_BHTTP`](crate::encapsulation::MediaLabels::OHTTP_BHTTP), the RFC's own
//! labels) to the gateway's key config, which is itself a logged `keyconfig` statement. Its
//! plaintext is a Binary HTTP message (RFC 9292, crate `bhttp`):
//!
//! - request ([`ForwardRequest`]): `POST` to the task's path (`/v1/summarize`, …) with
//!   `content-type: message/ohttp-req`, `authorization: PrivateToken token=…` (an anonymous
//!   token, [`crate::privacy_pass`], which only the gateway sees) and, as content, the
//!   **inner** request: sealed with
//!   [`MediaLabels::LUCENT_CVM`](crate::encapsulation::MediaLabels::LUCENT_CVM) to one attested
//!   CVM's key, which the gateway cannot open. The gateway routes it by the inner request's
//!   key id (its first byte).
//! - response ([`GatewayAnswer`]): `200` with `content-type: message/ohttp-res` and the CVM's
//!   sealed answer as content; or another status with an [`ErrorBody`] as JSON, from the
//!   gateway (`unknown_key_id`, `cvm_unreachable`, `cvm_timeout`, …) or, passed through,
//!   from the CVM before it opened the inner request (`closed`, …).
//!
//! **Who sees what.** The relay sees the client's address and the outer ciphertext's size;
//! the gateway sees the relay's address, the task and a sealed inner request; only the CVM
//! sees the plaintext. The inner plaintext is padded to its bucket
//! ([`crate::cvm_api::pad_to_bucket`]), so the outer size tells only the bucket too.

use std::io::Cursor;

use crate::cvm_api::Task;
use crate::encapsulation::{MAX_PLAINTEXT_BYTES, MIN_REQUEST_BYTES};
use crate::log_api::ErrorBody;
use crate::privacy_pass::{Token, TokenError};

/// The route of the relay and of the gateway.
pub const OHTTP_PATH: &str = "/v1/ohttp";
/// Media type of an encapsulated request (RFC 9458 §9.2), outer and inner.
pub const REQUEST_MEDIA_TYPE: &str = "message/ohttp-req";
/// Media type of an encapsulated response (RFC 9458 §9.3), outer and inner.
pub const RESPONSE_MEDIA_TYPE: &str = "message/ohttp-res";
/// Header that says which party refused a request on the oblivious path ([`ErrorSource`]):
/// on the relay's answers (`relay`, or `gateway` for a refusal the gateway sent before it
/// could open the request), and inside a [`GatewayAnswer::Error`] (`gateway` or `cvm`).
pub const ERROR_SOURCE_HEADER: &str = "lucent-error-source";

/// Which party refused a request on the oblivious path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorSource {
    /// The relay (it could not reach the gateway, or refused the request itself).
    Relay,
    /// The gateway.
    Gateway,
    /// The CVM, before it opened the inner request (it is closed, or refused the framing).
    Cvm,
}

impl ErrorSource {
    /// Its name in [`ERROR_SOURCE_HEADER`].
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Relay => "relay",
            ErrorSource::Gateway => "gateway",
            ErrorSource::Cvm => "cvm",
        }
    }

    /// The source a header value names.
    pub fn parse(value: &[u8]) -> Option<Self> {
        [ErrorSource::Relay, ErrorSource::Gateway, ErrorSource::Cvm]
            .into_iter()
            .find(|s| s.as_str().as_bytes() == value)
    }
}

impl std::fmt::Display for ErrorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
/// Media type of an [`ErrorBody`].
pub const JSON_MEDIA_TYPE: &str = "application/json";

/// Largest Binary HTTP message either side reads or writes: an outer plaintext. The inner
/// request or answer inside it must leave room for the framing (a few dozen bytes).
pub const MAX_MESSAGE_BYTES: usize = MAX_PLAINTEXT_BYTES;
/// Largest outer request a relay or gateway accepts.
pub const MAX_OUTER_REQUEST_BYTES: usize = crate::encapsulation::MAX_REQUEST_BYTES;
/// Largest outer response a client or relay reads.
pub const MAX_OUTER_RESPONSE_BYTES: usize = crate::encapsulation::MAX_RESPONSE_BYTES;
/// Largest error body a gateway or relay sends inside a [`GatewayAnswer`].
pub const MAX_ERROR_BODY_BYTES: usize = 4096;

/// Why a Binary HTTP message of the oblivious path was refused. Never carries content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObliviousError {
    /// Longer than [`MAX_MESSAGE_BYTES`].
    #[error("binary HTTP message of {got} bytes, limit {limit}")]
    Oversized {
        /// Bytes given.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a Binary HTTP message (RFC 9292), or not of the kind expected.
    #[error("malformed binary HTTP message: {0}")]
    Malformed(String),
    /// Bytes other than zero padding after the message.
    #[error("binary HTTP message followed by {0} bytes that are not padding")]
    TrailingBytes(usize),
    /// A request with another method than `POST`.
    #[error("method {0:?} is not POST")]
    Method(String),
    /// A request for a path that is no task.
    #[error("path {0:?} is no task")]
    Path(String),
    /// A message whose content type is not the one its status calls for.
    #[error("content type {got:?}, expected {want}")]
    ContentType {
        /// What it said (or "" when absent).
        got: String,
        /// What it must say.
        want: &'static str,
    },
    /// A request whose content is no sealed inner request (shorter than its fixed parts).
    #[error("inner request of {0} bytes is shorter than an encapsulated request")]
    InnerTruncated(usize),
    /// An `authorization` field that is no Privacy Pass token.
    #[error("authorization: {0}")]
    Token(TokenError),
    /// An error answer whose body is no [`ErrorBody`].
    #[error("error answer with status {status} has no error body: {reason}")]
    ErrorBody {
        /// Its status.
        status: u16,
        /// Why the body did not parse.
        reason: String,
    },
}

/// What the client asks the gateway to forward: one task's sealed inner request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardRequest {
    /// The task, which names the CVM route.
    pub task: Task,
    /// The inner request, sealed to one CVM's key (RFC 9458 encapsulated request).
    pub sealed: Vec<u8>,
    /// The anonymous token that pays for it (the `authorization` field), when there is one.
    pub token: Option<Token>,
}

impl ForwardRequest {
    /// The key id the inner request is sealed to: the gateway's routing key.
    pub fn key_id(&self) -> u8 {
        // `decode` and the client only make requests of at least MIN_REQUEST_BYTES.
        self.sealed.first().copied().unwrap_or_default()
    }

    /// Its Binary HTTP encoding (known-length, RFC 9292 §3).
    pub fn encode(&self) -> Vec<u8> {
        let mut m = bhttp::Message::request(
            b"POST".to_vec(),
            b"https".to_vec(),
            b"cvm".to_vec(),
            self.task.path().as_bytes().to_vec(),
        );
        m.put_header("content-type", REQUEST_MEDIA_TYPE);
        if let Some(token) = &self.token {
            m.put_header("authorization", token.authorization());
        }
        m.write_content(&self.sealed);
        write(&m)
    }

    /// Reads a request: `POST` to a task's path, `content-type: message/ohttp-req`, an
    /// optional `authorization` field holding a token, and a sealed inner request as content.
    /// Other header fields are ignored (nothing is forwarded but the content).
    pub fn decode(bytes: &[u8]) -> Result<Self, ObliviousError> {
        let m = read(bytes)?;
        let control = m.control();
        if !control.is_request() {
            return Err(ObliviousError::Malformed(
                "a response, not a request".into(),
            ));
        }
        let method = control.method().unwrap_or_default();
        if method != b"POST" {
            return Err(ObliviousError::Method(lossy(method)));
        }
        let path = control.path().unwrap_or_default();
        let task = Task::ALL
            .into_iter()
            .find(|t| t.path().as_bytes() == path)
            .ok_or_else(|| ObliviousError::Path(lossy(path)))?;
        content_type(&m, REQUEST_MEDIA_TYPE)?;
        let sealed = m.content().to_vec();
        if sealed.len() < MIN_REQUEST_BYTES {
            return Err(ObliviousError::InnerTruncated(sealed.len()));
        }
        let token = m
            .header()
            .get(b"authorization")
            .map(|v| {
                let v = std::str::from_utf8(v)
                    .map_err(|_| ObliviousError::Token(TokenError::Header("not text")))?;
                Token::from_authorization(v).map_err(ObliviousError::Token)
            })
            .transpose()?;
        Ok(ForwardRequest {
            task,
            sealed,
            token,
        })
    }
}

/// What the gateway answers inside the outer response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayAnswer {
    /// The CVM's sealed answer (HTTP 200 from the CVM).
    Sealed(Vec<u8>),
    /// No sealed answer: the gateway's refusal, or the CVM's before it opened the request.
    Error {
        /// The HTTP status.
        status: u16,
        /// Who refused: the gateway or the CVM.
        source: ErrorSource,
        /// Why.
        body: ErrorBody,
    },
}

impl GatewayAnswer {
    /// The gateway's own refusal, with a code and a message.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        GatewayAnswer::Error {
            status,
            source: ErrorSource::Gateway,
            body: ErrorBody::new(code, message),
        }
    }

    /// Its Binary HTTP encoding (known-length).
    pub fn encode(&self) -> Vec<u8> {
        let (status, source, media, content) = match self {
            GatewayAnswer::Sealed(sealed) => (200, None, RESPONSE_MEDIA_TYPE, sealed.clone()),
            GatewayAnswer::Error {
                status,
                source,
                body,
            } => (
                *status,
                Some(*source),
                JSON_MEDIA_TYPE,
                serde_json::to_vec(body).unwrap_or_default(),
            ),
        };
        let status = bhttp::StatusCode::try_from(status)
            .or_else(|_| bhttp::StatusCode::try_from(500u16))
            .unwrap_or(bhttp::StatusCode::OK);
        let mut m = bhttp::Message::response(status);
        m.put_header("content-type", media);
        if let Some(source) = source {
            m.put_header(ERROR_SOURCE_HEADER, source.as_str());
        }
        m.write_content(content);
        write(&m)
    }

    /// Reads an answer: `200` with a sealed answer, or another final status with an error
    /// body of at most [`MAX_ERROR_BODY_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ObliviousError> {
        let m = read(bytes)?;
        let Some(status) = m.control().status() else {
            return Err(ObliviousError::Malformed(
                "a request, not a response".into(),
            ));
        };
        let status = status.code();
        if status == 200 {
            content_type(&m, RESPONSE_MEDIA_TYPE)?;
            return Ok(GatewayAnswer::Sealed(m.content().to_vec()));
        }
        let body_err = |reason: String| ObliviousError::ErrorBody { status, reason };
        if m.content().len() > MAX_ERROR_BODY_BYTES {
            return Err(body_err(format!(
                "{} bytes, limit {MAX_ERROR_BODY_BYTES}",
                m.content().len()
            )));
        }
        content_type(&m, JSON_MEDIA_TYPE)?;
        let header = m.header().get(ERROR_SOURCE_HEADER.as_bytes());
        let source = header
            .and_then(ErrorSource::parse)
            .filter(|s| *s != ErrorSource::Relay)
            .ok_or_else(|| {
                body_err(format!(
                    "{ERROR_SOURCE_HEADER} is {:?}, not gateway or cvm",
                    lossy(header.unwrap_or_default())
                ))
            })?;
        let body: ErrorBody =
            serde_json::from_slice(m.content()).map_err(|e| body_err(e.to_string()))?;
        Ok(GatewayAnswer::Error {
            status,
            source,
            body,
        })
    }
}

fn write(m: &bhttp::Message) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; a message built above has valid fields.
    let _ = m.write_bhttp(bhttp::Mode::KnownLength, &mut out);
    out
}

fn read(bytes: &[u8]) -> Result<bhttp::Message, ObliviousError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ObliviousError::Oversized {
            got: bytes.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let mut cursor = Cursor::new(bytes);
    let m = bhttp::Message::read_bhttp(&mut cursor)
        .map_err(|e| ObliviousError::Malformed(e.to_string()))?;
    // RFC 9292 §3.8: a message may be followed by zero bytes of padding, nothing else.
    let rest = &bytes[usize::try_from(cursor.position()).unwrap_or(bytes.len())..];
    if rest.iter().any(|&b| b != 0) {
        return Err(ObliviousError::TrailingBytes(rest.len()));
    }
    Ok(m)
}

fn content_type(m: &bhttp::Message, want: &'static str) -> Result<(), ObliviousError> {
    let got = m.header().get(b"content-type").unwrap_or_default();
    if got.eq_ignore_ascii_case(want.as_bytes()) {
        Ok(())
    } else {
        Err(ObliviousError::ContentType {
            got: lossy(got),
            want,
        })
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(key_id: u8) -> Vec<u8> {
        let mut s = vec![7u8; MIN_REQUEST_BYTES + 10];
        s[0] = key_id;
        s
    }

    #[test]
    fn requests_round_trip_and_name_their_key_id() {
        for task in Task::ALL {
            let r = ForwardRequest {
                task,
                sealed: sealed(42),
                token: None,
            };
            let back = ForwardRequest::decode(&r.encode()).unwrap();
            assert_eq!(back, r);
            assert_eq!(back.key_id(), 42);
        }
    }

    #[test]
    fn answers_round_trip() {
        for a in [
            GatewayAnswer::Sealed(vec![1, 2, 3]),
            GatewayAnswer::error(502, "cvm_unreachable", "no answer from the CVM"),
            GatewayAnswer::Error {
                status: 503,
                source: ErrorSource::Cvm,
                body: ErrorBody::new("not_logged", "the CVM is closed"),
            },
        ] {
            assert_eq!(GatewayAnswer::decode(&a.encode()).unwrap(), a);
        }
        // A request is no answer and an answer no request.
        let r = ForwardRequest {
            task: Task::Summarize,
            sealed: sealed(1),
            token: None,
        };
        assert!(matches!(
            GatewayAnswer::decode(&r.encode()),
            Err(ObliviousError::Malformed(_))
        ));
        assert!(matches!(
            ForwardRequest::decode(&GatewayAnswer::Sealed(vec![1]).encode()),
            Err(ObliviousError::Malformed(_))
        ));
    }

    #[test]
    fn zero_padding_is_allowed_anything_else_is_not() {
        let r = ForwardRequest {
            task: Task::Suggest,
            sealed: sealed(3),
            token: Some(Token {
                nonce: [1; 32],
                challenge_digest: [2; 32],
                token_key_id: [3; 32],
                authenticator: [4; 48],
            }),
        };
        let mut padded = r.encode();
        padded.extend_from_slice(&[0; 100]);
        assert_eq!(ForwardRequest::decode(&padded).unwrap(), r);
        padded.push(1);
        assert_eq!(
            ForwardRequest::decode(&padded),
            Err(ObliviousError::TrailingBytes(101))
        );
    }

    fn request(method: &[u8], path: &[u8], media: &str, content: &[u8]) -> Vec<u8> {
        let mut m = bhttp::Message::request(
            method.to_vec(),
            b"https".to_vec(),
            b"cvm".to_vec(),
            path.to_vec(),
        );
        m.put_header("content-type", media);
        m.write_content(content);
        write(&m)
    }

    #[test]
    fn malformed_requests_get_specific_errors() {
        let ok = sealed(1);
        assert!(matches!(
            ForwardRequest::decode(&request(b"GET", b"/v1/summarize", REQUEST_MEDIA_TYPE, &ok)),
            Err(ObliviousError::Method(m)) if m == "GET"
        ));
        assert!(matches!(
            ForwardRequest::decode(&request(b"POST", b"/v1/attestation", REQUEST_MEDIA_TYPE, &ok)),
            Err(ObliviousError::Path(p)) if p == "/v1/attestation"
        ));
        assert!(matches!(
            ForwardRequest::decode(&request(b"POST", b"/v1/suggest", "text/plain", &ok)),
            Err(ObliviousError::ContentType {
                want: REQUEST_MEDIA_TYPE,
                ..
            })
        ));
        assert_eq!(
            ForwardRequest::decode(&request(
                b"POST",
                b"/v1/suggest",
                REQUEST_MEDIA_TYPE,
                &[1; 8]
            )),
            Err(ObliviousError::InnerTruncated(8))
        );
        let mut m = bhttp::Message::request(
            b"POST".to_vec(),
            b"https".to_vec(),
            b"cvm".to_vec(),
            b"/v1/suggest".to_vec(),
        );
        m.put_header("content-type", REQUEST_MEDIA_TYPE);
        m.put_header("authorization", "PrivateToken token=AAAA");
        m.write_content(&ok);
        assert!(matches!(
            ForwardRequest::decode(&write(&m)),
            Err(ObliviousError::Token(TokenError::Length {
                what: "token",
                ..
            }))
        ));
        let good = request(b"POST", b"/v1/suggest", REQUEST_MEDIA_TYPE, &ok);
        // (Cutting only the final, empty trailer section leaves a valid message: RFC 9292 §3.8.)
        for cut in [0, 1, good.len() / 2, good.len() - 2] {
            assert!(
                matches!(
                    ForwardRequest::decode(&good[..cut]),
                    Err(ObliviousError::Malformed(_))
                ),
                "cut at {cut}"
            );
        }
        assert!(matches!(
            ForwardRequest::decode(&vec![0u8; MAX_MESSAGE_BYTES + 1]),
            Err(ObliviousError::Oversized { .. })
        ));
        // A length prefix that claims more than the message holds is refused before any
        // allocation of that size.
        let mut huge = good.clone();
        huge.truncate(20);
        huge.extend_from_slice(&[0xff; 8]);
        assert!(ForwardRequest::decode(&huge).is_err());
    }

    #[test]
    fn error_answers_need_a_small_json_body() {
        let mut m = bhttp::Message::response(bhttp::StatusCode::try_from(503u16).unwrap());
        m.put_header("content-type", JSON_MEDIA_TYPE);
        m.put_header(ERROR_SOURCE_HEADER, "cvm");
        m.write_content(b"not json");
        assert!(matches!(
            GatewayAnswer::decode(&write(&m)),
            Err(ObliviousError::ErrorBody { status: 503, .. })
        ));
        let mut m = bhttp::Message::response(bhttp::StatusCode::try_from(503u16).unwrap());
        m.put_header("content-type", JSON_MEDIA_TYPE);
        m.write_content(vec![b' '; MAX_ERROR_BODY_BYTES + 1]);
        assert!(matches!(
            GatewayAnswer::decode(&write(&m)),
            Err(ObliviousError::ErrorBody { status: 503, .. })
        ));
        // Only the gateway and the CVM answer inside the outer layer.
        for source in ["relay", "", "Gateway"] {
            let mut m = bhttp::Message::response(bhttp::StatusCode::try_from(502u16).unwrap());
            m.put_header("content-type", JSON_MEDIA_TYPE);
            if !source.is_empty() {
                m.put_header(ERROR_SOURCE_HEADER, source);
            }
            m.write_content(br#"{"error":"x","message":"y"}"#);
            assert!(
                matches!(
                    GatewayAnswer::decode(&write(&m)),
                    Err(ObliviousError::ErrorBody { status: 502, .. })
                ),
                "{source:?}"
            );
        }
        let mut m = bhttp::Message::response(bhttp::StatusCode::OK);
        m.put_header("content-type", JSON_MEDIA_TYPE);
        m.write_content(b"{}");
        assert!(matches!(
            GatewayAnswer::decode(&write(&m)),
            Err(ObliviousError::ContentType {
                want: RESPONSE_MEDIA_TYPE,
                ..
            })
        ));
    }
}
