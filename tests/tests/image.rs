//! The CVM image end to end: built by `scripts/build-image.sh` in a clean clone, released from
//! its manifest into a real log, rebuilt by an auditor (`lucent-auditor verify-release`) in a
//! second clone in another directory, which must give the same bytes and say "match" for
//! every artifact; a release naming a commit with one changed byte of the runtime's source is
//! caught at its first differing artifact; and the image boots under QEMU (TCG), where the
//! runtime comes up as PID 1, finds no attester, says so, and powers the machine off.
//!
//! Needs git, `qemu-system-x86_64` and Debian's `ovmf` (the QEMU boot, see below), and the
//! pinned kernel and AmdSev firmware (`scripts/fetch-image-inputs.sh`); `scripts/test.sh`
//! installs and fetches them. The operator's and the auditor's builds share nothing compiled:
//! each has its own cargo target folder (`operator` and `auditor` under `target/image-test`,
//! or under `LUCENT_IMAGE_TARGET_DIR`), so each compiles every dependency (a cold release
//! build takes about a quarter of an hour on two cores).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lucent_auditor::image::Manifest;
use lucent_tests::net::{Bins, Devnet, DevnetOptions, RuntimeSettings};
use lucent_verifier::statement::{Measurement, Platform, Release, Statement};

fn bins() -> Bins {
    lucent_tests::test_bins!()
}

/// The cargo target folder of `who`'s build (the operator's, the auditor's): a folder of
/// its own under `LUCENT_IMAGE_TARGET_DIR`, else under `target/image-test`.
fn image_target(who: &str) -> PathBuf {
    std::env::var_os("LUCENT_IMAGE_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/image-test"))
        .join(who)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The QEMU boot uses Debian's generic OVMF: the AmdSev build in the image verifies kernel,
/// initrd and command line against the SEV hashes table, which only an SEV-SNP launch fills,
/// so outside one it refuses to boot them (it says "No bootable option was found").
const BOOT_OVMF: &str = "/usr/share/ovmf/OVMF.fd";

