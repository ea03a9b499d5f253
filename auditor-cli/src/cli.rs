//! The `lucent-auditor` command: parses the command line, runs one command of this library,
//! prints its report and maps the result to an exit code: 0 ok, 1 verification failed,
//! 2 could not check, 64 usage. `main.rs` only calls [`main`], so that the end-to-end tests
//! can build the same command into a binary of their own without compiling it twice.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::audit::{self, Auditor, ConsistencyArgs, Report, Target, Trust};
use crate::error::Outcome;
use crate::fetch::LogClient;
use crate::image;
use crate::measure::{self, MeasureInputs};
use crate::monitor::{self, MonitorOptions};
use crate::publish::{self, ReleaseInput};
use crate::state::StateDir;
use crate::witness::{self, Witness};
use crate::{AuditError, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::merkle::{Hash, LeafHash};
use lucent_verifier::note::NoteVerifierKey;
use lucent_verifier::trust::{TrustConfig, TrustSettings};

/// The `--help` ending of a command: one real invocation.
macro_rules! example {
    ($command:literal) => {
        concat!("Example:\n  ", $command)
    };
}

/// Lucent transparency-log auditor: verify, follow, witness, measure and publish.
#[derive(Parser, Debug)]
#[command(name = "lucent-auditor", version, after_help = concat!(
    "Exit codes: 0 ok; 1 verification failed (bad signature, witness quorum not met, split view, \
     rollback, bad proof, corrupted tile, root mismatch, unsigned statement, measurement \
     mismatch) or the log refused a statement; 2 could not check (log unreachable, HTTP error, \
     missing file, unreadable state); 64 usage.\n\n",
    example!(r#"lucent-auditor checkpoint --log https://log.example.net --log-key "$LOG_KEY" \
      --witness-key "$WITNESS_KEY""#)
))]
struct Cli {
    /// Print machine-readable JSON on standard output instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Fetch the checkpoint, verify signature and witness quorum, check consistency with
    /// the last seen one (state directory) and update it. A split view prints both
    /// checkpoints and the failed proof.
    #[command(after_help = example!(r#"lucent-auditor checkpoint --log https://log.example.net --log-key "$LOG_KEY" \
      --witness-key "$WITNESS_KEY""#))]
    Checkpoint(LogArgs),
    /// Prove a statement file, a leaf hash or a measurement is in the log.
    #[command(after_help = example!(r#"lucent-auditor inclusion --statement release.note --log https://log.example.net \
      --log-key "$LOG_KEY" --witness-key "$WITNESS_KEY" --operator-key "$OPERATOR_KEY""#))]
    Inclusion(InclusionArgs),
    /// Prove two tree sizes, or two checkpoint files, consistent.
    #[command(after_help = example!(r#"lucent-auditor consistency --checkpoints monday.checkpoint friday.checkpoint \
      --log https://log.example.net --log-key "$LOG_KEY" --witness-key "$WITNESS_KEY""#))]
    Consistency(ConsistencyCmd),
    /// Follow the log from the last position: recompute the root, check every statement,
    /// list new releases, key configs and revocations. Resumable.
    #[command(after_help = example!(r#"lucent-auditor monitor --log https://log.example.net --log-key "$LOG_KEY" \
      --witness-key "$WITNESS_KEY" --operator-key "$OPERATOR_KEY""#))]
    Monitor(MonitorArgs),
    /// A C2SP tlog-witness server.
    #[command(subcommand)]
    #[command(after_help = example!(r#"lucent-auditor witness serve --key witness.key --log-key "$LOG_KEY" \
      --state-dir /var/lib/lucent-witness --listen 0.0.0.0:8090"#))]
    Witness(WitnessCmd),
    /// Compute the expected SEV-SNP launch measurement; optionally check a release statement.
    #[command(after_help = example!(r#"lucent-auditor measure --ovmf OVMF.amdsev.fd --kernel vmlinuz --initrd initrd.img \
      --append "console=ttyS0" --vcpus 4 --vcpu-type EPYC-Milan --release release.note"#))]
    Measure(MeasureArgs),
    /// Build a CVM image (initrd, manifest and launch measurement) from a runtime binary, its
    /// configuration and the pinned kernel and firmware; `scripts/build-image.sh` builds the
    /// runtime reproducibly and calls this.
    #[command(subcommand)]
    #[command(after_help = example!(r#"lucent-auditor image build --runtime lucent-cvm-runtime --config runtime.toml \
      --inputs ~/.cache/lucent/image-inputs --out image/ --commit "$COMMIT""#))]
    Image(ImageCmd),
    /// Rebuild the image of a logged release from its source commit and compare it with the
    /// release, artifact by artifact.
    #[command(after_help = example!(r#"lucent-auditor verify-release --log https://log.example.net --log-key "$LOG_KEY" \
      --witness-key "$WITNESS_KEY" --operator-key "$OPERATOR_KEY" --measurement "$MEASUREMENT" \
      --checkout ~/src/lucent --config runtime.toml --work-dir rebuild/"#))]
    VerifyRelease(VerifyReleaseArgs),
    /// Make an operator (statement) or witness (cosignature/v1) key.
    #[command(after_help = example!(r#"lucent-auditor keygen --name operator.example.net --out operator.key"#))]
    Keygen(KeygenArgs),
    /// Build, sign and submit a statement.
    #[command(subcommand)]
    #[command(after_help = example!(r#"lucent-auditor publish revoke --key operator.key --log https://log.example.net \
      --measurement "$MEASUREMENT" --reason "firmware below the TCB floor""#))]
    Publish(PublishCmd),
    /// Check a CVM's attestation bundle offline and print each step's result.
    #[command(after_help = example!(r#"lucent-auditor verify-bundle --bundle bundle.json --log-key "$LOG_KEY" \
      --witness-key "$WITNESS_KEY" --operator-key "$OPERATOR_KEY""#))]
    VerifyBundle(VerifyBundleArgs),
    /// Print a completion script for a shell on standard output.
    #[command(after_help = example!(
        "lucent-auditor completions bash > ~/.local/share/bash-completion/completions/lucent-auditor"
    ))]
    Completions {
        /// The shell (bash, zsh, fish, elvish, powershell).
        shell: clap_complete::Shell,
    },
    /// Write man pages: lucent-auditor.1 and one per command.
    #[command(after_help = example!(r#"lucent-auditor man --out-dir ~/.local/share/man/man1"#))]
    Man {
        /// Where to write them (created if missing).
        #[arg(long)]
        out_dir: PathBuf,
    },
}

