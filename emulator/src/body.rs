//! Reads a request body within its bounds: bytes must keep arriving (the idle
//! timeout) and the body may not grow past its size limit, counted on the
//! bytes read, whether or not `Content-Length` announced them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::activity::Activity;

/// What the next read of a body gave.
pub(crate) enum Read {
    /// More of the body.
    Data(Bytes),
    /// The body is complete.
    End,
    /// The body could not be read (a broken chunk, a closed connection...).
    Failed(String),
    /// No byte arrived on the connection for the idle timeout.
    Idle,
    /// The body goes on past the size limit; everything up to the limit has
    /// been handed out.
    TooLarge,
}

/// A piece of a request body an intermediary passes on.
pub(crate) enum Piece {
    /// More of the body.
    Data(Bytes),
    /// The body is complete. A relay closed without it failed.
    End,
}

/// Where a request body comes from.
pub(crate) enum Source {
    /// Straight from the client's connection.
    Wire(Incoming),
    /// Read whole by an intermediary first (`None` once handed out).
    Whole(Option<Bytes>),
    /// Passed on piece by piece by an intermediary.
    Relayed(mpsc::Receiver<Piece>),
}

impl Source {
    /// The next frame of the body: `None` at its end.
    pub async fn frame(&mut self) -> Option<Result<Option<Bytes>, String>> {
        match self {
            Source::Wire(body) => match body.frame().await? {
                Ok(frame) => Some(Ok(frame.into_data().ok())),
                Err(error) => Some(Err(error.to_string())),
            },
            Source::Whole(whole) => whole.take().map(|data| Ok(Some(data))),
            Source::Relayed(rx) => match rx.recv().await {
                Some(Piece::Data(data)) => Some(Ok(Some(data))),
                Some(Piece::End) => None,
                None => Some(Err(
                    "the intermediary stopped passing the body on".to_owned()
                )),
            },
        }
    }
}

/// A request body read with an idle timeout and a size limit.
pub(crate) struct BodyReader {
    body: Source,
    activity: Arc<Activity>,
    idle: Duration,
    limit: Option<u64>,
    read: u64,
    over: bool,
}

/// The message of a body over the size limit (HTTP 413, or an in-band 413 once
/// a stream has answered).
pub(crate) fn too_large_message(limit: u64) -> String {
    format!("Request body is larger than the allowed {limit} bytes")
}

impl BodyReader {
    pub fn new(
        body: Source,
        activity: Arc<Activity>,
        idle: Duration,
        limit: Option<u64>,
    ) -> BodyReader {
        BodyReader {
            body,
            activity,
            idle,
            limit,
            read: 0,
            over: false,
        }
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Replaces the idle timeout.
    pub fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// The size limit, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// The rest of the body, unread.
    pub fn into_source(self) -> Source {
        self.body
    }

    /// The next piece of the body. The idle timeout runs from this call, or
    /// from the connection's last byte if that is later: a client kept waiting
    /// while its earlier bytes were handled has not been idle.
    pub async fn next(&mut self) -> Read {
        if self.over {
            return Read::TooLarge;
        }
        let called = Instant::now();
        loop {
            let quiet_since = self.activity.last().max(called);
            // A timeout too long to represent never fires.
            let deadline = quiet_since.checked_add(self.idle);
            let frame = tokio::select! {
                biased;
                frame = self.body.frame() => frame,
                () = until(deadline) => {
                    if self.activity.last() <= quiet_since {
                        return Read::Idle;
                    }
                    // Bytes arrived that were no body data yet (chunk framing,
                    // or a piece the HTTP layer keeps): wait again from them.
                    continue;
                }
            };
            match frame {
                None => return Read::End,
                Some(Err(error)) => return Read::Failed(error),
                Some(Ok(Some(data))) if !data.is_empty() => return self.count(data),
                // Empty data or trailers: nothing to hand out.
                Some(Ok(_)) => {}
            }
        }
    }

    /// Counts `data` against the limit, cutting it at the limit.
    fn count(&mut self, mut data: Bytes) -> Read {
        let Some(limit) = self.limit else {
            return Read::Data(data);
        };
        let room = limit.saturating_sub(self.read);
        let len = data.len() as u64;
        if len <= room {
            self.read += len;
            return Read::Data(data);
        }
        self.over = true;
        self.read = limit;
        if room == 0 {
            return Read::TooLarge;
        }
        // `room` is below `data.len()`, so it fits a usize.
        data.truncate(room as usize);
        Read::Data(data)
    }
}

/// Sleeps until the deadline, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
