//! Test support shared by the workspace's crates, not published: proptest
//! strategies for the JSON the produce API carries, used to check that the
//! client's and the emulator's fast readers and writers agree with serde_json.

pub mod json_grammar;
