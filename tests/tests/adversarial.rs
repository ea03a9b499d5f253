//! Attacks on the log from outside, against a real `lucent-log-server` process: each test
//! sends what an attacker (or a careless operator) can send and checks the specific answer and
//! that the log did not change.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use lucent_tests::log_check::{LogClient, Submitted};
use lucent_tests::log_process::{LogOptions, LogProcess};
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::{self, NoteSigner, NoteVerifierKey};
use lucent_verifier::statement::{KeyConfig, Statement, MAX_STATEMENT_BYTES};

const BIN: &str = env!("CARGO_BIN_EXE_lucent-log-server-e2e");

/// A server whose allowed operators are `operators`.
fn start(data: &Path, operators: &[NoteSigner]) -> (LogProcess, LogClient) {
    start_with(data, operators, |_| {})
}

/// A server whose allowed operators are `operators`, with `adjust` applied to its options.
fn start_with(
    data: &Path,
    operators: &[NoteSigner],
    adjust: impl FnOnce(&mut LogOptions),
) -> (LogProcess, LogClient) {
    std::fs::create_dir_all(data).unwrap();
    let list: String = operators
        .iter()
        .map(|op| format!("{}\n", op.verifier_key()))
        .collect();
    std::fs::write(data.join("operators.txt"), list).unwrap();
    let mut opts = LogOptions::new(BIN, data);
    opts.extra_args = vec!["--batch-interval-ms".into(), "5".into()];
    adjust(&mut opts);
    let server = LogProcess::spawn(&opts).unwrap();
    let text = std::fs::read_to_string(data.join("log.key.pub")).unwrap();
    let key = LogKey::new(NoteVerifierKey::parse(text.trim()).unwrap());
    let client = LogClient::new(&server.url, key).unwrap();
    (server, client)
}

fn statement(i: u32) -> Statement {
    Statement::KeyConfig(KeyConfig {
        key_id: 1,
        config: i.to_be_bytes().to_vec(),
        not_before: 0,
        not_after: 1,
    })
}

/// The signature lines `signer` puts on `text`.
fn signature_lines(signer: &NoteSigner, text: &[u8]) -> Vec<u8> {
    let note = signer.sign(text).unwrap();
    note[text.len() + 1..].to_vec()
}

/// The note's text (without the blank line and signatures).
fn text_of(note: &[u8]) -> Vec<u8> {
    note::parse_unverified(note).unwrap().0
}

fn logged(client: &LogClient, statement: &[u8]) -> u64 {
    match client.submit(statement).unwrap() {
        Submitted::Acked(index) => index,
        other => panic!("not logged: {other:?}"),
    }
}

/// Waits until the checkpoint covers `size` entries; returns its size.
fn size_after(client: &LogClient, size: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let cp = client.checkpoint().unwrap();
        if cp.size.0 >= size || std::time::Instant::now() > deadline {
            return cp.size.0;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn padded_replays_are_refused_and_the_log_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
    let (_server, client) = start(&dir.path().join("data"), std::slice::from_ref(&op));
    let note = statement(1).sign(&op).unwrap();
    let index = logged(&client, &note);
    let size = size_after(&client, index + 1);
    let entries = client.verify_all(&client.checkpoint().unwrap()).unwrap();

    // A valid operator line plus a line by a key the log does not know.
    let stranger = NoteSigner::generate(&mut rand_core::OsRng, "stranger.example").unwrap();
    let mut padded = note.clone();
    padded.extend(signature_lines(&stranger, &text_of(&note)));
    assert_eq!(
        client.submit(&padded).unwrap(),
        Submitted::Refused(403, "foreign_signature".into())
    );

    // The operator's own line twice.
    let mut doubled = note.clone();
    doubled.extend(signature_lines(&op, &text_of(&note)));
    assert_eq!(
        client.submit(&doubled).unwrap(),
        Submitted::Refused(400, "duplicate_signature".into())
    );

    // The original is still "already logged" at its one index; nothing else was added.
    assert_eq!(client.submit(&note).unwrap(), Submitted::Acked(index));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let cp = client.checkpoint().unwrap();
    assert_eq!(cp.size.0, size);
    assert_eq!(client.verify_all(&cp).unwrap(), entries);
}

#[test]
fn a_statement_is_logged_once_however_it_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let a = NoteSigner::generate(&mut rand_core::OsRng, "operator-a.example").unwrap();
    let b = NoteSigner::generate(&mut rand_core::OsRng, "operator-b.example").unwrap();
    let (_server, client) = start(&dir.path().join("data"), &[a.clone(), b.clone()]);
    let by_a = statement(2).sign(&a).unwrap();
    let index = logged(&client, &by_a);
    let size = size_after(&client, index + 1);

    // The same text signed by the other operator, and by both: the log answers with the
    // entry it holds (its index and leaf hash), and adds nothing.
    let by_b = statement(2).sign(&b).unwrap();
    let mut by_both = by_a.clone();
    by_both.extend(signature_lines(&b, &text_of(&by_a)));
    for other in [&by_b, &by_both] {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v1/statements", client.url))
            .body(other.clone())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 409);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["error"], "already_logged");
        assert_eq!(v["index"], index);
        assert_eq!(v["leaf_hash"], LeafHash::of_entry(&by_a).to_string());
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(client.checkpoint().unwrap().size.0, size);
}

