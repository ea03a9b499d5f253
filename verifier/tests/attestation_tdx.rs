//! TDX DCAP verification against the real Intel vector (tests/vectors/attestation/tdx-v4-dcap)
//! at its pinned time.

#[path = "attestation_support.rs"]
mod support;

use lucent_verifier::tdx::{
    parse_collateral_json, parse_quote, verify_tdx, TdxError, TdxPolicy, TdxTcbStatus, TdxTrust,
    INTEL_SGX_ROOT_CA_SHA256,
};
use sha2::{Digest, Sha256};
use support::*;

#[test]
fn pinned_intel_root_matches_provenance_and_vector() {
    let prov: serde_json::Value =
        serde_json::from_str(include_str!("vectors/attestation/PROVENANCE.json")).unwrap();
    let want = prov["trust_anchors"]["certs"]["intel-roots/Intel_SGX_RootCA.der"]
        ["sha256_fingerprint"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(hex::encode(INTEL_SGX_ROOT_CA_SHA256), want);
    let vector_root = include_bytes!("vectors/attestation/tdx-v4-dcap/TrustedRootCA.der");
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(vector_root)),
        INTEL_SGX_ROOT_CA_SHA256
    );
    assert_eq!(TdxTrust::intel().root_der(), &vector_root[..]);
}

#[test]
fn tdx_dcap_set_verifies_at_pinned_time() {
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let got = verify_tdx(
        &tdx_quote(),
        &collateral,
        &TdxTrust::intel(),
        &TdxPolicy::default(),
        TDX_NOW,
    )
    .expect("TDX set must verify");
    let exp = expected("tdx");
    assert_eq!(got.version, 4);
    assert_eq!(got.tcb_status, TdxTcbStatus::UpToDate);
    assert!(got.advisory_ids.is_empty());
    let td = |k: &str| hex_field(&exp, &["td_report", k]);
    assert_eq!(got.mr_td.to_vec(), td("mr_td"));
    assert_eq!(got.rtmr[0].to_vec(), td("rt_mr0"));
    assert_eq!(got.rtmr[1].to_vec(), td("rt_mr1"));
    assert_eq!(got.rtmr[2].to_vec(), td("rt_mr2"));
    assert_eq!(got.rtmr[3].to_vec(), td("rt_mr3"));
    assert_eq!(got.report_data.to_vec(), td("report_data"));
    assert_eq!(got.mr_seam.to_vec(), td("mr_seam"));
    assert_eq!(got.td_attributes.to_vec(), td("td_attributes"));
}

#[test]
fn tdx_after_the_collateral_window_is_rejected_as_expired() {
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    // 2025-07-20, after the PCK CRL's nextUpdate (2025-07-19T10:00:35Z).
    let now = 1_752_969_600;
    let err = verify_tdx(
        &tdx_quote(),
        &collateral,
        &TdxTrust::intel(),
        &TdxPolicy::default(),
        now,
    )
    .unwrap_err();
    assert!(matches!(err, TdxError::Expired { .. }), "{err}");
}

#[test]
fn tdx_status_list_is_explicit() {
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let policy = TdxPolicy {
        allowed_tcb_statuses: vec![TdxTcbStatus::SwHardeningNeeded],
        ..TdxPolicy::default()
    };
    let err = verify_tdx(
        &tdx_quote(),
        &collateral,
        &TdxTrust::intel(),
        &policy,
        TDX_NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        TdxError::TcbStatusNotAllowed {
            got: TdxTcbStatus::UpToDate,
            allowed: vec![TdxTcbStatus::SwHardeningNeeded]
        }
    );
    let policy = TdxPolicy {
        allowed_tcb_statuses: vec![],
        ..TdxPolicy::default()
    };
    assert!(verify_tdx(
        &tdx_quote(),
        &collateral,
        &TdxTrust::intel(),
        &policy,
        TDX_NOW
    )
    .is_err());
}

#[test]
fn tdx_required_fields_are_enforced() {
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let good = verify_tdx(
        &tdx_quote(),
        &collateral,
        &TdxTrust::intel(),
        &TdxPolicy::default(),
        TDX_NOW,
    )
    .unwrap();
    let mut other = good.mr_seam;
    other[0] ^= 1;
    let cases: Vec<(TdxPolicy, &str)> = vec![
        (
            TdxPolicy {
                mr_seam: Some(other),
                ..TdxPolicy::default()
            },
            "MRSEAM",
        ),
        (
            TdxPolicy {
                mr_config_id: Some([1; 48]),
                ..TdxPolicy::default()
            },
            "MRCONFIGID",
        ),
        (
            TdxPolicy {
                mr_owner: Some([1; 48]),
                ..TdxPolicy::default()
            },
            "MROWNER",
        ),
        (
            TdxPolicy {
                mr_owner_config: Some([1; 48]),
                ..TdxPolicy::default()
            },
            "MROWNERCONFIG",
        ),
        (
            TdxPolicy {
                xfam: Some([0; 8]),
                ..TdxPolicy::default()
            },
            "XFAM",
        ),
    ];
    for (policy, field) in cases {
        let err = verify_tdx(
            &tdx_quote(),
            &collateral,
            &TdxTrust::intel(),
            &policy,
            TDX_NOW,
        )
        .unwrap_err();
        assert!(
            matches!(err, TdxError::FieldMismatch { field: f, .. } if f == field),
            "{field}: {err}"
        );
    }
    // The same values as the quote pass.
    let policy = TdxPolicy {
        mr_seam: Some(good.mr_seam),
        mr_config_id: Some(good.mr_config_id),
        mr_owner: Some(good.mr_owner),
        mr_owner_config: Some(good.mr_owner_config),
        xfam: Some(good.xfam),
        ..TdxPolicy::default()
    };
    verify_tdx(
        &tdx_quote(),
        &collateral,
        &TdxTrust::intel(),
        &policy,
        TDX_NOW,
    )
    .unwrap();
}

#[test]
fn tdx_parser_rejects_garbage_without_panicking() {
    for len in [0usize, 1, 47, 48, 100, 631, 632, 1000] {
        assert!(parse_quote(&tdx_quote()[..len]).is_err(), "prefix {len}");
    }
    let mut q = tdx_quote();
    q[0] = 3; // version 3 (SGX-era)
    assert!(matches!(
        parse_quote(&q),
        Err(TdxError::UnsupportedQuoteVersion { got: 3 }) | Err(TdxError::QuoteParse { .. })
    ));
    assert!(parse_collateral_json(b"{").is_err());
}
