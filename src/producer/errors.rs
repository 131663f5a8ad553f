//! The producer's own errors: a record [`Producer::try_send`] did not take,
//! handed back, and a failure of [`Producer::send_all`] with the record's
//! place in the input.
//!
//! [`Producer::try_send`]: super::Producer::try_send
//! [`Producer::send_all`]: super::Producer::send_all

use crate::error::Error;
use crate::wire::record::Record;
use std::fmt;
use std::time::Duration;

/// Why [`Producer::try_send`](super::Producer::try_send) did not take a
/// record, with the record handed back ([`into_record`](Self::into_record)).
/// Nothing was sent and nothing was counted.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TrySendError {
    /// The record's connection, or the producer as a whole, has no room for
    /// it now (see
    /// [`ProducerConfig::with_max_in_flight_records`](crate::ProducerConfig::with_max_in_flight_records)
    /// and the other bounds). Try again once records in flight are resolved,
    /// or wait for room with [`send`](super::Producer::send) or
    /// [`enqueue`](super::Producer::enqueue).
    Full(Record),
    /// The producer is closed, or the record's connection stopped
    /// ([`Error::Closed`]).
    Closed(Record),
    /// The topic name or the record is invalid; `error` says why
    /// ([`Error::InvalidInput`]). Sending it again fails the same way.
    Invalid {
        /// The record, as it was given.
        record: Record,
        /// What is wrong with it or with the topic.
        error: Error,
    },
}

impl TrySendError {
    /// A record refused with `error` by the producer's checks.
    pub(crate) fn refused(error: Error, record: Record) -> TrySendError {
        match error {
            Error::Closed => TrySendError::Closed(record),
            error => TrySendError::Invalid { record, error },
        }
    }

    /// The record, to send again or keep.
    pub fn into_record(self) -> Record {
        match self {
            TrySendError::Full(record)
            | TrySendError::Closed(record)
            | TrySendError::Invalid { record, .. } => record,
        }
    }

    /// The record handed back.
    pub fn record(&self) -> &Record {
        match self {
            TrySendError::Full(record)
            | TrySendError::Closed(record)
            | TrySendError::Invalid { record, .. } => record,
        }
    }

    /// Whether the record was refused only for lack of room: trying again
    /// later may take it.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => {
                f.write_str("the producer has no room for the record now; the record was not sent")
            }
            TrySendError::Closed(_) => Error::Closed.fmt(f),
            TrySendError::Invalid { error, .. } => error.fmt(f),
        }
    }
}

impl std::error::Error for TrySendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrySendError::Invalid { error, .. } => std::error::Error::source(error),
            _ => None,
        }
    }
}

/// The producer's error for the same record: [`Error::QueueFull`] (with
/// the record, having waited no time) for a full producer.
impl From<TrySendError> for Error {
    fn from(refusal: TrySendError) -> Error {
        match refusal {
            TrySendError::Full(record) => Error::QueueFull {
                record: Box::new(record),
                waited: Duration::ZERO,
            },
            TrySendError::Closed(_) => Error::Closed,
            TrySendError::Invalid { error, .. } => error,
        }
    }
}

/// A failure of one record of [`Producer::send_all`](super::Producer::send_all):
/// its index in the input (0 for the first record the input yielded) and
/// its error. A record that found no room within the queue timeout is in
/// its error ([`Error::QueueFull`], [`into_record`](Self::into_record)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SendAllError {
    /// The record's index in the input.
    pub index: usize,
    /// Why it failed.
    pub error: Error,
}

impl SendAllError {
    /// The record, when the error hands it back (it was never sent).
    pub fn into_record(self) -> Option<Record> {
        self.error.into_record()
    }
}

impl fmt::Display for SendAllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} of the input: {}", self.index, self.error)
    }
}

/// The source is the record's error's own: the message already has the
/// error's.
impl std::error::Error for SendAllError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<SendAllError> for Error {
    fn from(failure: SendAllError) -> Error {
        failure.error
    }
}
