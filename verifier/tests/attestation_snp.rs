//! SEV-SNP verification against real AMD vectors (tests/vectors/attestation, see README.md)
//! at their pinned times, and against the simulated TEE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "attestation_support.rs"]
mod support;

use lucent_verifier::simulated::{SimulatedReportRequest, SimulatedTee};
use lucent_verifier::snp::{
    verify_report_with_vek, verify_snp, Product, SnpCertChain, SnpError, SnpEvidence, SnpPolicy,
    SnpPolicyViolation, SnpTrust, TcbVersion, VekKind, ARK_GENOA_SHA256, ARK_MILAN_SHA256,
    ARK_SIMULATED_SHA256, ARK_TURIN_SHA256,
};
use lucent_verifier::trust::AmdCrls;
use sha2::{Digest, Sha256};
use support::*;

fn fp(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

#[test]
fn pinned_fingerprints_match_provenance() {
    // Values from PROVENANCE.json (research helper, checked with openssl), not from our code.
    let prov: serde_json::Value =
        serde_json::from_str(include_str!("vectors/attestation/PROVENANCE.json")).unwrap();
    let certs = &prov["trust_anchors"]["certs"];
    for (product, pinned) in [
        ("milan", ARK_MILAN_SHA256),
        ("genoa", ARK_GENOA_SHA256),
        ("turin", ARK_TURIN_SHA256),
    ] {
        let want = certs[format!("amd-roots/{product}/ark.pem")]["sha256_fingerprint"]
            .as_str()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        assert_eq!(hex::encode(pinned), want, "{product}");
        assert_eq!(
            fp(&amd_root(product, "ark")),
            pinned,
            "{product} vector ARK"
        );
    }
    assert_eq!(fp(simulated::ARK), ARK_SIMULATED_SHA256);
}

#[test]
fn milan_vcek_set_verifies_at_pinned_time() {
    let ev = milan_vcek_evidence();
    let got = verify_snp(&ev, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW)
        .expect("Milan VCEK set must verify");
    let exp = expected("vcek");
    assert_eq!(got.product, Product::Milan);
    assert_eq!(got.signing_key, VekKind::Vcek);
    assert_eq!(got.version, 2);
    assert_eq!(got.vmpl, 0);
    assert_eq!(
        got.measurement.to_vec(),
        hex_field(&exp, &["report", "measurement"])
    );
    assert_eq!(
        got.report_data.to_vec(),
        hex_field(&exp, &["report", "report_data"])
    );
    assert_eq!(
        got.chip_id.to_vec(),
        hex_field(&exp, &["report", "chip_id"])
    );
    let tcb = &exp["report"]["reported_tcb"];
    assert_eq!(
        got.reported_tcb,
        TcbVersion {
            fmc: None,
            bootloader: tcb["bootloader"].as_u64().unwrap() as u8,
            tee: tcb["tee"].as_u64().unwrap() as u8,
            snp: tcb["snp"].as_u64().unwrap() as u8,
            microcode: tcb["microcode"].as_u64().unwrap() as u8,
        }
    );
}

#[test]
fn milan_vcek_without_intermediate_uses_the_pinned_ask() {
    let mut ev = milan_vcek_evidence();
    ev.certs.intermediate_der = None;
    ev.certs.ark_der = None;
    verify_snp(&ev, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW).unwrap();
}

#[test]
fn milan_vcek_outside_validity_is_rejected() {
    let ev = milan_vcek_evidence();
    // One second before the VCEK's notBefore (2023-04-03T19:23:43Z).
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        1_680_549_822,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::CertificateNotYetValid {
                which: "VCEK",
                not_before: 1_680_549_823,
                ..
            }
        ),
        "{err}"
    );
    // One second after its notAfter (2030-04-03T19:23:43Z).
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        1_901_474_624,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::CertificateExpired {
                which: "VCEK",
                not_after: 1_901_474_623,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn vlek_set_fails_after_expiry_naming_the_vlek() {
    let ev = milan_vlek_evidence();
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        VLEK_EXPIRED_NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        SnpError::CertificateExpired {
            which: "VLEK",
            not_after: VLEK_NOT_AFTER,
            now: VLEK_EXPIRED_NOW as i64
        }
    );
    assert!(
        err.to_string().contains("VLEK certificate expired"),
        "{err}"
    );
}

