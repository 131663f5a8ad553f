//! Delivery reports: what the server says about each record.

use crate::error::{ApiError, Error, ErrorScope};
use crate::wire::record::DataType;
use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// Where a record was written.
///
/// Its `Serialize` writes the server's own report shape, not these field
/// names: `{"error_code":200,"cluster_id":…,"topic_name":…,"partition_id":…,
/// "offset":…,"timestamp":…,"key":{"type":…,"size":…},"value":…}`, the
/// timestamp in RFC 3339 with milliseconds, absent fields left out, plus
/// `attempts` and `possibly_duplicated` when the record needed more than one
/// attempt; the console producer prints exactly this.
///
/// ```
/// # use ccloud_kafka_rest::DeliveryReport;
/// # fn show(report: &DeliveryReport) -> serde_json::Result<()> {
/// let json = serde_json::to_value(report)?;
/// assert_eq!(json["topic_name"], report.topic.as_str());
/// assert_eq!(json["partition_id"], report.partition);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// The cluster that stored the record.
    pub cluster_id: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset in the partition.
    pub offset: i64,
    /// The record's timestamp as stored, when the server reports it.
    pub timestamp: Option<DateTime<Utc>>,
    /// Type and stored size of the key; `None` for a null key.
    pub key: Option<PayloadSummary>,
    /// Type and stored size of the value; `None` for a null value.
    pub value: Option<PayloadSummary>,
    /// How many times the record was sent before this report (1 when the
    /// first attempt succeeded).
    pub attempts: u32,
    /// True when an earlier attempt's outcome was unknown (a 5xx error code
    /// or a connection lost before its report): the record may also have
    /// been written by that attempt, so it may appear twice in the topic.
    pub possibly_duplicated: bool,
}

/// The report as the server writes it (`error_code` 200, `topic_name`,
/// `partition_id`, …), plus `attempts` and `possibly_duplicated` when the
/// record needed more than one attempt.
impl Serialize for DeliveryReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("error_code", &200)?;
        map.serialize_entry("cluster_id", &self.cluster_id)?;
        map.serialize_entry("topic_name", &self.topic)?;
        map.serialize_entry("partition_id", &self.partition)?;
        map.serialize_entry("offset", &self.offset)?;
        if let Some(timestamp) = &self.timestamp {
            let text = timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            map.serialize_entry("timestamp", &text)?;
        }
        if let Some(key) = &self.key {
            map.serialize_entry("key", key)?;
        }
        if let Some(value) = &self.value {
            map.serialize_entry("value", value)?;
        }
        if self.attempts > 1 {
            map.serialize_entry("attempts", &self.attempts)?;
        }
        if self.possibly_duplicated {
            map.serialize_entry("possibly_duplicated", &true)?;
        }
        map.end()
    }
}

/// `topic-partition@offset`, the way Kafka tools name a record's position.
impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

/// The type and stored size of a key or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadSummary {
    /// How the data was read.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Bytes stored.
    pub size: u64,
}

/// A delivery report as the server writes it, success or failure.
#[derive(Debug, Deserialize)]
#[serde(try_from = "ReportJson")]
pub(crate) struct ReportWire {
    error_code: i32,
    message: Option<String>,
    cluster_id: Option<String>,
    topic_name: Option<String>,
    partition_id: Option<i32>,
    offset: Option<i64>,
    timestamp: Option<DateTime<Utc>>,
    key: Option<PayloadSummary>,
    value: Option<PayloadSummary>,
}

/// A report's `error_code`, or what a report without one means: REST Proxy
/// before 7.3 writes a delivered record's report without it, saying where
/// the record went. Without either it is no report.
fn error_code(code: Option<i32>, partition_id: Option<i32>, offset: Option<i64>) -> Option<i32> {
    code.or((partition_id.is_some() && offset.is_some()).then_some(200))
}

