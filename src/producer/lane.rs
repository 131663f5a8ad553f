//! One connection of the producer to one topic: at most one stream open at a
//! time, records written into it in order, reports matched back by position,
//! and every retry decision for the records on it.

use super::config::{OnOutcomeUnknown, ProducerConfig};
use super::decode::ReportDecoder;
use super::delivery::{LaneShared, Pending};
use super::inbox::Inbox;
use super::stats::Stats;
use crate::client::Client;
use crate::error::{ApiError, Error};
use crate::report::ReportWire;
use crate::response;
use crate::retry_class::RetryClass;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep, sleep_until};
use tracing::{Instrument, debug, info_span, warn};

/// Chunks handed to the HTTP body but not yet written to the socket.
const BODY_QUEUE: usize = 2;
/// Batches of reports decoded but not yet matched by the lane.
const EVENT_QUEUE: usize = 64;

/// What the rest of the producer holds of a lane.
pub(crate) struct LaneHandle {
    /// Records whose room is taken go here; closing it makes the lane
    /// finish what was sent and stop.
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) shared: Arc<LaneShared>,
    pub(crate) task: Mutex<Option<JoinHandle<()>>>,
}

/// A producer dropped without `close` still lets its lanes finish.
impl Drop for LaneHandle {
    fn drop(&mut self) {
        self.inbox.close();
    }
}

pub(crate) fn spawn(
    client: Client,
    topic: &str,
    index: usize,
    config: Arc<ProducerConfig>,
    stats: Arc<Stats>,
) -> LaneHandle {
    let inbox = Arc::new(Inbox::default());
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let shared = Arc::new(LaneShared::new(
        config.max_in_flight_records,
        config.max_in_flight_bytes,
        stats.clone(),
    ));
    let backoff = ExponentialBuilder::default()
        .with_min_delay(config.backoff_min)
        .with_max_delay(config.backoff_max)
        .with_jitter()
        .without_max_times();
    let lane = Lane {
        url: client.records_url(topic),
        shared: Arc::clone(&shared),
        timer: Box::pin(sleep_until(Instant::now())),
        timer_at: None,
        client,
        backoff,
        config,
        stats,
        inbox: Arc::clone(&inbox),
        incoming_open: true,
        waiting: VecDeque::new(),
        retries: BTreeMap::new(),
        retry_seq: 0,
        events_tx,
        events,
        stream: None,
        next_stream_id: 0,
        reopen_at: None,
        open_backoff: None,
        reconnecting: false,
        refreshed_credentials: false,
    };
    let span = info_span!("kafka_rest_lane", topic = %topic, lane = index);
    let task = tokio::spawn(lane.run().instrument(span));
    LaneHandle {
        inbox,
        shared,
        task: Mutex::new(Some(task)),
    }
}

/// Why a stream failed, kept so that each affected record gets its own
/// error value.
#[derive(Clone, Debug)]
enum Failure {
    /// The server refused the request as a whole.
    Api(ApiError),
    /// The connection failed. `sent` says whether records may have reached
    /// the server.
    Connection { message: String, sent: bool },
}

impl Failure {
    fn error(&self) -> Error {
        match self {
            Failure::Api(api) => Error::Api(api.clone()),
            Failure::Connection { message, .. } => Error::Interrupted(message.clone()),
        }
    }

    fn class(&self) -> RetryClass {
        match self {
            Failure::Api(api) => RetryClass::for_http_status(api.status),
            Failure::Connection { sent: false, .. } => RetryClass::Retriable,
            Failure::Connection { sent: true, .. } => RetryClass::OutcomeUnknown,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Api(api) => api.retry_after,
            Failure::Connection { .. } => None,
        }
    }
}

/// What a stream's reader task tells its lane, in order.
enum Event {
    /// HTTP 200: the stream is open.
    Opened { stream: u64 },
    /// The delivery reports of one piece of the response, in order.
    Reports {
        stream: u64,
        reports: Vec<ReportWire>,
    },
    /// The request was refused with this status; the stream is over.
    Rejected { stream: u64, error: ApiError },
    /// The response ended, cleanly (`None`) or not; the stream is over.
    Ended {
        stream: u64,
        failure: Option<Failure>,
    },
}

