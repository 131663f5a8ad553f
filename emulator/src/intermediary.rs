//! The HTTP intermediaries the emulator can play in front of its produce
//! endpoints, and the one in use; [`proxy`](super::proxy) plays them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::limits::duration_problem;
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
    pub(crate) fn transparent(&self) -> bool {
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
}
