//! Records and their encoding as the server's JSON.

use crate::error::{Error, InvalidInput};
pub use crate::record::{Header, Payload, Record};
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

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
        match name {
            "BINARY" => Some(DataType::Binary),
            "JSON" => Some(DataType::Json),
            "STRING" => Some(DataType::String),
            _ => None,
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Payload {
    /// A JSON payload from any `Serialize` value.
    ///
    /// ```
    /// # use ccloud_kafka_rest::Payload;
    /// #[derive(serde::Serialize)]
    /// struct Order { id: u32 }
    /// let payload = Payload::json(&Order { id: 7 })?;
    /// assert_eq!(payload.len(), r#"{"id":7}"#.len());
    /// # Ok::<(), ccloud_kafka_rest::Error>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Payload, Error> {
        serde_json::value::to_raw_value(value)
            .map(Payload::Json)
            .map_err(|e| Error::invalid(InvalidInput::Json(e.to_string())))
    }

    /// The type the server is told.
    pub fn data_type(&self) -> DataType {
        match self {
            Payload::String(_) => DataType::String,
            Payload::Binary(_) => DataType::Binary,
            Payload::Json(_) => DataType::Json,
        }
    }

    /// Bytes the server stores: UTF-8 length, byte length, or compact JSON
    /// length. Matches the `size` of the delivery report. A JSON `null` is
    /// stored as a Kafka null: 0.
    pub fn len(&self) -> usize {
        match self {
            Payload::String(s) => s.len(),
            Payload::Binary(b) => b.len(),
            Payload::Json(_) if self.is_json_null() => 0,
            Payload::Json(j) => j.get().len(),
        }
    }

    /// Whether [`Payload::len`] is 0 (an empty payload is not a null one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is the JSON value `null`, which the server stores as a
    /// Kafka null (a tombstone, for a value on a compacted topic).
    pub fn is_json_null(&self) -> bool {
        matches!(self, Payload::Json(j) if j.get().trim() == "null")
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Payload::String(a), Payload::String(b)) => a == b,
            (Payload::Binary(a), Payload::Binary(b)) => a == b,
            (Payload::Json(a), Payload::Json(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::String(s.to_owned())
    }
}
impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::String(s)
    }
}
impl From<&String> for Payload {
    fn from(s: &String) -> Self {
        Payload::String(s.clone())
    }
}
impl From<std::borrow::Cow<'_, str>> for Payload {
    fn from(s: std::borrow::Cow<'_, str>) -> Self {
        Payload::String(s.into_owned())
    }
}
impl From<Vec<u8>> for Payload {
    fn from(b: Vec<u8>) -> Self {
        Payload::Binary(Bytes::from(b))
    }
}
impl From<&[u8]> for Payload {
    fn from(b: &[u8]) -> Self {
        Payload::Binary(Bytes::copy_from_slice(b))
    }
}
impl<const N: usize> From<&[u8; N]> for Payload {
    fn from(b: &[u8; N]) -> Self {
        Payload::Binary(Bytes::copy_from_slice(b))
    }
}
impl From<&Vec<u8>> for Payload {
    fn from(b: &Vec<u8>) -> Self {
        Payload::Binary(Bytes::copy_from_slice(b))
    }
}
impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload::Binary(b)
    }
}
/// Integers and booleans are JSON values (`42`, `true`); a number as text
/// is `Payload::from(n.to_string())`. Floats go through [`Payload::json`],
/// which refuses the ones JSON cannot carry (NaN, infinities).
macro_rules! json_scalar {
    ($($t:ty),*) => {$(
        impl From<$t> for Payload {
            fn from(v: $t) -> Self {
                let mut text = String::new();
                // Writing a number or a boolean into a String cannot fail.
                let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{v}"));
                Payload::Json(RawValue::from_string(text).expect("a number or boolean is JSON"))
            }
        }
    )*};
}
json_scalar!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, bool
);

impl From<serde_json::Value> for Payload {
    fn from(v: serde_json::Value) -> Self {
        // Serializing a Value cannot fail.
        Payload::Json(serde_json::value::to_raw_value(&v).expect("a JSON value serializes"))
    }
}

