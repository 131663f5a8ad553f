//! A record on its way: its encoded bytes, its attempts, and the one place
//! its outcome is delivered to the caller.

use super::outcome::{self, OutcomeReceiver, OutcomeSender};
use super::stats::Stats;
use crate::error::Error;
use crate::report::DeliveryReport;
use backon::ExponentialBackoff;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Resolves to a record's delivery report, or to the error that ended its
/// attempts. Every record handed to the producer resolves exactly once.
/// Dropping the future does not cancel the record.
#[derive(Debug)]
pub struct DeliveryFuture {
    receiver: OutcomeReceiver,
}

impl DeliveryFuture {
    pub(crate) fn resolved(result: Result<DeliveryReport, Error>) -> DeliveryFuture {
        let (sender, receiver) = outcome::slot();
        sender.send(result);
        DeliveryFuture { receiver }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<DeliveryReport, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver.poll(cx)
    }
}

/// A record the producer holds until its outcome is known.
pub(crate) struct Pending {
    pub(crate) encoded: Bytes,
    pub(crate) attempts: u32,
    pub(crate) deadline: Instant,
    pub(crate) possibly_duplicated: bool,
    /// Set once the record has failed retriably.
    retry: Option<Box<RetryState>>,
    sender: Option<OutcomeSender>,
    /// The byte permits taken for this record.
    bytes: u32,
    // Given back when the record is dropped: this is what bounds memory.
    lane: Arc<LaneShared>,
}

#[derive(Default)]
struct RetryState {
    backoff: Option<ExponentialBackoff>,
    last_error: Option<Error>,
}

/// What a lane shares with the records it holds and with the callers
/// waiting for room: the bounds on records and bytes, and the permits
/// given back by resolved records since the lane last returned them.
pub(crate) struct LaneShared {
    pub(crate) records: Semaphore,
    pub(crate) bytes: Semaphore,
    freed_records: AtomicUsize,
    freed_bytes: AtomicUsize,
    pub(crate) stats: Arc<Stats>,
}

impl LaneShared {
    pub(crate) fn new(records: usize, bytes: usize, stats: Arc<Stats>) -> LaneShared {
        LaneShared {
            records: Semaphore::new(records),
            bytes: Semaphore::new(bytes),
            freed_records: AtomicUsize::new(0),
            freed_bytes: AtomicUsize::new(0),
            stats,
        }
    }

    /// Takes room for a record of `bytes` bytes, waiting when the lane is
    /// full. The permits are given back in batches by
    /// [`give_back`](Self::give_back) once the record is dropped; a caller
    /// that stops waiting takes nothing.
    pub(crate) async fn take(&self, bytes: u32) -> Result<(), Error> {
        use tokio::sync::TryAcquireError::{Closed, NoPermits};
        let record = match self.records.try_acquire() {
            Ok(permit) => permit,
            Err(NoPermits) => self.records.acquire().await.map_err(|_| Error::Closed)?,
            Err(Closed) => return Err(Error::Closed),
        };
        let bytes = match self.bytes.try_acquire_many(bytes) {
            Ok(permit) => permit,
            Err(NoPermits) => self
                .bytes
                .acquire_many(bytes)
                .await
                .map_err(|_| Error::Closed)?,
            Err(Closed) => return Err(Error::Closed),
        };
        record.forget();
        bytes.forget();
        Ok(())
    }

    /// Takes room for a record of `bytes` bytes if there is some now.
    pub(crate) fn try_take(&self, bytes: u32) -> Result<bool, Error> {
        use tokio::sync::TryAcquireError::{Closed, NoPermits};
        let record = match self.records.try_acquire() {
            Ok(permit) => permit,
            Err(NoPermits) => return Ok(false),
            Err(Closed) => return Err(Error::Closed),
        };
        let bytes = match self.bytes.try_acquire_many(bytes) {
            Ok(permit) => permit,
            Err(NoPermits) => return Ok(false),
            Err(Closed) => return Err(Error::Closed),
        };
        record.forget();
        bytes.forget();
        Ok(true)
    }

    /// Returns the permits of the records resolved since the last call.
    pub(crate) fn give_back(&self) {
        let records = self.freed_records.swap(0, Ordering::AcqRel);
        if records > 0 {
            self.records.add_permits(records);
        }
        let bytes = self.freed_bytes.swap(0, Ordering::AcqRel);
        if bytes > 0 {
            self.bytes.add_permits(bytes);
        }
    }

    /// Makes every wait for room fail: the lane has stopped.
    pub(crate) fn close(&self) {
        self.records.close();
        self.bytes.close();
    }
}

impl Pending {
    /// A record holding the permits just taken with [`LaneShared::take`].
    pub(crate) fn new(
        encoded: Bytes,
        deadline: Instant,
        bytes: u32,
        lane: Arc<LaneShared>,
    ) -> (Pending, DeliveryFuture) {
        let (sender, receiver) = outcome::slot();
        lane.stats.sent();
        let pending = Pending {
            encoded,
            attempts: 0,
            deadline,
            possibly_duplicated: false,
            retry: None,
            sender: Some(sender),
            bytes,
            lane,
        };
        (pending, DeliveryFuture { receiver })
    }

    /// Resolves the record as delivered.
    pub(crate) fn deliver(mut self, mut report: DeliveryReport) {
        report.attempts = self.attempts;
        report.possibly_duplicated = self.possibly_duplicated;
        if let Some(sender) = self.sender.take() {
            self.lane.stats.delivered(report.possibly_duplicated);
            sender.send(Ok(report));
        }
    }

    /// Resolves the record as failed.
    pub(crate) fn fail(mut self, error: Error) {
        self.resolve_failed(error);
    }

    fn resolve_failed(&mut self, error: Error) {
        if let Some(sender) = self.sender.take() {
            self.lane.stats.failed();
            sender.send(Err(error));
        }
    }

    /// Fails the record because its time or attempts ran out.
    pub(crate) fn expire(mut self) {
        let last_error = self.retry.as_mut().and_then(|r| r.last_error.take());
        let error = Error::DeliveryTimeout {
            attempts: self.attempts,
            last_error: last_error.map(Box::new),
        };
        self.fail(error);
    }

    /// Notes a retriable failure. The record's bytes are copied out of the
    /// block they were encoded in, so that a record waiting out a backoff
    /// does not keep the records encoded next to it in memory.
    pub(crate) fn failed_retriably(&mut self, error: Error) {
        if self.retry.is_none() {
            self.encoded = Bytes::copy_from_slice(&self.encoded);
        }
        self.retry.get_or_insert_default().last_error = Some(error);
    }

    /// The record's own backoff, started at its first retry.
    pub(crate) fn backoff(
        &mut self,
        build: impl FnOnce() -> ExponentialBackoff,
    ) -> &mut ExponentialBackoff {
        self.retry
            .get_or_insert_default()
            .backoff
            .get_or_insert_with(build)
    }
}

/// A record dropped unresolved (its lane stopped) still gets its one outcome,
/// and every record gives its room back.
impl Drop for Pending {
    fn drop(&mut self) {
        self.resolve_failed(Error::Closed);
        self.lane.freed_records.fetch_add(1, Ordering::AcqRel);
        self.lane
            .freed_bytes
            .fetch_add(self.bytes as usize, Ordering::AcqRel);
    }
}
