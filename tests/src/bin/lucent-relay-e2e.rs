//! The `lucent-relay` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-relay-e2e`); the command itself is `lucent_relay::cli`.

fn main() -> std::process::ExitCode {
    lucent_relay::cli::main()
}