#[test]
fn vlek_set_inside_validity_fails_default_policy_for_vmpl_1() {
    let ev = milan_vlek_evidence();
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        VLEK_VALID_NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        SnpError::Policy(SnpPolicyViolation::VmplNotAllowed { got: 1, want: 0 })
    );
    assert_eq!(err.to_string(), "policy: VMPL 1 not allowed (want 0)");
}

#[test]
fn vlek_set_signatures_are_good_under_a_policy_that_allows_it() {
    // Shows the VMPL failure above is the policy, not the chain: VMPL 1 allowed, and the
    // provisional firmware (current ucode 220 vs committed 219) permitted.
    let ev = milan_vlek_evidence();
    let policy = SnpPolicy {
        vmpl: 1,
        permit_provisional_firmware: true,
        ..SnpPolicy::default()
    };
    let got = verify_snp(&ev, &SnpTrust::amd(), &policy, &[], VLEK_VALID_NOW).unwrap();
    assert_eq!(got.signing_key, VekKind::Vlek);
    assert_eq!(got.version, 3);
    let exp = expected("vlek");
    assert_eq!(
        got.measurement.to_vec(),
        hex_field(&exp, &["report", "measurement"])
    );
    assert_eq!(got.reported_tcb.microcode, 217);
    assert_eq!(got.reported_tcb.snp, 24);
    // Without permitting provisional firmware, VMPL 1 allowed: that is the next failure.
    let policy = SnpPolicy {
        vmpl: 1,
        ..SnpPolicy::default()
    };
    let err = verify_snp(&ev, &SnpTrust::amd(), &policy, &[], VLEK_VALID_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::Policy(SnpPolicyViolation::ProvisionalFirmware { .. })
        ),
        "{err}"
    );
    // A policy that forbids VLEKs.
    let policy = SnpPolicy {
        vmpl: 1,
        permit_provisional_firmware: true,
        allow_vlek: false,
        ..SnpPolicy::default()
    };
    let err = verify_snp(&ev, &SnpTrust::amd(), &policy, &[], VLEK_VALID_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::Policy(SnpPolicyViolation::SigningKeyNotAllowed { .. })
        ),
        "{err}"
    );
}

#[test]
fn vlek_needs_its_asvk() {
    let mut ev = milan_vlek_evidence();
    ev.certs.intermediate_der = None;
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        VLEK_VALID_NOW,
    )
    .unwrap_err();
    assert_eq!(err, SnpError::MissingCertificate { which: "ASVK" });
    // An ASK in the ASVK's place is refused by kind.
    ev.certs.intermediate_der = Some(amd_root("milan", "ask"));
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        VLEK_VALID_NOW,
    )
    .unwrap_err();
    assert!(
        matches!(err, SnpError::UnexpectedCertificate { which: "ASVK", .. }),
        "{err}"
    );
}

