//! The requests a connection has in flight: whether it has any (a connection
//! without one is closed once quiet for the idle timeout, on HTTP/2 as on
//! HTTP/1.1), and whether one's response has waited that long on a client
//! that takes none of it (on HTTP/2 a single stream stalls without the
//! socket's writes ever waiting).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::response::{ResponseBody, StreamReset};
use super::sync::lock;

/// The requests of one connection.
pub(crate) struct InFlight {
    opened: Instant,
    state: Mutex<State>,
    /// Notified when the last request in flight ends.
    pub quiet: Notify,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Each request's response watch.
    open: HashMap<u64, Arc<Waiting>>,
    /// When the last request in flight ended.
    ended: Option<Instant>,
}

/// Since when a response has had data taken and not been asked for more:
/// microseconds from the connection's opening plus one, 0 when not waiting.
#[derive(Default)]
struct Waiting(AtomicU64);

impl InFlight {
    pub fn new() -> Arc<InFlight> {
        Arc::new(InFlight {
            opened: Instant::now(),
            state: Mutex::new(State::default()),
            quiet: Notify::new(),
        })
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
    }

    /// Notes a request that has arrived; it is in flight until the returned
    /// guard (moved into its response body) is dropped.
    pub fn begin(self: &Arc<Self>) -> Request {
        let waiting = Arc::new(Waiting::default());
        let mut state = lock(&self.state);
        let id = state.next;
        state.next += 1;
        state.open.insert(id, Arc::clone(&waiting));
        Request {
            in_flight: Arc::clone(self),
            id,
            waiting,
        }
    }

    /// When the connection last had a request in flight (when it opened,
    /// before any); `None` while one is.
    pub fn idle_since(&self) -> Option<Instant> {
        let state = lock(&self.state);
        state
            .open
            .is_empty()
            .then(|| state.ended.unwrap_or(self.opened))
    }

    /// The longest a response in flight has waited for the client to take
    /// more of it.
    pub fn stalled_for(&self) -> Duration {
        let now = self.micros();
        let state = lock(&self.state);
        let since = state
            .open
            .values()
            .map(|w| w.0.load(Ordering::Relaxed))
            .filter(|&since| since != 0)
            .min();
        match since {
            Some(since) => Duration::from_micros(now.saturating_sub(since - 1)),
            None => Duration::ZERO,
        }
    }
}

/// A request in flight.
pub(crate) struct Request {
    in_flight: Arc<InFlight>,
    id: u64,
    waiting: Arc<Waiting>,
}

impl Drop for Request {
    fn drop(&mut self) {
        let mut state = lock(&self.in_flight.state);
        state.open.remove(&self.id);
        if state.open.is_empty() {
            state.ended = Some(Instant::now());
            drop(state);
            self.in_flight.quiet.notify_one();
        }
    }
}

/// A response body that keeps its request in flight until it is dropped,
/// and notes when the connection has stopped asking for more of it: after
/// handing out data a body is polled again at once unless the peer's flow
/// control window (or the socket) is full.
pub(crate) struct Tracked {
    body: ResponseBody,
    request: Request,
}

impl Tracked {
    pub fn new(body: ResponseBody, request: Request) -> Tracked {
        Tracked { body, request }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = StreamReset;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamReset>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        let waiting = &this.request.waiting.0;
        match &polled {
            Poll::Ready(Some(Ok(_))) => {
                let since = this.request.in_flight.micros() + 1;
                waiting.store(since, Ordering::Relaxed);
            }
            _ => waiting.store(0, Ordering::Relaxed),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn requests_and_stalls() {
        let in_flight = InFlight::new();
        assert!(in_flight.idle_since().is_some());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut body = Tracked::new(ResponseBody::Stream(rx), in_flight.begin());
        assert_eq!(in_flight.idle_since(), None);
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        assert!(body.frame().await.is_some());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(in_flight.stalled_for() >= Duration::from_millis(30));
        // Asked again and nothing there: not stalled.
        let next = tokio::time::timeout(Duration::from_millis(1), body.frame()).await;
        assert!(next.is_err());
        assert_eq!(in_flight.stalled_for(), Duration::ZERO);
        drop(body);
        let since = in_flight.idle_since().expect("nothing in flight");
        assert!(since.elapsed() < Duration::from_secs(1));
    }
}
