//! `lucent-log-server`: see [`lucent_log_server::cli`].

fn main() -> std::process::ExitCode {
    lucent_log_server::cli::main()
}
