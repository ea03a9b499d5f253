//! `lucent-auditor`: see [`lucent_auditor::cli`].

fn main() -> std::process::ExitCode {
    lucent_auditor::cli::main()
}
