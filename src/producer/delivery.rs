//! A record on its way: its encoded bytes, its attempts, and the one place
//! its outcome is delivered to the caller.

use super::machine::Ticket;
use super::outcome::{self, Outcome, OutcomeReceiver, OutcomeSender};
use super::stats::{ConnectionCounters, Stats};
use crate::error::Error;
use crate::wire::report::DeliveryReport;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::sync::{Semaphore, SemaphorePermit};

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

/// Room for records: a bound on their count and on their bytes.
pub(crate) struct Room {
    records: Semaphore,
    bytes: Semaphore,
}

impl Room {
    pub(crate) fn new(records: usize, bytes: usize) -> Room {
        Room {
            records: Semaphore::new(records),
            bytes: Semaphore::new(bytes),
        }
    }

    /// Room for one record of `bytes` bytes, if there is some now.
    fn try_take(&self, bytes: u32) -> Result<Option<Taken<'_>>, Error> {
        use tokio::sync::TryAcquireError::{Closed, NoPermits};
        let record = match self.records.try_acquire() {
            Ok(permit) => permit,
            Err(NoPermits) => return Ok(None),
            Err(Closed) => return Err(Error::Closed),
        };
        match self.bytes.try_acquire_many(bytes) {
            Ok(bytes) => Ok(Some((record, bytes))),
            Err(NoPermits) => Ok(None),
            Err(Closed) => Err(Error::Closed),
        }
    }

    /// Room for one record of `bytes` bytes, waiting until there is some.
    async fn take(&self, bytes: u32) -> Result<Taken<'_>, Error> {
        if let Some(taken) = self.try_take(bytes)? {
            return Ok(taken);
        }
        let record = self.records.acquire().await.map_err(|_| Error::Closed)?;
        let bytes = self
            .bytes
            .acquire_many(bytes)
            .await
            .map_err(|_| Error::Closed)?;
        Ok((record, bytes))
    }

    fn add(&self, records: usize, bytes: usize) {
        if records > 0 {
            self.records.add_permits(records);
        }
        if bytes > 0 {
            self.bytes.add_permits(bytes);
        }
    }
}

type Taken<'a> = (SemaphorePermit<'a>, SemaphorePermit<'a>);

/// What a lane shares with the records it holds and with the callers
/// waiting for room: its own bounds, the producer's bounds over every lane,
/// and the room given back by resolved records since the lane last
/// returned it.
pub(crate) struct LaneShared {
    lane: Room,
    producer: Arc<Room>,
    freed_records: AtomicUsize,
    freed_bytes: AtomicUsize,
    /// The lane has stopped: records dropped now give their room back
    /// themselves.
    closed: AtomicBool,
    pub(crate) stats: Arc<Stats>,
    /// The counters of the connection this lane serves.
    pub(crate) connection: Arc<ConnectionCounters>,
}

impl LaneShared {
    pub(crate) fn new(
        records: usize,
        bytes: usize,
        producer: Arc<Room>,
        stats: Arc<Stats>,
        connection: Arc<ConnectionCounters>,
    ) -> LaneShared {
        LaneShared {
            lane: Room::new(records, bytes),
            producer,
            freed_records: AtomicUsize::new(0),
            freed_bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            stats,
            connection,
        }
    }

    /// Takes room for a record of `bytes` bytes in the lane and in the
    /// producer, waiting while either is full. The room is given back in
    /// batches by [`give_back`](Self::give_back) once the record is
    /// dropped; a caller that stops waiting takes nothing.
    pub(crate) async fn take(&self, bytes: u32) -> Result<(), Error> {
        // The lane's room first: a caller waiting for the producer's room
        // then holds room only in its own lane.
        let lane = self.lane.take(bytes).await?;
        let producer = self.producer.take(bytes).await?;
        forget(lane);
        forget(producer);
        Ok(())
    }

    /// Takes room for a record of `bytes` bytes if there is some now.
    pub(crate) fn try_take(&self, bytes: u32) -> Result<bool, Error> {
        let Some(lane) = self.lane.try_take(bytes)? else {
            return Ok(false);
        };
        let Some(producer) = self.producer.try_take(bytes)? else {
            return Ok(false);
        };
        forget(lane);
        forget(producer);
        Ok(true)
    }

    /// Gives back room taken for a record that was not handed over after
    /// all (its lane had stopped taking records).
    pub(crate) fn untake(&self, bytes: u32) {
        self.lane.add(1, bytes as usize);
        self.producer.add(1, bytes as usize);
    }

    /// Returns the room of the records resolved since the last call.
    pub(crate) fn give_back(&self) {
        let records = self.freed_records.swap(0, Ordering::AcqRel);
        let bytes = self.freed_bytes.swap(0, Ordering::AcqRel);
        self.lane.add(records, bytes);
        self.producer.add(records, bytes);
    }

    /// Makes every wait for room in this lane fail: the lane has stopped.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.lane.records.close();
        self.lane.bytes.close();
        // Whatever its records still hold goes back now.
        self.give_back();
    }
}

fn forget((record, bytes): Taken<'_>) {
    record.forget();
    bytes.forget();
}

impl Pending {
    /// A record holding the permits just taken with [`LaneShared::take`],
    /// and the future of its outcome.
    pub(crate) fn new(bytes: u32, lane: Arc<LaneShared>) -> (Pending, DeliveryFuture) {
        let (sender, receiver) = outcome::slot();
        lane.connection.sent(bytes);
        lane.stats.sent();
        let pending = Pending {
            sender: Some(sender),
            bytes,
            maybe_written: false,
            lane,
        };
        (pending, DeliveryFuture { receiver })
    }
}

impl Ticket for Pending {
    fn set_maybe_written(&mut self, maybe: bool) {
        self.maybe_written = maybe;
    }

    fn resolve(mut self, outcome: Outcome) {
        if let Some(sender) = self.sender.take() {
            match &outcome {
                Ok(report) => {
                    self.lane.connection.delivered();
                    self.lane.stats.delivered(report.possibly_duplicated);
                }
                Err(_) => {
                    self.lane.connection.failed();
                    self.lane.stats.failed();
                }
            }
            sender.send(outcome);
        }
    }
}

/// A record dropped unresolved (its lane stopped: the runtime shut down, or
/// the lane failed) still gets its one outcome, which says whether it may
/// have been written; and every record gives its room back.
impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.lane.connection.failed();
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
        self.lane.connection.released(self.bytes);
        self.lane.freed_records.fetch_add(1, Ordering::AcqRel);
        self.lane
            .freed_bytes
            .fetch_add(self.bytes as usize, Ordering::AcqRel);
        if self.lane.closed.load(Ordering::Acquire) {
            self.lane.give_back();
        }
    }
}