#[derive(Args, Debug)]
struct VerifyBundleArgs {
    /// The bundle (`lucent/bundle/v1` JSON).
    #[arg(long)]
    bundle: PathBuf,
    /// Log key, witnesses, operators, revocations.
    #[command(flatten)]
    trust: TrustConfig,
    /// Check consistency with (and then update) the last seen checkpoint here.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The log, to fetch the consistency proof from the last seen checkpoint.
    #[arg(long, requires = "state_dir")]
    log: Option<String>,
    /// The nonce the verifier sent (hex), bound in the report data.
    #[arg(long)]
    nonce: Option<String>,
    /// Verification time, Unix seconds (default: now).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Args, Debug, Clone)]
struct LogArgs {
    /// The log: an http(s) URL prefix or a directory with the tlog-tiles layout.
    #[arg(long, env = "LUCENT_LOG_URL")]
    log: String,
    /// Log key, witnesses, operators, revocations.
    #[command(flatten)]
    trust: TrustConfig,
    /// State directory (last seen checkpoints, monitor position).
    #[arg(long, env = "LUCENT_AUDITOR_STATE")]
    state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct InclusionArgs {
    #[command(flatten)]
    log: LogArgs,
    /// A statement note file (the exact log entry bytes).
    #[arg(long, group = "target")]
    statement: Option<PathBuf>,
    /// A leaf hash (hex).
    #[arg(long, group = "target")]
    leaf_hash: Option<String>,
    /// A release measurement (hex): proves every release and revocation for it.
    #[arg(long, group = "target")]
    measurement: Option<String>,
    /// The entry's index (otherwise asked from the log's API, as a hint only).
    #[arg(long)]
    index: Option<u64>,
}

#[derive(Args, Debug)]
struct ConsistencyCmd {
    #[command(flatten)]
    log: LogArgs,
    /// Older tree size.
    #[arg(long, conflicts_with = "checkpoints")]
    old: Option<u64>,
    /// Newer tree size (default: the latest checkpoint's).
    #[arg(long, requires = "old")]
    new: Option<u64>,
    /// Two checkpoint note files.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    checkpoints: Option<Vec<PathBuf>>,
}

#[derive(Args, Debug)]
struct MonitorArgs {
    #[command(flatten)]
    log: LogArgs,
    /// Entry bundles fetched at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Stop after about this many new entries (the next run resumes).
    #[arg(long)]
    max_entries: Option<u64>,
    /// No progress output (bar or lines) on standard error.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    /// Write the initrd, copies of every artifact and manifest.json into --out.
    #[command(after_help = example!(r#"lucent-auditor image build --runtime lucent-cvm-runtime --config runtime.toml \
      --inputs ~/.cache/lucent/image-inputs --out image/ --commit "$COMMIT""#))]
    Build(ImageBuildArgs),
}

#[derive(Args, Debug)]
struct ImageBuildArgs {
    /// The `lucent-cvm-runtime` binary (the initrd's /init).
    #[arg(long)]
    runtime: PathBuf,
    /// Its configuration (the initrd's /etc/lucent/runtime.toml; measured).
    #[arg(long)]
    config: PathBuf,
    /// The folder of `scripts/fetch-image-inputs.sh`: vmlinuz, OVMF.fd and inputs.json.
    #[arg(long)]
    inputs: PathBuf,
    /// Where to write the image (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Kernel command line.
    #[arg(long, default_value = image::DEFAULT_CMDLINE)]
    cmdline: String,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// vCPU type (EPYC, EPYC-v4, EPYC-Milan, EPYC-Genoa, …).
    #[arg(long, default_value = "EPYC-v4")]
    vcpu_type: String,
    /// Guest SEV features (decimal or 0x hex).
    #[arg(long, default_value = "0x1", value_parser = parse_u64)]
    guest_features: u64,
    /// VMM type: qemu or krun.
    #[arg(long, default_value = "qemu")]
    vmm_type: String,
    /// Source repository URL of the runtime.
    #[arg(long, default_value = "")]
    repository: String,
    /// Source commit of the runtime (hex).
    #[arg(long)]
    commit: String,
    /// `rustc --version` of the toolchain that built the runtime.
    #[arg(long, default_value = "")]
    toolchain: String,
    /// Target triple of the runtime.
    #[arg(long, default_value = "x86_64-unknown-linux-gnu")]
    target: String,
    /// Cargo features the runtime was built with (comma-separated).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// The checkout had uncommitted changes.
    #[arg(long)]
    dirty: bool,
}

#[derive(Args, Debug)]
struct VerifyReleaseArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The release's log index.
    #[arg(long, required_unless_present = "measurement")]
    index: Option<u64>,
    /// The release's measurement (hex): its newest release in the log.
    #[arg(long)]
    measurement: Option<String>,
    /// A git checkout holding the release's source commit.
    #[arg(long)]
    checkout: PathBuf,
    /// The measured configuration the operator published with the release.
    #[arg(long)]
    config: PathBuf,
    /// Cargo features the operator built the runtime with (the devnet's:
    /// dangerous-simulated-tee; production: none).
    #[arg(long)]
    features: Option<String>,
    /// Where to clone the commit (`src/`) and write the rebuilt image (`image/`); both are
    /// replaced, nothing else there is touched.
    #[arg(long)]
    work_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum WitnessCmd {
    /// Serve `POST /add-checkpoint`.
    #[command(after_help = example!(r#"lucent-auditor witness serve --key witness.key --log-key "$LOG_KEY" \
      --state-dir /var/lib/lucent-witness --listen 0.0.0.0:8090"#))]
    Serve(WitnessServeArgs),
}

#[derive(Args, Debug)]
struct WitnessServeArgs {
    /// Witness private key file (`lucent-auditor keygen --witness`).
    #[arg(long)]
    key: PathBuf,
    /// A log verifier key to witness (repeatable).
    #[arg(long = "log-key", required = true)]
    log_keys: Vec<String>,
    /// Where the latest cosigned checkpoint per log is kept.
    #[arg(long)]
    state_dir: PathBuf,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
}

#[derive(Args, Debug, Clone)]
struct ArtifactArgs {
    /// An image's manifest.json (`scripts/build-image.sh`): every artifact, the command line
    /// and the VM shape come from it, after each file beside it is checked against it and
    /// the measurement recomputed.
    #[arg(long)]
    image: Option<PathBuf>,
    /// OVMF firmware image.
    #[arg(long, required_unless_present = "image", conflicts_with = "image")]
    ovmf: Option<PathBuf>,
    /// Kernel image.
    #[arg(long, conflicts_with = "image")]
    kernel: Option<PathBuf>,
    /// Initrd.
    #[arg(long, conflicts_with = "image")]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, conflicts_with = "image")]
    append: Option<String>,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1, conflicts_with = "image")]
    vcpus: u32,
    /// vCPU type (EPYC, EPYC-v4, EPYC-Milan, EPYC-Genoa, …).
    #[arg(long, default_value = "EPYC-v4", conflicts_with = "image")]
    vcpu_type: String,
    /// Guest SEV features (decimal or 0x hex).
    #[arg(long, default_value = "0x1", value_parser = parse_u64, conflicts_with = "image")]
    guest_features: u64,
    /// VMM type: qemu, ec2 or krun.
    #[arg(long, default_value = "qemu", conflicts_with = "image")]
    vmm_type: String,
}

