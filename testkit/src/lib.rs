//! Test support shared by the workspace's crates, not published: proptest
//! strategies for the JSON the produce API carries, used to check that the
//! client's and the emulator's fast readers and writers agree with serde_json,
//! and the import graph of a crate's modules, to keep it free of circles.

pub mod json_grammar;
pub mod module_graph;
