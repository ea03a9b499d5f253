//! The `lucent-log-server` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-log-server-e2e`); the command itself is `lucent_log_server::cli`.

fn main() -> std::process::ExitCode {
    lucent_log_server::cli::main()
}
