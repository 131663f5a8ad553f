#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod batch;
mod body;
mod client;
mod config;
mod error;
mod generated;
mod hooks;
mod limits;
mod oauth;
mod plain_http;
mod producer;
mod record;
mod redact;
mod report;
mod response;
mod retries;
mod retry_class;
mod retry_policy;
#[cfg(test)]
mod testing;
mod tls;
mod token;

pub use auth::Credentials;
pub use client::Client;
pub use config::{
    ApiFlavour, ClientBuilder, DEFAULT_MAX_BATCH_ENTRIES, DEFAULT_MAX_RECORD_BYTES, ENV_API_KEY,
    ENV_API_SECRET, ENV_BEARER_TOKEN, ENV_CA_FILE, ENV_CLIENT_CERT_FILE, ENV_CLIENT_KEY_FILE,
    ENV_CLUSTER_ID, ENV_ENDPOINT, ENV_FLAVOUR, ENV_IDENTITY_POOL_ID, ENV_OAUTH_CLIENT_AUTH,
    ENV_OAUTH_CLIENT_ID, ENV_OAUTH_CLIENT_SECRET, ENV_OAUTH_SCOPE, ENV_OAUTH_TOKEN_URL, ENV_PROXY,
};
pub use error::{ApiError, Error, InvalidInput};
pub use limits::{
    MAX_CHUNK_BYTES, MAX_CONFIGURED_DURATION, MAX_CONNECTIONS, MAX_ERROR_BODY_BYTES,
    MAX_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_RECORDS, MAX_RECORD_BYTES_LIMIT, MAX_REPORT_BYTES,
    MAX_RESPONSE_BYTES, MAX_RETRY_AFTER, MAX_TOKEN_ANSWER_BYTES, MAX_TOKEN_LIFETIME,
    MIN_TOKEN_LIFETIME,
};
pub use oauth::{ClientAuth, ClientCredentials};
pub use producer::{
    DeliveryFuture, OnOutcomeUnknown, Producer, ProducerConfig, ProducerStats, Routing,
};
pub use record::{DataType, Header, Payload, Record, validate_topic};
pub use report::{DeliveryReport, StoredData};
pub use retries::ProduceRetries;
pub use retry_class::RetryClass;
pub use token::{AccessToken, TokenError, TokenFuture, TokenProvider};

/// Entry points for the benchmarks in `benches/`, not part of the API: they
/// may change or go away in any release.
#[doc(hidden)]
pub mod __bench {
    use crate::producer::decode::ReportDecoder;
    use crate::report::ReportWire;

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
        crate::producer::encode::encode(record).len()
    }
}

/// Entry points for the fuzz targets in `fuzz/`, not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    use crate::producer::decode::ReportDecoder;
    use crate::report::ReportWire;
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
        crate::producer::encode::encode(record).to_vec()
    }

    /// The OAuth token endpoint's answer as the client reads it: the token
    /// and its lifetime, or the error's text.
    pub fn token_answer(status: u16, body: &[u8]) -> Result<(String, Option<Duration>), String> {
        static PROVIDER: OnceLock<Option<crate::oauth::ClientCredentialsProvider>> =
            OnceLock::new();
        let provider = PROVIDER.get_or_init(|| {
            let http = crate::ClientBuilder::new().http_client().ok()?;
            crate::ClientCredentials::new(
                "https://login.example/oauth2/token",
                "fuzz-client",
                FUZZ_CLIENT_SECRET,
            )
            .provider(http, false, &crate::config::ProxySetting::Off)
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
