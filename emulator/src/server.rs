//! The accept loop, per-connection tasks, routing and HTTP-level errors.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, Watched};
use super::body::{BodyReader, Source};
use super::faults::HttpFault;
use super::path::percent_decode;
use super::response::{
    Charset, ResponseBody, error_response, method_not_allowed, payload_too_large,
};
use super::state::Shared;
use super::{batch, inspect, intermediary, oauth, stream, tls};

/// How long in-flight requests may run on after shutdown before their connections
/// are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

fn fault_response(fault: &HttpFault) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(
        fault.body().to_owned(),
    ))));
    *response.status_mut() =
        StatusCode::from_u16(fault.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = HeaderValue::from_str(fault.content_type()) {
        response.headers_mut().insert(CONTENT_TYPE, ct);
    }
    if let Some(seconds) = fault.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Whether the emulator is listening, and how many outages have begun.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Listening {
    pub up: bool,
    pub outages: u64,
}

/// How long to wait before trying again when the address cannot be bound
/// again after an outage.
const REBIND_RETRY: Duration = Duration::from_millis(10);

/// Binds a listener with `SO_REUSEADDR`, so that the address can be bound
/// again at once after an outage even though the connections it dropped
/// linger in `TIME_WAIT`.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The next connection, or never without a listener.
async fn accept(listener: &Option<TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One of the [`max_connections`](super::EmulatorBuilder::with_max_connections)
/// connections, held by its task: given back when the task ends or is aborted.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot, unless `max` are taken.
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        Some(Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections until shutdown is signalled (or the sender is dropped).
/// During an outage it holds no listener, so connects to `addr` are refused,
/// and it binds `addr` again when the outage is over.
pub(crate) async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
    listening: watch::Sender<Listening>,
) {
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let now = Instant::now();
        let wake = match shared.faults.outage_until(now) {
            Some(end) => {
                if listener.take().is_some() {
                    let open = connections.len() as u64;
                    tracing::debug!(%addr, connections = open, "outage: listener closed, dropping connections");
                    // Aborting a connection's task drops its socket: the
                    // peer sees the connection close mid-stream.
                    connections.abort_all();
                    let stats = &shared.faults.stats;
                    stats.outages.fetch_add(1, Ordering::Relaxed);
                    stats
                        .outage_dropped_connections
                        .fetch_add(open, Ordering::Relaxed);
                    listening.send_modify(|l| {
                        l.up = false;
                        l.outages += 1;
                    });
                }
                Some(end)
            }
            None if listener.is_none() => match bind(addr) {
                Ok(bound) => {
                    tracing::debug!(%addr, "outage over: listening again");
                    listener = Some(bound);
                    listening.send_modify(|l| l.up = true);
                    shared.faults.next_outage(now)
                }
                Err(error) => {
                    tracing::warn!(%addr, %error, "cannot listen again after an outage; retrying");
                    Some(now + REBIND_RETRY)
                }
            },
            None => shared.faults.next_outage(now),
        };
        tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok((socket, peer)) => {
                    let Some(slot) = Slot::take(&open, shared.limits.max_connections) else {
                        // Closed at once: the connections served go on undisturbed.
                        tracing::debug!(%peer, max = shared.limits.max_connections, "too many connections: refused");
                        drop(socket);
                        continue;
                    };
                    tracing::trace!(%peer, "connection accepted");
                    let _ = socket.set_nodelay(true);
                    let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
                    match tls.clone() {
                        None => connections.spawn(async move {
                            let _slot = slot;
                            connection(socket, shared, shutdown).await;
                        }),
                        Some(acceptor) => connections.spawn(async move {
                            let _slot = slot;
                            if let Some(stream) = tls::accept(&acceptor, socket).await {
                                connection(stream, shared, shutdown).await;
                            }
                        }),
                    };
                }
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = until(wake) => {}
            () = shared.faults.outages_changed.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    listening.send_modify(|l| l.up = false);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    tracing::debug!("emulator stopped");
}

/// Serves one connection. It ends when the client closes it, when a stream asks
/// for it to be dropped, or after a graceful shutdown.
async fn connection<S>(socket: S, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let activity = Activity::new();
    let idle = shared.limits.idle_timeout;
    let service = {
        let (kill, activity) = (Arc::clone(&kill), Arc::clone(&activity));
        service_fn(move |req| {
            let connection = Connection {
                kill: Arc::clone(&kill),
                activity: Arc::clone(&activity),
            };
            handle(Arc::clone(&shared), connection, req)
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(
            TokioIo::new(Watched::new(socket, Arc::clone(&activity))),
            service,
        );
    tokio::pin!(conn);
    let mut graceful = *shutdown.borrow();
    if graceful {
        conn.as_mut().graceful_shutdown();
    }
    // A client that reads nothing is not waited for longer than the idle
    // timeout either (checked at half of it, so within one and a half).
    let mut stall_check = tokio::time::interval((idle / 2).max(Duration::from_millis(1)));
    stall_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
                break;
            }
            _ = stall_check.tick() => {
                if activity.write_stalled_for() >= idle {
                    tracing::debug!(?idle, "the client reads nothing: dropping the connection");
                    break;
                }
            }
            _ = kill.notified() => {
                tracing::debug!("dropping connection");
                break;
            }
            _ = shutdown.changed(), if !graceful => {
                graceful = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a request's handler knows of its connection.
pub(crate) struct Connection {
    /// Drops the connection when notified.
    pub kill: Arc<Notify>,
    /// When the connection last received a byte.
    pub activity: Arc<Activity>,
}

async fn handle(
    shared: Arc<Shared>,
    connection: Connection,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    shared.set_last_headers(
        req.headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    );
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = route(&shared, connection, req).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    Ok(response)
}

/// The produce endpoint a path addresses.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    cluster: String,
    topic: String,
    batch: bool,
}

/// Matches `{prefix}/clusters/{cluster}/topics/{topic}/records[:batch]` with the
/// `/kafka/v3` or `/v3` prefix.
fn parse_path(path: &str) -> Option<Target> {
    let rest = path
        .strip_prefix("/kafka/v3/")
        .or_else(|| path.strip_prefix("/v3/"))?;
    let mut parts = rest.split('/');
    let (Some("clusters"), Some(cluster), Some("topics"), Some(topic), Some(tail), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let batch = match tail {
        "records" => false,
        "records:batch" | "records%3Abatch" | "records%3abatch" => true,
        _ => return None,
    };
    let cluster = percent_decode(cluster)?;
    let topic = percent_decode(topic)?;
    if cluster.is_empty() || topic.is_empty() {
        return None;
    }
    Some(Target {
        cluster,
        topic,
        batch,
    })
}

/// Why a `Content-Type` is refused.
#[derive(Debug, PartialEq, Eq)]
enum MediaTypeError {
    /// Not JSON (or absent): HTTP 415.
    Unsupported,
    /// JSON in a charset other than UTF-8 or ISO-8859-1: HTTP 400.
    Charset(String),
}

impl MediaTypeError {
    fn response(&self) -> Response<ResponseBody> {
        match self {
            MediaTypeError::Unsupported => error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                "HTTP 415 Unsupported Media Type",
            ),
            MediaTypeError::Charset(charset) => error_response(
                StatusCode::BAD_REQUEST,
                400,
                &format!("Unsupported charset: {charset}"),
            ),
        }
    }
}

/// Checks `Content-Type`: JSON with a UTF-8 or ISO-8859-1 charset (or none).
fn content_type(headers: &HeaderMap) -> Result<Charset, MediaTypeError> {
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(MediaTypeError::Unsupported)?;
    let mut params = value.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(MediaTypeError::Unsupported);
    }
    let mut charset = Charset::Utf8;
    for param in params {
        let Some((name, val)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            continue;
        }
        let val = val.trim().trim_matches('"');
        charset = if val.eq_ignore_ascii_case("utf-8") || val.eq_ignore_ascii_case("utf8") {
            Charset::Utf8
        } else if val.eq_ignore_ascii_case("iso-8859-1") || val.eq_ignore_ascii_case("latin1") {
            Charset::Latin1
        } else {
            return Err(MediaTypeError::Charset(val.to_owned()));
        };
    }
    Ok(charset)
}

async fn route(
    shared: &Arc<Shared>,
    connection: Connection,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let idle = shared.limits.idle_timeout;
    if req.uri().path() == oauth::TOKEN_PATH {
        // A token request is a small form: all of it within the idle timeout.
        return match tokio::time::timeout(idle, shared.auth.oauth.respond(req)).await {
            Ok(response) => response,
            Err(_) => error_response(
                StatusCode::REQUEST_TIMEOUT,
                408,
                &format!("Request Timeout: the token request did not arrive within {idle:?}"),
            ),
        };
    }
    if let Some(topic) = inspect::topic_of(req.uri().path()) {
        // The extension is not the produce API: faults are not for it.
        return inspect::respond(
            shared,
            req.method(),
            req.headers(),
            topic,
            req.uri().query(),
        );
    }
    if let Some(intermediary) = shared.intermediary.current()
        && parse_path(req.uri().path()).is_some()
    {
        return intermediary::serve(shared, intermediary, connection, req).await;
    }
    produce(shared, connection, req.map(Source::Wire)).await
}

/// Handles a request for the produce endpoints (or any other path), its body
/// read from `req`.
pub(crate) async fn produce(
    shared: &Arc<Shared>,
    connection: Connection,
    req: Request<Source>,
) -> Response<ResponseBody> {
    let idle = shared.limits.idle_timeout;
    if let Some(fault) = shared.faults.take_http() {
        return fault_response(&fault);
    }
    let Some(target) = parse_path(req.uri().path()) else {
        return error_response(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found");
    };
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let Some(principal) = shared.auth.authenticate(req.headers()) else {
        return error_response(StatusCode::UNAUTHORIZED, 40101, "Authentication failed");
    };
    let charset = match content_type(req.headers()) {
        Ok(charset) => charset,
        Err(error) => return error.response(),
    };
    if target.cluster != shared.cluster_id {
        return error_response(
            StatusCode::NOT_FOUND,
            404,
            &format!("Cluster {} not found", target.cluster),
        );
    }
    if !shared.auth.may_produce(&principal, &target.topic) {
        return error_response(StatusCode::FORBIDDEN, 40301, "Request is not authorized");
    }
    let limit = shared.limits.request_bytes(target.batch);
    if let Some(limit) = limit {
        // A body announced too large is refused unread; the others are
        // counted as they are read.
        let length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|length| length > limit) {
            return payload_too_large(limit);
        }
    }
    let Some(topic) = shared.topics.for_produce(&target.topic) else {
        return error_response(
            StatusCode::NOT_FOUND,
            40403,
            &format!("Topic '{}' not found.", target.topic),
        );
    };
    let body = BodyReader::new(req.into_body(), connection.activity, idle, limit);
    if target.batch {
        batch::respond(shared, &topic, charset, body).await
    } else {
        stream::respond(Arc::clone(shared), topic, charset, body, connection.kill).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_path("/kafka/v3/clusters/lkc-1/topics/orders/records").unwrap();
        assert_eq!(
            (t.cluster.as_str(), t.topic.as_str(), t.batch),
            ("lkc-1", "orders", false)
        );
        let t = parse_path("/v3/clusters/c/topics/a%2Eb/records:batch").unwrap();
        assert_eq!((t.topic.as_str(), t.batch), ("a.b", true));
        assert!(parse_path("/v3/clusters/c/topics/t/records/").is_none());
        assert!(parse_path("/v2/clusters/c/topics/t/records").is_none());
        assert!(parse_path("/v3/clusters/c/topics//records").is_none());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(content_type(&h).is_err());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        assert_eq!(content_type(&h), Ok(Charset::Utf8));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON;charset=\"iso-8859-1\""),
        );
        assert_eq!(content_type(&h), Ok(Charset::Latin1));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-16"),
        );
        assert_eq!(
            content_type(&h),
            Err(MediaTypeError::Charset("utf-16".into()))
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(content_type(&h), Err(MediaTypeError::Unsupported));
    }
}
