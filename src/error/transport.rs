//! A request that could not be sent or whose answer was not received, in the
//! crate's own terms: the HTTP library underneath is not part of the API.

use crate::redact;
use std::error::Error as _;
use std::fmt;
use std::sync::Arc;

/// What went wrong between the client and the server: the connection could
/// not be made (DNS, TCP, TLS, a proxy), a timeout passed, or the connection
/// failed while the request or its answer was under way.
///
/// Its message says which, where (the URL, without credentials) and the
/// cause as the operating system or TLS stack reported it, once: the message
/// is the whole story, and [`source`](std::error::Error::source) is `None`.
#[derive(Clone)]
pub struct TransportError {
    inner: Arc<Failure>,
}

/// Who saw the failure: reqwest (HTTP/1.1, one-record and batch requests),
/// or the producer's own HTTP/2 connections, which say it in these terms.
enum Failure {
    Reqwest(reqwest::Error),
    Own(OwnFailure),
}

/// A failure of the producer's own HTTP/2 connections.
pub(crate) struct OwnFailure {
    /// What happened, in a few words.
    pub(crate) what: &'static str,
    /// The URL, without credentials.
    pub(crate) url: Option<String>,
    /// The cause as the layer that saw it reported it.
    pub(crate) cause: Option<String>,
    /// Nothing was sent: the connection could not be made.
    pub(crate) connect: bool,
    pub(crate) timeout: bool,
}

impl TransportError {
    pub(crate) fn new(error: reqwest::Error) -> TransportError {
        TransportError {
            inner: Arc::new(Failure::Reqwest(error)),
        }
    }

    pub(crate) fn own(failure: OwnFailure) -> TransportError {
        TransportError {
            inner: Arc::new(Failure::Own(failure)),
        }
    }

    /// Whether the connection could not be made: nothing was sent.
    pub fn is_connect(&self) -> bool {
        match &*self.inner {
            Failure::Reqwest(e) => e.is_connect(),
            Failure::Own(own) => own.connect,
        }
    }

    /// Whether a timeout passed (the connect timeout, or the client's read
    /// or total timeout).
    pub fn is_timeout(&self) -> bool {
        match &*self.inner {
            Failure::Reqwest(e) => e.is_timeout(),
            Failure::Own(own) => own.timeout,
        }
    }

    /// Whether the request could not even be built (an invalid header value,
    /// say): nothing was sent, and sending it again cannot help.
    pub(crate) fn is_request(&self) -> bool {
        match &*self.inner {
            Failure::Reqwest(e) => e.is_builder(),
            Failure::Own(_) => false,
        }
    }

    /// The URL of the request, without credentials, when it is known.
    pub fn url(&self) -> Option<String> {
        match &*self.inner {
            Failure::Reqwest(e) => e.url().map(|url| redact::url(url.as_str())),
            Failure::Own(own) => own.url.clone(),
        }
    }

    /// What happened, in a few words.
    fn what(&self) -> &'static str {
        let e = match &*self.inner {
            Failure::Reqwest(e) => e,
            Failure::Own(own) => return own.what,
        };
        if e.is_connect() {
            "could not connect"
        } else if e.is_timeout() {
            "timed out"
        } else if e.is_builder() {
            "could not build the request"
        } else if e.is_request() {
            "the request failed"
        } else if e.is_body() {
            "the connection failed while the request body was sent"
        } else if e.is_decode() {
            "the answer could not be read"
        } else {
            "the connection failed"
        }
    }

    /// The innermost cause, as the layer that saw it reported it (e.g.
    /// "Connection refused (os error 111)" or the TLS stack's reason).
    fn cause(&self) -> Option<String> {
        let e = match &*self.inner {
            Failure::Reqwest(e) => e,
            Failure::Own(own) => return own.cause.clone(),
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
        let mut last = None;
        while let Some(error) = cause {
            last = Some(error);
            cause = error.source();
        }
        last.map(ToString::to_string)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())?;
        if let Some(url) = self.url() {
            write!(f, " ({url})")?;
        }
        if let Some(cause) = self.cause() {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("what", &self.what())
            .field("url", &self.url())
            .field("cause", &self.cause())
            .finish()
    }
}

impl std::error::Error for TransportError {}
