//! The log's lookup answers as a reader pages through them: any bytes as a first page and a
//! next page of releases or key configs. Joining pages must never panic, and a join that is
//! accepted only holds entries below the cursor it continued from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucent_verifier::log_api::{KeyConfigsAnswer, LookupAnswer, ReleasesAnswer};

fn pages<A: LookupAnswer>(first: &[u8], next: &[u8]) {
    let (Ok(mut all), Ok(page)) = (
        serde_json::from_slice::<A>(first),
        serde_json::from_slice::<A>(next),
    ) else {
        return;
    };
    let before = all.next_before();
    let had = all.entries().count();
    if all.append(page).is_ok() {
        let before = before.expect("a join continues a cursor");
        assert!(all.entries().skip(had).all(|e| e.index < before));
        assert!(all.next_before().is_none_or(|n| n < before));
    }
    let _ = all.check_complete();
}

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (first, next) = (&data[..cut], data.get(cut + 1..).unwrap_or(&[]));
    pages::<ReleasesAnswer>(first, next);
    pages::<KeyConfigsAnswer>(first, next);
});
