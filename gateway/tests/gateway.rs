//! The gateway's key file, configuration and routing rules, over real sockets, with
//! stand-ins for CVMs that misbehave in ways a real runtime does not (two CVMs announcing one
//! key id, a CVM that stalls or answers garbage). The real CVM behind a real gateway is
//! `tests/tests/oblivious.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use lucent_gateway::{Gateway, GatewayConfig, GatewayError};
use lucent_service::http::HttpLimits;
use lucent_verifier::cvm_api::{Status, Task};
use lucent_verifier::encapsulation::{
    open_response, seal_request_with, KeyConfig, MediaLabels, ResponseContext, MIN_REQUEST_BYTES,
};
use lucent_verifier::oblivious::{ErrorSource, ForwardRequest, GatewayAnswer};
use rand_core::OsRng;

#[derive(Clone, Copy)]
enum Cvm {
    Honest,
    Stalls,
    Garbage,
}

/// A stand-in CVM announcing `key_id`; its task routes answer as `behaviour` says.
async fn cvm(key_id: u8, behaviour: Cvm) -> String {
    let status = Status {
        state: "open".into(),
        code: "open".into(),
        measurement: None,
        log_size: None,
        release_index: None,
        message: None,
        key_id,
        attester: "stand-in".into(),
    };
    let answer = move |body: axum::body::Bytes| async move {
        match behaviour {
            Cvm::Honest => (
                [("content-type", "message/ohttp-res")],
                [b"sealed:".as_ref(), &body[..4]].concat(),
            )
                .into_response(),
            Cvm::Stalls => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                ([("content-type", "message/ohttp-res")], "late").into_response()
            }
            Cvm::Garbage => ([("content-type", "text/plain")], "oops").into_response(),
        }
    };
    let app = Router::new()
        .route("/v1/status", get(move || async move { Json(status) }))
        .route(Task::Summarize.path(), post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn config(dir: &std::path::Path, cvms: Vec<String>) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".into(),
        key_file: dir.join("gateway.key"),
        key_id: 5,
        cvms,
        cvm_refresh_secs: 1,
        cvm_timeout_ms: 500,
        http: HttpLimits::default(),
        tokens: None,
        dangerous_no_tokens: true,
    }
}

/// An outer request for `key_id`'s CVM, and the context that opens its answer.
fn outer(gateway: &Gateway, key_id: u8) -> (Vec<u8>, ResponseContext) {
    let mut sealed = vec![0xab; MIN_REQUEST_BYTES + 40];
    sealed[0] = key_id;
    let forward = ForwardRequest {
        task: Task::Summarize,
        sealed,
        token: None,
    }
    .encode();
    let config = KeyConfig::parse(&gateway.key_config()).unwrap();
    seal_request_with(
        &config,
        config.preferred().unwrap(),
        &MediaLabels::OHTTP_BHTTP,
        &forward,
        &mut OsRng,
    )
    .unwrap()
}

async fn ask(gateway: &Gateway, key_id: u8) -> GatewayAnswer {
    let (request, context) = outer(gateway, key_id);
    let sealed = gateway.handle(&request).await.unwrap();
    GatewayAnswer::decode(&open_response(&context, &sealed).unwrap()).unwrap()
}

fn code(answer: &GatewayAnswer) -> (u16, ErrorSource, String) {
    match answer {
        GatewayAnswer::Error {
            status,
            source,
            body,
        } => (*status, *source, body.error.clone()),
        GatewayAnswer::Sealed(_) => panic!("an answer, not a refusal"),
    }
}

