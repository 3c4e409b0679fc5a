//! Any bytes as a batch: the decoder must not panic, must account for every
//! element, and must agree with serde_json (`lake::fuzz_check` lists the
//! invariants; `make test` replays `fuzz/corpus/decode/` through the same check).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = lake::fuzz_check::check_decoder_invariants(data) {
        panic!("decoder invariant broken: {broken}");
    }
});
