//! Injected faults: HTTP errors, in-band record errors, dropped connections,
//! reset streams, GOAWAY, and slow or fragmented reports.
//!
//! There are two kinds. One-shot faults are queued on the running emulator and used
//! up by the next requests or records. A [`FaultPlan`] instead applies to every
//! streaming request, drawing its decisions from a small seeded random number
//! generator so that a run can be repeated exactly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::response::ResponseBody;
use super::sync::lock;

/// An HTTP error response the emulator sends instead of handling a request.
///
/// Queue one with [`Emulator::fail_next_requests`](super::Emulator::fail_next_requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFault {
    status: u16,
    content_type: String,
    body: String,
    retry_after: Option<u64>,
}

impl HttpFault {
    /// A response with any status, content type and body.
    pub fn new(status: u16, content_type: impl Into<String>, body: impl Into<String>) -> Self {
        HttpFault {
            status,
            content_type: content_type.into(),
            body: body.into(),
            retry_after: None,
        }
    }

    /// The same response with a `Retry-After: {seconds}` header.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A JSON error body `{"error_code":error_code,"message":message}` with the given
    /// HTTP status, e.g. `json(500, 50003, "...")` or `json(503, 50302, "...")`.
    pub fn json(status: u16, error_code: i32, message: impl AsRef<str>) -> Self {
        let body = serde_json::json!({ "error_code": error_code, "message": message.as_ref() });
        HttpFault::new(status, "application/json", body.to_string())
    }

