//! `lucent-key-broker`: see [`lucent_key_broker::cli`].

fn main() -> std::process::ExitCode {
    lucent_key_broker::cli::main()
}