impl ArtifactArgs {
    /// The measurement inputs, and the image's checked manifest when `--image` names one.
    fn inputs(&self) -> Result<(MeasureInputs, Option<image::Manifest>), AuditError> {
        if let Some(p) = &self.image {
            let (m, inputs) = image::Manifest::read_checked(p)?;
            return Ok((inputs, Some(m)));
        }
        let ovmf = self
            .ovmf
            .clone()
            .ok_or_else(|| AuditError::Usage("give --ovmf or --image".into()))?;
        Ok((
            MeasureInputs {
                ovmf,
                kernel: self.kernel.clone(),
                initrd: self.initrd.clone(),
                append: self.append.clone(),
                vcpus: self.vcpus,
                vcpu_type: self.vcpu_type.clone(),
                guest_features: self.guest_features,
                vmm_type: self.vmm_type.clone(),
            },
            None,
        ))
    }
}

#[derive(Args, Debug)]
struct MeasureArgs {
    #[command(flatten)]
    artifacts: ArtifactArgs,
    /// A release statement note to check against the computed measurement and digests.
    #[arg(long)]
    release: Option<PathBuf>,
    /// Operator verifier keys the release must be signed by (repeatable).
    #[arg(long = "operator-key", value_delimiter = ',')]
    operator_keys: Vec<String>,
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Key name (operator name, or the witness name).
    #[arg(long)]
    name: String,
    /// Private key file to create (mode 0600; never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Make a witness cosignature key instead of an operator key.
    #[arg(long)]
    witness: bool,
}

