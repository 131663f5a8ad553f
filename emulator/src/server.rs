//! The accept loop, per-connection tasks and routing.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, Watched};
use super::body::Source;
use super::in_flight::{self, InFlight, Tracked};
use super::produce::{self, Connection};
use super::protocol::{GOAWAY_GRACE, Protocol};
use super::response::{ResponseBody, error_response};
use super::state::Shared;
use super::{inspect, oauth, proxy, tls};

/// How long in-flight requests may run on after shutdown before their connections
/// are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

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
                    shared.connections_accepted.fetch_add(1, Ordering::Relaxed);
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
                            let protocol = Protocol::plain(&shared.http2);
                            connection(socket, protocol, shared, shutdown).await;
                        }),
                        Some(acceptor) => connections.spawn(async move {
                            let _slot = slot;
                            if let Some(stream) = tls::accept(&acceptor, socket).await {
                                let protocol = Protocol::negotiated(stream.get_ref().1.alpn_protocol());
                                connection(stream, protocol, shared, shutdown).await;
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
/// for it to be dropped, when it has been quiet for the idle timeout with no
/// request in flight, or after a graceful shutdown.
async fn connection<S>(
    socket: S,
    protocol: Protocol,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let goaway = Arc::new(Notify::new());
    let activity = Activity::new();
    let in_flight = InFlight::new();
    let idle = shared.limits.idle_timeout;
    let service = {
        let (kill, goaway, activity) = (
            Arc::clone(&kill),
            Arc::clone(&goaway),
            Arc::clone(&activity),
        );
        let (shared, in_flight) = (Arc::clone(&shared), Arc::clone(&in_flight));
        service_fn(move |req: Request<Incoming>| {
            let connection = Connection {
                kill: Arc::clone(&kill),
                goaway: Arc::clone(&goaway),
                // The streams of an HTTP/2 connection share its bytes: each
                // request's idle timeout counts its own.
                activity: if req.version() == Version::HTTP_2 {
                    Activity::new()
                } else {
                    Arc::clone(&activity)
                },
            };
            handle(Arc::clone(&shared), connection, in_flight.begin(), req)
        })
    };
    let builder = protocol.builder(&shared.http2, idle);
    let conn = builder.serve_connection(
        TokioIo::new(Watched::new(socket, Arc::clone(&activity))),
        service,
    );
    tokio::pin!(conn);
    let mut graceful = *shutdown.borrow();
    if graceful {
        conn.as_mut().graceful_shutdown();
    }
    // When a GOAWAY (or a close on HTTP/1.1) is due, streams in flight are
    // not waited for past this.
    let mut closing_at: Option<Instant> = None;
    // A client that reads nothing is not waited for longer than the idle
    // timeout either (checked at half of it, so within one and a half).
    let mut stall_check = tokio::time::interval((idle / 2).max(Duration::from_millis(1)));
    stall_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        // Quiet, with no request in flight, since then: hyper's HTTP/1.1
        // header timeout covers most of it, but not HTTP/2 nor the wait for
        // a plain connection's first bytes.
        let quiet = in_flight
            .idle_since()
            .map(|since| since.max(activity.last()))
            .and_then(|since| since.checked_add(idle));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
                break;
            }
            _ = stall_check.tick() => {
                if activity.write_stalled_for() >= idle || in_flight.stalled_for() >= idle {
                    tracing::debug!(?idle, "the client reads nothing: dropping the connection");
                    break;
                }
            }
            () = until(quiet), if closing_at.is_none() => {
                let now = Instant::now();
                if in_flight.idle_since().is_some() && activity.last() + idle <= now {
                    tracing::debug!(?idle, "closing an idle connection");
                    if !graceful {
                        graceful = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    closing_at = Some(now + GOAWAY_GRACE);
                }
            }
            () = in_flight.quiet.notified() => {}
            _ = kill.notified() => {
                tracing::debug!("dropping connection");
                break;
            }
            _ = goaway.notified() => {
                tracing::debug!(grace = ?GOAWAY_GRACE, "GOAWAY: closing the connection");
                if !graceful {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
                let at = Instant::now() + GOAWAY_GRACE;
                closing_at = Some(closing_at.map_or(at, |c| c.min(at)));
            }
            () = until(closing_at) => {
                tracing::debug!("closing the connection after its grace");
                break;
            }
            _ = shutdown.changed(), if !graceful => {
                graceful = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    connection: Connection,
    request: in_flight::Request,
    req: Request<Incoming>,
) -> Result<Response<Tracked>, Infallible> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let version = req.version();
    shared.versions.count(version);
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
    tracing::debug!(%method, %path, ?version, status = response.status().as_u16(), "request");
    Ok(response.map(|body| Tracked::new(body, request)))
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
        && produce::is_produce_path(req.uri().path())
    {
        return proxy::serve(shared, intermediary, connection, req).await;
    }
    produce::produce(shared, connection, req.map(Source::Wire)).await
}
