//! HTTP/2 failures in the crate's terms: what happened, where, and whether
//! the server can have seen any of the request.

use crate::error::{OwnFailure, TransportError};

/// The connection could not be made: nothing was sent.
pub(crate) fn connect_failure(shown: &str, cause: String, timeout: bool) -> TransportError {
    TransportError::own(OwnFailure {
        what: if timeout {
            "timed out connecting"
        } else {
            "could not connect"
        },
        url: Some(shown.to_owned()),
        cause: Some(cause),
        connect: true,
        timeout,
    })
}

/// What an HTTP/2 error means for the request it ended.
pub(crate) struct StreamFailure {
    pub(crate) error: TransportError,
    /// Whether the server can have processed any of the request: false
    /// only when it said it did not (`REFUSED_STREAM`).
    pub(crate) reached: bool,
}

/// An HTTP/2 error of a request to `url`.
pub(crate) fn stream_failure(url: &str, e: &h2::Error) -> StreamFailure {
    let refused = e.reason() == Some(h2::Reason::REFUSED_STREAM) && e.is_remote();
    let what = if e.is_go_away() {
        if e.is_remote() {
            "the server ended the HTTP/2 connection (GOAWAY)"
        } else {
            "the HTTP/2 connection was ended"
        }
    } else if refused {
        "the server refused the HTTP/2 stream before reading it (REFUSED_STREAM)"
    } else if e.is_reset() && e.is_remote() {
        "the server reset the HTTP/2 stream (RST_STREAM)"
    } else if e.is_io() {
        "the connection failed"
    } else {
        "the HTTP/2 connection failed"
    };
    StreamFailure {
        error: TransportError::own(OwnFailure {
            what,
            url: Some(crate::redact::url(url)),
            cause: Some(e.to_string()),
            connect: false,
            timeout: false,
        }),
        reached: !refused,
    }
}

/// The connection went away before the request could be sent on it:
/// nothing of it left the client.
pub(crate) fn unsent_failure(url: &str, e: &h2::Error) -> StreamFailure {
    StreamFailure {
        error: TransportError::own(OwnFailure {
            what: "the HTTP/2 connection closed before the request was sent",
            url: Some(crate::redact::url(url)),
            cause: Some(e.to_string()),
            connect: true,
            timeout: false,
        }),
        reached: false,
    }
}
