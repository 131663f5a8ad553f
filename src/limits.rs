//! Caps on durations and sizes that come from outside: the server's
//! `Retry-After`, a token's lifetime, and the settings of a client or a
//! producer. Values past them are either cut down to the cap (what a server
//! or token endpoint sends) or refused when the client or producer is built
//! (what the caller configures), so that no deadline computed from them can
//! overflow and no bound is too large to allocate or count.

use std::time::Duration;

/// The longest `Retry-After` obeyed: 10 minutes. A server asking for longer
/// is waited for this long; the record's delivery timeout still applies.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// The longest an access token is taken to be valid: 24 hours. A token
/// endpoint or [`AccessToken::with_lifetime`](crate::AccessToken::with_lifetime)
/// giving a longer lifetime (or one too large to represent) gets this one;
/// the token is then refreshed ahead of it as usual.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The shortest lifetime a token is used for: 1 second. A token endpoint
/// answering `expires_in: 0` (or a fraction of a second) would otherwise make
/// every request fetch a token; such a token is kept for this long (renewed
/// after nine tenths of it), and a server that refuses it sooner gets the usual
/// one refresh on HTTP 401.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(1);

/// The longest delivery report read from a stream: 1 MiB. A report that
/// grows past it without ending ends the stream; its records and the
/// stream's later ones get "outcome unknown".
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// The most of an error response's body kept for its message: 64 KiB. The
/// rest is not read; the connection is closed instead.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The longest success body of a one-request call such as
/// [`Client::produce`](crate::Client::produce): 1 MiB, chunked or not. A
/// longer one is not read further: the call fails with "outcome unknown"
/// (the record may have been written).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The longest answer read from an OAuth token endpoint: 64 KiB.
pub const MAX_TOKEN_ANSWER_BYTES: usize = 64 * 1024;

/// The longest duration a setting accepts: 7 days. Applies to the client's
/// connect and read timeouts and to every duration of a
/// [`ProducerConfig`](crate::ProducerConfig) (delivery timeout, linger,
/// idle timeout, stream age, backoff).
pub const MAX_CONFIGURED_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most records a producer keeps in flight per connection
/// ([`ProducerConfig::with_max_in_flight_records`](crate::ProducerConfig::with_max_in_flight_records)):
/// 2^24 (16 777 216).
pub const MAX_IN_FLIGHT_RECORDS: usize = 1 << 24;

/// The most bytes a producer keeps in flight per connection
/// ([`ProducerConfig::with_max_in_flight_bytes`](crate::ProducerConfig::with_max_in_flight_bytes)):
/// 4 GiB less one byte.
pub const MAX_IN_FLIGHT_BYTES: usize = u32::MAX as usize;

/// The most connections per topic
/// ([`ProducerConfig::with_connections`](crate::ProducerConfig::with_connections)): 1024.
pub const MAX_CONNECTIONS: usize = 1024;

/// The largest write target
/// ([`ProducerConfig::with_chunk_bytes`](crate::ProducerConfig::with_chunk_bytes)): 16 MiB.
pub const MAX_CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// The largest record size limit
/// ([`ClientBuilder::with_max_record_bytes`](crate::ClientBuilder::with_max_record_bytes)):
/// 1 GiB, far above what any cluster accepts.
pub const MAX_RECORD_BYTES_LIMIT: usize = 1 << 30;

/// Why a configured duration cannot work, naming its setter: past
/// [`MAX_CONFIGURED_DURATION`], or zero where zero cannot work. `None` when
/// it can.
pub(crate) fn duration_problem(setter: &str, value: Duration, zero_ok: bool) -> Option<String> {
    let too_small = value.is_zero() && !zero_ok;
    (too_small || value > MAX_CONFIGURED_DURATION).then(|| {
        let low = if zero_ok { "" } else { "more than 0 and " };
        format!(
            "{setter}({value:?}) is out of range: it must be {low}at most \
             {MAX_CONFIGURED_DURATION:?} (MAX_CONFIGURED_DURATION)"
        )
    })
}
