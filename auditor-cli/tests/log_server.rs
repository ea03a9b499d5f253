//! End-to-end tests over real processes: `lucent-log-server` and `lucent-auditor` (its
//! `witness serve` too) on 127.0.0.1 with temporary data directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lucent_verifier::checkpoint::verify_checkpoint;
use lucent_verifier::merkle::{LeafHash, MemoryTree, TreeSize};
use lucent_verifier::note;
use lucent_verifier::statement::Statement;
use lucent_verifier::witness_protocol::{build_add_checkpoint, parse_size_body};

const ENTRIES: u32 = 3000;

#[test]
fn monitor_over_thousands_of_entries_agrees_with_the_server() {
    let Some(bin) = need_log_server("monitor_over_thousands_of_entries_agrees_with_the_server")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = LogSetup::new(dir.path(), "log.monitor.test");
    let (witness, wkey) = start_witness_for(dir.path(), &log, "witness.monitor.test");
    let server = log.start(
        &bin,
        &dir.path().join("data"),
        &[(witness.url.clone(), wkey.clone())],
        None,
    );
    let notes = submit_all(&server.url, &log.operator, 0, 0..ENTRIES);
    let cp = wait_for_checkpoint(&server.url, &log.log_key(), u64::from(ENTRIES), 1);
    assert_eq!(cp.checkpoint.size.0, u64::from(ENTRIES));

    // Independent recomputation of the root from the notes we submitted, in log order.
    let state = dir.path().join("state");
    let vkey = log.vkey();
    let op = log.operator_vkey();
    let base = |cmd: &'static str| -> Vec<String> {
        vec![
            cmd.into(),
            "--log".into(),
            server.url.clone(),
            "--log-key".into(),
            vkey.clone(),
            "--witness-key".into(),
            wkey.clone(),
            "--state-dir".into(),
            state.display().to_string(),
        ]
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        auditor_json(&refs)
    };

    let (code, v, err) = run(base("checkpoint"));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["size"], u64::from(ENTRIES));
    assert_eq!(v["cosignatures"][0]["witness"], "witness.monitor.test");

    // Part of the log, then the rest: the second run resumes.
    let mut args = base("monitor");
    args.extend([
        "--operator-key".into(),
        op.clone(),
        "--max-entries".into(),
        "1000".into(),
    ]);
    let (code, v, err) = run(args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["from"], 0);
    let first_stop = v["to"].as_u64().unwrap();
    assert!(
        (1000..u64::from(ENTRIES)).contains(&first_stop),
        "{first_stop}"
    );

    let mut args = base("monitor");
    args.extend(["--operator-key".into(), op.clone()]);
    let (code, v, err) = run(args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["from"], first_stop);
    assert_eq!(v["to"], u64::from(ENTRIES));
    assert_eq!(v["root"], cp.checkpoint.root.to_hex());
    let (rel, kc, rev) = kinds(ENTRIES);
    assert_eq!(v["totals"]["releases"], rel);
    assert_eq!(v["totals"]["keyconfigs"], kc);
    assert_eq!(v["totals"]["revocations"], rev);
    assert!(v["problems"].as_array().unwrap().is_empty());

    // The server's leaf set equals ours (order is the server's; check membership and root).
    let mut tree = MemoryTree::new();
    let mut by_leaf = std::collections::HashMap::new();
    for n in &notes {
        by_leaf.insert(LeafHash::of_entry(n), n.clone());
    }
    for i in 0..u64::from(ENTRIES) {
        let (s, body) = get(&format!("{}/v1/entries/{i}", server.url));
        assert_eq!(s, 200);
        let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let leaf = e["leaf_hash"].as_str().unwrap().to_owned();
        let leaf = LeafHash(lucent_verifier::merkle::Hash::from_hex(&leaf).unwrap());
        assert!(by_leaf.contains_key(&leaf));
        tree.push(leaf);
    }
    assert_eq!(tree.root(), cp.checkpoint.root);

    // A third run has nothing new and still agrees.
    let mut args = base("monitor");
    args.extend(["--operator-key".into(), op.clone()]);
    let (code, v, _) = run(args);
    assert_eq!((code, v["entries_read"].as_u64()), (0, Some(0)));

    // Monitor with the wrong operator key: every statement is flagged, exit 1.
    let other =
        lucent_verifier::note::NoteSigner::generate(&mut rand_core::OsRng, "operator.example")
            .unwrap();
    let mut args = base("monitor");
    args[8] = dir.path().join("state2").display().to_string();
    args.extend([
        "--operator-key".into(),
        other.verifier_key().to_string(),
        "--max-entries".into(),
        "10".into(),
    ]);
    let (code, v, _) = run(args);
    assert_eq!(code, 1, "{v}");
    assert!(!v["problems"].as_array().unwrap().is_empty());

    // Inclusion of a statement file, a leaf, a measurement.
    let stmt_file = dir.path().join("stmt");
    std::fs::write(&stmt_file, &notes[7]).unwrap();
    let mut args = base("inclusion");
    args.extend([
        "--statement".into(),
        stmt_file.display().to_string(),
        "--operator-key".into(),
        op.clone(),
    ]);
    let (code, v, err) = run(args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["leaf_hash"], LeafHash::of_entry(&notes[7]).to_string());

    let mut args = base("inclusion");
    args.extend([
        "--leaf-hash".into(),
        LeafHash::of_entry(b"never logged").to_string(),
    ]);
    let (code, v, _) = run(args);
    assert_eq!(code, 1, "{v}");

    let idx = v["index"].as_u64();
    assert!(idx.is_none());
    // An index hint that is wrong is only a hint: the leaf is proved where it is.
    let real = tree_index(&tree, &notes[7], ENTRIES);
    let wrong = (real + 1) % u64::from(ENTRIES);
    let mut args = base("inclusion");
    args.extend([
        "--statement".into(),
        stmt_file.display().to_string(),
        "--index".into(),
        wrong.to_string(),
    ]);
    let (code, v, err) = run(args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(
        (v["index"].as_u64(), v["wrong_index_hint"].as_u64()),
        (Some(real), Some(wrong))
    );

    let Statement::Release(r0) = statement(0, 0) else {
        panic!()
    };
    let mut args = base("inclusion");
    args.extend([
        "--measurement".into(),
        r0.measurement.to_hex(),
        "--operator-key".into(),
        op.clone(),
    ]);
    let (code, v, err) = run(args);
    assert_eq!(code, 0, "{v} {err}");
    // Statement 24 revokes the release of statement 23.
    let Statement::Release(r23) = statement(0, 23) else {
        panic!()
    };
    let mut args = base("inclusion");
    args.extend(["--measurement".into(), r23.measurement.to_hex()]);
    let (code, v, _) = run(args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["revoked"], true);

    // Consistency between sizes.
    let mut args = base("consistency");
    args.extend(["--old".into(), "10".into(), "--new".into(), "2000".into()]);
    let (code, v, err) = run(args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["old_root"], tree.root_at(10).unwrap().to_hex());
    assert_eq!(v["new_root"], tree.root_at(2000).unwrap().to_hex());
}

