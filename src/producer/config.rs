//! How the streaming producer behaves: connections, bounds, retries, order.

use super::machine::Settings;
use crate::error::Error;
use crate::http::path::PathSettings;
use crate::limits::{
    MAX_CHUNK_BYTES, MAX_CONNECTIONS, MAX_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_RECORDS, duration_problem,
};
use crate::retry::policy::{RetryPolicy, UnknownOutcome};
use std::time::Duration;

/// Which connection a record travels on. Reports come back in send order on
/// each connection, so records that must stay in order need the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Routing {
    /// Spread records over the connections in turn (fastest; no order
    /// across connections).
    #[default]
    RoundRobin,
    /// Records with the same key share a connection, so per-key order holds
    /// on the wire; records without a key are spread in turn.
    ByKey,
    /// Records for the same explicit partition share a connection; records
    /// without one are routed by key, then in turn.
    ByPartition,
}

/// Settings of a [`Producer`](crate::Producer). Start from
/// `ProducerConfig::default()` and change what you need with the `with_*`
/// setters. [`Producer::with_config`](crate::Producer::with_config) refuses
/// values outside the ranges the setters name, with an [`Error::Config`]
/// naming the setter.
///
/// ```
/// use ccloud_kafka_rest::{ProducerConfig, Routing};
/// use std::time::Duration;
/// let config = ProducerConfig::default()
///     .with_connections(4)
///     .with_routing(Routing::ByKey)
///     .with_delivery_timeout(Duration::from_secs(30));
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub(crate) connections: usize,
    pub(crate) max_in_flight_records: usize,
    pub(crate) max_in_flight_bytes: usize,
    pub(crate) max_buffered_records: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) linger: Duration,
    pub(crate) chunk_bytes: usize,
    pub(crate) delivery_timeout: Duration,
    pub(crate) queue_timeout: Option<Duration>,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) on_outcome_unknown: UnknownOutcome,
    pub(crate) routing: Routing,
    pub(crate) strict_order: bool,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_stream_age: Duration,
    pub(crate) max_request_records: Option<usize>,
    pub(crate) max_request_bytes: Option<usize>,
    pub(crate) path: PathSettings,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            connections: 1,
            max_in_flight_records: 10_000,
            max_in_flight_bytes: 32 * 1024 * 1024,
            max_buffered_records: 100_000,
            max_buffered_bytes: 64 * 1024 * 1024,
            linger: Duration::ZERO,
            chunk_bytes: 64 * 1024,
            delivery_timeout: Duration::from_secs(120),
            queue_timeout: None,
            max_attempts: 10,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            on_outcome_unknown: UnknownOutcome::Resend,
            routing: Routing::RoundRobin,
            strict_order: false,
            // The server closes a connection idle for 30 s; close first.
            idle_timeout: Duration::from_secs(25),
            // The server ends streams at 24 h; rotate well before.
            max_stream_age: Duration::from_secs(23 * 3600),
            max_request_records: None,
            max_request_bytes: None,
            path: PathSettings::default(),
        }
    }
}

impl ProducerConfig {
    /// Connections (streams) per topic: 1 to [`MAX_CONNECTIONS`]. Default 1.
    pub fn with_connections(mut self, connections: usize) -> Self {
        self.connections = connections;
        self
    }

    /// Records sent but not yet resolved, per connection; `send` waits when
    /// the bound is reached. 1 to [`MAX_IN_FLIGHT_RECORDS`]; default 10 000.
    pub fn with_max_in_flight_records(mut self, records: usize) -> Self {
        self.max_in_flight_records = records;
        self
    }

