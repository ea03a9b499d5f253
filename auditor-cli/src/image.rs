//! The CVM image: what a `release` statement describes, built so that anyone can rebuild it.
//!
//! An image is a directory holding
//! - `OVMF.fd`: the firmware (for SEV-SNP direct boot an edk2 `AmdSev` build, which carries
//!   the SEV hashes table that measures kernel, initrd and command line);
//! - `vmlinuz`: the kernel;
//! - `initrd.img`: two gzip members, each a newc cpio archive ([`write_initrd`]): first the
//!   runtime (`/init`, the `lucent-cvm-runtime` binary, with `/dev/console` and the
//!   mount points), then its measured configuration (`/etc/lucent/runtime.toml`). Entries
//!   are sorted and carry fixed inode numbers, owners (0), modes and times (0); gzip runs at
//!   level 9 with no name and time 0, so the same binary and configuration always give the
//!   same bytes. The kernel unpacks both archives into one root;
//! - `lucent-cvm-runtime` and `runtime.toml`: the two files the initrd holds, for auditors;
//! - `manifest.json` ([`Manifest`]): every artifact's SHA-256 and size, the packages the
//!   kernel and firmware came from, the source commit and toolchain of the runtime, the
//!   kernel command line, the VM shape and the SEV-SNP launch measurement computed by
//!   [`crate::measure`].
//!
//! `scripts/build-image.sh` builds the runtime reproducibly and calls [`build`];
//! `lucent-auditor publish release --image` fills a release statement from a checked
//! manifest ([`Manifest::read_checked`]); `lucent-auditor verify-release` rebuilds an image
//! and compares it with a logged release ([`compare_release`]).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use lucent_verifier::statement::Release;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::measure::{self, MeasureInputs};
use crate::AuditError;

/// The manifest's format name.
pub const MANIFEST_FORMAT: &str = "lucent/image/v1";
/// File names inside an image directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The initrd's file name.
pub const INITRD_FILE: &str = "initrd.img";
/// The kernel's file name.
pub const KERNEL_FILE: &str = "vmlinuz";
/// The firmware's file name.
pub const FIRMWARE_FILE: &str = "OVMF.fd";
/// The runtime binary's file name (a copy of the initrd's `/init`).
pub const RUNTIME_FILE: &str = "lucent-cvm-runtime";
/// The configuration's file name (a copy of the initrd's `/etc/lucent/runtime.toml`).
pub const CONFIG_FILE: &str = "runtime.toml";
/// The folder of kernel modules inside an image directory and an inputs folder.
pub const MODULES_FILE_DIR: &str = "modules";
/// Where the initrd puts kernel modules (the runtime loads them as PID 1, in name order).
pub const MODULES_PATH: &str = "lib/modules";
/// Where the initrd puts the runtime.
pub const INIT_PATH: &str = "init";
/// Where the initrd puts the configuration (the runtime's default as PID 1).
pub const CONFIG_PATH: &str = "etc/lucent/runtime.toml";
/// The kernel command line of an image unless told otherwise: the serial console, and a
/// kernel panic (PID 1 exiting) reboots at once, which ends a VM started with `-no-reboot`.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 panic=-1";
/// The largest initrd [`read_initrd`] accepts (decompressed).
pub const MAX_INITRD_BYTES: u64 = 1 << 30;
/// The gzip level of both initrd members.
const GZIP_LEVEL: u32 = 9;

/// One file of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// File name inside the image directory.
    pub file: String,
    /// SHA-256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A Debian package an input was taken from, pinned by version and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// SHA-256 of the `.deb` (hex).
    pub sha256: String,
    /// The file taken from it.
    pub path: String,
}

/// Where the runtime binary came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Source repository URL.
    pub repository: String,
    /// Source commit (hex).
    pub commit: String,
    /// `rustc --version` of the toolchain that built it.
    pub toolchain: String,
    /// Target triple.
    pub target: String,
    /// Cargo features of `lucent-cvm-runtime` (empty for production images).
    pub features: Vec<String>,
    /// Whether the checkout had uncommitted changes (the image is then not the commit's).
    pub dirty: bool,
}