#[tokio::test]
async fn routes_by_key_id_and_names_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let honest = cvm(1, Cvm::Honest).await;
    let twin_a = cvm(2, Cvm::Honest).await;
    let twin_b = cvm(2, Cvm::Honest).await;
    let stalls = cvm(3, Cvm::Stalls).await;
    let garbage = cvm(4, Cvm::Garbage).await;
    let c = config(dir.path(), vec![honest, twin_a, twin_b, stalls, garbage]);
    let gateway = Gateway::new(&c, c.key_pair().unwrap()).unwrap();
    // Nothing is routed before the CVMs' status was read.
    assert_eq!(code(&ask(&gateway, 1).await).2, "unknown_key_id");
    gateway.refresh().await;

    let inner_prefix = {
        let mut s = vec![0xab; 4];
        s[0] = 1;
        s
    };
    assert_eq!(
        ask(&gateway, 1).await,
        GatewayAnswer::Sealed([b"sealed:".as_ref(), &inner_prefix].concat())
    );
    assert_eq!(
        code(&ask(&gateway, 2).await),
        (503, ErrorSource::Gateway, "ambiguous_key_id".into())
    );
    assert_eq!(
        code(&ask(&gateway, 3).await),
        (504, ErrorSource::Gateway, "cvm_timeout".into())
    );
    assert_eq!(
        code(&ask(&gateway, 4).await),
        (502, ErrorSource::Gateway, "bad_cvm_answer".into())
    );
    assert_eq!(
        code(&ask(&gateway, 9).await),
        (404, ErrorSource::Gateway, "unknown_key_id".into())
    );

    // A request that does not open, or is for another gateway key, is refused in the clear
    // (nothing about it can be sealed to a client the gateway cannot open).
    let (mut request, _) = outer(&gateway, 1);
    let last = request.len() - 1;
    request[last] ^= 1;
    assert!(matches!(
        gateway.handle(&request).await,
        Err(GatewayError::BadRequest(_))
    ));
    request[0] = 6;
    assert!(matches!(
        gateway.handle(&request).await,
        Err(GatewayError::UnknownGatewayKey { got: 6, want: 5 })
    ));
    // A sealed request whose Binary HTTP does not parse gets a sealed refusal.
    let config = KeyConfig::parse(&gateway.key_config()).unwrap();
    let (request, context) = seal_request_with(
        &config,
        config.preferred().unwrap(),
        &MediaLabels::OHTTP_BHTTP,
        b"not binary http",
        &mut OsRng,
    )
    .unwrap();
    let answer = GatewayAnswer::decode(
        &open_response(&context, &gateway.handle(&request).await.unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        code(&answer),
        (400, ErrorSource::Gateway, "bad_request".into())
    );
}

#[test]
fn the_key_is_made_once_kept_private_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), vec!["http://127.0.0.1:1".into()]);
    let first = c.key_pair().unwrap().key_config_bytes();
    let again = c.key_pair().unwrap().key_config_bytes();
    assert_eq!(first, again, "a restart keeps the logged key config");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&c.key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The same seed written as hex gives the same key.
    let seed = std::fs::read(&c.key_file).unwrap();
    std::fs::write(&c.key_file, hex::encode(&seed)).unwrap();
    assert_eq!(c.key_pair().unwrap().key_config_bytes(), first);
    std::fs::write(&c.key_file, "not a key").unwrap();
    let e = c.key_pair().unwrap_err().to_string();
    assert!(e.contains("neither 32 bytes nor 64 hex digits"), "{e}");
}

#[test]
fn configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (text, want) in [
        ("cvms = []\n", "lists no CVM"),
        ("cvms = [\"ftp://x\"]\n", "not an http(s) URL"),
        (
            "cvms = [\"http://x\"]\ncvm_timeout_ms = 0\n",
            "must be positive",
        ),
        (
            "cvms = [\"http://x\"]\nlog_requests = true\n",
            "unknown field",
        ),
        ("cvms = [\"http://x\"]\n", "no [tokens] table"),
        (
            "cvms = [\"http://x\"]\n[tokens]\nissuer_name = \"issuer name\"\n\
             issuer_key_files = [\"k\"]\nspent_database_url = \"sqlite::memory:\"\n\
             log_url = \"http://x\"\n[tokens.trust]\nlog_key = \"x\"\n",
            "can be no logged issuer's name",
        ),
    ] {
        std::fs::write(
            &path,
            format!("listen = \"127.0.0.1:0\"\nkey_file = \"k\"\n{text}"),
        )
        .unwrap();
        let e = GatewayConfig::read(&path).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}
