#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod client;
pub mod env;
mod error;
mod generated;
mod http;
mod limits;
mod producer;
mod record;
mod redact;
mod retry;
#[cfg(test)]
mod testing;
mod wire;

pub use auth::Credentials;
pub use auth::oauth::{ClientAuth, ClientCredentials};
pub use auth::token::{AccessToken, TokenFuture, TokenProvider};
pub use client::{
    Client, ClientBuilder, DEFAULT_HTTP2_STREAMS_PER_CONNECTION, DEFAULT_MAX_BATCH_ENTRIES,
    DEFAULT_MAX_RECORD_BYTES, ServerKind,
};
pub use error::{
    ApiError, Error, ErrorScope, GiveUpReason, InvalidInput, RetryClass, TokenError, TransportError,
};
pub use http::version::HttpVersion;
pub use limits::{
    MAX_CHUNK_BYTES, MAX_CONFIGURED_DURATION, MAX_CONNECTIONS, MAX_ERROR_BODY_BYTES,
    MAX_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_RECORDS, MAX_RECORD_BYTES_LIMIT, MAX_REPORT_BYTES,
    MAX_RESPONSE_BYTES, MAX_RETRY_AFTER, MAX_TOKEN_ANSWER_BYTES, MAX_TOKEN_LIFETIME,
    MIN_TOKEN_LIFETIME,
};
pub use producer::{
    ConnectionStats, DeliveryFuture, Producer, ProducerConfig, ProducerStats, Routing,
    SendAllError, TopicStats, TrySendError, UnknownOutcome,
};
pub use retry::produce::ProduceRetries;
pub use wire::record::{DataType, Header, Payload, Record, validate_topic};
pub use wire::report::{DeliveryReport, PayloadSummary};

/// Former name of [`ServerKind`].
#[deprecated(since = "0.2.0", note = "renamed to `ServerKind`")]
pub type ApiFlavour = ServerKind;
/// Former name of [`UnknownOutcome`].
#[deprecated(since = "0.2.0", note = "renamed to `UnknownOutcome`")]
pub type OnOutcomeUnknown = UnknownOutcome;
/// Former name of [`PayloadSummary`].
#[deprecated(since = "0.2.0", note = "renamed to `PayloadSummary`")]
pub type StoredData = PayloadSummary;

// The environment variables' names at the crate root, as before `env`.
#[deprecated(since = "0.2.0", note = "use `env::API_KEY`")]
/// The name of [`env::API_KEY`], under its former name.
pub const ENV_API_KEY: &str = env::API_KEY;
#[deprecated(since = "0.2.0", note = "use `env::API_SECRET`")]
/// The name of [`env::API_SECRET`], under its former name.
pub const ENV_API_SECRET: &str = env::API_SECRET;
#[deprecated(since = "0.2.0", note = "use `env::BEARER_TOKEN`")]
/// The name of [`env::BEARER_TOKEN`], under its former name.
pub const ENV_BEARER_TOKEN: &str = env::BEARER_TOKEN;
#[deprecated(since = "0.2.0", note = "use `env::CA_FILE`")]
/// The name of [`env::CA_FILE`], under its former name.
pub const ENV_CA_FILE: &str = env::CA_FILE;
#[deprecated(since = "0.2.0", note = "use `env::CLIENT_CERT_FILE`")]
/// The name of [`env::CLIENT_CERT_FILE`], under its former name.
pub const ENV_CLIENT_CERT_FILE: &str = env::CLIENT_CERT_FILE;
#[deprecated(since = "0.2.0", note = "use `env::CLIENT_KEY_FILE`")]
/// The name of [`env::CLIENT_KEY_FILE`], under its former name.
pub const ENV_CLIENT_KEY_FILE: &str = env::CLIENT_KEY_FILE;
#[deprecated(since = "0.2.0", note = "use `env::CLUSTER_ID`")]
/// The name of [`env::CLUSTER_ID`], under its former name.
pub const ENV_CLUSTER_ID: &str = env::CLUSTER_ID;
#[deprecated(since = "0.2.0", note = "use `env::ENDPOINT`")]
/// The name of [`env::ENDPOINT`], under its former name.
pub const ENV_ENDPOINT: &str = env::ENDPOINT;
#[deprecated(since = "0.2.0", note = "use `env::FLAVOUR`")]
/// The name of [`env::FLAVOUR`], under its former name.
pub const ENV_FLAVOUR: &str = env::FLAVOUR;
#[deprecated(since = "0.2.0", note = "use `env::IDENTITY_POOL_ID`")]
/// The name of [`env::IDENTITY_POOL_ID`], under its former name.
pub const ENV_IDENTITY_POOL_ID: &str = env::IDENTITY_POOL_ID;
#[deprecated(since = "0.2.0", note = "use `env::OAUTH_CLIENT_AUTH`")]
/// The name of [`env::OAUTH_CLIENT_AUTH`], under its former name.
pub const ENV_OAUTH_CLIENT_AUTH: &str = env::OAUTH_CLIENT_AUTH;
#[deprecated(since = "0.2.0", note = "use `env::OAUTH_CLIENT_ID`")]
/// The name of [`env::OAUTH_CLIENT_ID`], under its former name.
pub const ENV_OAUTH_CLIENT_ID: &str = env::OAUTH_CLIENT_ID;
#[deprecated(since = "0.2.0", note = "use `env::OAUTH_CLIENT_SECRET`")]
/// The name of [`env::OAUTH_CLIENT_SECRET`], under its former name.
pub const ENV_OAUTH_CLIENT_SECRET: &str = env::OAUTH_CLIENT_SECRET;
#[deprecated(since = "0.2.0", note = "use `env::OAUTH_SCOPE`")]
/// The name of [`env::OAUTH_SCOPE`], under its former name.
pub const ENV_OAUTH_SCOPE: &str = env::OAUTH_SCOPE;
#[deprecated(since = "0.2.0", note = "use `env::OAUTH_TOKEN_URL`")]
/// The name of [`env::OAUTH_TOKEN_URL`], under its former name.
pub const ENV_OAUTH_TOKEN_URL: &str = env::OAUTH_TOKEN_URL;
#[deprecated(since = "0.2.0", note = "use `env::PROXY`")]
/// The name of [`env::PROXY`], under its former name.
pub const ENV_PROXY: &str = env::PROXY;