struct Stream {
    id: u64,
    body: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    /// Records written (or being written) on this stream, oldest first.
    in_flight: VecDeque<Pending>,
    /// How many of the newest `in_flight` records are still in `chunk`.
    unsent: usize,
    chunk: BytesMut,
    /// The next record did not fit in what is left of the chunk's buffer:
    /// the chunk goes as it is rather than be copied to a larger one.
    chunk_full: bool,
    chunk_started: Instant,
    opened_at: Instant,
    last_activity: Instant,
    /// False once no more records may be written (408, rotation, idle, close).
    accepting: bool,
}

impl Stream {
    /// Whether more records may go into the chunk.
    fn chunk_has_room(&self, chunk_bytes: usize) -> bool {
        !self.chunk_full && self.chunk.len() < chunk_bytes
    }
}

struct Lane {
    client: Client,
    url: String,
    shared: Arc<LaneShared>,
    /// Wakes the lane for the next deadline (linger, retry, reopen, idle,
    /// rotation); reset only when that deadline changes.
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    config: Arc<ProducerConfig>,
    stats: Arc<Stats>,
    backoff: ExponentialBuilder,
    inbox: Arc<Inbox>,
    /// False once the inbox is closed and emptied.
    incoming_open: bool,
    /// Records ready to be written, oldest first.
    waiting: VecDeque<Pending>,
    /// Records waiting out a backoff, by due time then order of failure.
    retries: BTreeMap<(Instant, u64), Pending>,
    retry_seq: u64,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    stream: Option<Stream>,
    next_stream_id: u64,
    /// No stream is opened before this (after a refused or failed open).
    reopen_at: Option<Instant>,
    open_backoff: Option<ExponentialBackoff>,
    /// The last stream ended abnormally: the next open is a reconnect.
    reconnecting: bool,
    refreshed_credentials: bool,
}

/// A lane that stops, however it stops, makes callers waiting for room fail.
impl Drop for Lane {
    fn drop(&mut self) {
        self.shared.close();
        // Records handed over since are refused, and those queued resolve
        // as closed when dropped here.
        self.inbox.close();
        self.inbox.take_all(&mut VecDeque::new());
    }
}

impl Lane {
    async fn run(mut self) {
        loop {
            // Room freed by the records resolved since the last turn.
            self.shared.give_back();
            let now = Instant::now();
            self.promote_due_retries(now);
            self.write_waiting(now).await;
            self.end_body_when_done(now);
            if !self.incoming_open
                && self.waiting.is_empty()
                && self.retries.is_empty()
                && self.stream.is_none()
            {
                debug!("lane finished");
                return;
            }

            let wake = self.next_wake(now);
            if wake != self.timer_at {
                if let Some(at) = wake {
                    self.timer.as_mut().reset(at);
                }
                self.timer_at = wake;
            }
            let has_timer = wake.is_some();
            let take_new = self.incoming_open && self.waiting.is_empty() && self.can_write(now);
            let body = self
                .stream
                .as_ref()
                .filter(|s| !s.chunk.is_empty() && self.linger_over(s, now))
                .and_then(|s| s.body.clone());
            let has_body = body.is_some();
            tokio::select! {
                biased;
                event = self.events.recv() => {
                    // The lane holds a sender, so the channel never closes.
                    if let Some(event) = event {
                        self.on_event(event).await;
                    }
                }
                permit = async { body.expect("checked").reserve_owned().await }, if has_body => {
                    self.send_chunk(permit.ok());
                }
                _ = self.inbox.ready(), if take_new => {
                    self.incoming_open = self.inbox.take_all(&mut self.waiting);
                }
                _ = self.timer.as_mut(), if has_timer => {
                    self.timer_at = None;
                }
            }
        }
    }

    /// Moves retries whose backoff is over to the front of the queue, in
    /// the order they failed.
    fn promote_due_retries(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        for pending in due.into_iter().rev() {
            self.waiting.push_front(pending);
        }
    }

    /// Whether records could be written now (opening a stream if needed).
    fn can_write(&self, now: Instant) -> bool {
        match &self.stream {
            Some(stream) => {
                stream.accepting
                    && !(self.config.strict_order
                        && (!stream.in_flight.is_empty() || !self.retries.is_empty()))
                    && stream.chunk_has_room(self.config.chunk_bytes)
            }
            None => self.reopen_at.is_none_or(|at| at <= now),
        }
    }

