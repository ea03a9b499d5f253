//! Negative tests by mutation: every byte of each real report's signed area flipped, every
//! certificate swapped, every policy field pushed out of bounds. Each test counts the
//! variants it tried and asserts that none passed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "attestation_support.rs"]
mod support;

use lucent_verifier::simulated::{
    SimulatedReportRequest, SimulatedTee, SIMULATED_CHIP_ID, SIMULATED_TCB,
};
use lucent_verifier::snp::{
    verify_report_with_vek, verify_snp, FirmwareVersion, SnpError, SnpEvidence, SnpPolicy,
    SnpPolicyViolation, SnpTrust, TcbVersion, SIGNED_LEN,
};
use lucent_verifier::tdx::{parse_collateral_json, verify_tdx, TdxPolicy, TdxTrust};
use support::*;

const MASKS: [u8; 3] = [0x01, 0x80, 0xFF];

/// Flips every byte of the signed area (and the signature) with each mask; counts rejections.
fn flip_all(ev: &SnpEvidence, trust: &SnpTrust, policy: &SnpPolicy, now: u64) -> usize {
    let vek = trust.verify_chain(&ev.certs, &[], now).unwrap();
    verify_report_with_vek(&vek, &ev.report, policy, now).expect("unmutated report must pass");
    let mut tried = 0;
    // Signed area 0x000..0x2A0, then the r and s fields (0x2A0..0x330).
    for i in 0..SIGNED_LEN + 144 {
        for mask in MASKS {
            let mut report = ev.report.clone();
            report[i] ^= mask;
            let res = verify_report_with_vek(&vek, &report, policy, now);
            assert!(res.is_err(), "byte {i:#x} ^ {mask:#x} passed");
            tried += 1;
        }
    }
    tried
}

#[test]
fn every_signed_byte_flipped_is_rejected() {
    let amd = SnpTrust::amd();
    let mut tried = 0;
    tried += flip_all(&milan_vcek_evidence(), &amd, &archived_policy(), MILAN_NOW);
    let vlek_policy = SnpPolicy {
        vmpl: 1,
        permit_provisional_firmware: true,
        ..SnpPolicy::default()
    };
    tried += flip_all(&milan_vlek_evidence(), &amd, &vlek_policy, VLEK_VALID_NOW);
    let sim = SimulatedTee::new()
        .unwrap()
        .attest(&SimulatedReportRequest::new([3; 48], [4; 64]))
        .unwrap();
    let sim_trust = SnpTrust::amd().dangerous_trust_simulated_root();
    tried += flip_all(&sim, &sim_trust, &SnpPolicy::default(), SIM_NOW);
    println!("report byte flips tried: {tried}, passed: 0");
    assert_eq!(tried, 3 * (SIGNED_LEN + 144) * MASKS.len());
    assert!(tried >= 7000);
}

