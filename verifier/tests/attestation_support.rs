//! Shared loaders for the attestation tests: real vectors from `tests/vectors/attestation`
//! (see its README.md and PROVENANCE.json) and the simulated chain from `tests/data/simulated`.
//! (Also compiled alone as a test target with no tests: it is included by the other
//! attestation test files with `#[path]`.)
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use lucent_verifier::snp::{SnpCertChain, SnpEvidence};

/// 2025-01-01T00:00:00Z: inside the Milan VCEK set's validity.
pub const MILAN_NOW: u64 = 1_735_689_600;
/// 2025-06-01T00:00:00Z: inside the VLEK's validity (2024-12-10 .. 2025-12-10).
pub const VLEK_VALID_NOW: u64 = 1_748_736_000;
/// 2026-11-26T00:00:00Z: after the VLEK expired.
pub const VLEK_EXPIRED_NOW: u64 = 1_795_651_200;
/// VLEK notAfter, 2025-12-10T22:14:21Z, from the README (openssl output).
pub const VLEK_NOT_AFTER: i64 = 1_765_404_861;
/// The TDX set's pinned time (README: tested with now = 1750332747).
pub const TDX_NOW: u64 = 1_750_332_747;
/// 2030-01-01: inside the simulated chain (2024-01-01 .. 2049-12-31) and after its CRLs.
pub const SIM_NOW: u64 = 1_893_456_000;

pub fn pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| p.unwrap().contents)
        .collect()
}

pub fn pem_one(pem: &[u8]) -> Vec<u8> {
    pem_certs(pem).remove(0)
}

pub fn milan_vcek_evidence() -> SnpEvidence {
    let hex_text = include_str!("vectors/attestation/snp-milan-vcek-v2/report_milan.hex");
    let report = hex::decode(hex_text.trim()).unwrap();
    let chain = pem_certs(include_bytes!(
        "vectors/attestation/snp-milan-vcek-v2/cert_chain_milan"
    ));
    SnpEvidence {
        report,
        certs: SnpCertChain {
            vek_der: include_bytes!("vectors/attestation/snp-milan-vcek-v2/vcek_milan.der")
                .to_vec(),
            intermediate_der: Some(chain[0].clone()),
            ark_der: Some(chain[1].clone()),
        },
    }
}

/// The policy for the 2022 Milan VCEK report: strict, but without AMD's TCB floors, which it
/// predates (its SNP SPL is 8; AMD-SB-3019 asks for 24 on Milan).
#[allow(dead_code)]
pub fn archived_policy() -> lucent_verifier::snp::SnpPolicy {
    lucent_verifier::snp::SnpPolicy {
        tcb_floors: lucent_verifier::snp::TcbFloors::DANGEROUS_NONE,
        ..lucent_verifier::snp::SnpPolicy::default()
    }
}

pub fn milan_vlek_evidence() -> SnpEvidence {
    let chain = pem_certs(include_bytes!(
        "vectors/attestation/snp-milan-vlek-v3/ask_ark_milan_vlek.pem"
    ));
    SnpEvidence {
        report: include_bytes!("vectors/attestation/snp-milan-vlek-v3/test-vlek-report.bin")
            .to_vec(),
        certs: SnpCertChain {
            vek_der: include_bytes!("vectors/attestation/snp-milan-vlek-v3/test-vlek.der").to_vec(),
            intermediate_der: Some(chain[0].clone()),
            ark_der: Some(chain[1].clone()),
        },
    }
}

pub fn amd_root(product: &str, which: &str) -> Vec<u8> {
    let pem: &[u8] = match (product, which) {
        ("milan", "ark") => include_bytes!("vectors/attestation/amd-roots/milan/ark.pem"),
        ("milan", "ask") => include_bytes!("vectors/attestation/amd-roots/milan/ask.pem"),
        ("genoa", "ark") => include_bytes!("vectors/attestation/amd-roots/genoa/ark.pem"),
        ("genoa", "ask") => include_bytes!("vectors/attestation/amd-roots/genoa/ask.pem"),
        ("turin", "ark") => include_bytes!("vectors/attestation/amd-roots/turin/ark.pem"),
        ("turin", "ask") => include_bytes!("vectors/attestation/amd-roots/turin/ask.pem"),
        _ => panic!("no such root"),
    };
    pem_one(pem)
}

/// The quote file as published: the quote and 70 zero bytes after its end (the buffer it was
/// read into). Verifiers refuse the padding.
pub const TDX_QUOTE_FILE: &[u8] = include_bytes!("vectors/attestation/tdx-v4-dcap/tdx_quote");
/// The quote's own length (its signature data ends there).
pub const TDX_QUOTE_LEN: usize = 4936;

/// The TDX quote, without the file's zero padding.
pub fn tdx_quote() -> Vec<u8> {
    TDX_QUOTE_FILE[..TDX_QUOTE_LEN].to_vec()
}

pub fn tdx_collateral_json() -> &'static [u8] {
    include_bytes!("vectors/attestation/tdx-v4-dcap/tdx_quote_collateral.json")
}

pub fn expected(set: &str) -> serde_json::Value {
    let text: &str = match set {
        "vcek" => include_str!("vectors/attestation/snp-milan-vcek-v2/expected.json"),
        "vlek" => include_str!("vectors/attestation/snp-milan-vlek-v3/expected.json"),
        "tdx" => include_str!("vectors/attestation/tdx-v4-dcap/expected.json"),
        _ => panic!("no such set"),
    };
    serde_json::from_str(text).unwrap()
}

pub fn hex_field(v: &serde_json::Value, path: &[&str]) -> Vec<u8> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    hex::decode(cur.as_str().expect("hex string")).unwrap()
}

pub mod simulated {
    pub const ARK: &[u8] = include_bytes!("data/simulated/ark.der");
    pub const ASK: &[u8] = include_bytes!("data/simulated/ask.der");
    pub const VCEK: &[u8] = include_bytes!("data/simulated/vcek.der");
    pub const CRL_EMPTY: &[u8] = include_bytes!("data/simulated/crl-empty.der");
    pub const CRL_REVOKED_ASK: &[u8] = include_bytes!("data/simulated/crl-revoked-ask.der");
}
