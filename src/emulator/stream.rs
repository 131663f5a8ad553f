//! Streaming produce: reads records from the request body as they arrive and
//! writes one delivery report per record to the response as soon as it is ready.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::record::{self, ParseError, Prepared, RecordError};
use super::report::{self, Delivered, Names};
use super::scan::{Scan, Scanner, is_ws};
use super::server::{Charset, ResponseBody, error_response};
use super::state::{MAX_KAFKA_RECORD_BYTES, Shared, TopicLog};

/// Report chunks that may wait for the connection before record handling pauses.
const PENDING_CHUNKS: usize = 32;

/// The message of the HTTP 422 for a body without any record.
pub(crate) const EMPTY_BODY: &str = "Payload error. Request body is empty. Data is required.";

/// Checks and appends a prepared record, returning what to report.
pub(crate) fn deliver(
    shared: &Shared,
    topic: &TopicLog,
    record: Prepared,
) -> Result<Delivered, RecordError> {
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
    if let Some(fault) = shared.faults.take_record() {
        return Err(RecordError::new(fault.code, fault.message));
    }
    let timestamp = record.timestamp.unwrap_or_else(record::now_millis);
    let key = record.key.as_ref().map(|k| (k.ty, k.size()));
    let value = record.value.as_ref().map(|v| (v.ty, v.size()));
    let appended = topic.append(
        partition,
        record.key,
        record.value,
        record.headers,
        timestamp,
    );
    Ok(Delivered {
        partition: appended.partition,
        offset: appended.offset,
        timestamp,
        key,
        value,
    })
}

/// Waits for the first meaningful body bytes, then answers HTTP 200 and hands the
/// rest of the body to a task that streams the reports. A body that ends before
/// any non-whitespace byte gets HTTP 422 instead.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    topic: Arc<TopicLog>,
    charset: Charset,
    mut body: Incoming,
    kill: Arc<Notify>,
) -> Response<ResponseBody> {
    let first = loop {
        match body.frame().await {
            None => return error_response(StatusCode::UNPROCESSABLE_ENTITY, 422, EMPTY_BODY),
            Some(Err(error)) => {
                tracing::debug!(%error, "request body failed before the first record");
                return error_response(
                    StatusCode::BAD_REQUEST,
                    400,
                    "Bad Request: the request body could not be read",
                );
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && data.iter().any(|&b| !is_ws(b))
                {
                    break data;
                }
            }
        }
    };
    let (tx, rx) = mpsc::channel(PENDING_CHUNKS);
    let cut_after = shared.faults.take_cut();
    let stream = Stream {
        names: Names::new(&shared.cluster_id, topic.name()),
        shared,
        topic,
        latin1: charset == Charset::Latin1,
        scanner: Scanner::default(),
        out: BytesMut::with_capacity(4096),
        reports: 0,
        cut_after,
        started: Instant::now(),
        closing_at: None,
    };
    tokio::spawn(stream.run(body, first, tx, kill));
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
}

struct Stream {
    shared: Arc<Shared>,
    topic: Arc<TopicLog>,
    names: Names,
    latin1: bool,
    scanner: Scanner,
    /// Reports not yet handed to the connection.
    out: BytesMut,
    reports: usize,
    cut_after: Option<usize>,
    started: Instant,
    /// When the connection closes, once the stream lifetime has run out.
    closing_at: Option<Instant>,
}