#[derive(Args, Debug)]
struct SubmitArgs {
    /// Operator private key file.
    #[arg(long)]
    key: PathBuf,
    /// The log URL (omit with --out to only sign).
    #[arg(long, env = "LUCENT_LOG_URL")]
    log: Option<String>,
    /// The log's verifier key: checks the inclusion proof returned with --wait.
    #[arg(long, env = "LUCENT_LOG_KEY")]
    log_key: Option<String>,
    /// Wait up to this many seconds for inclusion.
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// Also write the signed statement here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --wait: write the statement and its log proof here, as the file a CDN serves
    /// (`lucent_verifier::published`: the gateway's key config at
    /// /lucent/v1/gateway.json, the issuer's key at /lucent/v1/issuer.json).
    #[arg(long, requires = "wait")]
    published_out: Option<PathBuf>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum PublishCmd {
    /// A `release` statement; the SEV-SNP measurement is computed from the artifacts.
    #[command(after_help = example!(r#"lucent-auditor publish release --key operator.key --log https://log.example.net \
      --log-key "$LOG_KEY" --wait 30 --ovmf OVMF.amdsev.fd --kernel vmlinuz --initrd initrd.img \
      --append "console=ttyS0" --vcpus 4 --version 1.4.0 --source https://git.example.net/lucent \
      --commit "$COMMIT" --model "$WEIGHTS_SHA256" --not-after +30d"#))]
    Release {
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        artifacts: ArtifactArgs,
        /// `sev-snp` or `tdx`.
        #[arg(long, default_value = "sev-snp")]
        platform: String,
        /// Measurement (hex); required for TDX, checked for SEV-SNP.
        #[arg(long)]
        measurement: Option<String>,
        /// Release version.
        #[arg(long)]
        version: String,
        /// Source repository URL (with --image: the manifest's).
        #[arg(long, required_unless_present = "image", conflicts_with = "image")]
        source: Option<String>,
        /// Source commit (hex; with --image: the manifest's).
        #[arg(long, required_unless_present = "image", conflicts_with = "image")]
        commit: Option<String>,
        /// Model weights digest (hex SHA-256).
        #[arg(long)]
        model: String,
        /// Minimum TCB (hex; SEV-SNP 8 bytes, TDX 16 bytes). Default: all zero.
        #[arg(long)]
        min_tcb: Option<String>,
        /// Not valid after: Unix seconds, or +<n>d / +<n>h / +<n>s from now; at most 30 days
        /// from now (verifiers refuse longer-lived releases).
        #[arg(long)]
        not_after: String,
    },
    /// A `keyconfig` statement.
    #[command(after_help = example!(r#"lucent-auditor publish keyconfig --key operator.key --log https://log.example.net \
      --key-id 7 --config keyconfig.bin --not-before 1796083200 --not-after 1798761600"#))]
    Keyconfig {
        #[command(flatten)]
        submit: SubmitArgs,
        /// Key id.
        #[arg(long)]
        key_id: u8,
        /// File with the RFC 9458 key config bytes.
        #[arg(long)]
        config: PathBuf,
        /// Valid from (Unix seconds).
        #[arg(long)]
        not_before: u64,
        /// Valid until (Unix seconds).
        #[arg(long)]
        not_after: u64,
    },
    /// An `issuer` statement: the Privacy Pass issuer key every client must get tokens under
    /// (`lucent-issuer info` prints the name and key).
    #[command(after_help = example!(r#"lucent-auditor publish issuer --key operator.key --log https://log.example.net \
      --name issuer.lucent.example --public-key "$ISSUER_KEY" --not-before 1796083200 --not-after 1798761600"#))]
    Issuer {
        #[command(flatten)]
        submit: SubmitArgs,
        /// The issuer's name.
        #[arg(long)]
        name: String,
        /// The public key (hex, 49 bytes).
        #[arg(long)]
        public_key: String,
        /// Valid from (Unix seconds).
        #[arg(long)]
        not_before: u64,
        /// Valid until (Unix seconds).
        #[arg(long)]
        not_after: u64,
    },
    /// A `revoke` statement.
    #[command(after_help = example!(r#"lucent-auditor publish revoke --key operator.key --log https://log.example.net \
      --measurement "$MEASUREMENT" --reason "firmware below the TCB floor""#))]
    Revoke {
        #[command(flatten)]
        submit: SubmitArgs,
        /// `sev-snp` or `tdx`.
        #[arg(long, default_value = "sev-snp")]
        platform: String,
        /// Measurement to revoke (hex).
        #[arg(long)]
        measurement: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).map_err(|e| e.to_string()),
        None => s
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string()),
    }
}

