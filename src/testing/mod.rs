//! Test-only code shared by property tests: JSON grammars, and the checks
//! that the fast readers and writers agree with serde_json.

mod agree_encoder;
mod agree_reports;
pub(crate) mod json_grammar;
