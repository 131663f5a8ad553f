//! The one place the client's requests are built: the records URL, the
//! credential headers, the one retry after a refused token, and bounded
//! reads of what comes back. One-record calls (through the generated code),
//! `records:batch` requests and the producer's streams all start here.

use crate::client::Client;
use crate::client::response;
use crate::error::{ApiError, Error};
use crate::http::body;
use crate::limits::MAX_ERROR_BODY_BYTES;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use std::future::Future;
use tokio::time::Instant;

/// Which records endpoint of a topic a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordsPath {
    /// `…/records`: one record, or a stream of them.
    Records,
    /// `…/records:batch`: the REST Proxy's batch call.
    Batch,
}

impl Client {
    /// The URL of a topic's records endpoint.
    pub(crate) fn records_url(&self, topic: &str, path: RecordsPath) -> String {
        // Topic names are validated to [a-zA-Z0-9._-]: nothing to escape.
        let suffix = match path {
            RecordsPath::Records => "",
            RecordsPath::Batch => ":batch",
        };
        format!(
            "{}/clusters/{}/topics/{topic}/records{suffix}",
            self.base_url(),
            progenitor_client::encode_path(self.cluster_id())
        )
    }

    /// A JSON `POST` to `url` carrying `credentials`, not yet sent.
    pub(crate) fn post_json(
        &self,
        url: &str,
        credentials: HeaderMap,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        post(self.http(), url, credentials, body)
    }

    /// The same for a producer's stream, on the streams' HTTP client.
    pub(crate) fn post_stream(
        &self,
        url: &str,
        credentials: HeaderMap,
        body: reqwest::Body,
    ) -> reqwest::RequestBuilder {
        post(self.stream_http(), url, credentials, body)
    }

    /// Runs a request that can be sent again (`call`, given the credential
    /// headers): when the server answers HTTP 401 and the credentials are
    /// tokens that can be renewed, a new token is fetched and the request
    /// sent once more.
    pub(crate) async fn with_credentials<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: FnMut(HeaderMap) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.authenticator().call_with_refresh(call).await
    }

    /// The credential headers for a request that cannot be sent again (a
    /// stream: its caller decides what follows a 401). OAuth tokens are
    /// fetched, or refreshed ahead of expiry, as needed; they stop being
    /// valid at the time returned with them, when they do.
    pub(crate) async fn credential_headers_until(
        &self,
    ) -> Result<(HeaderMap, Option<Instant>), Error> {
        self.authenticator().headers_until().await
    }

    /// Called when the server refused the credentials (HTTP 401) of a request
    /// made with [`credential_headers_until`](Self::credential_headers_until): cached
    /// credentials that can be renewed are dropped so the next request gets
    /// fresh ones. Static credentials have nothing to renew.
    pub(crate) fn credentials_rejected(&self) {
        self.authenticator().rejected(None);
    }
}

/// A JSON `POST` on `http`.
fn post(
    http: &reqwest::Client,
    url: &str,
    credentials: HeaderMap,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    http.post(url).headers(json_headers(credentials)).body(body)
}

/// The headers of every produce request: `credentials`, and JSON both ways.
pub(crate) fn json_headers(mut credentials: HeaderMap) -> HeaderMap {
    credentials.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    credentials.insert(ACCEPT, HeaderValue::from_static("application/json"));
    credentials
}

/// The server's refusal of a whole request from a response that is not the
/// success asked for: its status, `Retry-After` and what the body says, the
/// body read up to [`MAX_ERROR_BODY_BYTES`] (a body cut short still says
/// what it can).
pub(crate) async fn refusal(response: reqwest::Response) -> ApiError {
    let status = response.status().as_u16();
    let retry_after = response::retry_after(response.headers());
    let body = body::read_limited(response, MAX_ERROR_BODY_BYTES)
        .await
        .map(|limited| limited.bytes)
        .unwrap_or_default();
    response::api_error_from_body(status, &body, retry_after)
}