fn note_key(what: &str, s: &str) -> Result<NoteVerifierKey, AuditError> {
    NoteVerifierKey::parse(s.trim()).map_err(|source| AuditError::Key {
        what: format!("{what} {s:?}"),
        source,
    })
}

fn operator_keys(keys: &[String]) -> Result<Vec<NoteVerifierKey>, AuditError> {
    keys.iter().map(|k| note_key("operator key", k)).collect()
}

fn trust_settings(trust: &TrustConfig) -> Result<TrustSettings, AuditError> {
    trust
        .settings()
        .map_err(|e| AuditError::Usage(format!("trust settings: {e}")))
}

fn auditor(a: &LogArgs) -> Result<Auditor, AuditError> {
    let TrustSettings { log, witnesses, .. } = trust_settings(&a.trust)?;
    let state_dir = match &a.state_dir {
        Some(d) => d.clone(),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/state/lucent-auditor"))
            .ok_or_else(|| AuditError::Usage("no --state-dir and no $HOME".into()))?,
    };
    Ok(Auditor {
        client: LogClient::new(&a.log)?,
        trust: Trust { log, witnesses },
        state: StateDir::open(state_dir)?,
    })
}

fn read(path: &PathBuf) -> Result<Vec<u8>, AuditError> {
    std::fs::read(path).map_err(|e| AuditError::io(path, e))
}

async fn verify_bundle(b: VerifyBundleArgs) -> Result<Report, AuditError> {
    use lucent_verifier::bundle::BundlePolicy;
    let trust = trust_settings(&b.trust)?;
    let policy = BundlePolicy {
        nonce: b
            .nonce
            .as_deref()
            .map(|n| hex::decode(n).map_err(|_| AuditError::Usage("--nonce is not hex".into())))
            .transpose()?,
        ..BundlePolicy::default()
    };
    let now = match b.now {
        Some(n) => n,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| AuditError::Internal(format!("clock: {e}")))?
            .as_secs(),
    };
    let state = b.state_dir.as_ref().map(StateDir::open).transpose()?;
    let client = b.log.as_deref().map(LogClient::new).transpose()?;
    let source = state.as_ref().map(|s| crate::bundle::LastSeenSource {
        state: s,
        log: client.as_ref(),
    });
    crate::bundle::verify(&read(&b.bundle)?, &trust, &policy, source, now).await
}