fn missing() -> Option<String> {
    for (tool, arg) in [("git", "--version"), ("qemu-system-x86_64", "--version")] {
        if Command::new(tool).arg(arg).output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    if !Path::new(BOOT_OVMF).is_file() {
        return Some(format!("no {BOOT_OVMF} (Debian package ovmf)"));
    }
    None
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Lucent test",
            "-c",
            "user.email=test@lucent.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// `scripts/build-image.sh` of `clone`, with the operator's target folder and the test's
/// auditor.
fn build_image(clone: &Path, config: &Path, out: &Path) -> Manifest {
    let started = Instant::now();
    let o = Command::new("bash")
        .arg(clone.join("scripts/build-image.sh"))
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .env("LUCENT_IMAGE_TARGET_DIR", image_target("operator"))
        .env("LUCENT_AUDITOR", bins().auditor)
        .output()
        .unwrap();
    assert!(o.status.success(), "build-image.sh: {}", text(&o));
    println!(
        "built the image of {} in {:.0} s",
        clone.display(),
        started.elapsed().as_secs_f64()
    );
    Manifest::read_checked(&out.join("manifest.json"))
        .unwrap()
        .0
}

/// `lucent-auditor --json ARGS`; its rebuilds use the auditor's own target folder.
fn auditor_json(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let o = Command::new(bins().auditor)
        .arg("--json")
        .args(args)
        .env("LUCENT_IMAGE_TARGET_DIR", image_target("auditor"))
        .env("LUCENT_AUDITOR", bins().auditor)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code(), v, text(&o))
}

#[test]
fn image_is_reproducible_verifiable_and_boots() {
    if let Some(why) = missing() {
        println!("SKIPPED: image_is_reproducible_verifiable_and_boots: {why}");
        return;
    }
    let net = Devnet::start(bins(), DevnetOptions::default()).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("lucent-image-")
        .tempdir()
        .unwrap();
    let tmp = tmp.path();

    // A production configuration (the SEV-SNP guest device, no simulated TEE) for this log.
    let config_text = net
        .runtime_config(&RuntimeSettings {
            label: "image".into(),
            ..RuntimeSettings::default()
        })
        .replace(
            "attester = \"simulated\"\ndangerous_simulated_tee = true\n",
            "attester = \"sev-guest\"\n",
        );
    assert!(!config_text.contains("simulated"), "{config_text}");
    let config = tmp.join("runtime.toml");
    std::fs::write(&config, &config_text).unwrap();

    // 1. The operator's build, in a clean clone.
    let clone_a = tmp.join("operator/lucent");
    std::fs::create_dir_all(clone_a.parent().unwrap()).unwrap();
    git(
        &repo(),
        &[
            "clone",
            "--quiet",
            "--no-local",
            repo().to_str().unwrap(),
            clone_a.to_str().unwrap(),
        ],
    );
    let image_a = tmp.join("operator/image");
    let a = build_image(&clone_a, &config, &image_a);
    assert_eq!(a.source.commit, git(&clone_a, &["rev-parse", "HEAD"]));
    assert!(!a.source.dirty);
    assert!(a.source.features.is_empty());

    // 2. Released from its manifest: every digest and the measurement come from the image.
    let key = tmp.join("operator.key");
    std::fs::write(&key, format!("{}\n", net.operator.to_private_string())).unwrap();
    let witnesses = net.witness_keys().join(",");
    let operator = net.operator.verifier_key().to_string();
    let log_key = net.log_key();
    let model = hex::encode(net.model_digest);
    let manifest_a = image_a.join("manifest.json");
    let (code, v, out) = auditor_json(&[
        "publish",
        "release",
        "--key",
        key.to_str().unwrap(),
        "--log",
        &net.log_url,
        "--log-key",
        &log_key,
        "--wait",
        "30",
        "--image",
        manifest_a.to_str().unwrap(),
        "--version",
        "1.0.0",
        "--model",
        &model,
        "--not-after",
        "+1d",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let index = v["index"].as_u64().expect("index").to_string();

    // 3. The auditor's rebuild, from its own clone in another directory: every artifact
    //    matches, and the bytes are the operator's.
    let state = tmp.join("auditor/state");
    let trust = [
        "--state-dir",
        state.to_str().unwrap(),
        "--log",
        &net.log_url,
        "--log-key",
        &log_key,
        "--witness-key",
        &witnesses,
        "--operator-key",
        &operator,
    ];
    let verify = |index: &str, work: &Path| {
        let mut args = vec!["verify-release", "--index", index];
        args.extend_from_slice(&trust);
        args.extend_from_slice(&[
            "--checkout",
            clone_a.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--work-dir",
            work.to_str().unwrap(),
        ]);
        auditor_json(&args)
    };
    let work_b = tmp.join("auditor/rebuild");
    let (code, v, out) = verify(&index, &work_b);
    assert_eq!(code, Some(0), "verify-release of the logged image: {out}");
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 5, "{v}");
    for c in checks {
        assert_eq!(c["match"], true, "{c}");
    }
    let image_b = work_b.join("image");
    for f in ["lucent-cvm-runtime", "initrd.img", "manifest.json"] {
        let (x, y) = (
            std::fs::read(image_a.join(f)).unwrap(),
            std::fs::read(image_b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between the two builds");
    }
    let b = Manifest::read_checked(&image_b.join("manifest.json"))
        .unwrap()
        .0;
    println!(
        "build A ({}, target {}): runtime {} initrd {} measurement {}",
        clone_a.display(),
        image_target("operator").display(),
        a.runtime.sha256,
        a.initrd.sha256,
        a.measurement
    );
    println!(
        "build B ({}, target {}): runtime {} initrd {} measurement {}",
        work_b.join("src").display(),
        image_target("auditor").display(),
        b.runtime.sha256,
        b.initrd.sha256,
        b.measurement
    );

    // 4. A release naming another commit — one changed byte in the runtime's source — is
    //    caught at the first artifact that differs.
    let cli = clone_a.join("cvm-runtime/src/cli.rs");
    let source = std::fs::read_to_string(&cli).unwrap();
    assert!(source.contains("started{}"));
    std::fs::write(&cli, source.replacen("started{}", "Started{}", 1)).unwrap();
    git(&clone_a, &["commit", "--quiet", "-am", "one changed byte"]);
    let other_commit = git(&clone_a, &["rev-parse", "HEAD"]);
    let lying = Release {
        measurement: Measurement::new(Platform::SevSnp, &hex::decode(&a.measurement).unwrap())
            .unwrap(),
        version: "1.0.1".into(),
        source: a.source.repository.clone(),
        commit: hex::decode(&other_commit).unwrap(),
        firmware: hex32(&a.firmware.sha256),
        kernel: hex32(&a.kernel.sha256),
        initrd: hex32(&a.initrd.sha256),
        cmdline: hex32(&a.cmdline_sha256),
        vcpus: a.launch.vcpus,
        vcpu_type: a.launch.vcpu_type.clone(),
        guest_features: a.launch.guest_features,
        vmm_type: a.launch.vmm_type.clone(),
        model: net.model_digest,
        min_tcb: vec![0; 8],
        not_after: lucent_tests::net::now_unix() + 86_400,
    };
    let other_index = net.publish(&Statement::Release(lying)).unwrap().to_string();
    let work_c = tmp.join("auditor/other");
    let (code, v, out) = verify(&other_index, &work_c);
    assert_eq!(
        code,
        Some(1),
        "verify-release of a release naming another commit: {out}"
    );
    assert_eq!(v["first_difference"], "initrd", "{v}");
    assert_ne!(v["manifest"]["measurement"], a.measurement.as_str(), "{v}");
    assert!(out.contains("first in initrd"), "{out}");

    // 5. The image boots: the runtime is PID 1, loads the image's kernel modules (configfs
    //    loads; sev-guest finds no SEV-SNP platform), reads the image's configuration, finds
    //    no attester, says so and powers off.
    let started = Instant::now();
    let o = Command::new("timeout")
        .args(["--kill-after=10", "600", "qemu-system-x86_64"])
        .args(["-machine", "q35", "-m", "1024", "-smp", "1"])
        .args(["-nographic", "-no-reboot", "-bios", BOOT_OVMF])
        .arg("-kernel")
        .arg(image_a.join("vmlinuz"))
        .arg("-initrd")
        .arg(image_a.join("initrd.img"))
        .args(["-append", &a.cmdline])
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&o.stdout).into_owned();
    let tail: String = console
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    println!(
        "QEMU boot: {:.0} s, exit {}; console ends:\n{tail}",
        started.elapsed().as_secs_f64(),
        o.status
    );
    assert!(o.status.success(), "QEMU: {}", text(&o));
    for want in [
        "lucent-cvm-runtime 0.1.0 started as init (PID 1)",
        "loaded kernel module /lib/modules/configfs.ko",
        "kernel module /lib/modules/sev-guest.ko: No such device",
        "no attester: the SEV-SNP guest device is not available at /dev/sev-guest",
        "stopped; powering off",
        "reboot: Power down",
    ] {
        assert!(
            console.contains(want),
            "{want:?} not on the console:\n{tail}"
        );
    }
    assert!(!console.contains("Kernel panic"), "{tail}");
    assert!(started.elapsed() < Duration::from_secs(600));
}

fn hex32(h: &str) -> [u8; 32] {
    hex::decode(h).unwrap().try_into().unwrap()
}

/// On the simulated platform the CVM runs from an image, and the measurement is the launch
/// measurement of that image: the logged image opens; a configuration one byte longer
/// measures differently; the same configuration with a runtime binary one byte longer
/// measures differently and stays closed.
#[test]
fn a_cvm_whose_binary_is_not_the_logged_one_stays_closed() {
    let inputs = lucent_tests::net::image_inputs().unwrap();
    let net = Devnet::start(bins(), DevnetOptions::default()).unwrap();
    let config = net.runtime_config(&RuntimeSettings {
        label: "image".into(),
        ..RuntimeSettings::default()
    });
    let (logged_dir, logged) = net.image_of(&config).unwrap();
    net.publish_release_for(&config).unwrap();

    // One byte more of configuration: another initrd, another measurement.
    let (_, longer) = net.image_of(&format!("{config}\n")).unwrap();
    assert_eq!(longer.runtime.sha256, logged.runtime.sha256);
    assert_ne!(longer.config.sha256, logged.config.sha256);
    assert_ne!(longer.initrd.sha256, logged.initrd.sha256);
    assert_ne!(longer.measurement, logged.measurement);

    let runtime = bins().runtime;
    let mut bytes = std::fs::read(&runtime).unwrap();
    bytes.push(0);
    let other_bin = logged_dir.with_file_name("runtime-one-byte-longer");
    std::fs::write(&other_bin, &bytes).unwrap();
    let (other_dir, other) = net
        .build_image(
            &other_bin,
            &inputs,
            &config,
            lucent_tests::net::checkout_provenance().unwrap(),
            "other",
        )
        .unwrap();
    assert_eq!(other.config.sha256, logged.config.sha256);
    assert_ne!(other.runtime.sha256, logged.runtime.sha256);
    assert_ne!(other.initrd.sha256, logged.initrd.sha256);
    assert_ne!(other.measurement, logged.measurement);

    let mut rt = net.launch_image(&other_dir, "other").unwrap();
    assert_eq!(rt.measurement.to_hex(), other.measurement);
    let status = net.wait_settled(&mut rt).unwrap();
    assert_eq!(status["state"], "closed", "{status}");
    assert_eq!(status["code"], "not_logged", "{status}");
    assert_eq!(
        status["measurement"],
        other.measurement.as_str(),
        "{status}"
    );

    let mut rt = net.launch_image(&logged_dir, "logged").unwrap();
    assert_eq!(rt.measurement.to_hex(), logged.measurement);
    let status = net.wait_settled(&mut rt).unwrap();
    assert_eq!(status["state"], "open", "{status}");
    assert_eq!(
        status["measurement"],
        logged.measurement.as_str(),
        "{status}"
    );
}
