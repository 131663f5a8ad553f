//! An emulator extension, not part of Confluent's API: what a topic holds,
//! for any client.
//!
//! `GET /emulator/topics/{topic}/records[?partition=N][&from_offset=M]`
//! answers the stored records as JSON lines (`application/x-ndjson`), one
//! object per record, ordered by partition then offset, in the produce API's
//! own shape with the stored bytes:
//!
//! ```text
//! {"partition_id":0,"offset":0,"timestamp":"2026-01-01T00:00:00.000Z",
//!  "key":{"type":"BINARY","data":"<base64>"}|null,
//!  "value":{"type":"BINARY","data":"<base64>"}|null,
//!  "headers":[{"name":"…","value":"<base64>"|null}]}
//! ```
//!
//! When the emulator has credentials configured, the request needs one of
//! them, as a produce request does.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::SecondsFormat;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode};
use tokio::sync::mpsc;

use super::log::LogRecord;
use super::path::percent_decode;
use super::report::json_string;
use super::response::{Chunk, ResponseBody, error_response, method_not_allowed};
use super::state::{Shared, TopicLog};

/// The path prefix of the extension.
const PREFIX: &str = "/emulator/topics/";

/// A page of the answer: written while its partition is locked, so small
/// enough not to hold producers up for long.
const PAGE_RECORDS: usize = 512;
const PAGE_BYTES: usize = 64 * 1024;

/// The topic a path asks for, when it is the extension's path; `Some(None)`
/// for a path under the prefix that is not a valid one.
pub(crate) fn topic_of(path: &str) -> Option<Option<String>> {
    let rest = path.strip_prefix(PREFIX)?;
    let topic = rest
        .strip_suffix("/records")
        .filter(|t| !t.is_empty() && !t.contains('/'))
        .and_then(percent_decode);
    Some(topic)
}

/// What the query narrows the answer to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    partition: Option<i32>,
    from_offset: usize,
}

fn parse_query(query: Option<&str>) -> Result<Query, String> {
    let mut parsed = Query::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "partition" => {
                let partition = value.parse::<i32>().ok().filter(|p| *p >= 0);
                parsed.partition = Some(partition.ok_or_else(|| {
                    format!("partition={value:?} is not a partition number (0 or more)")
                })?);
            }
            "from_offset" => {
                parsed.from_offset = value
                    .parse::<usize>()
                    .map_err(|_| format!("from_offset={value:?} is not an offset (0 or more)"))?;
            }
            _ => {
                return Err(format!(
                    "unknown query parameter {name:?}: the parameters are partition and from_offset"
                ));
            }
        }
    }
    Ok(parsed)
}

/// Answers a request under [`PREFIX`].
pub(crate) fn respond(
    shared: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    topic: Option<String>,
    query: Option<&str>,
) -> Response<ResponseBody> {
    let Some(topic) = topic else {
        return error_response(
            StatusCode::NOT_FOUND,
            404,
            "HTTP 404 Not Found: the emulator's records are at /emulator/topics/{topic}/records",
        );
    };
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    if shared.auth.authenticate(headers).is_none() {
        return error_response(StatusCode::UNAUTHORIZED, 40101, "Authentication failed");
    }
    let query = match parse_query(query) {
        Ok(query) => query,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, 400, &message),
    };
    let Some(log) = shared.topics.lookup(&topic) else {
        return error_response(
            StatusCode::NOT_FOUND,
            40403,
            &format!("Topic '{topic}' not found."),
        );
    };
    let partitions = match query.partition {
        Some(p) if p >= log.partition_count() => {
            return error_response(
                StatusCode::NOT_FOUND,
                40402,
                &format!("Partition {p} of topic '{topic}' not found."),
            );
        }
        Some(p) => p..p + 1,
        None => 0..log.partition_count(),
    };
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(write_pages(log, partitions, query.from_offset, tx));
    let mut response = Response::new(ResponseBody::Stream(rx));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Sends the records of `partitions` from `from_offset` on, a page at a time,
/// until they are all sent or the client is gone.
async fn write_pages(
    log: Arc<TopicLog>,
    partitions: std::ops::Range<i32>,
    from_offset: usize,
    tx: mpsc::Sender<Chunk>,
) {
    for partition in partitions {
        let mut next = from_offset;
        loop {
            let page = log.with_partition(partition, |records| {
                let mut out = Vec::new();
                let mut taken = 0;
                for record in records.iter_from(next) {
                    write_line(partition, &record, &mut out);
                    taken += 1;
                    if taken == PAGE_RECORDS || out.len() >= PAGE_BYTES {
                        break;
                    }
                }
                (out, taken)
            });
            let Some((out, taken)) = page else { break };
            if taken == 0 {
                break;
            }
            next += taken;
            if tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
        }
    }
}

/// One record as a JSON line.
fn write_line(partition: i32, record: &LogRecord<'_>, out: &mut Vec<u8>) {
    let data = |bytes: Option<&[u8]>| match bytes {
        Some(bytes) => format!(
            "{{\"type\":\"BINARY\",\"data\":\"{}\"}}",
            STANDARD.encode(bytes)
        ),
        None => "null".to_owned(),
    };
    let headers = record
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.as_deref().map_or_else(
                || "null".to_owned(),
                |v| format!("\"{}\"", STANDARD.encode(v)),
            );
            format!("{{\"name\":{},\"value\":{value}}}", json_string(name))
        })
        .collect::<Vec<_>>()
        .join(",");
    let line = format!(
        "{{\"partition_id\":{partition},\"offset\":{},\"timestamp\":\"{}\",\"key\":{},\"value\":{},\"headers\":[{headers}]}}\n",
        record.offset,
        record
            .timestamp
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        data(record.key),
        data(record.value),
    );
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            topic_of("/emulator/topics/demo/records"),
            Some(Some("demo".into()))
        );
        assert_eq!(
            topic_of("/emulator/topics/a%2Eb/records"),
            Some(Some("a.b".into()))
        );
        assert_eq!(topic_of("/emulator/topics//records"), Some(None));
        assert_eq!(topic_of("/emulator/topics/a/b/records"), Some(None));
        assert_eq!(topic_of("/emulator/topics/demo"), Some(None));
        assert_eq!(topic_of("/v3/clusters/c/topics/t/records"), None);
    }

    #[test]
    fn queries() {
        assert_eq!(parse_query(None), Ok(Query::default()));
        assert_eq!(
            parse_query(Some("partition=2&from_offset=10")),
            Ok(Query {
                partition: Some(2),
                from_offset: 10
            })
        );
        for bad in [
            "partition=-1",
            "partition=x",
            "from_offset=-3",
            "limit=5",
            "partition",
        ] {
            let error = parse_query(Some(bad)).unwrap_err();
            assert!(!error.is_empty(), "{bad}");
        }
    }
}
