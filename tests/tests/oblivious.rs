//! The oblivious path over real processes and sockets: client → `lucent-relay` →
//! `lucent-gateway` → `lucent-cvm-runtime` (simulated TEE, tiny model), with the log, a
//! witness and the key broker.
//!
//! - a request sealed to the attested CVM and again to the logged gateway key, paid for with
//!   an anonymous token from the issuer, sent from its own loopback address (127.0.0.2)
//!   through the relay, gets the same answer as the direct path; that address appears in the
//!   relay's and the CDN's output only (no output, database or file of the gateway, issuer,
//!   CVM, broker, witness or log holds it), no party's output or file holds the request's or
//!   the answer's text, and the issuer's stored records share no value with the gateway's;
//! - tokens: a double-spent token, a token under an expired issuer key, under an unlogged
//!   issuer key (which the client refuses to fetch from), for another challenge, a forged
//!   token and a missing token each get their own error from the gateway; the spent tokens
//!   of an expired key are deleted;
//! - failure paths, each named by its party: an unlogged gateway key config (refused before
//!   anything is sent), relay down, gateway down, a CVM the gateway does not route, a CVM
//!   that is gone, a CVM that closed (revoked after the client verified it);
//! - bad input to the gateway and the relay gets specific errors and both keep serving.
//!
//! The client of the first test takes everything it verifies from a CDN (a plain static file
//! server: the CVM's bundle, the gateway's and the issuer's keys, each with its log proof),
//! its tokens from the issuer and sends through the relay: nothing else sees its address.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lucent_client::{Client, ClientError, Task};
use lucent_tests::net::{
    now_unix, Bins, Devnet, DevnetOptions, GatewayProc, IssuerProc, RuntimeProc, RuntimeSettings,
};
use lucent_verifier::encapsulation::KeyPair;
use lucent_verifier::oblivious::{ErrorSource, OHTTP_PATH};
use rand_core::{OsRng, RngCore as _};

const CLIENT_ADDRESS: [u8; 4] = [127, 0, 0, 2];

fn bins() -> Bins {
    lucent_tests::test_bins!()
}

fn client(net: &Devnet, name: &str, local: Option<IpAddr>) -> Client {
    Client::new(net.client_config(name, local).unwrap()).unwrap()
}

/// An open runtime, and the index of its logged key config.
fn open_runtime(net: &Devnet, settings: &RuntimeSettings, name: &str) -> (RuntimeProc, u64) {
    let config = net.runtime_config(settings);
    net.publish_release_for(&config).expect("publish release");
    let mut rt = net.start_runtime(&config, name).expect("runtime");
    let status = net.wait_settled(&mut rt).expect("settled");
    assert_eq!(status["state"], "open", "{status} {}", rt.proc.output());
    let index = net.publish_keyconfig_of(&rt).expect("key config logged");
    (rt, index)
}

