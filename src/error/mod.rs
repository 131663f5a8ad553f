//! The crate's one error type, what it says about trying again, and the
//! errors of getting a token.

mod retry_class;
mod token;
mod transport;

use crate::record::Record;
pub use retry_class::RetryClass;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
pub use token::TokenError;
pub(crate) use transport::OwnFailure;
pub use transport::TransportError;

/// Everything that can go wrong producing a record.
///
/// Use [`Error::is_retriable`] to decide whether to send the record again and
/// [`Error::retry_class`] to know whether it may already have been written.
///
/// Errors are cheap to clone: sources that cannot be cloned themselves are
/// shared behind an [`Arc`], so a clone keeps the variant, the class and the
/// whole source chain.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error, either for the whole request (an
    /// HTTP status such as 401 or 429) or for this record in its delivery
    /// report (HTTP 200 with an `error_code` such as 40403).
    #[error("{0}")]
    Api(ApiError),
    /// The request could not be sent or its answer not received: DNS, TCP,
    /// TLS, a timeout, or a connection closed early.
    #[error("could not reach the Kafka REST endpoint: {0}")]
    Transport(TransportError),
    /// The server's answer could not be decoded. After a success status the
    /// request may have been carried out: see [`Error::retry_class`].
    #[error("could not decode the server's answer ({source}); body: {raw:?}")]
    Decode {
        /// The body as received (lossy UTF-8, truncated to 4 KiB).
        raw: String,
        /// The HTTP status of the answer, when one was received.
        status: Option<u16>,
        /// What the decoder objected to.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The record or the call was rejected before any request was sent.
    #[error("{0}")]
    InvalidInput(InvalidInput),
    /// The client configuration is incomplete or inconsistent.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The connection ended after the record was sent and before its
    /// delivery report arrived: it may or may not have been written.
    #[error("the connection ended before the record's delivery report arrived: {0}")]
    Interrupted(String),
    /// The producer gave up on the record without a delivery report, for
    /// `reason`: its delivery timeout passed (waiting for room, waiting in
    /// line, backing off or in flight), its attempts were used up, or its
    /// next attempt could not have started before the timeout (the backoff
    /// or the server's `Retry-After` was longer than the time left), so it
    /// failed then rather than at the deadline. When `may_have_been_written`
    /// is true, an attempt reached the server and its outcome is unknown:
    /// the record may be stored (its class is then
    /// [`RetryClass::OutcomeUnknown`]).
    #[error(
        "the record was not delivered: {reason} ({attempts} attempts){}{}",
        if *may_have_been_written { "; it may have been written" } else { "; it was not written" },
        last_error.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    GaveUp {
        /// Why the producer stopped trying.
        reason: GiveUpReason,
        /// Attempts made.
        attempts: u32,
        /// The error of the last attempt, if any.
        last_error: Option<Box<Error>>,
        /// Whether an attempt may have written the record.
        may_have_been_written: bool,
    },
    /// The last attempt failed with `last_error`, but an earlier attempt's
    /// outcome is unknown (a 5xx error code, or a connection lost before
    /// its report): the record may have been written by that one.
    #[error(
        "the record may have been written by an earlier attempt whose outcome is unknown \
         ({attempts} attempts); last error: {last_error}"
    )]
    MaybeWritten {
        /// Attempts made.
        attempts: u32,
        /// The error of the last attempt.
        last_error: Box<Error>,
    },
    /// The producer was closed before the record could be sent.
    #[error("the producer is closed; the record was not sent")]
    Closed,
    /// The record waited for room in the producer for its whole queue
    /// timeout ([`ProducerConfig::with_queue_timeout`](crate::ProducerConfig::with_queue_timeout))
    /// and was given none: it was not handed over and not sent, so sending
    /// it again is safe ([`RetryClass::Retriable`]). The record is handed
    /// back: [`Error::into_record`].
    #[error(
        "the producer had no room for the record within its queue timeout ({waited:?}); \
         the record was not sent"
    )]
    QueueFull {
        /// The record, as it was given.
        record: Box<Record>,
        /// How long it waited for room.
        waited: Duration,
    },
    /// No OAuth access token could be had: the token endpoint refused the
    /// client or could not be reached, or a token provider failed. Nothing
    /// was sent to the Kafka REST endpoint.
    #[error("{0}")]
    Token(crate::error::TokenError),
}