async fn verify_release(v: VerifyReleaseArgs) -> Result<Report, AuditError> {
    let a = auditor(&v.log)?;
    let operators = trust_settings(&v.log.trust)?.operators;
    let (index, release) =
        audit::logged_release(&a, v.index, v.measurement.as_deref(), &operators).await?;
    let commit = hex::encode(&release.commit);
    eprintln!(
        "lucent-auditor: release {} at index {index}: rebuilding commit {commit} from {}",
        release.version,
        v.checkout.display()
    );
    let features: Vec<String> = v
        .features
        .iter()
        .flat_map(|f| f.split(','))
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let job = image::Rebuild {
        checkout: v.checkout.clone(),
        commit: commit.clone(),
        config: v.config.clone(),
        features,
        vcpus: release.vcpus,
        vcpu_type: release.vcpu_type.clone(),
        work_dir: v.work_dir.clone(),
    };
    let rebuilt = tokio::task::spawn_blocking(move || image::rebuild(&job))
        .await
        .map_err(|e| AuditError::Internal(format!("rebuild: {e}")))??;
    let checks = image::compare_release(&release, &rebuilt);
    let mut human = format!(
        "release {} (index {index}, commit {commit}) against the image rebuilt in {}\n",
        release.version,
        v.work_dir.display()
    );
    for c in &checks {
        if c.matches() {
            human.push_str(&format!("  {:<15} match     {}\n", c.artifact, c.logged));
        } else {
            human.push_str(&format!(
                "  {:<15} DIFFERS   logged {}, rebuilt {}\n",
                c.artifact, c.logged, c.rebuilt
            ));
        }
    }
    let first = checks.iter().find(|c| !c.matches());
    let failed = first.map(|c| {
        format!(
            "the rebuilt image differs from release {} first in {}: logged {}, rebuilt {}",
            release.version, c.artifact, c.logged, c.rebuilt
        )
    });
    let json = serde_json::json!({
        "ok": failed.is_none(),
        "index": index,
        "version": release.version,
        "commit": commit,
        "checks": checks.iter().map(|c| serde_json::json!({
            "artifact": c.artifact, "logged": c.logged, "rebuilt": c.rebuilt,
            "match": c.matches(),
        })).collect::<Vec<_>>(),
        "first_difference": first.map(|c| c.artifact.clone()),
        "manifest": rebuilt,
    });
    Ok(Report {
        json,
        human,
        failed,
    })
}

