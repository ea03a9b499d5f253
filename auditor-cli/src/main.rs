//! `lucent-auditor`: the auditor's and operator's command line.

fn main() {
    eprintln!("lucent-auditor: no commands yet; see the auditor-cli issue");
    std::process::exit(2);
}
