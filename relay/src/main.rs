//! `lucent-relay`: see [`lucent_relay::cli`].

fn main() -> std::process::ExitCode {
    lucent_relay::cli::main()
}
