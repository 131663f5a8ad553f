//! Outcomes in input order from a window of records handed to the producer.
//!
//! Like `StreamExt::buffered`, but only the oldest entry is polled. The
//! producer resolves each connection's records in order, so polling every
//! entry of the window, as `buffered` does, costs wake-ups per record and
//! finds nothing new.

use crate::output::{Failure, Outcome};
use ccloud_kafka_rest::DeliveryFuture;
use futures_util::stream::{Stream, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A record handed to the producer, or why it could not be.
pub type Handed = Result<DeliveryFuture, Failure>;

/// See the module documentation.
pub struct InOrder<S> {
    source: Option<S>,
    window: VecDeque<Handed>,
    limit: usize,
}

/// Outcomes of `source`'s records in order, with at most `limit` waiting.
pub fn in_order<S: Stream<Item = Handed> + Unpin>(source: S, limit: usize) -> InOrder<S> {
    InOrder {
        source: Some(source),
        window: VecDeque::new(),
        limit: limit.max(1),
    }
}

impl<S: Stream<Item = Handed> + Unpin> Stream for InOrder<S> {
    type Item = Outcome;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        let this = self.get_mut();
        while this.window.len() < this.limit {
            let Some(source) = this.source.as_mut() else {
                break;
            };
            match source.poll_next_unpin(cx) {
                Poll::Ready(Some(handed)) => this.window.push_back(handed),
                Poll::Ready(None) => this.source = None,
                Poll::Pending => break,
            }
        }
        if let Some(Err(_)) = this.window.front() {
            let Some(Err(failure)) = this.window.pop_front() else {
                unreachable!("the front was checked")
            };
            return Poll::Ready(Some(Err(failure)));
        }
        let Some(Ok(delivery)) = this.window.front_mut() else {
            return match this.source {
                Some(_) => Poll::Pending,
                None => Poll::Ready(None),
            };
        };
        let result = std::task::ready!(Pin::new(delivery).poll(cx));
        this.window.pop_front();
        Poll::Ready(Some(result.map_err(Failure::from)))
    }
}