/// Why the producer gave up on a record ([`Error::GaveUp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Its delivery timeout passed before it was delivered: while it waited
    /// for room or in line, backed off, or was in flight unanswered.
    DeadlinePassed,
    /// It failed as many times as the configured maximum of attempts.
    AttemptsExhausted,
    /// Its next attempt could not have started before its delivery timeout
    /// (the backoff, or the server's `Retry-After`, was longer than the time
    /// left): it failed at once instead of at the deadline.
    NoTimeToRetry,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GiveUpReason::DeadlinePassed => "its delivery timeout passed",
            GiveUpReason::AttemptsExhausted => "its attempts are used up",
            GiveUpReason::NoTimeToRetry => {
                "its next attempt could not start before its delivery timeout"
            }
        })
    }
}

impl Error {
    /// The HTTP status of the answer, if there was one. A record refused in
    /// its delivery report has status 200: the request itself succeeded.
    /// For [`Error::GaveUp`], the status of the last attempt.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::MaybeWritten { last_error, .. } => last_error.status(),
            Error::Api(api) => Some(api.status),
            Error::Decode { status, .. } => *status,
            Error::GaveUp {
                last_error: Some(last),
                ..
            } => last.status(),
            _ => None,
        }
    }

    /// Confluent's `error_code`, if the server sent one (for example 40101,
    /// 40403, 42901, 50003). For [`Error::GaveUp`], the code of the
    /// last attempt.
    pub fn error_code(&self) -> Option<i32> {
        match self {
            Error::MaybeWritten { last_error, .. } => last_error.error_code(),
            Error::Api(api) => api.error_code,
            Error::GaveUp {
                last_error: Some(last),
                ..
            } => last.error_code(),
            _ => None,
        }
    }

    /// The server's `Retry-After`, if it sent one, at most
    /// [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(api) => api.retry_after,
            _ => None,
        }
    }

    /// What the failure means for the record; see [`RetryClass`].
    ///
    /// * Retriable, not written: HTTP 408, 429 and 5xx answered before the
    ///   stream started; report codes 408, 429, 42901; connection failures
    ///   before the request was sent; a record that found no room in the
    ///   producer within its queue timeout ([`Error::QueueFull`]).
    /// * Outcome unknown: report codes 500, 50003, 50302 (and other 5xxxx but
    ///   50002); a connection lost after the request was sent; an answer with
    ///   a success status (2xx) that could not be decoded, or a delivery
    ///   report with `error_code` 200 but no partition or offset: the server
    ///   accepted the request, so the record may have been written.
    /// * Terminal: everything else (bad input, 401/40101, 403/40301, 404,
    ///   40402, 40403, 413, 415, 422, 50002, error answers that could not be
    ///   decoded, configuration).
    ///
    /// A token error ([`Error::Token`]) is retriable when the token endpoint
    /// could not be reached or answered 408, 429 or 5xx, terminal otherwise.
    pub fn retry_class(&self) -> RetryClass {
        match self {
            Error::Api(api) => match api.error_code {
                Some(code) if api.scope == ErrorScope::Record => RetryClass::for_error_code(code),
                _ => RetryClass::for_http_status(api.status),
            },
            Error::Transport(e) if e.is_connect() => RetryClass::Retriable,
            Error::Transport(e) if e.is_request() => RetryClass::Terminal,
            Error::Transport(_) | Error::Interrupted(_) => RetryClass::OutcomeUnknown,
            Error::GaveUp {
                may_have_been_written: true,
                ..
            }
            | Error::MaybeWritten { .. } => RetryClass::OutcomeUnknown,
            Error::Decode {
                status: Some(status),
                ..
            } if (200..300).contains(status) => RetryClass::OutcomeUnknown,
            Error::Decode { .. }
            | Error::InvalidInput(_)
            | Error::Config(_)
            | Error::GaveUp { .. }
            | Error::Closed => RetryClass::Terminal,
            Error::QueueFull { .. } => RetryClass::Retriable,
            Error::Token(e) if e.is_retriable() => RetryClass::Retriable,
            Error::Token(_) => RetryClass::Terminal,
        }
    }

    /// Whether sending the same record again may succeed. True for rate
    /// limits, throttling, server errors and connection failures; see
    /// [`Error::retry_class`] for the full list and for which retries may
    /// duplicate the record.
    pub fn is_retriable(&self) -> bool {
        self.retry_class().is_retriable()
    }

    /// The record this error hands back, if it does: a record that was
    /// never sent ([`Error::QueueFull`]), to send again or keep.
    pub fn into_record(self) -> Option<Record> {
        match self {
            Error::QueueFull { record, .. } => Some(*record),
            _ => None,
        }
    }

    /// The record this error hands back, if it does; see
    /// [`into_record`](Self::into_record).
    pub fn record(&self) -> Option<&Record> {
        match self {
            Error::QueueFull { record, .. } => Some(record),
            _ => None,
        }
    }

    /// A transport failure.
    pub(crate) fn transport(error: reqwest::Error) -> Error {
        Error::Transport(TransportError::new(error))
    }

    /// An answer that could not be decoded; `status` is its HTTP status.
    pub(crate) fn decode(raw: String, status: Option<u16>, source: serde_json::Error) -> Error {
        Error::Decode {
            raw,
            status,
            source: Arc::new(source),
        }
    }

    pub(crate) fn invalid(input: InvalidInput) -> Error {
        Error::InvalidInput(input)
    }
}

