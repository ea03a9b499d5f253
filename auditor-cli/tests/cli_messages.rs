//! What `lucent-auditor` says when something is off, over real processes: the real
//! `lucent-log-server` with a real witness (`lucent-auditor witness serve`), and the real CLI.
//! Each test asserts the exact message or JSON field a user acts on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lucent_verifier::merkle::LeafHash;
use lucent_verifier::note::NoteSigner;
use lucent_verifier::statement::{Measurement, Platform, Revoke, Statement};

/// A running log with one witness, and the trust flags that check it.
struct Fixture {
    dir: tempfile::TempDir,
    log: LogSetup,
    wkey: String,
    server: Proc,
    _witness: Proc,
}

impl Fixture {
    fn start(test: &str, name: &str) -> Option<Fixture> {
        let bin = need_log_server(test)?;
        let dir = tempfile::tempdir().unwrap();
        let log = LogSetup::new(dir.path(), name);
        let (witness, wkey) = start_witness_for(dir.path(), &log, &format!("witness.{name}"));
        let server = log.start(
            &bin,
            &dir.path().join("data"),
            &[(witness.url.clone(), wkey.clone())],
            None,
        );
        Some(Fixture {
            dir,
            log,
            wkey,
            server,
            _witness: witness,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `<cmd> --log URL --log-key K --witness-key W --state-dir S`.
    fn args(&self, cmd: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--log".into(),
            self.server.url.clone(),
            "--log-key".into(),
            self.log.vkey(),
            "--witness-key".into(),
            self.wkey.clone(),
            "--state-dir".into(),
            self.path("state").display().to_string(),
        ]);
        a
    }

    /// Submits `st` signed by the log's operator; waits until a cosigned checkpoint
    /// covers it; returns the note and its index.
    fn log_statement(&self, st: &Statement) -> (Vec<u8>, u64) {
        let note = st.sign(&self.log.operator).unwrap();
        let (status, body) = post(&format!("{}/v1/statements", self.server.url), note.clone());
        assert!(status == 200 || status == 202, "submit: {status}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let index = v["index"].as_u64().unwrap();
        wait_for_checkpoint(&self.server.url, &self.log.log_key(), index + 1, 1);
        (note, index)
    }

    /// `publish revoke` of measurement `m` (reason "test") signed with `key`, to this log.
    fn publish_revoke(&self, key: &Path, m: &str, extra: &[&str]) -> Vec<String> {
        ["publish", "revoke", "--key", key.to_str().unwrap()]
            .iter()
            .chain(&[
                "--log",
                &self.server.url,
                "--measurement",
                m,
                "--reason",
                "test",
            ])
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    }

    /// The operator's private key, in a file for `publish --key`.
    fn operator_key_file(&self) -> PathBuf {
        let file = self.path("operator.key");
        std::fs::write(
            &file,
            format!("{}\n", self.log.operator.to_private_string()),
        )
        .unwrap();
        file
    }
}

fn run(args: &[String]) -> (i32, String, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = auditor(&refs);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_json(args: &[String]) -> (i32, serde_json::Value, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    auditor_json(&refs)
}

fn revoke(tag: u8, reason: &str) -> Statement {
    Statement::Revoke(Revoke {
        measurement: Measurement::new(Platform::SevSnp, &[tag; 48]).unwrap(),
        reason: reason.into(),
    })
}

#[test]
fn a_log_address_without_a_scheme_asks_for_a_url() {
    let Some(f) = Fixture::start("a_log_address_without_a_scheme_asks_for_a_url", "log.a") else {
        return;
    };
    let mut args = f.args(&["checkpoint"]);
    args[2] = f.server.addr.clone();
    let (code, _, err) = run(&args);
    assert_eq!(code, 64, "{err}");
    let want = format!(
        "lucent-auditor: usage: --log \"{a}\" is neither an http(s):// URL nor a directory; \
         for a log server give its URL, for example --log http://{a}\n",
        a = f.server.addr
    );
    assert_eq!(err, want);
}

#[test]
fn a_wrong_index_hint_still_finds_the_leaf() {
    let Some(f) = Fixture::start("a_wrong_index_hint_still_finds_the_leaf", "log.b") else {
        return;
    };
    f.log_statement(&revoke(1, "first"));
    let (note, index) = f.log_statement(&revoke(2, "second"));
    f.log_statement(&revoke(3, "third"));
    let file = f.path("second.note");
    std::fs::write(&file, &note).unwrap();
    let wrong = index + 1;
    let mut args = f.args(&["inclusion", "--statement", file.to_str().unwrap()]);
    args.extend(["--index".into(), wrong.to_string()]);
    let (code, v, err) = run_json(&args);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["index"], index);
    assert_eq!(v["wrong_index_hint"], wrong);
    let (code, out, _) = run(&args);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "  note: the --index hint {wrong} was wrong; the leaf is at index {index}\n"
        )),
        "{out}"
    );
    // A leaf the log does not hold is still refused, naming the hint.
    let other = revoke(9, "never logged").sign(&f.log.operator).unwrap();
    std::fs::write(&file, &other).unwrap();
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains(&format!("not at index {wrong} (the --index hint), and")),
        "{err}"
    );
}