    /// HTTP 429 as the front-end rate limiter sends it: an HTML error page (not
    /// JSON), optionally with `Retry-After`.
    pub fn rate_limited(retry_after: Option<u64>) -> Self {
        let body = "<html>\n<head>\n\
            <meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
            <title>Error 429 Too Many Requests</title>\n</head>\n\
            <body><h2>HTTP ERROR 429 Too Many Requests</h2>\n\
            <table>\n<tr><th>STATUS:</th><td>429</td></tr>\n\
            <tr><th>MESSAGE:</th><td>Too Many Requests</td></tr>\n</table>\n\
            </body>\n</html>\n";
        let fault = HttpFault::new(429, "text/html;charset=iso-8859-1", body);
        match retry_after {
            Some(seconds) => fault.with_retry_after(seconds),
            None => fault,
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `Content-Type` of the body.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The response body.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The `Retry-After` value in seconds, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

impl HttpFault {
    /// The response that answers a request with this fault.
    pub(crate) fn response(&self) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(self.body.clone()))));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(ct) = HeaderValue::from_str(&self.content_type) {
            response.headers_mut().insert(CONTENT_TYPE, ct);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Faults applied to every streaming produce request, decided by a seeded
/// pseudo-random generator so that runs are reproducible.
///
/// Every field defaults to "no fault", so a plan is usually written as
/// `FaultPlan { seed: 7, record_error_rate: 0.01, ..FaultPlan::default() }`. Set it
/// with [`EmulatorBuilder::with_faults`](super::EmulatorBuilder::with_faults) or, while
/// running, [`Emulator::set_faults`](super::Emulator::set_faults). The plan
/// applies to `POST .../records` requests only, not to `records:batch`.
///
/// # Determinism
///
/// Each streaming request gets the next number of a counter that starts at zero
/// and is reset whenever a plan is set. The request's generator is seeded from
/// [`seed`](Self::seed) and that number, and makes its decisions in a fixed order:
/// first whether the request fails to open, then, for each record that is valid and
/// not answered by a one-shot fault, whether it gets an injected error, which code,
/// whether an unknown-outcome error still appends it, whether the connection is
/// cut after appending it, and, for a record reported as delivered, whether the
/// stream is reset and then whether the connection sends GOAWAY after its report. A probability of zero draws nothing, so enabling one
/// fault does not change the decisions of another that was already enabled.
/// Report fragmentation ([`report_dribble`](Self::report_dribble)) uses a separate
/// generator and never changes any decision. So the same plan, the same records
/// and the same order of requests give the same reports; requests that run
/// concurrently may be numbered in either order. Time-based faults
/// ([`stream_lifetime`](Self::stream_lifetime), [`idle_timeout`](Self::idle_timeout))
/// depend on timing, not on the generator.
///
/// # Which records are written
///
/// | fault | record appended to the log? | what the client sees |
/// | --- | --- | --- |
/// | connection cut ([`cut_after_records`](Self::cut_after_records), [`cut_probability`](Self::cut_probability)) | yes | the connection drops before that record's report; earlier reports arrive (on HTTP/2 every stream of the connection is cut) |
/// | stream reset ([`reset_probability`](Self::reset_probability)) | yes | that record's report and the earlier ones arrive, then on HTTP/2 `RST_STREAM` (`INTERNAL_ERROR`) ends that stream alone; on HTTP/1.1 the connection drops |
/// | GOAWAY ([`goaway_probability`](Self::goaway_probability)) | yes | that record's report and the earlier ones arrive, then the connection sends GOAWAY (HTTP/2) and closes [`GOAWAY_GRACE`](super::GOAWAY_GRACE) later; on HTTP/1.1 it closes after the reports |
/// | injected 429, 42901, 408 and any other code below 500 | no | the in-band error |
/// | injected unknown-outcome code (500-599, or 50000-59999 except 50002) | with probability 0.5 | the in-band error |
/// | stream expired ([`stream_max_records`](Self::stream_max_records), [`stream_lifetime`](Self::stream_lifetime)) | no | in-band 408, then the connection drops |
/// | open failure ([`open_failure_rate`](Self::open_failure_rate)) | no (nothing is read) | the HTTP error instead of 200 |
/// | idle close ([`idle_timeout`](Self::idle_timeout)) | only records reported before | the response ends cleanly |
/// | outage ([`outages`](Self::outages)) | records read before it began, reported or not | open connections drop; new connects are refused until the window ends |
/// | headers held back ([`header_delay`](Self::header_delay)) | yes: records are read and appended while the 200 waits | the 200 and the reports arrive after the delay; through an [`Intermediary`](super::Intermediary) whose upstream timeout is shorter, an HTML 504 although the records are in the log |
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Seeds the generator. Defaults to 0.
    pub seed: u64,
    /// In each stream, once this many records have been appended to the log, the
    /// connection is dropped before the report of the last of them is written: the
    /// `N`-th appended record is in the log, only the reports before it reach the
    /// client, and no later record of the stream is read. Records answered with an
    /// error and not appended do not count. `Some(0)` drops every stream as soon as
    /// it has answered HTTP 200, before reading any record. `None` by default.
    pub cut_after_records: Option<u64>,
    /// The probability, per appended record, that the connection is dropped right
    /// after appending it and before writing its report, as with
    /// [`cut_after_records`](Self::cut_after_records). 0 by default.
    pub cut_probability: f64,
    /// The probability, per record appended, not cut and reported as
    /// delivered, that its stream is reset right after its report: no later record of the stream is read, and the
    /// response fails, on HTTP/2 with `RST_STREAM` (`INTERNAL_ERROR`) on that
    /// stream alone, the connection's other streams going on; on HTTP/1.1,
    /// where nothing smaller than the connection can fail, the connection
    /// drops. As [`Emulator::reset_stream_after_records`](super::Emulator::reset_stream_after_records).
    /// 0 by default.
    pub reset_probability: f64,
    /// The probability, per record reported as delivered and not followed
    /// by a reset, that its connection sends GOAWAY right after its report: no later record of
    /// the stream is read, the connection sends GOAWAY (HTTP/2; new streams
    /// are refused) and closes [`GOAWAY_GRACE`](super::GOAWAY_GRACE) later,
    /// with every stream still open on it. On HTTP/1.1 the connection closes
    /// as well. As [`Emulator::goaway_after_records`](super::Emulator::goaway_after_records).
    /// 0 by default.
    pub goaway_probability: f64,
    /// The probability, per valid record, of answering an injected in-band error
    /// (a code from [`record_error_codes`](Self::record_error_codes) chosen by the
    /// generator) instead of appending it. Codes below 500 (such as 408, 429 and
    /// 42901) never append the record; unknown-outcome codes (500-599, and
    /// 50000-59999 except 50002, such as 500, 50003 and 50302) append it with
    /// probability 0.5, so a client that resends really creates a duplicate. Records
    /// the server rejects anyway (bad JSON fields, bad partitions) are never
    /// picked. 0 by default.
    pub record_error_rate: f64,
    /// The codes [`record_error_rate`](Self::record_error_rate) chooses from, each
    /// equally likely (repeat a code to weight it). Empty (the default) means
    /// `[50003]`.
    pub record_error_codes: Vec<i32>,
    /// A stream expires once it has answered this many records: each further record
    /// is answered with an in-band 408 and not appended, and the connection is
    /// dropped [`stream_close_delay`](Self::stream_close_delay) after the first
    /// 408. If the request body ends first, the response ends normally after the
    /// reports and the connection is dropped when the delay is over. `None` by
    /// default.
    pub stream_max_records: Option<u64>,
    /// A stream expires once it has been open this long, with the same effect as
    /// [`stream_max_records`](Self::stream_max_records). When
    /// [`EmulatorBuilder::with_stream_lifetime`](super::EmulatorBuilder::with_stream_lifetime)
    /// is also set, the shorter one applies. `None` by default.
    pub stream_lifetime: Option<Duration>,
    /// Overrides
    /// [`EmulatorBuilder::with_stream_close_delay`](super::EmulatorBuilder::with_stream_close_delay)
    /// (500 ms unless configured) for expired streams. `None` by default.
    pub stream_close_delay: Option<Duration>,
    /// The probability, per streaming request, of answering
    /// [`open_failure`](Self::open_failure) at once, before reading any of the
    /// body. 0 by default.
    pub open_failure_rate: f64,
    /// The response of a failed open. Defaults to
    /// [`HttpFault::rate_limited(Some(1))`](HttpFault::rate_limited).
    pub open_failure: HttpFault,
    /// Writes reports in pieces of 1 to 7 bytes, each its own HTTP chunk, so that
    /// reports are split across chunks at arbitrary points and chunks hold the end
    /// of one report and the start of the next. Off by default.
    pub report_dribble: bool,
    /// Waits this long before writing each report, like a slow broker. Records are
    /// still appended as they are read; the next body bytes are read once the
    /// delayed reports are written. `None` by default.
    pub report_delay: Option<Duration>,
    /// Closes a stream when no body bytes have arrived for this long: the reports of
    /// the records read so far are written, the response ends normally (a record
    /// that has only partly arrived gets no report and is not appended), and the
    /// connection closes. The real service closes after 30 s, as the emulator
    /// does anyway ([`EmulatorBuilder::with_idle_timeout`](super::EmulatorBuilder::with_idle_timeout));
    /// this applies once the stream has answered HTTP 200, when it is the
    /// shorter of the two. `None` by default.
    pub idle_timeout: Option<Duration>,
    /// Outage windows `(start, end)`, measured from when the plan took effect
    /// (the emulator's start, or [`Emulator::set_faults`](super::Emulator::set_faults)).
    /// From `start` the emulator closes its listening socket, so that new
    /// connection attempts are refused (`ECONNREFUSED`), and drops every open
    /// connection, cutting the streams in flight; at `end` it listens on the
    /// same address again. Unlike the other faults this applies to every
    /// request, the token endpoint and `records:batch` included. Windows may
    /// overlap; a window whose end is not after its start does nothing. See
    /// also [`Emulator::outage`](super::Emulator::outage). Empty by default.
    pub outages: Vec<(Duration, Duration)>,
    /// Holds a stream's HTTP 200 headers (and so its reports) back until this
    /// long after the request reached the server, while still reading the
    /// body and appending its records as they arrive (up to 32 pieces of
    /// body answered before the server waits for the headers to go out).
    /// Errors answered before the stream begins (401, 404, 413, 422...) are
    /// not delayed. Through an [`Intermediary`](super::Intermediary) with a
    /// shorter [`upstream_timeout`](super::Intermediary::with_upstream_timeout),
    /// the client gets an HTML 504 for a request whose records were
    /// appended. A delay too long to represent holds the headers for good.
    /// `None` by default.
    pub header_delay: Option<Duration>,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            seed: 0,
            cut_after_records: None,
            cut_probability: 0.0,
            reset_probability: 0.0,
            goaway_probability: 0.0,
            record_error_rate: 0.0,
            record_error_codes: Vec::new(),
            stream_max_records: None,
            stream_lifetime: None,
            stream_close_delay: None,
            open_failure_rate: 0.0,
            open_failure: HttpFault::rate_limited(Some(1)),
            report_dribble: false,
            report_delay: None,
            idle_timeout: None,
            outages: Vec::new(),
            header_delay: None,
        }
    }
}