/// A report's JSON, any field left out.
#[derive(Deserialize)]
struct ReportJson {
    #[serde(default)]
    error_code: Option<i32>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    cluster_id: Option<String>,
    #[serde(default)]
    topic_name: Option<String>,
    #[serde(default)]
    partition_id: Option<i32>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default, deserialize_with = "timestamp")]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    key: Option<PayloadSummary>,
    #[serde(default)]
    value: Option<PayloadSummary>,
}

impl TryFrom<ReportJson> for ReportWire {
    type Error = &'static str;

    fn try_from(json: ReportJson) -> Result<ReportWire, &'static str> {
        let error_code = error_code(json.error_code, json.partition_id, json.offset)
            .ok_or("a report without error_code, partition_id and offset")?;
        Ok(ReportWire {
            error_code,
            message: json.message,
            cluster_id: json.cluster_id,
            topic_name: json.topic_name,
            partition_id: json.partition_id,
            offset: json.offset,
            timestamp: json.timestamp,
            key: json.key,
            value: json.value,
        })
    }
}

/// A report's timestamp. The server's own form, `2025-06-02T09:14:42.123Z`,
/// is read directly; anything else as chrono reads it.
fn timestamp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct Timestamp;
    impl<'de> serde::de::Visitor<'de> for Timestamp {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp or null")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            match utc_timestamp(text.as_bytes()) {
                Some(t) => Ok(Some(t)),
                None => text.parse().map(Some).map_err(E::custom),
            }
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    d.deserialize_option(Timestamp)
}

