//! Connections shared by the lanes of a client, a lease per stream.

use super::connect::Target;
use super::failure::connect_failure;
use super::socket::Io;
use crate::error::TransportError;
use bytes::Bytes;
use futures_util::FutureExt;
use h2::client::SendRequest;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;

/// Receive windows for the reports: about 150 bytes a record, so a stream
/// reporting a million records a second over a 25 ms round trip needs
/// about 4 MiB in flight. What the windows admit is all that can be held
/// unread: per stream, and per connection over every stream.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;
/// The largest frame the server may send: reports in frames of up to
/// 256 KiB rather than h2's 16 KiB, fewer frames and TLS records to read.
const MAX_FRAME_SIZE: u32 = 256 << 10;
/// Pings on every connection this often, idle or not: a dead peer is
/// noticed even while a lane only waits for reports.
const PING_INTERVAL: Duration = Duration::from_secs(20);
/// A ping unanswered this long ends the connection.
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection without streams this long is closed, before the server's
/// idle timeout (30 s) closes it under a new request.
const IDLE_CLOSE: Duration = Duration::from_secs(25);
/// How often the connection's task looks at its idleness.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The pool's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct H2Settings {
    /// The most streams (lanes) on one connection; the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` when lower.
    pub(crate) streams_per_connection: usize,
    pub(crate) connect_timeout: Duration,
}

/// Where a lane's request goes.
pub(crate) enum Route {
    /// A stream on one of the pool's connections.
    Http2(Lease),
    /// The server chose HTTP/1.1 by ALPN: the request goes on reqwest.
    Http1,
}

/// The connections to one endpoint.
pub(crate) struct H2Pool {
    target: Target,
    settings: H2Settings,
    /// Held while a lane picks or opens a connection: lanes started at once
    /// wait for the first connection instead of each opening its own.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    connections: Vec<Arc<Connection>>,
    /// The server answered ALPN with HTTP/1.1.
    speaks_http1: bool,
    opened: u64,
}

/// One HTTP/2 connection.
pub(crate) struct Connection {
    pub(crate) send: SendRequest<Bytes>,
    streams: AtomicUsize,
    /// Set by the connection's task when the connection is over.
    closed: AtomicBool,
    /// Since when it has had no stream.
    idle_since: Mutex<Option<Instant>>,
    id: u64,
}

impl Connection {
    fn usable(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        // After a GOAWAY, or once the connection failed, readiness is an
        // error; waiting (the server's stream limit reached) is not.
        !matches!(self.send.clone().ready().now_or_never(), Some(Err(_)))
    }

    fn has_room(&self, configured: usize) -> bool {
        let limit = configured.min(self.send.current_max_send_streams());
        self.streams.load(Ordering::Acquire) < limit
    }

    fn idle_for(&self, now: Instant) -> Option<Duration> {
        let since = *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        since.map(|since| now.saturating_duration_since(since))
    }
}

/// A lane's stream on a connection: counted until dropped.
pub(crate) struct Lease {
    pub(crate) connection: Arc<Connection>,
}

impl Lease {
    fn take(connection: &Arc<Connection>) -> Lease {
        connection.streams.fetch_add(1, Ordering::AcqRel);
        *connection
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        Lease {
            connection: Arc::clone(connection),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let before = self.connection.streams.fetch_sub(1, Ordering::AcqRel);
        if before <= 1 {
            *self
                .connection
                .idle_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
    }
}

impl std::fmt::Debug for H2Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Pool")
            .field("endpoint", &self.target.shown)
            .field("settings", &self.settings)
            .finish()
    }
}

impl H2Pool {
    pub(crate) fn new(target: Target, settings: H2Settings) -> H2Pool {
        H2Pool {
            target,
            settings,
            state: tokio::sync::Mutex::default(),
        }
    }

