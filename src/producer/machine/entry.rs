//! A record as a lane holds it: its bytes, its deadline, its attempts, and
//! the caller's ticket its outcome goes to.

use super::Outcome;
use crate::error::Error;
use backon::ExponentialBackoff;
use bytes::Bytes;
use tokio::time::Instant;

/// The caller's end of a record, carried by the lane until it resolves the
/// record. What a ticket does when dropped unresolved (a lane that stops or
/// a runtime that shuts down) is its own business; the lane tells it whether
/// the record may have reached the server so it can say so.
pub(crate) trait Ticket {
    /// Whether the record may have been written by the server, as far as
    /// the lane knows now.
    fn set_maybe_written(&mut self, maybe: bool);

    /// The record's outcome, given once.
    fn resolve(self, outcome: Outcome);
}

/// A record held by a lane.
pub(crate) struct Entry<T> {
    pub(crate) ticket: T,
    pub(crate) encoded: Bytes,
    pub(crate) deadline: Instant,
    /// Attempts made: times its bytes were handed to a request.
    pub(crate) attempts: u32,
    /// An attempt's outcome was unknown: the record may already be stored.
    pub(crate) maybe_written: bool,
    /// Attempts refused only for rate, which do not count against the
    /// limit.
    pub(crate) throttled: u32,
    /// The order in which the lane first wrote it (0 until then): records
    /// refused for rate go again in that order.
    pub(crate) first_written: u64,
    /// When its bytes were last handed to a request.
    pub(crate) written_at: Option<Instant>,
    retry: Option<Box<RetryState>>,
}

#[derive(Default)]
struct RetryState {
    backoff: Option<ExponentialBackoff>,
    last_error: Option<Error>,
}

impl<T> Entry<T> {
    pub(crate) fn new(ticket: T, encoded: Bytes, deadline: Instant) -> Entry<T> {
        Entry {
            ticket,
            encoded,
            deadline,
            attempts: 0,
            maybe_written: false,
            throttled: 0,
            first_written: 0,
            written_at: None,
            retry: None,
        }
    }

    /// Notes a failed attempt. The bytes are copied out of the block they
    /// share with other records, so that a record waiting out a backoff
    /// does not keep its neighbours' memory.
    pub(crate) fn failed(&mut self, error: Error) {
        let retry = self
            .retry
            .get_or_insert_with(|| Box::new(RetryState::default()));
        if retry.last_error.is_none() {
            self.encoded = Bytes::copy_from_slice(&self.encoded);
        }
        retry.last_error = Some(error);
    }

    /// Attempts that count against the limit.
    pub(crate) fn counted_attempts(&self) -> u32 {
        self.attempts.saturating_sub(self.throttled)
    }

    pub(crate) fn backoff(&mut self) -> &mut Option<ExponentialBackoff> {
        &mut self
            .retry
            .get_or_insert_with(|| Box::new(RetryState::default()))
            .backoff
    }

    pub(crate) fn take_last_error(&mut self) -> Option<Error> {
        self.retry.as_mut().and_then(|r| r.last_error.take())
    }
}
