//! Records encoded for a stream: the JSON the server reads, written by hand
//! into blocks of the lane each record goes to (so that a record held long
//! keeps only its own lane's memory, not that of records of other lanes). The text is byte for byte what the record's
//! `Serialize` writes through serde_json (a test checks it); writing it
//! directly skips serde_json's byte-at-a-time string escaping.

use crate::wire::record::{Header, Payload, Record};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use std::cell::RefCell;

/// Bytes of a block records are encoded into; each record's bytes are a
/// shared slice of it, so encoding allocates once per block, not per record.
const ENCODE_BLOCK: usize = 64 * 1024;

thread_local! {
    static ENCODE_BUFFER: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// The record as the server reads it, in a per-thread block.
pub(crate) fn encode(record: &Record) -> Bytes {
    ENCODE_BUFFER.with_borrow_mut(|buffer| encode_into(buffer, record))
}

/// The record as the server reads it, as a slice of `buffer`'s block.
pub(crate) fn encode_into(buffer: &mut BytesMut, record: &Record) -> Bytes {
    // Room for the usual case; escapes and base64 may need more, which the
    // buffer then grows to.
    let estimate = 96 + record.size() * 4 / 3 + record.headers().len() * 32;
    if buffer.capacity() < estimate {
        buffer.reserve(estimate.max(ENCODE_BLOCK));
    }
    write_record(buffer, record);
    buffer.split().freeze()
}

/// `{"partition_id":…,"headers":[…],"key":{…},"value":{…},"timestamp":…}`,
/// absent fields left out.
fn write_record(out: &mut BytesMut, record: &Record) {
    out.put_u8(b'{');
    let mut first = true;
    let mut field = |out: &mut BytesMut, name: &[u8]| {
        if !std::mem::take(&mut first) {
            out.put_u8(b',');
        }
        out.put_slice(name);
    };
    if let Some(partition) = record.partition() {
        field(out, b"\"partition_id\":");
        out.put_slice(itoa::Buffer::new().format(partition).as_bytes());
    }
    if !record.headers().is_empty() {
        field(out, b"\"headers\":");
        write_headers(out, record.headers());
    }
    if let Some(key) = record.key() {
        field(out, b"\"key\":");
        write_payload(out, key);
    }
    if let Some(value) = record.value() {
        field(out, b"\"value\":");
        write_payload(out, value);
    }
    if let Some(timestamp) = record.timestamp() {
        field(out, b"\"timestamp\":");
        let text = timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        write_str(out, &text);
    }
    out.put_u8(b'}');
}

/// `{"type":"STRING","data":…}`
fn write_payload(out: &mut BytesMut, payload: &Payload) {
    match payload {
        Payload::String(s) => {
            out.put_slice(b"{\"type\":\"STRING\",\"data\":");
            write_str(out, s);
        }
        Payload::Binary(b) => {
            out.put_slice(b"{\"type\":\"BINARY\",\"data\":");
            write_base64(out, b);
        }
        // Already compact JSON, written as it is.
        Payload::Json(j) => {
            out.put_slice(b"{\"type\":\"JSON\",\"data\":");
            out.put_slice(j.get().as_bytes());
        }
    }
    out.put_u8(b'}');
}

/// `[{"name":…,"value":…},…]`
fn write_headers(out: &mut BytesMut, headers: &[Header]) {
    out.put_u8(b'[');
    for (i, header) in headers.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(b"{\"name\":");
        write_str(out, &header.name);
        out.put_slice(b",\"value\":");
        match &header.value {
            Some(value) => write_base64(out, value),
            None => out.put_slice(b"null"),
        }
        out.put_u8(b'}');
    }
    out.put_u8(b']');
}

/// Standard base64 as a JSON string, encoded in place.
fn write_base64(out: &mut BytesMut, data: &[u8]) {
    out.put_u8(b'"');
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).expect("base64 of a record fits in memory");
    out.resize(start + len, 0);
    let written = STANDARD
        .encode_slice(data, &mut out[start..])
        .expect("the output has the encoded length");
    debug_assert_eq!(written, len);
    out.put_u8(b'"');
}