/// `inputs.json` of `scripts/fetch-image-inputs.sh`: the packages the kernel (`vmlinuz`), its
/// modules (`modules/*.ko`) and the firmware (`OVMF.fd`) beside it came from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputPackages {
    /// The kernel's package.
    pub kernel: Package,
    /// Paths in the kernel's package of the modules beside it (`modules/<file name>`).
    pub modules: Vec<String>,
    /// The firmware's package.
    pub firmware: Package,
}

impl InputPackages {
    /// Reads `dir/inputs.json`.
    pub fn read(dir: &Path) -> Result<Self, AuditError> {
        let p = dir.join("inputs.json");
        serde_json::from_slice(&read(&p)?)
            .map_err(|e| AuditError::Image(format!("{}: {e}", p.display())))
    }

    /// The module files in `dir` (`dir/modules/<file name>`), in the listed order.
    pub fn module_files(&self, dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
        self.modules
            .iter()
            .map(|m| {
                let name = Path::new(m).file_name().ok_or_else(|| {
                    AuditError::Image(format!("inputs.json: module {m:?} has no file name"))
                })?;
                Ok(dir.join(MODULES_FILE_DIR).join(name))
            })
            .collect()
    }
}

/// The VM shape the measurement is computed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Number of vCPUs.
    pub vcpus: u32,
    /// vCPU type as QEMU names it.
    pub vcpu_type: String,
    /// SEV features of the guest.
    pub guest_features: u64,
    /// VMM type.
    pub vmm_type: String,
}

/// `manifest.json`: what an image is made of and what it measures to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The runtime's source and build.
    pub source: Provenance,
    /// The runtime binary (the initrd's `/init`).
    pub runtime: Artifact,
    /// The measured configuration (the initrd's `/etc/lucent/runtime.toml`).
    pub config: Artifact,
    /// The initrd.
    pub initrd: Artifact,
    /// The kernel.
    pub kernel: Artifact,
    /// The package the kernel came from.
    pub kernel_package: Option<Package>,
    /// Kernel modules in the initrd (`lib/modules/`), from the kernel's package.
    pub modules: Vec<Artifact>,
    /// The firmware.
    pub firmware: Artifact,
    /// The package the firmware came from.
    pub firmware_package: Option<Package>,
    /// The kernel command line.
    pub cmdline: String,
    /// SHA-256 of the command line as measured (with its trailing NUL).
    pub cmdline_sha256: String,
    /// The VM shape.
    pub launch: Launch,
    /// The SEV-SNP launch measurement (hex, 48 bytes).
    pub measurement: String,
}

/// What [`build`] makes an image from.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The `lucent-cvm-runtime` binary.
    pub runtime: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// The kernel.
    pub kernel: PathBuf,
    /// Kernel modules to put in the initrd.
    pub modules: Vec<PathBuf>,
    /// The firmware (an `AmdSev` OVMF for measured direct boot).
    pub firmware: PathBuf,
    /// The kernel command line.
    pub cmdline: String,
    /// The VM shape.
    pub launch: Launch,
    /// The runtime's source and build.
    pub source: Provenance,
    /// The kernel's package, when known.
    pub kernel_package: Option<Package>,
    /// The firmware's package, when known.
    pub firmware_package: Option<Package>,
}