#[test]
fn a_measurement_with_only_revocations_shows_them() {
    let Some(f) = Fixture::start("a_measurement_with_only_revocations_shows_them", "log.c") else {
        return;
    };
    let st = revoke(7, "key leaked");
    let (note, index) = f.log_statement(&st);
    let m = hex::encode([7u8; 48]);
    let mut args = f.args(&["inclusion", "--measurement", &m]);
    args.extend(["--operator-key".into(), f.log.operator_vkey()]);
    let (code, v, err) = run_json(&args);
    assert_eq!(code, 1, "{v} {err}");
    assert_eq!(v["released"], false);
    assert_eq!(v["revoked"], true);
    assert_eq!(v["entries"][0]["kind"], "revoke");
    assert_eq!(v["entries"][0]["index"], index);
    assert_eq!(
        v["entries"][0]["leaf_hash"],
        LeafHash::of_entry(&note).to_string()
    );
    let (code, out, err) = run(&args);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "measurement {m}: no release, only revocations under tree size"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("  revoke at index {index}: ")),
        "{out}"
    );
    assert_eq!(
        err,
        format!(
            "lucent-auditor: verification failed: no release for measurement {m} in the tree \
             of size {}; its 1 revocation(s) are included: index {index}: key leaked\n",
            v["checkpoint_size"]
        )
    );
}

#[test]
fn a_publish_verified_with_a_wrong_log_key_still_names_its_index() {
    let Some(f) = Fixture::start(
        "a_publish_verified_with_a_wrong_log_key_still_names_its_index",
        "log.d",
    ) else {
        return;
    };
    let key = f.operator_key_file();
    let wrong = NoteSigner::generate(&mut rand_core::OsRng, "log.d").unwrap();
    let m = hex::encode([4u8; 48]);
    let args = f.publish_revoke(
        &key,
        &m,
        &["--log-key", wrong.verifier_key().as_str(), "--wait", "20"],
    );
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{out} {err}");
    let index: u64 = out
        .strip_prefix("submitted: index ")
        .and_then(|r| r.split(',').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("no index in {out:?}"));
    assert!(
        err.starts_with(&format!(
            "lucent-auditor: verification failed: the statement is logged at index {index}, \
             but the log's proof of it did not verify: checkpoint rejected: the checkpoint is \
             not signed by the log key given"
        )),
        "{err}"
    );
    // It is logged, there.
    let (status, body) = get(&format!("{}/v1/entries/{index}", f.server.url));
    assert_eq!(status, 200);
    let entry: lucent_verifier::log_api::Entry = serde_json::from_slice(&body).unwrap();
    let logged = lucent_verifier::statement::parse_unverified(&entry.entry).unwrap();
    assert_eq!(logged, revoke(4, "test"));
}

