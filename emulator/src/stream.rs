//! Streaming produce: reads records from the request body as they arrive and
//! writes one delivery report per record to the response as soon as it is ready.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::body::{BodyReader, Read, too_large_message};
use super::compact;
use super::faults::{self, FaultPlan, Lane, Rng, Stats};
use super::rate_limit::RATE_LIMITED_MESSAGE;
use super::raw::RawRecord;
use super::record::{self, ParseError, Prepared, RecordError};
use super::report::{self, Delivered, SuccessWriter};
use super::response::{
    Charset, Chunk, ResponseBody, StreamReset, error_response, payload_too_large, unreadable_body,
};
use super::scan::{Scan, Scanner, is_ws};
use super::state::{Appender, MAX_KAFKA_RECORD_BYTES, Shared, TopicLog};

/// Report chunks that may wait for the connection before record handling pauses.
const PENDING_CHUNKS: usize = 32;

/// The message of the HTTP 422 for a body without any record.
pub(crate) const EMPTY_BODY: &str = "Payload error. Request body is empty. Data is required.";

/// Checks and appends a prepared record of `cost` bytes of JSON text to
/// `cluster`, returning what to report.
pub(crate) fn deliver(
    shared: &Shared,
    cluster: &str,
    topic: &TopicLog,
    appender: &mut Appender<'_>,
    mut record: Prepared<'_>,
    cost: usize,
) -> Result<Delivered, RecordError> {
    admit(shared, cluster, cost)?;
    let partition = check(topic, &record)?;
    if let Some(fault) = shared.faults.take_record() {
        return Err(RecordError::new(fault.code, fault.message));
    }
    Ok(append(appender, partition, &mut record, record::now_millis))
}

/// The produce rate limits' verdict on a valid record of `cost` bytes of JSON
/// text: an in-band 429 when it is over one of them. Checked once per record,
/// after it is read and validated and before the broker's checks, as the REST
/// Proxy checks it before serializing the record.
fn admit(shared: &Shared, cluster: &str, cost: usize) -> Result<(), RecordError> {
    if shared.rate_limiter.admit(cluster, cost) {
        Ok(())
    } else {
        Err(RecordError::new(429, RATE_LIMITED_MESSAGE))
    }
}

/// Chooses the partition of a record and checks its size, as the broker would.
fn check(topic: &TopicLog, record: &Prepared<'_>) -> Result<i32, RecordError> {
    let key_bytes = record.key.as_ref().and_then(|k| k.data.as_deref());
    let partition = topic.choose_partition(record.partition, key_bytes)?;
    let size = record.payload_bytes();
    if size > MAX_KAFKA_RECORD_BYTES {
        return Err(RecordError::new(
            50002,
            format!(
                "The record is {size} bytes when serialized, more than the producer's \
                 max.request.size of {MAX_KAFKA_RECORD_BYTES} bytes."
            ),
        ));
    }
    Ok(partition)
}

/// Appends a checked record (taking its headers).
fn append(
    appender: &mut Appender<'_>,
    partition: i32,
    record: &mut Prepared<'_>,
    now: impl FnOnce() -> DateTime<Utc>,
) -> Delivered {
    let timestamp = record.timestamp.unwrap_or_else(now);
    let key = record.key.as_ref().map(|k| (k.ty, k.size()));
    let value = record.value.as_ref().map(|v| (v.ty, v.size()));
    let appended = appender.append(partition, record, timestamp);
    Delivered {
        partition: appended.partition,
        offset: appended.offset,
        timestamp,
        key,
        value,
    }
}

/// Parses and validates one streamed record. The outer `Err` is a JSON syntax
/// error; the inner one an in-band record error.
fn prepare(json: &[u8]) -> Result<Result<Prepared<'_>, RecordError>, String> {
    match record::parse(json) {
        Ok(mut raw) => Ok(validate(&mut raw)),
        Err(ParseError::Syntax(detail)) => Err(detail),
        Err(ParseError::Record(error)) => Ok(Err(error)),
    }
}

/// Validates one streamed record (taking its parts; passed by reference only
/// to spare copying it).
fn validate<'a>(raw: &mut RawRecord<'a>) -> Result<Prepared<'a>, RecordError> {
    if raw.id.is_some() {
        return Err(RecordError::new(
            400,
            "Bad Request: unknown field `id` (ids belong to records:batch entries)",
        ));
    }
    record::prepare(raw)
}

