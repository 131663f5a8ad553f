//! Test-only code: the checks
//! that the fast readers and writers agree with serde_json, on the JSON grammars of
//! `ccloud-kafka-rest-testkit`.

mod agree_encoder;
mod agree_reports;