/// An error answered by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response (200 for an error in a delivery report).
    pub status: u16,
    /// Confluent's `error_code`, when the body carried one.
    pub error_code: Option<i32>,
    /// The server's message, or the body's text when it was not JSON (the
    /// HTML page of a 429, for instance).
    pub message: String,
    /// The `Retry-After` delay, when the response had one, at most
    /// [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER).
    pub retry_after: Option<Duration>,
    /// Whether the server refused the whole request (its HTTP status) or
    /// this record alone, in its delivery report, while the request went on.
    pub scope: ErrorScope,
}

impl ApiError {
    /// Whether the error came in a delivery report rather than as the status
    /// of the whole request.
    #[deprecated(since = "0.2.0", note = "read `scope == ErrorScope::Record`")]
    pub fn in_band(&self) -> bool {
        self.scope == ErrorScope::Record
    }
}

/// What an [`ApiError`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorScope {
    /// The whole request: an HTTP status such as 401, 404 or 429, before any
    /// record of it was handled.
    Request,
    /// One record, in its delivery report (HTTP 200 for the request, an
    /// `error_code` such as 40403 for the record); the request went on with
    /// the records after it.
    Record,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scope == ErrorScope::Record {
            write!(f, "the server refused the record")?;
        } else {
            write!(f, "the server answered HTTP {}", self.status)?;
        }
        if let Some(code) = self.error_code {
            write!(f, " with error_code {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(hint) = hint(self.status, self.error_code) {
            write!(f, " ({hint})")?;
        }
        if let Some(delay) = self.retry_after {
            write!(f, "; retry after {} s", delay.as_secs())?;
        }
        Ok(())
    }
}

