//! What a failure means for the record: the one place that decides whether a
//! failed produce may be retried and whether the record may already have been
//! written. Follows the server's documented error classes.

/// How a failure relates to the record and what a client may do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryClass {
    /// The record was not written and sending it again may succeed
    /// (a stream that lived too long, an HTTP 5xx answered before the
    /// stream started, a connection that could not be made).
    Retriable,
    /// The record was not written because the server limits the rate of
    /// records (an in-band 429 or 42901, or HTTP 429): it may go again once
    /// the pace is slower. Throttling is not an error of the record: the
    /// streaming producer and [`ProduceRetries`](crate::ProduceRetries) do
    /// not count it against the record's attempts, only its delivery
    /// timeout bounds it.
    Throttled,
    /// The server or the connection failed after the record was handed over:
    /// it may or may not have been written. Sending it again may duplicate it.
    OutcomeUnknown,
    /// The record was not written and sending it again will fail the same way.
    Terminal,
}

impl RetryClass {
    /// Classifies an HTTP status answered before any record was read (the
    /// request as a whole was refused).
    pub(crate) fn for_http_status(status: u16) -> RetryClass {
        match status {
            429 => RetryClass::Throttled,
            408 => RetryClass::Retriable,
            // Answered before the stream started: nothing was produced.
            500..=599 => RetryClass::Retriable,
            _ => RetryClass::Terminal,
        }
    }

    /// Classifies a delivery report's `error_code`.
    pub(crate) fn for_error_code(code: i32) -> RetryClass {
        match code {
            // Rate limit, Kafka quota throttling.
            429 | 42901 => RetryClass::Throttled,
            // A stream past its lifetime.
            408 => RetryClass::Retriable,
            // Server or Kafka failure after the record was accepted.
            500 | 50003 | 50302 => RetryClass::OutcomeUnknown,
            // Any other 5xx code: the server failed; assume the worst.
            50000..=59999 if code != 50002 => RetryClass::OutcomeUnknown,
            _ => RetryClass::Terminal,
        }
    }

    /// Whether sending the record again may succeed.
    pub fn is_retriable(self) -> bool {
        !matches!(self, RetryClass::Terminal)
    }
}

#[cfg(test)]
mod tests {
    use super::RetryClass::*;
    use super::*;

    #[test]
    fn in_band_codes_follow_the_servers_classes() {
        for code in [429, 42901] {
            assert_eq!(RetryClass::for_error_code(code), Throttled, "{code}");
            assert!(Throttled.is_retriable());
        }
        assert_eq!(RetryClass::for_error_code(408), Retriable);
        for code in [500, 50003, 50302] {
            assert_eq!(RetryClass::for_error_code(code), OutcomeUnknown, "{code}");
        }
        for code in [
            400, 40002, 40101, 40301, 40401, 40402, 40403, 413, 422, 42206, 50002,
        ] {
            assert_eq!(RetryClass::for_error_code(code), Terminal, "{code}");
        }
    }

    #[test]
    fn http_statuses_before_streaming() {
        assert_eq!(RetryClass::for_http_status(429), Throttled);
        for status in [408, 500, 502, 503, 504] {
            assert_eq!(RetryClass::for_http_status(status), Retriable, "{status}");
        }
        for status in [400, 401, 403, 404, 413, 415, 422] {
            assert_eq!(RetryClass::for_http_status(status), Terminal, "{status}");
        }
    }
}
