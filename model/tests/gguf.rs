//! GGUF reader and dequantisation: small GGUF files written by the test with known Q4_1 / Q8_0
//! blocks, blocks quantised by gguf-py (tests/data/model_quant_reference.json), and malformed
//! files that must be refused with an error, never a panic.
#![allow(clippy::unwrap_used)]

use lucent_model::gguf::{GgufError, GgufFile, MetaValue};
use lucent_model::quant::{dequantize, GgmlType};
use lucent_model::tiny_model::{f32_bytes, write_gguf, GgufTensor as T, GgufValue as V};

// f16 bit patterns of exactly representable values.
const F16_HALF: [u8; 2] = 0x3800u16.to_le_bytes(); // 0.5
const F16_MINUS_TWO: [u8; 2] = 0xC000u16.to_le_bytes(); // -2.0
const F16_QUARTER: [u8; 2] = 0x3400u16.to_le_bytes(); // 0.25
const F16_THREE: [u8; 2] = 0x4200u16.to_le_bytes(); // 3.0

/// One Q4_1 block: d = 0.5, m = -2, byte j holds nibbles (j, 15 - j).
fn q4_1_block() -> (Vec<u8>, Vec<f32>) {
    let mut raw = Vec::new();
    raw.extend_from_slice(&F16_HALF);
    raw.extend_from_slice(&F16_MINUS_TWO);
    for j in 0..16u8 {
        raw.push(j | ((15 - j) << 4));
    }
    // Element j is the low nibble of byte j; element j + 16 the high nibble.
    let mut want: Vec<f32> = (0..16).map(|j| j as f32 * 0.5 - 2.0).collect();
    want.extend((0..16).map(|j| (15 - j) as f32 * 0.5 - 2.0));
    (raw, want)
}

/// Two Q8_0 blocks: d = 0.25 with q = -128..-96 and d = 3 with q = 0..32 (and -1 last).
fn q8_0_blocks() -> (Vec<u8>, Vec<f32>) {
    let mut raw = Vec::new();
    let mut want = Vec::new();
    raw.extend_from_slice(&F16_QUARTER);
    for i in 0..32i32 {
        let q = (-128 + i) as i8;
        raw.push(q as u8);
        want.push(f32::from(q) * 0.25);
    }
    raw.extend_from_slice(&F16_THREE);
    for i in 0..32i32 {
        let q: i8 = if i == 31 { -1 } else { i as i8 };
        raw.push(q as u8);
        want.push(f32::from(q) * 3.0);
    }
    (raw, want)
}

fn sample_file() -> (Vec<u8>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (q4, q4_want) = q4_1_block();
    let (q8, q8_want) = q8_0_blocks();
    let f32s = vec![1.5f32, -0.0, f32::MIN_POSITIVE, 1e30, -7.25, 0.1];
    let bytes = write_gguf(
        &[
            ("general.architecture", V::Str("llama".into())),
            ("test.count", V::U32(7)),
            ("test.flag", V::Bool(true)),
            ("test.names", V::StrArray(vec!["a".into(), "βγ".into()])),
        ],
        &[
            T {
                name: "q4".into(),
                dims: vec![32, 1],
                code: 3,
                raw: q4,
            },
            T {
                name: "q8".into(),
                dims: vec![32, 2],
                code: 8,
                raw: q8,
            },
            T {
                name: "f".into(),
                dims: vec![3, 2],
                code: 0,
                raw: f32_bytes(&f32s),
            },
        ],
    );
    (bytes, q4_want, q8_want, f32s)
}

#[test]
fn known_blocks_dequantise_to_known_floats() {
    let (bytes, q4_want, q8_want, f32s) = sample_file();
    let file = GgufFile::parse(&bytes).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(file.get_u64("test.count").unwrap(), 7);
    assert_eq!(file.get("test.flag").unwrap(), &MetaValue::Bool(true));
    let names = file.get_array("test.names").unwrap();
    assert_eq!(names[1].as_str(), Some("βγ"));

    let (shape, q4) = file.tensor_f32("q4").unwrap();
    assert_eq!(shape, vec![1, 32]);
    assert_eq!(q4, q4_want);
    let (shape, q8) = file.tensor_f32("q8").unwrap();
    assert_eq!(shape, vec![2, 32]);
    assert_eq!(q8, q8_want);
    let (shape, f) = file.tensor_f32("f").unwrap();
    assert_eq!(shape, vec![2, 3]);
    assert_eq!(
        f.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        f32s.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(file.tensor_info("q8").unwrap().ggml_type, GgmlType::Q8_0);
    assert!(matches!(
        file.tensor_f32("nope"),
        Err(GgufError::MissingTensor(n)) if n == "nope"
    ));
    assert!(matches!(
        file.get_u64("general.architecture"),
        Err(GgufError::WrongType { .. })
    ));
}

#[test]
fn dequantisation_matches_gguf_py() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/model_quant_reference.json"
    ))
    .unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let ty = match case["type"].as_str().unwrap() {
            "Q4_1" => GgmlType::Q4_1,
            "Q8_0" => GgmlType::Q8_0,
            other => panic!("unexpected type {other}"),
        };
        let raw = hex_decode(case["blocks_hex"].as_str().unwrap());
        let want: Vec<f32> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = dequantize(ty, &raw);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{ty:?} element {i}: {g} vs {w}");
        }
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_truncation_is_an_error() {
    let (bytes, ..) = sample_file();
    for len in 0..bytes.len() {
        assert!(
            GgufFile::parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
}

#[test]
fn header_mutations_are_refused() {
    let (bytes, ..) = sample_file();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(GgufFile::parse(&b), Err(GgufError::BadMagic(_))));
    let mut b = bytes.clone();
    b[4] = 9;
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::UnsupportedVersion(9))
    ));
    // A tensor count far beyond the file must not allocate or panic.
    let mut b = bytes.clone();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::Truncated { .. })
    ));
    let mut b = bytes.clone();
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::Truncated { .. })
    ));
}

#[test]
fn bad_tensors_are_refused() {
    let one = |dims: Vec<u64>, code: u32, raw: Vec<u8>| {
        write_gguf(
            &[],
            &[T {
                name: "t".into(),
                dims,
                code,
                raw,
            }],
        )
    };
    let (q4, _) = q4_1_block();
    // Data runs past the end of the file: two blocks declared, one written.
    let b = one(vec![32, 2], 3, q4.clone());
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::TensorOutOfBounds { .. })
    ));
    // Row not a multiple of the block size.
    let b = one(vec![16, 1], 3, q4.clone());
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::RowNotBlockAligned { .. })
    ));
    // Unsupported type (Q4_0 = 2).
    let b = one(vec![32, 1], 2, q4.clone());
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::UnsupportedType { code: 2, .. })
    ));
    // Zero-sized dimension, and dimensions whose product overflows.
    let b = one(vec![32, 0], 3, q4.clone());
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::BadDims { .. })
    ));
    let b = one(vec![1 << 40, 1 << 40], 0, vec![0; 4]);
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::BadDims { .. })
    ));
    // Duplicate names.
    let t = || T {
        name: "t".into(),
        dims: vec![32, 1],
        code: 3,
        raw: q4.clone(),
    };
    let b = write_gguf(&[], &[t(), t()]);
    assert!(matches!(
        GgufFile::parse(&b),
        Err(GgufError::DuplicateTensor(_))
    ));
}

#[test]
fn byte_flips_never_panic() {
    let (bytes, ..) = sample_file();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            if let Ok(file) = GgufFile::parse(&b) {
                for t in file.tensors.clone() {
                    let _ = file.tensor_f32(&t.name);
                }
            }
        }
    }
}