/// A reader of compact JSON for [`ReportWire::parse_compact`].
struct Compact<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Compact<'a> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.text.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    /// Skips `literal` if the text goes on with it.
    fn literal(&mut self, literal: &[u8]) -> bool {
        let found = self.text[self.pos..].starts_with(literal);
        if found {
            self.pos += literal.len();
        }
        found
    }

    /// `"name":`
    fn key(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.pos;
        let len = self.text[start..].iter().position(|&b| b == b'"')?;
        self.pos += len + 1;
        self.byte(b':')?;
        Some(&self.text[start..start + len])
    }

    /// The bytes of a string without escapes or control characters.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.pos;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.pos += len;
        self.byte(b'"')?;
        Some(&self.text[start..start + len])
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_string()?).ok()
    }

    /// A string that is often the same as in the last report (`last`): then
    /// copied from it, without checking its UTF-8 again.
    fn name(&mut self, last: Option<&mut String>) -> Option<String> {
        let Some(last) = last else {
            return self.string().map(str::to_owned);
        };
        let raw = self.raw_string()?;
        if raw != last.as_bytes() {
            *last = std::str::from_utf8(raw).ok()?.to_owned();
        }
        Some(last.clone())
    }

    /// An integer as JSON writes it (no leading zeros, no fraction).
    fn int(&mut self) -> Option<i64> {
        let negative = self.text.get(self.pos) == Some(&b'-');
        let start = self.pos + usize::from(negative);
        let digits = self.text.get(start..)?;
        let mut value: i64 = 0;
        let mut len = 0;
        // Eighteen digits cannot overflow; more are checked.
        for &b in digits {
            let digit = b.wrapping_sub(b'0');
            if digit >= 10 {
                break;
            }
            value = if len < 18 {
                value * 10 + i64::from(digit)
            } else {
                value.checked_mul(10)?.checked_add(i64::from(digit))?
            };
            len += 1;
        }
        if len == 0 || (len > 1 && digits[0] == b'0') {
            return None;
        }
        // A fraction or exponent, or the end of the text, is not this form.
        if matches!(digits.get(len), Some(b'.' | b'e' | b'E') | None) {
            return None;
        }
        // serde_json reads `-0` as a float.
        if negative && value == 0 {
            return None;
        }
        self.pos = start + len;
        Some(if negative { -value } else { value })
    }

    /// `null`, or what `read` reads. The outer `None` means "not compact".
    fn or_null<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null") {
            return Some(None);
        }
        read(self).map(Some)
    }

    /// A data type's name, as `DataType::from_wire` reads it.
    fn data_type(&mut self) -> Option<DataType> {
        let (name, data_type): (&[u8], _) = match self.text.get(self.pos + 1)? {
            b'S' => (b"\"STRING\"", DataType::String),
            b'B' => (b"\"BINARY\"", DataType::Binary),
            _ => (b"\"JSON\"", DataType::Json),
        };
        self.literal(name).then_some(data_type)
    }

    /// A timestamp string that is often the same as in the last report
    /// (`last`): then taken from it without reading it again.
    fn timestamp_in_stream(
        &mut self,
        last: Option<&mut Option<(Vec<u8>, DateTime<Utc>)>>,
    ) -> Option<DateTime<Utc>> {
        let Some(last) = last else {
            return self.timestamp();
        };
        if let Some((text, timestamp)) = last.as_ref() {
            let rest = &self.text[self.pos..];
            let quoted = rest.first() == Some(&b'"')
                && rest[1..].starts_with(text)
                && rest.get(1 + text.len()) == Some(&b'"');
            if quoted {
                self.pos += text.len() + 2;
                return Some(*timestamp);
            }
        }
        let start = self.pos + 1;
        let timestamp = self.timestamp()?;
        let text = &self.text[start..self.pos - 1];
        match last {
            Some((last_text, last_timestamp)) => {
                last_text.clear();
                last_text.extend_from_slice(text);
                *last_timestamp = timestamp;
            }
            None => *last = Some((text.to_vec(), timestamp)),
        }
        Some(timestamp)
    }

    /// A timestamp string in the form [`utc_timestamp`] reads.
    fn timestamp(&mut self) -> Option<DateTime<Utc>> {
        self.byte(b'"')?;
        let (timestamp, len) = utc_timestamp_prefix(&self.text[self.pos..])?;
        self.pos += len;
        self.byte(b'"')?;
        Some(timestamp)
    }

    /// `{"type":"STRING","size":3}`, fields in either order.
    fn stored(&mut self) -> Option<PayloadSummary> {
        self.byte(b'{')?;
        let (mut data_type, mut size) = (None, None);
        loop {
            match self.key()? {
                b"type" if data_type.is_none() => data_type = Some(self.data_type()?),
                b"size" if size.is_none() => size = Some(u64::try_from(self.int()?).ok()?),
                _ => return None,
            }
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        Some(PayloadSummary {
            data_type: data_type?,
            size: size?,
        })
    }

    /// `,"key":{"type":"STRING","size":3}` in that order, if the text goes
    /// on with `field` (`,"key":{"type":` or `,"value":{"type":`). The
    /// outer `None` means "not in this form".
    fn stored_in_order(&mut self, field: &[u8]) -> Option<Option<PayloadSummary>> {
        if !self.literal(field) {
            return Some(None);
        }
        let data_type = match self.text.get(self.pos + 1)? {
            b'S' if self.literal(b"\"STRING\",\"size\":") => DataType::String,
            b'B' if self.literal(b"\"BINARY\",\"size\":") => DataType::Binary,
            b'J' if self.literal(b"\"JSON\",\"size\":") => DataType::Json,
            _ => return None,
        };
        let size = u64::try_from(self.int()?).ok()?;
        self.byte(b'}')?;
        Some(Some(PayloadSummary { data_type, size }))
    }
}

/// What the last report a stream's decoder read said, which the next
/// reports mostly repeat: always the cluster id and topic name, and the
/// timestamp for records received together.
#[derive(Debug, Default)]
pub(crate) struct Repeated {
    cluster_id: String,
    topic_name: String,
    /// The timestamp's text and value.
    timestamp: Option<(Vec<u8>, DateTime<Utc>)>,
}