/// Operators named so that the statement signed by all of them is exactly `target` bytes
/// (with long key names: a note carries at most 100 signatures).
fn operators_for_size(target: usize) -> (Vec<NoteSigner>, Vec<u8>) {
    const OPS: usize = 60;
    let text = statement(3).to_text().into_bytes();
    let name = |i: usize, pad: usize| format!("op{i:02}{}.example", "x".repeat(pad));
    let signer =
        |i: usize, pad: usize| NoteSigner::generate(&mut rand_core::OsRng, &name(i, pad)).unwrap();
    // A signature line is its key name plus a fixed number of bytes.
    let fixed = signature_lines(&signer(0, 0), &text).len() - name(0, 0).len();
    let per_line = (target - text.len() - 1) / OPS;
    let pad = per_line - fixed - name(0, 0).len();
    let mut note = text.clone();
    note.push(b'\n');
    let mut ops = Vec::new();
    for i in 0..OPS - 1 {
        let op = signer(i, pad);
        note.extend(signature_lines(&op, &text));
        ops.push(op);
    }
    // The last line takes up exactly what is left.
    let last_pad = target - note.len() - fixed - name(0, 0).len();
    let op = signer(OPS - 1, last_pad);
    note.extend(signature_lines(&op, &text));
    ops.push(op);
    (ops, note)
}

#[test]
fn the_largest_entry_is_served_and_one_byte_more_is_refused() {
    assert_eq!(MAX_STATEMENT_BYTES, 65_535);
    let (ops, largest) = operators_for_size(MAX_STATEMENT_BYTES);
    assert_eq!(largest.len(), 65_535);
    let dir = tempfile::tempdir().unwrap();
    let (_server, client) = start(&dir.path().join("data"), &ops);

    let index = logged(&client, &largest);
    size_after(&client, index + 1);
    // Served: its entry bundle decodes, and the tiles hash to the checkpoint's root.
    let entries = client.verify_all(&client.checkpoint().unwrap()).unwrap();
    assert_eq!(entries[index as usize], largest);

    // One byte more (a longer name on the last line): refused for its size, nothing added.
    let (_, too_large) = operators_for_size(MAX_STATEMENT_BYTES + 1);
    assert_eq!(too_large.len(), 65_536);
    let size = client.checkpoint().unwrap().size.0;
    assert_eq!(
        client.submit(&too_large).unwrap(),
        Submitted::Refused(413, "statement_too_large".into())
    );
    assert_eq!(client.checkpoint().unwrap().size.0, size);
}