    /// Writes waiting records (and whatever else has arrived) into the
    /// current stream's chunk, opening a stream first if there is none.
    async fn write_waiting(&mut self, now: Instant) {
        if self.waiting.is_empty() || !self.can_write(now) {
            return;
        }
        if self.stream.is_none() {
            self.open_stream(now).await;
            if self.stream.is_none() {
                return;
            }
        }
        let strict = self.config.strict_order;
        let chunk_bytes = self.config.chunk_bytes;
        let chunk_capacity = self.chunk_capacity();
        let max_attempts = self.config.max_attempts;
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        loop {
            if !stream.chunk_has_room(chunk_bytes)
                || (strict && (!stream.in_flight.is_empty() || !self.retries.is_empty()))
            {
                break;
            }
            let next = match self.waiting.pop_front() {
                Some(pending) => pending,
                None if self.incoming_open => {
                    self.incoming_open = self.inbox.take_all(&mut self.waiting);
                    match self.waiting.pop_front() {
                        Some(pending) => pending,
                        None => break,
                    }
                }
                None => break,
            };
            if now >= next.deadline || next.attempts >= max_attempts {
                next.expire();
                continue;
            }
            let len = next.encoded.len();
            if stream.chunk.is_empty() {
                stream.chunk_started = now;
                // Room for a whole chunk at once (the buffer is reused
                // when the previous chunks are written).
                stream.chunk.reserve(len.max(chunk_capacity));
            } else if stream.chunk.capacity() - stream.chunk.len() < len {
                stream.chunk_full = true;
                self.waiting.push_front(next);
                break;
            }
            let mut pending = next;
            pending.attempts += 1;
            stream.chunk.extend_from_slice(&pending.encoded);
            stream.in_flight.push_back(pending);
            stream.unsent += 1;
        }
    }

    /// Bytes a chunk's buffer is made for.
    fn chunk_capacity(&self) -> usize {
        self.config.chunk_bytes.min(1 << 20)
    }

    fn linger_over(&self, stream: &Stream, now: Instant) -> bool {
        !stream.chunk_has_room(self.config.chunk_bytes)
            || self.config.linger.is_zero()
            || !stream.accepting
            || stream.chunk_started + self.config.linger <= now
    }

