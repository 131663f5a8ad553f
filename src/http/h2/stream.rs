//! One request on a leased stream: the body pumped from the lane's channel
//! within HTTP/2 flow control, the response read back with its window
//! given back as it is read.

use super::failure::{StreamFailure, stream_failure, unsent_failure};
use super::pool::Lease;
use crate::error::TransportError;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::sync::Arc;

/// The response to a request on the pool: its head, and its body.
pub(crate) struct H2Response {
    pub(crate) head: http::response::Parts,
    pub(crate) body: H2Body,
}

/// A response body being read.
pub(crate) struct H2Body {
    recv: h2::RecvStream,
    url: String,
    /// The stream counts on its connection until the body is dropped.
    _lease: Arc<Lease>,
}

impl H2Body {
    /// The next piece of the body, `None` at its end.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        match self.recv.data().await? {
            Ok(piece) => {
                // Read off the stream: the server may send as much again.
                let _ = self.recv.flow_control().release_capacity(piece.len());
                Some(Ok(piece))
            }
            Err(e) => Some(Err(stream_failure(&self.url, &e).error)),
        }
    }

    /// The body as a byte stream (errors as `io::Error`), for readers of
    /// reqwest responses.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::unfold(self, |mut body| async move {
            let next = body.next().await?;
            Some((next.map_err(std::io::Error::other), body))
        })
    }
}

/// Sends `request` (its URI the full URL) with `body` on `lease`'s
/// connection and waits for the response head. The body is pumped on a
/// task of its own, so that records go up while reports come down.
pub(crate) async fn send<B>(
    lease: Lease,
    request: http::Request<()>,
    body: B,
) -> Result<H2Response, StreamFailure>
where
    B: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let url = request.uri().to_string();
    // Waits while the connection is at the server's stream limit.
    let mut sender = lease
        .connection
        .send
        .clone()
        .ready()
        .await
        .map_err(|e| unsent_failure(&url, &e))?;
    let (response, upload) = sender
        .send_request(request, false)
        .map_err(|e| unsent_failure(&url, &e))?;
    let lease = Arc::new(lease);
    tokio::spawn(pump(upload, body, Arc::clone(&lease)));
    let response = response.await.map_err(|e| stream_failure(&url, &e))?;
    let (head, recv) = response.into_parts();
    Ok(H2Response {
        head,
        body: H2Body {
            recv,
            url,
            _lease: lease,
        },
    })
}

/// Writes the body's pieces as the stream's window allows, then ends the
/// stream. A body that fails (the lane gave the request up) resets it.
async fn pump<B>(mut upload: h2::SendStream<Bytes>, mut body: B, _lease: Arc<Lease>)
where
    B: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    while let Some(piece) = body.next().await {
        let Ok(mut piece) = piece else {
            upload.send_reset(h2::Reason::CANCEL);
            return;
        };
        while !piece.is_empty() {
            upload.reserve_capacity(piece.len());
            let granted = std::future::poll_fn(|cx| upload.poll_capacity(cx)).await;
            let Some(Ok(granted)) = granted else {
                // The stream was reset or the connection ended: the
                // response side reports it.
                return;
            };
            if granted == 0 {
                continue;
            }
            let part = piece.split_to(granted.min(piece.len()));
            if upload.send_data(part, false).is_err() {
                return;
            }
        }
    }
    let _ = upload.send_data(Bytes::new(), true);
}