fn tree_index(tree: &MemoryTree, note: &[u8], n: u32) -> u64 {
    let leaf = LeafHash::of_entry(note);
    (0..u64::from(n))
        .find(|&i| {
            tree.prove_inclusion(i, u64::from(n))
                .map(|p| p.verify(&leaf, &tree.root()).is_ok())
                .unwrap_or(false)
        })
        .expect("note is in the tree")
}

#[test]
fn forked_log_is_caught_by_checkpoint_and_refused_by_the_witness() {
    let Some(bin) =
        need_log_server("forked_log_is_caught_by_checkpoint_and_refused_by_the_witness")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = LogSetup::new(dir.path(), "log.fork.test");
    let (witness, wkey) = start_witness_for(dir.path(), &log, "witness.fork.test");
    let state = dir.path().join("state");
    let vkey = log.vkey();

    // Log A: 300 entries, cosigned by the witness; the auditor records it.
    let a = log.start(
        &bin,
        &dir.path().join("a"),
        &[(witness.url.clone(), wkey.clone())],
        None,
    );
    submit_all(&a.url, &log.operator, 1, 0..300);
    let cp_a = wait_for_checkpoint(&a.url, &log.log_key(), 300, 1);
    let args = |url: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "checkpoint".into(),
            "--log".into(),
            url.into(),
            "--log-key".into(),
            vkey.clone(),
            "--state-dir".into(),
            state.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |v: Vec<String>| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        auditor_json(&refs)
    };
    let (code, v, err) = run(args(&a.url, &["--witness-key", &wkey]));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["size"], 300);
    let stored_before = std::fs::read(
        state
            .join("logs")
            .join(hex::encode("log.fork.test"))
            .join("checkpoint"),
    )
    .unwrap();
    drop(a);

    // Log B: same key, different entries, more of them.
    let b = log.start(
        &bin,
        &dir.path().join("b"),
        &[(witness.url.clone(), wkey.clone())],
        None,
    );
    let b_notes = submit_all(&b.url, &log.operator, 2, 0..400);
    let cp_b = wait_for_checkpoint(&b.url, &log.log_key(), 400, 0);
    assert_eq!(cp_b.checkpoint.size.0, 400);

    // The witness refused B: its checkpoint carries no cosignature, so the quorum fails.
    let (code, v, _) = run(args(&b.url, &["--witness-key", &wkey]));
    assert_eq!(code, 1, "{v}");
    assert!(v["error"].as_str().unwrap().contains("witness"), "{v}");

    // Without witnesses the auditor still catches the fork against its last seen checkpoint.
    let (code, v, err) = run(args(&b.url, &["--dangerous-no-witnesses"]));
    assert_eq!(code, 1, "{v} {err}");
    let ev = &v["evidence"];
    assert_eq!(
        ev["stored_checkpoint"].as_str().unwrap().as_bytes(),
        &cp_a.note[..cp_a.note.len()]
    );
    assert!(ev["new_checkpoint"].as_str().unwrap().contains("\n400\n"));
    assert_eq!(ev["consistency_proof"]["old"], 300);
    assert!(!ev["consistency_proof"]["hashes"]
        .as_array()
        .unwrap()
        .is_empty());
    // The evidence is also kept in the state directory.
    let log_dir = state.join("logs").join(hex::encode("log.fork.test"));
    let evidence: Vec<_> = std::fs::read_dir(&log_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("split-view-"))
        .collect();
    assert_eq!(evidence.len(), 1);
    assert_eq!(
        v["evidence_file"].as_str().map(std::path::PathBuf::from),
        Some(evidence[0].path())
    );
    let text = std::fs::read_to_string(evidence[0].path()).unwrap();
    assert!(
        text.contains("stored checkpoint") && text.contains("consistency proof 300 -> 400"),
        "{text}"
    );
    // The local state still holds A's checkpoint.
    let stored_after = std::fs::read(
        state
            .join("logs")
            .join(hex::encode("log.fork.test"))
            .join("checkpoint"),
    )
    .unwrap();
    assert_eq!(stored_before, stored_after);

    // Directly: the witness holds 300; B's checkpoint with old 0 → 409 "300"; with a
    // (valid for B) proof from 300 → 422.
    let mut b_tree = MemoryTree::new();
    let mut leaves = Vec::new();
    for i in 0..400u64 {
        let (_, body) = get(&format!("{}/v1/entries/{i}", b.url));
        let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let leaf = LeafHash(
            lucent_verifier::merkle::Hash::from_hex(e["leaf_hash"].as_str().unwrap()).unwrap(),
        );
        leaves.push(leaf);
        b_tree.push(leaf);
    }
    assert_eq!(b_tree.root(), cp_b.checkpoint.root);
    assert!(b_notes
        .iter()
        .all(|n| leaves.contains(&LeafHash::of_entry(n))));
    let (text, _) = note::parse_unverified(&cp_b.note).unwrap();
    let log_only = log.signer.sign(&text).unwrap();
    let body = build_add_checkpoint(TreeSize(0), &[], &log_only).unwrap();
    let (status, resp) = post(&format!("{}/add-checkpoint", witness.url), body);
    assert_eq!(status, 409);
    assert_eq!(parse_size_body(&resp).unwrap(), TreeSize(300));
    let proof = b_tree.prove_consistency(300, 400).unwrap();
    let body = build_add_checkpoint(TreeSize(300), &proof.hashes, &log_only).unwrap();
    let (status, _) = post(&format!("{}/add-checkpoint", witness.url), body);
    assert_eq!(status, 422);
    // A rollback (smaller than what it holds) is refused too.
    let small = lucent_verifier::checkpoint::Checkpoint {
        origin: "log.fork.test".into(),
        size: TreeSize(200),
        root: b_tree.root_at(200).unwrap(),
        extension: String::new(),
    }
    .sign(&log.signer)
    .unwrap();
    let (status, _) = post(
        &format!("{}/add-checkpoint", witness.url),
        build_add_checkpoint(TreeSize(300), &[], &small).unwrap(),
    );
    assert_eq!(status, 400);
    let _ = verify_checkpoint(&cp_b.note, &log.log_key()).unwrap();
}

