//! One request of a lane, as the lane's state machine sees it: the records
//! written on it in order, the chunk being filled, and its clocks.

use super::entry::Entry;
use bytes::BytesMut;
use std::collections::VecDeque;
use tokio::time::Instant;

/// A place in a stream's order of reports.
pub(super) enum Slot<T> {
    /// A record waiting for its report.
    Live(Entry<T>),
    /// A record resolved before its report came (its deadline passed); its
    /// report, if it comes, is matched here and discarded.
    Gone,
}

/// What one request may carry before its body ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Bound {
    pub(super) records: Option<usize>,
    pub(super) bytes: Option<usize>,
    /// How long after its first record a request takes more.
    pub(super) age: Option<std::time::Duration>,
    /// An intermediary buffers bodies: the request is expected to get no
    /// headers before its body ends.
    pub(super) buffered: bool,
}

impl Bound {
    /// Whether a request that carries `records` records of `bytes` bytes
    /// can take one more of `len` bytes. A request always takes one.
    pub(super) fn admits(&self, records: usize, bytes: usize, len: usize) -> bool {
        if records == 0 {
            return true;
        }
        self.records.is_none_or(|max| records < max)
            && self
                .bytes
                .is_none_or(|max| bytes.saturating_add(len) <= max)
    }
}

pub(super) struct Stream<T> {
    pub(super) id: u64,
    /// Records in the order they were written, oldest first; the newest
    /// `unsent` are still in `chunk`.
    pub(super) slots: VecDeque<Slot<T>>,
    pub(super) live: usize,
    pub(super) unsent: usize,
    pub(super) chunk: BytesMut,
    /// The next record did not fit in what is left of the chunk's buffer.
    pub(super) chunk_full: bool,
    pub(super) chunk_started: Instant,
    pub(super) opened_at: Instant,
    /// The last record written or report received.
    pub(super) last_activity: Instant,
    /// The last bytes handed to the body, heartbeats included.
    pub(super) last_write: Instant,
    /// The body ends by then: the stream's age limit, a limit learnt from
    /// cuts, or the expiry of the credentials it was opened with.
    pub(super) end_at: Option<Instant>,
    /// What one request may carry.
    pub(super) bound: Bound,
    /// Records and their bytes taken into the request so far.
    pub(super) taken_records: usize,
    pub(super) taken_bytes: usize,
    /// When the first record was taken, and when the first was written.
    pub(super) first_taken: Option<Instant>,
    pub(super) first_written: Option<Instant>,
    /// Since when written records have waited for a report: the write of
    /// the first of them, or the last report.
    pub(super) pending_since: Option<Instant>,
    /// Bytes handed to the body.
    pub(super) written_bytes: usize,
    /// When the request went out (its body began to be read).
    pub(super) sending_at: Option<Instant>,
    /// Response headers arrived (HTTP 200).
    pub(super) answered: bool,
    /// The body can take one more chunk.
    pub(super) writable: bool,
    /// More records may be written (false after 408, rotation, idle,
    /// closing, or a record that expired on it).
    pub(super) accepting: bool,
    /// The request body is still open.
    pub(super) body_open: bool,
    /// When the body ended with nothing left to report: the response should
    /// end by itself soon after.
    pub(super) drained_at: Option<Instant>,
}

impl<T> Stream<T> {
    pub(super) fn new(
        id: u64,
        now: Instant,
        chunk_capacity: usize,
        end_at: Option<Instant>,
        bound: Bound,
    ) -> Stream<T> {
        Stream {
            id,
            slots: VecDeque::new(),
            live: 0,
            unsent: 0,
            chunk: BytesMut::with_capacity(chunk_capacity),
            chunk_full: false,
            chunk_started: now,
            opened_at: now,
            last_activity: now,
            last_write: now,
            end_at,
            bound,
            taken_records: 0,
            taken_bytes: 0,
            first_taken: None,
            first_written: None,
            pending_since: None,
            written_bytes: 0,
            sending_at: None,
            answered: false,
            writable: false,
            accepting: true,
            body_open: true,
            drained_at: None,
        }
    }

    pub(super) fn chunk_has_room(&self, chunk_bytes: usize) -> bool {
        !self.chunk_full && self.chunk.len() < chunk_bytes
    }

    /// Takes the records still in the chunk out of the stream, oldest
    /// first: they were never sent.
    pub(super) fn take_unsent(&mut self) -> Vec<Entry<T>> {
        let from = self.slots.len() - self.unsent;
        let taken: Vec<Entry<T>> = self
            .slots
            .drain(from..)
            .filter_map(|slot| match slot {
                Slot::Live(entry) => Some(entry),
                Slot::Gone => None,
            })
            .collect();
        self.live -= taken.len();
        self.taken_records = self.taken_records.saturating_sub(taken.len());
        self.taken_bytes = self
            .taken_bytes
            .saturating_sub(taken.iter().map(|e| e.encoded.len()).sum());
        self.unsent = 0;
        self.chunk.clear();
        self.chunk_full = false;
        taken
    }

    /// Takes every live record, oldest first.
    pub(super) fn take_live(&mut self) -> Vec<Entry<T>> {
        self.live = 0;
        self.unsent = 0;
        self.slots
            .drain(..)
            .filter_map(|slot| match slot {
                Slot::Live(entry) => Some(entry),
                Slot::Gone => None,
            })
            .collect()
    }
}
