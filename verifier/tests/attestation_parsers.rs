//! The fuzz targets' parsers on seeded random and mutated inputs, in the ordinary test run:
//! no panic, and nothing mutated verifies. (The `fuzz/` targets go further with cargo-fuzz.)

#[path = "attestation_support.rs"]
mod support;

use lucent_verifier::snp::{SnpCertChain, SnpReport, SnpTrust};
use lucent_verifier::tdx::{parse_collateral_json, parse_quote};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

fn mutate(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    match rng.gen_range(0..4) {
        0 => {
            for _ in 0..rng.gen_range(1..8) {
                if !out.is_empty() {
                    let i = rng.gen_range(0..out.len());
                    out[i] = rng.gen();
                }
            }
        }
        1 => out.truncate(rng.gen_range(0..=out.len())),
        2 => {
            let n = rng.gen_range(1..64);
            out.extend((0..n).map(|_| rng.gen::<u8>()));
        }
        _ => {
            let n = rng.gen_range(0..2048);
            out = (0..n).map(|_| rng.gen()).collect();
        }
    }
    out
}

#[test]
fn snp_parsers_never_panic() {
    let mut rng = StdRng::seed_from_u64(4);
    let ev = milan_vcek_evidence();
    let trust = SnpTrust::amd().dangerous_trust_simulated_root();
    let mut tried = 0;
    for _ in 0..2000 {
        let r = mutate(&mut rng, &ev.report);
        if let Ok(rep) = SnpReport::parse(&r) {
            let _ = rep.signature_be();
            let _ = rep.cpuid();
            let _ = rep.mit_vectors();
        }
        tried += 1;
    }
    for _ in 0..300 {
        let base = match rng.gen_range(0..3) {
            0 => &ev.certs.vek_der,
            1 => ev.certs.intermediate_der.as_ref().unwrap(),
            _ => ev.certs.ark_der.as_ref().unwrap(),
        };
        let der = mutate(&mut rng, base);
        let chain = SnpCertChain {
            vek_der: der.clone(),
            intermediate_der: ev.certs.intermediate_der.clone(),
            ark_der: None,
        };
        assert!(trust.verify_chain(&chain, &[&der], MILAN_NOW).is_err());
        tried += 1;
    }
    assert_eq!(tried, 2300);
}

#[test]
fn tdx_parsers_never_panic() {
    let mut rng = StdRng::seed_from_u64(5);
    let quote = tdx_quote();
    let json = tdx_collateral_json();
    for _ in 0..2000 {
        let _ = parse_quote(&mutate(&mut rng, &quote));
    }
    for _ in 0..300 {
        let _ = parse_collateral_json(&mutate(&mut rng, json));
    }
}