impl ImageSpec {
    /// The spec of an image of `runtime` and `config` with the pinned kernel, modules and
    /// firmware in `inputs` (the folder `scripts/fetch-image-inputs.sh` fills, with its
    /// `inputs.json`).
    pub fn from_inputs(
        runtime: PathBuf,
        config: PathBuf,
        inputs: &Path,
        cmdline: String,
        launch: Launch,
        source: Provenance,
    ) -> Result<Self, AuditError> {
        let packages = InputPackages::read(inputs)?;
        Ok(ImageSpec {
            runtime,
            config,
            kernel: inputs.join(KERNEL_FILE),
            modules: packages.module_files(inputs)?,
            firmware: inputs.join(FIRMWARE_FILE),
            cmdline,
            launch,
            source,
            kernel_package: Some(packages.kernel),
            firmware_package: Some(packages.firmware),
        })
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn read(p: &Path) -> Result<Vec<u8>, AuditError> {
    std::fs::read(p).map_err(|e| AuditError::io(p, e))
}

fn artifact(file: &str, data: &[u8]) -> Artifact {
    Artifact {
        file: file.into(),
        sha256: sha256_hex(data),
        size: data.len() as u64,
    }
}

/// One entry of an initrd archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitrdEntry {
    /// Path without a leading `/`.
    pub name: String,
    /// Full mode (type and permission bits).
    pub mode: u32,
    /// Device number (major, minor) of a device node.
    pub rdev: (u32, u32),
    /// Contents of a regular file.
    pub data: Vec<u8>,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

fn dir(name: &str, perm: u32) -> InitrdEntry {
    InitrdEntry {
        name: name.into(),
        mode: S_IFDIR | perm,
        rdev: (0, 0),
        data: Vec::new(),
    }
}

fn file(name: &str, perm: u32, data: Vec<u8>) -> InitrdEntry {
    InitrdEntry {
        name: name.into(),
        mode: S_IFREG | perm,
        rdev: (0, 0),
        data,
    }
}

/// The initrd's first member: the runtime as `/init`, the kernel modules (file name and bytes)
/// in `/lib/modules`, `/dev/console` (the kernel opens it for init's standard streams) and the
/// mount points the runtime uses as PID 1.
pub fn runtime_entries(runtime: Vec<u8>, modules: Vec<(String, Vec<u8>)>) -> Vec<InitrdEntry> {
    let mut entries = vec![
        dir("lib", 0o755),
        dir(MODULES_PATH, 0o755),
        dir("dev", 0o755),
        InitrdEntry {
            name: "dev/console".into(),
            mode: S_IFCHR | 0o600,
            rdev: (5, 1),
            data: Vec::new(),
        },
        file(INIT_PATH, 0o555, runtime),
        dir("proc", 0o555),
        dir("sys", 0o555),
    ];
    for (name, data) in modules {
        entries.push(file(&format!("{MODULES_PATH}/{name}"), 0o444, data));
    }
    entries
}

/// The initrd's second member: the measured configuration.
pub fn config_entries(config: Vec<u8>) -> Vec<InitrdEntry> {
    vec![
        dir("etc", 0o755),
        dir("etc/lucent", 0o755),
        file(CONFIG_PATH, 0o444, config),
    ]
}

/// One gzip member holding one newc cpio archive of `entries` (sorted by name here), with
/// inode numbers counted from `first_ino`, owner 0, time 0.
pub fn archive_member(entries: &[InitrdEntry], first_ino: u32) -> Result<Vec<u8>, AuditError> {
    let mut sorted: Vec<&InitrdEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let bad = |e: std::io::Error| AuditError::Image(format!("writing the initrd: {e}"));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
    let mut w = gz;
    for (i, e) in sorted.iter().enumerate() {
        let size = u32::try_from(e.data.len())
            .map_err(|_| AuditError::Image(format!("{} is over 4 GiB", e.name)))?;
        let ino = first_ino
            .checked_add(u32::try_from(i).unwrap_or(u32::MAX))
            .ok_or_else(|| AuditError::Image("too many initrd entries".into()))?;
        let mut entry = cpio::newc::Builder::new(&e.name)
            .ino(ino)
            .mode(e.mode)
            .uid(0)
            .gid(0)
            .mtime(0)
            .nlink(if e.mode & S_IFDIR == S_IFDIR { 2 } else { 1 })
            .rdev_major(e.rdev.0)
            .rdev_minor(e.rdev.1)
            .write(w, size);
        entry.write_all(&e.data).map_err(bad)?;
        w = entry.finish().map_err(bad)?;
    }
    let w = cpio::newc::trailer(w).map_err(bad)?;
    w.finish().map_err(bad)
}

/// The initrd's first gzip member, of `runtime` (the binary's bytes) and `modules` (file names
/// and bytes). It does not depend on the configuration, so a caller that builds many images of
/// one binary can compress it once and hand it to [`build_with`].
pub fn runtime_member(
    runtime: &[u8],
    modules: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, AuditError> {
    archive_member(&runtime_entries(runtime.to_vec(), modules.to_vec()), 1)
}

/// The initrd's second gzip member, of the configuration's bytes.
pub fn config_member(config: Vec<u8>) -> Result<Vec<u8>, AuditError> {
    archive_member(&config_entries(config), 100)
}

/// The initrd of `runtime` (the binary's bytes), `modules` (file names and bytes) and `config`
/// (the configuration's bytes): the runtime member, then the configuration member.
pub fn write_initrd(
    runtime: Vec<u8>,
    modules: Vec<(String, Vec<u8>)>,
    config: Vec<u8>,
) -> Result<Vec<u8>, AuditError> {
    let mut out = runtime_member(&runtime, &modules)?;
    out.extend(config_member(config)?);
    Ok(out)
}

/// Every entry of an initrd written by [`write_initrd`] (or any concatenation of gzip'd newc
/// archives), in order. Refuses more than [`MAX_INITRD_BYTES`] of decompressed data.
pub fn read_initrd(initrd: &[u8]) -> Result<Vec<InitrdEntry>, AuditError> {
    let bad = |why: String| AuditError::Image(format!("reading the initrd: {why}"));
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(initrd)
        .take(MAX_INITRD_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| bad(format!("not gzip: {e}")))?;
    if raw.len() as u64 > MAX_INITRD_BYTES {
        return Err(bad(format!("over {MAX_INITRD_BYTES} bytes decompressed")));
    }
    let mut entries = Vec::new();
    let mut rest: &[u8] = &raw;
    while !rest.is_empty() {
        let mut r = cpio::newc::Reader::new(rest).map_err(|e| bad(e.to_string()))?;
        if r.entry().is_trailer() {
            rest = r.finish().map_err(|e| bad(e.to_string()))?;
            continue;
        }
        let (name, mode, rdev) = {
            let e = r.entry();
            (
                e.name().to_owned(),
                e.mode(),
                (e.rdev_major(), e.rdev_minor()),
            )
        };
        let mut data = Vec::new();
        r.read_to_end(&mut data)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        entries.push(InitrdEntry {
            name,
            mode,
            rdev,
            data,
        });
        rest = r.finish().map_err(|e| bad(e.to_string()))?;
    }
    Ok(entries)
}

/// The runtime binary and configuration an initrd holds.
pub fn unpack_initrd(initrd: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AuditError> {
    let mut runtime = None;
    let mut config = None;
    for e in read_initrd(initrd)? {
        match e.name.as_str() {
            INIT_PATH => runtime = Some(e.data),
            CONFIG_PATH => config = Some(e.data),
            _ => {}
        }
    }
    match (runtime, config) {
        (Some(r), Some(c)) => Ok((r, c)),
        _ => Err(AuditError::Image(format!(
            "the initrd holds no /{INIT_PATH} or no /{CONFIG_PATH}"
        ))),
    }
}

/// Builds the image of `spec` into `out` (created if missing; the files it writes are
/// replaced) and returns its manifest, also written to `out/manifest.json`.
pub fn build(spec: &ImageSpec, out: &Path) -> Result<Manifest, AuditError> {
    build_with(spec, out, runtime_member)
}

/// [`build`], with the initrd's runtime member from `member`, which must return exactly
/// [`runtime_member`] of the bytes it is given (a cache of it, for example).
pub fn build_with(
    spec: &ImageSpec,
    out: &Path,
    member: impl FnOnce(&[u8], &[(String, Vec<u8>)]) -> Result<Vec<u8>, AuditError>,
) -> Result<Manifest, AuditError> {
    let runtime = read(&spec.runtime)?;
    let config = read(&spec.config)?;
    let kernel = read(&spec.kernel)?;
    let firmware = read(&spec.firmware)?;
    std::str::from_utf8(&config)
        .map_err(|_| AuditError::Image(format!("{} is not UTF-8 text", spec.config.display())))?;
    let mut modules = Vec::new();
    for p in &spec.modules {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".ko"))
            .ok_or_else(|| AuditError::Image(format!("{} is not a .ko file", p.display())))?;
        modules.push((name.to_owned(), read(p)?));
    }
    let mut initrd = member(&runtime, &modules)?;
    initrd.extend(config_member(config.clone())?);
    std::fs::create_dir_all(out.join(MODULES_FILE_DIR))
        .map_err(|e| AuditError::io(out.join(MODULES_FILE_DIR), e))?;
    let mut module_artifacts = Vec::new();
    for (name, data) in &modules {
        let file = format!("{MODULES_FILE_DIR}/{name}");
        let p = out.join(&file);
        std::fs::write(&p, data).map_err(|e| AuditError::io(&p, e))?;
        module_artifacts.push(artifact(&file, data));
    }
    let files: [(&str, &[u8]); 5] = [
        (RUNTIME_FILE, &runtime),
        (CONFIG_FILE, &config),
        (INITRD_FILE, &initrd),
        (KERNEL_FILE, &kernel),
        (FIRMWARE_FILE, &firmware),
    ];
    for (name, data) in files {
        let p = out.join(name);
        std::fs::write(&p, data).map_err(|e| AuditError::io(&p, e))?;
    }
    let measured = measure::measure(&measure_inputs(out, &spec.cmdline, &spec.launch))?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        source: spec.source.clone(),
        runtime: artifact(RUNTIME_FILE, &runtime),
        config: artifact(CONFIG_FILE, &config),
        initrd: artifact(INITRD_FILE, &initrd),
        kernel: artifact(KERNEL_FILE, &kernel),
        kernel_package: spec.kernel_package.clone(),
        modules: module_artifacts,
        firmware: artifact(FIRMWARE_FILE, &firmware),
        firmware_package: spec.firmware_package.clone(),
        cmdline: spec.cmdline.clone(),
        cmdline_sha256: hex::encode(measured.cmdline),
        launch: spec.launch.clone(),
        measurement: hex::encode(measured.measurement),
    };
    let p = out.join(MANIFEST_FILE);
    let mut text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| AuditError::Internal(format!("manifest: {e}")))?;
    text.push('\n');
    std::fs::write(&p, text).map_err(|e| AuditError::io(&p, e))?;
    Ok(manifest)
}

