//! The `lucent-issuer` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-issuer-e2e`); the command itself is `lucent_issuer::cli`.

fn main() -> std::process::ExitCode {
    lucent_issuer::cli::main()
}
