//! When a connection last received a byte, for the idle timeout: every byte
//! counts, chunk framing and whitespace included, not only the body data the
//! HTTP layer hands on. And since when a write has waited for a client that
//! reads nothing.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The time of a connection's last read that returned bytes.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Microseconds from `opened` to the last read.
    last: AtomicU64,
    /// One more than the microseconds from `opened` to when the write waiting
    /// now began; 0 when none waits.
    write_waiting: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            write_waiting: AtomicU64::new(0),
        })
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
    }

    fn touch(&self) {
        self.last.fetch_max(self.micros(), Ordering::Relaxed);
    }

    /// Notes whether a write is waiting for the client.
    fn wrote<T>(&self, polled: Poll<T>) -> Poll<T> {
        if polled.is_pending() {
            let since = self.micros() + 1;
            let _ =
                self.write_waiting
                    .compare_exchange(0, since, Ordering::Relaxed, Ordering::Relaxed);
        } else {
            self.write_waiting.store(0, Ordering::Relaxed);
        }
        polled
    }

    /// How long the write waiting now has waited (zero when none waits).
    pub fn write_stalled_for(&self) -> Duration {
        match self.write_waiting.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_micros(self.micros().saturating_sub(since - 1)),
        }
    }

    /// When the last byte arrived (when the connection opened, before any).
    pub fn last(&self) -> Instant {
        let micros = Duration::from_micros(self.last.load(Ordering::Relaxed));
        self.opened.checked_add(micros).unwrap_or(self.opened)
    }
}

/// A connection's stream that records its reads in an [`Activity`].
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity
            .wrote(Pin::new(&mut this.inner).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity
            .wrote(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity
            .wrote(Pin::new(&mut this.inner).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity
            .wrote(Pin::new(&mut this.inner).poll_shutdown(cx))
    }
}
