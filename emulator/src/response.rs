//! The responses every endpoint shares: the body type, JSON errors and the
//! HTTP-level refusals of a request body.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::body::too_large_message;
use super::report::json_string;

/// A response body: either complete up front or fed by a streaming task.
pub(crate) enum ResponseBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Chunk>),
}

/// What a streaming task hands its response: more of the body, or the end
/// of it as a failure.
pub(crate) type Chunk = Result<Bytes, StreamReset>;

/// A response body that fails on purpose. hyper answers it on HTTP/2 with
/// `RST_STREAM` (`INTERNAL_ERROR`, as it sends for any body error) on that
/// stream alone, and on HTTP/1.1 by closing the connection, the body
/// unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamReset;

impl fmt::Display for StreamReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stream is reset as instructed")
    }
}

impl std::error::Error for StreamReset {}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = StreamReset;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamReset>>> {
        match self.get_mut() {
            ResponseBody::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| b.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// The character set of a JSON request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    Utf8,
    Latin1,
}

/// A JSON error body `{"error_code":code,"message":message}`.
pub(crate) fn error_response(
    status: StatusCode,
    code: i32,
    message: &str,
) -> Response<ResponseBody> {
    let body = format!(
        "{{\"error_code\":{code},\"message\":{}}}",
        json_string(message)
    );
    json_response(status, Bytes::from(body))
}

/// A complete JSON response.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::Full(Some(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// HTTP 413 for a body over `limit` bytes.
pub(crate) fn payload_too_large(limit: u64) -> Response<ResponseBody> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        413,
        &too_large_message(limit),
    )
}

/// HTTP 400 for a request body that failed to arrive (a broken connection or
/// chunk framing).
pub(crate) fn unreadable_body() -> Response<ResponseBody> {
    error_response(
        StatusCode::BAD_REQUEST,
        400,
        "Bad Request: the request body could not be read",
    )
}

/// HTTP 408 for a request body that stopped arriving for `idle`.
pub(crate) fn request_timeout(idle: Duration) -> Response<ResponseBody> {
    error_response(
        StatusCode::REQUEST_TIMEOUT,
        408,
        &format!("Request Timeout: no byte of the request body arrived for {idle:?}"),
    )
}

/// HTTP 405 for a path that answers only `allowed`.
pub(crate) fn method_not_allowed(allowed: &'static str) -> Response<ResponseBody> {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "HTTP 405 Method Not Allowed",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    response
}
