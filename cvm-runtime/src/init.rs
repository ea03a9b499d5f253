//! The runtime as the image's init process (PID 1).
//!
//! The CVM image (`lucent-auditor image build`) is a kernel and an initrd whose `/init` is this
//! binary and whose only other file is the measured configuration at [`IMAGE_CONFIG`]. When the
//! kernel starts it as PID 1 there is nothing else to set the machine up, so the runtime:
//! mounts `/proc`, `/sys`, `/dev` and configfs (where the SEV-SNP / TDX report interface
//! lives), reads [`IMAGE_CONFIG`] unless `--config` says otherwise, and powers the machine off
//! when it stops (PID 1 must never exit: the kernel would panic).

use std::path::Path;

/// Where the image puts the measured configuration.
pub const IMAGE_CONFIG: &str = "/etc/lucent/runtime.toml";

/// Whether this process is the init process.
pub fn is_init() -> bool {
    std::process::id() == 1
}

/// Mounts the pseudo-filesystems the runtime reads. A mount that fails is reported on the
/// console and skipped: the attester then says what it could not find.
pub fn mount_filesystems() {
    use rustix::mount::{mount, MountFlags};
    let nodev = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    let mounts: [(&str, &str, &str, MountFlags); 4] = [
        ("proc", "/proc", "proc", nodev),
        ("sysfs", "/sys", "sysfs", nodev),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MountFlags::NOSUID | MountFlags::NOEXEC,
        ),
        ("configfs", "/sys/kernel/config", "configfs", nodev),
    ];
    for (source, target, fstype, flags) in mounts {
        if let Err(e) = std::fs::create_dir_all(target) {
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
