//! Which HTTP version a connection speaks and how it is set up: HTTP/1.1,
//! HTTP/2 over TLS when ALPN chose `h2`, and on plain TCP both HTTP/1.1 and
//! h2c with prior knowledge (told apart by the client's first bytes). Also
//! the count of requests by version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::Version;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

/// `SETTINGS_MAX_CONCURRENT_STREAMS` unless
/// [`EmulatorBuilder::with_http2_max_concurrent_streams`](super::EmulatorBuilder::with_http2_max_concurrent_streams)
/// sets another: 128, as nginx and Jetty announce.
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 128;

/// How long a connection that sent GOAWAY on purpose
/// ([`Emulator::goaway_after_records`](super::Emulator::goaway_after_records),
/// [`FaultPlan::goaway_probability`](super::FaultPlan::goaway_probability))
/// lets its streams run on before it is closed: streaming requests never
/// finish by themselves.
pub const GOAWAY_GRACE: Duration = Duration::from_millis(50);

/// The receive window of each HTTP/2 stream, for the records a client
/// uploads: big enough that the window is never what holds one stream below
/// the rate of HTTP/1.1. With the protocol's 64 KiB a stream stalls; past
/// 4 MiB nothing changes (the README has the measurements).
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;

/// The receive window of a whole HTTP/2 connection: room for several
/// streams at full speed at once.
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The largest DATA frame a client may send: fewer frames, each carrying
/// many small records.
const MAX_FRAME_SIZE: u32 = 64 * 1024;

/// How the emulator serves HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Http2Settings {
    /// Whether HTTP/2 is served at all (h2 by ALPN, h2c).
    pub enabled: bool,
    pub max_concurrent_streams: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            enabled: true,
            max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
        }
    }
}

impl Http2Settings {
    /// Why a setting cannot work, naming its setter.
    pub fn problem(&self) -> Option<String> {
        (self.max_concurrent_streams == 0).then(|| {
            "with_http2_max_concurrent_streams(0) is out of range: it must be at least 1".to_owned()
        })
    }

    /// The protocols a TLS handshake may choose, by preference.
    pub fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        if self.enabled {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        }
    }
}

/// What a connection is served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
    /// Plain TCP: HTTP/2 when the client opens with its preface (h2c with
    /// prior knowledge), HTTP/1.1 otherwise.
    Detect,
}

impl Protocol {
    /// The protocol of a plain TCP connection.
    pub fn plain(settings: &Http2Settings) -> Protocol {
        if settings.enabled {
            Protocol::Detect
        } else {
            Protocol::Http1
        }
    }

    /// The protocol of a TLS connection whose handshake chose `alpn` (none
    /// when the client offered none): HTTP/1.1 unless it is `h2`.
    pub fn negotiated(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }

    /// The connection builder: the request head within `idle` on HTTP/1.1,
    /// and the HTTP/2 windows and stream limit.
    pub fn builder(self, settings: &Http2Settings, idle: Duration) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(idle);
        builder
            .http2()
            .timer(TokioTimer::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME_SIZE)
            .max_concurrent_streams(settings.max_concurrent_streams);
        match self {
            Protocol::Http1 => builder.http1_only(),
            Protocol::Http2 => builder.http2_only(),
            Protocol::Detect => builder,
        }
    }
}

/// How many requests came in each HTTP version. Read it with
/// [`Emulator::requests_by_version`](super::Emulator::requests_by_version).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestVersions {
    /// Requests in HTTP/1.1 (and HTTP/1.0).
    pub http1: u64,
    /// Requests in HTTP/2, over TLS (h2) or plain TCP (h2c).
    pub http2: u64,
}

/// The live counters behind [`RequestVersions`].
#[derive(Debug, Default)]
pub(crate) struct VersionCounts {
    http1: AtomicU64,
    http2: AtomicU64,
}

impl VersionCounts {
    pub fn count(&self, version: Version) {
        let counter = if version == Version::HTTP_2 {
            &self.http2
        } else {
            &self.http1
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RequestVersions {
        RequestVersions {
            http1: self.http1.load(Ordering::Relaxed),
            http2: self.http2.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_and_choice() {
        let on = Http2Settings::default();
        let off = Http2Settings {
            enabled: false,
            ..on
        };
        assert_eq!(on.alpn_protocols()[0], b"h2");
        assert_eq!(off.alpn_protocols(), [b"http/1.1".to_vec()]);
        assert_eq!(Protocol::plain(&on), Protocol::Detect);
        assert_eq!(Protocol::plain(&off), Protocol::Http1);
        assert_eq!(Protocol::negotiated(Some(b"h2")), Protocol::Http2);
        assert_eq!(Protocol::negotiated(Some(b"http/1.1")), Protocol::Http1);
        assert_eq!(Protocol::negotiated(None), Protocol::Http1);
    }

    #[test]
    fn versions_are_counted_apart() {
        let counts = VersionCounts::default();
        counts.count(Version::HTTP_11);
        counts.count(Version::HTTP_10);
        counts.count(Version::HTTP_2);
        assert_eq!(counts.snapshot(), RequestVersions { http1: 2, http2: 1 });
    }
}