#[test]
fn every_certificate_swapped_is_rejected() {
    let amd = SnpTrust::amd();
    let sim_trust = SnpTrust::amd().dangerous_trust_simulated_root();
    let vcek = milan_vcek_evidence();
    let vlek = milan_vlek_evidence();
    let pool: Vec<(&str, Vec<u8>)> = vec![
        ("milan VCEK", vcek.certs.vek_der.clone()),
        ("milan VLEK", vlek.certs.vek_der.clone()),
        ("milan ASK", amd_root("milan", "ask")),
        ("milan ASVK", vlek.certs.intermediate_der.clone().unwrap()),
        ("milan ARK", amd_root("milan", "ark")),
        ("genoa ASK", amd_root("genoa", "ask")),
        ("genoa ARK", amd_root("genoa", "ark")),
        ("turin ASK", amd_root("turin", "ask")),
        ("turin ARK", amd_root("turin", "ark")),
        ("sim VCEK", simulated::VCEK.to_vec()),
        ("sim ASK", simulated::ASK.to_vec()),
        ("sim ARK", simulated::ARK.to_vec()),
        ("empty", vec![]),
        ("garbage", vec![0x30, 0x03, 0x02, 0x01, 0x00]),
    ];
    let sim = SimulatedTee::new()
        .unwrap()
        .attest(&SimulatedReportRequest::new([3; 48], [4; 64]))
        .unwrap();
    let vlek_policy = SnpPolicy {
        vmpl: 1,
        permit_provisional_firmware: true,
        ..SnpPolicy::default()
    };
    let default_policy = SnpPolicy::default();
    let archived = archived_policy();
    let sets: Vec<(&str, SnpEvidence, &SnpTrust, &SnpPolicy, u64)> = vec![
        ("vcek", vcek.clone(), &amd, &archived, MILAN_NOW),
        ("vlek", vlek.clone(), &amd, &vlek_policy, VLEK_VALID_NOW),
        ("sim", sim.clone(), &sim_trust, &default_policy, SIM_NOW),
    ];
    let mut tried = 0;
    for (name, ev, trust, policy, now) in &sets {
        verify_snp(ev, trust, policy, &[], *now).expect("unmutated set must pass");
        for slot in 0..3 {
            for (what, der) in &pool {
                let mut m = ev.clone();
                let current = match slot {
                    0 => &mut m.certs.vek_der,
                    1 => m.certs.intermediate_der.as_mut().unwrap(),
                    _ => m.certs.ark_der.as_mut().unwrap(),
                };
                if current == der {
                    continue; // not a swap
                }
                *current = der.clone();
                let res = verify_snp(&m, trust, policy, &[], *now);
                assert!(res.is_err(), "{name}: slot {slot} <- {what} passed");
                tried += 1;
            }
        }
        // Reports swapped between sets (each report under another set's chain).
        for (other, oev, ..) in &sets {
            if other == name {
                continue;
            }
            let mut m = ev.clone();
            m.report = oev.report.clone();
            assert!(
                verify_snp(&m, trust, policy, &[], *now).is_err(),
                "{name} <- {other} report"
            );
            tried += 1;
        }
    }
    println!("certificate swaps tried: {tried}, passed: 0");
    assert!(tried >= 100, "{tried}");
}

