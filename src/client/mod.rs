//! The client of one cluster: its builder and endpoint, and one request path
//! per kind (one record through the generated call, a `records:batch`
//! request), with the hooks and response handling they share.

mod batch;
mod builder;
pub(crate) mod endpoint;
pub(crate) mod hooks;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

pub use builder::{
    ClientBuilder, DEFAULT_HTTP2_STREAMS_PER_CONNECTION, DEFAULT_MAX_BATCH_ENTRIES,
    DEFAULT_MAX_RECORD_BYTES,
};
pub use endpoint::ServerKind;

use crate::auth::Authenticator;
use crate::client::hooks::run_call;
use crate::error::Error;
use crate::generated;
use crate::http::h2::H2Pool;
use crate::http::path::SharedPath;
use crate::retry::pace::SharedPace;
use crate::retry::produce::ProduceRetries;
use crate::wire::record::{Record, validate_topic};
use crate::wire::report::DeliveryReport;
use std::sync::Arc;
use std::time::Duration;

/// A client of one cluster's Kafka REST v3 API. Cheap to clone; clones share
/// the connection pool.
///
/// ```no_run
/// use ccloud_kafka_rest::{Client, Record};
/// # async fn run() -> Result<(), ccloud_kafka_rest::Error> {
/// let client = Client::from_env()?;
/// let report = client.produce("orders", &Record::from_value("hello")).await?;
/// println!("written at {}:{}", report.partition, report.offset);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api: generated::Client,
    base_url: String,
    cluster_id: String,
    flavour: ServerKind,
    max_record_bytes: usize,
    max_batch_entries: usize,
    retries: Option<ProduceRetries>,
    /// The producer's streams: its own HTTP/2 connections when the
    /// endpoint can speak HTTP/2, reqwest's HTTP/1.1 otherwise, and how
    /// long their reads wait.
    stream_pool: Option<H2Pool>,
    /// Sent on the pool's requests, as reqwest sends it on its own.
    user_agent: reqwest::header::HeaderValue,
    streams: reqwest::Client,
    stream_read_timeout: Duration,
    /// What the producer learnt of the path to the endpoint.
    path: Arc<SharedPath>,
    /// How fast records may go to the endpoint and cluster, shared with
    /// every client of them.
    pace: Arc<SharedPace>,
}

impl Client {
    /// A builder with the defaults; see [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from the environment; see
    /// [`ClientBuilder::from_env`] for the variables.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::from_env()?.build()
    }

    pub(crate) fn from_builder(builder: ClientBuilder) -> Result<Client, Error> {
        builder.check_limits()?;
        let base_url = builder.base_url()?;
        let cluster_id = builder.cluster_id()?.to_owned();
        let max_batch_entries = builder.max_batch_entries()?;
        let http = builder.http_client()?;
        let streams = builder.stream_http_client()?;
        let stream_pool = builder.stream_pool(&base_url)?;
        let user_agent =
            reqwest::header::HeaderValue::from_str(&builder.user_agent).map_err(|_| {
                Error::Config("with_user_agent: the user agent is not a valid header value".into())
            })?;
        let token_http = builder.token_http_client()?;
        let authenticator = builder.authenticator(token_http.as_ref().unwrap_or(&http))?;
        let api = generated::Client::new_with_client(&base_url, http, authenticator);
        let pace = SharedPace::of(&base_url, &cluster_id);
        Ok(Client {
            inner: Arc::new(Inner {
                api,
                base_url,
                cluster_id,
                flavour: builder.flavour,
                max_record_bytes: builder.max_record_bytes,
                max_batch_entries,
                retries: builder.produce_retries,
                stream_pool,
                user_agent,
                streams,
                stream_read_timeout: builder.stream_read_timeout(),
                path: Arc::default(),
                pace,
            }),
        })
    }

    /// Produces one record in its own request and waits for its delivery
    /// report. An error in the report (e.g. 40403) is returned as
    /// [`Error::Api`]. Nothing is retried unless the client was built with
    /// [`ClientBuilder::with_produce_retries`], except that with OAuth
    /// credentials an HTTP 401 makes the client fetch a new token and send
    /// the request once more.
    pub async fn produce(&self, topic: &str, record: &Record) -> Result<DeliveryReport, Error> {
        validate_topic(topic)?;
        record.validate(self.inner.max_record_bytes)?;
        match &self.inner.retries {
            Some(retries) => retries.run(|| self.produce_once(topic, record)).await,
            None => self.produce_once(topic, record).await,
        }
    }

    /// One attempt of [`produce`](Self::produce), the input checked.
    async fn produce_once(&self, topic: &str, record: &Record) -> Result<DeliveryReport, Error> {
        let api = &self.inner.api;
        self.with_credentials(|credentials| async move {
            // Boxed: the call's future is large, and the wrappers below
            // would otherwise move it on every step.
            let call = Box::pin(api.produce_record(&self.inner.cluster_id, topic, record));
            let (result, meta) = run_call(Some(credentials), call).await;
            response::into_report(result, meta).await
        })
        .await
    }

    /// The HTTP client shared by every call and stream.
    pub(crate) fn http(&self) -> &reqwest::Client {
        progenitor_client::ClientInfo::client(&self.inner.api)
    }

    /// The HTTP client of the producer's streams.
    pub(crate) fn stream_http(&self) -> &reqwest::Client {
        &self.inner.streams
    }

    /// The producer's own HTTP/2 connections, when streams may use them.
    pub(crate) fn stream_pool(&self) -> Option<&H2Pool> {
        self.inner.stream_pool.as_ref()
    }

    /// The User-Agent header of the client's requests.
    pub(crate) fn user_agent(&self) -> &reqwest::header::HeaderValue {
        &self.inner.user_agent
    }

    /// How long a stream waits for the next piece of its response.
    pub(crate) fn stream_read_timeout(&self) -> Duration {
        self.inner.stream_read_timeout
    }

    /// What the producer learnt of the path to the endpoint, shared by
    /// every clone.
    pub(crate) fn path(&self) -> &Arc<SharedPath> {
        &self.inner.path
    }

    /// How fast records may go to the endpoint and cluster, shared by
    /// every client of them.
    pub(crate) fn pace(&self) -> &Arc<SharedPace> {
        &self.inner.pace
    }

    /// What authenticates each request.
    pub(crate) fn authenticator(&self) -> &Authenticator {
        progenitor_client::ClientInfo::inner(&self.inner.api)
    }

    /// The most records sent in one `records:batch` request.
    pub(crate) fn max_batch_entries(&self) -> usize {
        self.inner.max_batch_entries
    }

    /// The largest record accepted before sending.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.inner.max_record_bytes
    }

    /// The base URL of the v3 API (endpoint and path prefix).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// Which server the endpoint is (Confluent Cloud or the REST Proxy).
    pub fn server_kind(&self) -> ServerKind {
        self.inner.flavour
    }

    /// Former name of [`server_kind`](Self::server_kind).
    #[deprecated(since = "0.2.0", note = "renamed to `server_kind`")]
    pub fn flavour(&self) -> ServerKind {
        self.server_kind()
    }
}