impl Record {
    /// An empty record (null key and value).
    pub fn new() -> Record {
        Record::default()
    }

    /// A record with this value and a null key.
    pub fn from_value(value: impl Into<Payload>) -> Record {
        Record::new().with_value(value)
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Payload>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn with_value(mut self, value: impl Into<Payload>) -> Record {
        self.value = Some(value.into());
        self
    }

    /// Sets the value to the JSON serialization of `value`.
    pub fn with_json_value<T: Serialize + ?Sized>(self, value: &T) -> Result<Record, Error> {
        Ok(self.with_value(Payload::json(value)?))
    }

    /// Sets the key to a Kafka null.
    pub fn with_null_key(mut self) -> Record {
        self.key = None;
        self
    }

    /// Sets the value to a Kafka null (a tombstone on compacted topics).
    pub fn with_null_value(mut self) -> Record {
        self.value = None;
        self
    }

    /// Sends a JSON `null` key or value as it is, which the server stores as
    /// a Kafka null: for a value on a compacted topic, a tombstone that
    /// deletes the key. Without this, such a record is refused before
    /// anything is sent, since a `null` that reached the record by accident
    /// (a forwarded request body, say) would silently delete data. For a
    /// tombstone on purpose, [`Record::with_null_value`] says so directly.
    pub fn with_json_null_as_kafka_null(mut self) -> Record {
        self.json_null_is_kafka_null = true;
        self
    }

    /// Adds a header. The value is any bytes or text, borrowed or owned
    /// (`&str`, `String`, `&[u8]`, `Vec<u8>`, [`Bytes`], …); it is copied.
    ///
    /// ```
    /// use ccloud_kafka_rest::Record;
    /// let trace_id = String::from("4bf92f35");
    /// let record = Record::from_value("v").with_header("trace", &trace_id).with_header("raw", [0u8, 1]);
    /// assert_eq!(record.headers()[0].value.as_deref(), Some(&b"4bf92f35"[..]));
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Record {
        self.headers.push(Header {
            name: name.into(),
            value: Some(Bytes::copy_from_slice(value.as_ref())),
        });
        self
    }

    /// Adds a header with a null value.
    pub fn with_null_header(mut self, name: impl Into<String>) -> Record {
        self.headers.push(Header {
            name: name.into(),
            value: None,
        });
        self
    }

    /// Sends the record to this partition instead of letting the server
    /// choose (by key hash when there is a key).
    pub fn with_partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// Sets the record's timestamp (stored with millisecond precision);
    /// unset means the time the server receives it.
    pub fn with_timestamp(mut self, timestamp: DateTime<Utc>) -> Record {
        self.timestamp = Some(timestamp);
        self
    }

    /// The key, `None` for null.
    pub fn key(&self) -> Option<&Payload> {
        self.key.as_ref()
    }

    /// The value, `None` for null.
    pub fn value(&self) -> Option<&Payload> {
        self.value.as_ref()
    }

    /// The headers in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The partition, if set.
    pub fn partition(&self) -> Option<i32> {
        self.partition
    }

    /// The timestamp, if set.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.timestamp
    }

    /// Bytes of key, value, header names and header values: what counts
    /// against the maximum record size.
    pub fn size(&self) -> usize {
        let payload = |p: &Option<Payload>| p.as_ref().map_or(0, Payload::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.as_ref().map_or(0, Bytes::len))
            .sum();
        payload(&self.key) + payload(&self.value) + headers
    }

    /// Checks what the server would refuse, before anything is sent.
    pub(crate) fn validate(&self, max_record_bytes: usize) -> Result<(), Error> {
        if let Some(p) = self.partition.filter(|p| *p < 0) {
            return Err(Error::invalid(InvalidInput::Partition(p)));
        }
        if !self.json_null_is_kafka_null {
            for (field, payload) in [("key", &self.key), ("value", &self.value)] {
                if payload.as_ref().is_some_and(Payload::is_json_null) {
                    return Err(Error::invalid(InvalidInput::JsonNull(field)));
                }
            }
        }
        let size = self.size();
        if size > max_record_bytes {
            return Err(Error::invalid(InvalidInput::RecordTooLarge {
                size,
                max: max_record_bytes,
            }));
        }
        Ok(())
    }
}

