//! The `type` of a record's key or value, as the produce API names it.

use serde::{Deserialize, Serialize};

/// How the server reads a key's or value's `data`, and how it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    /// Raw bytes, sent as base64.
    Binary,
    /// A JSON value, stored as its compact serialization.
    Json,
    /// Text, stored as its UTF-8 bytes.
    String,
}

impl DataType {
    /// The name used on the wire: `BINARY`, `JSON` or `STRING`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Binary => "BINARY",
            DataType::Json => "JSON",
            DataType::String => "STRING",
        }
    }

    /// The type a wire name stands for (case-sensitive, as the server reads it).
    pub fn from_wire(name: &str) -> Option<DataType> {
        [DataType::Binary, DataType::Json, DataType::String]
            .into_iter()
            .find(|ty| ty.as_str() == name)
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
