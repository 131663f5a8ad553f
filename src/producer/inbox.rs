//! What callers hand a lane: records in order, then the end.
//!
//! A queue under a mutex rather than a channel: callers add one record at
//! a time, and the lane takes everything queued in one go, so it pays one
//! lock per batch instead of a receive per record, and a caller wakes the
//! lane only when the queue stops being empty.

use super::delivery::Pending;
use super::machine::Entry;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Unbounded in type only: a record is queued only with a permit taken
/// from its lane, so the queue never holds more than the lane's in-flight
/// bound.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<State>,
    /// Woken when the queue stops being empty, and when it closes.
    ready: Notify,
}

#[derive(Default)]
struct State {
    records: VecDeque<Entry<Pending>>,
    /// No more records are accepted; those queued are still taken.
    closed: bool,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the queue is locked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the record `make` builds, unless the inbox is closed; returns
    /// whether it did. The record is built under the queue's lock, only
    /// once it is sure to be queued: a record the lane would never see is
    /// never made.
    pub(crate) fn push_with(&self, make: impl FnOnce() -> Entry<Pending>) -> bool {
        let was_empty = {
            let mut state = self.lock();
            if state.closed {
                return false;
            }
            let was_empty = state.records.is_empty();
            state.records.push_back(make());
            was_empty
        };
        // A lane that finds the queue not empty takes this record with the
        // others; one that found it empty waits for this.
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    /// Accepts no more records; the lane takes those queued and stops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Whether the inbox takes no more records.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the inbox if nothing is queued; returns whether it did.
    pub(crate) fn close_if_empty(&self) -> bool {
        let mut state = self.lock();
        if !state.records.is_empty() {
            return false;
        }
        state.closed = true;
        true
    }

    /// Moves every queued record to the back of `into`. Returns whether
    /// more may come (false once closed and emptied).
    pub(crate) fn take_all(&self, into: &mut VecDeque<Entry<Pending>>) -> bool {
        let mut state = self.lock();
        if into.is_empty() {
            // Both queues keep their capacity for the next batches.
            std::mem::swap(&mut state.records, into);
        } else {
            into.append(&mut state.records);
        }
        !state.closed
    }

    /// Completes once records may have been queued, or the inbox closed,
    /// since the last [`take_all`](Self::take_all) that found it empty.
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::delivery::{LaneShared, Room};
    use crate::producer::stats::Stats;
    use bytes::Bytes;
    use std::sync::Arc;
    use tokio::time::Instant;

    fn record(lane: &Arc<LaneShared>, n: u8) -> impl FnOnce() -> Entry<Pending> {
        let lane = Arc::clone(lane);
        move || {
            let (pending, _delivery) = Pending::new(1, lane);
            Entry::new(pending, Bytes::from(vec![n]), Instant::now())
        }
    }

    #[tokio::test]
    async fn records_come_out_in_order_until_closed() {
        let producer = Arc::new(Room::new(10, 100));
        let stats = Arc::new(Stats::default());
        let lane = Arc::new(LaneShared::new(
            10,
            100,
            producer,
            Arc::clone(&stats),
            Arc::default(),
        ));
        let inbox = Inbox::default();
        let mut taken = VecDeque::new();
        assert!(inbox.take_all(&mut taken));
        assert!(taken.is_empty());
        for n in 0..3 {
            assert!(inbox.push_with(record(&lane, n)));
        }
        // Woken by the first record queued.
        inbox.ready().await;
        assert!(inbox.take_all(&mut taken));
        assert!(inbox.push_with(record(&lane, 3)));
        inbox.close();
        // Refused without being made: it never counts as sent.
        assert!(!inbox.push_with(record(&lane, 4)));
        assert_eq!(stats.snapshot().sent, 4);
        inbox.ready().await;
        assert!(!inbox.take_all(&mut taken));
        let order: Vec<u8> = taken.iter().map(|p| p.encoded[0]).collect();
        assert_eq!(order, [0, 1, 2, 3]);
    }
}
