//! A record on its way: its encoded bytes, its attempts, and the one place
//! its outcome is delivered to the caller.

use super::machine::Ticket;
use super::outcome::{self, Outcome, OutcomeReceiver, OutcomeSender};
use super::stats::Stats;
use crate::error::Error;
use crate::report::DeliveryReport;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::sync::Semaphore;

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

/// The caller's end of a record while a lane holds it: where its outcome
/// goes and the room it takes in its lane.
pub(crate) struct Pending {
    sender: Option<OutcomeSender>,
    /// The byte permits taken for this record.
    bytes: u32,
    /// Whether the record may have reached the server, for the outcome
    /// given when it is dropped unresolved.
    maybe_written: bool,
    // Given back when the record is dropped: this is what bounds memory.
    lane: Arc<LaneShared>,
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
    /// A record holding the permits just taken with [`LaneShared::take`],
    /// and the future of its outcome.
    pub(crate) fn new(bytes: u32, lane: Arc<LaneShared>) -> (Pending, DeliveryFuture) {
        let (sender, receiver) = outcome::slot();
        lane.stats.sent();
        let pending = Pending {
            sender: Some(sender),
            bytes,
            maybe_written: false,
            lane,
        };
        (pending, DeliveryFuture { receiver })
    }

    /// Gives the record its outcome.
    pub(crate) fn resolve(mut self, outcome: Outcome) {
        if let Some(sender) = self.sender.take() {
            match &outcome {
                Ok(report) => self.lane.stats.delivered(report.possibly_duplicated),
                Err(_) => self.lane.stats.failed(),
            }
            sender.send(outcome);
        }
    }
}

impl Ticket for Pending {
    fn set_maybe_written(&mut self, maybe: bool) {
        self.maybe_written = maybe;
    }
}

/// A record dropped unresolved (its lane stopped: the runtime shut down, or
/// the lane failed) still gets its one outcome, which says whether it may
/// have been written; and every record gives its room back.
impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.lane.stats.failed();
            sender.send(Err(if self.maybe_written {
                Error::Interrupted(
                    "the producer stopped (its runtime shut down or its lane failed) before \
                     the record's delivery report arrived"
                        .into(),
                )
            } else {
                Error::Closed
            }));
        }
        self.lane.freed_records.fetch_add(1, Ordering::AcqRel);
        self.lane
            .freed_bytes
            .fetch_add(self.bytes as usize, Ordering::AcqRel);
    }
}