#[test]
fn after_two_thousand_key_configs_under_one_id_the_newest_is_found() {
    use lucent_verifier::log_api::{KeyConfigsAnswer, LookupAnswer as _, LOOKUP_PAGE_ENTRIES};
    const N: u32 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
    let (_server, client) = start(&dir.path().join("data"), std::slice::from_ref(&op));
    let client = std::sync::Arc::new(client);
    let workers: Vec<_> = (0..8u32)
        .map(|w| {
            let (client, op) = (client.clone(), op.clone());
            std::thread::spawn(move || {
                for i in (w..N).step_by(8) {
                    logged(&client, &statement(i).sign(&op).unwrap());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let newest = statement(N).sign(&op).unwrap();
    let newest_index = logged(&client, &newest);

    let get = |path: &str| -> KeyConfigsAnswer {
        reqwest::blocking::get(format!("{}{path}", client.url))
            .unwrap()
            .json()
            .unwrap()
    };
    // The first page starts with the newest entry and says how many there are in all.
    let mut all = get("/v1/keyconfigs/1");
    assert_eq!(all.keyconfigs[0].index, newest_index);
    assert_eq!(all.keyconfigs[0].entry, newest);
    assert_eq!(all.total, u64::from(N) + 1);
    assert_eq!(all.keyconfigs.len(), LOOKUP_PAGE_ENTRIES);
    // Every page continues the one before, down to the oldest.
    let mut pages = 1;
    while let Some(before) = all.next_before {
        all.append(get(&format!("/v1/keyconfigs/1?before={before}")))
            .unwrap();
        pages += 1;
    }
    all.check_complete().unwrap();
    assert_eq!(pages, (N as usize + 1).div_ceil(LOOKUP_PAGE_ENTRIES));
    let indexes: Vec<u64> = all.keyconfigs.iter().map(|e| e.index).collect();
    assert!(indexes.windows(2).all(|w| w[0] > w[1]), "not newest first");

    // A malformed cursor is a specific 400, not a 500 or an empty page.
    let r = reqwest::blocking::get(format!("{}/v1/keyconfigs/1?before=x", client.url)).unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::blocking::get(format!("{}/v1/keyconfigs/1?limit=5", client.url)).unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

/// 1,000 connections that never finish their request headers, and a few that never finish
/// a body: the checkpoint still answers at once, and the server closes every one of them
/// after its timeouts (2 s here) without storing anything.
#[test]
fn stalled_connections_do_not_hold_the_server_and_are_closed_after_the_timeout() {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
    let (server, client) = start_with(&dir.path().join("data"), std::slice::from_ref(&op), |o| {
        o.extra_args.extend(
            [
                "--header-read-timeout-ms",
                "2000",
                "--body-read-timeout-ms",
                "2000",
            ]
            .map(String::from),
        );
    });
    let index = logged(&client, &statement(7).sign(&op).unwrap());
    let size = size_after(&client, index + 1);
    let addr = server.url.trim_start_matches("http://").to_owned();

    let stalled_at = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..1000 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /checkpoint HTTP/1.1\r\nHost: lucent\r\n")
            .unwrap();
        stalled.push(s);
    }
    let note = statement(8).sign(&op).unwrap();
    for _ in 0..10 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!(
            "POST /v1/statements HTTP/1.1\r\nHost: lucent\r\nContent-Length: {}\r\n\r\n",
            note.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&note[..note.len() / 2]).unwrap();
        stalled.push(s);
    }

    // The checkpoint answers at once beside them (median of five fresh connections).
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let http = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let t = Instant::now();
            let r = http
                .get(format!("{}/checkpoint", server.url))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    assert!(
        times[2] < Duration::from_millis(100),
        "checkpoint took {times:?} beside 1,010 stalled connections"
    );

    // Every stalled connection is closed by the server: end of stream, or an error answer
    // for the half-sent bodies, then the end.
    for (i, s) in stalled.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "connection {i} still open after {:?}: {e}",
                stalled_at.elapsed()
            ),
        }
        if i < 1000 {
            assert!(
                got.is_empty(),
                "connection {i}: {}",
                String::from_utf8_lossy(&got)
            );
        } else if !got.is_empty() {
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 4"), "connection {i}: {text}");
        }
    }
    let closed_after = stalled_at.elapsed();
    assert!(
        closed_after >= Duration::from_secs(2) && closed_after < Duration::from_secs(20),
        "closed after {closed_after:?}"
    );
    // Nothing of the half-sent statements was logged.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.checkpoint().unwrap().size.0, size);
}

/// One address sending faster than its per-source limit gets 429 `rate_limited` with
/// `Retry-After`; another address is served as usual.
#[test]
fn one_flooding_address_is_limited_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let op = NoteSigner::generate(&mut rand_core::OsRng, "operator.example").unwrap();
    let (server, _client) = start_with(&dir.path().join("data"), std::slice::from_ref(&op), |o| {
        o.rate_limit = Some((1, 20));
    });
    let url = format!("{}/checkpoint", server.url);
    let flooder = reqwest::blocking::Client::new();
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..40 {
        let r = flooder.get(&url).send().unwrap();
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 && refusal.is_none() {
            let retry = r.headers().get("retry-after").cloned();
            let body: serde_json::Value = r.json().unwrap();
            refusal = Some((retry, body));
        }
    }
    // A burst of 20 (less the harness's own start-up checks from this address), then 429
    // but for the odd token refilled at one a second.
    let served = statuses.iter().filter(|&&s| s == 200).count();
    assert!((15..=21).contains(&served), "{statuses:?}");
    assert!(statuses[..15].iter().all(|&s| s == 200), "{statuses:?}");
    assert!(
        statuses[25..].iter().filter(|&&s| s == 429).count() >= 14,
        "{statuses:?}"
    );
    let (retry, body) = refusal.unwrap();
    assert!(retry.is_some(), "no Retry-After");
    assert_eq!(body["error"], "rate_limited", "{body}");

    // Another source address on the loopback network is not affected.
    let other = reqwest::blocking::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(other.get(&url).send().unwrap().status().as_u16(), 200);
}