    fn send_chunk(&mut self, permit: Option<mpsc::OwnedPermit<Result<Bytes, std::io::Error>>>) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        match permit {
            Some(permit) => {
                permit.send(Ok(stream.chunk.split().freeze()));
                stream.chunk_full = false;
                stream.unsent = 0;
                stream.last_activity = Instant::now();
            }
            // The request is over; its reader reports how.
            None => {
                stream.body = None;
                stream.accepting = false;
            }
        }
    }

    /// Ends the request body when the stream must stop (rotation, idle,
    /// 408, closing) and nothing is left to write on it, so that the server
    /// finishes its reports and ends the response.
    fn end_body_when_done(&mut self, now: Instant) {
        let closing = !self.incoming_open && self.waiting.is_empty() && self.retries.is_empty();
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if stream.body.is_none() || !stream.chunk.is_empty() {
            return;
        }
        let idle = stream.in_flight.is_empty()
            && self.waiting.is_empty()
            && now >= stream.last_activity + self.config.idle_timeout;
        let old = now >= stream.opened_at + self.config.max_stream_age;
        if idle || old || closing || !stream.accepting {
            debug!(
                stream = stream.id,
                idle, old, closing, "ending the request body"
            );
            stream.body = None;
            stream.accepting = false;
        }
    }

    /// The next time the lane has something to do by itself, if any.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |time: Instant| wake = Some(wake.map_or(time, |w| w.min(time)));
        if let Some(((due, _), _)) = self.retries.first_key_value() {
            at(*due);
        }
        if let Some(reopen) = self.reopen_at.filter(|_| !self.waiting.is_empty()) {
            at(reopen);
        }
        if let Some(stream) = &self.stream {
            if !stream.chunk.is_empty() && !self.config.linger.is_zero() {
                at(stream.chunk_started + self.config.linger);
            }
            if stream.body.is_some() {
                at(stream.last_activity + self.config.idle_timeout);
                at(stream.opened_at + self.config.max_stream_age);
            }
        }
        wake.map(|w| w.max(now))
    }

    async fn open_stream(&mut self, now: Instant) {
        let headers = match self.client.credential_headers().await {
            Ok(headers) => headers,
            Err(e) => {
                // No stream without credentials: the waiting records wait
                // out a backoff, or fail when the error is final.
                warn!(error = %e, "could not get credentials for a stream");
                let delay = self.next_open_delay(e.retry_after());
                self.reopen_at = Some(now + delay);
                for pending in std::mem::take(&mut self.waiting) {
                    if e.is_retriable() {
                        self.retry(pending, e.clone(), Some(delay));
                    } else {
                        pending.fail(e.clone());
                    }
                }
                return;
            }
        };
        let (body_tx, body_rx) = mpsc::channel(BODY_QUEUE);
        let mut body_rx = body_rx;
        let body = reqwest::Body::wrap_stream(futures_util::stream::poll_fn(move |cx| {
            body_rx.poll_recv(cx)
        }));
        let request = self
            .client
            .http()
            .post(&self.url)
            .headers(headers)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.next_stream_id += 1;
        let id = self.next_stream_id;
        self.stats.stream_opened(self.reconnecting);
        debug!(stream = id, reconnect = self.reconnecting, "stream opening");
        self.reconnecting = false;
        tokio::spawn(read_stream(request, id, self.events_tx.clone()).in_current_span());
        self.stream = Some(Stream {
            id,
            body: Some(body_tx),
            in_flight: VecDeque::new(),
            unsent: 0,
            chunk: BytesMut::with_capacity(self.chunk_capacity()),
            chunk_full: false,
            chunk_started: now,
            opened_at: now,
            last_activity: now,
            accepting: true,
        });
    }

    fn next_open_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .open_backoff
            .get_or_insert_with(|| self.backoff.build());
        let delay = backoff.next().unwrap_or(self.config.backoff_max);
        retry_after.map_or(delay, |r| r.max(delay))
    }

    async fn on_event(&mut self, event: Event) {
        let current = self.stream.as_ref().map(|s| s.id);
        match event {
            Event::Opened { stream } if Some(stream) == current => {
                debug!(stream, "stream open");
                self.open_backoff = None;
                self.refreshed_credentials = false;
            }
            Event::Reports { stream, reports } if Some(stream) == current => {
                for report in reports {
                    self.on_report(report);
                }
            }
            Event::Rejected { stream, error } if Some(stream) == current => {
                self.on_rejected(error).await;
            }
            Event::Ended { stream, failure } if Some(stream) == current => {
                self.on_ended(failure);
            }
            _ => warn!("event for a stream that is no longer current"),
        }
    }

    fn on_report(&mut self, report: ReportWire) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let Some(pending) = stream.in_flight.pop_front() else {
            warn!(
                stream = stream.id,
                "a delivery report without a record; ignored"
            );
            return;
        };
        stream.unsent = stream.unsent.min(stream.in_flight.len());
        let error = match report.into_result() {
            Ok(report) => return pending.deliver(report),
            Err(error) => error,
        };
        let code = error.error_code();
        match error.retry_class() {
            RetryClass::Terminal => pending.fail(error),
            RetryClass::OutcomeUnknown
                if self.config.on_outcome_unknown == OnOutcomeUnknown::Fail =>
            {
                pending.fail(error)
            }
            RetryClass::OutcomeUnknown => {
                let mut pending = pending;
                pending.possibly_duplicated = true;
                self.retry(pending, error, None);
            }
            RetryClass::Retriable if code == Some(408) => {
                // The stream outlived the server's limit: finish it and send
                // the record again on a new one, without waiting.
                debug!(stream = stream.id, "stream expired (408)");
                stream.accepting = false;
                self.reconnecting = true;
                self.retry(pending, error, Some(Duration::ZERO));
            }
            RetryClass::Retriable => self.retry(pending, error, None),
        }
    }

    async fn on_rejected(&mut self, error: ApiError) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        let now = Instant::now();
        self.reconnecting = true;
        let failure = Failure::Api(error);
        warn!(stream = stream.id, error = %failure.error(), "stream refused");
        let unauthorized = matches!(&failure, Failure::Api(api) if api.status == 401);
        if unauthorized && !self.refreshed_credentials {
            // A token may have been revoked or expired early: fetch a new
            // one once before failing the records.
            self.refreshed_credentials = true;
            self.client.credentials_rejected().await;
            self.requeue_unsent(stream.in_flight);
            return;
        }
        if failure.class().is_retriable() {
            let delay = self.next_open_delay(failure.retry_after());
            self.reopen_at = Some(now + delay);
            for pending in stream.in_flight {
                self.retry(pending, failure.error(), Some(delay));
            }
        } else {
            for pending in stream.in_flight {
                pending.fail(failure.error());
            }
        }
    }

    fn on_ended(&mut self, failure: Option<Failure>) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let abnormal = failure.is_some() || !stream.in_flight.is_empty();
        self.reconnecting |= abnormal;
        if let Some(failure) = &failure {
            warn!(stream = stream.id, error = %failure.error(), "stream ended");
        } else {
            debug!(stream = stream.id, "stream closed");
        }
        // Records never handed to the connection were not sent.
        let unsent = stream
            .in_flight
            .split_off(stream.in_flight.len() - stream.unsent);
        self.requeue_unsent(unsent);
        if stream.in_flight.is_empty() {
            return;
        }
        let failure = failure.unwrap_or(Failure::Connection {
            message: "the server ended the response".into(),
            sent: true,
        });
        let not_sent = matches!(failure, Failure::Connection { sent: false, .. });
        let delay = self.next_open_delay(None);
        self.reopen_at = Some(Instant::now() + delay);
        for mut pending in stream.in_flight {
            if not_sent {
                self.retry(pending, failure.error(), Some(delay));
            } else if self.config.on_outcome_unknown == OnOutcomeUnknown::Fail {
                pending.fail(failure.error());
            } else {
                pending.possibly_duplicated = true;
                self.retry(pending, failure.error(), Some(Duration::ZERO));
            }
        }
    }

    /// Puts records that were never written back at the front of the queue,
    /// not counting the attempt.
    fn requeue_unsent(&mut self, records: VecDeque<Pending>) {
        for mut pending in records.into_iter().rev() {
            pending.attempts = pending.attempts.saturating_sub(1);
            self.waiting.push_front(pending);
        }
    }

    /// Schedules a record to be sent again, or fails it when its attempts or
    /// time are used up. `delay` replaces the record's own backoff.
    fn retry(&mut self, mut pending: Pending, error: Error, delay: Option<Duration>) {
        let now = Instant::now();
        let retry_after = error.retry_after();
        pending.failed_retriably(error);
        if pending.attempts >= self.config.max_attempts || now >= pending.deadline {
            pending.expire();
            return;
        }
        let delay = delay.unwrap_or_else(|| {
            let backoff = pending.backoff(|| self.backoff.build());
            let delay = backoff.next().unwrap_or(self.config.backoff_max);
            retry_after.map_or(delay, |r| r.max(delay))
        });
        let due = now + delay;
        if due >= pending.deadline {
            pending.expire();
            return;
        }
        self.stats.retried();
        debug!(
            attempts = pending.attempts,
            delay_ms = delay.as_millis() as u64,
            "retry scheduled"
        );
        self.retry_seq += 1;
        self.retries.insert((due, self.retry_seq), pending);
    }
}

