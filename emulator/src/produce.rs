//! The produce endpoints behind the connection: routing a request to its
//! stream or batch handler after the checks every produce request gets.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::sync::Notify;

use super::activity::Activity;
use super::body::{BodyReader, Source};
use super::faults::HttpFault;
use super::path::percent_decode;
use super::response::{
    Charset, ResponseBody, error_response, method_not_allowed, payload_too_large,
};
use super::state::Shared;
use super::{batch, stream};

fn fault_response(fault: &HttpFault) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(
        fault.body().to_owned(),
    ))));
    *response.status_mut() =
        StatusCode::from_u16(fault.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = HeaderValue::from_str(fault.content_type()) {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    if let Some(seconds) = fault.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// What a request's handler knows of its connection.
pub(crate) struct Connection {
    /// Drops the connection when notified (on HTTP/2, all its streams).
    pub kill: Arc<Notify>,
    /// Sends GOAWAY when notified, then drops the connection after
    /// [`GOAWAY_GRACE`](super::GOAWAY_GRACE).
    pub goaway: Arc<Notify>,
    /// When the request last received a byte: on HTTP/1.1 any byte of the
    /// connection; on HTTP/2, where streams share the connection, the
    /// request's own.
    pub activity: Arc<Activity>,
}

/// The produce endpoint a path addresses.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    cluster: String,
    topic: String,
    batch: bool,
}

/// Matches `{prefix}/clusters/{cluster}/topics/{topic}/records[:batch]` with the
/// `/kafka/v3` or `/v3` prefix.
fn parse_path(path: &str) -> Option<Target> {
    let rest = path
        .strip_prefix("/kafka/v3/")
        .or_else(|| path.strip_prefix("/v3/"))?;
    let mut parts = rest.split('/');
    let (Some("clusters"), Some(cluster), Some("topics"), Some(topic), Some(tail), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let batch = match tail {
        "records" => false,
        "records:batch" | "records%3Abatch" | "records%3abatch" => true,
        _ => return None,
    };
    let cluster = percent_decode(cluster)?;
    let topic = percent_decode(topic)?;
    if cluster.is_empty() || topic.is_empty() {
        return None;
    }
    Some(Target {
        cluster,
        topic,
        batch,
    })
}

/// Why a `Content-Type` is refused.
#[derive(Debug, PartialEq, Eq)]
enum MediaTypeError {
    /// Not JSON (or absent): HTTP 415.
    Unsupported,
    /// JSON in a charset other than UTF-8 or ISO-8859-1: HTTP 400.
    Charset(String),
}

impl MediaTypeError {
    fn response(&self) -> Response<ResponseBody> {
        match self {
            MediaTypeError::Unsupported => error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                "HTTP 415 Unsupported Media Type",
            ),
            MediaTypeError::Charset(charset) => error_response(
                StatusCode::BAD_REQUEST,
                400,
                &format!("Unsupported charset: {charset}"),
            ),
        }
    }
}

/// Checks `Content-Type`: JSON with a UTF-8 or ISO-8859-1 charset (or none).
fn content_type(headers: &HeaderMap) -> Result<Charset, MediaTypeError> {
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(MediaTypeError::Unsupported)?;
    let mut params = value.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(MediaTypeError::Unsupported);
    }
    let mut charset = Charset::Utf8;
    for param in params {
        let Some((name, val)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            continue;
        }
        let val = val.trim().trim_matches('"');
        charset = if val.eq_ignore_ascii_case("utf-8") || val.eq_ignore_ascii_case("utf8") {
            Charset::Utf8
        } else if val.eq_ignore_ascii_case("iso-8859-1") || val.eq_ignore_ascii_case("latin1") {
            Charset::Latin1
        } else {
            return Err(MediaTypeError::Charset(val.to_owned()));
        };
    }
    Ok(charset)
}

/// Whether a path addresses a produce endpoint.
pub(crate) fn is_produce_path(path: &str) -> bool {
    parse_path(path).is_some()
}

/// Handles a request for the produce endpoints (or any other path), its body
/// read from `req`.
pub(crate) async fn produce(
    shared: &Arc<Shared>,
    connection: Connection,
    req: Request<Source>,
) -> Response<ResponseBody> {
    let idle = shared.limits.idle_timeout;
    if let Some(fault) = shared.faults.take_http() {
        return fault_response(&fault);
    }
    let Some(target) = parse_path(req.uri().path()) else {
        return error_response(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found");
    };
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let Some(principal) = shared.auth.authenticate(req.headers()) else {
        return error_response(StatusCode::UNAUTHORIZED, 40101, "Authentication failed");
    };
    let charset = match content_type(req.headers()) {
        Ok(charset) => charset,
        Err(error) => return error.response(),
    };
    if shared.served_cluster(&target.cluster).is_none() {
        return error_response(
            StatusCode::NOT_FOUND,
            404,
            &format!("Cluster {} not found", target.cluster),
        );
    }
    if !shared.auth.may_produce(&principal, &target.topic) {
        return error_response(StatusCode::FORBIDDEN, 40301, "Request is not authorized");
    }
    let limit = shared.limits.request_bytes(target.batch);
    if let Some(limit) = limit {
        // A body announced too large is refused unread; the others are
        // counted as they are read.
        let length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|length| length > limit) {
            return payload_too_large(limit);
        }
    }
    let Some(topic) = shared.topics.for_produce(&target.topic) else {
        return error_response(
            StatusCode::NOT_FOUND,
            40403,
            &format!("Topic '{}' not found.", target.topic),
        );
    };
    let body = BodyReader::new(req.into_body(), connection.activity, idle, limit);
    if target.batch {
        batch::respond(shared, &target.cluster, &topic, charset, body).await
    } else {
        let cluster = target.cluster;
        let ends = stream::Ends {
            kill: connection.kill,
            goaway: connection.goaway,
        };
        stream::respond(Arc::clone(shared), cluster, topic, charset, body, ends).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_path("/kafka/v3/clusters/lkc-1/topics/orders/records").unwrap();
        assert_eq!(
            (t.cluster.as_str(), t.topic.as_str(), t.batch),
            ("lkc-1", "orders", false)
        );
        let t = parse_path("/v3/clusters/c/topics/a%2Eb/records:batch").unwrap();
        assert_eq!((t.topic.as_str(), t.batch), ("a.b", true));
        assert!(parse_path("/v3/clusters/c/topics/t/records/").is_none());
        assert!(parse_path("/v2/clusters/c/topics/t/records").is_none());
        assert!(parse_path("/v3/clusters/c/topics//records").is_none());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(content_type(&h).is_err());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        assert_eq!(content_type(&h), Ok(Charset::Utf8));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON;charset=\"iso-8859-1\""),
        );
        assert_eq!(content_type(&h), Ok(Charset::Latin1));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-16"),
        );
        assert_eq!(
            content_type(&h),
            Err(MediaTypeError::Charset("utf-16".into()))
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(content_type(&h), Err(MediaTypeError::Unsupported));
    }
}
