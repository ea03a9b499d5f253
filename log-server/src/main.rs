//! `lucent-log-server`: placeholder until the log-server issue lands.

fn main() {
    eprintln!("lucent-log-server: not built yet");
    std::process::exit(2);
}
