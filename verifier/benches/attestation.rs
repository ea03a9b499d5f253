//! Attestation benchmarks, each beside the raw primitive it is built on, in the same run:
//! - SNP report with the chain cached vs one raw P-384 verification of the same bytes;
//! - SNP report with the full chain (ARK → ASK → VCEK, RSA-4096 PSS);
//! - TDX quote with cached (parsed) collateral vs one raw P-256 verification;
//! - the whole attestation bundle (when built).
//!
//! Run: `cargo bench -p lucent-verifier --bench attestation`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use lucent_verifier::snp::{
    verify_report_with_vek, verify_snp, SnpCertChain, SnpEvidence, SnpPolicy, SnpTrust,
};
use lucent_verifier::tdx::{parse_collateral_json, verify_tdx, TdxPolicy, TdxTrust};
use std::hint::black_box;

const MILAN_NOW: u64 = 1_735_689_600;
const TDX_NOW: u64 = 1_750_332_747;

fn milan() -> SnpEvidence {
    let report = hex::decode(
        include_str!("../tests/vectors/attestation/snp-milan-vcek-v2/report_milan.hex").trim(),
    )
    .unwrap();
    let chain: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(include_bytes!(
        "../tests/vectors/attestation/snp-milan-vcek-v2/cert_chain_milan"
    ))
    .map(|p| p.unwrap().contents)
    .collect();
    SnpEvidence {
        report,
        certs: SnpCertChain {
            vek_der: include_bytes!(
                "../tests/vectors/attestation/snp-milan-vcek-v2/vcek_milan.der"
            )
            .to_vec(),
            intermediate_der: Some(chain[0].clone()),
            ark_der: Some(chain[1].clone()),
        },
    }
}

fn snp(c: &mut Criterion) {
    let ev = milan();
    let trust = SnpTrust::amd();
    // The 2022 report predates AMD's current TCB floors (AMD-SB-3019); the floors cost one
    // comparison either way.
    let policy = SnpPolicy {
        tcb_floors: lucent_verifier::snp::TcbFloors::DANGEROUS_NONE,
        ..SnpPolicy::default()
    };
    let vek = trust.verify_chain(&ev.certs, &[], MILAN_NOW).unwrap();

    // The raw primitive: one ECDSA P-384/SHA-384 verification of the same 672 signed bytes.
    use p384::ecdsa::signature::Verifier;
    let (vk, sig) = {
        let (_, cert) = x509_parser::parse_x509_certificate(&ev.certs.vek_der).unwrap();
        let vk =
            p384::ecdsa::VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data)
                .unwrap();
        let mut r = [0u8; 48];
        let mut s = [0u8; 48];
        for i in 0..48 {
            r[i] = ev.report[0x2A0 + 47 - i];
            s[i] = ev.report[0x2A0 + 72 + 47 - i];
        }
        (vk, p384::ecdsa::Signature::from_scalars(r, s).unwrap())
    };
    vk.verify(&ev.report[..0x2A0], &sig).unwrap();

    // The same verification with ring (the backend the verifier uses).
    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_FIXED,
        vk.to_encoded_point(false).as_bytes().to_vec(),
    );
    let ring_sig = sig.to_bytes();
    ring_key.verify(&ev.report[..0x2A0], &ring_sig).unwrap();

    let mut g = c.benchmark_group("snp");
    g.bench_function("raw_p384_verify_rustcrypto", |b| {
        b.iter(|| {
            vk.verify(black_box(&ev.report[..0x2A0]), black_box(&sig))
                .unwrap()
        })
    });
    g.bench_function("raw_p384_verify_ring", |b| {
        b.iter(|| {
            ring_key
                .verify(black_box(&ev.report[..0x2A0]), black_box(&ring_sig))
                .unwrap()
        })
    });
    g.bench_function("report_chain_cached", |b| {
        b.iter(|| {
            verify_report_with_vek(black_box(&vek), black_box(&ev.report), &policy, MILAN_NOW)
                .unwrap()
        })
    });
    g.bench_function("report_full_chain", |b| {
        b.iter(|| verify_snp(black_box(&ev), &trust, &policy, &[], MILAN_NOW).unwrap())
    });
    g.finish();
}

