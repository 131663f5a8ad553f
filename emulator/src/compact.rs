//! Reads a produce record written the way clients write them, without serde.
//!
//! Handles records whose fields are known ones (`partition_id`, `headers`,
//! `key`, `value`, `timestamp`, each at most once), whose strings have no
//! escapes, whose `data` is a string or `null` and whose `partition_id` is a
//! plain integer. For anything else it returns `None` and the record goes to
//! serde, which reads it or tells what is wrong with it. A record this reader
//! accepts is read exactly as serde would read it (a test compares the two).

use std::borrow::Cow;

use super::raw::{RawData, RawHeader, RawPayload, RawRecord, Text};
use super::scan::is_ws;

/// The record in `json` (one object and nothing but whitespace around it), or
/// `None` when it is not in the form this reader handles.
pub(crate) fn read(json: &[u8]) -> Option<RawRecord<'_>> {
    let text = std::str::from_utf8(json).ok()?;
    let mut reader = Reader::new(text);
    let record = reader.record()?;
    reader.skip_ws();
    (reader.pos == json.len()).then_some(record)
}

/// The longest prefix of `bytes` that is UTF-8: a piece of a request body may
/// end inside a character.
pub(crate) fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
    }
}

/// Reads a record at the start of some text. The text is known to be UTF-8,
/// which spares checking each string again.
pub(crate) struct Reader<'a> {
    text: &'a str,
    /// `text`'s bytes.
    json: &'a [u8],
    pos: usize,
}