impl Stream {
    async fn run(
        mut self,
        mut body: Incoming,
        first: Bytes,
        tx: mpsc::Sender<Bytes>,
        kill: Arc<Notify>,
    ) {
        if self.cut_after == Some(0) {
            self.cut(&tx, &kill).await;
            return;
        }
        // Bytes of an object whose end has not arrived yet.
        let mut carry: Vec<u8> = Vec::new();
        let mut next = Some(first);
        loop {
            if let Some(data) = next.take() {
                let step = if carry.is_empty() {
                    let step = self.feed(&data);
                    let n = self.scanner.consumed();
                    carry.extend_from_slice(&data[n..]);
                    self.scanner.shift(n);
                    step
                } else {
                    carry.extend_from_slice(&data);
                    let step = self.feed(&carry);
                    let n = self.scanner.consumed();
                    carry.drain(..n);
                    self.scanner.shift(n);
                    step
                };
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
                }
            }
            let frame = match self.closing_at {
                Some(at) => tokio::select! {
                    frame = body.frame() => frame,
                    () = tokio::time::sleep_until(at) => {
                        drop_connection(&tx, &kill).await;
                        return;
                    }
                },
                None => body.frame().await,
            };
            match frame {
                None => break,
                Some(Err(error)) => {
                    tracing::debug!(%error, "request body failed mid-stream");
                    return;
                }
                Some(Ok(frame)) => next = frame.into_data().ok(),
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

    /// Handles every complete record in `buf`.
    fn feed(&mut self, buf: &[u8]) -> Step {
        let limit = self.shared.limits.max_record_bytes;
        loop {
            match self.scanner.next(buf, limit) {
                Scan::NeedMore => return Step::More,
                Scan::Object { start, end } => {
                    if let Err(detail) = self.record(&buf[start..end]) {
                        self.fatal(&detail);
                        return Step::Fatal;
                    }
                    self.reports += 1;
                    if self.cut_after == Some(self.reports) {
                        return Step::Cut;
                    }
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
                        "Bad Request: Produce request size is larger than allowed threshold of {} bytes",
                        limit.unwrap_or_default()
                    ));
                    return Step::Fatal;
                }
            }
        }
    }

    /// Handles one record and writes its report. `Err` carries the detail of a
    /// JSON syntax error, which ends the stream.
    fn record(&mut self, json: &[u8]) -> Result<(), String> {
        if let Some(lifetime) = self.shared.limits.stream_lifetime
            && self.started.elapsed() >= lifetime
        {
            if self.closing_at.is_none() {
                self.closing_at = Some(Instant::now() + self.shared.limits.stream_close_delay);
            }
            report::write_failure(
                &mut self.out,
                None,
                408,
                "Request Timeout: the stream has been open longer than allowed; open a new one",
            );
            self.out.extend_from_slice(b"\r\n");
            return Ok(());
        }
        let outcome = if self.latin1 {
            let text: String = json.iter().map(|&b| char::from(b)).collect();
            self.produce(text.as_bytes())?
        } else {
            self.produce(json)?
        };
        match outcome {
            Ok(delivered) => report::write_success(&mut self.out, &self.names, None, &delivered),
            Err(error) => report::write_failure(&mut self.out, None, error.code, &error.message),
        }
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Parses, validates and appends one record. The outer `Err` is a JSON syntax
    /// error; the inner one an in-band record error.
    fn produce(&self, json: &[u8]) -> Result<Result<Delivered, RecordError>, String> {
        let raw = match record::parse(json) {
            Ok(raw) => raw,
            Err(ParseError::Syntax(detail)) => return Err(detail),
            Err(ParseError::Record(error)) => return Ok(Err(error)),
        };
        if raw.id.is_some() {
            return Ok(Err(RecordError::new(
                400,
                "Bad Request: unknown field `id` (ids belong to records:batch entries)",
            )));
        }
        Ok(record::prepare(raw).and_then(|p| deliver(&self.shared, &self.topic, p)))
    }

    /// Writes the final report for malformed JSON.
    fn fatal(&mut self, detail: &str) {
        self.write_fatal(&format!("Bad Request: Error processing JSON: {detail}"));
    }

    fn write_fatal(&mut self, message: &str) {
        tracing::debug!(message, "stream ended by an error");
        report::write_failure(&mut self.out, None, 400, message);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Hands pending reports to the connection. `false` when the client is gone.
    async fn flush(&mut self, tx: &mpsc::Sender<Bytes>) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let chunk = self.out.split().freeze();
        if self.out.capacity() < 1024 {
            self.out.reserve(4096);
        }
        tx.send(chunk).await.is_ok()
    }

    /// Drops the connection once the reports written so far have gone out.
    async fn cut(&self, tx: &mpsc::Sender<Bytes>, kill: &Notify) {
        let give_up = Instant::now() + Duration::from_secs(2);
        while tx.capacity() < tx.max_capacity() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        tracing::debug!(
            reports = self.reports,
            "cutting the connection as instructed"
        );
        drop_connection(tx, kill).await;
    }
}

/// Asks the connection task to drop the connection, and keeps the response open
/// until it has done so: ending the response first would let it finish cleanly.
async fn drop_connection(tx: &mpsc::Sender<Bytes>, kill: &Notify) {
    kill.notify_one();
    tx.closed().await;
}
