//! `records:batch`: a whole batch in one JSON document, answered with HTTP 207.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::body::{BodyReader, Read};
use super::raw::RawRecord;
use super::record;
use super::report::{self, SuccessWriter};
use super::response::{
    Charset, ResponseBody, error_response, json_response, payload_too_large, request_timeout,
    unreadable_body,
};
use super::scan::is_ws;
use super::state::{Shared, TopicLog};
use super::stream::{EMPTY_BODY, deliver};

/// `{"entries":[...]}` with at most `max` entries kept: the others are read
/// (so that a malformed one is still a 400) and counted, not stored, so that
/// countless tiny entries take no memory beyond the body's text.
struct BatchRequest<'a> {
    entries: Vec<RawRecord<'a>>,
    /// How many entries the request holds.
    count: usize,
}

/// Reads a [`BatchRequest`] keeping up to `max` entries.
#[derive(Clone, Copy)]
struct Bounded {
    max: usize,
}

const FIELDS: &[&str] = &["entries"];

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = BatchRequest<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("BatchRequest", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = BatchRequest<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct BatchRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = None;
        while let Some(Entries) = map.next_key()? {
            if request.is_some() {
                return Err(de::Error::duplicate_field("entries"));
            }
            request = Some(map.next_value_seed(EntryList(self))?);
        }
        request.ok_or_else(|| de::Error::missing_field("entries"))
    }
}

/// The one field name, `entries`.
struct Entries;

impl<'de> de::Deserialize<'de> for Entries {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Entries, E> {
                match name {
                    "entries" => Ok(Entries),
                    _ => Err(de::Error::unknown_field(name, FIELDS)),
                }
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// The `entries` array.
struct EntryList(Bounded);

impl<'de> DeserializeSeed<'de> for EntryList {
    type Value = BatchRequest<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntryList {
    type Value = BatchRequest<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let max = self.0.max;
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(max));
        let mut count = 0usize;
        while let Some(entry) = seq.next_element::<RawRecord<'de>>()? {
            count += 1;
            if entries.len() < max {
                entries.push(entry);
            }
        }
        Ok(BatchRequest { entries, count })
    }
}

/// Parses a batch request, keeping up to `max` entries.
fn parse(text: &[u8], max: usize) -> serde_json::Result<BatchRequest<'_>> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let request = Bounded { max }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(request)
}

/// Whether an entry id is 1 to 80 characters of `[0-9A-Za-z_-]`.
fn valid_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The length of each entry's JSON text as sent (in bytes of the request's
/// charset), which the rate limits count; `None` if the text is not a batch.
fn entry_costs(text: &[u8], latin1: bool) -> Option<Vec<usize>> {
    #[derive(Deserialize)]
    struct Spans<'a> {
        #[serde(borrow)]
        entries: Vec<&'a RawValue>,
    }
    let spans: Spans<'_> = serde_json::from_slice(text).ok()?;
    let cost = |entry: &RawValue| match latin1 {
        // Each ISO-8859-1 byte was decoded to one character.
        true => entry.get().chars().count(),
        false => entry.get().len(),
    };
    Some(spans.entries.iter().map(|e| cost(e)).collect())
}

fn batch_error(message: String) -> Response<ResponseBody> {
    error_response(StatusCode::UNPROCESSABLE_ENTITY, 42208, &message)
}

