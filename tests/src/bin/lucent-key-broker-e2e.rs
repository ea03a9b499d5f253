//! The `lucent-key-broker` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-key-broker-e2e`); the command itself is `lucent_key_broker::cli`.

fn main() -> std::process::ExitCode {
    lucent_key_broker::cli::main()
}