/// A successful report exactly as servers write it: every field present,
/// in the servers' order, `key` and `value` left out when null:
/// `{"error_code":200,"cluster_id":"…","topic_name":"…","partition_id":0,
/// "offset":1,"timestamp":"…","key":{"type":"STRING","size":3},"value":{…}}`.
/// Read in one pass without looking field names up; `None` for anything
/// else.
fn delivered_in_server_form(
    reader: &mut Compact<'_>,
    mut repeated: Option<&mut Repeated>,
) -> Option<ReportWire> {
    if !reader.literal(b"{\"error_code\":200,\"cluster_id\":") {
        return None;
    }
    let cluster_id = reader.name(repeated.as_mut().map(|r| &mut r.cluster_id))?;
    if !reader.literal(b",\"topic_name\":") {
        return None;
    }
    let topic_name = reader.name(repeated.as_mut().map(|r| &mut r.topic_name))?;
    if !reader.literal(b",\"partition_id\":") {
        return None;
    }
    let partition_id = i32::try_from(reader.int()?).ok()?;
    if !reader.literal(b",\"offset\":") {
        return None;
    }
    let offset = reader.int()?;
    if !reader.literal(b",\"timestamp\":") {
        return None;
    }
    let timestamp = reader.timestamp_in_stream(repeated.map(|r| &mut r.timestamp))?;
    let key = reader.stored_in_order(b",\"key\":{\"type\":")?;
    let value = reader.stored_in_order(b",\"value\":{\"type\":")?;
    reader.byte(b'}')?;
    Some(ReportWire {
        error_code: 200,
        message: None,
        cluster_id: Some(cluster_id),
        topic_name: Some(topic_name),
        partition_id: Some(partition_id),
        offset: Some(offset),
        timestamp: Some(timestamp),
        key,
        value,
    })
}

/// Any compact report: fields in any order, each at most once, `null`
/// allowed.
fn in_any_order(reader: &mut Compact<'_>) -> Option<ReportWire> {
    let mut report = ReportWire {
        error_code: 0,
        message: None,
        cluster_id: None,
        topic_name: None,
        partition_id: None,
        offset: None,
        timestamp: None,
        key: None,
        value: None,
    };
    let mut seen = 0u16;
    reader.byte(b'{')?;
    loop {
        let key = reader.key()?;
        let field = match key {
            b"error_code" => 0,
            b"message" => 1,
            b"cluster_id" => 2,
            b"topic_name" => 3,
            b"partition_id" => 4,
            b"offset" => 5,
            b"timestamp" => 6,
            b"key" => 7,
            b"value" => 8,
            _ => return None,
        };
        if seen & (1 << field) != 0 {
            return None;
        }
        seen |= 1 << field;
        match field {
            0 => report.error_code = i32::try_from(reader.int()?).ok()?,
            1 => report.message = reader.or_null(|r| r.string().map(str::to_owned))?,
            2 => report.cluster_id = reader.or_null(|r| r.string().map(str::to_owned))?,
            3 => report.topic_name = reader.or_null(|r| r.string().map(str::to_owned))?,
            4 => {
                report.partition_id = reader.or_null(|r| i32::try_from(r.int()?).ok())?;
            }
            5 => report.offset = reader.or_null(Compact::int)?,
            6 => report.timestamp = reader.or_null(Compact::timestamp)?,
            7 => report.key = reader.or_null(Compact::stored)?,
            _ => report.value = reader.or_null(Compact::stored)?,
        }
        match reader.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    let code = (seen & 1 != 0).then_some(report.error_code);
    report.error_code = error_code(code, report.partition_id, report.offset)?;
    Some(report)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with 1 to 9 fraction digits, or `None`.
fn utc_timestamp(text: &[u8]) -> Option<DateTime<Utc>> {
    utc_timestamp_prefix(text)
        .filter(|&(_, len)| len == text.len())
        .map(|(timestamp, _)| timestamp)
}

/// A timestamp as [`utc_timestamp`] reads it at the start of `text`, and
/// its length.
fn utc_timestamp_prefix(text: &[u8]) -> Option<(DateTime<Utc>, usize)> {
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
        rest @ ..,
    ] = text
    else {
        return None;
    };
    let year = two_digits(*y0, *y1)? * 100 + two_digits(*y2, *y3)?;
    let (month, day) = (two_digits(*m0, *m1)?, two_digits(*d0, *d1)?);
    let (hour, minute) = (two_digits(*h0, *h1)?, two_digits(*i0, *i1)?);
    let second = two_digits(*s0, *s1)?;
    let (nanos, len) = match rest {
        [b'Z', ..] => (0, 20),
        [b'.', fraction @ ..] => {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) || fraction.get(digits) != Some(&b'Z') {
                return None;
            }
            let nanos = decimal(&fraction[..digits])? * 10u32.pow(9 - digits as u32);
            (nanos, 21 + digits)
        }
        _ => return None,
    };
    if second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let timestamp = date
        .and_hms_nano_opt(hour, minute, second, nanos)?
        .and_utc();
    Some((timestamp, len))
}

