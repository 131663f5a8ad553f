//! What a record is: its key, value, headers, partition and timestamp, as
//! plain data that depends on nothing else of the crate. Checking a record
//! against what the server accepts, and encoding it, are in `wire::record`;
//! an error can carry a record back to its caller ([`Error::QueueFull`]).
//!
//! [`Error::QueueFull`]: crate::Error::QueueFull

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

/// A record key or value.
///
/// Built from `&str`/`String` (STRING), bytes (`Vec<u8>`, `&[u8]`, [`Bytes`]:
/// BINARY, base64-encoded by the crate), [`serde_json::Value`] or any
/// `Serialize` through [`Payload::json`] (JSON).
#[derive(Clone, Debug)]
pub enum Payload {
    /// Text.
    String(String),
    /// Bytes.
    Binary(Bytes),
    /// A JSON value, already serialized compactly.
    Json(Box<RawValue>),
}

/// A record header: a name and bytes, or a null value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header name; Kafka allows duplicates.
    pub name: String,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

/// A record to produce: key, value, headers, and optionally a partition and
/// timestamp. A key or value left unset is a Kafka null.
///
/// ```
/// use ccloud_kafka_rest::Record;
/// let record = Record::new()
///     .with_key("order-7")
///     .with_value(serde_json::json!({"id": 7, "total": 12.5}))
///     .with_header("source", "checkout")
///     .with_partition(0);
/// assert_eq!(record.partition(), Some(0));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub(crate) key: Option<Payload>,
    pub(crate) value: Option<Payload>,
    pub(crate) headers: Vec<Header>,
    pub(crate) partition: Option<i32>,
    pub(crate) timestamp: Option<DateTime<Utc>>,
    /// A JSON `null` key or value is sent as a Kafka null rather than refused.
    pub(crate) json_null_is_kafka_null: bool,
}