/// Which fields of an object have been read, to refuse a repeated one as serde
/// does.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    /// Marks field number `bit`; `None` if it was already there.
    fn first(&mut self, bit: u8) -> Option<()> {
        let mask = 1 << bit;
        let repeated = self.0 & mask != 0;
        self.0 |= mask;
        (!repeated).then_some(())
    }
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            json: text.as_bytes(),
            pos: 0,
        }
    }

    /// How many bytes have been read: after [`record`](Self::record), the
    /// length of the record's object.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    fn skip_ws(&mut self) {
        while self.json.get(self.pos).copied().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// The next byte after any whitespace, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_ws();
        let b = *self.json.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `null` if it comes next.
    fn null(&mut self) -> bool {
        self.skip_ws();
        let is_null = self.json[self.pos..].starts_with(b"null");
        if is_null {
            self.pos += 4;
        }
        is_null
    }

    /// Reads the members of an object whose `{` has been consumed, handing each
    /// name to `member`, which reads the value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.skip_ws();
        if self.json.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Some(());
        }
        loop {
            if self.next_token()? != b'"' {
                return None;
            }
            let name = self.name()?;
            if self.next_token()? != b':' {
                return None;
            }
            member(self, name)?;
            match self.next_token()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The record at the start of the text (an object, whatever follows it), or
    /// `None` when it is not in the form this reader handles or does not end in
    /// the text.
    pub fn record(&mut self) -> Option<RawRecord<'a>> {
        if self.next_token()? != b'{' {
            return None;
        }
        let mut record = RawRecord {
            id: None,
            partition_id: None,
            headers: None,
            key: None,
            value: None,
            timestamp: None,
        };
        let mut seen = Seen::default();
        self.members(|r, name| {
            match name {
                b"partition_id" => {
                    seen.first(0)?;
                    record.partition_id = if r.null() { None } else { Some(r.integer()?) };
                }
                b"headers" => {
                    seen.first(1)?;
                    record.headers = if r.null() { None } else { Some(r.headers()?) };
                }
                b"key" => {
                    seen.first(2)?;
                    record.key = if r.null() { None } else { Some(r.payload()?) };
                }
                b"value" => {
                    seen.first(3)?;
                    record.value = if r.null() { None } else { Some(r.payload()?) };
                }
                b"timestamp" => {
                    seen.first(4)?;
                    record.timestamp = r.nullable_text()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(record)
    }

    /// `{"type":...,"data":...}`, either member optional.
    fn payload(&mut self) -> Option<RawPayload<'a>> {
        if self.next_token()? != b'{' {
            return None;
        }
        let mut payload = RawPayload::default();
        let mut seen = Seen::default();
        self.members(|r, name| {
            match name {
                b"type" => {
                    seen.first(0)?;
                    payload.ty = r.nullable_text()?;
                }
                b"data" => {
                    seen.first(1)?;
                    payload.data = r.nullable_text()?.map(|Text(s)| RawData::Str(s));
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(payload)
    }

    /// `[{"name":...,"value":...},...]`, every header with a name.
    fn headers(&mut self) -> Option<Vec<RawHeader<'a>>> {
        if self.next_token()? != b'[' {
            return None;
        }
        let mut headers = Vec::new();
        self.skip_ws();
        if self.json.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Some(headers);
        }
        loop {
            if self.next_token()? != b'{' {
                return None;
            }
            let (mut name, mut value) = (None, None);
            let mut seen = Seen::default();
            self.members(|r, field| {
                match field {
                    b"name" => {
                        seen.first(0)?;
                        // A null name is an error, left to serde.
                        name = Some(Text(Cow::Borrowed(r.string()?)));
                    }
                    b"value" => {
                        seen.first(1)?;
                        value = r.nullable_text()?;
                    }
                    _ => return None,
                }
                Some(())
            })?;
            headers.push(RawHeader { name: name?, value });
            match self.next_token()? {
                b',' => {}
                b']' => return Some(headers),
                _ => return None,
            }
        }
    }

    /// A string or `null`.
    fn nullable_text(&mut self) -> Option<Option<Text<'a>>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(Text(Cow::Borrowed(self.string()?))))
    }

    /// The rest of a member name whose opening quote has been consumed. The
    /// names this reader knows are plain ASCII; any other is left to serde.
    fn name(&mut self) -> Option<&'a [u8]> {
        let rest = &self.json[self.pos..];
        let len = plain_ascii_prefix(rest);
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.pos += len + 1;
        Some(&rest[..len])
    }

    /// A string without escapes.
    fn string(&mut self) -> Option<&'a str> {
        if self.next_token()? != b'"' {
            return None;
        }
        self.string_body()
    }

    /// The rest of a string whose opening quote has been consumed, if it has
    /// no escapes and no control characters (which serde refuses).
    fn string_body(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let rest = &self.json[start..];
        let len = match first_word_stop(rest) {
            // A short plain string, such as a type name.
            Some(len) if rest[len] == b'"' => len,
            _ => {
                // The text is UTF-8 already: past the closing quote (or an
                // escape), only control characters are left to look for.
                let len = memchr::memchr2(b'"', b'\\', rest)?;
                if rest[len] != b'"' || has_control(&rest[..len]) {
                    return None;
                }
                len
            }
        };
        self.pos += len + 1;
        // Both ends are next to a quote, so on character boundaries.
        self.text.get(start..start + len)
    }

    /// A plain integer: an optional minus sign, then up to 18 digits without a
    /// leading zero (or `0` alone). Fractions, exponents, `-0` and longer
    /// numbers are left to serde.
    fn integer(&mut self) -> Option<i64> {
        self.skip_ws();
        let negative = self.json.get(self.pos) == Some(&b'-');
        let start = self.pos + usize::from(negative);
        let digits = self.json[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        let text = &self.json[start..end];
        let plain = match text {
            [] => false,
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => digits <= 18,
        };
        if !plain || matches!(self.json.get(end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = end;
        let magnitude = text.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Some(if negative { -magnitude } else { magnitude })
    }
}

/// Whether any byte is a control character (below 0x20). Takes the lowest
/// byte without stopping early, which compiles to vector instructions.
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().fold(u8::MAX, |lowest, &b| lowest.min(b)) < 0x20
}

/// Where the first byte that is not plain (see [`plain_ascii_prefix`]) is among
/// the first eight, if there are eight and one is not plain.
fn first_word_stop(bytes: &[u8]) -> Option<usize> {
    let word = bytes.get(..8)?;
    let plain = plain_ascii_prefix(word);
    (plain < 8).then_some(plain)
}

/// How many leading bytes are ASCII from 0x20 on, other than `"` and `\`: the
/// plain part of a string. Looks at eight bytes at a time, since most of a
/// record is its value string.
fn plain_ascii_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// The high bit of each byte of `w` that is zero, exact for the lowest one.
    fn zero_bytes(w: u64) -> u64 {
        w.wrapping_sub(ONES) & !w & HIGHS
    }
    let mut words = bytes.chunks_exact(8);
    let mut done = 0;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let stops = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            // Below 0x20, exact for the lowest one as above.
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
            // 0x80 and above.
            | (w & HIGHS);
        if stops != 0 {
            return done + (stops.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + words
        .remainder()
        .iter()
        .take_while(|&&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde reads from `json`, or why it cannot.
    fn by_serde(json: &str) -> String {
        match serde_json::from_str::<RawRecord<'_>>(json) {
            Ok(record) => format!("{record:?}"),
            Err(error) => format!("error: {error}"),
        }
    }

    /// Checks that this reader either leaves `json` to serde or reads it as
    /// serde does, also when the record is followed by others; returns whether
    /// it read it.
    fn agrees(json: &str) -> bool {
        let followed = format!("{json}{{\"value\":null}} ");
        let mut reader = Reader::new(&followed);
        match reader.record() {
            Some(record) if reader.consumed() == json.len() => {
                assert_eq!(format!("{record:?}"), by_serde(json), "{json}");
            }
            Some(_) => {}
            None => assert!(read(json.as_bytes()).is_none(), "{json}"),
        }
        match read(json.as_bytes()) {
            None => false,
            Some(record) => {
                assert_eq!(format!("{record:?}"), by_serde(json), "{json}");
                true
            }
        }
    }

    #[test]
    fn reads_what_clients_send() {
        for json in [
            r#"{"key":{"type":"STRING","data":"key-1"},"value":{"type":"STRING","data":"abc"}}"#,
            r#"{"partition_id":2,"headers":[{"name":"h","value":"AAE="},{"name":"n","value":null}],"key":{"type":"BINARY","data":"AAEC"},"value":{"type":"JSON","data":"x"},"timestamp":"2024-05-06T07:08:09.123Z"}"#,
            r#"{"value":{"type":"STRING","data":null}}"#,
            r#"{"key":null,"value":{"data":"x","type":"STRING"},"partition_id":-3}"#,
            r#" { "value" : { "type" : "STRING" , "data" : "é ü" } , "headers" : [ ] } "#,
            r#"{"partition_id":0,"timestamp":null,"headers":null,"value":{}}"#,
            r#"{"partition_id":999999999999999999}"#,
            r#"{}"#,
        ] {
            assert!(agrees(json), "left to serde: {json}");
        }
    }

    #[test]
    fn leaves_the_rest_to_serde() {
        for json in [
            r#"{"id":"a","value":{"type":"STRING","data":"x"}}"#,
            r#"{"value":{"type":"STRING","data":"x\"y"}}"#,
            r#"{"value":{"type":"STRING","data":"x\u0041"}}"#,
            "{\"value\":{\"type\":\"STRING\",\"data\":\"x\ty\"}}",
            r#"{"value":{"type":"JSON","data":{"a":1}}}"#,
            r#"{"value":{"type":"JSON","data":5}}"#,
            r#"{"value":{"type":"STRING","data":"x","schema_id":1}}"#,
            r#"{"value":{"type":"STRING","data":"x","data":"y"}}"#,
            r#"{"key":null,"key":null}"#,
            r#"{"partition_id":1.0}"#,
            r#"{"partition_id":1e2}"#,
            r#"{"partition_id":01}"#,
            r#"{"partition_id":-0}"#,
            r#"{"partition_id":"1"}"#,
            r#"{"partition_id":9999999999999999999}"#,
            r#"{"partition_id":-}"#,
            r#"{"headers":[{"value":"AA=="}]}"#,
            r#"{"headers":[{"name":null}]}"#,
            r#"{"headers":[{"name":"a","extra":1}]}"#,
            r#"{"headers":{}}"#,
            r#"{"timestamp":5}"#,
            r#"{"nope":1}"#,
            r#"{"value":{"type":"STRING","data":"x"},}"#,
            r#"{"value":{"type":"STRING","data":"x"}} x"#,
            r#"{"value":{"type":"STRING","data":"x"}"#,
            r#"{"value":nul}"#,
            r#"{"value" {"type":"STRING"}}"#,
            r#"{"k\u0065y":null}"#,
            r#"[]"#,
        ] {
            assert!(!agrees(json), "read, not left to serde: {json}");
        }
    }

    #[test]
    fn plain_prefix() {
        let text: Vec<u8> = (0u8..=255).collect();
        for start in 0..text.len() {
            for end in start..(start + 20).min(text.len()) {
                let bytes = &text[start..end];
                let expected = bytes
                    .iter()
                    .take_while(|&&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
                    .count();
                assert_eq!(plain_ascii_prefix(bytes), expected, "{bytes:?}");
            }
        }
        let long = [&b"abcdefgh".repeat(5)[..], b"ij\"kl"].concat();
        assert_eq!(plain_ascii_prefix(&long), 42);
        for stop in [b'"', b'\\', 0x1f, 0x80, 0xff, 0] {
            for at in 0..24 {
                let mut bytes = vec![b'a'; 24];
                bytes[at] = stop;
                assert_eq!(plain_ascii_prefix(&bytes), at);
            }
        }
    }

    #[test]
    fn utf8_prefixes() {
        assert_eq!(utf8_prefix("aé".as_bytes()), "aé");
        assert_eq!(utf8_prefix(&"aé".as_bytes()[..2]), "a");
        assert_eq!(utf8_prefix(b"a\xffb"), "a");
    }

    #[test]
    fn invalid_utf8_is_left_to_serde() {
        assert!(read(b"{\"value\":{\"type\":\"STRING\",\"data\":\"\xff\"}}").is_none());
        assert!(read(b"{\"value\":{\"type\":\"STRING\",\"data\":\"\xc3\xa9\"}}").is_some());
    }

    #[test]
    fn agrees_with_serde_on_variations() {
        // Every prefix and every single-byte change of a full record: whatever
        // this reader accepts, serde reads the same way.
        let full = r#"{"partition_id":12,"headers":[{"name":"h","value":"AAE="}],"key":{"type":"STRING","data":"k"},"value":{"type":"BINARY","data":"AAEC"},"timestamp":"2024-05-06T07:08:09.123Z"}"#;
        let mut read_some = 0;
        for end in 0..=full.len() {
            read_some += usize::from(agrees(&full[..end]));
        }
        for at in 0..full.len() {
            for replacement in [" ", "\"", "{", "}", "[", "]", ",", ":", "0", "-", "n", "\\"] {
                let mut json = full.to_owned();
                json.replace_range(at..at + 1, replacement);
                read_some += usize::from(agrees(&json));
            }
        }
        assert!(read_some > 100, "{read_some}");
    }
}
