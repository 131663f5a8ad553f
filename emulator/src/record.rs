//! Parsing one produce record and turning it into the bytes that get stored.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use chrono::{DateTime, Utc};

use super::DataType;
use super::compact;
use super::raw::{RawData, RawPayload, RawRecord, Text, write_json};
use serde::de::IgnoredAny;

/// Standard alphabet, padding optional: what `BINARY` data accepts.
const BINARY_DATA: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An in-band error for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordError {
    pub code: i32,
    pub message: Cow<'static, str>,
}

impl RecordError {
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> RecordError {
        RecordError {
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl fmt::Display) -> RecordError {
        RecordError::new(400, format!("Bad Request: {message}"))
    }
}

/// Why a record could not be read.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// The JSON text itself is malformed: fatal for a stream.
    Syntax(String),
    /// Well-formed JSON that does not describe a record: an in-band 400.
    Record(RecordError),
}

/// Record headers: names and decoded values, in request order.
pub(crate) type Headers = Vec<(String, Option<Vec<u8>>)>;

/// A key or value ready to store. Its bytes borrow from the request when they
/// are the request's text as is (a `STRING` without escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload<'a> {
    pub ty: DataType,
    pub data: Option<Cow<'a, [u8]>>,
}

impl Payload<'_> {
    /// The stored byte count reported back as `size`.
    pub fn size(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }
}

/// A validated record.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub partition: Option<i64>,
    pub key: Option<Payload<'a>>,
    pub value: Option<Payload<'a>>,
    pub headers: Headers,
    pub timestamp: Option<DateTime<Utc>>,
}

impl Prepared<'_> {
    /// Key plus value bytes, as the Kafka producer's size check counts them.
    pub fn payload_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, Payload::size) + self.value.as_ref().map_or(0, Payload::size)
    }
}

/// Reads one record from its JSON text, telling malformed JSON apart from JSON
/// that does not fit the record shape.
pub(crate) fn parse(json: &[u8]) -> Result<RawRecord<'_>, ParseError> {
    // Records as clients write them are read without serde, at a fraction of
    // the cost; serde reads (or refuses) everything else.
    if let Some(record) = compact::read(json) {
        return Ok(record);
    }
    match serde_json::from_slice::<RawRecord<'_>>(json) {
        Ok(record) => Ok(record),
        Err(e) if e.is_data() => match serde_json::from_slice::<IgnoredAny>(json) {
            Err(syntax) => Err(ParseError::Syntax(syntax.to_string())),
            Ok(_) => Err(ParseError::Record(RecordError::bad_request(e))),
        },
        Err(e) => Err(ParseError::Syntax(e.to_string())),
    }
}

/// Validates a record and converts its key, value and headers to stored bytes.
/// The record's parts are taken; it is passed by reference only to spare
/// copying it.
pub(crate) fn prepare<'a>(raw: &mut RawRecord<'a>) -> Result<Prepared<'a>, RecordError> {
    let key = raw.key.take().map(|k| payload("key", k)).transpose()?;
    let value = raw.value.take().map(|v| payload("value", v)).transpose()?;
    let headers = match raw.headers.take() {
        None => Vec::new(),
        Some(headers) => headers
            .into_iter()
            .map(|h| {
                let value = match h.value {
                    None => None,
                    Some(v) => Some(STANDARD.decode(v.0.as_bytes()).map_err(|e| {
                        RecordError::bad_request(format_args!(
                            "header {:?} value is not valid base64: {e}",
                            h.name.0
                        ))
                    })?),
                };
                Ok((h.name.0.into_owned(), value))
            })
            .collect::<Result<Vec<_>, RecordError>>()?,
    };
    let timestamp = raw
        .timestamp
        .take()
        .map(|t| parse_timestamp(&t.0))
        .transpose()?;
    Ok(Prepared {
        partition: raw.partition_id,
        key,
        value,
        headers,
        timestamp,
    })
}

/// Parses an RFC 3339 timestamp and truncates it to milliseconds.
fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, RecordError> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| DateTime::from_timestamp_millis(t.timestamp_millis()))
        .ok_or_else(|| {
            RecordError::bad_request(format_args!(
                "timestamp {text:?} is not an RFC 3339 date-time"
            ))
        })
}

/// The time now, truncated to milliseconds.
pub(crate) fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