/// Sends the request and turns its response into events for the lane.
async fn read_stream(request: reqwest::RequestBuilder, stream: u64, events: mpsc::Sender<Event>) {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let failure = Failure::Connection {
                message: e.to_string(),
                sent: !e.is_connect(),
            };
            let _ = events
                .send(Event::Ended {
                    stream,
                    failure: Some(failure),
                })
                .await;
            return;
        }
    };
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let retry_after = response::retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let error = response::api_error_from_body(status.as_u16(), &body, retry_after);
        let _ = events.send(Event::Rejected { stream, error }).await;
        return;
    }
    if events.send(Event::Opened { stream }).await.is_err() {
        return;
    }
    let mut decoder = ReportDecoder::default();
    let mut body = response.bytes_stream();
    let failure = loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                // About as many as the piece can hold, so that the vector
                // rarely grows (reports are rarely under 128 bytes).
                let mut reports = Vec::with_capacity(chunk.len() / 128 + 1);
                let decoded = decoder.push(&chunk, &mut reports);
                // Reports decoded before an undecodable one still count.
                if !reports.is_empty()
                    && events
                        .send(Event::Reports { stream, reports })
                        .await
                        .is_err()
                {
                    return;
                }
                if let Err(e) = decoded {
                    break Some(Failure::Connection {
                        message: format!("undecodable delivery report: {e}"),
                        sent: true,
                    });
                }
            }
            Some(Err(e)) => {
                break Some(Failure::Connection {
                    message: e.to_string(),
                    sent: true,
                });
            }
            None if decoder.has_partial() => {
                break Some(Failure::Connection {
                    message: "the response ended inside a delivery report".into(),
                    sent: true,
                });
            }
            None => break None,
        }
    };
    let _ = events.send(Event::Ended { stream, failure }).await;
}