    /// A stream for a lane: on a connection with room, or on a new one.
    pub(crate) async fn route(&self) -> Result<Route, TransportError> {
        let mut state = self.state.lock().await;
        if state.speaks_http1 {
            return Ok(Route::Http1);
        }
        state.connections.retain(|c| c.usable());
        let configured = self.settings.streams_per_connection;
        if let Some(connection) = state.connections.iter().find(|c| c.has_room(configured)) {
            return Ok(Route::Http2(Lease::take(connection)));
        }
        let (io, h2) = self.target.connect(self.settings.connect_timeout).await?;
        if !h2 {
            debug!(endpoint = %self.target.shown, "the server chose HTTP/1.1: streams go on HTTP/1.1");
            state.speaks_http1 = true;
            return Ok(Route::Http1);
        }
        state.opened += 1;
        let connection = self.handshake(io, state.opened).await?;
        let lease = Lease::take(&connection);
        state.connections.push(connection);
        Ok(Route::Http2(lease))
    }

    /// The HTTP/2 preface and settings, and the task that drives the
    /// connection. Returns once the server's settings are known (its
    /// stream limit among them): a ping's answer comes after them.
    async fn handshake(&self, io: Io, id: u64) -> Result<Arc<Connection>, TransportError> {
        let shown = &self.target.shown;
        let failed = |e: h2::Error| connect_failure(shown, format!("HTTP/2: {e}"), false);
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME_SIZE)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(failed)?;
        // Taken once, here: h2 gives it to the first caller.
        let Some(mut ping) = connection.ping_pong() else {
            return Err(connect_failure(
                shown,
                "HTTP/2: no ping handle".into(),
                false,
            ));
        };
        let (settled_tx, settled) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Connection {
            send,
            streams: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            idle_since: Mutex::new(Some(Instant::now())),
            id,
        });
        let watched = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let driven = async {
                if let Err(e) = connection.await {
                    debug!(connection = id, error = %e, "HTTP/2 connection ended");
                }
            };
            let watch = async {
                let first = ping.ping(h2::Ping::opaque()).await.is_ok();
                let _ = settled_tx.send(first);
                if !first {
                    return;
                }
                keepalive(&mut ping, &watched).await;
            };
            tokio::select! {
                () = driven => {}
                () = watch => {}
            }
            if let Some(connection) = watched.upgrade() {
                connection.closed.store(true, Ordering::Release);
            }
        });
        let timeout = self.settings.connect_timeout;
        match tokio::time::timeout(timeout, settled).await {
            Ok(Ok(true)) => {
                debug!(connection = id, endpoint = %shown, "HTTP/2 connection open");
                Ok(shared)
            }
            Ok(_) => Err(connect_failure(
                shown,
                "HTTP/2: the connection ended during its handshake".into(),
                false,
            )),
            Err(_) => Err(connect_failure(
                shown,
                format!("HTTP/2: no answer to the handshake within {timeout:?}"),
                true,
            )),
        }
    }
}

/// Pings every [`PING_INTERVAL`] and returns when one goes unanswered, or
/// when the connection has had no stream for [`IDLE_CLOSE`] (or is no
/// longer in the pool and has no stream).
async fn keepalive(ping: &mut h2::PingPong, connection: &std::sync::Weak<Connection>) {
    let mut next_ping = later(Instant::now(), PING_INTERVAL);
    loop {
        tokio::time::sleep(IDLE_CHECK).await;
        let now = Instant::now();
        let Some(shared) = connection.upgrade() else {
            return;
        };
        if shared.idle_for(now).is_some_and(|idle| idle >= IDLE_CLOSE) {
            debug!(connection = shared.id, "HTTP/2 connection idle: closed");
            return;
        }
        drop(shared);
        if now >= next_ping {
            let answered = tokio::time::timeout(PING_TIMEOUT, ping.ping(h2::Ping::opaque())).await;
            if !matches!(answered, Ok(Ok(_))) {
                debug!("HTTP/2 ping unanswered: connection closed");
                return;
            }
            next_ping = later(Instant::now(), PING_INTERVAL);
        }
    }
}

/// `after` past `now`, or `now` where the clock cannot go that far.
fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after).unwrap_or(now)
}