fn payload<'a>(field: &'static str, raw: RawPayload<'a>) -> Result<Payload<'a>, RecordError> {
    let uses_schema = raw.subject.is_some()
        || raw.subject_name_strategy.is_some()
        || raw.schema_id.is_some()
        || raw.schema_version.is_some()
        || raw.schema.is_some();
    let schema_error = || {
        RecordError::new(
            42206,
            "Payload error. Schema Registry must be configured when using schemas.",
        )
    };
    let Some(Text(type_name)) = raw.ty else {
        return Err(RecordError::bad_request(format_args!(
            "{field} has no \"type\"; this server has no Schema Registry, so the type must be BINARY, JSON or STRING"
        )));
    };
    let ty = match DataType::from_wire(&type_name) {
        Some(ty) => ty,
        None if matches!(&*type_name, "AVRO" | "JSONSCHEMA" | "PROTOBUF") => {
            return Err(schema_error());
        }
        None => {
            return Err(RecordError::bad_request(format_args!(
                "{field} type {type_name:?} is not one of BINARY, JSON, STRING"
            )));
        }
    };
    if uses_schema {
        return Err(schema_error());
    }
    let data = match (ty, raw.data) {
        (_, None) => None,
        (DataType::String, Some(RawData::Str(Cow::Borrowed(s)))) => {
            Some(Cow::Borrowed(s.as_bytes()))
        }
        (DataType::String, Some(RawData::Str(Cow::Owned(s)))) => Some(Cow::Owned(s.into_bytes())),
        (DataType::Binary, Some(RawData::Str(s))) => {
            Some(Cow::Owned(BINARY_DATA.decode(s.as_bytes()).map_err(
                |e| RecordError::bad_request(format_args!("{field} data is not valid base64: {e}")),
            )?))
        }
        (DataType::Json, Some(RawData::Str(s))) => {
            let mut out = Vec::with_capacity(s.len() + 2);
            write_json::<_, serde_json::Error>(&mut out, &*s).map_err(RecordError::bad_request)?;
            Some(Cow::Owned(out))
        }
        (DataType::Json, Some(RawData::Json(bytes))) => Some(Cow::Owned(bytes)),
        (DataType::String | DataType::Binary, Some(RawData::Json(_))) => {
            return Err(RecordError::bad_request(format_args!(
                "{field} data must be a JSON string for type {ty}"
            )));
        }
    };
    Ok(Payload { ty, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> Prepared<'_> {
        prepare(&mut parse(json.as_bytes()).unwrap()).unwrap()
    }

    fn record_err(json: &str) -> RecordError {
        match parse(json.as_bytes()) {
            Ok(mut raw) => prepare(&mut raw).unwrap_err(),
            Err(ParseError::Record(e)) => e,
            Err(ParseError::Syntax(s)) => panic!("unexpected syntax error {s}"),
        }
    }

    #[test]
    fn json_data_is_compact_and_ordered() {
        let p = ok(
            r#"{"value":{"data": {"b" : [1, 2.5, "x\u0041"], "a": null, "c": true},"type":"JSON"}}"#,
        );
        assert_eq!(
            &*p.value.unwrap().data.unwrap(),
            br#"{"b":[1,2.5,"xA"],"a":null,"c":true}"#
        );
        let p = ok(r#"{"value":{"type":"JSON","data":"hi"}}"#);
        assert_eq!(&*p.value.unwrap().data.unwrap(), br#""hi""#);
        let p = ok(r#"{"value":{"type":"JSON","data":{"foo": 7}}}"#);
        assert_eq!(p.value.unwrap().size(), 9);
    }

    #[test]
    fn binary_and_string() {
        let p =
            ok(r#"{"key":{"type":"BINARY","data":"AAEC"},"value":{"type":"BINARY","data":"AAE"}}"#);
        assert_eq!(&*p.key.unwrap().data.unwrap(), vec![0, 1, 2]);
        assert_eq!(&*p.value.unwrap().data.unwrap(), vec![0, 1]);
        let p = ok(r#"{"key":{"type":"STRING","data":""},"value":{"type":"STRING","data":null}}"#);
        assert_eq!(&*p.key.unwrap().data.unwrap(), Vec::<u8>::new());
        assert_eq!(p.value.unwrap().data, None);
        assert_eq!(
            record_err(r#"{"value":{"type":"BINARY","data":"AA-_"}}"#).code,
            400
        );
        assert_eq!(
            record_err(r#"{"value":{"type":"BINARY","data":"AA AA"}}"#).code,
            400
        );
        assert_eq!(
            record_err(r#"{"value":{"type":"STRING","data":5}}"#).code,
            400
        );
    }

    #[test]
    fn mapping_errors() {
        assert_eq!(record_err(r#"{"nope":1}"#).code, 400);
        assert_eq!(record_err(r#"{"value":{"data":"x"}}"#).code, 400);
        assert_eq!(
            record_err(r#"{"value":{"type":"string","data":"x"}}"#).code,
            400
        );
        assert_eq!(
            record_err(r#"{"value":{"type":"AVRO","data":"x"}}"#).code,
            42206
        );
        assert_eq!(record_err(r#"{"partition_id":"x"}"#).code, 400);
        assert_eq!(record_err(r#"{"timestamp":"yesterday"}"#).code, 400);
        assert_eq!(
            record_err(r#"{"headers":[{"name":"h","value":"AAE"}]}"#).code,
            400
        );
    }

    #[test]
    fn syntax_after_unknown_field_is_fatal() {
        assert!(matches!(
            parse(br#"{"nope":1, "x" 2}"#),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn timestamps_truncate() {
        let p = ok(r#"{"timestamp":"2024-05-06T07:08:09.123456+02:00"}"#);
        assert_eq!(
            p.timestamp
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2024-05-06T05:08:09.123Z"
        );
    }
}