/// What `measure` needs for the image in `dir`: its firmware, kernel and initrd with `cmdline`,
/// for the VM shape `launch`.
pub fn measure_inputs(dir: &Path, cmdline: &str, launch: &Launch) -> MeasureInputs {
    MeasureInputs {
        ovmf: dir.join(FIRMWARE_FILE),
        kernel: Some(dir.join(KERNEL_FILE)),
        initrd: Some(dir.join(INITRD_FILE)),
        append: Some(cmdline.to_owned()),
        vcpus: launch.vcpus,
        vcpu_type: launch.vcpu_type.clone(),
        guest_features: launch.guest_features,
        vmm_type: launch.vmm_type.clone(),
    }
}

impl Manifest {
    /// Reads `path` (an image's `manifest.json`), checks every artifact in its directory
    /// against it and recomputes the measurement: the manifest is only returned when the
    /// files are what it says. Also returns the measurement inputs.
    pub fn read_checked(path: &Path) -> Result<(Manifest, MeasureInputs), AuditError> {
        let text = read(path)?;
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
            AuditError::Image(format!("{} is not an image manifest: {e}", path.display()))
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(AuditError::Image(format!(
                "{}: format {:?}, want {MANIFEST_FORMAT:?}",
                path.display(),
                m.format
            )));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut bad = Vec::new();
        for a in [&m.runtime, &m.config, &m.initrd, &m.kernel, &m.firmware] {
            let want = [
                RUNTIME_FILE,
                CONFIG_FILE,
                INITRD_FILE,
                KERNEL_FILE,
                FIRMWARE_FILE,
            ];
            if !want.contains(&a.file.as_str()) {
                return Err(AuditError::Image(format!(
                    "{}: unexpected file name {:?}",
                    path.display(),
                    a.file
                )));
            }
            let data = read(&dir.join(&a.file))?;
            let got = sha256_hex(&data);
            if got != a.sha256 {
                bad.push(format!(
                    "{}: manifest says {}, file is {got}",
                    a.file, a.sha256
                ));
            }
        }
        for a in &m.modules {
            let valid = a
                .file
                .strip_prefix(&format!("{MODULES_FILE_DIR}/"))
                .is_some_and(|n| n.ends_with(".ko") && !n.contains('/') && !n.starts_with('.'));
            if !valid {
                return Err(AuditError::Image(format!(
                    "{}: unexpected module file name {:?}",
                    path.display(),
                    a.file
                )));
            }
            let got = sha256_hex(&read(&dir.join(&a.file))?);
            if got != a.sha256 {
                bad.push(format!(
                    "{}: manifest says {}, file is {got}",
                    a.file, a.sha256
                ));
            }
        }
        let initrd = read(&dir.join(INITRD_FILE))?;
        let entries = read_initrd(&initrd)?;
        let in_initrd: Vec<(String, String)> = entries
            .iter()
            .filter_map(|e| {
                e.name
                    .strip_prefix(&format!("{MODULES_PATH}/"))
                    .map(|n| (format!("{MODULES_FILE_DIR}/{n}"), sha256_hex(&e.data)))
            })
            .collect();
        let listed: Vec<(String, String)> = m
            .modules
            .iter()
            .map(|a| (a.file.clone(), a.sha256.clone()))
            .collect();
        if in_initrd != listed {
            bad.push("the initrd's kernel modules are not the manifest's".into());
        }
        let (runtime, config) = unpack_initrd(&initrd)?;
        if sha256_hex(&runtime) != m.runtime.sha256 {
            bad.push(format!("the initrd's /{INIT_PATH} is not {RUNTIME_FILE}"));
        }
        if sha256_hex(&config) != m.config.sha256 {
            bad.push(format!("the initrd's /{CONFIG_PATH} is not {CONFIG_FILE}"));
        }
        let inputs = measure_inputs(dir, &m.cmdline, &m.launch);
        let measured = measure::measure(&inputs)?;
        if hex::encode(measured.measurement) != m.measurement {
            bad.push(format!(
                "measurement: manifest says {}, the files measure {}",
                m.measurement,
                hex::encode(measured.measurement)
            ));
        }
        if hex::encode(measured.cmdline) != m.cmdline_sha256 {
            bad.push("cmdline_sha256 is not the command line's digest".into());
        }
        if bad.is_empty() {
            Ok((m, inputs))
        } else {
            Err(AuditError::MeasurementMismatch(format!(
                "{}: {}",
                path.display(),
                bad.join("; ")
            )))
        }
    }
}