/// Waits for the first meaningful body bytes, then answers HTTP 200 and hands the
/// rest of the body to a task that streams the reports. A body that ends before
/// any non-whitespace byte gets HTTP 422 instead, one that outgrows its limit
/// first HTTP 413, one that stays idle an empty HTTP 200 (as an idle stream
/// ends), and a planned open failure its HTTP error at once.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    cluster: String,
    topic: Arc<TopicLog>,
    charset: Charset,
    mut body: BodyReader,
    ends: Ends,
) -> Response<ResponseBody> {
    let began = Instant::now();
    let (plan, index) = shared.faults.start_stream();
    let mut rng = Rng::for_stream(plan.seed, index, Lane::Faults);
    if rng.chance(plan.open_failure_rate) {
        Stats::bump(&shared.faults.stats.open_failures);
        tracing::debug!(
            status = plan.open_failure.status(),
            "failing the request as planned"
        );
        return plan.open_failure.response();
    }
    let first = loop {
        match body.next().await {
            Read::End => return error_response(StatusCode::UNPROCESSABLE_ENTITY, 422, EMPTY_BODY),
            Read::Failed(error) => {
                tracing::debug!(%error, "request body failed before the first record");
                return unreadable_body();
            }
            Read::Idle => {
                tracing::debug!("closing a stream idle before its first record");
                // The response ends at once; with the request body unfinished,
                // the connection closes once it is written.
                let (_, rx) = mpsc::channel(1);
                return stream_response(rx);
            }
            Read::TooLarge => return payload_too_large(body.limit().unwrap_or_default()),
            Read::Data(data) => {
                if data.iter().any(|&b| !is_ws(b)) {
                    break data;
                }
            }
        }
    };
    let (tx, rx) = mpsc::channel(PENDING_CHUNKS);
    let header_delay = plan.header_delay.filter(|d| !d.is_zero());
    let stream = Stream::new(shared, &cluster, topic, charset, plan, index, rng);
    tokio::spawn(stream.run(body, first, tx, ends));
    if let Some(delay) = header_delay {
        tracing::debug!(?delay, "holding the headers back as planned");
        // A delay too long to represent holds them for good.
        until(began.checked_add(delay)).await;
    }
    stream_response(rx)
}

/// How a stream ends its connection early.
pub(crate) struct Ends {
    /// Drops the connection (on HTTP/2, with all its streams).
    pub kill: Arc<Notify>,
    /// Sends GOAWAY (on HTTP/1.1, closes once the response is written), then
    /// drops the connection after [`GOAWAY_GRACE`](super::GOAWAY_GRACE).
    pub goaway: Arc<Notify>,
}

/// HTTP 200 with the reports `rx` receives as its body.
fn stream_response(rx: mpsc::Receiver<Chunk>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::Stream(rx));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// What to do after handling the records found so far.
enum Step {
    /// Wait for more body bytes.
    More,
    /// The stream ended with a fatal error report.
    Fatal,
    /// The injected connection cut is due.
    Cut,
    /// The injected stream reset is due.
    Reset,
    /// The injected GOAWAY is due.
    Goaway,
}

/// What became of one record.
enum Handled {
    /// Its report has been written.
    Reported,
    /// It was appended, and the connection is to be cut before its report.
    Cut,
    /// Its report has been written, and the stream is to be reset.
    Reset,
    /// Its report has been written, and the connection is to send GOAWAY.
    Goaway,
}

/// What ended the wait for more body bytes.
enum Wake {
    Read(Read),
    Expired,
}

/// Sleeps until the deadline, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Stream {
    shared: Arc<Shared>,
    /// The cluster id of the request's path.
    cluster: String,
    topic: Arc<TopicLog>,
    successes: SuccessWriter,
    latin1: bool,
    scanner: Scanner,
    /// Reports not yet handed to the connection.
    out: BytesMut,
    /// Where each report in `out` ends, kept only when reports are delayed.
    ends: Vec<usize>,
    /// The planned wait before each report, if any.
    report_delay: Option<Duration>,
    /// Records answered so far (the report may have been lost to a cut).
    reports: usize,
    /// Records this stream has appended to the log.
    appended: u64,
    /// The one-shot cut: after this many reports.
    cut_after: Option<usize>,
    /// The one-shot stream reset: after this many reports.
    reset_after: Option<usize>,
    /// The one-shot GOAWAY: after this many reports.
    goaway_after: Option<usize>,
    lifetime: Option<Duration>,
    close_delay: Duration,
    started: Instant,
    /// When the connection closes, once the stream has expired.
    closing_at: Option<Instant>,
    plan: Arc<FaultPlan>,
    /// Fault decisions.
    rng: Rng,
    /// Report fragmentation, kept apart so that it never shifts a decision.
    shape: Rng,
    /// When the bytes being handled arrived, read once per piece of body.
    received_at: Option<DateTime<Utc>>,
}

