//! The emulator's reading of a streamed produce request body, read any
//! number of bytes at a time: no panic, whatever the body.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let read = usize::from(seed % 64) + 1;
    let _ = ccloud_kafka_rest_emulator::__bench::emulator_stream(body, read);
});
