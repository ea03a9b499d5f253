//! The `lucent-gateway` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-gateway-e2e`); the command itself is `lucent_gateway::cli`.

fn main() -> std::process::ExitCode {
    lucent_gateway::cli::main()
}