/// ASCII decimal digits (at most nine) as a number.
fn decimal(digits: &[u8]) -> Option<u32> {
    let mut n = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit >= 10 {
            return None;
        }
        n = n * 10 + u32::from(digit);
    }
    Some(n)
}

/// Two ASCII decimal digits as a number.
fn two_digits(tens: u8, ones: u8) -> Option<u32> {
    let (tens, ones) = (tens.wrapping_sub(b'0'), ones.wrapping_sub(b'0'));
    (tens < 10 && ones < 10).then(|| u32::from(tens) * 10 + u32::from(ones))
}

impl ReportWire {
    /// Reads one report in the compact form servers write, without serde:
    /// returns it and its length, or `None` for anything else (whitespace,
    /// escapes, unknown or repeated fields, other value types, a cut
    /// report), which is then left to serde. A successful report in the
    /// servers' own field order is read fastest.
    pub(crate) fn parse_compact(text: &[u8]) -> Option<(ReportWire, usize)> {
        Self::parse_compact_in_stream(text, None)
    }

    /// [`parse_compact`](Self::parse_compact) for the reports of one
    /// stream, with what its last report said.
    pub(crate) fn parse_compact_in_stream(
        text: &[u8],
        repeated: Option<&mut Repeated>,
    ) -> Option<(ReportWire, usize)> {
        let mut reader = Compact { text, pos: 0 };
        if let Some(report) = delivered_in_server_form(&mut reader, repeated) {
            return Some((report, reader.pos));
        }
        let mut reader = Compact { text, pos: 0 };
        let report = in_any_order(&mut reader)?;
        Some((report, reader.pos))
    }

    /// The report's `error_code` (200 on success).
    #[cfg(test)]
    pub(crate) fn error_code(&self) -> i32 {
        self.error_code
    }

    /// The offset, when the record was written.
    #[cfg(test)]
    pub(crate) fn offset(&self) -> Option<i64> {
        self.offset
    }

