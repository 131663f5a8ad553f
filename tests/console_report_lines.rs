//! The console producer's report lines (`examples/produce/output.rs`),
//! written without serde, against the library's `Serialize`: the module's
//! own tests, run here because `cargo test` builds the example as a
//! program (which tests/console_producer.rs runs), not as a test.

#[allow(dead_code)]
#[path = "../examples/produce/output.rs"]
mod output;
