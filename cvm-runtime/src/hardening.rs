//! Process hardening at start-up: no core dumps (they would write keys, weights and request
//! plaintext to disk) and no ptrace-style access from other processes of the same user.

/// Sets `RLIMIT_CORE` to 0 (soft and hard) and marks the process not dumpable
/// (`PR_SET_DUMPABLE` 0), which also keeps `/proc/<pid>/mem` from other same-user processes.
pub fn disable_core_dumps() -> std::io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_limit_is_zero_after() {
        // Run in a child process: the limit is per-process and cannot be raised again.
        if std::env::var_os("LUCENT_HARDENING_CHILD").is_some() {
            super::disable_core_dumps().expect("hardening");
            let lim = rustix::process::getrlimit(rustix::process::Resource::Core);
            assert_eq!(lim.current, Some(0));
            assert_eq!(lim.maximum, Some(0));
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let ok = std::process::Command::new(exe)
            .args(["--exact", "hardening::tests::core_limit_is_zero_after"])
            .env("LUCENT_HARDENING_CHILD", "1")
            .status()
            .expect("spawn")
            .success();
        assert!(ok);
    }
}
