//! The `lucent-cvm-runtime` command, built into this package so that its tests can run it as a
//! real process (`CARGO_BIN_EXE_lucent-cvm-runtime-e2e`); the command itself is `lucent_cvm_runtime::cli`.

fn main() -> std::process::ExitCode {
    lucent_cvm_runtime::cli::main()
}
