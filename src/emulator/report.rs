//! Writing delivery reports and error bodies as compact JSON.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

use super::DataType;

/// A successfully appended record, as reported back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivered {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: DateTime<Utc>,
    pub key: Option<(DataType, usize)>,
    pub value: Option<(DataType, usize)>,
}

/// The cluster id and topic name, escaped once per request.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    cluster: String,
    topic: String,
}

impl Names {
    pub fn new(cluster: &str, topic: &str) -> Names {
        Names {
            cluster: json_string(cluster),
            topic: json_string(topic),
        }
    }
}

/// A string as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

fn put_json_str(out: &mut BytesMut, s: &str) {
    // Writing into memory cannot fail.
    let _ = serde_json::to_writer(out.writer(), s);
}

/// `{"error_code":200,...}` for a delivered record, with `"id"` first in a batch.
pub(crate) fn write_success(out: &mut BytesMut, names: &Names, id: Option<&str>, d: &Delivered) {
    out.put_u8(b'{');
    if let Some(id) = id {
        out.put_slice(b"\"id\":");
        put_json_str(out, id);
        out.put_u8(b',');
    } else {
        out.put_slice(b"\"error_code\":200,");
    }
    out.put_slice(b"\"cluster_id\":");
    out.put_slice(names.cluster.as_bytes());
    out.put_slice(b",\"topic_name\":");
    out.put_slice(names.topic.as_bytes());
    let _ = write!(
        out,
        ",\"partition_id\":{},\"offset\":{},\"timestamp\":\"",
        d.partition, d.offset
    );
    write_timestamp(out, &d.timestamp);
    out.put_u8(b'"');
    if let Some((ty, size)) = d.key {
        let _ = write!(out, ",\"key\":{{\"type\":\"{ty}\",\"size\":{size}}}");
    }
    if let Some((ty, size)) = d.value {
        let _ = write!(out, ",\"value\":{{\"type\":\"{ty}\",\"size\":{size}}}");
    }
    out.put_u8(b'}');
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-01-02T03:04:05.678Z`.
fn write_timestamp(out: &mut BytesMut, t: &DateTime<Utc>) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis().min(999)
    );
}

/// `{"error_code":N,"message":"..."}`, with `"id"` first in a batch.
pub(crate) fn write_failure(out: &mut BytesMut, id: Option<&str>, code: i32, message: &str) {
    out.put_u8(b'{');
    if let Some(id) = id {
        out.put_slice(b"\"id\":");
        put_json_str(out, id);
        out.put_u8(b',');
    }
    let _ = write!(out, "\"error_code\":{code},\"message\":");
    put_json_str(out, message);
    out.put_u8(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_shape() {
        let mut out = BytesMut::new();
        let names = Names::new("lkc-1", "t\"x");
        let d = Delivered {
            partition: 2,
            offset: 7,
            timestamp: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            key: Some((DataType::String, 3)),
            value: None,
        };
        write_success(&mut out, &names, None, &d);
        assert_eq!(
            &out[..],
            br#"{"error_code":200,"cluster_id":"lkc-1","topic_name":"t\"x","partition_id":2,"offset":7,"timestamp":"2023-11-14T22:13:20.123Z","key":{"type":"STRING","size":3}}"#
        );
        out.clear();
        write_failure(&mut out, Some("a"), 40402, "Partition not found.");
        assert_eq!(
            &out[..],
            br#"{"id":"a","error_code":40402,"message":"Partition not found."}"#
        );
    }
}
