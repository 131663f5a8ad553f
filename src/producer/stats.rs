//! Counters of what the producer has done, in total and per topic and
//! connection, and their snapshots.

use serde::Serialize;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// A snapshot of the producer's counters: totals, then the same per topic
/// and connection. Serializes (with serde) to a JSON object of the same
/// names, for a service to export.
///
/// Every record handed to a connection counts once in `sent`, and then once
/// in `delivered` or `failed` when it is resolved; until then it is
/// `in_flight`, so `sent == delivered + failed + in_flight`. A record given
/// an error without being handed over (an invalid topic or record, a closed
/// producer, no room within its queue or delivery timeout) counts only in
/// `refused`. A record that [`Producer::try_send`](crate::Producer::try_send)
/// hands back counts nowhere.
///
/// The counters are read one at a time while records move, so a snapshot
/// taken under load is consistent only to within the records resolved
/// while it was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Records handed to a connection.
    pub sent: u64,
    /// Records delivered.
    pub delivered: u64,
    /// Records handed over that failed (each counts once).
    pub failed: u64,
    /// Records refused before being handed over: invalid topic or record,
    /// producer closed, no room within the queue timeout
    /// ([`Error::QueueFull`](crate::Error::QueueFull)) or the delivery
    /// timeout. Not in `sent`.
    pub refused: u64,
    /// Resends (a record resent twice counts twice).
    pub retried: u64,
    /// Records handed over and not yet resolved.
    pub in_flight: u64,
    /// Encoded bytes of the records in flight, as counted against the
    /// producer's byte bounds.
    pub bytes_in_flight: u64,
    /// Delivered records whose report says possibly duplicated.
    pub possibly_duplicated: u64,
    /// Streams opened: requests the server answered with HTTP 200. A
    /// request refused or never answered does not count.
    pub streams_opened: u64,
    /// Streams opened after one ended abnormally (cut, 408, failure to
    /// open); also in `streams_opened`.
    pub reconnects: u64,
    /// Delivery reports that arrived after their record had already been
    /// resolved (its delivery timeout passed); they were discarded.
    pub late_reports: u64,
    /// Streams that had no response headers within the buffering check
    /// ([`ProducerConfig::with_buffering_check`](crate::ProducerConfig::with_buffering_check))
    /// after their first record: something on the path buffers request
    /// bodies, and requests were bounded.
    pub buffering_detected: u64,
    /// Requests of several records refused as a whole as too large (HTTP
    /// 413, an intermediary's body cap), whose records went again in
    /// smaller requests without counting an attempt.
    pub requests_shrunk: u64,
    /// Request bodies ended because reports stopped coming while records
    /// were in flight and nothing was to be written
    /// ([`ProducerConfig::with_report_stall`](crate::ProducerConfig::with_report_stall)).
    pub stalled_bodies: u64,
    /// Whether requests to the endpoint are bounded now, because the path
    /// was found to buffer request bodies.
    pub bounded_requests: bool,
    /// Attempts the server refused for rate (in-band 429 or 42901, HTTP
    /// 429). Their records go again at the producer's pace, first among
    /// the records, without counting against their attempts; not in
    /// `retried`.
    pub throttled: u64,
    /// The pace in force, in records per second, since the server
    /// throttled records to the endpoint and cluster; `None` while
    /// unlimited.
    pub pace_records_per_s: Option<u64>,
    /// Per topic the producer has sent to (valid names only), in the order
    /// first used.
    pub topics: Vec<TopicStats>,
}

/// The counters of one topic: one entry per connection
/// ([`ProducerConfig::with_connections`](crate::ProducerConfig::with_connections)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TopicStats {
    /// The topic.
    pub topic: String,
    /// Its connections, by index (`connections[i].connection == i`).
    pub connections: Vec<ConnectionStats>,
}

/// The counters of one connection of a topic. A connection that stopped
/// after being idle and started again keeps its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// The connection's index among its topic's.
    pub connection: usize,
    /// Records handed to this connection.
    pub sent: u64,
    /// Of those, records delivered.
    pub delivered: u64,
    /// Of those, records failed.
    pub failed: u64,
    /// Records handed over and not yet resolved.
    pub in_flight: u64,
    /// Encoded bytes of the records in flight.
    pub bytes_in_flight: u64,
    /// Resends on this connection.
    pub retried: u64,
    /// Whether a stream is open now (the server answered HTTP 200 and the
    /// response has not ended).
    pub stream_open: bool,
    /// Streams opened (answered with HTTP 200).
    pub streams_opened: u64,
    /// Of those, streams opened after one ended abnormally.
    pub reconnects: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    sent: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    retried: AtomicU64,
    possibly_duplicated: AtomicU64,
    streams_opened: AtomicU64,
    reconnects: AtomicU64,
    late_reports: AtomicU64,
    buffering_detected: AtomicU64,
    requests_shrunk: AtomicU64,
    stalled_bodies: AtomicU64,
    throttled: AtomicU64,
    /// Every topic's counters, in the order first used. A topic is added
    /// once, when its lanes are made: the list grows with the topics used,
    /// as the producer's table of lanes does.
    topics: Mutex<Vec<Arc<TopicCounters>>>,
    /// Woken whenever a record is resolved while a `flush` waits.
    pub(crate) resolved: Notify,
    /// Lanes running.
    lanes: AtomicUsize,
    /// Woken whenever a lane stops.
    pub(crate) lane_stopped: Notify,
    /// How many `flush` calls are waiting: resolutions wake `resolved` only
    /// then, so that the common case takes no lock per record.
    flushing: AtomicUsize,
    /// Turns of every lane's loop, to check that lanes sleep when there is
    /// nothing to do.
    #[cfg(test)]
    pub(crate) lane_turns: AtomicU64,
}

