//! TDX DCAP verification against the real Intel vector (tests/vectors/attestation/tdx-v4-dcap)
//! at its pinned time, and the quote framing it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

/// The published quote file has 70 zero bytes after the quote's signature data: refused
/// with the quote's own length named. Without them it verifies.
#[test]
fn bytes_after_the_quote_are_refused() {
    assert_eq!(TDX_QUOTE_FILE.len(), TDX_QUOTE_LEN + 70);
    assert!(TDX_QUOTE_FILE[TDX_QUOTE_LEN..].iter().all(|&b| b == 0));
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let verify = |q: &[u8]| {
        verify_tdx(
            q,
            &collateral,
            &TdxTrust::intel(),
            &TdxPolicy::default(),
            TDX_NOW,
        )
    };
    assert_eq!(
        verify(TDX_QUOTE_FILE).unwrap_err(),
        TdxError::TrailingBytes {
            len: TDX_QUOTE_LEN,
            extra: 70
        }
    );
    assert!(matches!(
        parse_quote(TDX_QUOTE_FILE),
        Err(TdxError::TrailingBytes { extra: 70, .. })
    ));
    let mut one_more = tdx_quote();
    one_more.push(1);
    assert!(matches!(
        verify(&one_more),
        Err(TdxError::TrailingBytes { extra: 1, .. })
    ));
    verify(&tdx_quote()).expect("the quote itself verifies");
}

/// Replaces the PEM certificate chain in a v4 quote's certification data (type 6 holding
/// type 5) and fixes the three lengths that frame it.
fn with_cert_chain(quote: &[u8], pem: &[u8]) -> Vec<u8> {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([quote[o], quote[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes(quote[o..o + 4].try_into().unwrap()) as usize;
    // Header and TD report (632), signature data length, signature and attestation key
    // (128), type 6 and its size, QE report and signature (448), QE auth data.
    let qe_auth = 632 + 4 + 128 + 6 + 448;
    let type5 = qe_auth + 2 + u16_at(qe_auth);
    assert_eq!(u16_at(type5), 5);
    let old = u32_at(type5 + 2);
    let grow = pem.len() as i64 - old as i64;
    let fix = |q: &mut Vec<u8>, o: usize| {
        let v = (u32_at(o) as i64 + grow) as u32;
        q[o..o + 4].copy_from_slice(&v.to_le_bytes());
    };
    let mut q = quote[..type5 + 6].to_vec();
    fix(&mut q, 632);
    fix(&mut q, 632 + 4 + 128 + 2);
    fix(&mut q, type5 + 2);
    q.extend_from_slice(pem);
    q.extend_from_slice(&quote[type5 + 6 + old..]);
    q
}

/// A quote whose certificate chain carries another root than the pinned Intel one (here
/// AMD's Milan ARK in its place) is refused before anything else, naming the carried root.
#[test]
fn a_carried_root_other_than_the_pinned_one_is_refused() {
    let quote = tdx_quote();
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let text = {
        let u16_at = |o: usize| usize::from(u16::from_le_bytes([quote[o], quote[o + 1]]));
        let qe_auth = 632 + 4 + 128 + 6 + 448;
        let type5 = qe_auth + 2 + u16_at(qe_auth);
        let len = u32::from_le_bytes(quote[type5 + 2..type5 + 6].try_into().unwrap()) as usize;
        String::from_utf8(quote[type5 + 6..type5 + 6 + len].to_vec()).unwrap()
    };
    // PCK, intermediate, root: swap the last for another self-signed certificate.
    let begin = "-----BEGIN CERTIFICATE-----";
    let root_at = text.rfind(begin).unwrap();
    let ark =
        String::from_utf8(include_bytes!("vectors/attestation/amd-roots/milan/ark.pem").to_vec())
            .unwrap();
    let swapped = format!("{}{}", &text[..root_at], ark.trim_end());
    let forged = with_cert_chain(&quote, swapped.as_bytes());
    // The same framing with the original chain gives back the original quote.
    assert_eq!(with_cert_chain(&quote, text.as_bytes()), quote);
    let err = verify_tdx(
        &forged,
        &collateral,
        &TdxTrust::intel(),
        &TdxPolicy::default(),
        TDX_NOW,
    )
    .unwrap_err();
    assert!(matches!(err, TdxError::CarriedRootMismatch { .. }), "{err}");
}

/// The minimum TCB evaluation number: the vector's TCB info is number 17.
#[test]
fn tcb_info_older_than_the_minimum_evaluation_is_refused() {
    let collateral = parse_collateral_json(tdx_collateral_json()).unwrap();
    let policy = |min| TdxPolicy {
        min_tcb_evaluation_data_number: min,
        ..TdxPolicy::default()
    };
    let verify =
        |p: &TdxPolicy| verify_tdx(&tdx_quote(), &collateral, &TdxTrust::intel(), p, TDX_NOW);
    verify(&policy(17)).expect("number 17 meets a minimum of 17");
    assert_eq!(
        verify(&policy(18)).unwrap_err(),
        TdxError::TcbEvaluationTooOld { got: 17, min: 18 }
    );
}

/// A real v5 quote from a platform whose TCB matches no level of Intel's TCB info
/// (dcap-qvl's `tdx_quote_outdated` sample): a typed error, not a string.
#[test]
fn a_platform_no_tcb_level_matches_is_a_typed_error() {
    let quote = include_bytes!("vectors/attestation/tdx-v5-outdated/tdx_quote");
    let collateral = parse_collateral_json(include_bytes!(
        "vectors/attestation/tdx-v5-outdated/tdx_quote_collateral.json"
    ))
    .unwrap();
    assert_eq!(parse_quote(quote).unwrap().version, 5);
    let err = verify_tdx(
        quote,
        &collateral,
        &TdxTrust::intel(),
        &TdxPolicy::default(),
        1_771_416_000,
    )
    .unwrap_err();
    assert!(matches!(err, TdxError::NoMatchingTcbLevel { .. }), "{err}");
}
