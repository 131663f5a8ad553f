//! Response bodies read up to a bound: a server (or anything between) can
//! send an endless body, and nothing read from outside may grow memory
//! without limit. Past the bound the rest is not read: dropping the
//! response closes the connection rather than draining it.

use crate::limits::MAX_ERROR_BODY_BYTES;
use bytes::{Bytes, BytesMut};

/// The start of a body, at most the bound asked for.
#[derive(Debug)]
pub(crate) struct Limited {
    pub(crate) bytes: Bytes,
    /// Whether the body went on past the bound.
    pub(crate) overflowed: bool,
}

/// Reads `response`'s body, at most `limit` bytes of it.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Limited, reqwest::Error> {
    let mut out = BytesMut::new();
    while let Some(piece) = response.chunk().await? {
        let room = limit - out.len();
        if piece.len() > room {
            out.extend_from_slice(&piece[..room]);
            return Ok(Limited {
                bytes: out.freeze(),
                overflowed: true,
            });
        }
        out.extend_from_slice(&piece);
    }
    Ok(Limited {
        bytes: out.freeze(),
        overflowed: false,
    })
}

/// `response` with its body read into memory, a success body at most
/// `success_limit` bytes and any other at most
/// [`MAX_ERROR_BODY_BYTES`]; also whether the body was cut there (the bound
/// it went past). Status, version and headers are kept, so the answer is
/// decoded as if it came from the wire.
pub(crate) async fn in_memory(
    response: reqwest::Response,
    success_limit: usize,
) -> Result<(reqwest::Response, Option<usize>), reqwest::Error> {
    let limit = if response.status().is_success() {
        success_limit
    } else {
        MAX_ERROR_BODY_BYTES
    };
    let (status, version, headers) = (
        response.status(),
        response.version(),
        response.headers().clone(),
    );
    let limited = read_limited(response, limit).await?;
    let mut kept = http::Response::new(limited.bytes);
    *kept.status_mut() = status;
    *kept.version_mut() = version;
    *kept.headers_mut() = headers;
    let overflowed = limited.overflowed.then_some(limit);
    Ok((reqwest::Response::from(kept), overflowed))
}