#[test]
fn a_refused_publish_names_the_logs_code_and_message() {
    let Some(f) = Fixture::start("a_refused_publish_names_the_logs_code_and_message", "log.e")
    else {
        return;
    };
    let stranger = f.path("stranger.key");
    assert!(keygen_operator("stranger.example", &stranger)
        .status
        .success());
    let m = hex::encode([5u8; 48]);
    let args = f.publish_revoke(&stranger, &m, &[]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err,
        "lucent-auditor: refused: the log refused it: HTTP 403 unknown_signer: statement is \
         not signed by an allowed operator key\n"
    );
    let (code, v, _) = run_json(&args);
    assert_eq!(code, 1);
    assert_eq!(v["outcome"], "refused");
    assert_eq!(v["status"], 403);
    assert_eq!(v["code"], "unknown_signer");
    assert_eq!(
        v["message"],
        "statement is not signed by an allowed operator key"
    );
}

#[test]
fn a_wrong_log_key_names_the_origin_and_the_key() {
    let Some(f) = Fixture::start("a_wrong_log_key_names_the_origin_and_the_key", "log.f") else {
        return;
    };
    f.log_statement(&revoke(1, "one"));
    let other = NoteSigner::generate(&mut rand_core::OsRng, "other.example").unwrap();
    let mut args = f.args(&["checkpoint"]);
    args[4] = other.verifier_key().to_string();
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.starts_with(
            "lucent-auditor: verification failed: checkpoint rejected: the checkpoint is not \
             signed by the log key given: its origin is \"log.f\" but the key is named \
             \"other.example\" (is the log key that of this log?); it is signed by log.f+"
        ),
        "{err}"
    );
}