    /// Encoded bytes of records sent but not yet resolved, per connection.
    /// 1 to [`MAX_IN_FLIGHT_BYTES`]; default 32 MiB.
    pub fn with_max_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_bytes = bytes;
        self
    }

    /// Records held by the whole producer (every topic and connection)
    /// and not yet resolved; `send` waits when the bound is reached. Each
    /// connection's own bound is a share of it. 1 to
    /// [`MAX_IN_FLIGHT_RECORDS`]; default 100 000.
    pub fn with_max_buffered_records(mut self, records: usize) -> Self {
        self.max_buffered_records = records;
        self
    }

    /// Encoded bytes of the records held by the whole producer and not yet
    /// resolved. 1 to [`MAX_IN_FLIGHT_BYTES`]; default 64 MiB.
    pub fn with_max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// The room one record can take at most: all of the smaller bound.
    pub(crate) fn max_record_room(&self) -> usize {
        self.max_in_flight_bytes.min(self.max_buffered_bytes)
    }

    /// How long to wait for more records before writing a chunk that is not
    /// full, at most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION). Default 0: write as soon as
    /// no more records are waiting.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Target size of one write on the connection: 1 to
    /// [`MAX_CHUNK_BYTES`]. Default 64 KiB.
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes;
        self
    }

    /// Time from `send` after which a record that is still being retried
    /// fails with [`Error::GaveUp`]: more than 0 and at most
    /// [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION). Default 120 s.
    pub fn with_delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// The longest [`send`](crate::Producer::send) and
    /// [`enqueue`](crate::Producer::enqueue) (and
    /// [`send_all`](crate::Producer::send_all) for each record) wait for room
    /// when the record's connection or the producer is full: more than 0
    /// and at most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION).
    /// A record that gets no room by then is not sent: its outcome is
    /// [`Error::QueueFull`], which hands the record back and is retriable.
    ///
    /// Unset by default: the wait is then bounded by the record's delivery
    /// timeout alone, which runs from the call, the wait included; a record
    /// still waiting when it passes fails with [`Error::GaveUp`]
    /// (0 attempts, not written). A queue timeout at least as long as the
    /// delivery timeout changes nothing. To never wait, use
    /// [`try_send`](crate::Producer::try_send).
    pub fn with_queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = Some(timeout);
        self
    }

    /// Attempts per record, the first included. Default 10.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Exponential backoff between retries, with jitter: first delay and cap.
    /// Defaults 100 ms and 10 s; each at most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION),
    /// and `min` no longer than `max`. A server's `Retry-After` wins when
    /// longer, up to [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Resend (default) or fail records whose outcome is unknown.
    pub fn with_unknown_outcome(mut self, policy: UnknownOutcome) -> Self {
        self.on_outcome_unknown = policy;
        self
    }

    /// Former name of [`with_unknown_outcome`](Self::with_unknown_outcome).
    #[deprecated(since = "0.2.0", note = "renamed to `with_unknown_outcome`")]
    pub fn with_on_outcome_unknown(self, policy: UnknownOutcome) -> Self {
        self.with_unknown_outcome(policy)
    }

    /// How records are spread over connections. Default round-robin.
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Keeps send order strictly on each connection, across retries: a
    /// record is written only once every earlier record on its connection
    /// is resolved (like a Kafka producer with one request in flight).
    /// Combine with [`Routing::ByKey`] for strict per-key order. Much slower.
    pub fn with_strict_order(mut self, strict: bool) -> Self {
        self.strict_order = strict;
        self
    }

    /// Close a connection after this long without records: more than 0 and
    /// at most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION). Default 25 s, under the server's
    /// 30 s.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// End a stream and open a new one after this long: more than 0 and at
    /// most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION). Default 23 h, under the server's
    /// 24 h limit.
    pub fn with_max_stream_age(mut self, age: Duration) -> Self {
        self.max_stream_age = age;
        self
    }

    /// End a request after this many records and go on with a new one, so
    /// that every request body is finite (1 or more). Unbounded by default:
    /// a stream ends only with its age, when idle, or as the path requires.
    /// A lane has one request open at a time, so order on a connection
    /// holds across requests.
    pub fn with_max_request_records(mut self, records: usize) -> Self {
        self.max_request_records = Some(records);
        self
    }

    /// End a request once its records reach this many bytes (1 or more; a
    /// request always carries at least one record). Unbounded by default.
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// How long a stream waits for its response headers after its first
    /// record went out before it takes the path to buffer request bodies
    /// (an nginx with default settings, say): it then ends that body and
    /// sends bounded requests (see
    /// [`with_fallback_requests`](Self::with_fallback_requests)). Default
    /// 2 s; more than 0 and at most
    /// [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION).
    pub fn with_buffering_check(mut self, wait: Duration) -> Self {
        self.path.buffering_check = wait;
        self
    }

    /// A stream with records in flight, nothing to write and no report for
    /// this long ends its body, and later records go on the next request:
    /// this gets reports out of an intermediary that holds them until the
    /// body ends. Nothing is cut: the server still answers every record
    /// written. `None` never ends a body for that. Default 1 s.
    pub fn with_report_stall(mut self, wait: Option<Duration>) -> Self {
        self.path.report_stall = wait;
        self
    }

    /// While reports are awaited and nothing is to be written, a byte of
    /// whitespace goes on the body this often, so that the idle timers of
    /// the server and intermediaries do not close it. Default 10 s; more
    /// than 0 and at most
    /// [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION).
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.path.heartbeat = every;
        self
    }

    /// The requests sent once the path was found to buffer bodies: at most
    /// `bytes` of records (halved on each HTTP 413 of a request of several
    /// records) or records taken for at most `age`, kept for `hold` before
    /// streaming is tried again. Default 1 MiB (nginx's default body cap),
    /// 100 ms and 10 minutes.
    pub fn with_fallback_requests(mut self, bytes: usize, age: Duration, hold: Duration) -> Self {
        self.path.fallback_bytes = bytes;
        self.path.fallback_age = age;
        self.path.fallback_hold = hold;
        self
    }

    /// What a lane's state machine needs of this configuration.
    pub(crate) fn lane_settings(&self) -> Settings {
        Settings {
            chunk_bytes: self.chunk_bytes,
            chunk_capacity: self.chunk_bytes.min(1 << 20),
            linger: self.linger,
            idle_timeout: self.idle_timeout,
            max_stream_age: self.max_stream_age,
            request_records: self.max_request_records,
            request_bytes: self.max_request_bytes,
            path: self.path,
            strict_order: self.strict_order,
            policy: RetryPolicy {
                max_attempts: self.max_attempts,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
                guarantee: self.on_outcome_unknown.guarantee(),
            },
        }
    }

    /// Refuses settings that cannot work, naming the setter and the range it
    /// accepts (the caps are the `MAX_*` constants at the crate root).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let count = |setter: &str, value: usize, max: usize, cap: &str| {
            (value == 0 || value > max).then(|| {
                format!("{setter}({value}) is out of range: it must be 1 to {max} ({cap})")
            })
        };
        let duration = duration_problem;
        let problem = count(
            "with_connections",
            self.connections,
            MAX_CONNECTIONS,
            "MAX_CONNECTIONS",
        )
        .or_else(|| {
            count(
                "with_max_in_flight_records",
                self.max_in_flight_records,
                MAX_IN_FLIGHT_RECORDS,
                "MAX_IN_FLIGHT_RECORDS",
            )
        })
        .or_else(|| {
            count(
                "with_max_in_flight_bytes",
                self.max_in_flight_bytes,
                MAX_IN_FLIGHT_BYTES,
                "MAX_IN_FLIGHT_BYTES",
            )
        })
        .or_else(|| {
            count(
                "with_max_buffered_records",
                self.max_buffered_records,
                MAX_IN_FLIGHT_RECORDS,
                "MAX_IN_FLIGHT_RECORDS",
            )
        })
        .or_else(|| {
            count(
                "with_max_buffered_bytes",
                self.max_buffered_bytes,
                MAX_IN_FLIGHT_BYTES,
                "MAX_IN_FLIGHT_BYTES",
            )
        })
        .or_else(|| {
            count(
                "with_chunk_bytes",
                self.chunk_bytes,
                MAX_CHUNK_BYTES,
                "MAX_CHUNK_BYTES",
            )
        })
        .or_else(|| {
            (self.max_attempts == 0)
                .then(|| "with_max_attempts(0) is out of range: it must be at least 1".to_owned())
        })
        .or_else(|| duration("with_delivery_timeout", self.delivery_timeout, false))
        .or_else(|| {
            self.queue_timeout
                .and_then(|timeout| duration("with_queue_timeout", timeout, false))
        })
        .or_else(|| duration("with_linger", self.linger, true))
        .or_else(|| duration("with_idle_timeout", self.idle_timeout, false))
        .or_else(|| duration("with_max_stream_age", self.max_stream_age, false))
        .or_else(|| {
            let positive = |setter: &str, value: Option<usize>| {
                (value == Some(0))
                    .then(|| format!("{setter}(0) is out of range: it must be at least 1"))
            };
            positive("with_max_request_records", self.max_request_records)
                .or_else(|| positive("with_max_request_bytes", self.max_request_bytes))
                .or_else(|| {
                    positive(
                        "with_fallback_requests (bytes)",
                        Some(self.path.fallback_bytes),
                    )
                })
        })
        .or_else(|| duration("with_buffering_check", self.path.buffering_check, false))
        .or_else(|| {
            self.path
                .report_stall
                .and_then(|wait| duration("with_report_stall", wait, false))
        })
        .or_else(|| duration("with_heartbeat", self.path.heartbeat, false))
        .or_else(|| {
            duration(
                "with_fallback_requests (age)",
                self.path.fallback_age,
                false,
            )
        })
        .or_else(|| {
            duration(
                "with_fallback_requests (hold)",
                self.path.fallback_hold,
                false,
            )
        })
        .or_else(|| duration("with_backoff (first delay)", self.backoff_min, true))
        .or_else(|| duration("with_backoff (cap)", self.backoff_max, true))
        .or_else(|| {
            (self.backoff_min > self.backoff_max).then(|| {
                format!(
                    "with_backoff({:?}, {:?}): the first delay is longer than the cap",
                    self.backoff_min, self.backoff_max
                )
            })
        });
        match problem {
            None => Ok(()),
            Some(problem) => Err(Error::Config(format!(
                "invalid producer configuration: {problem}"
            ))),
        }
    }
}