fn tdx(c: &mut Criterion) {
    // The file pads the 4,936-byte quote with zeros, which verifiers refuse.
    let quote = &include_bytes!("../tests/vectors/attestation/tdx-v4-dcap/tdx_quote")[..4936];
    let collateral = parse_collateral_json(include_bytes!(
        "../tests/vectors/attestation/tdx-v4-dcap/tdx_quote_collateral.json"
    ))
    .unwrap();
    let trust = TdxTrust::intel();
    let policy = TdxPolicy::default();
    verify_tdx(quote, &collateral, &trust, &policy, TDX_NOW).unwrap();

    // The raw primitive: one ECDSA P-256/SHA-256 verification (the quote's own signature
    // over header + TD report, with the quote's attestation key).
    use p256::ecdsa::signature::Verifier;
    let signed = &quote[..48 + 584];
    let sig_at = 48 + 584 + 4;
    let sig = p256::ecdsa::Signature::from_slice(&quote[sig_at..sig_at + 64]).unwrap();
    let mut point = vec![0x04];
    point.extend_from_slice(&quote[sig_at + 64..sig_at + 128]);
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    vk.verify(signed, &sig).unwrap();

    let mut g = c.benchmark_group("tdx");
    g.bench_function("raw_p256_verify", |b| {
        b.iter(|| vk.verify(black_box(signed), black_box(&sig)).unwrap())
    });
    g.bench_function("quote_cached_collateral", |b| {
        b.iter(|| verify_tdx(black_box(quote), &collateral, &trust, &policy, TDX_NOW).unwrap())
    });
    g.finish();
}

fn bundle(c: &mut Criterion) {
    use lucent_verifier::binding::report_data;
    use lucent_verifier::bundle::{verify_bundle, Bundle, BundleEvidence, BundlePolicy};
    use lucent_verifier::checkpoint::{Checkpoint, LogKey};
    use lucent_verifier::cosignature::{WitnessPolicy, WitnessSigner};
    use lucent_verifier::merkle::MemoryTree;
    use lucent_verifier::note::{append_signatures, NoteSigner};
    use lucent_verifier::simulated::{SimulatedReportRequest, SimulatedTee};
    use lucent_verifier::statement::{Measurement, Platform, Release, Statement};
    use lucent_verifier::trust::TrustSettings;

    let now = 1_893_456_000;
    let log = NoteSigner::from_seed("log.lucent.test", &[1; 32]).unwrap();
    let operator = NoteSigner::from_seed("operator.lucent.test", &[2; 32]).unwrap();
    let witnesses: Vec<WitnessSigner> = (0..3u8)
        .map(|i| WitnessSigner::from_seed(&format!("w{i}.lucent.test"), &[10 + i; 32]).unwrap())
        .collect();
    let release = Release {
        version: "1.2.3".into(),
        ..Release::example(
            Measurement::new(Platform::SevSnp, &[0x6d; 48]).unwrap(),
            now + 86_400,
        )
    };
    let note = Statement::Release(release).sign(&operator).unwrap();
    let mut tree = MemoryTree::new();
    for i in 0..1000u32 {
        if i == 500 {
            tree.push_entry(&note);
        } else {
            tree.push_entry(format!("entry {i}").as_bytes());
        }
    }
    let cp = Checkpoint {
        origin: "log.lucent.test".into(),
        size: tree.size(),
        root: tree.root(),
        extension: String::new(),
    };
    let text = cp.to_text().unwrap();
    let cosigs: Vec<_> = witnesses[..2]
        .iter()
        .map(|w| w.cosign(&text, now))
        .collect();
    let key_config = b"bench key config".to_vec();
    let nonce = b"nonce".to_vec();
    let evidence = SimulatedTee::new()
        .unwrap()
        .attest(&SimulatedReportRequest::new(
            [0x6d; 48],
            report_data(&key_config, Some(&nonce)),
        ))
        .unwrap();
    let bundle = Bundle {
        evidence: BundleEvidence::Snp(evidence),
        key_config,
        release: note,
        inclusion: tree.prove_inclusion(500, 1000).unwrap(),
        checkpoint: append_signatures(&cp.sign(&log).unwrap(), &cosigs).unwrap(),
    };
    let encoded = bundle.encode().unwrap();
    let trust = TrustSettings {
        log: LogKey::new(log.verifier_key()),
        witnesses: WitnessPolicy::new(witnesses.iter().map(|w| w.witness_key()).collect(), 2)
            .unwrap(),
        operators: vec![operator.verifier_key()],
        snp: SnpTrust::amd().dangerous_trust_simulated_root(),
        tdx: TdxTrust::intel(),
        amd_crls: Default::default(),
        revoked: vec![],
    };
    let policy = BundlePolicy {
        nonce: Some(nonce),
        ..BundlePolicy::default()
    };
    verify_bundle(&bundle, &trust, &policy, None, now).unwrap();

    let mut g = c.benchmark_group("bundle");
    g.bench_function("decode_and_verify_snp_full_chain", |b| {
        b.iter(|| {
            let decoded = Bundle::decode(black_box(&encoded)).unwrap();
            verify_bundle(&decoded, &trust, &policy, None, now).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, snp, tdx, bundle);
criterion_main!(benches);