#[test]
fn checkpoint_json_on_an_unchanged_log_gives_the_previous_size() {
    let Some(f) = Fixture::start(
        "checkpoint_json_on_an_unchanged_log_gives_the_previous_size",
        "log.g",
    ) else {
        return;
    };
    f.log_statement(&revoke(1, "one"));
    let (code, first, err) = run_json(&f.args(&["checkpoint"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(first["update"], "first");
    assert_eq!(first["previous_size"], serde_json::Value::Null);
    let (code, again, err) = run_json(&f.args(&["checkpoint"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(again["update"], "unchanged");
    assert_eq!(again["previous_size"], first["size"]);
}

#[test]
fn consistency_checkpoints_in_the_wrong_order_are_refused() {
    let Some(f) = Fixture::start(
        "consistency_checkpoints_in_the_wrong_order_are_refused",
        "log.h",
    ) else {
        return;
    };
    f.log_statement(&revoke(1, "one"));
    let (_, old) = get(&format!("{}/checkpoint", f.server.url));
    f.log_statement(&revoke(2, "two"));
    let (_, new) = get(&format!("{}/checkpoint", f.server.url));
    let (old_file, new_file) = (f.path("old.checkpoint"), f.path("new.checkpoint"));
    std::fs::write(&old_file, &old).unwrap();
    std::fs::write(&new_file, &new).unwrap();
    let size = |note: &[u8]| {
        lucent_verifier::checkpoint::verify_checkpoint(note, &f.log.log_key())
            .unwrap()
            .checkpoint
            .size
            .0
    };
    let (old_size, new_size) = (size(&old), size(&new));
    assert!(old_size < new_size);

    let mut args = f.args(&["consistency", "--checkpoints"]);
    args.insert(2, new_file.display().to_string());
    args.insert(3, old_file.display().to_string());
    let (code, out, err) = run(&args);
    assert_eq!(code, 64, "{out}");
    assert_eq!(
        err,
        format!(
            "lucent-auditor: usage: --checkpoints OLD NEW: the first checkpoint (size \
             {new_size}) is newer than the second (size {old_size}); give the older one first\n"
        )
    );
    args.swap(2, 3);
    let (code, v, err) = run_json(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (v["old"].as_u64(), v["new"].as_u64()),
        (Some(old_size), Some(new_size))
    );
}

#[test]
fn a_log_checked_without_witnesses_is_told_why_and_how() {
    let Some(f) = Fixture::start(
        "a_log_checked_without_witnesses_is_told_why_and_how",
        "log.i",
    ) else {
        return;
    };
    let mut args = f.args(&["checkpoint"]);
    // Drop `--witness-key W`.
    args.drain(5..7);
    let (code, out, err) = run(&args);
    assert_eq!(code, 64, "{out}");
    for want in [
        "a split view",
        "--witness-key KEY",
        "--witness-quorum N",
        "--dangerous-no-witnesses",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
}

/// Starts the log server with its standard error in a file (not a terminal) and extra
/// arguments; returns the file's text after the server has started and stopped.
fn log_server_stderr(bin: &Path, dir: &Path, extra: &[&str]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let log = LogSetup::new(dir, "log.colour");
    let stderr_file = dir.join("stderr.log");
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--log-key-file"])
        .arg(&log.key_file)
        .args(["--operator-key", &log.operator_vkey()])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("LUCENT_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&stderr_file)
        .unwrap()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no log lines");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&stderr_file).unwrap()
}

#[test]
fn services_write_plain_or_json_log_lines_to_a_file() {
    let Some(bin) = need_log_server("services_write_plain_or_json_log_lines_to_a_file") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = log_server_stderr(&bin, &dir.path().join("text"), &[]);
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a file: {text:?}");
    assert!(text.contains(" INFO "), "{text}");

    let json = log_server_stderr(&bin, &dir.path().join("json"), &["--log-format", "json"]);
    let mut events = 0;
    for line in json.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
        events += 1;
    }
    assert!(events >= 2, "{json}");
}

/// Every command and subcommand, as a path of names.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["checkpoint"],
    &["inclusion"],
    &["consistency"],
    &["monitor"],
    &["witness"],
    &["witness", "serve"],
    &["measure"],
    &["keygen"],
    &["publish"],
    &["publish", "release"],
    &["publish", "keyconfig"],
    &["publish", "revoke"],
    &["verify-bundle"],
    &["completions"],
    &["man"],
];

#[test]
fn every_help_ends_with_an_example() {
    for path in COMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let out = auditor(&args);
        assert!(out.status.success(), "{path:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        let (_, example) = help
            .rsplit_once("Example:\n  lucent-auditor ")
            .unwrap_or_else(|| panic!("{path:?} --help has no example:\n{help}"));
        // The example runs the command it documents, and is the end of the help.
        let shown = path.join(" ");
        assert!(example.starts_with(&shown), "{path:?}: {example}");
        assert!(
            !example.contains("\n\n"),
            "{path:?}: text after the example"
        );
    }
}

#[test]
fn completions_and_man_pages_are_generated() {
    for (shell, marker) in [
        ("bash", "complete -F _lucent__auditor"),
        ("zsh", "#compdef lucent-auditor"),
    ] {
        let out = auditor(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for cmd in ["checkpoint", "verify-bundle", "--witness-key"] {
            assert!(script.contains(cmd), "{shell} completion lacks {cmd}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man1");
    let (code, v, err) = auditor_json(&["man", "--out-dir", man.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "lucent-auditor.1",
        "lucent-auditor-checkpoint.1",
        "lucent-auditor-publish-release.1",
        "lucent-auditor-witness-serve.1",
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
        assert!(v["pages"].as_array().unwrap().iter().any(|p| p == page));
    }
}

#[test]
fn monitor_without_a_terminal_prints_progress_lines() {
    let Some(f) = Fixture::start("monitor_without_a_terminal_prints_progress_lines", "log.j")
    else {
        return;
    };
    f.log_statement(&revoke(1, "one"));
    let (_, index) = f.log_statement(&revoke(2, "two"));
    let (code, out, err) = run(&f.args(&["monitor"]));
    assert_eq!(code, 0, "{out} {err}");
    let size = index + 1;
    assert!(
        err.starts_with(&format!(
            "monitor: reading entries 0..{size} ({size} new)\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("monitor: read {size} entries in ")),
        "{err}"
    );
    let (code, _, err) = run(&f.args(&["monitor", "--no-progress"]));
    assert_eq!((code, err.as_str()), (0, ""));
}