#[test]
fn a_carried_root_other_than_the_pinned_one_is_rejected() {
    let mut ev = milan_vcek_evidence();
    ev.certs.ark_der = Some(amd_root("genoa", "ark"));
    let err = verify_snp(&ev, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::UntrustedRoot {
                product: Product::Milan,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_crl_applies_to_its_own_product_only_and_junk_is_an_error() {
    let ev = milan_vcek_evidence();
    // The simulated ARK's CRL says nothing about a Milan chain.
    verify_snp(
        &ev,
        &SnpTrust::amd(),
        &archived_policy(),
        &[simulated::CRL_EMPTY],
        MILAN_NOW,
    )
    .unwrap();
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &archived_policy(),
        &[&b"junk"[..]],
        MILAN_NOW,
    )
    .unwrap_err();
    assert!(matches!(err, SnpError::Crl { .. }), "{err}");
    // Loading it where the simulated ARK is not pinned names the reason.
    let err = SnpTrust::amd()
        .check_crl_issuer(simulated::CRL_EMPTY)
        .unwrap_err();
    assert!(err.to_string().contains("no pinned ARK"), "{err}");
}

/// A CRL file is read at load and again whenever it changes; what replaces it must be a CRL
/// of the same ARK, else the one in force stays.
#[test]
fn crl_files_are_checked_at_load_and_reread_when_they_change() {
    let trust = SnpTrust::amd().dangerous_trust_simulated_root();
    let dir = std::env::temp_dir().join(format!("lucent-crl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("simulated.crl");
    let name = path.to_str().unwrap().to_owned();
    let ev = sim_evidence();
    let check = |crls: &AmdCrls| {
        let now: Vec<_> = crls.current(&trust);
        let now: Vec<&[u8]> = now.iter().map(|c| &c[..]).collect();
        verify_snp(&ev, &trust, &SnpPolicy::default(), &now, SIM_NOW)
    };

    std::fs::write(&path, simulated::CRL_EMPTY).unwrap();
    let crls = AmdCrls::from_files(&trust, std::slice::from_ref(&name)).unwrap();
    assert_eq!(crls.products(), vec![Product::Simulated]);
    check(&crls).unwrap();

    // Refreshed in place: the revocation applies without reloading the settings.
    std::fs::write(&path, simulated::CRL_REVOKED_ASK).unwrap();
    assert!(matches!(
        check(&crls).unwrap_err(),
        SnpError::Revoked { which: "ASK", .. }
    ));
    // A broken refresh does not lift it.
    std::fs::write(&path, b"not a CRL").unwrap();
    assert!(matches!(
        check(&crls).unwrap_err(),
        SnpError::Revoked { which: "ASK", .. }
    ));

    // At load: junk, a missing file, a CRL of no pinned ARK, two for one product.
    let load_err = |trust: &SnpTrust, files: &[String]| {
        AmdCrls::from_files(trust, files).unwrap_err().to_string()
    };
    assert!(load_err(&trust, std::slice::from_ref(&name)).contains(&name));
    let missing = dir.join("missing.crl").to_str().unwrap().to_owned();
    assert!(load_err(&trust, std::slice::from_ref(&missing)).contains("missing.crl"));
    std::fs::write(&path, simulated::CRL_EMPTY).unwrap();
    assert!(load_err(&SnpTrust::amd(), std::slice::from_ref(&name)).contains("no pinned ARK"));
    assert!(load_err(&trust, &[name.clone(), name.clone()]).contains("a second CRL"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sim_evidence() -> SnpEvidence {
    SimulatedTee::new()
        .unwrap()
        .attest(&SimulatedReportRequest::new([0x42; 48], [0x17; 64]))
        .unwrap()
}

#[test]
fn simulated_evidence_is_rejected_by_default_with_a_clear_error() {
    let ev = sim_evidence();
    let err = verify_snp(&ev, &SnpTrust::amd(), &SnpPolicy::default(), &[], SIM_NOW).unwrap_err();
    assert_eq!(err, SnpError::SimulatedRootNotTrusted);
    assert!(err.to_string().contains("dangerous_trust_simulated_root"));
    // Also when the evidence leaves out the intermediate and root.
    let mut bare = ev.clone();
    bare.certs.intermediate_der = None;
    bare.certs.ark_der = None;
    let err = verify_snp(&bare, &SnpTrust::amd(), &SnpPolicy::default(), &[], SIM_NOW).unwrap_err();
    assert_eq!(err, SnpError::SimulatedRootNotTrusted);
    // A real chain carrying the simulated ARK is rejected for the same reason.
    let mut real = milan_vcek_evidence();
    real.certs.ark_der = Some(simulated::ARK.to_vec());
    let err = verify_snp(&real, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW).unwrap_err();
    assert_eq!(err, SnpError::SimulatedRootNotTrusted);
}

#[test]
fn simulated_evidence_verifies_when_dangerously_trusted() {
    let ev = sim_evidence();
    let trust = SnpTrust::amd().dangerous_trust_simulated_root();
    assert!(trust.trusts_simulated_root());
    let got = verify_snp(&ev, &trust, &SnpPolicy::default(), &[], SIM_NOW).unwrap();
    assert_eq!(got.product, Product::Simulated);
    assert_eq!(got.measurement, [0x42; 48]);
    assert_eq!(got.report_data, [0x17; 64]);
    assert_eq!(ev.report.len(), 1184);
    // Real trust still verifies real evidence.
    verify_snp(
        &milan_vcek_evidence(),
        &trust,
        &archived_policy(),
        &[],
        MILAN_NOW,
    )
    .unwrap();
}

#[test]
fn simulated_report_is_parsed_like_a_real_one_by_the_sev_crate() {
    // Cross-check of our report layout with an independent parser (virtee/sev).
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;
    let ev = sim_evidence();
    let parsed = AttestationReport::from_bytes(&ev.report).unwrap();
    assert_eq!(parsed.version, 3);
    assert_eq!(parsed.measurement, [0x42; 48]);
    assert_eq!(parsed.report_data, [0x17; 64]);
    assert_eq!(parsed.vmpl, 0);
    assert_eq!(parsed.reported_tcb.snp, 22);
    assert_eq!(parsed.reported_tcb.microcode, 213);
    assert_eq!(parsed.reported_tcb.bootloader, 7);
    assert_eq!(parsed.current.major, 1);
    assert_eq!(parsed.current.minor, 55);
    assert_eq!(parsed.current.build, 21);
}

#[test]
fn crls_signed_by_the_ark_are_applied() {
    let ev = sim_evidence();
    let trust = SnpTrust::amd().dangerous_trust_simulated_root();
    verify_snp(
        &ev,
        &trust,
        &SnpPolicy::default(),
        &[simulated::CRL_EMPTY],
        SIM_NOW,
    )
    .unwrap();
    let err = verify_snp(
        &ev,
        &trust,
        &SnpPolicy::default(),
        &[simulated::CRL_REVOKED_ASK],
        SIM_NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        SnpError::Revoked {
            which: "ASK",
            serial: "01".into()
        }
    );
    // A CRL whose signature was tampered with.
    let mut bad = simulated::CRL_EMPTY.to_vec();
    let n = bad.len();
    bad[n - 10] ^= 1;
    let err = verify_snp(&ev, &trust, &SnpPolicy::default(), &[&bad], SIM_NOW).unwrap_err();
    assert!(matches!(err, SnpError::Crl { .. }), "{err}");
    // A CRL before its thisUpdate (2026-11-26) is not current.
    let err = verify_snp(
        &ev,
        &trust,
        &SnpPolicy::default(),
        &[simulated::CRL_EMPTY],
        1_780_000_000,
    )
    .unwrap_err();
    assert!(matches!(err, SnpError::Crl { .. }), "{err}");
}

#[test]
fn the_cached_chain_path_matches_the_full_path() {
    let ev = milan_vcek_evidence();
    let vek = SnpTrust::amd()
        .verify_chain(&ev.certs, &[], MILAN_NOW)
        .unwrap();
    let cached = verify_report_with_vek(&vek, &ev.report, &archived_policy(), MILAN_NOW).unwrap();
    let full = verify_snp(&ev, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW).unwrap();
    assert_eq!(cached, full);
    // The cached chain still checks time.
    let err =
        verify_report_with_vek(&vek, &ev.report, &SnpPolicy::default(), 1_901_474_624).unwrap_err();
    assert!(matches!(err, SnpError::CertificateExpired { .. }), "{err}");
}

#[test]
fn unknown_products_and_garbage_never_panic() {
    // A version-3 report claiming a Venice CPUID (family 0x1A, model 0x50): the `sev` crate
    // would reach a panicking conversion; we parse by offsets and reject on the chain.
    let mut ev = milan_vlek_evidence();
    ev.report[0x188] = 0x1A;
    ev.report[0x189] = 0x50;
    let err = verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy::default(),
        &[],
        VLEK_VALID_NOW,
    )
    .unwrap_err();
    assert!(matches!(err, SnpError::BadReportSignature { .. }), "{err}");
    for len in [0usize, 1, 1183, 1185, 4096] {
        let ev = SnpEvidence {
            report: vec![0xAB; len],
            certs: SnpCertChain::default(),
        };
        let err =
            verify_snp(&ev, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW).unwrap_err();
        assert_eq!(err, SnpError::ReportLength { got: len });
    }
    let mut ev = milan_vcek_evidence();
    ev.certs.vek_der = vec![0x30, 0x82, 0xFF, 0xFF, 1, 2, 3];
    let err = verify_snp(&ev, &SnpTrust::amd(), &archived_policy(), &[], MILAN_NOW).unwrap_err();
    assert!(matches!(err, SnpError::CertificateParse { .. }), "{err}");
}

/// A genuine 2022 Milan report (SNP SPL 8, microcode SPL 115) on firmware from before
/// AMD-SB-3019's fix: its signature chain is good, and the default policy refuses it,
/// naming the component, the floor and the bulletin.
#[test]
fn a_genuine_report_below_amds_published_floor_is_refused_naming_it() {
    let ev = milan_vcek_evidence();
    let err = verify_snp(&ev, &SnpTrust::amd(), &SnpPolicy::default(), &[], MILAN_NOW).unwrap_err();
    assert_eq!(
        err,
        SnpError::Policy(SnpPolicyViolation::BelowFloor {
            which: "reported",
            component: "snp",
            got: 8,
            min: 0x18,
            product: Product::Milan,
            bulletin: "AMD-SB-3019, CVE-2024-56161",
        })
    );
    let text = err.to_string();
    assert!(
        text.contains("reported TCB snp SPL 8 is below Milan's floor 24 (AMD-SB-3019"),
        "{text}"
    );
    // The 2024 Milan VLEK report carries the fix (SNP SPL 24, microcode SPL 217 to 220):
    // the floors let it through to the policy's other checks.
    let vlek = SnpPolicy {
        vmpl: 1,
        permit_provisional_firmware: true,
        ..SnpPolicy::default()
    };
    verify_snp(
        &milan_vlek_evidence(),
        &SnpTrust::amd(),
        &vlek,
        &[],
        VLEK_VALID_NOW,
    )
    .expect("a report above the floors passes");
}

/// A chip allowlist admits the listed chips only.
#[test]
fn a_chip_outside_the_allowlist_is_refused() {
    let ev = milan_vcek_evidence();
    let chip = lucent_verifier::snp::SnpReport::parse(&ev.report)
        .unwrap()
        .chip_id();
    let with = |ids: Vec<[u8; 64]>| SnpPolicy {
        allowed_chip_ids: ids,
        ..archived_policy()
    };
    verify_snp(&ev, &SnpTrust::amd(), &with(vec![chip]), &[], MILAN_NOW).unwrap();
    let err = verify_snp(&ev, &SnpTrust::amd(), &with(vec![[7; 64]]), &[], MILAN_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::Policy(SnpPolicyViolation::ChipNotAllowed { allowed: 1, .. })
        ),
        "{err}"
    );
    // The configuration form: 128 hex digits per chip, anything else refused by name.
    let config = lucent_verifier::trust::PolicyConfig {
        snp_chip_ids: vec![hex::encode(chip)],
        snp_allow_smt: Some(false),
        ..Default::default()
    };
    let p = config.policy().unwrap();
    assert_eq!(p.snp.allowed_chip_ids, vec![chip]);
    assert!(!p.snp.allow_smt);
    let bad = lucent_verifier::trust::PolicyConfig {
        snp_chip_ids: vec!["abcd".into()],
        ..Default::default()
    };
    assert!(bad
        .policy()
        .unwrap_err()
        .to_string()
        .contains("128 hex digits"));
}
