//! The runtime as the image's init process (PID 1).
//!
//! The CVM image (`lucent-auditor image build`) is a kernel and an initrd whose `/init` is this
//! binary, beside the measured configuration at [`IMAGE_CONFIG`] and the kernel modules the
//! attesters need in [`MODULES_DIR`] (the kernel's packaged `configfs` and `sev-guest`). When
//! the kernel starts it as PID 1 there is nothing else to set the machine up, so the runtime:
//! mounts `/proc`, `/sys` and `/dev`, loads those modules, mounts configfs (where the SEV-SNP /
//! TDX report interface lives), reads [`IMAGE_CONFIG`] unless `--config` says otherwise, and
//! powers the machine off when it stops (PID 1 must never exit: the kernel would panic).

use std::path::Path;

/// Where the image puts the measured configuration.
pub const IMAGE_CONFIG: &str = "/etc/lucent/runtime.toml";
/// Where the image puts kernel modules, loaded in name order.
pub const MODULES_DIR: &str = "/lib/modules";

/// Whether this process is the init process.
pub fn is_init() -> bool {
    std::process::id() == 1
}

/// Sets the machine up for the runtime: mounts `/proc`, `/sys` and `/dev`, loads the
/// image's kernel modules, then mounts configfs. What fails is reported on the console and
/// skipped: the attester then says what it could not find.
pub fn set_up() {
    use rustix::mount::MountFlags;
    let nodev = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    let nosuid_noexec = MountFlags::NOSUID | MountFlags::NOEXEC;
    mount_all(&[
        ("proc", "/proc", "proc", nodev),
        ("sysfs", "/sys", "sysfs", nodev),
        ("devtmpfs", "/dev", "devtmpfs", nosuid_noexec),
    ]);
    load_modules(Path::new(MODULES_DIR));
    mount_all(&[("configfs", "/sys/kernel/config", "configfs", nodev)]);
}

/// Loads every `*.ko` in `dir`, in name order, and says on the console what each did.
fn load_modules(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ko"))
        .collect();
    files.sort();
    for f in files {
        let name = f.display();
        match std::fs::read(&f) {
            Ok(image) => match rustix::system::init_module(&image, c"") {
                Ok(()) => eprintln!("lucent-cvm-runtime: loaded kernel module {name}"),
                Err(e) => eprintln!("lucent-cvm-runtime: kernel module {name}: {e}"),
            },
            Err(e) => eprintln!("lucent-cvm-runtime: reading {name}: {e}"),
        }
    }
}

fn mount_all(mounts: &[(&str, &str, &str, rustix::mount::MountFlags)]) {
    use rustix::mount::mount;
    for &(source, target, fstype, flags) in mounts {
        if target.starts_with("/sys/") {
            // Only the kernel makes directories in sysfs: /sys/kernel/config exists when the
            // kernel has configfs (built in, or its module loaded).
            if !Path::new(target).is_dir() {
                eprintln!("lucent-cvm-runtime: no {target}: this kernel has no {fstype}");
                continue;
            }
        } else if let Err(e) = std::fs::create_dir_all(target) {
            eprintln!("lucent-cvm-runtime: creating {target}: {e}");
            continue;
        }
        match mount(source, Path::new(target), fstype, flags, None) {
            Ok(()) => {}
            // devtmpfs may already be mounted by the kernel.
            Err(rustix::io::Errno::BUSY) => {}
            Err(e) => eprintln!("lucent-cvm-runtime: mounting {fstype} on {target}: {e}"),
        }
    }
}

/// Flushes and powers the machine off; never returns.
pub fn power_off() -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    rustix::fs::sync();
    if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::PowerOff) {
        eprintln!("lucent-cvm-runtime: power off: {e}");
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
