//! Counters of what the producer has done.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use tokio::sync::Notify;

/// A snapshot of the producer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Records handed to the producer.
    pub sent: u64,
    /// Records delivered.
    pub delivered: u64,
    /// Records failed (each failed record counts once).
    pub failed: u64,
    /// Resends (a record resent twice counts twice).
    pub retried: u64,
    /// Records handed over and not yet resolved.
    pub in_flight: u64,
    /// Delivered records whose report says possibly duplicated.
    pub possibly_duplicated: u64,
    /// Streams opened.
    pub streams_opened: u64,
    /// Streams opened again after one ended abnormally (cut, 408, failure
    /// to open).
    pub reconnects: u64,
    /// Delivery reports that arrived after their record had already been
    /// resolved (its delivery timeout passed); they were discarded.
    pub late_reports: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    sent: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    possibly_duplicated: AtomicU64,
    streams_opened: AtomicU64,
    reconnects: AtomicU64,
    late_reports: AtomicU64,
    /// Woken whenever a record is resolved while a `flush` waits.
    pub(crate) resolved: Notify,
    /// Lanes running.
    lanes: AtomicUsize,
    /// Woken whenever a lane stops.
    pub(crate) lane_stopped: Notify,
    /// How many `flush` calls are waiting: resolutions wake `resolved` only
    /// then, so that the common case takes no lock per record.
    flushing: AtomicUsize,
}

impl Stats {
    pub(crate) fn sent(&self) {
        self.sent.fetch_add(1, Relaxed);
    }
    pub(crate) fn delivered(&self, possibly_duplicated: bool) {
        if possibly_duplicated {
            self.possibly_duplicated.fetch_add(1, Relaxed);
        }
        self.delivered.fetch_add(1, SeqCst);
        self.wake_flushers();
    }
    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, SeqCst);
        self.wake_flushers();
    }
    fn wake_flushers(&self) {
        // Sequentially consistent with `flush_started`: either the flusher
        // sees this resolution in its snapshot or this sees the flusher.
        if self.flushing.load(SeqCst) > 0 {
            self.resolved.notify_waiters();
        }
    }
    /// A `flush` starts waiting; call [`flush_ended`](Self::flush_ended) after.
    pub(crate) fn flush_started(&self) {
        self.flushing.fetch_add(1, SeqCst);
    }
    pub(crate) fn flush_ended(&self) {
        self.flushing.fetch_sub(1, SeqCst);
    }
    pub(crate) fn lane_started(&self) {
        self.lanes.fetch_add(1, SeqCst);
    }
    pub(crate) fn lane_ended(&self) {
        self.lanes.fetch_sub(1, SeqCst);
        self.lane_stopped.notify_waiters();
    }
    pub(crate) fn lanes(&self) -> usize {
        self.lanes.load(SeqCst)
    }
    pub(crate) fn add_retried(&self, count: u64) {
        if count > 0 {
            self.retried.fetch_add(count, Relaxed);
        }
    }
    pub(crate) fn add_streams(&self, opened: u64, reconnects: u64) {
        if opened > 0 {
            self.streams_opened.fetch_add(opened, Relaxed);
            self.reconnects.fetch_add(reconnects, Relaxed);
        }
    }
    pub(crate) fn add_late_reports(&self, count: u64) {
        if count > 0 {
            self.late_reports.fetch_add(count, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        // Resolutions are read before `sent` so that in_flight never
        // underflows while records are resolved concurrently.
        let delivered = self.delivered.load(SeqCst);
        let failed = self.failed.load(SeqCst);
        let sent = self.sent.load(Relaxed);
        ProducerStats {
            sent,
            delivered,
            failed,
            retried: self.retried.load(Relaxed),
            in_flight: sent.saturating_sub(delivered + failed),
            possibly_duplicated: self.possibly_duplicated.load(Relaxed),
            streams_opened: self.streams_opened.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            late_reports: self.late_reports.load(Relaxed),
        }
    }
}