/// Simulated reports with one field out of bounds (validly signed), and the policy fields
/// pushed above what real reports carry.
#[test]
fn every_policy_field_out_of_bounds_is_rejected() {
    let tee = SimulatedTee::new().unwrap();
    let trust = SnpTrust::amd().dangerous_trust_simulated_root();
    let base = SimulatedReportRequest::new([5; 48], [6; 64]);
    let run = |req: &SimulatedReportRequest, policy: &SnpPolicy| {
        verify_snp(&tee.attest(req).unwrap(), &trust, policy, &[], SIM_NOW)
    };
    run(&base, &SnpPolicy::default()).expect("base passes");
    let mut tried = 0;
    let mut expect = |req: SimulatedReportRequest,
                      policy: SnpPolicy,
                      ok: &dyn Fn(&SnpError) -> bool,
                      what: &str| {
        let err = run(&req, &policy).expect_err(what);
        assert!(ok(&err), "{what}: unexpected {err}");
        tried += 1;
    };
    let d = SnpPolicy::default;
    use SnpPolicyViolation as V;
    let pol = |e: &SnpError| -> Option<V> {
        match e {
            SnpError::Policy(v) => Some(v.clone()),
            _ => None,
        }
    };

    for vmpl in 1..=3 {
        expect(
            SimulatedReportRequest {
                vmpl,
                ..base.clone()
            },
            d(),
            &|e| pol(e) == Some(V::VmplNotAllowed { got: vmpl, want: 0 }),
            "vmpl",
        );
    }
    expect(
        SimulatedReportRequest {
            guest_policy: 0x30000 | 1 << 19,
            ..base.clone()
        },
        d(),
        &|e| matches!(pol(e), Some(V::DebugAllowed { .. })),
        "debug",
    );
    expect(
        SimulatedReportRequest {
            guest_policy: 0x30000 | 1 << 18,
            ..base.clone()
        },
        d(),
        &|e| matches!(pol(e), Some(V::MigrationAgentAllowed { .. })),
        "migrate_ma",
    );
    expect(
        base.clone(),
        SnpPolicy {
            allow_smt: false,
            ..d()
        },
        &|e| matches!(pol(e), Some(V::SmtAllowed { .. })),
        "smt",
    );
    expect(
        base.clone(),
        SnpPolicy {
            min_abi: (1, 0),
            ..d()
        },
        &|e| matches!(pol(e), Some(V::AbiTooOld { .. })),
        "abi",
    );
    for version in [0u32, 1, 6, 7, u32::MAX] {
        expect(
            SimulatedReportRequest {
                version,
                ..base.clone()
            },
            d(),
            &|e| matches!(e, SnpError::UnsupportedReportVersion { .. }),
            "version",
        );
    }
    expect(
        base.clone(),
        SnpPolicy {
            min_report_version: 4,
            ..d()
        },
        &|e| matches!(pol(e), Some(V::ReportVersionNotAllowed { got: 3, .. })),
        "min version",
    );
    expect(
        base.clone(),
        SnpPolicy {
            max_report_version: 2,
            ..d()
        },
        &|e| matches!(pol(e), Some(V::ReportVersionNotAllowed { got: 3, .. })),
        "max version",
    );
    for signature_algo in [0u32, 2, 0xFFFF_FFFF] {
        expect(
            SimulatedReportRequest {
                signature_algo,
                ..base.clone()
            },
            d(),
            &|e| matches!(e, SnpError::UnsupportedSignatureAlgorithm { .. }),
            "sig algo",
        );
    }
    for signing_key in [1u8, 2, 7] {
        expect(
            SimulatedReportRequest {
                signing_key,
                ..base.clone()
            },
            d(),
            &|e| matches!(e, SnpError::SigningKeyMismatch { .. }),
            "signing key",
        );
    }
    // REPORTED_TCB must equal the VCEK's: each component one up and one down.
    for (i, delta) in (0..4).flat_map(|i| [(i, 1i16), (i, -1)]) {
        let mut t = SIMULATED_TCB;
        let c = match i {
            0 => &mut t.bootloader,
            1 => &mut t.tee,
            2 => &mut t.snp,
            _ => &mut t.microcode,
        };
        *c = (*c as i16 + delta).rem_euclid(256) as u8;
        expect(
            SimulatedReportRequest {
                reported_tcb: t,
                ..base.clone()
            },
            d(),
            &|e| matches!(e, SnpError::TcbMismatch { .. }),
            "reported tcb vs cert",
        );
    }
    // Minimum TCBs: each of the four, each component one above the report.
    let above = |component: usize| {
        let mut t = TcbVersion::default();
        match component {
            0 => t.bootloader = SIMULATED_TCB.bootloader + 1,
            1 => t.tee = SIMULATED_TCB.tee + 1,
            2 => t.snp = SIMULATED_TCB.snp + 1,
            _ => t.microcode = SIMULATED_TCB.microcode + 1,
        }
        t
    };
    for component in 0..4 {
        for which in ["reported", "committed", "launch", "current"] {
            let mut p = d();
            match which {
                "reported" => p.min_reported_tcb = above(component),
                "committed" => p.min_committed_tcb = above(component),
                "launch" => p.min_launch_tcb = above(component),
                _ => p.min_current_tcb = above(component),
            }
            expect(
                base.clone(),
                p,
                &|e| matches!(pol(e), Some(V::TcbTooLow { which: w, .. }) if w == which),
                which,
            );
        }
    }
    // Low launch / committed / current TCBs in the report against a policy at the VCEK's.
    let at_vcek = SnpPolicy {
        min_committed_tcb: SIMULATED_TCB,
        min_launch_tcb: SIMULATED_TCB,
        min_current_tcb: SIMULATED_TCB,
        permit_provisional_firmware: true,
        ..d()
    };
    let low = TcbVersion {
        snp: SIMULATED_TCB.snp - 1,
        ..SIMULATED_TCB
    };
    expect(
        SimulatedReportRequest {
            launch_tcb: low,
            ..base.clone()
        },
        at_vcek.clone(),
        &|e| {
            matches!(
                pol(e),
                Some(V::TcbTooLow {
                    which: "launch",
                    ..
                })
            )
        },
        "launch low",
    );
    expect(
        SimulatedReportRequest {
            committed_tcb: low,
            ..base.clone()
        },
        at_vcek.clone(),
        &|e| {
            matches!(
                pol(e),
                Some(V::TcbTooLow {
                    which: "committed",
                    ..
                })
            )
        },
        "committed low",
    );
    expect(
        SimulatedReportRequest {
            current_tcb: low,
            ..base.clone()
        },
        at_vcek,
        &|e| {
            matches!(
                pol(e),
                Some(V::TcbTooLow {
                    which: "current",
                    ..
                })
            )
        },
        "current low",
    );
    for min in [
        FirmwareVersion {
            major: 2,
            minor: 0,
            build: 0,
        },
        FirmwareVersion {
            major: 1,
            minor: 56,
            build: 0,
        },
        FirmwareVersion {
            major: 1,
            minor: 55,
            build: 22,
        },
    ] {
        expect(
            base.clone(),
            SnpPolicy {
                min_firmware: min,
                ..d()
            },
            &|e| matches!(pol(e), Some(V::FirmwareTooOld { .. })),
            "firmware",
        );
    }
    expect(
        SimulatedReportRequest {
            committed_firmware: (1, 55, 20),
            ..base.clone()
        },
        d(),
        &|e| matches!(pol(e), Some(V::ProvisionalFirmware { .. })),
        "provisional fw",
    );
    expect(
        SimulatedReportRequest {
            current_tcb: TcbVersion {
                microcode: 214,
                ..SIMULATED_TCB
            },
            ..base.clone()
        },
        d(),
        &|e| matches!(pol(e), Some(V::ProvisionalFirmware { .. })),
        "provisional tcb",
    );
    expect(
        base.clone(),
        SnpPolicy {
            host_data: Some([1; 32]),
            ..d()
        },
        &|e| matches!(pol(e), Some(V::HostDataMismatch { .. })),
        "host data",
    );
    expect(
        SimulatedReportRequest {
            host_data: [9; 32],
            ..base.clone()
        },
        SnpPolicy {
            host_data: Some([0; 32]),
            ..d()
        },
        &|e| matches!(pol(e), Some(V::HostDataMismatch { .. })),
        "host data 2",
    );
    expect(
        base.clone(),
        SnpPolicy {
            min_guest_svn: 1,
            ..d()
        },
        &|e| matches!(pol(e), Some(V::GuestSvnTooLow { .. })),
        "svn",
    );
    expect(
        base.clone(),
        SnpPolicy {
            family_id: Some([1; 16]),
            ..d()
        },
        &|e| {
            matches!(
                pol(e),
                Some(V::FieldMismatch {
                    field: "family ID",
                    ..
                })
            )
        },
        "family",
    );
    expect(
        base.clone(),
        SnpPolicy {
            image_id: Some([1; 16]),
            ..d()
        },
        &|e| {
            matches!(
                pol(e),
                Some(V::FieldMismatch {
                    field: "image ID",
                    ..
                })
            )
        },
        "image",
    );
    expect(
        base.clone(),
        SnpPolicy {
            id_key_digest: Some([1; 48]),
            ..d()
        },
        &|e| {
            matches!(
                pol(e),
                Some(V::FieldMismatch {
                    field: "ID key digest",
                    ..
                })
            )
        },
        "id key",
    );
    expect(
        base.clone(),
        SnpPolicy {
            author_key_digest: Some([1; 48]),
            ..d()
        },
        &|e| {
            matches!(
                pol(e),
                Some(V::FieldMismatch {
                    field: "author key digest",
                    ..
                })
            )
        },
        "author key",
    );
    expect(
        SimulatedReportRequest {
            mask_chip_key: true,
            ..base.clone()
        },
        d(),
        &|e| pol(e) == Some(V::ChipIdMasked),
        "masked chip",
    );
    for i in [0usize, 31, 63] {
        let mut chip = SIMULATED_CHIP_ID;
        chip[i] ^= 0x10;
        expect(
            SimulatedReportRequest {
                chip_id: chip,
                ..base.clone()
            },
            d(),
            &|e| matches!(e, SnpError::ChipIdMismatch { .. }),
            "chip id",
        );
    }
    // Relaxing the policy where it allows makes those pass (the checks are not always-fail).
    run(
        &SimulatedReportRequest {
            vmpl: 2,
            ..base.clone()
        },
        &SnpPolicy { vmpl: 2, ..d() },
    )
    .unwrap();
    run(
        &SimulatedReportRequest {
            guest_policy: 0x30000 | 1 << 19,
            ..base.clone()
        },
        &SnpPolicy {
            allow_debug: true,
            ..d()
        },
    )
    .unwrap();
    run(
        &SimulatedReportRequest {
            mask_chip_key: true,
            ..base.clone()
        },
        &SnpPolicy {
            allow_masked_chip_id: true,
            ..d()
        },
    )
    .unwrap();

    // Real Milan report (from before AMD's current floors, so without them): every policy
    // minimum pushed one above the report's value.
    let ev = milan_vcek_evidence();
    let real_tcb = TcbVersion {
        fmc: None,
        bootloader: 3,
        tee: 0,
        snp: 8,
        microcode: 115,
    };
    verify_snp(
        &ev,
        &SnpTrust::amd(),
        &SnpPolicy {
            min_reported_tcb: real_tcb,
            min_committed_tcb: real_tcb,
            min_launch_tcb: real_tcb,
            min_current_tcb: real_tcb,
            ..archived_policy()
        },
        &[],
        MILAN_NOW,
    )
    .unwrap();
    for component in 0..4 {
        let mut t = real_tcb;
        match component {
            0 => t.bootloader += 1,
            1 => t.tee += 1,
            2 => t.snp += 1,
            _ => t.microcode += 1,
        }
        for which in 0..4 {
            let mut p = archived_policy();
            match which {
                0 => p.min_reported_tcb = t,
                1 => p.min_committed_tcb = t,
                2 => p.min_launch_tcb = t,
                _ => p.min_current_tcb = t,
            }
            let err = verify_snp(&ev, &SnpTrust::amd(), &p, &[], MILAN_NOW).unwrap_err();
            assert!(matches!(pol(&err), Some(V::TcbTooLow { .. })), "{err}");
            tried += 1;
        }
    }
    for p in [
        SnpPolicy {
            vmpl: 1,
            ..archived_policy()
        },
        SnpPolicy {
            min_report_version: 3,
            ..archived_policy()
        },
        SnpPolicy {
            min_guest_svn: 1,
            ..archived_policy()
        },
        SnpPolicy {
            host_data: Some([1; 32]),
            ..archived_policy()
        },
        SnpPolicy {
            allow_smt: false,
            ..archived_policy()
        },
        SnpPolicy {
            signature_algorithm: 2,
            ..archived_policy()
        },
        SnpPolicy {
            min_firmware: FirmwareVersion {
                major: 255,
                minor: 0,
                build: 0,
            },
            ..archived_policy()
        },
    ] {
        assert!(
            verify_snp(&ev, &SnpTrust::amd(), &p, &[], MILAN_NOW).is_err(),
            "{p:?}"
        );
        tried += 1;
    }
    println!("policy variants tried: {tried}, passed: 0");
    assert!(tried >= 70, "{tried}");
}