/// A JSON string literal, escaped as serde_json escapes: `"`, `\` and
/// control characters; everything else as it is.
fn write_str(out: &mut BytesMut, s: &str) {
    out.put_u8(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = first_to_escape(rest) {
        out.put_slice(&rest[..i]);
        write_escape(out, rest[i]);
        rest = &rest[i + 1..];
    }
    out.put_slice(rest);
    out.put_u8(b'"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Where the first byte that needs escaping is. Looks at sixteen bytes at
/// a time: most strings have none.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // For each test, the high bit of a byte is set in `(x - n) & !x` only
    // when the byte is below n (bytes of 0x80 and above never match), and
    // some byte has it set exactly when some byte matches.
    let any_below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let to_escape = |x: u64| {
        any_below(x, 0x20)
            | any_below(x ^ (ONES * u64::from(b'"')), 1)
            | any_below(x ^ (ONES * u64::from(b'\\')), 1)
    };
    let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
    let mut blocks = bytes.chunks_exact(16);
    let mut offset = 0;
    for block in &mut blocks {
        if to_escape(word(&block[..8])) | to_escape(word(&block[8..])) != 0 {
            return block
                .iter()
                .position(|&b| needs_escape(b))
                .map(|i| offset + i);
        }
        offset += 16;
    }
    let tail = blocks.remainder();
    tail.iter()
        .position(|&b| needs_escape(b))
        .map(|i| offset + i)
}

fn write_escape(out: &mut BytesMut, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.put_slice(b"\\\""),
        b'\\' => out.put_slice(b"\\\\"),
        0x08 => out.put_slice(b"\\b"),
        0x0c => out.put_slice(b"\\f"),
        b'\n' => out.put_slice(b"\\n"),
        b'\r' => out.put_slice(b"\\r"),
        b'\t' => out.put_slice(b"\\t"),
        _ => out.put_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_like_serde(record: &Record) {
        let expected = serde_json::to_vec(record).unwrap();
        let mut out = BytesMut::new();
        write_record(&mut out, record);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(encode(record), expected);
    }

    #[test]
    fn every_field_and_type_is_written_like_serde() {
        assert_like_serde(&Record::new());
        assert_like_serde(&Record::from_value("hé"));
        assert_like_serde(
            &Record::new()
                .with_key(&b"\x00\xffkey"[..])
                .with_value(serde_json::json!({"foo": [7, "x\"y"], "b": null}))
                .with_header("h1", "v")
                .with_null_header("h\"2")
                .with_header("", Bytes::new())
                .with_partition(2)
                .with_timestamp("2021-02-05T19:14:42.123456Z".parse().unwrap()),
        );
        for partition in [0, 9, 10, i32::MAX] {
            assert_like_serde(&Record::new().with_partition(partition));
        }
        assert_like_serde(&Record::new().with_key("").with_value(Vec::new()));
        assert_like_serde(&Record::new().with_key("k").with_null_value());
        for len in 0..12 {
            assert_like_serde(&Record::new().with_value(vec![0xa5u8; len]));
        }
    }

    #[test]
    fn strings_are_escaped_like_serde() {
        // Every character that needs escaping, at every position of an
        // eight-byte word, among plain ASCII, multi-byte UTF-8 and DEL.
        let special: Vec<char> = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', '\u{7f}', 'é', '€', '😀', '/'])
            .collect();
        for &c in &special {
            for position in 0..17 {
                let mut text: String = "abcdefghijklmnopq".chars().take(position).collect();
                text.push(c);
                text.push_str("rstuvwxyz0123456");
                assert_like_serde(&Record::new().with_key(text.as_str()).with_value(text));
            }
        }
        let all: String = special.iter().cycle().take(200).collect();
        assert_like_serde(&Record::new().with_value(all).with_header("ü\n", "x"));
    }

    #[test]
    fn records_share_a_block() {
        let record = Record::new().with_key("key").with_value("value");
        let (a, b) = (encode(&record), encode(&record));
        assert_eq!(a, b);
        assert_eq!(a, serde_json::to_vec(&record).unwrap());
        let big = Record::new().with_value("\u{1}".repeat(3 * ENCODE_BLOCK));
        assert_eq!(encode(&big), serde_json::to_vec(&big).unwrap());
    }
}