#[test]
fn witness_restart_keeps_its_state() {
    let Some(bin) = need_log_server("witness_restart_keeps_its_state") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = LogSetup::new(dir.path(), "log.restart.test");
    let (wfile, wkey) = witness_key(dir.path(), "witness.restart.test");
    let wstate = dir.path().join("witness");
    // Pick a port, then keep it across the restart (the log is configured with the URL).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let witness = start_witness(&wfile, &log.vkey(), &wstate, &listen);
    let server = log.start(
        &bin,
        &dir.path().join("data"),
        &[(witness.url.clone(), wkey.clone())],
        None,
    );
    submit_all(&server.url, &log.operator, 3, 0..50);
    let cp = wait_for_checkpoint(&server.url, &log.log_key(), 50, 1);
    let url = witness.url.clone();
    drop(witness);

    let witness = start_witness(&wfile, &log.vkey(), &wstate, &listen);
    assert_eq!(witness.url, url);
    let (text, _) = note::parse_unverified(&cp.note).unwrap();
    let log_only = log.signer.sign(&text).unwrap();
    let (status, resp) = post(
        &format!("{url}/add-checkpoint"),
        build_add_checkpoint(TreeSize(0), &[], &log_only).unwrap(),
    );
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(parse_size_body(&resp).unwrap(), cp.checkpoint.size);

    // The log goes on; the restarted witness cosigns the next consistent checkpoint.
    submit_all(&server.url, &log.operator, 3, 50..80);
    let cp2 = wait_for_checkpoint(&server.url, &log.log_key(), 80, 1);
    assert_eq!(cp2.checkpoint.size.0, 80);
    let (code, v, err) = auditor_json(&[
        "checkpoint",
        "--log",
        &server.url,
        "--log-key",
        &log.vkey(),
        "--witness-key",
        &wkey,
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["size"], 80);
}

#[test]
fn bad_input_gives_clear_errors_and_never_touches_state() {
    let Some(bin) = need_log_server("bad_input_gives_clear_errors_and_never_touches_state") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = LogSetup::new(dir.path(), "log.bad.test");
    let mirror = dir.path().join("mirror");
    let server = log.start(&bin, &dir.path().join("data"), &[], Some(&mirror));
    submit_all(&server.url, &log.operator, 4, 0..600);
    let cp = wait_for_checkpoint(&server.url, &log.log_key(), 600, 0);
    // Wait for the mirror to hold that checkpoint.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read(mirror.join("checkpoint")).ok().as_deref() != Some(&cp.note[..]) {
        assert!(
            std::time::Instant::now() < deadline,
            "mirror never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let state = dir.path().join("state");
    let vkey = log.vkey();
    let run = |loc: &str, cmd: &str, key: &str| {
        auditor_json(&[
            cmd,
            "--log",
            loc,
            "--log-key",
            key,
            "--dangerous-no-witnesses",
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    // The mirror directory is a complete log: the auditor needs nothing else.
    let good = mirror.to_str().unwrap();
    let (code, v, err) = run(good, "monitor", &vkey);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["root"], cp.checkpoint.root.to_hex());
    let cp_path = state
        .join("logs")
        .join(hex::encode("log.bad.test"))
        .join("checkpoint");
    let mon_path = state
        .join("logs")
        .join(hex::encode("log.bad.test"))
        .join("monitor.json");
    let snapshot = || {
        (
            std::fs::read(&cp_path).unwrap(),
            std::fs::read(&mon_path).unwrap(),
        )
    };
    let before = snapshot();

    // Unreachable log → 2.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, v, _) = run(&format!("http://127.0.0.1:{port}"), "checkpoint", &vkey);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["outcome"], "could_not_check");

    // Wrong key → 1.
    let other =
        lucent_verifier::note::NoteSigner::generate(&mut rand_core::OsRng, "log.bad.test").unwrap();
    let (code, v, _) = run(good, "checkpoint", &other.verifier_key().to_string());
    assert_eq!(code, 1, "{v}");

    // Truncated checkpoint → 1.
    let copy = |name: &str| {
        let d = dir.path().join(name);
        copy_dir(&mirror, &d);
        d
    };
    let t = copy("truncated");
    let full = std::fs::read(t.join("checkpoint")).unwrap();
    for cut in [full.len() / 3, full.len() - 5] {
        std::fs::write(t.join("checkpoint"), &full[..cut]).unwrap();
        let (code, v, _) = run(t.to_str().unwrap(), "checkpoint", &vkey);
        assert_eq!(code, 1, "cut {cut}: {v}");
    }

    // Corrupted entry bundle → the monitor's recomputed root does not match → 1.
    let c = copy("corrupt-entries");
    let fresh = dir.path().join("fresh-state");
    let bundle = c.join("tile/entries/001");
    let mut data = std::fs::read(&bundle).unwrap();
    let last = data.len() - 70;
    data[last] ^= 0x20;
    std::fs::write(&bundle, &data).unwrap();
    let (code, v, err) = auditor_json(&[
        "monitor",
        "--log",
        c.to_str().unwrap(),
        "--log-key",
        &vkey,
        "--dangerous-no-witnesses",
        "--state-dir",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{v} {err}");
    assert!(!fresh
        .join("logs")
        .join(hex::encode("log.bad.test"))
        .join("monitor.json")
        .exists());

    // Corrupted hash tile → consistency from the stored checkpoint cannot be proven → 1.
    let h = copy("corrupt-hashes");
    let tile = h.join("tile/0/000");
    let mut data = std::fs::read(&tile).unwrap();
    data[5] ^= 1;
    std::fs::write(&tile, &data).unwrap();
    let (code, v, _) = auditor_json(&[
        "consistency",
        "--log",
        h.to_str().unwrap(),
        "--log-key",
        &vkey,
        "--dangerous-no-witnesses",
        "--state-dir",
        state.to_str().unwrap(),
        "--old",
        "100",
        "--new",
        "600",
    ]);
    assert_eq!(code, 1, "{v}");

    // Missing tiles → 2 (could not check).
    let m = copy("missing");
    std::fs::remove_file(m.join("tile/0/000")).unwrap();
    let (code, v, _) = auditor_json(&[
        "consistency",
        "--log",
        m.to_str().unwrap(),
        "--log-key",
        &vkey,
        "--dangerous-no-witnesses",
        "--state-dir",
        state.to_str().unwrap(),
        "--old",
        "100",
    ]);
    assert_eq!(code, 2, "{v}");

    assert_eq!(before, snapshot(), "state changed by a failed run");

    // Usage errors → 64; help → 0.
    assert_eq!(auditor(&["checkpoint"]).status.code(), Some(64));
    assert_eq!(
        auditor(&[
            "checkpoint",
            "--log",
            good,
            "--log-key",
            &vkey,
            "--state-dir",
            state.to_str().unwrap()
        ])
        .status
        .code(),
        Some(64)
    );
    assert_eq!(
        auditor(&[
            "checkpoint",
            "--log",
            good,
            "--log-key",
            "nonsense",
            "--dangerous-no-witnesses"
        ])
        .status
        .code(),
        Some(64)
    );
    let help = auditor(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("64 usage"));
    drop(server);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &p);
        } else {
            std::fs::copy(e.path(), p).unwrap();
        }
    }
}

#[test]
fn publish_signs_submits_and_checks_inclusion() {
    let Some(bin) = need_log_server("publish_signs_submits_and_checks_inclusion") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = LogSetup::new(dir.path(), "log.publish.test");
    let op_key = dir.path().join("operator.key");
    std::fs::write(&op_key, format!("{}\n", log.operator.to_private_string())).unwrap();
    let server = log.start(&bin, &dir.path().join("data"), &[], None);
    let firmware = dir.path().join("tdvf.fd");
    std::fs::write(&firmware, b"not really a TDVF").unwrap();
    let config = dir.path().join("keyconfig.bin");
    std::fs::write(&config, [0x01, 0x00, 0x20, 0xaa, 0xbb]).unwrap();
    let m = "ab".repeat(240);
    let vkey = log.vkey();
    let k = op_key.to_str().unwrap();
    let common: Vec<&str> = vec![
        "--key",
        k,
        "--log",
        &server.url,
        "--log-key",
        &vkey,
        "--wait",
        "20",
    ];

    let mut release = vec!["publish", "release"];
    release.extend(&common);
    let fw = firmware.to_str().unwrap();
    let model = "33".repeat(32);
    let commit = "44".repeat(20);
    // An absolute not-after: "+1d" twice, a second apart, would be two statements.
    let not_after = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400)
        .to_string();
    release.extend([
        "--platform",
        "tdx",
        "--measurement",
        &m,
        "--ovmf",
        fw,
        "--version",
        "3.1.4",
        "--source",
        "https://example.com/lucent",
        "--commit",
        &commit,
        "--model",
        &model,
        "--not-after",
        &not_after,
    ]);
    let (code, v, err) = auditor_json(&release);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["inclusion_verified"], true, "{v}");
    let index = v["index"].as_u64().unwrap();
    // The same statement again: the log says where it already is.
    let (code, v, err) = auditor_json(&release);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(
        (v["already_logged"].as_bool(), v["index"].as_u64()),
        (Some(true), Some(index))
    );

    let mut kc = vec!["publish", "keyconfig"];
    kc.extend(&common);
    let cfg = config.to_str().unwrap();
    kc.extend([
        "--key-id",
        "7",
        "--config",
        cfg,
        "--not-before",
        "1700000000",
        "--not-after",
        "1800000000",
    ]);
    let (code, v, err) = auditor_json(&kc);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["inclusion_verified"], true);

    // The release is found by measurement; then revoked, and inclusion says so (exit 1).
    // (SEV-SNP: its measurement is computed from OVMF; the log's lookup endpoint refuses
    // TDX's 240-byte measurements, see the report.)
    let ovmf = std::path::Path::new("/usr/share/ovmf/OVMF.fd");
    if ovmf.is_file() {
        let mut snp = vec!["publish", "release"];
        snp.extend(&common);
        snp.extend([
            "--ovmf",
            ovmf.to_str().unwrap(),
            "--vcpus",
            "2",
            "--version",
            "3.1.5",
            "--source",
            "https://example.com/lucent",
            "--commit",
            &commit,
            "--model",
            &model,
            "--not-after",
            "+1d",
        ]);
        let (code, v, err) = auditor_json(&snp);
        assert_eq!(code, 0, "{v} {err}");
        let sig: serde_json::Value = {
            let idx = v["index"].as_u64().unwrap();
            let (_, body) = get(&format!("{}/v1/entries/{idx}", server.url));
            serde_json::from_slice(&body).unwrap()
        };
        use base64::Engine as _;
        let entry = base64::engine::general_purpose::STANDARD
            .decode(sig["entry"].as_str().unwrap())
            .unwrap();
        let Statement::Release(r) = lucent_verifier::statement::parse_unverified(&entry).unwrap()
        else {
            panic!("not a release")
        };
        let snp_m = r.measurement.to_hex();
        let inc = |m: &str| {
            auditor_json(&[
                "inclusion",
                "--log",
                &server.url,
                "--log-key",
                &vkey,
                "--dangerous-no-witnesses",
                "--state-dir",
                dir.path().join("state").to_str().unwrap(),
                "--measurement",
                m,
                "--operator-key",
                &log.operator_vkey(),
            ])
        };
        let (code, v, err) = inc(&snp_m);
        assert_eq!(code, 0, "{v} {err}");
        let mut rv = vec!["publish", "revoke"];
        rv.extend(&common);
        rv.extend(["--measurement", &snp_m, "--reason", "test: key compromise"]);
        let (code, v, err) = auditor_json(&rv);
        assert_eq!(code, 0, "{v} {err}");
        let (code, v, _) = inc(&snp_m);
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["revoked"], true);
    } else {
        println!("SKIPPED: publish/revoke by measurement: no /usr/share/ovmf/OVMF.fd (apt-get install ovmf)");
    }

    // A statement signed by a key the log does not allow is refused by the log: exit 1.
    let stranger = dir.path().join("stranger.key");
    assert!(keygen_operator("stranger.example", &stranger)
        .status
        .success());
    let mut bad = release.clone();
    bad[3] = stranger.to_str().unwrap();
    let (code, v, _) = auditor_json(&bad);
    assert_eq!(
        (code, &v["outcome"]),
        (1, &serde_json::json!("refused")),
        "{v}"
    );
    // keygen never overwrites a key.
    let out = keygen_operator("stranger.example", &stranger);
    assert_eq!(out.status.code(), Some(2));
}
