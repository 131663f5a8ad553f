//! HTTP intermediaries played in front of the produce endpoints: a reverse
//! proxy that reads the whole request body first, one that holds the reports
//! back until the request body has ended, a body size cap and an upstream
//! read timeout.
//!
//! The emulator plays them in process: the request body is read whole (or
//! passed on piece by piece, noting when it ends) before the server's handler
//! gets it, and the handler's response is passed on (or held) frame by frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::header::{TE, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::body::{BodyReader, Piece, Read, Source};
use super::limits::duration_problem;
use super::response::ResponseBody;
use super::server::{self, Connection};
use super::state::Shared;
use super::sync::lock;

/// What an [`Intermediary`] does with a request body and its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntermediaryMode {
    /// Passes the request body and the response through as they come
    /// (nginx with `proxy_request_buffering off; proxy_http_version 1.1;`,
    /// forward proxies, most API gateways).
    Streaming,
    /// Reads the whole request body before passing the request on, then
    /// hands the server the complete body with a `Content-Length` (nginx and
    /// ingress-nginx with default settings).
    Buffering,
    /// Passes the request body through and the server's response headers at
    /// once, but holds every response byte until the request body has ended
    /// (some HTTP-mode load balancers).
    HoldingReports,
}

/// An HTTP intermediary (reverse proxy, ingress, gateway) that the emulator
/// plays between its clients and its produce endpoints.
///
/// Set one with
/// [`EmulatorBuilder::with_intermediary`](crate::EmulatorBuilder::with_intermediary)
/// or, while running, [`Emulator::set_intermediary`](crate::Emulator::set_intermediary).
/// It applies to `POST .../records` and `.../records:batch` under both path
/// prefixes, not to the token endpoint or the `/emulator/...` endpoints.
/// Without one (the default), requests reach the server directly.
///
/// ```
/// use std::time::Duration;
/// use ccloud_kafka_rest_emulator::Intermediary;
///
/// // nginx with its defaults: buffered bodies up to 1 MiB, 60 s upstream timeout.
/// let nginx = Intermediary::buffering()
///     .with_body_cap(1024 * 1024)
///     .with_upstream_timeout(Duration::from_secs(60));
/// assert_eq!(nginx, Intermediary::nginx_defaults());
/// // A gateway that passes streams through but times out quiet ones.
/// let gateway = Intermediary::streaming().with_upstream_timeout(Duration::from_secs(30));
/// # drop(gateway);
/// ```
///
/// Errors the intermediary answers itself (413, 504, and 408 or 400 for a
/// body that stops arriving or breaks while it is read whole) have an HTML
/// body (`text/html`) without a Confluent `error_code`, and close the
/// connection once written; the rest of the request body is read and
/// discarded meanwhile, for up to 30 s, so that the client gets to read the
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intermediary {
    mode: IntermediaryMode,
    body_cap: Option<u64>,
    upstream_timeout: Option<Duration>,
}

impl Default for Intermediary {
    /// [`Intermediary::streaming`].
    fn default() -> Self {
        Intermediary::streaming()
    }
}

/// The longest the reports a [`IntermediaryMode::HoldingReports`]
/// intermediary holds may grow (8 MiB): beyond it, it stops reading the
/// server's response, as a proxy with full buffers does.
pub const MAX_HELD_REPORT_BYTES: usize = 8 * 1024 * 1024;

/// How long a response refused by the intermediary waits for the rest of
/// the request body, in all.
const LINGER_TIME: Duration = Duration::from_secs(30);
/// How long it waits for each next piece of that body.
const LINGER_QUIET: Duration = Duration::from_secs(5);
/// Pieces of request body passed on before the intermediary waits for the
/// server to read them.
const RELAY_PIECES: usize = 8;
/// Response chunks passed on before the intermediary waits for the client.
const PASSED_CHUNKS: usize = 32;

