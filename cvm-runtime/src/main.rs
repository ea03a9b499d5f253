//! `lucent-cvm-runtime`: see [`lucent_cvm_runtime::cli`].

fn main() -> std::process::ExitCode {
    lucent_cvm_runtime::cli::main()
}