/// Waits until the gateway has read the status of `n` CVMs.
fn wait_routed(net: &Devnet, gw: &GatewayProc, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = net
            .http()
            .get(format!("{}/v1/status", gw.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let routed = v["cvms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["key_id"].is_u64())
            .count();
        if routed >= n {
            return;
        }
        assert!(Instant::now() < deadline, "gateway never routed: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn party_code(e: &ClientError) -> (ErrorSource, String) {
    match e {
        ClientError::Oblivious { party, code, .. } => (*party, code.clone()),
        other => panic!("not a refusal on the oblivious path: {other}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn requests_through_the_relay_hide_the_client_and_the_text() {
    let net = Devnet::start(bins(), DevnetOptions::default()).expect("devnet");
    let (rt, keyconfig_index) = open_runtime(&net, &RuntimeSettings::default(), "cvm");
    let issuer = net.start_issuer("issuer").unwrap();
    let issuer_index = net.publish_issuer(&issuer, now_unix() + 3600).unwrap();
    let credential = net.add_account(&issuer, "ann", 5).unwrap();
    let gw = net
        .start_gateway(&[&rt.url], 200, "gateway", &[&issuer])
        .unwrap();
    let gateway_index = net.publish_gateway_keyconfig(&gw).unwrap();
    let relay = net.start_relay(&gw.url, "relay").unwrap();
    let cdn = net.start_cdn("cdn").unwrap();
    let key_ids = net
        .fill_cdn(&cdn, gateway_index, issuer_index, &[(&rt, keyconfig_index)])
        .unwrap();
    wait_routed(&net, &gw, 1);

    // The client, from its own address, talks only to the CDN (the CVM's bundle, the
    // gateway's and the issuer's keys, each with its log proof), the issuer (its account's
    // tokens) and the relay.
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let asker = client(&net, "asker", Some(IpAddr::from(CLIENT_ADDRESS)));

    let cvm = tokio
        .block_on(asker.attest_from_cdn(&cdn.url, key_ids[0]))
        .unwrap();
    assert_eq!(cvm.key_config_index(), keyconfig_index);
    let gateway = tokio
        .block_on(asker.gateway_from_cdn(&cdn.url, &relay.url))
        .unwrap();
    assert_eq!(gateway.key_config_index(), gateway_index);
    let verified_issuer = tokio
        .block_on(asker.issuer_from_cdn(&cdn.url, &issuer.url))
        .unwrap();
    assert_eq!(verified_issuer.index(), issuer_index);
    let mut tokens = tokio
        .block_on(asker.fetch_tokens(&verified_issuer, &credential, 2))
        .unwrap();
    // The direct path, for comparison, from 127.0.0.1.
    let setup = client(&net, "setup", None);
    let direct_cvm = tokio.block_on(setup.attest(&rt.url)).unwrap();

    let mut c = [0u8; 12];
    OsRng.fill_bytes(&mut c);
    let canary = format!("CANARY{}", hex::encode(c));
    let text = format!("Ann: the code for the door is {canary}. Bob: thanks, see you at 5.");
    let oblivious = tokio
        .block_on(asker.ask_oblivious(
            &gateway,
            &cvm,
            tokens.pop().unwrap(),
            Task::Summarize,
            &text,
            Some(8),
        ))
        .unwrap();
    let direct = tokio
        .block_on(setup.ask(&direct_cvm, Task::Summarize, &text, Some(8)))
        .unwrap();
    // Greedy decoding: the same request gives the same answer on either path.
    assert_eq!(oblivious.output, direct.output);
    assert_eq!(oblivious.tokens, direct.tokens);
    let suggestion = tokio
        .block_on(asker.ask_oblivious(
            &gateway,
            &cvm,
            tokens.pop().unwrap(),
            Task::Suggest,
            &text,
            Some(4),
        ))
        .unwrap();
    assert!(suggestion.tokens <= 4);

    // The relay saw the client's address (its debug line) and relayed both requests.
    let address = IpAddr::from(CLIENT_ADDRESS).to_string();
    assert!(
        relay.proc.output().contains(&address),
        "{}",
        relay.proc.output()
    );
    let counters: serde_json::Value = net
        .http()
        .get(format!("{}/v1/status", relay.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(counters["forwarded"], 2, "{counters}");

    // Nobody else holds the address; nobody holds the text or the answer.
    let files = net.files();
    assert!(files.len() > 10, "{files:?}");
    let mut needles = vec![canary.as_bytes().to_vec()];
    for answer in [&oblivious.output, &suggestion.output] {
        // Outputs of the tiny model can be a word or two; only longer ones say anything.
        if answer.len() >= 12 {
            needles.push(answer.as_bytes().to_vec());
        }
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let name = f.file_name().unwrap().to_string_lossy();
        // Only the relay and the CDN (static files, like any web host) see the client.
        let sees_client = ["relay", "cdn"]
            .iter()
            .any(|p| name.starts_with(p) || f.ancestors().any(|d| d.ends_with(p)));
        if !sees_client {
            assert!(
                !contains(&bytes, address.as_bytes()),
                "{} holds the client's address",
                f.display()
            );
        }
        for n in &needles {
            assert!(
                !contains(&bytes, n),
                "{} holds the request's or the answer's text",
                f.display()
            );
        }
    }

    // A CDN that serves a forged key config (one the log does not hold, under the real
    // proof) or another statement than the one asked for is caught before anything is sent.
    let mut forged = net.published(gateway_index).unwrap();
    let other_key =
        lucent_verifier::statement::Statement::KeyConfig(lucent_verifier::statement::KeyConfig {
            key_id: 200,
            config: lucent_verifier::encapsulation::KeyPair::generate(200, &mut OsRng)
                .key_config_bytes(),
            not_before: 0,
            not_after: now_unix() + 3600,
        });
    forged.statement = other_key.sign(&net.operator).unwrap();
    cdn.put(
        lucent_verifier::published::GATEWAY_PATH,
        &serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    match tokio.block_on(asker.gateway_from_cdn(&cdn.url, &relay.url)) {
        Err(ClientError::Published { url, .. }) => assert!(url.ends_with("gateway.json"), "{url}"),
        other => panic!("a forged gateway key config was accepted: {other:?}"),
    }
    cdn.put(
        lucent_verifier::published::GATEWAY_PATH,
        &serde_json::to_vec(&net.published(issuer_index).unwrap()).unwrap(),
    )
    .unwrap();
    match tokio.block_on(asker.gateway_from_cdn(&cdn.url, &relay.url)) {
        Err(ClientError::KeyConfigNotLogged { reason, .. }) => {
            assert!(reason.contains("no key config"), "{reason}")
        }
        other => panic!("an issuer statement was taken for a key config: {other:?}"),
    }

    // Unlinkability: nothing the issuer stored is anything the gateway stored.
    let issuer_values = stored_values(&tokio, &issuer.database);
    let gateway_values = stored_values(&tokio, &net.dir.path().join("gateway/spent.db"));
    assert!(issuer_values.len() >= 4, "{issuer_values:?}");
    assert_eq!(
        gateway_values.len(),
        3,
        "one key id, two nonces: {gateway_values:?}"
    );
    let shared: Vec<_> = issuer_values.intersection(&gateway_values).collect();
    assert!(
        shared.is_empty(),
        "issuer and gateway both store {shared:?}"
    );
    drop(relay);
    drop(gw);
    drop(rt);
    drop(issuer);
}

/// Every value of every row of every table of an SQLite database (but sqlx's own record of
/// the migrations applied), as text.
fn stored_values(
    tokio: &tokio::runtime::Runtime,
    path: &std::path::Path,
) -> std::collections::BTreeSet<String> {
    use sqlx::{Column as _, Row as _};
    tokio.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite:{}?mode=ro", path.display()))
            .await
            .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != '_sqlx_migrations'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(!tables.is_empty(), "{}", path.display());
        let mut values = std::collections::BTreeSet::new();
        for t in tables {
            for row in sqlx::query(&format!("SELECT * FROM {t}"))
                .fetch_all(&pool)
                .await
                .unwrap()
            {
                for (i, c) in row.columns().iter().enumerate() {
                    let v = row
                        .try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
                        .unwrap_or_else(|e| panic!("{t}.{}: {e}", c.name()));
                    values.insert(v);
                }
            }
        }
        values
    })
}

#[test]
fn every_failure_names_its_party() {
    let net = Devnet::start(bins(), DevnetOptions::default()).expect("devnet");
    let settings = RuntimeSettings {
        label: "oblivious failures".into(),
        recheck_secs: 1,
        ..RuntimeSettings::default()
    };
    let (mut rt, _) = open_runtime(&net, &settings, "cvm");
    let (other, _) = open_runtime(
        &net,
        &RuntimeSettings {
            label: "not behind the gateway".into(),
            key_id: Some(77),
            ..RuntimeSettings::default()
        },
        "other-cvm",
    );
    let issuer = net.start_issuer("issuer").unwrap();
    net.publish_issuer(&issuer, now_unix() + 3600).unwrap();
    let credential = net.add_account(&issuer, "bob", 60).unwrap();
    let mut gw = net
        .start_gateway(&[&rt.url], 201, "gateway", &[&issuer])
        .unwrap();
    net.publish_gateway_keyconfig(&gw).unwrap();
    let mut relay = net.start_relay(&gw.url, "relay").unwrap();
    wait_routed(&net, &gw, 1);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let c = client(&net, "client", None);
    let cvm = tokio.block_on(c.attest(&rt.url)).unwrap();
    let other_cvm = tokio.block_on(c.attest(&other.url)).unwrap();
    let verified_issuer = tokio.block_on(c.issuer(&issuer.url)).unwrap();
    let mut tokens = tokio
        .block_on(c.fetch_tokens(&verified_issuer, &credential, 60))
        .unwrap();
    let mut token = move || tokens.pop().unwrap();

    // A gateway key config that is not logged: refused before anything is sent.
    let unlogged = KeyPair::generate(201, &mut OsRng).key_config_bytes();
    match tokio.block_on(c.gateway(&relay.url, &unlogged)) {
        Err(ClientError::KeyConfigNotLogged { url, .. }) => assert!(url.contains("gateway")),
        other => panic!("unlogged gateway key accepted: {other:?}"),
    }
    let gateway = tokio
        .block_on(c.gateway(&relay.url, &gw.key_config))
        .unwrap();
    tokio
        .block_on(c.ask_oblivious(
            &gateway,
            &cvm,
            token(),
            Task::Summarize,
            "lunch at 1?",
            Some(2),
        ))
        .expect("the path works");

    // A CVM the gateway does not route to.
    let e = tokio
        .block_on(c.ask_oblivious(
            &gateway,
            &other_cvm,
            token(),
            Task::Summarize,
            "hi",
            Some(2),
        ))
        .unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "unknown_key_id".into()),
        "{e}"
    );

    // A CVM that closed after the client verified it: its own refusal, through the gateway.
    net.revoke(rt.measurement.clone(), "test: withdrawn")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let e = loop {
        let e = tokio
            .block_on(c.ask_oblivious(&gateway, &cvm, token(), Task::Summarize, "hi", Some(2)))
            .err();
        if let Some(e) = e {
            break e;
        }
        assert!(Instant::now() < deadline, "the CVM never closed");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(party_code(&e), (ErrorSource::Cvm, "revoked".into()), "{e}");

    // A CVM that is gone.
    rt.proc.kill();
    let e = tokio
        .block_on(c.ask_oblivious(&gateway, &cvm, token(), Task::Summarize, "hi", Some(2)))
        .unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "cvm_unreachable".into()),
        "{e}"
    );

    // The gateway down: the relay says so.
    gw.proc.kill();
    let e = tokio
        .block_on(c.ask_oblivious(&gateway, &cvm, token(), Task::Summarize, "hi", Some(2)))
        .unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Relay, "gateway_unreachable".into()),
        "{e}"
    );

    // The relay down.
    relay.proc.kill();
    let e = tokio
        .block_on(c.ask_oblivious(&gateway, &cvm, token(), Task::Summarize, "hi", Some(2)))
        .unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Relay, "relay_unreachable".into()),
        "{e}"
    );
    drop(other);
}