impl Intermediary {
    /// Passes everything through as it comes, as if there were none, until
    /// a [`body_cap`](Self::with_body_cap) or an
    /// [`upstream_timeout`](Self::with_upstream_timeout) is set.
    pub fn streaming() -> Self {
        Intermediary {
            mode: IntermediaryMode::Streaming,
            body_cap: None,
            upstream_timeout: None,
        }
    }

    /// Like nginx with default settings (`proxy_request_buffering on`): reads
    /// the whole request body before the server sees any of the request,
    /// then hands the server the complete body with a `Content-Length` in
    /// place of chunked framing. A client gets no response headers (and no
    /// report) until its body has ended.
    ///
    /// Without a [`body_cap`](Self::with_body_cap) it holds the whole body
    /// in memory, however large (nginx spools it to disk); with one it holds
    /// at most the cap.
    pub fn buffering() -> Self {
        Intermediary {
            mode: IntermediaryMode::Buffering,
            ..Intermediary::streaming()
        }
    }

    /// Like a proxy that passes the server's response headers (the 200) on
    /// at once but holds every response byte (the reports) until the request
    /// body has ended, then passes them all on, and the later ones as they
    /// come. A response the server ends before the request body has ended is
    /// passed on when it ends. It holds at most [`MAX_HELD_REPORT_BYTES`];
    /// beyond that it stops reading the server, which in turn stops reading
    /// the body.
    pub fn holding_reports() -> Self {
        Intermediary {
            mode: IntermediaryMode::HoldingReports,
            ..Intermediary::streaming()
        }
    }

    /// nginx's defaults: [`buffering`](Self::buffering) with a 1 MiB
    /// [`body_cap`](Self::with_body_cap) (`client_max_body_size 1m`) and a
    /// 60 s [`upstream_timeout`](Self::with_upstream_timeout)
    /// (`proxy_read_timeout 60s`).
    pub fn nginx_defaults() -> Self {
        Intermediary::buffering()
            .with_body_cap(1024 * 1024)
            .with_upstream_timeout(Duration::from_secs(60))
    }

    /// Caps the request body, like nginx's `client_max_body_size`: a body
    /// announced larger (`Content-Length`) is answered HTTP 413 with an HTML
    /// page at once, and, when [`buffering`](Self::buffering), so is one
    /// counted past the cap while it is read (chunked); nothing of such a
    /// request reaches the server, so no record of it is appended. In the
    /// other modes a chunked body is not counted: only an announced length is
    /// checked. [`EmulatorBuilder::start`](crate::EmulatorBuilder::start) and
    /// [`Emulator::set_intermediary`](crate::Emulator::set_intermediary)
    /// refuse 0.
    pub fn with_body_cap(mut self, bytes: u64) -> Self {
        self.body_cap = Some(bytes);
        self
    }

    /// Gives up on a server that sends nothing for this long, like nginx's
    /// `proxy_read_timeout` (60 s by default). The wait starts when the
    /// request is passed on (when a buffering intermediary has read the
    /// whole body) and again after every response byte. If no response
    /// headers were passed on yet, the client gets HTTP 504 with an HTML page
    /// (records the server appended meanwhile stay in the log, and no more of
    /// the body reaches the server); otherwise the connection is cut.
    /// [`EmulatorBuilder::start`](crate::EmulatorBuilder::start) and
    /// [`Emulator::set_intermediary`](crate::Emulator::set_intermediary)
    /// refuse zero and durations past
    /// [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION).
    pub fn with_upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = Some(timeout);
        self
    }

    /// What the intermediary does with bodies.
    pub fn mode(&self) -> IntermediaryMode {
        self.mode
    }

    /// The request body cap, if any.
    pub fn body_cap(&self) -> Option<u64> {
        self.body_cap
    }

    /// The upstream read timeout, if any.
    pub fn upstream_timeout(&self) -> Option<Duration> {
        self.upstream_timeout
    }

    /// Whether it passes everything through untouched.
    fn transparent(&self) -> bool {
        self.mode == IntermediaryMode::Streaming
            && self.body_cap.is_none()
            && self.upstream_timeout.is_none()
    }

    /// Why a setting cannot work, naming its setter; `None` when all can.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.body_cap == Some(0) {
            return Some(
                "Intermediary::with_body_cap(0) is out of range: it must be at least 1".to_owned(),
            );
        }
        self.upstream_timeout.and_then(|timeout| {
            duration_problem("Intermediary::with_upstream_timeout", timeout, false)
        })
    }
}