#[test]
fn every_tdx_signed_byte_flipped_is_rejected() {
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let quote = tdx_quote();
    let trust = TdxTrust::intel();
    let policy = TdxPolicy::default();
    verify_tdx(&quote, &collateral, &trust, &policy, TDX_NOW).expect("unmutated quote passes");
    // v4: the 48-byte header and 584-byte TD report are signed by the attestation key; then
    // come the signature data length (4, unsigned: Intel allows padding after the auth data,
    // so it is not checked here), the signature (64), the attestation key (64), the
    // certification data type and size (6, unsigned framing), the QE report (384, signed by
    // the PCK key) and its signature (64).
    let signed_ranges = [0..632, 636..764, 770..770 + 384 + 64];
    let mut tried = 0;
    for i in signed_ranges.into_iter().flatten() {
        for mask in [0x01u8, 0xFF] {
            let mut q = quote.clone();
            q[i] ^= mask;
            assert!(
                verify_tdx(&q, &collateral, &trust, &policy, TDX_NOW).is_err(),
                "byte {i} ^ {mask:#x} passed"
            );
            tried += 1;
        }
    }
    println!("TDX quote byte flips tried: {tried}, passed: 0");
    assert_eq!(tried, (632 + 128 + 448) * 2);
}

#[test]
fn every_tdx_policy_field_and_collateral_swap_is_rejected() {
    use lucent_verifier::tdx::TdxTcbStatus as S;
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let quote = tdx_quote();
    let trust = TdxTrust::intel();
    let good = verify_tdx(&quote, &collateral, &trust, &TdxPolicy::default(), TDX_NOW).unwrap();
    let mut tried = 0;
    // Every accepted-status list without UpToDate (the quote's status).
    for status in [
        S::SwHardeningNeeded,
        S::ConfigurationNeeded,
        S::ConfigurationAndSwHardeningNeeded,
        S::OutOfDate,
        S::OutOfDateConfigurationNeeded,
        S::TdRelaunchAdvised,
        S::TdRelaunchAdvisedConfigurationNeeded,
        S::Revoked,
        S::Unknown,
    ] {
        let policy = TdxPolicy {
            allowed_tcb_statuses: vec![status],
            ..TdxPolicy::default()
        };
        assert!(
            verify_tdx(&quote, &collateral, &trust, &policy, TDX_NOW).is_err(),
            "{status}"
        );
        tried += 1;
    }
    // Every byte of every required field differing from the quote's.
    for i in 0..48 {
        let flip = |mut v: [u8; 48]| {
            v[i] ^= 0x01;
            Some(v)
        };
        for policy in [
            TdxPolicy {
                mr_seam: flip(good.mr_seam),
                ..TdxPolicy::default()
            },
            TdxPolicy {
                mr_config_id: flip(good.mr_config_id),
                ..TdxPolicy::default()
            },
            TdxPolicy {
                mr_owner: flip(good.mr_owner),
                ..TdxPolicy::default()
            },
            TdxPolicy {
                mr_owner_config: flip(good.mr_owner_config),
                ..TdxPolicy::default()
            },
        ] {
            assert!(verify_tdx(&quote, &collateral, &trust, &policy, TDX_NOW).is_err());
            tried += 1;
        }
    }
    for i in 0..8 {
        let mut xfam = good.xfam;
        xfam[i] ^= 0x01;
        let policy = TdxPolicy {
            xfam: Some(xfam),
            ..TdxPolicy::default()
        };
        assert!(verify_tdx(&quote, &collateral, &trust, &policy, TDX_NOW).is_err());
        tried += 1;
    }
    // Collateral pieces swapped with each other.
    let c = &collateral;
    let swaps = vec![
        ("tcb_info <- qe_identity", {
            let mut m = c.clone();
            m.tcb_info = c.qe_identity.clone();
            m
        }),
        ("qe_identity <- tcb_info", {
            let mut m = c.clone();
            m.qe_identity = c.tcb_info.clone();
            m
        }),
        ("tcb sig <- qe sig", {
            let mut m = c.clone();
            m.tcb_info_signature = c.qe_identity_signature.clone();
            m
        }),
        ("qe sig <- tcb sig", {
            let mut m = c.clone();
            m.qe_identity_signature = c.tcb_info_signature.clone();
            m
        }),
        ("root crl <- pck crl", {
            let mut m = c.clone();
            m.root_ca_crl = c.pck_crl.clone();
            m
        }),
        ("pck crl <- root crl", {
            let mut m = c.clone();
            m.pck_crl = c.root_ca_crl.clone();
            m
        }),
        ("tcb chain <- pck crl chain", {
            let mut m = c.clone();
            m.tcb_info_issuer_chain = c.pck_crl_issuer_chain.clone();
            m
        }),
        ("qe chain <- pck crl chain", {
            let mut m = c.clone();
            m.qe_identity_issuer_chain = c.pck_crl_issuer_chain.clone();
            m
        }),
        // (`pck_crl_issuer_chain` is not swapped: dcap-qvl checks the PCK CRL's signature
        // against the issuer on the validated PCK path, so that field is not used.)
    ];
    for (what, m) in swaps {
        assert!(
            verify_tdx(&quote, &m, &trust, &TdxPolicy::default(), TDX_NOW).is_err(),
            "{what}"
        );
        tried += 1;
    }
    println!("TDX policy variants and collateral swaps tried: {tried}, passed: 0");
    assert_eq!(tried, 9 + 48 * 4 + 8 + 8);
}
