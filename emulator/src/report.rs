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

/// Writes the success reports of one request: the text shared by all of them
/// is made once, and the timestamp's text is reused while it does not change
/// (records that arrive together are stamped with the same time).
#[derive(Debug, Clone)]
pub(crate) struct SuccessWriter {
    /// `{"error_code":200,"cluster_id":...,"topic_name":...,"partition_id":`
    /// (without `"error_code":200,` in the form of servers before 7.3).
    plain_prefix: Vec<u8>,
    /// `"cluster_id":...,"topic_name":...,"partition_id":`, after a batch id.
    names: Vec<u8>,
    /// The last timestamp written, in milliseconds, and its text.
    stamp: Option<(i64, [u8; STAMP_LEN])>,
}

/// The length of `YYYY-MM-DDTHH:MM:SS.sssZ`.
const STAMP_LEN: usize = 24;

impl SuccessWriter {
    pub fn new(cluster: &str, topic: &str, without_error_code: bool) -> SuccessWriter {
        let names = format!(
            "\"cluster_id\":{},\"topic_name\":{},\"partition_id\":",
            json_string(cluster),
            json_string(topic)
        )
        .into_bytes();
        let mut plain_prefix = if without_error_code {
            b"{".to_vec()
        } else {
            b"{\"error_code\":200,".to_vec()
        };
        plain_prefix.extend_from_slice(&names);
        SuccessWriter {
            plain_prefix,
            names,
            stamp: None,
        }
    }

    /// `{"error_code":200,...}` for a delivered record, with `"id"` first (and
    /// no `error_code`) in a batch.
    pub fn write(&mut self, out: &mut BytesMut, id: Option<&str>, d: &Delivered) {
        match id {
            None => out.put_slice(&self.plain_prefix),
            Some(id) => {
                out.put_slice(b"{\"id\":");
                put_json_str(out, id);
                out.put_u8(b',');
                out.put_slice(&self.names);
            }
        }
        put_int(out, i64::from(d.partition));
        out.put_slice(b",\"offset\":");
        put_int(out, d.offset);
        out.put_slice(b",\"timestamp\":\"");
        self.put_timestamp(out, &d.timestamp);
        out.put_u8(b'"');
        if let Some((ty, size)) = d.key {
            out.put_slice(key_prefix(ty));
            put_int(out, size as i64);
            out.put_u8(b'}');
        }
        if let Some((ty, size)) = d.value {
            out.put_slice(value_prefix(ty));
            put_int(out, size as i64);
            out.put_u8(b'}');
        }
        out.put_u8(b'}');
    }

    /// Writes a timestamp, copying the last one's text when the time is the
    /// same (years outside 0 to 9999 are written anew each time).
    fn put_timestamp(&mut self, out: &mut BytesMut, t: &DateTime<Utc>) {
        let millis = t.timestamp_millis();
        if let Some((last, text)) = &self.stamp
            && *last == millis
        {
            out.put_slice(text);
            return;
        }
        let start = out.len();
        write_timestamp(out, t);
        self.stamp = <[u8; STAMP_LEN]>::try_from(&out[start..])
            .ok()
            .map(|text| (millis, text));
    }
}

/// `,"key":{"type":"STRING","size":` and the like.
fn key_prefix(ty: DataType) -> &'static [u8] {
    match ty {
        DataType::Binary => b",\"key\":{\"type\":\"BINARY\",\"size\":",
        DataType::Json => b",\"key\":{\"type\":\"JSON\",\"size\":",
        DataType::String => b",\"key\":{\"type\":\"STRING\",\"size\":",
    }
}

/// `,"value":{"type":"STRING","size":` and the like.
fn value_prefix(ty: DataType) -> &'static [u8] {
    match ty {
        DataType::Binary => b",\"value\":{\"type\":\"BINARY\",\"size\":",
        DataType::Json => b",\"value\":{\"type\":\"JSON\",\"size\":",
        DataType::String => b",\"value\":{\"type\":\"STRING\",\"size\":",
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

/// An integer in decimal, without the formatting machinery.
fn put_int(out: &mut BytesMut, n: i64) {
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
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
        let mut writer = SuccessWriter::new("lkc-1", "t\"x", false);
        let d = Delivered {
            partition: 2,
            offset: 7,
            timestamp: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            key: Some((DataType::String, 3)),
            value: None,
        };
        writer.write(&mut out, None, &d);
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
        writer.write(&mut out, Some("e-1"), &d);
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

    #[test]
    fn integers() {
        for n in [
            0,
            7,
            10,
            99,
            100,
            101,
            12_345,
            999_999,
            -5,
            -100,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = BytesMut::new();
            put_int(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn timestamp_text_follows_the_time() {
        let mut writer = SuccessWriter::new("c", "t", false);
        let mut out = BytesMut::new();
        for (millis, text) in [
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (1_700_000_000_124, "2023-11-14T22:13:20.124Z"),
            (-62_198_755_200_000, "-0001-01-01T00:00:00.000Z"),
            (-62_198_755_200_000, "-0001-01-01T00:00:00.000Z"),
            (1_700_000_000_124, "2023-11-14T22:13:20.124Z"),
        ] {
            out.clear();
            writer.put_timestamp(&mut out, &DateTime::from_timestamp_millis(millis).unwrap());
            assert_eq!(&out[..], text.as_bytes());
        }
    }
}
