//! The `lucent-auditor` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-auditor-e2e`); the command itself is `lucent_auditor::cli`.

fn main() -> std::process::ExitCode {
    lucent_auditor::cli::main()
}
