//! Delivery reports: what the server says about each record.

use crate::error::{ApiError, Error};
use crate::record::DataType;
use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// Where a record was written.
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
    pub key: Option<StoredData>,
    /// Type and stored size of the value; `None` for a null value.
    pub value: Option<StoredData>,
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
pub struct StoredData {
    /// How the data was read.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Bytes stored.
    pub size: u64,
}

/// A delivery report as the server writes it, success or failure.
#[derive(Debug, Deserialize)]
pub(crate) struct ReportWire {
    error_code: i32,
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
    key: Option<StoredData>,
    #[serde(default)]
    value: Option<StoredData>,
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

    /// `"name":`
    fn key(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.pos;
        let len = self.text[start..].iter().position(|&b| b == b'"')?;
        self.pos += len + 1;
        self.byte(b':')?;
        Some(&self.text[start..start + len])
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.byte(b'"')?;
        let start = self.pos;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.pos += len;
        self.byte(b'"')?;
        std::str::from_utf8(&self.text[start..start + len]).ok()
    }

    /// An integer as JSON writes it (no leading zeros, no fraction).
    fn int(&mut self) -> Option<i64> {
        let negative = self.text.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let mut value: i64 = 0;
        while let Some(&b) = self.text.get(self.pos).filter(|b| b.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && self.text[start] == b'0') {
            return None;
        }
        if matches!(self.text.get(self.pos), Some(b'.' | b'e' | b'E') | None) {
            return None;
        }
        Some(if negative { -value } else { value })
    }

    /// `null`, or what `read` reads. The outer `None` means "not compact".
    fn or_null<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.text[self.pos..].starts_with(b"null") {
            self.pos += 4;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// `{"type":"STRING","size":3}`, fields in either order.
    fn stored(&mut self) -> Option<StoredData> {
        self.byte(b'{')?;
        let (mut data_type, mut size) = (None, None);
        loop {
            match self.key()? {
                b"type" if data_type.is_none() => {
                    data_type = Some(DataType::from_wire(self.string()?)?);
                }
                b"size" if size.is_none() => size = Some(u64::try_from(self.int()?).ok()?),
                _ => return None,
            }
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        Some(StoredData {
            data_type: data_type?,
            size: size?,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with 1 to 9 fraction digits, or `None`.
fn utc_timestamp(text: &[u8]) -> Option<DateTime<Utc>> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        text.get(range)?.iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if text.len() < 20 || separators.iter().any(|&(i, c)| text[i] != c) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let nanos = match &text[19..] {
        b"Z" => 0,
        [b'.', fraction @ .., b'Z'] if (1..=9).contains(&fraction.len()) => {
            digits(20..20 + fraction.len())? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    if second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some(
        date.and_hms_nano_opt(hour, minute, second, nanos)?
            .and_utc(),
    )
}

impl ReportWire {
    /// Reads one report in the compact form servers write, without serde:
    /// returns it and its length, or `None` for anything else (whitespace,
    /// escapes, unknown or repeated fields, other value types, a cut
    /// report), which is then left to serde.
    pub(crate) fn parse_compact(text: &[u8]) -> Option<(ReportWire, usize)> {
        let mut reader = Compact { text, pos: 0 };
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
                6 => {
                    report.timestamp = reader.or_null(|r| utc_timestamp(r.string()?.as_bytes()))?;
                }
                7 => report.key = reader.or_null(Compact::stored)?,
                _ => report.value = reader.or_null(Compact::stored)?,
            }
            match reader.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        // error_code is required.
        (seen & 1 != 0).then_some((report, reader.pos))
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
                in_band: true,
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
            _ => Err(Error::Decode {
                raw: format!("{self:?}"),
                source: serde::de::Error::custom(
                    "a successful delivery report without partition_id and offset",
                ),
            }),
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
        ] {
            assert_eq!(both(text).0, None, "{text}");
        }
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
            Some(StoredData {
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
}