/// Checks a topic name against Kafka's rules (1 to 249 characters of ASCII
/// letters, digits, `.`, `_` and `-`; not `.` or `..`), as every produce call
/// does before sending.
///
/// ```
/// assert!(ccloud_kafka_rest::validate_topic("orders.v2").is_ok());
/// assert!(ccloud_kafka_rest::validate_topic("no spaces").is_err());
/// ```
pub fn validate_topic(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "\".\" and \"..\" are reserved"
    } else if name.len() > 249 {
        "it is longer than 249 characters"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "it contains a character other than ASCII letters, digits, '.', '_' and '-'"
    } else {
        return Ok(());
    };
    Err(Error::invalid(InvalidInput::TopicName {
        name: name.to_owned(),
        reason,
    }))
}

/// The record as the server reads it: one JSON object.
impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = [
            self.partition.is_some(),
            !self.headers.is_empty(),
            self.key.is_some(),
            self.value.is_some(),
            self.timestamp.is_some(),
        ];
        let mut map = serializer.serialize_map(Some(fields.iter().filter(|f| **f).count()))?;
        if let Some(partition) = self.partition {
            map.serialize_entry("partition_id", &partition)?;
        }
        if !self.headers.is_empty() {
            map.serialize_entry("headers", &HeadersWire(&self.headers))?;
        }
        if let Some(key) = &self.key {
            map.serialize_entry("key", &PayloadWire(key))?;
        }
        if let Some(value) = &self.value {
            map.serialize_entry("value", &PayloadWire(value))?;
        }
        if let Some(timestamp) = &self.timestamp {
            let text = timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            map.serialize_entry("timestamp", &text)?;
        }
        map.end()
    }
}

struct PayloadWire<'a>(&'a Payload);

impl Serialize for PayloadWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", &self.0.data_type())?;
        match self.0 {
            Payload::String(s) => map.serialize_entry("data", s)?,
            Payload::Binary(b) => map.serialize_entry("data", &Base64(b))?,
            Payload::Json(j) => map.serialize_entry("data", j)?,
        }
        map.end()
    }
}

struct HeadersWire<'a>(&'a [Header]);

impl Serialize for HeadersWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for header in self.0 {
            seq.serialize_element(&HeaderWire(header))?;
        }
        seq.end()
    }
}

struct HeaderWire<'a>(&'a Header);

impl Serialize for HeaderWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("name", &self.0.name)?;
        map.serialize_entry("value", &self.0.value.as_ref().map(|b| Base64(b)))?;
        map.end()
    }
}

/// Standard base64 written straight into the output, no intermediate string.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_payload_type_as_the_server_reads_it() {
        let record = Record::new()
            .with_key(&b"\x00\xffkey"[..])
            .with_value(serde_json::json!({"foo": 7}))
            .with_header("h1", "v")
            .with_null_header("h2")
            .with_partition(2)
            .with_timestamp("2021-02-05T19:14:42.123456Z".parse().unwrap());
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"partition_id":2,"headers":[{"name":"h1","value":"dg=="},{"name":"h2","value":null}],"key":{"type":"BINARY","data":"AP9rZXk="},"value":{"type":"JSON","data":{"foo":7}},"timestamp":"2021-02-05T19:14:42.123Z"}"#
        );
        assert_eq!(
            serde_json::to_string(&Record::from_value("hé")).unwrap(),
            r#"{"value":{"type":"STRING","data":"hé"}}"#
        );
        assert_eq!(serde_json::to_string(&Record::new()).unwrap(), "{}");
    }

    #[test]
    fn size_counts_stored_bytes() {
        let record = Record::new()
            .with_key("hé")
            .with_value(serde_json::json!({"foo": 7}))
            .with_header("ab", "xyz");
        assert_eq!(record.size(), 3 + 9 + 2 + 3);
    }

    #[test]
    fn topic_rules() {
        for ok in ["a", "demo", "a.b_c-D9", &"x".repeat(249)] {
            assert!(validate_topic(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "has space", "é", "a/b", &"x".repeat(250)] {
            assert!(validate_topic(bad).is_err(), "{bad}");
        }
    }
}