impl FaultPlan {
    /// A plan without faults that uses the given seed.
    pub fn new(seed: u64) -> Self {
        FaultPlan {
            seed,
            ..FaultPlan::default()
        }
    }

    /// The plan with these [`outages`](Self::outages) in place of its own.
    pub fn with_outages(mut self, windows: Vec<(Duration, Duration)>) -> Self {
        self.outages = windows;
        self
    }

    /// Adds `count` outage windows of `length` each, the first starting at
    /// `first` and the next every `every` after it.
    pub fn with_periodic_outages(
        mut self,
        first: Duration,
        every: Duration,
        length: Duration,
        count: u32,
    ) -> Self {
        self.outages.extend((0..count).map(|i| {
            let start = first + every * i;
            (start, start + length)
        }));
        self
    }

    /// Picks the code of an injected record error.
    pub(crate) fn error_code(&self, rng: &mut Rng) -> i32 {
        match self.record_error_codes.len() {
            0 => 50003,
            n => self.record_error_codes[rng.below(n as u64) as usize],
        }
    }
}

/// Whether a record answered with this code may still have been written.
pub(crate) fn unknown_outcome(code: i32) -> bool {
    (500..600).contains(&code) || ((50000..60000).contains(&code) && code != 50002)
}

/// The message sent with an injected record error.
pub(crate) fn error_message(code: i32) -> &'static str {
    match code {
        408 => "Request Timeout",
        429 => "Too Many Requests: the request rate limit was exceeded",
        42901 => "Too Many Requests: the produce quota was exceeded, the request was throttled",
        500 => "Internal Server Error",
        50003 => "Retriable Kafka error: the record may or may not have been written",
        50302 => "Broker not available",
        c if unknown_outcome(c) => "Server error: the record may or may not have been written",
        _ => "Injected error",
    }
}

