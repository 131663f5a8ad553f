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
    out.put_slice(b",\"partition_id\":");
    put_int(out, i64::from(d.partition));
    out.put_slice(b",\"offset\":");
    put_int(out, d.offset);
    out.put_slice(b",\"timestamp\":\"");
    write_timestamp(out, &d.timestamp);
    out.put_u8(b'"');
    for (field, data) in [(&b",\"key\":"[..], d.key), (b",\"value\":", d.value)] {
        if let Some((ty, size)) = data {
            out.put_slice(field);
            out.put_slice(b"{\"type\":\"");
            out.put_slice(ty.as_str().as_bytes());
            out.put_slice(b"\",\"size\":");
            put_int(out, size as i64);
            out.put_u8(b'}');
        }
    }
    out.put_u8(b'}');
}

/// An integer in decimal, without the formatting machinery.
fn put_int(out: &mut BytesMut, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[i..]);
}

/// `n` as exactly `width` decimal digits (the low ones).
fn put_fixed(out: &mut BytesMut, n: u32, width: usize) {
    let mut digits = [b'0'; 4];
    let mut rest = n;
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.put_slice(&digits[..width]);
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-01-02T03:04:05.678Z`.
fn write_timestamp(out: &mut BytesMut, t: &DateTime<Utc>) {
    let t = t.naive_utc();
    let year = t.year();
    if !(0..=9999).contains(&year) {
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
        return;
    }
    put_fixed(out, year as u32, 4);
    out.put_u8(b'-');
    put_fixed(out, t.month(), 2);
    out.put_u8(b'-');
    put_fixed(out, t.day(), 2);
    out.put_u8(b'T');
    put_fixed(out, t.hour(), 2);
    out.put_u8(b':');
    put_fixed(out, t.minute(), 2);
    out.put_u8(b':');
    put_fixed(out, t.second(), 2);
    out.put_u8(b'.');
    put_fixed(out, (t.nanosecond() / 1_000_000).min(999), 3);
    out.put_u8(b'Z');
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
        let d = Delivered {
            partition: 0,
            offset: 1_234_567_890_123,
            timestamp: DateTime::from_timestamp_millis(5_000).unwrap(),
            key: None,
            value: Some((DataType::Json, 0)),
        };
        write_success(&mut out, &names, Some("e-1"), &d);
        assert_eq!(
            &out[..],
            br#"{"id":"e-1","cluster_id":"lkc-1","topic_name":"t\"x","partition_id":0,"offset":1234567890123,"timestamp":"1970-01-01T00:00:05.000Z","value":{"type":"JSON","size":0}}"#
        );
        out.clear();
        write_timestamp(&mut out, &"0009-03-04T05:06:07.089Z".parse().unwrap());
        assert_eq!(&out[..], b"0009-03-04T05:06:07.089Z");
        out.clear();
        write_failure(&mut out, Some("a"), 40402, "Partition not found.");
        assert_eq!(
            &out[..],
            br#"{"id":"a","error_code":40402,"message":"Partition not found."}"#
        );
    }
}
