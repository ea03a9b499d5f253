//! Proof decoding: any bytes as a C2SP tlog-proof, and as raw inclusion / consistency proofs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::checkpoint::LogKey;
use lucent_verifier::cosignature::WitnessPolicy;
use lucent_verifier::merkle::{ConsistencyProof, Hash, InclusionProof, LeafHash};
use lucent_verifier::note::NoteSigner;
use lucent_verifier::tlog_proof::TlogProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TlogProof::parse(data) {
        assert_eq!(TlogProof::parse(&p.to_bytes()).as_ref(), Ok(&p));
        let log = NoteSigner::from_seed("log.example", &[1; 32]).expect("valid name");
        let _ = p.verify(
            &LeafHash::of_entry(b"entry"),
            &LogKey::new(log.verifier_key()),
            &WitnessPolicy::dangerous_no_witnesses(),
        );
    }
    // Raw proofs: two sizes, then 32-byte hashes; the last two hashes are the roots/leaf.
    if data.len() >= 16 {
        let a = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        let b = u64::from_be_bytes(data[8..16].try_into().expect("8 bytes"));
        let hashes: Vec<&[u8]> = data[16..].chunks(32).collect();
        if hashes.len() >= 2 {
            let (body, ends) = hashes.split_at(hashes.len() - 2);
            if let (Ok(x), Ok(y)) = (Hash::from_slice(ends[0]), Hash::from_slice(ends[1])) {
                if let Ok(p) = InclusionProof::from_raw(a, b, body) {
                    let _ = p.verify(&LeafHash(x), &y);
                }
                if let Ok(p) = ConsistencyProof::from_raw(a, b, body) {
                    let _ = p.verify(&x, &y);
                }
            }
        }
    }
});
