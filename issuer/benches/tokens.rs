//! Tokens issued and redeemed per second, beside the raw VOPRF operations they are built
//! on, measured in the same run:
//!
//! - `issue_batch_100`: `Issuer::issue` of a batch of 100 blinded requests for one account
//!   (credential check and the atomic daily count on SQLite included; the HTTP hop is not);
//! - `raw_blind_evaluate_100`: `voprf::VoprfServer::blind_evaluate` (evaluation and DLEQ
//!   proof) of the same 100 blinded elements: the floor of issuance;
//! - `redeem`: the gateway's per-token work, `IssuerKey::verify` then `SpentStore::spend`
//!   (a durable insert into SQLite);
//! - `raw_evaluate`: `voprf::VoprfServer::evaluate` of a token input (what verifying costs).
//!
//! Run: `cargo bench -p lucent-issuer --bench tokens`

// `criterion_group!` generates undocumented public items.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lucent_gateway::tokens::SpentStore;
use lucent_issuer::{Accounts, Issuer};
use lucent_verifier::privacy_pass::{
    decode_batch, encode_batch, request_token, IssuerKey, Token, TokenChallenge, TokenResponse,
    TOKEN_RESPONSE_LEN,
};
use p384::NistP384;
use rand_core::OsRng;
use voprf::{BlindedElement, VoprfServer};

const SEED: [u8; 48] = [3; 48];

/// Issues `n` tokens (at most 100) through `issuer` and finalizes them.
fn fetch(
    rt: &tokio::runtime::Runtime,
    issuer: &Issuer,
    key: &IssuerKey,
    credential: &str,
    n: usize,
) -> Vec<Token> {
    let challenge = TokenChallenge::for_issuer("issuer.bench");
    let (requests, pending): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| request_token(key.public_key(), &challenge, &mut OsRng).unwrap())
        .unzip();
    let body = encode_batch(&requests.iter().map(|r| r.encode()).collect::<Vec<_>>()).unwrap();
    let answer = rt
        .block_on(issuer.issue(Some(credential), &body, 0))
        .unwrap();
    pending
        .into_iter()
        .zip(decode_batch::<TOKEN_RESPONSE_LEN>("answer", &answer).unwrap())
        .map(|(p, r)| p.finalize(&TokenResponse::decode(r).unwrap()).unwrap())
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = IssuerKey::derive(&SEED).unwrap();
    let (issuer, credential, spent) = rt.block_on(async {
        let accounts = Accounts::open(&format!("sqlite:{}", dir.path().join("i.db").display()))
            .await
            .unwrap();
        let credential = accounts.add("bench", i64::MAX as u64).await.unwrap();
        let spent = SpentStore::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        (
            Issuer::new(
                "issuer.bench".into(),
                IssuerKey::derive(&SEED).unwrap(),
                accounts,
            ),
            credential,
            spent,
        )
    });
    let challenge = TokenChallenge::for_issuer("issuer.bench");
    let requests: Vec<_> = (0..100)
        .map(|_| {
            request_token(key.public_key(), &challenge, &mut OsRng)
                .unwrap()
                .0
        })
        .collect();
    let batch = encode_batch(&requests.iter().map(|r| r.encode()).collect::<Vec<_>>()).unwrap();
    let raw = VoprfServer::<NistP384>::new_from_seed(&SEED, b"PrivacyPass").unwrap();
    let blinded: Vec<_> = requests
        .iter()
        .map(|r| BlindedElement::<NistP384>::deserialize(&r.blinded).unwrap())
        .collect();
    let mut tokens = Vec::new();

    let mut group = c.benchmark_group("tokens");
    group.throughput(Throughput::Elements(100));
    group.bench_function("issue_batch_100", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(issuer.issue(Some(&credential), &batch, 0))
                    .unwrap(),
            )
        })
    });
    group.bench_function("raw_blind_evaluate_100", |b| {
        b.iter(|| {
            for e in &blinded {
                black_box(raw.blind_evaluate(&mut OsRng, e));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("redeem", |b| {
        b.iter_batched(
            || {
                if tokens.is_empty() {
                    tokens = fetch(&rt, &issuer, &key, &credential, 100);
                }
                tokens.pop().unwrap()
            },
            |token| {
                key.verify(&token).unwrap();
                assert!(rt
                    .block_on(spent.spend(&token.token_key_id, &token.nonce))
                    .unwrap());
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let input = [7u8; 98];
    group.bench_function("raw_evaluate", |b| {
        b.iter(|| black_box(raw.evaluate(&input).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