/// How often each kind of fault has been applied. Read it with
/// [`Emulator::fault_stats`](super::Emulator::fault_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultStats {
    /// Connections dropped on purpose: by [`FaultPlan::cut_after_records`],
    /// [`FaultPlan::cut_probability`] and
    /// [`Emulator::cut_connection_after_records`](super::Emulator::cut_connection_after_records).
    /// Drops that end an expired stream are not counted here.
    pub cuts: u64,
    /// Streams reset on purpose: by [`FaultPlan::reset_probability`] and
    /// [`Emulator::reset_stream_after_records`](super::Emulator::reset_stream_after_records)
    /// (on HTTP/1.1, where the connection drops instead, too).
    pub stream_resets: u64,
    /// Connections sent GOAWAY (or, on HTTP/1.1, closed) on purpose: by
    /// [`FaultPlan::goaway_probability`] and
    /// [`Emulator::goaway_after_records`](super::Emulator::goaway_after_records).
    pub goaways: u64,
    /// In-band error reports written because of an injected fault:
    /// [`FaultPlan::record_error_rate`] and
    /// [`Emulator::fail_next_records`](super::Emulator::fail_next_records) (also
    /// in `records:batch`). Not counting 408s for expired streams.
    pub injected_record_errors: u64,
    /// Of [`injected_record_errors`](Self::injected_record_errors), the records that
    /// were appended to the log although their report is an unknown-outcome error.
    pub unknown_outcome_appended: u64,
    /// Records answered with an in-band 408 because their stream had expired.
    pub expired_408: u64,
    /// Requests answered with an HTTP error by [`FaultPlan::open_failure_rate`] or
    /// [`Emulator::fail_next_requests`](super::Emulator::fail_next_requests).
    pub open_failures: u64,
    /// Streams closed by [`FaultPlan::idle_timeout`] (not those closed by the
    /// configured [`EmulatorBuilder::with_idle_timeout`](super::EmulatorBuilder::with_idle_timeout)).
    pub idle_closes: u64,
    /// Outages begun ([`FaultPlan::outages`] and
    /// [`Emulator::outage`](super::Emulator::outage)); overlapping windows
    /// count once.
    pub outages: u64,
    /// Connections open when an outage began, all of them dropped.
    pub outage_dropped_connections: u64,
}

/// The live counters behind [`FaultStats`].
#[derive(Default)]
pub(crate) struct Stats {
    pub cuts: AtomicU64,
    pub stream_resets: AtomicU64,
    pub goaways: AtomicU64,
    pub injected_record_errors: AtomicU64,
    pub unknown_outcome_appended: AtomicU64,
    pub expired_408: AtomicU64,
    pub open_failures: AtomicU64,
    pub idle_closes: AtomicU64,
    pub outages: AtomicU64,
    pub outage_dropped_connections: AtomicU64,
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn counters(&self) -> [&AtomicU64; 10] {
        [
            &self.cuts,
            &self.stream_resets,
            &self.goaways,
            &self.injected_record_errors,
            &self.unknown_outcome_appended,
            &self.expired_408,
            &self.open_failures,
            &self.idle_closes,
            &self.outages,
            &self.outage_dropped_connections,
        ]
    }

