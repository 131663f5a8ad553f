//! The build script's normalization of an OpenAPI document: any JSON
//! document gives a normalized one or an error, never a panic, and so does
//! putting the crate's own types into it.

#![no_main]

#[allow(dead_code)]
#[path = "../../build/normalize.rs"]
mod normalize;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(document) = serde_json::from_slice::<serde_json::Value>(data) {
        // As the build runs it: the canonical document, then the crate's
        // own types and error model on it.
        if let Ok(mut normalized) = normalize::normalize(&document) {
            let _ = normalize::use_wire_types(&mut normalized.document);
        }
    }
});