/// The intermediary in use, if any. Reading it costs one atomic load when
/// there is none.
#[derive(Default)]
pub(crate) struct IntermediarySetting {
    armed: AtomicBool,
    current: Mutex<Option<Arc<Intermediary>>>,
}

impl IntermediarySetting {
    /// Replaces the intermediary (`None` or a transparent one: none).
    pub fn set(&self, intermediary: Option<Intermediary>) {
        let intermediary = intermediary.filter(|i| !i.transparent());
        let mut current = lock(&self.current);
        self.armed.store(intermediary.is_some(), Ordering::Release);
        *current = intermediary.map(Arc::new);
    }

    /// The intermediary for a request starting now.
    pub fn current(&self) -> Option<Arc<Intermediary>> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.current).clone()
    }
}

/// An HTML error page as nginx writes it, closing the connection.
fn page(status: StatusCode) -> Response<ResponseBody> {
    let reason = match status.as_u16() {
        408 => "Request Time-out",
        413 => "Request Entity Too Large",
        504 => "Gateway Time-out",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let line = format!("{} {reason}", status.as_u16());
    let body = format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n\
         <center><h1>{line}</h1></center>\r\n<hr><center>intermediary</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body length a request announces.
fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Reads and discards the rest of a refused request body (within bounds),
/// so that the client is not reset before it has read the answer.
async fn linger(mut source: Source, idle: Duration) {
    let quiet = idle.min(LINGER_QUIET);
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Ok(Some(Ok(_))) = tokio::time::timeout(quiet, source.frame()).await {}
    })
    .await;
}

