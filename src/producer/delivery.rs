//! A record on its way: its encoded bytes, its attempts, and the one place
//! its outcome is delivered to the caller.

use super::stats::Stats;
use crate::error::Error;
use crate::report::DeliveryReport;
use backon::ExponentialBackoff;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

/// Resolves to a record's delivery report, or to the error that ended its
/// attempts. Every record handed to the producer resolves exactly once.
/// Dropping the future does not cancel the record.
#[derive(Debug)]
pub struct DeliveryFuture {
    receiver: oneshot::Receiver<Result<DeliveryReport, Error>>,
}

impl DeliveryFuture {
    pub(crate) fn resolved(result: Result<DeliveryReport, Error>) -> DeliveryFuture {
        let (sender, receiver) = oneshot::channel();
        let _ = sender.send(result);
        DeliveryFuture { receiver }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<DeliveryReport, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(Error::Closed)))
    }
}

/// A record the producer holds until its outcome is known.
pub(crate) struct Pending {
    pub(crate) encoded: Bytes,
    pub(crate) attempts: u32,
    pub(crate) deadline: Instant,
    pub(crate) possibly_duplicated: bool,
    /// When the record may be written again after a retriable failure.
    pub(crate) not_before: Option<Instant>,
    pub(crate) backoff: Option<ExponentialBackoff>,
    pub(crate) last_error: Option<Error>,
    sender: Option<oneshot::Sender<Result<DeliveryReport, Error>>>,
    stats: Arc<Stats>,
    // Held until the outcome is delivered: this is what bounds memory.
    _records: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Pending {
    pub(crate) fn new(
        encoded: Bytes,
        deadline: Instant,
        stats: Arc<Stats>,
        permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) -> (Pending, DeliveryFuture) {
        let (sender, receiver) = oneshot::channel();
        stats.sent();
        let pending = Pending {
            encoded,
            attempts: 0,
            deadline,
            possibly_duplicated: false,
            not_before: None,
            backoff: None,
            last_error: None,
            sender: Some(sender),
            stats,
            _records: permits.0,
            _bytes: permits.1,
        };
        (pending, DeliveryFuture { receiver })
    }

    /// Resolves the record as delivered.
    pub(crate) fn deliver(mut self, mut report: DeliveryReport) {
        report.attempts = self.attempts;
        report.possibly_duplicated = self.possibly_duplicated;
        if let Some(sender) = self.sender.take() {
            self.stats.delivered(report.possibly_duplicated);
            let _ = sender.send(Ok(report));
        }
    }

    /// Resolves the record as failed.
    pub(crate) fn fail(mut self, error: Error) {
        self.resolve_failed(error);
    }

    fn resolve_failed(&mut self, error: Error) {
        if let Some(sender) = self.sender.take() {
            self.stats.failed();
            let _ = sender.send(Err(error));
        }
    }

    /// Fails the record because its time or attempts ran out.
    pub(crate) fn expire(mut self) {
        let error = Error::DeliveryTimeout {
            attempts: self.attempts,
            last_error: self.last_error.take().map(Box::new),
        };
        self.fail(error);
    }
}

/// A record dropped unresolved (its lane stopped) still gets its one outcome.
impl Drop for Pending {
    fn drop(&mut self) {
        self.resolve_failed(Error::Closed);
    }
}
