//! The encrypted request path per request (RFC 9458 request seal and open, response seal
//! and open, framing) beside the raw HPKE single-shot seal and open it is built on,
//! measured in the same run, for 1 KiB and 16 KiB messages.
//!
//! Run: `cargo bench -p lucent-verifier --bench encapsulation`

// `criterion_group!` generates undocumented public items.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Kem as _, OpModeR, OpModeS};
use lucent_verifier::encapsulation::{
    open_request, open_response, seal_request, KeyConfig, KeyPair,
};
use rand_core::{OsRng, RngCore};

/// `hpke` 0.13 takes `rand_core` 0.9 RNGs; the workspace's is 0.6.
struct Rng09(OsRng);

impl hpke::rand_core::RngCore for Rng09 {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}
impl hpke::rand_core::CryptoRng for Rng09 {}

fn bench(c: &mut Criterion) {
    let mut rng = OsRng;
    let server = KeyPair::derive(1, &[42; 32]);
    let config = KeyConfig::parse(&server.key_config_bytes()).expect("own config");
    let (sk, pk) = X25519HkdfSha256::derive_keypair(&[42; 32]);

    let mut group = c.benchmark_group("encapsulation");
    for size in [1024usize, 16 * 1024] {
        let msg = vec![0x5a; size];
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(
            BenchmarkId::new("lucent_round_trip", size),
            &msg,
            |b, msg| {
                b.iter(|| {
                    let (req, ctx) = seal_request(&config, msg, &mut rng).expect("seal");
                    let (plain, sealer) = open_request(&server, &req).expect("open");
                    let resp = sealer
                        .seal_response(&plain, &mut rng)
                        .expect("seal response");
                    black_box(open_response(&ctx, &resp).expect("open response"));
                })
            },
        );

        let (req, _) = seal_request(&config, &msg, &mut rng).expect("seal");
        group.bench_with_input(
            BenchmarkId::new("cvm_side_open_and_seal", size),
            &req,
            |b, req| {
                b.iter(|| {
                    let (plain, sealer) = open_request(&server, req).expect("open");
                    black_box(
                        sealer
                            .seal_response(&plain, &mut rng)
                            .expect("seal response"),
                    );
                })
            },
        );

        let mut rng09 = Rng09(OsRng);
        group.bench_with_input(
            BenchmarkId::new("raw_hpke_single_shot", size),
            &msg,
            |b, msg| {
                b.iter(|| {
                    let (enc, ct) = hpke::single_shot_seal::<
                        AesGcm128,
                        HkdfSha256,
                        X25519HkdfSha256,
                        _,
                    >(
                        &OpModeS::Base, &pk, b"info", msg, b"", &mut rng09
                    )
                    .expect("seal");
                    black_box(
                        hpke::single_shot_open::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
                            &OpModeR::Base,
                            &sk,
                            &enc,
                            b"info",
                            &ct,
                            b"",
                        )
                        .expect("open"),
                    );
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