/// Handles a produce request through `intermediary`.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    intermediary: Arc<Intermediary>,
    connection: Connection,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let idle = shared.limits.idle_timeout;
    let (mut parts, incoming) = req.into_parts();
    if let Some(cap) = intermediary.body_cap
        && announced_length(&parts.headers).is_some_and(|length| length > cap)
    {
        tracing::debug!(cap, "intermediary: body announced over its cap; 413");
        tokio::spawn(linger(Source::Wire(incoming), idle));
        return page(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let Connection {
        kill: client_kill,
        activity,
    } = connection;
    let holding = intermediary.mode == IntermediaryMode::HoldingReports;
    let pumped = holding || intermediary.upstream_timeout.is_some();
    let (source, ended, relay_cut) = match intermediary.mode {
        IntermediaryMode::Buffering => {
            let mut reader = BodyReader::new(
                Source::Wire(incoming),
                Arc::clone(&activity),
                idle,
                intermediary.body_cap,
            );
            let mut whole = BytesMut::new();
            loop {
                match reader.next().await {
                    Read::Data(data) => whole.extend_from_slice(&data),
                    Read::End => break,
                    Read::TooLarge => {
                        tracing::debug!(
                            cap = intermediary.body_cap,
                            "intermediary: body over its cap; 413"
                        );
                        tokio::spawn(linger(reader.into_source(), idle));
                        return page(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    Read::Idle => {
                        tracing::debug!("intermediary: body stopped arriving; 408");
                        return page(StatusCode::REQUEST_TIMEOUT);
                    }
                    Read::Failed(error) => {
                        tracing::debug!(%error, "intermediary: body failed; 400");
                        return page(StatusCode::BAD_REQUEST);
                    }
                }
            }
            let whole = whole.freeze();
            parts.headers.remove(TRANSFER_ENCODING);
            parts.headers.remove(TE);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(whole.len()));
            (Source::Whole(Some(whole)), None, None)
        }
        _ if !pumped => (Source::Wire(incoming), None, None),
        _ => {
            let (tx, rx) = mpsc::channel(RELAY_PIECES);
            let (ended_tx, ended_rx) = watch::channel(false);
            let cut = Arc::new(Notify::new());
            tokio::spawn(relay(incoming, tx, ended_tx, Arc::clone(&cut), idle));
            (Source::Relayed(rx), Some(ended_rx), Some(cut))
        }
    };
    let req = Request::from_parts(parts, source);
    if !pumped {
        let connection = Connection {
            kill: client_kill,
            activity,
        };
        return server::produce(shared, connection, req).await;
    }
    let server_kill = Arc::new(Notify::new());
    let connection = Connection {
        kill: Arc::clone(&server_kill),
        activity,
    };
    let server = server::produce(shared, connection, req);
    let response = match intermediary.upstream_timeout {
        None => server.await,
        Some(timeout) => match tokio::time::timeout(timeout, server).await {
            Ok(response) => response,
            Err(_) => {
                tracing::debug!(?timeout, "intermediary: no response headers in time; 504");
                // Dropping the handler closes the server's side; no more of
                // the body reaches it.
                if let Some(cut) = relay_cut {
                    cut.notify_one();
                }
                return page(StatusCode::GATEWAY_TIMEOUT);
            }
        },
    };
    let (head, body) = response.into_parts();
    if matches!(body, ResponseBody::Full(_)) {
        // A complete response: nothing left to wait for or hold.
        return Response::from_parts(head, body);
    }
    let (tx, rx) = mpsc::channel(PASSED_CHUNKS);
    let pump = Pump {
        server: body,
        tx,
        ended: if holding { ended } else { None },
        timeout: intermediary.upstream_timeout,
        server_kill,
        client_kill,
    };
    tokio::spawn(pump.run());
    Response::from_parts(head, ResponseBody::Stream(rx))
}

/// Passes the client's request body on to the server piece by piece, noting
/// when it ends; once cut (or once the server stops reading), discards the
/// rest.
async fn relay(
    mut incoming: Incoming,
    tx: mpsc::Sender<Piece>,
    ended: watch::Sender<bool>,
    cut: Arc<Notify>,
    idle: Duration,
) {
    loop {
        let frame = tokio::select! {
            biased;
            () = cut.notified() => break,
            () = tx.closed() => break,
            frame = incoming.frame() => frame,
        };
        match frame {
            None => {
                ended.send_replace(true);
                tokio::select! {
                    biased;
                    () = cut.notified() => {}
                    _ = tx.send(Piece::End) => {}
                }
                return;
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "intermediary: request body failed");
                // Closing the relay without its end: the server sees a
                // failed body.
                ended.send_replace(true);
                return;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                let sent = tokio::select! {
                    biased;
                    () = cut.notified() => false,
                    sent = tx.send(Piece::Data(data)) => sent.is_ok(),
                };
                if !sent {
                    break;
                }
            }
        }
    }
    drop(tx);
    linger(Source::Wire(incoming), idle).await;
}

/// Passes the server's response on to the client: held until the request
/// body has ended when holding, and given up on when the server is quiet
/// for the upstream timeout.
struct Pump {
    server: ResponseBody,
    tx: mpsc::Sender<Bytes>,
    /// When holding: whether the request body has ended.
    ended: Option<watch::Receiver<bool>>,
    timeout: Option<Duration>,
    /// The server asks for its connection to be dropped.
    server_kill: Arc<Notify>,
    /// Drops the client's connection.
    client_kill: Arc<Notify>,
}

/// What the pump waited for.
enum Event {
    Frame(Option<Bytes>),
    End,
    Released,
    Killed,
    TimedOut,
}

/// Waits until the request body has ended (or cannot be known to).
async fn body_ended(ended: &mut Option<watch::Receiver<bool>>) {
    if let Some(ended) = ended {
        let _ = ended.wait_for(|&ended| ended).await;
    }
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Pump {
    async fn run(self) {
        let Pump {
            mut server,
            tx,
            mut ended,
            timeout,
            server_kill,
            client_kill,
        } = self;
        let deadline_from_now = || timeout.and_then(|d| Instant::now().checked_add(d));
        let mut released = ended.as_ref().is_none_or(|e| *e.borrow());
        let mut held = BytesMut::new();
        let mut deadline = deadline_from_now();
        loop {
            let room = released || held.len() < MAX_HELD_REPORT_BYTES;
            let event = tokio::select! {
                biased;
                () = server_kill.notified() => Event::Killed,
                () = body_ended(&mut ended), if !released => Event::Released,
                frame = server.frame(), if room => match frame {
                    None => Event::End,
                    Some(Ok(frame)) => Event::Frame(frame.into_data().ok()),
                },
                () = until(deadline), if room => Event::TimedOut,
            };
            match event {
                Event::Frame(data) => {
                    if let Some(data) = data.filter(|d| !d.is_empty()) {
                        if released {
                            if tx.send(data).await.is_err() {
                                return;
                            }
                        } else {
                            held.extend_from_slice(&data);
                        }
                    }
                    deadline = deadline_from_now();
                }
                Event::Released => {
                    released = true;
                    if !held.is_empty() && tx.send(held.split().freeze()).await.is_err() {
                        return;
                    }
                    deadline = deadline_from_now();
                }
                Event::End => {
                    if !held.is_empty() {
                        let _ = tx.send(held.split().freeze()).await;
                    }
                    return;
                }
                Event::Killed => {
                    // The server dropped its connection: what it sent goes
                    // on, then the client's connection drops too.
                    if !held.is_empty() && tx.send(held.split().freeze()).await.is_err() {
                        return;
                    }
                    let give_up = Instant::now() + Duration::from_secs(2);
                    while tx.capacity() < tx.max_capacity() && Instant::now() < give_up {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    client_kill.notify_one();
                    tx.closed().await;
                    return;
                }
                Event::TimedOut => {
                    tracing::debug!(?timeout, "intermediary: the server went quiet; cutting");
                    client_kill.notify_one();
                    // Ending the response instead would let it finish cleanly.
                    tx.closed().await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_setter() {
        assert_eq!(Intermediary::buffering().problem(), None);
        let zero = Intermediary::buffering()
            .with_body_cap(0)
            .problem()
            .unwrap();
        assert!(zero.contains("with_body_cap"), "{zero}");
        let zero = Intermediary::streaming()
            .with_upstream_timeout(Duration::ZERO)
            .problem()
            .unwrap();
        assert!(zero.contains("with_upstream_timeout"), "{zero}");
        let long = Intermediary::streaming()
            .with_upstream_timeout(crate::MAX_CONFIGURED_DURATION + Duration::from_secs(1))
            .problem()
            .unwrap();
        assert!(long.contains("MAX_CONFIGURED_DURATION"), "{long}");
    }

    #[test]
    fn transparent_ones_are_not_kept() {
        let setting = IntermediarySetting::default();
        setting.set(Some(Intermediary::streaming()));
        assert!(setting.current().is_none());
        setting.set(Some(Intermediary::holding_reports()));
        assert_eq!(
            setting.current().map(|i| i.mode()),
            Some(IntermediaryMode::HoldingReports)
        );
        setting.set(None);
        assert!(setting.current().is_none());
    }

    #[test]
    fn pages_are_html() {
        let response = page(StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.status(), 504);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html");
        let ResponseBody::Full(Some(body)) = response.body() else {
            panic!("a complete body");
        };
        let body = std::str::from_utf8(body).unwrap();
        assert!(body.contains("504 Gateway Time-out"), "{body}");
        assert!(!body.contains("error_code"), "{body}");
    }
}