    /// The record's outcome: a report, or the error the server gave for it.
    pub(crate) fn into_result(self) -> Result<DeliveryReport, Error> {
        if self.error_code != 200 {
            return Err(Error::Api(ApiError {
                status: 200,
                error_code: Some(self.error_code),
                message: self.message.unwrap_or_default(),
                retry_after: None,
                scope: ErrorScope::Record,
            }));
        }
        match (self.partition_id, self.offset) {
            (Some(partition), Some(offset)) => Ok(DeliveryReport {
                cluster_id: self.cluster_id.unwrap_or_default(),
                topic: self.topic_name.unwrap_or_default(),
                partition,
                offset,
                timestamp: self.timestamp,
                key: self.key,
                value: self.value,
                attempts: 1,
                possibly_duplicated: false,
            }),
            // The server says the record was written but not where: it may
            // be in the log.
            _ => Err(Error::decode(
                format!("{self:?}"),
                Some(200),
                serde::de::Error::custom(
                    "a successful delivery report without partition_id and offset",
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_directly_match_chrono() {
        for text in [
            "2021-02-05T19:14:42.123Z",
            "2021-02-05T19:14:42Z",
            "2021-02-05T19:14:42.1Z",
            "2024-02-29T23:59:59.999999999Z",
            "1970-01-01T00:00:00.000Z",
        ] {
            let expected: DateTime<Utc> = text.parse().unwrap();
            assert_eq!(utc_timestamp(text.as_bytes()), Some(expected), "{text}");
        }
        for text in [
            "2021-02-05T19:14:42.123+01:00",
            "2021-02-30T19:14:42Z",
            "2021-02-05T19:14:60Z",
            "2021-02-05 19:14:42Z",
            "2021-02-05T19:14:42.Z",
            "2021-02-05T19:14:42.1234567890Z",
            "2021-02-05T19:14:42Zx",
            "2021-02-05T19:14:42.123Z0",
            "2021-02-05T19:14:42.123",
        ] {
            assert_eq!(utc_timestamp(text.as_bytes()), None, "{text}");
        }
        let report: ReportWire = serde_json::from_str(
            r#"{"error_code":200,"partition_id":0,"offset":1,"timestamp":"2021-02-05T20:14:42.5+01:00"}"#,
        )
        .unwrap();
        assert_eq!(
            report.timestamp,
            Some("2021-02-05T19:14:42.500Z".parse().unwrap())
        );
        let report: ReportWire =
            serde_json::from_str(r#"{"error_code":200,"timestamp":null}"#).unwrap();
        assert_eq!(report.timestamp, None);
        assert!(
            serde_json::from_str::<ReportWire>(r#"{"error_code":200,"timestamp":"x"}"#).is_err()
        );
    }

    #[test]
    fn a_report_without_error_code_that_says_where_is_delivered() {
        // REST Proxy 6.2 to 7.2, in its field order and in another.
        for text in [
            r#"{"cluster_id":"c","topic_name":"t","partition_id":1,"offset":5,"timestamp":"2021-06-01T10:00:00.000Z","key":null,"value":{"type":"BINARY","size":3}}"#,
            r#"{"offset":5,"partition_id":1}"#,
        ] {
            let (fast, serde) = both(text);
            assert_eq!(fast, serde, "{text}");
            let report: ReportWire = serde_json::from_str(text).unwrap();
            let delivered = report.into_result().unwrap();
            assert_eq!((delivered.partition, delivered.offset), (1, 5), "{text}");
        }
        // Without a code and without where, it is no report at all.
        for text in [
            r#"{"partition_id":1}"#,
            r#"{"offset":5,"partition_id":null}"#,
            r#"{"message":"m"}"#,
            r#"{}"#,
        ] {
            assert_eq!(both(text), (None, None), "{text}");
        }
        // A code given is the code, whatever else is there.
        let report: ReportWire =
            serde_json::from_str(r#"{"error_code":40403,"partition_id":1,"offset":5}"#).unwrap();
        assert!(report.into_result().is_err());
    }

    /// Both readers, on the same text: the compact one must agree with serde
    /// or decline.
    fn both(text: &str) -> (Option<String>, Option<String>) {
        let fast = ReportWire::parse_compact(text.as_bytes()).map(|(r, len)| {
            assert_eq!(len, text.len(), "{text}");
            format!("{r:?}")
        });
        let serde = serde_json::from_str::<ReportWire>(text)
            .ok()
            .map(|r| format!("{r:?}"));
        (fast, serde)
    }

    #[test]
    fn compact_reports_read_like_serde() {
        for text in [
            r#"{"error_code":200,"cluster_id":"lkc-1","topic_name":"t","partition_id":2,"offset":7,"timestamp":"2023-11-14T22:13:20.123Z","key":{"type":"STRING","size":3},"value":{"size":0,"type":"JSON"}}"#,
            r#"{"error_code":40403,"message":"This server does not host this topic-partition."}"#,
            r#"{"offset":-1,"error_code":200,"partition_id":0,"key":null,"timestamp":null,"message":null}"#,
            r#"{"error_code":200,"cluster_id":"é","topic_name":"t","partition_id":0,"offset":9223372036854775807}"#,
            r#"{"partition_id":1,"offset":2,"error_code":200,"key":{"size":3,"type":"BINARY"},"cluster_id":null}"#,
            r#"{"error_code":200,"timestamp":"2023-11-14T22:13:20Z","value":null,"topic_name":""}"#,
            r#"{"message":"m","error_code":50003}"#,
        ] {
            let (fast, serde) = both(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, serde, "{text}");
        }
        // Declined: left to serde, which reads or refuses them.
        for text in [
            r#"{ "error_code":200}"#,
            r#"{"error_code":200,"message":"a\"b"}"#,
            r#"{"error_code":200,"extra":1}"#,
            r#"{"error_code":200,"error_code":200}"#,
            r#"{"error_code":200.0}"#,
            r#"{"error_code":0200}"#,
            r#"{"error_code":200,"offset":99999999999999999999}"#,
            r#"{"error_code":200,"partition_id":3000000000}"#,
            r#"{"error_code":200,"key":{"type":"AVRO","size":1}}"#,
            r#"{"error_code":200,"key":{"type":"JSON"}}"#,
            r#"{"error_code":200,"timestamp":"2023-11-14T23:13:20+01:00"}"#,
            r#"{"message":"no code"}"#,
            r#"{"error_code":200,"offset":1"#,
            r#"{"error_code":200,"#,
            r#"{"error_code":200,"offset":-0}"#,
            r#"{"error_code":200,"key":nul}"#,
            r#"{"error_code":200,"value":{"type":"STRING","size":1,"type":"JSON"}}"#,
            r#"{"error_code":200,"value":{"type":"string","size":1}}"#,
            r#"{"error_code":200,"cluster_id":"a"}"#,
            r#"{"error_code":200,"timestamp":"2023-11-14T22:13:2xZ"}"#,
        ] {
            assert_eq!(both(text).0, None, "{text}");
        }
    }

    #[test]
    fn the_servers_form_is_read_in_one_pass_like_serde() {
        for text in [
            r#"{"error_code":200,"cluster_id":"lkc-emulator","topic_name":"bench","partition_id":2,"offset":1000001,"timestamp":"2025-06-02T09:14:42.001Z","key":{"type":"STRING","size":7},"value":{"type":"BINARY","size":100}}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":0,"timestamp":"2025-06-02T09:14:42Z","value":{"type":"JSON","size":0}}"#,
            r#"{"error_code":200,"cluster_id":"é","topic_name":"","partition_id":-1,"offset":-5,"timestamp":"2024-02-29T23:59:59.999999999Z","key":{"type":"BINARY","size":1}}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":1,"offset":9223372036854775807,"timestamp":"1970-01-01T00:00:00.000Z"}"#,
        ] {
            let mut reader = Compact {
                text: text.as_bytes(),
                pos: 0,
            };
            let fast = delivered_in_server_form(&mut reader, None).map(|r| format!("{r:?}"));
            assert!(fast.is_some(), "{text}");
            assert_eq!(reader.pos, text.len(), "{text}");
            let serde = serde_json::from_str::<ReportWire>(text).map(|r| format!("{r:?}"));
            assert_eq!(fast, serde.ok(), "{text}");
            assert_eq!(both(text).0, fast, "{text}");
        }
        // Not the servers' form: read in any order, or left to serde.
        for text in [
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z","key":null}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z","value":{"size":1,"type":"JSON"}}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z","extra":1}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z","key":{"type":"STRINGS","size":1}}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z","value":{"type":"JSON","size":1,"x":2}}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z","value":{"type":"JSON","size":1},"value":null}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42+00:00"}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":-0,"timestamp":"2025-06-02T09:14:42Z"}"#,
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42Z""#,
        ] {
            let mut reader = Compact {
                text: text.as_bytes(),
                pos: 0,
            };
            assert!(
                delivered_in_server_form(&mut reader, None).is_none(),
                "{text}"
            );
            let (fast, serde) = both(text);
            if fast.is_some() {
                assert_eq!(fast, serde, "{text}");
            }
        }
    }

    #[test]
    fn what_a_stream_repeats_is_read_like_the_first() {
        let mut repeated = Repeated::default();
        for (cluster, topic, timestamp) in [
            ("c1", "t", "2025-06-02T09:14:42Z"),
            ("c1", "t", "2025-06-02T09:14:42Z"),
            ("c2", "t", "2025-06-02T09:14:42.5Z"),
            ("c2", "é", "2025-06-02T09:14:42.5Z"),
            ("", "t", "2025-06-02T09:14:42.50Z"),
            ("", "t", "2025-06-02T09:14:42.5Z"),
        ] {
            let text = format!(
                r#"{{"error_code":200,"cluster_id":"{cluster}","topic_name":"{topic}","partition_id":0,"offset":1,"timestamp":"{timestamp}"}}"#
            );
            let (report, len) =
                ReportWire::parse_compact_in_stream(text.as_bytes(), Some(&mut repeated)).unwrap();
            assert_eq!(len, text.len());
            assert_eq!(report.cluster_id.as_deref(), Some(cluster));
            assert_eq!(report.topic_name.as_deref(), Some(topic));
            assert_eq!(report.timestamp, Some(timestamp.parse().unwrap()));
        }
        // A timestamp that only starts like the last one.
        let text = br#"{"error_code":200,"cluster_id":"","topic_name":"t","partition_id":0,"offset":1,"timestamp":"2025-06-02T09:14:42.5Z1"}"#;
        assert!(ReportWire::parse_compact_in_stream(text, Some(&mut repeated)).is_none());
        let invalid = b"{\"error_code\":200,\"cluster_id\":\"\xff\",\"topic_name\":\"t\",\"partition_id\":0,\"offset\":1,\"timestamp\":\"2025-06-02T09:14:42Z\"}";
        assert!(ReportWire::parse_compact_in_stream(invalid, Some(&mut repeated)).is_none());
    }

    #[test]
    fn success_and_failure_reports() {
        let ok: ReportWire = serde_json::from_str(
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":1,"offset":7,"timestamp":"2021-02-05T19:14:42.123Z","key":{"type":"STRING","size":2},"value":{"type":"JSON","size":9}}"#,
        )
        .unwrap();
        let report = ok.into_result().unwrap();
        assert_eq!((report.partition, report.offset), (1, 7));
        assert_eq!(
            report.key,
            Some(PayloadSummary {
                data_type: DataType::String,
                size: 2
            })
        );
        assert_eq!(report.value.unwrap().size, 9);
        assert_eq!(report.to_string(), "t-1@7");
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":1,"offset":7,"timestamp":"2021-02-05T19:14:42.123Z","key":{"type":"STRING","size":2},"value":{"type":"JSON","size":9}}"#
        );

        let failed: ReportWire =
            serde_json::from_str(r#"{"error_code":40403,"message":"no such partition"}"#).unwrap();
        let error = failed.into_result().unwrap_err();
        assert_eq!(error.error_code(), Some(40403));
        assert_eq!(error.status(), Some(200));
        assert!(!error.is_retriable());
    }

    #[test]
    fn a_success_without_an_offset_is_outcome_unknown() {
        for text in [
            r#"{"error_code":200}"#,
            r#"{"error_code":200,"partition_id":1}"#,
            r#"{"error_code":200,"offset":7}"#,
        ] {
            let report: ReportWire = serde_json::from_str(text).unwrap();
            let error = report.into_result().unwrap_err();
            assert!(matches!(error, Error::Decode { .. }), "{text}: {error:?}");
            assert_eq!(error.status(), Some(200), "{text}");
            assert_eq!(
                error.retry_class(),
                crate::RetryClass::OutcomeUnknown,
                "{text}"
            );
        }
    }
}
