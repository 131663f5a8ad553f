//! Injected faults: HTTP errors, in-band record errors and dropped connections.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::state::lock;

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

/// An injected in-band record error.
#[derive(Debug, Clone)]
pub(crate) struct RecordFault {
    pub code: i32,
    pub message: String,
}

/// Pending faults. The `armed` flags let the hot path skip locking when nothing
/// is queued.
#[derive(Default)]
pub(crate) struct Faults {
    http: Mutex<VecDeque<HttpFault>>,
    http_armed: AtomicBool,
    records: Mutex<VecDeque<RecordFault>>,
    records_armed: AtomicBool,
    cut: Mutex<Option<usize>>,
}

impl Faults {
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
        fault
    }

    pub fn set_cut(&self, reports: usize) {
        *lock(&self.cut) = Some(reports);
    }

    pub fn take_cut(&self) -> Option<usize> {
        lock(&self.cut).take()
    }

    pub fn clear(&self) {
        lock(&self.http).clear();
        self.http_armed.store(false, Ordering::Release);
        lock(&self.records).clear();
        self.records_armed.store(false, Ordering::Release);
        *lock(&self.cut) = None;
    }
}
