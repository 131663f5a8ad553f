//! The client: one record per request through the generated call.

use crate::config::{ApiFlavour, ClientBuilder};
use crate::error::Error;
use crate::generated;
use crate::hooks::run_call;
use crate::record::{Record, validate_topic};
use crate::report::DeliveryReport;
use crate::response;
use crate::retries::ProduceRetries;
use std::sync::Arc;

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
    flavour: ApiFlavour,
    max_record_bytes: usize,
    max_batch_entries: usize,
    retries: Option<ProduceRetries>,
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
        let authenticator = builder.authenticator(&http)?;
        let api = generated::Client::new_with_client(&base_url, http, authenticator);
        Ok(Client {
            inner: Arc::new(Inner {
                api,
                base_url,
                cluster_id,
                flavour: builder.flavour,
                max_record_bytes: builder.max_record_bytes,
                max_batch_entries,
                retries: builder.produce_retries,
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
        let auth = progenitor_client::ClientInfo::inner(api);
        auth.call_with_refresh(|credentials| async move {
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

    /// The credential headers for a new request or stream.
    /// OAuth tokens are fetched, or refreshed ahead of expiry, as needed.
    pub(crate) async fn credential_headers(&self) -> Result<reqwest::header::HeaderMap, Error> {
        progenitor_client::ClientInfo::inner(&self.inner.api)
            .headers()
            .await
    }

    /// Called when the server refused the credentials (HTTP 401): cached
    /// credentials that can be renewed are dropped so the next request gets
    /// fresh ones. Static credentials have nothing to renew.
    pub(crate) async fn credentials_rejected(&self) {
        progenitor_client::ClientInfo::inner(&self.inner.api).rejected(None);
    }

    /// The URL records for `topic` are posted to.
    pub(crate) fn records_url(&self, topic: &str) -> String {
        // Topic names are validated to [a-zA-Z0-9._-]: nothing to escape.
        format!(
            "{}/clusters/{}/topics/{topic}/records",
            self.inner.base_url,
            progenitor_client::encode_path(&self.inner.cluster_id)
        )
    }

    /// The generated client, for calls made outside this module.
    #[cfg(kafka_rest_generated_batch)]
    pub(crate) fn api(&self) -> &generated::Client {
        &self.inner.api
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

    /// The API flavour.
    pub fn flavour(&self) -> ApiFlavour {
        self.inner.flavour
    }
}