impl Stream {
    fn new(
        shared: Arc<Shared>,
        cluster: &str,
        topic: Arc<TopicLog>,
        charset: Charset,
        plan: Arc<FaultPlan>,
        index: u64,
        rng: Rng,
    ) -> Stream {
        let cut_after = shared.faults.take_cut();
        let reset_after = shared.faults.take_reset();
        let goaway_after = shared.faults.take_goaway();
        let lifetime = match (shared.limits.stream_lifetime, plan.stream_lifetime) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let close_delay = plan
            .stream_close_delay
            .unwrap_or(shared.limits.stream_close_delay);
        Stream {
            successes: SuccessWriter::new(cluster, topic.name(), shared.reports_without_error_code),
            cluster: cluster.to_owned(),
            shared,
            topic,
            latin1: charset == Charset::Latin1,
            scanner: Scanner::default(),
            out: BytesMut::with_capacity(4096),
            ends: Vec::new(),
            report_delay: plan.report_delay.filter(|d| !d.is_zero()),
            reports: 0,
            appended: 0,
            cut_after,
            reset_after,
            goaway_after,
            lifetime,
            close_delay,
            started: Instant::now(),
            closing_at: None,
            shape: Rng::for_stream(plan.seed, index, Lane::Shape),
            rng,
            plan,
            received_at: None,
        }
    }

