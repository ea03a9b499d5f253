//! `lucent-issuer`: see [`lucent_issuer::cli`].

fn main() -> std::process::ExitCode {
    lucent_issuer::cli::main()
}
