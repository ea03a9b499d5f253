//! `lucent-gateway`: see [`lucent_gateway::cli`].

fn main() -> std::process::ExitCode {
    lucent_gateway::cli::main()
}