    async fn run(
        mut self,
        mut body: BodyReader,
        first: Bytes,
        tx: mpsc::Sender<Chunk>,
        ends: Ends,
    ) {
        let Ends { kill, goaway } = ends;
        if self.cut_after == Some(0) || self.plan.cut_after_records == Some(0) {
            self.cut(&tx, &kill).await;
            return;
        }
        if self.reset_after == Some(0) {
            self.reset(&tx).await;
            return;
        }
        if self.goaway_after == Some(0) {
            self.goaway(&tx, &goaway).await;
            return;
        }
        // A planned idle timeout shorter than the configured one is a fault.
        let planned_idle = self.plan.idle_timeout.filter(|&d| d < body.idle());
        if let Some(idle) = planned_idle {
            body.set_idle(idle);
        }
        // Bytes of an object whose end has not arrived yet.
        let mut carry: Vec<u8> = Vec::new();
        let mut next = Some(first);
        loop {
            if let Some(data) = next.take() {
                let step = self.take(&mut carry, &data);
                if !self.flush(&tx).await {
                    return;
                }
                match step {
                    Step::More => {}
                    Step::Fatal => return,
                    Step::Cut => {
                        self.cut(&tx, &kill).await;
                        return;
                    }
                    Step::Reset => {
                        self.reset(&tx).await;
                        return;
                    }
                    Step::Goaway => {
                        self.goaway(&tx, &goaway).await;
                        return;
                    }
                }
            }
            let wake = tokio::select! {
                biased;
                read = body.next() => Wake::Read(read),
                () = until(self.closing_at) => Wake::Expired,
            };
            let read = match wake {
                Wake::Read(read) => read,
                Wake::Expired => {
                    drop_connection(&tx, &kill).await;
                    return;
                }
            };
            match read {
                Read::Data(data) => next = Some(data),
                Read::End => break,
                Read::Failed(error) => {
                    tracing::debug!(%error, "request body failed mid-stream");
                    return;
                }
                Read::Idle => {
                    if planned_idle.is_some() {
                        Stats::bump(&self.shared.faults.stats.idle_closes);
                    }
                    tracing::debug!(
                        reports = self.reports,
                        "closing an idle stream; the response ends here"
                    );
                    // Ending the response while the request body is unfinished
                    // makes the connection close once the response is written.
                    return;
                }
                Read::TooLarge => {
                    let limit = body.limit().unwrap_or_default();
                    tracing::debug!(limit, "stream body over its limit; the response ends here");
                    // Whatever record is unfinished gets no report.
                    self.failure(413, &too_large_message(limit));
                    let _ = self.flush(&tx).await;
                    return;
                }
            }
        }
        if self.scanner.in_object() {
            self.fatal("Unexpected end-of-input: the last record is incomplete");
            let _ = self.flush(&tx).await;
        }
        if let Some(at) = self.closing_at {
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                kill.notify_one();
            });
        }
        tracing::debug!(
            topic = self.topic.name(),
            reports = self.reports,
            "stream finished"
        );
    }

    /// Handles every record completed by `data`, keeping the bytes of an
    /// unfinished one in `carry`.
    fn take(&mut self, carry: &mut Vec<u8>, data: &[u8]) -> Step {
        // Records that arrived together were received at the same time.
        self.received_at = None;
        // Room for the reports of this piece at once, rather than growing the
        // buffer (and copying it) report by report: a report is about as long
        // as a small record's text, and shorter than a larger one's.
        self.out.reserve(data.len() + data.len() / 4);
        let step = self.feed(carry, data);
        if matches!(step, Step::More)
            && let Some(from) = self.scanner.next_buffer(data.len())
        {
            carry.extend_from_slice(&data[from..]);
        }
        step
    }

    /// Handles every record that ends in `data`; the first may have begun in
    /// `carry`.
    fn feed(&mut self, carry: &mut Vec<u8>, data: &[u8]) -> Step {
        let limit = self.shared.limits.max_record_bytes;
        // What the compact reader may read: UTF-8 bodies, up to a character
        // split across pieces (or bytes that are not UTF-8, left to serde).
        let text = if self.latin1 {
            ""
        } else {
            compact::utf8_prefix(data)
        };
        let topic = Arc::clone(&self.topic);
        let mut appender = topic.appender();
        loop {
            // A record in the form clients write is read in one pass, which also
            // finds its end; anything else is framed by the scanner first.
            if let Some(start) = self.scanner.next_start(data)
                && let Some(object) = text.get(start..)
                && let mut reader = compact::Reader::new(object)
                && let Some(mut raw) = reader.record()
                && reader.consumed() <= limit
            {
                let cost = reader.consumed();
                self.scanner.skip_to(start + cost);
                let handled = self.record_read(&mut raw, cost, &mut appender);
                if let Some(step) = self.counted(handled) {
                    return step;
                }
                continue;
            }
            let handled = match self.scanner.next(data, Some(limit)) {
                Scan::NeedMore => return Step::More,
                Scan::Object { start, end } => self.record(&data[start..end], &mut appender),
                Scan::Rest { end } => {
                    carry.extend_from_slice(&data[..end]);
                    let handled = self.record(carry, &mut appender);
                    carry.clear();
                    handled
                }
                Scan::Unexpected { byte } => {
                    let shown = if byte.is_ascii_graphic() {
                        format!("'{}'", char::from(byte))
                    } else {
                        format!("code {byte}")
                    };
                    self.fatal(&format!(
                        "Unexpected character ({shown}): expected '{{' to start a record"
                    ));
                    return Step::Fatal;
                }
                Scan::TooLarge => {
                    self.write_fatal(&format!(
                        "Bad Request: Produce request size is larger than allowed threshold of {limit} bytes"
                    ));
                    return Step::Fatal;
                }
            };
            let handled = match handled {
                Ok(handled) => handled,
                Err(detail) => {
                    self.fatal(&detail);
                    return Step::Fatal;
                }
            };
            if let Some(step) = self.counted(handled) {
                return step;
            }
        }
    }

    /// Counts a handled record; the fault due now, if any (a cut first, then
    /// a reset, then GOAWAY).
    fn counted(&mut self, handled: Handled) -> Option<Step> {
        self.reports += 1;
        let due = Some(self.reports);
        if matches!(handled, Handled::Cut) || self.cut_after == due {
            Some(Step::Cut)
        } else if matches!(handled, Handled::Reset) || self.reset_after == due {
            Some(Step::Reset)
        } else if matches!(handled, Handled::Goaway) || self.goaway_after == due {
            Some(Step::Goaway)
        } else {
            None
        }
    }

    /// Whether the stream has outlived its lifetime or record allowance.
    fn expired(&self) -> bool {
        self.lifetime
            .is_some_and(|lifetime| self.started.elapsed() >= lifetime)
            || self
                .plan
                .stream_max_records
                .is_some_and(|max| self.reports as u64 >= max)
    }

    /// Handles one record and writes its report, unless a planned cut takes its
    /// place. `Err` carries the detail of a JSON syntax error, which ends the stream.
    fn record(&mut self, json: &[u8], appender: &mut Appender<'_>) -> Result<Handled, String> {
        if self.expired() {
            return Ok(self.expire());
        }
        // The rate limits count the text as sent.
        let cost = json.len();
        let latin1_text: String;
        let json = if self.latin1 {
            latin1_text = json.iter().map(|&b| char::from(b)).collect();
            latin1_text.as_bytes()
        } else {
            json
        };
        Ok(self.produce(prepare(json)?, cost, appender))
    }

    /// Handles one record that has already been read, as [`record`](Self::record).
    fn record_read(
        &mut self,
        raw: &mut RawRecord<'_>,
        cost: usize,
        appender: &mut Appender<'_>,
    ) -> Handled {
        if self.expired() {
            return self.expire();
        }
        self.produce(validate(raw), cost, appender)
    }

    /// Answers a record of an expired stream with a 408.
    fn expire(&mut self) -> Handled {
        if self.closing_at.is_none() {
            // A delay too long to represent: the stream stays open.
            self.closing_at = Instant::now().checked_add(self.close_delay);
        }
        Stats::bump(&self.shared.faults.stats.expired_408);
        self.failure(
            408,
            "Request Timeout: the stream has been open longer than allowed; open a new one",
        );
        Handled::Reported
    }

    /// Checks, appends and reports a valid record whose JSON text is `cost`
    /// bytes, or reports why it is not.
    fn produce(
        &mut self,
        prepared: Result<Prepared<'_>, RecordError>,
        cost: usize,
        appender: &mut Appender<'_>,
    ) -> Handled {
        let checked = prepared.and_then(|record| {
            admit(&self.shared, &self.cluster, cost)?;
            Ok((check(&self.topic, &record)?, record))
        });
        let (partition, mut record) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                self.failure(error.code, &error.message);
                return Handled::Reported;
            }
        };
        if let Some(fault) = self.shared.faults.take_record() {
            self.failure(fault.code, &fault.message);
            return Handled::Reported;
        }
        let injected = self
            .rng
            .chance(self.plan.record_error_rate)
            .then(|| self.plan.error_code(&mut self.rng));
        let write = match injected {
            None => true,
            Some(code) => faults::unknown_outcome(code) && self.rng.chance(0.5),
        };
        let delivered = if write {
            let now = &mut self.received_at;
            let delivered = append(appender, partition, &mut record, || {
                *now.get_or_insert_with(record::now_millis)
            });
            self.appended += 1;
            if self.plan.cut_after_records == Some(self.appended)
                || self.rng.chance(self.plan.cut_probability)
            {
                tracing::debug!(
                    appended = self.appended,
                    offset = delivered.offset,
                    "record appended; cutting the connection before its report"
                );
                return Handled::Cut;
            }
            Some(delivered)
        } else {
            None
        };
        match (injected, delivered) {
            (None, Some(delivered)) => {
                self.successes.write(&mut self.out, None, &delivered);
                self.end_report();
                if self.rng.chance(self.plan.reset_probability) {
                    tracing::debug!(
                        offset = delivered.offset,
                        "resetting the stream after this report"
                    );
                    return Handled::Reset;
                }
                if self.rng.chance(self.plan.goaway_probability) {
                    tracing::debug!(
                        offset = delivered.offset,
                        "sending GOAWAY after this report"
                    );
                    return Handled::Goaway;
                }
            }
            (Some(code), delivered) => {
                let stats = &self.shared.faults.stats;
                Stats::bump(&stats.injected_record_errors);
                if delivered.is_some() {
                    Stats::bump(&stats.unknown_outcome_appended);
                }
                self.failure(code, faults::error_message(code));
            }
            (None, None) => unreachable!("a record without an injected error is appended"),
        }
        Handled::Reported
    }

    /// Writes an in-band error report.
    fn failure(&mut self, code: i32, message: &str) {
        report::write_failure(&mut self.out, None, code, message);
        self.end_report();
    }

    /// Terminates the report just written.
    fn end_report(&mut self) {
        self.out.extend_from_slice(b"\r\n");
        if self.report_delay.is_some() {
            self.ends.push(self.out.len());
        }
    }

    /// Writes the final report for malformed JSON.
    fn fatal(&mut self, detail: &str) {
        self.write_fatal(&format!("Bad Request: Error processing JSON: {detail}"));
    }

    fn write_fatal(&mut self, message: &str) {
        tracing::debug!(message, "stream ended by an error");
        self.failure(400, message);
    }

    /// Hands pending reports to the connection, after the planned delay before each
    /// one. `false` when the client is gone.
    async fn flush(&mut self, tx: &mpsc::Sender<Chunk>) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let data = self.out.split().freeze();
        let ends = std::mem::take(&mut self.ends);
        let Some(delay) = self.report_delay else {
            return self.send(tx, data).await;
        };
        let mut start = 0;
        for end in ends {
            tokio::time::sleep(delay).await;
            if !self.send(tx, data.slice(start..end)).await {
                return false;
            }
            start = end;
        }
        start == data.len() || self.send(tx, data.slice(start..)).await
    }

    /// Sends bytes as one chunk, or in pieces of 1 to 7 bytes when dribbling.
    async fn send(&mut self, tx: &mpsc::Sender<Chunk>, mut data: Bytes) -> bool {
        if !self.plan.report_dribble {
            return tx.send(Ok(data)).await.is_ok();
        }
        while !data.is_empty() {
            let n = (1 + self.shape.below(7) as usize).min(data.len());
            if tx.send(Ok(data.split_to(n))).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Drops the connection once the reports written so far have gone out.
    async fn cut(&self, tx: &mpsc::Sender<Chunk>, kill: &Notify) {
        Stats::bump(&self.shared.faults.stats.cuts);
        written(tx).await;
        tracing::debug!(
            reports = self.reports,
            "cutting the connection as instructed"
        );
        drop_connection(tx, kill).await;
    }

    /// Fails the response once the reports written so far have gone out:
    /// hyper resets the stream (HTTP/2) or drops the connection (HTTP/1.1).
    async fn reset(&self, tx: &mpsc::Sender<Chunk>) {
        Stats::bump(&self.shared.faults.stats.stream_resets);
        written(tx).await;
        tracing::debug!(reports = self.reports, "resetting the stream as instructed");
        let _ = tx.send(Err(StreamReset)).await;
    }

    /// Has the connection send GOAWAY once the reports written so far have
    /// gone out, and keeps the response open until the connection closes.
    async fn goaway(&self, tx: &mpsc::Sender<Chunk>, goaway: &Notify) {
        Stats::bump(&self.shared.faults.stats.goaways);
        written(tx).await;
        tracing::debug!(reports = self.reports, "sending GOAWAY as instructed");
        drop_connection(tx, goaway).await;
    }
}

/// Waits until the connection has taken every report handed to it (for at
/// most 2 s), and a little more for it to write them out.
async fn written(tx: &mpsc::Sender<Chunk>) {
    let give_up = Instant::now() + Duration::from_secs(2);
    while tx.capacity() < tx.max_capacity() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Asks the connection task to drop the connection, and keeps the response open
/// until it has done so: ending the response first would let it finish cleanly.
async fn drop_connection(tx: &mpsc::Sender<Chunk>, kill: &Notify) {
    kill.notify_one();
    tx.closed().await;
}

/// Handles a whole request body held in memory, `read` bytes at a time, as a
/// stream to a fresh topic `bench` (3 partitions) would: parsing, checks,
/// appends and reports, without the network. Returns the reports written and
/// their bytes. For the benchmarks.
pub(crate) fn handle_in_memory(body: &[u8], read: usize) -> (usize, usize) {
    use super::auth::AuthConfig;
    use super::faults::Faults;
    use super::state::{Limits, Topics};
    let topics = Topics::new(vec![("bench".to_owned(), 3)], false, 1);
    let auth = AuthConfig::new(Default::default(), Default::default(), Default::default());
    let shared = Arc::new(Shared::new(
        super::DEFAULT_CLUSTER_ID.to_owned(),
        topics,
        auth,
        Limits::default(),
        Faults::default(),
    ));
    let topic = shared.topics.lookup("bench").expect("declared above");
    let (plan, index) = shared.faults.start_stream();
    let rng = Rng::for_stream(plan.seed, index, Lane::Faults);
    let cluster = super::DEFAULT_CLUSTER_ID;
    let mut stream = Stream::new(shared, cluster, topic, Charset::Utf8, plan, index, rng);
    let mut carry = Vec::new();
    let mut bytes = 0;
    for data in body.chunks(read.max(1)) {
        let step = stream.take(&mut carry, data);
        bytes += stream.out.len();
        stream.out.clear();
        stream.ends.clear();
        if !matches!(step, Step::More) {
            break;
        }
    }
    (stream.reports, bytes)
}