async fn run(cli: Cli) -> Result<Report, AuditError> {
    match cli.command {
        Command::VerifyBundle(b) => verify_bundle(b).await,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lucent-auditor", &mut script);
            let script = String::from_utf8(script)
                .map_err(|e| AuditError::Internal(format!("completion script: {e}")))?;
            Ok(Report::ok(
                serde_json::json!({"ok": true, "shell": shell.to_string(), "script": script}),
                script,
            ))
        }
        Command::Man { out_dir } => {
            std::fs::create_dir_all(&out_dir).map_err(|e| AuditError::io(&out_dir, e))?;
            clap_mangen::generate_to(Cli::command(), &out_dir)
                .map_err(|e| AuditError::io(&out_dir, e))?;
            let mut pages: Vec<String> = std::fs::read_dir(&out_dir)
                .map_err(|e| AuditError::io(&out_dir, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("lucent-auditor") && n.ends_with(".1"))
                .collect();
            pages.sort();
            let human = format!(
                "wrote {} man pages to {}: {}\n",
                pages.len(),
                out_dir.display(),
                pages.join(", ")
            );
            Ok(Report::ok(
                serde_json::json!({"ok": true, "dir": out_dir, "pages": pages}),
                human,
            ))
        }
        Command::Checkpoint(a) => {
            let cp = audit::check_checkpoint(&auditor(&a)?).await?;
            Ok(Report::ok(cp.to_json(), cp.to_human()))
        }
        Command::Inclusion(i) => {
            let a = auditor(&i.log)?;
            let target = match (&i.statement, &i.leaf_hash, &i.measurement) {
                (Some(p), None, None) => Target::Entry(read(p)?),
                (None, Some(h), None) => Target::Leaf(LeafHash(
                    Hash::from_hex(h)
                        .map_err(|e| AuditError::Usage(format!("--leaf-hash: {e}")))?,
                )),
                (None, None, Some(m)) => Target::Measurement(m.clone()),
                _ => {
                    return Err(AuditError::Usage(
                        "give one of --statement, --leaf-hash, --measurement".into(),
                    ))
                }
            };
            let operators = trust_settings(&i.log.trust)?.operators;
            audit::inclusion(&a, target, i.index, &operators).await
        }
        Command::Consistency(c) => {
            let a = auditor(&c.log)?;
            let args = match (c.old, &c.checkpoints) {
                (Some(old), None) => ConsistencyArgs::Sizes { old, new: c.new },
                (None, Some(files)) if files.len() == 2 => {
                    ConsistencyArgs::Checkpoints(read(&files[0])?, read(&files[1])?)
                }
                _ => {
                    return Err(AuditError::Usage(
                        "give --old [--new] or --checkpoints OLD NEW".into(),
                    ))
                }
            };
            audit::consistency(&a, args).await
        }
        Command::Monitor(m) => {
            let a = auditor(&m.log)?;
            let opts = MonitorOptions {
                operators: trust_settings(&m.log.trust)?.operators,
                concurrency: m.concurrency,
                progress: !m.no_progress,
                max_entries: m.max_entries,
                ..MonitorOptions::default()
            };
            monitor::run(&a, &opts).await
        }
        Command::Witness(WitnessCmd::Serve(w)) => {
            let key_text =
                std::fs::read_to_string(&w.key).map_err(|e| AuditError::io(&w.key, e))?;
            let signer = witness::parse_key_file(&key_text)?;
            let logs = w
                .log_keys
                .iter()
                .map(|k| note_key("log key", k).map(LogKey::new))
                .collect::<Result<Vec<_>, _>>()?;
            let wit = Arc::new(Witness::new(signer.clone(), logs, w.state_dir.clone())?);
            let listener = tokio::net::TcpListener::bind(&w.listen)
                .await
                .map_err(|e| AuditError::io(PathBuf::from(&w.listen), e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| AuditError::io(PathBuf::from(&w.listen), e))?;
            // The first stdout line says where we listen (tests and scripts read it).
            println!("listening on http://{addr}");
            println!("witness key {}", signer.witness_key().as_str());
            witness::run(listener, wit, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(Report::ok(serde_json::json!({"ok": true}), String::new()))
        }
        Command::Measure(m) => {
            let (inputs, _) = m.artifacts.inputs()?;
            let measured = measure::measure(&inputs)?;
            let mut json = measure::to_json(&measured, &inputs);
            let mut human = format!("measurement {}\n", hex::encode(measured.measurement));
            let mut failed = None;
            if let Some(p) = &m.release {
                let bytes = read(p)?;
                let st = audit::check_statement(&bytes, &operator_keys(&m.operator_keys)?, None)?;
                let lucent_verifier::statement::Statement::Release(r) = st else {
                    return Err(AuditError::Usage(format!(
                        "{} is not a release statement",
                        p.display()
                    )));
                };
                let bad = measure::compare_release(&measured, &inputs, &r);
                json["release_matches"] = serde_json::Value::Bool(bad.is_empty());
                json["mismatches"] = serde_json::json!(bad);
                if bad.is_empty() {
                    human.push_str(&format!("release {} matches the inputs\n", r.version));
                } else {
                    for b in &bad {
                        human.push_str(&format!("  MISMATCH {b}\n"));
                    }
                    failed = Some(format!(
                        "release {} does not match: {}",
                        r.version,
                        bad.join("; ")
                    ));
                }
            }
            json["ok"] = serde_json::Value::Bool(failed.is_none());
            Ok(Report {
                json,
                human,
                failed,
            })
        }
        Command::Image(ImageCmd::Build(b)) => {
            let spec = image::ImageSpec::from_inputs(
                b.runtime,
                b.config,
                &b.inputs,
                b.cmdline,
                image::Launch {
                    vcpus: b.vcpus,
                    vcpu_type: b.vcpu_type,
                    guest_features: b.guest_features,
                    vmm_type: b.vmm_type,
                },
                image::Provenance {
                    repository: b.repository,
                    commit: b.commit.to_ascii_lowercase(),
                    toolchain: b.toolchain,
                    target: b.target,
                    features: b.features,
                    dirty: b.dirty,
                },
            )?;
            let m = image::build(&spec, &b.out)?;
            let mut human = format!("image {}\n", b.out.display());
            for a in [&m.runtime, &m.config, &m.initrd, &m.kernel, &m.firmware] {
                human.push_str(&format!(
                    "  {:<20} {} ({} bytes)\n",
                    a.file, a.sha256, a.size
                ));
            }
            human.push_str(&format!("  {:<20} {}\n", "cmdline", m.cmdline_sha256));
            human.push_str(&format!("measurement {}\n", m.measurement));
            let json = serde_json::to_value(&m)
                .map_err(|e| AuditError::Internal(format!("manifest: {e}")))?;
            Ok(Report::ok(json, human))
        }
        Command::VerifyRelease(v) => verify_release(v).await,
        Command::Keygen(k) => {
            let vkey = if k.witness {
                publish::keygen_witness(&k.name, &k.out)?
            } else {
                publish::keygen_operator(&k.name, &k.out)?
            };
            Ok(Report::ok(
                serde_json::json!({"ok": true, "verifier_key": vkey, "private_key_file": k.out}),
                format!("{vkey}\n"),
            ))
        }
        Command::Publish(p) => {
            let (submit, st) = match p {
                PublishCmd::Release {
                    submit,
                    artifacts,
                    platform,
                    measurement,
                    version,
                    source,
                    commit,
                    model,
                    min_tcb,
                    not_after,
                } => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_err(|e| AuditError::Internal(format!("clock: {e}")))?
                        .as_secs();
                    let not_after = publish::parse_not_after(&not_after, now)?;
                    publish::check_release_lifetime(not_after, now)?;
                    let min_tcb = min_tcb
                        .unwrap_or_else(|| "00".repeat(if platform == "tdx" { 16 } else { 8 }));
                    let (inputs, manifest) = artifacts.inputs()?;
                    let (source, commit, measurement) = match manifest {
                        Some(m) => {
                            if m.source.dirty {
                                return Err(AuditError::Usage(format!(
                                    "{}: the image was built from uncommitted changes; \
                                     only an image of a commit can be released",
                                    artifacts
                                        .image
                                        .as_deref()
                                        .unwrap_or(Path::new(""))
                                        .display()
                                )));
                            }
                            if measurement
                                .as_ref()
                                .is_some_and(|g| !g.eq_ignore_ascii_case(&m.measurement))
                            {
                                return Err(AuditError::MeasurementMismatch(format!(
                                    "--measurement differs from the image's {}",
                                    m.measurement
                                )));
                            }
                            (m.source.repository, m.source.commit, Some(m.measurement))
                        }
                        None => (
                            source.unwrap_or_default(),
                            commit.unwrap_or_default(),
                            measurement,
                        ),
                    };
                    let st = publish::build_release(&ReleaseInput {
                        platform,
                        measurement,
                        artifacts: inputs,
                        version,
                        source,
                        commit,
                        model,
                        min_tcb,
                        not_after,
                    })?;
                    (submit, st)
                }
                PublishCmd::Keyconfig {
                    submit,
                    key_id,
                    config,
                    not_before,
                    not_after,
                } => {
                    let st =
                        publish::build_keyconfig(key_id, read(&config)?, not_before, not_after);
                    (submit, st)
                }
                PublishCmd::Issuer {
                    submit,
                    name,
                    public_key,
                    not_before,
                    not_after,
                } => (
                    submit,
                    publish::build_issuer(&name, &public_key, not_before, not_after)?,
                ),
                PublishCmd::Revoke {
                    submit,
                    platform,
                    measurement,
                    reason,
                } => (
                    submit,
                    publish::build_revoke(&platform, &measurement, &reason)?,
                ),
            };
            let key = publish::load_operator_key(&submit.key)?;
            let note = publish::sign(&st, &key)?;
            if let Some(out) = &submit.out {
                crate::state::write_atomic(out, &note)?;
            }
            match &submit.log {
                Some(url) => {
                    let log_key = submit
                        .log_key
                        .as_deref()
                        .map(|k| note_key("log key", k).map(LogKey::new))
                        .transpose()?;
                    publish::submit(
                        &LogClient::new(url)?,
                        &note,
                        submit.wait,
                        log_key.as_ref(),
                        submit.published_out.as_deref(),
                    )
                    .await
                }
                None if submit.out.is_some() => Ok(Report::ok(
                    serde_json::json!({"ok": true, "leaf_hash": LeafHash::of_entry(&note).to_string()}),
                    format!("signed {} (not submitted: no --log)\n", st.type_line()),
                )),
                None => Err(AuditError::Usage(
                    "give --log to submit, or --out to only sign".into(),
                )),
            }
        }
    }
}

/// Runs the command with the process's arguments; the exit code says how it ended.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::from(EXIT_OK)
                }
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    let json = cli.json;
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lucent-auditor: starting the runtime: {e}");
            return ExitCode::from(crate::EXIT_CANNOT_CHECK);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.json).unwrap_or_default()
                );
            } else {
                print!("{}", report.human);
            }
            match report.failed {
                Some(why) => {
                    eprintln!("lucent-auditor: verification failed: {why}");
                    ExitCode::from(EXIT_FAILED)
                }
                None => ExitCode::from(EXIT_OK),
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
                );
            }
            let class = match e.outcome() {
                Outcome::Failed => "verification failed",
                Outcome::Refused => "refused",
                Outcome::Usage => "usage",
                Outcome::CannotCheck => "could not check",
            };
            eprintln!("lucent-auditor: {class}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, however deep, ends its help with an example of itself.
    #[test]
    fn every_command_has_an_example_of_itself() {
        fn walk(cmd: &clap::Command, path: &str) {
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let want = format!("Example:\n  {path}");
            assert!(help.contains(&want), "{path}: {help:?}");
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        Cli::command().debug_assert();
        walk(&Cli::command(), "lucent-auditor");
    }
}
