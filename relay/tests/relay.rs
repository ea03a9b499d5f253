//! The relay over real sockets, in front of a recording stand-in for the gateway: what it
//! forwards (the same bytes, and no header, address or cookie of the client), what it
//! answers, its limits and its refusals, each labelled with its source.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use lucent_relay::{Relay, RelayConfig};
use lucent_service::http::HttpLimits;
use lucent_verifier::oblivious::{ERROR_SOURCE_HEADER, OHTTP_PATH};

/// What the stand-in gateway received, and how it answers.
#[derive(Default)]
struct Seen {
    requests: Vec<(SocketAddr, HeaderMap, Bytes)>,
}

#[derive(Clone, Copy)]
enum Answer {
    Sealed,
    WrongMedia,
    Refusal,
    Slow,
}

async fn gateway(
    State((seen, answer)): State<(Arc<Mutex<Seen>>, Answer)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    seen.lock()
        .unwrap()
        .requests
        .push((peer, headers, body.clone()));
    match answer {
        Answer::Sealed => (
            [
                ("content-type", "message/ohttp-res"),
                ("set-cookie", "gw=1"),
            ],
            format!("answer to {} bytes", body.len()),
        )
            .into_response(),
        Answer::WrongMedia => ([("content-type", "text/html")], "<html>").into_response(),
        Answer::Refusal => (
            StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/json")],
            r#"{"error":"unknown_gateway_key","message":"key id 9"}"#,
        )
            .into_response(),
        Answer::Slow => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            ([("content-type", "message/ohttp-res")], "late").into_response()
        }
    }
}

async fn start_gateway(answer: Answer) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route(OHTTP_PATH, post(gateway))
        .with_state((seen.clone(), answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (url, seen)
}

async fn start_relay(gateway_url: &str) -> (String, Arc<Relay>) {
    let config = RelayConfig {
        listen: "127.0.0.1:0".into(),
        gateway_url: gateway_url.into(),
        gateway_timeout_ms: 500,
        http: HttpLimits::default(),
    };
    let relay = Arc::new(Relay::new(&config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = relay.clone();
    tokio::spawn(async move {
        lucent_relay::run(listener, served, &config.http, std::future::pending()).await
    });
    (url, relay)
}

/// A client on its own loopback address, sending identifying headers.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .user_agent("identifying-agent/1.0")
        .build()
        .unwrap()
}

async fn send(relay: &str, media: &str, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(format!("{relay}{OHTTP_PATH}"))
        .header("content-type", media)
        .header("cookie", "session=alice")
        .header("x-forwarded-for", "198.51.100.7")
        .header("forwarded", "for=198.51.100.7")
        .header("authorization", "Bearer alice")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn refusal(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let source = resp
        .headers()
        .get(ERROR_SOURCE_HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    (status, v["error"].as_str().unwrap().to_owned(), source)
}

#[tokio::test]
async fn forwards_the_same_bytes_and_nothing_about_the_client() {
    let (gw, seen) = start_gateway(Answer::Sealed).await;
    let (relay, counters) = start_relay(&gw).await;
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let resp = send(&relay, "message/ohttp-req", body.clone()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "message/ohttp-res");
    // Only the content type comes back: no header the gateway set.
    assert!(headers.get("set-cookie").is_none());
    assert_eq!(
        resp.bytes().await.unwrap(),
        "answer to 5000 bytes".as_bytes()
    );

    let seen = seen.lock().unwrap();
    let (peer, forwarded_headers, forwarded) = &seen.requests[0];
    assert_eq!(forwarded.as_ref(), &body[..]);
    // The gateway sees the relay's address, not the client's.
    assert_eq!(peer.ip(), IpAddr::from([127, 0, 0, 1]));
    let names: Vec<&str> = forwarded_headers.keys().map(|k| k.as_str()).collect();
    for name in &names {
        assert!(
            ["content-type", "content-length", "host", "accept"].contains(name),
            "forwarded header {name}: {forwarded_headers:?}"
        );
    }
    let all = format!("{forwarded_headers:?}");
    for secret in ["alice", "198.51.100.7", "127.0.0.2", "identifying-agent"] {
        assert!(!all.contains(secret), "{secret} forwarded: {all}");
    }
    let c = counters.counters();
    assert_eq!(
        (c.requests, c.forwarded, c.refused, c.gateway_failures),
        (1, 1, 0, 0)
    );
}

#[tokio::test]
async fn refuses_what_it_must_not_forward() {
    let (gw, seen) = start_gateway(Answer::Sealed).await;
    let (relay, counters) = start_relay(&gw).await;
    assert_eq!(
        refusal(send(&relay, "application/json", b"{}".to_vec()).await).await,
        (415, "wrong_media_type".into(), "relay".into())
    );
    assert_eq!(
        refusal(send(&relay, "message/ohttp-req", vec![0; (1 << 20) + 56]).await).await,
        (413, "too_large".into(), "relay".into())
    );
    assert!(seen.lock().unwrap().requests.is_empty());
    assert_eq!(counters.counters().refused, 2);
    // The largest request passes.
    let resp = send(&relay, "message/ohttp-req", vec![0; (1 << 20) + 55]).await;
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn gateway_failures_are_named() {
    // Nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (relay, _) = start_relay(&dead).await;
    assert_eq!(
        refusal(send(&relay, "message/ohttp-req", vec![1; 100]).await).await,
        (502, "gateway_unreachable".into(), "relay".into())
    );

    let (slow, _) = start_gateway(Answer::Slow).await;
    let (relay, counters) = start_relay(&slow).await;
    assert_eq!(
        refusal(send(&relay, "message/ohttp-req", vec![1; 100]).await).await,
        (504, "gateway_timeout".into(), "relay".into())
    );
    assert_eq!(counters.counters().gateway_failures, 1);

    let (odd, _) = start_gateway(Answer::WrongMedia).await;
    let (relay, _) = start_relay(&odd).await;
    assert_eq!(
        refusal(send(&relay, "message/ohttp-req", vec![1; 100]).await).await,
        (502, "bad_gateway_answer".into(), "relay".into())
    );

    // The gateway's own refusal comes back as it was, labelled as the gateway's.
    let (refusing, _) = start_gateway(Answer::Refusal).await;
    let (relay, _) = start_relay(&refusing).await;
    assert_eq!(
        refusal(send(&relay, "message/ohttp-req", vec![1; 100]).await).await,
        (422, "unknown_gateway_key".into(), "gateway".into())
    );
}

#[test]
fn configuration_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.toml");
    for (text, want) in [
        (
            "listen = \"127.0.0.1:0\"\ngateway_url = \"ftp://x\"\n",
            "not an http(s) URL",
        ),
        (
            "listen = \"127.0.0.1:0\"\ngateway_url = \"http://x\"\ngateway_timeout_ms = 0\n",
            "must be positive",
        ),
        (
            "listen = \"127.0.0.1:0\"\ngateway_url = \"http://x\"\nlog_requests = true\n",
            "unknown field",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let e = RelayConfig::read(&path).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\ngateway_url = \"http://x\"\n",
    )
    .unwrap();
    assert_eq!(
        RelayConfig::read(&path).unwrap().gateway_timeout_ms,
        120_000
    );
}