/// What [`rebuild`] rebuilds.
#[derive(Debug, Clone)]
pub struct Rebuild {
    /// A git checkout holding `commit`.
    pub checkout: PathBuf,
    /// The source commit (hex).
    pub commit: String,
    /// The measured configuration.
    pub config: PathBuf,
    /// Cargo features of the runtime.
    pub features: Vec<String>,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// vCPU type.
    pub vcpu_type: String,
    /// Where the clone (`src/`) and the image (`image/`) go; both are replaced.
    pub work_dir: PathBuf,
}

/// Runs `cmd` with its output on standard error (standard output is the report's).
fn run(cmd: &mut std::process::Command, what: &str) -> Result<(), AuditError> {
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| AuditError::Image(format!("{what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(AuditError::Image(format!("{what} failed ({status})")))
    }
}

/// Clones `commit` from the checkout into a fresh folder and builds its image with that
/// commit's own `scripts/build-image.sh`; returns the checked manifest. Build progress goes to
/// standard error.
pub fn rebuild(r: &Rebuild) -> Result<Manifest, AuditError> {
    if r.commit.is_empty() || !r.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuditError::Usage(format!(
            "commit {:?} is not hex",
            r.commit
        )));
    }
    let src = r.work_dir.join("src");
    let out = r.work_dir.join("image");
    for d in [&src, &out] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| AuditError::io(d, e))?;
        }
    }
    std::fs::create_dir_all(&r.work_dir).map_err(|e| AuditError::io(&r.work_dir, e))?;
    run(
        std::process::Command::new("git")
            .args(["clone", "--quiet", "--no-local", "--no-checkout"])
            .arg(&r.checkout)
            .arg(&src),
        &format!("git clone {}", r.checkout.display()),
    )?;
    run(
        std::process::Command::new("git")
            .arg("-C")
            .arg(&src)
            .args([
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--detach",
            ])
            .arg(&r.commit),
        &format!(
            "checking out commit {} (is it in {}?)",
            r.commit,
            r.checkout.display()
        ),
    )?;
    let config = std::fs::canonicalize(&r.config).map_err(|e| AuditError::io(&r.config, e))?;
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(src.join("scripts/build-image.sh"))
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .args(["--vcpus", &r.vcpus.to_string(), "--vcpu-type", &r.vcpu_type]);
    if !r.features.is_empty() {
        cmd.args(["--features", &r.features.join(",")]);
    }
    run(&mut cmd, "scripts/build-image.sh of the commit")?;
    let (manifest, _) = Manifest::read_checked(&out.join(MANIFEST_FILE))?;
    Ok(manifest)
}

