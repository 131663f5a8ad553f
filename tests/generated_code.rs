//! The code generated from the vendored OpenAPI document, kept as a reviewed
//! snapshot: a changed document or generator version shows up as a diff of
//! `tests/snapshots/codegen.rs`. Accept a new snapshot with
//! `EXPECTORATE=overwrite cargo test --test generated_code` and review the diff.

#[test]
fn generated_code_matches_the_snapshot() {
    if std::env::var_os("KAFKA_REST_OPENAPI").is_some_and(|v| !v.is_empty()) {
        eprintln!("skipped: KAFKA_REST_OPENAPI selects another document than the vendored one");
        return;
    }
    let generated = include_str!(concat!(env!("OUT_DIR"), "/codegen.rs"));
    expectorate::assert_contents("tests/snapshots/codegen.rs", generated);
}