/// One topic's counters.
#[derive(Debug)]
pub(crate) struct TopicCounters {
    topic: String,
    pub(crate) connections: Box<[Arc<ConnectionCounters>]>,
}

impl TopicCounters {
    pub(crate) fn new(topic: &str, connections: usize) -> TopicCounters {
        TopicCounters {
            topic: topic.to_owned(),
            connections: (0..connections).map(|_| Arc::default()).collect(),
        }
    }
}

/// One connection's counters, kept across the lanes that serve it.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounters {
    sent: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    retried: AtomicU64,
    open_streams: AtomicU64,
    streams_opened: AtomicU64,
    reconnects: AtomicU64,
}

impl ConnectionCounters {
    /// A record of `bytes` bytes handed over.
    pub(crate) fn sent(&self, bytes: u32) {
        self.bytes.fetch_add(u64::from(bytes), Relaxed);
        self.sent.fetch_add(1, Relaxed);
    }
    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, SeqCst);
    }
    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, SeqCst);
    }
    /// A record's room is given back.
    pub(crate) fn released(&self, bytes: u32) {
        self.bytes.fetch_sub(u64::from(bytes), Relaxed);
    }
    pub(crate) fn add_retried(&self, count: u64) {
        if count > 0 {
            self.retried.fetch_add(count, Relaxed);
        }
    }
    /// A stream was answered with 200.
    pub(crate) fn stream_opened(&self, reconnect: bool) {
        self.open_streams.fetch_add(1, Relaxed);
        self.streams_opened.fetch_add(1, Relaxed);
        if reconnect {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }
    /// A stream that was opened is over.
    pub(crate) fn stream_closed(&self) {
        self.open_streams.fetch_sub(1, Relaxed);
    }

    fn snapshot(&self, connection: usize) -> ConnectionStats {
        // Resolutions before hand-overs, as for the totals.
        let delivered = self.delivered.load(SeqCst);
        let failed = self.failed.load(SeqCst);
        let sent = self.sent.load(SeqCst);
        ConnectionStats {
            connection,
            sent,
            delivered,
            failed,
            in_flight: sent.saturating_sub(delivered + failed),
            // A record's bytes are added before it counts as sent and taken
            // off after it is resolved, so they cannot go below zero; read
            // with the others, they may be off by the records moving.
            bytes_in_flight: self.bytes.load(Relaxed),
            retried: self.retried.load(Relaxed),
            stream_open: self.open_streams.load(Relaxed) > 0,
            streams_opened: self.streams_opened.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
        }
    }
}

impl Stats {
    pub(crate) fn sent(&self) {
        self.sent.fetch_add(1, SeqCst);
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
    /// A record given an error without being handed over.
    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
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
    /// A stream was answered with 200.
    pub(crate) fn stream_opened(&self, reconnect: bool) {
        self.streams_opened.fetch_add(1, Relaxed);
        if reconnect {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn add_late_reports(&self, count: u64) {
        if count > 0 {
            self.late_reports.fetch_add(count, Relaxed);
        }
    }
    pub(crate) fn add_throttled(&self, count: u64) {
        if count > 0 {
            self.throttled.fetch_add(count, Relaxed);
        }
    }
    /// What a lane found of the path to the server.
    pub(crate) fn add_path_counts(&self, buffering: u64, shrunk: u64, stalled: u64) {
        for (counter, count) in [
            (&self.buffering_detected, buffering),
            (&self.requests_shrunk, shrunk),
            (&self.stalled_bodies, stalled),
        ] {
            if count > 0 {
                counter.fetch_add(count, Relaxed);
            }
        }
    }
    /// Counts a new topic's connections from now on.
    pub(crate) fn add_topic(&self, topic: Arc<TopicCounters>) {
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(topic);
    }

    /// Records handed over and not yet resolved.
    pub(crate) fn in_flight(&self) -> u64 {
        // Resolutions are read before `sent` so that the difference never
        // underflows while records are resolved concurrently.
        let resolved = self.delivered.load(SeqCst) + self.failed.load(SeqCst);
        self.sent.load(SeqCst).saturating_sub(resolved)
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        // The topics' list is copied out (one pointer each), so that the
        // lock is not held while their counters are read.
        let topics: Vec<Arc<TopicCounters>> = self
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let topics: Vec<TopicStats> = topics
            .iter()
            .map(|topic| TopicStats {
                topic: topic.topic.clone(),
                connections: topic
                    .connections
                    .iter()
                    .enumerate()
                    .map(|(index, connection)| connection.snapshot(index))
                    .collect(),
            })
            .collect();
        let bytes_in_flight = topics
            .iter()
            .flat_map(|t| &t.connections)
            .map(|c| c.bytes_in_flight)
            .sum();
        let delivered = self.delivered.load(SeqCst);
        let failed = self.failed.load(SeqCst);
        let sent = self.sent.load(SeqCst);
        ProducerStats {
            sent,
            delivered,
            failed,
            refused: self.refused.load(Relaxed),
            retried: self.retried.load(Relaxed),
            in_flight: sent.saturating_sub(delivered + failed),
            bytes_in_flight,
            possibly_duplicated: self.possibly_duplicated.load(Relaxed),
            streams_opened: self.streams_opened.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            late_reports: self.late_reports.load(Relaxed),
            buffering_detected: self.buffering_detected.load(Relaxed),
            requests_shrunk: self.requests_shrunk.load(Relaxed),
            stalled_bodies: self.stalled_bodies.load(Relaxed),
            bounded_requests: false,
            throttled: self.throttled.load(Relaxed),
            pace_records_per_s: None,
            topics,
        }
    }
}
