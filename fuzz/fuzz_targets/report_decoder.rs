//! The streaming producer's delivery-report decoder under any split of the
//! response: no panic, and the same reports whether the text arrives whole
//! or in pieces.

#![no_main]

use ccloud_kafka_rest::__fuzz::decode_reports;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, text)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed % 61) + 1;
    let whole = decode_reports([text]);
    let pieces = decode_reports(text.chunks(step));
    let bytes = decode_reports(text.chunks(1));
    // Garbage may be caught at different points; valid text decodes the same.
    if whole.1.is_none() && pieces.1.is_none() {
        assert_eq!(whole.0, pieces.0, "split every {step} bytes");
    }
    if whole.1.is_none() && bytes.1.is_none() {
        assert_eq!(whole.0, bytes.0, "split every byte");
    }
});
