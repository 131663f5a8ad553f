//! `records:batch`: a whole batch in one JSON document, answered with HTTP 207.

use std::borrow::Cow;
use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::Deserialize;

use super::record::{self, RawRecord};
use super::report::{self, SuccessWriter};
use super::scan::is_ws;
use super::server::{Charset, ResponseBody, error_response, json_response};
use super::state::{Shared, TopicLog};
use super::stream::{EMPTY_BODY, deliver};

/// `{"entries":[...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    entries: Vec<RawRecord<'a>>,
}

/// Whether an entry id is 1 to 80 characters of `[0-9A-Za-z_-]`.
fn valid_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn batch_error(message: String) -> Response<ResponseBody> {
    error_response(StatusCode::UNPROCESSABLE_ENTITY, 42208, &message)
}

/// Reads the whole batch, checks its ids and produces every entry.
pub(crate) async fn respond(
    shared: &Shared,
    topic: &TopicLog,
    charset: Charset,
    body: Incoming,
) -> Response<ResponseBody> {
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::debug!(%error, "batch body failed");
            return error_response(
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request: the request body could not be read",
            );
        }
    };
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
    let request: BatchRequest<'_> = match serde_json::from_slice(&text) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                400,
                &format!("Bad Request: Error processing JSON: {error}"),
            );
        }
    };

    let max = shared.limits.max_batch_entries;
    if request.entries.is_empty() {
        return batch_error("Payload error. A batch must hold at least one entry.".into());
    }
    if request.entries.len() > max {
        return batch_error(format!(
            "Payload error. A batch may hold at most {max} entries, this one has {}.",
            request.entries.len()
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

    let mut success_writer = SuccessWriter::new(&shared.cluster_id, topic.name());
    let mut successes = BytesMut::new();
    let mut failures = BytesMut::new();
    let mut appender = topic.appender();
    for mut entry in request.entries {
        let id = entry.id.take().map(|t| t.0).unwrap_or_default();
        match record::prepare(&mut entry).and_then(|p| deliver(shared, topic, &mut appender, p)) {
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
    use super::valid_id;

    #[test]
    fn ids() {
        assert!(valid_id("a-Z_09"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(81)));
        assert!(valid_id(&"x".repeat(80)));
    }
}