    pub fn snapshot(&self) -> FaultStats {
        let [
            cuts,
            stream_resets,
            goaways,
            errors,
            unknown,
            expired,
            open,
            idle,
            outages,
            dropped,
        ] = self.counters().map(|c| c.load(Ordering::Relaxed));
        FaultStats {
            cuts,
            stream_resets,
            goaways,
            injected_record_errors: errors,
            unknown_outcome_appended: unknown,
            expired_408: expired,
            open_failures: open,
            idle_closes: idle,
            outages,
            outage_dropped_connections: dropped,
        }
    }

    pub fn reset(&self) {
        for counter in self.counters() {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// SplitMix64: a tiny, fast generator with good statistical quality for tests.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Independent generators of one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lane {
    /// Fault decisions.
    Faults,
    /// How reports are cut into pieces.
    Shape,
}

impl Rng {
    /// The generator of a lane of the `index`-th stream under `seed`. Seeds are
    /// hashed so that different streams do not share overlapping sequences.
    pub fn for_stream(seed: u64, index: u64, lane: Lane) -> Rng {
        let lane = match lane {
            Lane::Faults => 0x5eed_fa17,
            Lane::Shape => 0x5eed_5a9e,
        };
        Rng(mix(seed ^ mix(index.wrapping_add(lane))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// A uniform number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`. Draws nothing when `p` is not positive.
    pub fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

/// An injected in-band record error.
#[derive(Debug, Clone)]
pub(crate) struct RecordFault {
    pub code: i32,
    pub message: String,
}

/// Pending one-shot faults, the fault plan and the counters. The `armed` flags let
/// the hot path skip locking when nothing is queued.
#[derive(Default)]
pub(crate) struct Faults {
    http: Mutex<VecDeque<HttpFault>>,
    http_armed: AtomicBool,
    records: Mutex<VecDeque<RecordFault>>,
    records_armed: AtomicBool,
    cut: Mutex<Option<usize>>,
    reset: Mutex<Option<usize>>,
    goaway: Mutex<Option<usize>>,
    /// The plan and the number of streams started under it.
    plan: Mutex<(Arc<FaultPlan>, u64)>,
    outages: Mutex<Outages>,
    /// Wakes the accept loop when the outage windows change.
    pub outages_changed: Notify,
    pub stats: Stats,
}

/// Outage windows in absolute time: the plan's, placed when it was set, and
/// those begun with `Emulator::outage`.
#[derive(Default)]
struct Outages {
    plan: Vec<(Instant, Instant)>,
    manual: Vec<(Instant, Instant)>,
}

impl Outages {
    fn windows(&self) -> impl Iterator<Item = &(Instant, Instant)> {
        self.plan.iter().chain(&self.manual)
    }

    /// Forgets windows that are over.
    fn prune(&mut self, now: Instant) {
        self.plan.retain(|&(_, end)| end > now);
        self.manual.retain(|&(_, end)| end > now);
    }
}

impl Faults {
    pub fn with_plan(plan: FaultPlan) -> Faults {
        let faults = Faults::default();
        faults.set_plan(plan);
        faults
    }

    /// Replaces the plan and restarts the stream numbering. The plan's outage
    /// windows count from now.
    pub fn set_plan(&self, plan: FaultPlan) {
        let now = Instant::now();
        let windows = plan
            .outages
            .iter()
            .filter(|(start, end)| end > start)
            .filter_map(|&(start, end)| Some((now.checked_add(start)?, now.checked_add(end)?)))
            .collect();
        *lock(&self.plan) = (Arc::new(plan), 0);
        lock(&self.outages).plan = windows;
        self.outages_changed.notify_one();
    }

    /// Adds an outage window from now to `now + length`.
    pub fn begin_outage(&self, length: Duration) {
        let now = Instant::now();
        if let Some(end) = now.checked_add(length) {
            lock(&self.outages).manual.push((now, end));
            self.outages_changed.notify_one();
        }
    }

    /// When the outage under way at `now` ends (through every window that
    /// overlaps it), or `None` when there is none.
    pub fn outage_until(&self, now: Instant) -> Option<Instant> {
        let mut outages = lock(&self.outages);
        outages.prune(now);
        let mut until: Option<Instant> = None;
        // Each pass can only extend the end; one pass per window is enough.
        for _ in 0..=outages.plan.len() + outages.manual.len() {
            let at = until.unwrap_or(now);
            let extended = outages
                .windows()
                .filter(|&&(start, end)| start <= at && end > at)
                .map(|&(_, end)| end)
                .max();
            match extended {
                Some(end) if until.is_none_or(|u| end > u) => until = Some(end),
                _ => break,
            }
        }
        until
    }

    /// When the next outage begins after `now`.
    pub fn next_outage(&self, now: Instant) -> Option<Instant> {
        lock(&self.outages)
            .windows()
            .map(|&(start, _)| start)
            .filter(|&start| start > now)
            .min()
    }

    /// The plan for a new streaming request and that request's number.
    pub fn start_stream(&self) -> (Arc<FaultPlan>, u64) {
        let mut guard = lock(&self.plan);
        let index = guard.1;
        guard.1 += 1;
        (Arc::clone(&guard.0), index)
    }

    pub fn push_http(&self, fault: HttpFault, count: usize) {
        if count == 0 {
            return;
        }
        let mut q = lock(&self.http);
        q.extend(std::iter::repeat_n(fault, count));
        self.http_armed.store(true, Ordering::Release);
    }

    pub fn take_http(&self) -> Option<HttpFault> {
        if !self.http_armed.load(Ordering::Acquire) {
            return None;
        }
        let mut q = lock(&self.http);
        let fault = q.pop_front();
        if q.is_empty() {
            self.http_armed.store(false, Ordering::Release);
        }
        if fault.is_some() {
            Stats::bump(&self.stats.open_failures);
        }
        fault
    }

    pub fn push_records(&self, code: i32, message: String, count: usize) {
        if count == 0 {
            return;
        }
        let mut q = lock(&self.records);
        q.extend(std::iter::repeat_n(RecordFault { code, message }, count));
        self.records_armed.store(true, Ordering::Release);
    }

    pub fn take_record(&self) -> Option<RecordFault> {
        if !self.records_armed.load(Ordering::Acquire) {
            return None;
        }
        let mut q = lock(&self.records);
        let fault = q.pop_front();
        if q.is_empty() {
            self.records_armed.store(false, Ordering::Release);
        }
        if fault.is_some() {
            Stats::bump(&self.stats.injected_record_errors);
        }
        fault
    }

    pub fn set_cut(&self, reports: usize) {
        *lock(&self.cut) = Some(reports);
    }

    pub fn take_cut(&self) -> Option<usize> {
        lock(&self.cut).take()
    }

    pub fn set_reset(&self, reports: usize) {
        *lock(&self.reset) = Some(reports);
    }

    pub fn take_reset(&self) -> Option<usize> {
        lock(&self.reset).take()
    }

    pub fn set_goaway(&self, reports: usize) {
        *lock(&self.goaway) = Some(reports);
    }

    pub fn take_goaway(&self) -> Option<usize> {
        lock(&self.goaway).take()
    }

    /// Removes the one-shot faults, the plan and every outage (the counters
    /// are kept).
    pub fn clear(&self) {
        lock(&self.http).clear();
        self.http_armed.store(false, Ordering::Release);
        lock(&self.records).clear();
        self.records_armed.store(false, Ordering::Release);
        *lock(&self.cut) = None;
        *lock(&self.reset) = None;
        *lock(&self.goaway) = None;
        lock(&self.outages).manual.clear();
        self.set_plan(FaultPlan::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_reproducible_and_streams_differ() {
        let draw = |index| {
            let mut rng = Rng::for_stream(42, index, Lane::Faults);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(0), draw(0));
        assert_ne!(draw(0), draw(1));
        assert_ne!(draw(0)[1..], draw(1)[..7]);
        let mut a = Rng::for_stream(42, 0, Lane::Faults);
        let mut b = Rng::for_stream(42, 0, Lane::Shape);
        assert_ne!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn chance_and_below() {
        let mut rng = Rng::for_stream(1, 0, Lane::Faults);
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| rng.below(7) < 7));
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            counts[rng.below(3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        let before = rng.clone().next_u64();
        assert!(!rng.chance(0.0));
        assert_eq!(rng.next_u64(), before, "a zero probability draws nothing");
        assert!(rng.chance(1.0));
    }

    #[test]
    fn outcome_classes() {
        for code in [500, 503, 50003, 50302] {
            assert!(unknown_outcome(code), "{code}");
        }
        for code in [400, 408, 429, 42901, 40402, 50002] {
            assert!(!unknown_outcome(code), "{code}");
        }
    }
}