#[test]
fn every_token_failure_has_its_own_error() {
    let net = Devnet::start(bins(), DevnetOptions::default()).expect("devnet");
    let (rt, _) = open_runtime(&net, &RuntimeSettings::default(), "cvm");
    // Three keys of the one issuer name: logged for an hour, logged for a few seconds, and
    // never logged (an issuer singling someone out).
    let logged = net.start_issuer("issuer").unwrap();
    let short = net.start_issuer("issuer-short").unwrap();
    let unlogged = net.start_issuer("issuer-unlogged").unwrap();
    net.publish_issuer(&logged, now_unix() + 3600).unwrap();
    let short_until = now_unix() + 8;
    net.publish_issuer(&short, short_until).unwrap();
    let gw = net
        .start_gateway(&[&rt.url], 203, "gateway", &[&logged, &short, &unlogged])
        .unwrap();
    net.publish_gateway_keyconfig(&gw).unwrap();
    wait_routed(&net, &gw, 1);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let c = client(&net, "client", None);
    let cvm = tokio.block_on(c.attest(&rt.url)).unwrap();
    // Straight to the gateway: the relay adds nothing to what is tested here.
    let gateway = tokio.block_on(c.gateway(&gw.url, &gw.key_config)).unwrap();
    let fetch = |issuer: &IssuerProc, n| {
        let credential = net.add_account(issuer, "carol", 10).unwrap();
        let verified = tokio.block_on(c.issuer(&issuer.url)).unwrap();
        tokio
            .block_on(c.fetch_tokens(&verified, &credential, n))
            .unwrap()
    };
    let mut short_tokens = fetch(&short, 2);
    let mut tokens = fetch(&logged, 3);
    let ask = |token| {
        tokio.block_on(c.ask_oblivious(&gateway, &cvm, token, Task::Summarize, "hi", Some(2)))
    };
    // A token under the short-lived key, spent while the key is valid (its row is deleted
    // once the key expires, below).
    ask(short_tokens.pop().unwrap()).expect("a token under a valid key");

    // The client refuses to fetch tokens under a key it cannot find logged.
    match tokio.block_on(c.issuer(&unlogged.url)) {
        Err(ClientError::IssuerKeyNotLogged { url, .. }) => assert_eq!(url, unlogged.url),
        other => panic!("unlogged issuer key accepted: {other:?}"),
    }

    // A token is good once.
    let token = tokens.pop().unwrap();
    ask(token.clone()).expect("a fresh token");
    let e = ask(token).unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "token_spent".into()),
        "{e}"
    );

    // A forged one (another authenticator) does not verify.
    let mut forged = tokens.pop().unwrap();
    forged.authenticator[0] ^= 1;
    let e = ask(forged).unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "invalid_token".into()),
        "{e}"
    );

    // Tokens under the unlogged key (fetched by a client that skipped the check): refused.
    let unlogged_token = raw_token(&net, &unlogged, &unlogged.info.name);
    let e = ask(unlogged_token).unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "issuer_key_not_logged".into()),
        "{e}"
    );

    // A token under the logged key for another challenge (another issuer's name).
    let e = ask(raw_token(&net, &logged, "another.issuer")).unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "wrong_challenge".into()),
        "{e}"
    );

    // A token under a key past its logged not-after.
    while now_unix() <= short_until {
        std::thread::sleep(Duration::from_millis(250));
    }
    let e = ask(short_tokens.pop().unwrap()).unwrap_err();
    assert_eq!(
        party_code(&e),
        (ErrorSource::Gateway, "issuer_key_expired".into()),
        "{e}"
    );

    // No token at all: an outer request built by hand, without the authorization field.
    let config = lucent_verifier::encapsulation::KeyConfig::parse(&gw.key_config).unwrap();
    let (inner, _) =
        lucent_verifier::encapsulation::seal_request(cvm.key_config(), &[0u8; 64], &mut OsRng)
            .unwrap();
    let forward = lucent_verifier::oblivious::ForwardRequest {
        task: Task::Summarize,
        sealed: inner,
        token: None,
    }
    .encode();
    let (outer, context) = lucent_verifier::encapsulation::seal_request_with(
        &config,
        config.preferred().unwrap(),
        &lucent_verifier::encapsulation::MediaLabels::OHTTP_BHTTP,
        &forward,
        &mut OsRng,
    )
    .unwrap();
    let sealed = net
        .http()
        .post(format!("{}{OHTTP_PATH}", gw.url))
        .header("content-type", "message/ohttp-req")
        .body(outer)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let opened = lucent_verifier::encapsulation::open_response(&context, &sealed).unwrap();
    match lucent_verifier::oblivious::GatewayAnswer::decode(&opened).unwrap() {
        lucent_verifier::oblivious::GatewayAnswer::Error { status, body, .. } => {
            assert_eq!((status, body.error.as_str()), (401, "token_required"))
        }
        other => panic!("a request without a token was answered: {other:?}"),
    }

    // The gateway stored the redeemed tokens and nothing for the refused ones; the row of
    // the expired key goes at its next read of the log (the store is bounded by rotation).
    let short_key = hex::encode(
        lucent_verifier::privacy_pass::IssuerPublicKey::parse(
            &hex::decode(&short.info.public_key).unwrap(),
        )
        .unwrap()
        .key_id(),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let spent = loop {
        let spent = stored_values(&tokio, &net.dir.path().join("gateway/spent.db"));
        if !spent.contains(&short_key) {
            break spent;
        }
        assert!(
            Instant::now() < deadline,
            "the expired key's spent tokens were kept"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        spent.len(),
        2,
        "the logged key's id and one nonce: {spent:?}"
    );
    drop(gw);
}

/// A token from `issuer` for the challenge of `issuer_name`, fetched as a client that checks
/// nothing would (a new account, the issuer's HTTP API, the key as the issuer states it).
fn raw_token(
    net: &Devnet,
    issuer: &IssuerProc,
    issuer_name: &str,
) -> lucent_verifier::privacy_pass::Token {
    use lucent_verifier::privacy_pass as pp;
    let key = pp::IssuerPublicKey::parse(&hex::decode(&issuer.info.public_key).unwrap()).unwrap();
    let challenge = pp::TokenChallenge::for_issuer(issuer_name);
    let (request, pending) = pp::request_token(&key, &challenge, &mut OsRng).unwrap();
    let mut tag = [0u8; 4];
    OsRng.fill_bytes(&mut tag);
    let credential = net
        .add_account(issuer, &format!("raw-{}", hex::encode(tag)), 1)
        .unwrap();
    let answer = net
        .http()
        .post(format!("{}/v1/token-requests", issuer.url))
        .bearer_auth(credential)
        .header("content-type", pp::BATCH_REQUEST_MEDIA_TYPE)
        .body(pp::encode_batch(&[request.encode()]).unwrap())
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let response = pp::TokenResponse::decode(&answer[2..]).unwrap();
    pending.finalize(&response).unwrap()
}

/// Sends only the headers of a request declaring a `len`-byte body; the status and the
/// error source of the answer.
fn declared(base: &str, len: usize) -> (u16, Option<String>) {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {OHTTP_PATH} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: message/ohttp-req\r\n\
         content-length: {len}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let source = answer
        .lines()
        .find_map(|l| l.strip_prefix("lucent-error-source: "))
        .map(|v| v.trim().to_owned());
    assert!(answer.contains("too_large"), "{answer}");
    (status, source)
}

#[test]
fn bad_input_to_the_gateway_and_the_relay_gets_specific_errors() {
    let net = Devnet::start(bins(), DevnetOptions::default()).expect("devnet");
    let (rt, _) = open_runtime(&net, &RuntimeSettings::default(), "cvm");
    let gw = net.start_gateway(&[&rt.url], 202, "gateway", &[]).unwrap();
    let mut relay = net.start_relay(&gw.url, "relay").unwrap();
    let http = net.http();
    let post = |base: &str, media: &str, body: Vec<u8>| {
        let r = http
            .post(format!("{base}{OHTTP_PATH}"))
            .header("content-type", media)
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let source = r
            .headers()
            .get("lucent-error-source")
            .map(|v| v.to_str().unwrap().to_owned());
        let v: serde_json::Value = r.json().unwrap();
        (
            status,
            v["error"].as_str().unwrap_or_default().to_owned(),
            source,
        )
    };
    let req = "message/ohttp-req";
    // Straight at the gateway.
    assert_eq!(post(&gw.url, "text/plain", vec![0; 80]).0, 415);
    assert_eq!(
        post(&gw.url, req, vec![0; 8]),
        (400, "bad_request".into(), None)
    );
    let mut other_key = vec![0u8; 200];
    other_key[0] = 9;
    other_key[1..3].copy_from_slice(&0x0020u16.to_be_bytes());
    other_key[3..5].copy_from_slice(&1u16.to_be_bytes());
    other_key[5..7].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(
        post(&gw.url, req, other_key.clone()),
        (422, "unknown_gateway_key".into(), None)
    );
    let mut tampered = other_key.clone();
    tampered[0] = 202;
    assert_eq!(post(&gw.url, req, tampered.clone()).1, "bad_request");
    // Oversized: refused on its declared length before the body is read (a client still
    // writing the body may then see the connection close instead of the answer, so the
    // request is sent as headers only).
    assert_eq!(declared(&gw.url, (1 << 20) + 200), (413, None), "oversized");
    // Through the relay: its own refusals, and the gateway's, each labelled.
    assert_eq!(
        post(&relay.url, "application/json", vec![1]),
        (415, "wrong_media_type".into(), Some("relay".into()))
    );
    assert_eq!(
        declared(&relay.url, (1 << 20) + 200),
        (413, Some("relay".into()))
    );
    assert_eq!(
        post(&relay.url, req, other_key),
        (422, "unknown_gateway_key".into(), Some("gateway".into()))
    );
    // Both still serve.
    assert!(net
        .http()
        .get(format!("{}/v1/status", gw.url))
        .send()
        .unwrap()
        .status()
        .is_success());
    let counters: serde_json::Value = net
        .http()
        .get(format!("{}/v1/status", relay.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(counters["requests"], 3, "{counters}");
    assert_eq!(counters["refused"], 2, "{counters}");
    assert!(relay.proc.running());
}