/// Entry points for the benchmarks in `benches/`, not part of the API: they
/// may change or go away in any release.
#[doc(hidden)]
pub mod __bench {
    use crate::wire::decode::ReportDecoder;
    use crate::wire::report::ReportWire;

    /// The streaming producer's delivery-report decoding: framing, JSON and
    /// conversion into a report or an error.
    #[derive(Default)]
    pub struct Reports {
        decoder: ReportDecoder,
        out: Vec<ReportWire>,
    }

    impl Reports {
        /// A decoder at the start of a response.
        pub fn new() -> Reports {
            Reports::default()
        }

        /// Adds a piece of a response body; returns how many delivered
        /// records the reports it completed describe.
        pub fn push(&mut self, chunk: &[u8]) -> Result<usize, String> {
            self.decoder
                .push(chunk, &mut self.out)
                .map_err(|e| e.to_string())?;
            Ok(self
                .out
                .drain(..)
                .map(ReportWire::into_result)
                .filter(Result::is_ok)
                .count())
        }
    }

    /// The streaming producer's encoding of a record into its per-thread
    /// block; returns the encoded length.
    pub fn encode_record(record: &crate::Record) -> usize {
        crate::wire::encode::encode(record).len()
    }
}

/// Entry points for the fuzz targets in `fuzz/`, not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    use crate::wire::decode::ReportDecoder;
    use crate::wire::report::ReportWire;
    use std::sync::OnceLock;
    use std::time::Duration;

    /// One decoded report: partition and offset, or the error code.
    pub type Decoded = Result<(i32, i64), Option<i32>>;

    /// The streaming producer's report decoding over these pieces of a
    /// response: the reports, and the error that ended decoding, if any.
    pub fn decode_reports<'a>(
        pieces: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<Decoded>, Option<String>) {
        let mut decoder = ReportDecoder::default();
        let mut out = Vec::new();
        let mut error = None;
        for piece in pieces {
            if let Err(e) = decoder.push(piece, &mut out) {
                error = Some(e.to_string());
                break;
            }
        }
        let reports = out
            .into_iter()
            .map(ReportWire::into_result)
            .map(|r| {
                r.map(|d| (d.partition, d.offset))
                    .map_err(|e| e.error_code())
            })
            .collect();
        (reports, error)
    }

    /// The streaming producer's encoding of a record.
    pub fn encode_record(record: &crate::Record) -> Vec<u8> {
        crate::wire::encode::encode(record).to_vec()
    }

    /// The OAuth token endpoint's answer as the client reads it: the token
    /// and its lifetime, or the error's text.
    pub fn token_answer(status: u16, body: &[u8]) -> Result<(String, Option<Duration>), String> {
        static PROVIDER: OnceLock<Option<crate::auth::oauth::ClientCredentialsProvider>> =
            OnceLock::new();
        let provider = PROVIDER.get_or_init(|| {
            let http = crate::ClientBuilder::new().http_client().ok()?;
            crate::ClientCredentials::new(
                "https://login.example/oauth2/token",
                "fuzz-client",
                FUZZ_CLIENT_SECRET,
            )
            .provider(http, false, &crate::http::proxy::ProxySetting::Off)
            .ok()
        });
        let Some(provider) = provider else {
            return Err("no provider".into());
        };
        provider
            .answer(status, body)
            .map(|token| (token.secret().to_owned(), token.lifetime()))
            .map_err(|e| e.to_string())
    }

    /// The client secret [`token_answer`] is configured with: it must never
    /// appear in an error.
    pub const FUZZ_CLIENT_SECRET: &str = "fuzz-client-secret-5c1e";
}

/// The request and response types generated from the OpenAPI document, for
/// users who want to work with the API's own shapes. Their fields follow the
/// vendored document and may change when it is updated; the rest of the
/// crate does not depend on them.
pub mod types {
    pub use crate::generated::types::{
        Error as ApiErrorBody, ProduceRequest, ProduceRequestData, ProduceRequestHeader,
        ProduceResponse, ProduceResponseData,
    };
}