/// One line of [`compare_release`]: an artifact, what the release says and what was rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactCheck {
    /// Artifact name (`firmware`, `kernel`, `initrd`, `cmdline`, `vcpus`, …, `measurement`).
    pub artifact: String,
    /// What the logged release says.
    pub logged: String,
    /// What the rebuilt image gives.
    pub rebuilt: String,
}

impl ArtifactCheck {
    /// Whether they agree.
    pub fn matches(&self) -> bool {
        self.logged == self.rebuilt
    }
}

/// A logged release against a rebuilt image, artifact by artifact, in the order an image is
/// made: firmware, kernel, initrd, command line, VM shape, then the measurement.
pub fn compare_release(release: &Release, rebuilt: &Manifest) -> Vec<ArtifactCheck> {
    [
        (
            "firmware",
            hex::encode(release.firmware),
            rebuilt.firmware.sha256.clone(),
        ),
        (
            "kernel",
            hex::encode(release.kernel),
            rebuilt.kernel.sha256.clone(),
        ),
        (
            "initrd",
            hex::encode(release.initrd),
            rebuilt.initrd.sha256.clone(),
        ),
        (
            "cmdline",
            hex::encode(release.cmdline),
            rebuilt.cmdline_sha256.clone(),
        ),
        (
            "vcpus",
            release.vcpus.to_string(),
            rebuilt.launch.vcpus.to_string(),
        ),
        (
            "vcpu_type",
            release.vcpu_type.to_ascii_lowercase(),
            rebuilt.launch.vcpu_type.to_ascii_lowercase(),
        ),
        (
            "guest_features",
            release.guest_features.to_string(),
            rebuilt.launch.guest_features.to_string(),
        ),
        (
            "vmm_type",
            release.vmm_type.to_ascii_lowercase(),
            rebuilt.launch.vmm_type.to_ascii_lowercase(),
        ),
        (
            "measurement",
            release.measurement.to_hex(),
            rebuilt.measurement.clone(),
        ),
    ]
    .into_iter()
    .map(|(a, logged, rebuilt)| ArtifactCheck {
        artifact: a.into(),
        logged,
        rebuilt,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn initrd_is_deterministic_and_reads_back() {
        let modules = || vec![("configfs.ko".to_owned(), b"module".to_vec())];
        let a = write_initrd(
            b"\x7fELF runtime".to_vec(),
            modules(),
            b"listen = \"x\"\n".to_vec(),
        )
        .unwrap();
        let b = write_initrd(
            b"\x7fELF runtime".to_vec(),
            modules(),
            b"listen = \"x\"\n".to_vec(),
        )
        .unwrap();
        assert_eq!(a, b);
        let (rt, cfg) = unpack_initrd(&a).unwrap();
        assert_eq!(rt, b"\x7fELF runtime");
        assert_eq!(cfg, b"listen = \"x\"\n");
        let names: Vec<String> = read_initrd(&a)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/configfs.ko",
                "proc",
                "sys",
                "etc",
                "etc/lucent",
                CONFIG_PATH
            ]
        );
        // One changed byte of the configuration changes the initrd.
        let c = write_initrd(
            b"\x7fELF runtime".to_vec(),
            modules(),
            b"listen = \"y\"\n".to_vec(),
        )
        .unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn bad_initrds_are_refused() {
        assert!(matches!(
            read_initrd(b"not gzip"),
            Err(AuditError::Image(_))
        ));
        let good = write_initrd(b"rt".to_vec(), Vec::new(), b"cfg".to_vec()).unwrap();
        assert!(matches!(
            read_initrd(&good[..good.len() / 2]),
            Err(AuditError::Image(_))
        ));
        // An archive without the configuration member.
        let only_runtime = archive_member(&runtime_entries(b"rt".to_vec(), Vec::new()), 1).unwrap();
        assert!(matches!(
            unpack_initrd(&only_runtime),
            Err(AuditError::Image(_))
        ));
    }
}
