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
/// Built from `&str`, `String`, `&String` or `Cow<str>` (STRING), bytes
/// (`Vec<u8>`, `&Vec<u8>`, `&[u8]`, `&[u8; N]`, [`Bytes`]: BINARY,
/// base64-encoded by the crate), integers, booleans and
/// [`serde_json::Value`] (JSON), or any `Serialize` through
/// [`Payload::json`] (JSON).
///
/// ```
/// use ccloud_kafka_rest::{DataType, Payload};
/// let name = String::from("order-7");
/// assert_eq!(Payload::from(&name).data_type(), DataType::String);
/// assert_eq!(Payload::from(42_u64), Payload::json(&42).unwrap());
/// assert_eq!(Payload::from(true).len(), 4);
/// ```
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