/// What to do about the common failures.
fn hint(status: u16, code: Option<i32>) -> Option<&'static str> {
    Some(match (status, code) {
        (_, Some(40101)) | (401, _) => {
            "check the API key and secret or the bearer token, and that they belong to this cluster"
        }
        (_, Some(40301)) | (403, _) => {
            "the credentials are valid but lack permission to write to this topic"
        }
        (404, Some(404)) => "check the cluster id and the endpoint's API flavour",
        (_, Some(40403)) | (404, _) => "check the topic name and partition",
        (_, Some(40402)) => "partitions are numbered from 0",
        (413, _) | (_, Some(413)) => "the record is larger than the server accepts",
        (415, _) => "the body must be sent as application/json",
        (429, _) | (_, Some(429)) | (_, Some(42901)) => "rate limited; retry later",
        _ => return None,
    })
}

/// Why a record or call was rejected before sending.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// The topic name breaks Kafka's rules.
    #[error(
        "invalid topic name {name:?}: {reason}; topic names are 1 to 249 characters of \
         ASCII letters, digits, '.', '_' and '-', and not \".\" or \"..\""
    )]
    TopicName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A negative partition.
    #[error(
        "invalid partition {0}: partitions are numbered from 0; leave it unset to let the server choose"
    )]
    Partition(i32),
    /// A record larger than the configured maximum.
    #[error(
        "record of {size} bytes (key, value and headers) exceeds the maximum of {max} bytes; \
         split it, or raise the limit with ClientBuilder::with_max_record_bytes if the cluster accepts more"
    )]
    RecordTooLarge {
        /// The record's size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A value given as JSON could not be serialized.
    #[error("the record's JSON could not be serialized: {0}")]
    Json(String),
    /// The record's key or value is the JSON value `null`, which the server
    /// would store as a Kafka null (for a value, a tombstone).
    #[error(
        "the record's {0} is the JSON value null, which the server stores as a Kafka null \
         (a tombstone that deletes the key on a compacted topic); for a tombstone use \
         Record::with_null_value() (or with_null_key()), for the four bytes \"null\" send them \
         as STRING or BINARY, or call Record::with_json_null_as_kafka_null() to send it as is"
    )]
    JsonNull(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_status_code_and_next_step() {
        let e = Error::Api(ApiError {
            status: 401,
            error_code: Some(40101),
            message: "Authentication failed".into(),
            retry_after: None,
            scope: ErrorScope::Request,
        });
        let text = e.to_string();
        assert!(text.contains("HTTP 401"), "{text}");
        assert!(text.contains("40101"), "{text}");
        assert!(text.contains("API key"), "{text}");
        assert!(!e.is_retriable());
    }

    #[tokio::test]
    async fn a_cloned_connection_refusal_stays_a_retriable_transport_error() {
        // A port that was just free and is closed again: the connection is refused.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let refused = crate::ClientBuilder::new()
            .without_proxy()
            .http_client()
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(refused.is_connect(), "{refused:?}");
        let original = Error::transport(refused);
        let clone = original.clone();
        assert!(matches!(clone, Error::Transport(_)), "{clone:?}");
        assert_eq!(clone.retry_class(), RetryClass::Retriable);
        assert_eq!(clone.retry_class(), original.retry_class());
        let text = clone.to_string();
        assert_eq!(text, original.to_string());
        assert!(text.starts_with("could not reach"), "{text}");
        let mut chain = text;
        let mut source = std::error::Error::source(&clone);
        while let Some(cause) = source {
            chain.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        assert!(chain.to_lowercase().contains("refused"), "{chain}");
    }

    #[test]
    fn an_undecodable_answer_is_outcome_unknown_only_after_a_success_status() {
        let source = || serde::de::Error::custom("not a report");
        let after = |status| Error::decode("x".into(), status, source()).retry_class();
        assert_eq!(after(Some(200)), RetryClass::OutcomeUnknown);
        assert_eq!(after(Some(207)), RetryClass::OutcomeUnknown);
        assert_eq!(after(Some(500)), RetryClass::Terminal);
        assert_eq!(after(None), RetryClass::Terminal);
        let e = Error::decode("x".into(), Some(200), source());
        assert_eq!(e.status(), Some(200));
        assert_eq!(e.clone().retry_class(), RetryClass::OutcomeUnknown);
    }
}