/// Reads the whole batch (within its size limit and idle timeout), checks its
/// ids and produces every entry.
pub(crate) async fn respond(
    shared: &Shared,
    cluster: &str,
    topic: &TopicLog,
    charset: Charset,
    mut body: BodyReader,
) -> Response<ResponseBody> {
    let mut bytes = BytesMut::new();
    loop {
        match body.next().await {
            Read::Data(data) => bytes.extend_from_slice(&data),
            Read::End => break,
            Read::Failed(error) => {
                tracing::debug!(%error, "batch body failed");
                return unreadable_body();
            }
            Read::Idle => {
                tracing::debug!("batch body idle; answering 408");
                return request_timeout(body.idle());
            }
            Read::TooLarge => return payload_too_large(body.limit().unwrap_or_default()),
        }
    }
    if bytes.iter().all(|&b| is_ws(b)) {
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, 422, EMPTY_BODY);
    }
    let text: Cow<'_, [u8]> = match charset {
        Charset::Utf8 => Cow::Borrowed(&bytes[..]),
        Charset::Latin1 => Cow::Owned(
            bytes
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes(),
        ),
    };
    let max = shared.limits.max_batch_entries;
    let request = match parse(&text, max) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                400,
                &format!("Bad Request: Error processing JSON: {error}"),
            );
        }
    };

    if request.count == 0 {
        return batch_error("Payload error. A batch must hold at least one entry.".into());
    }
    if request.count > max {
        return batch_error(format!(
            "Payload error. A batch may hold at most {max} entries, this one has {}.",
            request.count
        ));
    }
    let mut seen = HashSet::with_capacity(request.entries.len());
    for entry in &request.entries {
        let Some(id) = entry.id.as_ref().map(|t| t.0.as_ref()) else {
            return batch_error("Payload error. Every batch entry needs an id.".into());
        };
        if !valid_id(id) {
            return batch_error(format!(
                "Payload error. Batch entry id {id:?} must be 1 to 80 characters of [0-9A-Za-z_-]."
            ));
        }
        if !seen.insert(id) {
            return batch_error(format!(
                "Payload error. Batch entry id {id:?} is used more than once."
            ));
        }
    }
    drop(seen);

    // Only worked out when a rate limit may count them.
    let costs = match shared.rate_limiter.is_on() {
        true => entry_costs(&text, charset == Charset::Latin1),
        false => None,
    }
    .unwrap_or_default();
    // Batch entries carry no error_code on success whatever the version.
    let mut success_writer = SuccessWriter::new(cluster, topic.name(), false);
    let mut successes = BytesMut::new();
    let mut failures = BytesMut::new();
    let mut appender = topic.appender();
    for (index, mut entry) in request.entries.into_iter().enumerate() {
        let id = entry.id.take().map(|t| t.0).unwrap_or_default();
        let cost = costs.get(index).copied().unwrap_or(text.len());
        let delivered = record::prepare(&mut entry)
            .and_then(|p| deliver(shared, cluster, topic, &mut appender, p, cost));
        match delivered {
            Ok(delivered) => {
                if !successes.is_empty() {
                    successes.put_u8(b',');
                }
                success_writer.write(&mut successes, Some(&id), &delivered);
            }
            Err(error) => {
                if !failures.is_empty() {
                    failures.put_u8(b',');
                }
                report::write_failure(&mut failures, Some(&id), error.code, &error.message);
            }
        }
    }
    let mut body = BytesMut::with_capacity(successes.len() + failures.len() + 32);
    body.put_slice(b"{\"successes\":[");
    body.put_slice(&successes);
    body.put_slice(b"],\"failures\":[");
    body.put_slice(&failures);
    body.put_slice(b"]}");
    json_response(StatusCode::MULTI_STATUS, Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::{entry_costs, valid_id};

    #[test]
    fn costs_are_each_entrys_text() {
        let text =
            br#"{"entries": [ {"id":"1"} , {"id":"2","value":{"type":"BINARY","data":"AAAA"}}]}"#;
        assert_eq!(entry_costs(text, false), Some(vec![10, 50]));
        let latin1 = "{\"entries\":[{\"id\":\"\u{e9}\"}]}";
        assert_eq!(entry_costs(latin1.as_bytes(), true), Some(vec![10]));
        assert_eq!(entry_costs(b"[]", false), None);
    }

    #[test]
    fn ids() {
        assert!(valid_id("a-Z_09"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(81)));
        assert!(valid_id(&"x".repeat(80)));
    }
}
