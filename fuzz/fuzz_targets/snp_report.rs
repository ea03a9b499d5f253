//! Fuzzes the SEV-SNP report parser and the certificate-chain parser: any input must be
//! rejected or accepted without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::snp::{SnpCertChain, SnpReport, SnpTrust};

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = SnpReport::parse(data) {
        let _ = report.signature_be();
        let _ = report.cpuid();
        let _ = report.mit_vectors();
        let _ = report.signing_key();
        let _ = report.policy().abi();
        let _ = report.current_firmware();
    }
    // The same bytes as a VEK certificate, alone and with a pinned ASK's place taken.
    let chain = SnpCertChain {
        vek_der: data.to_vec(),
        intermediate_der: None,
        ark_der: None,
    };
    let _ = SnpTrust::amd()
        .dangerous_trust_simulated_root()
        .verify_chain(&chain, &[data], 1_800_000_000);
});
