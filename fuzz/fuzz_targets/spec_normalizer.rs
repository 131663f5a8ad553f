//! The build script's normalization of an OpenAPI document: any JSON
//! document gives a normalized one or an error, never a panic.

#![no_main]

#[allow(dead_code)]
#[path = "../../build/normalize.rs"]
mod normalize;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = normalize::normalize(&document);
    }
});
