//! The producer's streaming requests: on the client's own HTTP/2
//! connections when the endpoint speaks HTTP/2, on reqwest in HTTP/1.1
//! otherwise (through a proxy, or a server that chose HTTP/1.1). The lane
//! sees one shape either way.

use crate::client::Client;
use crate::client::request::{json_headers, refusal};
use crate::error::{ApiError, Error};
use crate::http::h2::{self, H2Body, H2Response, Route};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderMap, USER_AGENT};
use std::pin::Pin;

/// A request body: the records as the lane writes them.
pub(crate) type UploadBody =
    Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static>>;

/// A stream request that got no response.
pub(crate) struct StreamFailed {
    pub(crate) error: Error,
    /// Whether the server can have seen any of the request.
    pub(crate) reached: bool,
}

/// The response of a stream request.
pub(crate) enum StreamResponse {
    Http1(reqwest::Response),
    Http2(H2Response),
}

/// The body of a stream request's response.
pub(crate) enum StreamBody {
    Http1(Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>),
    Http2(H2Body),
}

impl Client {
    /// Sends a stream request to `url` and waits for the response head.
    pub(crate) async fn send_stream(
        &self,
        url: &str,
        credentials: HeaderMap,
        body: UploadBody,
    ) -> Result<StreamResponse, StreamFailed> {
        if let Some(pool) = self.stream_pool() {
            match pool.route().await {
                Err(e) => {
                    return Err(StreamFailed {
                        error: Error::Transport(e),
                        reached: false,
                    });
                }
                Ok(Route::Http2(lease)) => {
                    let request = self.h2_request(url, credentials)?;
                    return h2::send(lease, request, body)
                        .await
                        .map(StreamResponse::Http2)
                        .map_err(|failure| StreamFailed {
                            error: Error::Transport(failure.error),
                            reached: failure.reached,
                        });
                }
                Ok(Route::Http1) => {}
            }
        }
        let body = reqwest::Body::wrap_stream(body);
        match self.post_stream(url, credentials, body).send().await {
            Ok(response) => Ok(StreamResponse::Http1(response)),
            Err(e) => Err(StreamFailed {
                reached: !e.is_connect(),
                error: Error::transport(e),
            }),
        }
    }

    /// The head of a stream request on the HTTP/2 pool: what reqwest
    /// would send, without HTTP/1.1's connection headers.
    fn h2_request(
        &self,
        url: &str,
        credentials: HeaderMap,
    ) -> Result<http::Request<()>, StreamFailed> {
        let mut request = http::Request::post(url)
            .version(http::Version::HTTP_2)
            .body(())
            .map_err(|e| StreamFailed {
                error: Error::Config(format!("the stream's URL cannot be requested: {e}")),
                reached: false,
            })?;
        let headers = request.headers_mut();
        headers.extend(json_headers(credentials));
        headers.insert(USER_AGENT, self.user_agent().clone());
        Ok(request)
    }
}

impl StreamResponse {
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            StreamResponse::Http1(response) => response.status(),
            StreamResponse::Http2(response) => response.head.status,
        }
    }

    pub(crate) fn version(&self) -> http::Version {
        match self {
            StreamResponse::Http1(response) => response.version(),
            StreamResponse::Http2(response) => response.head.version,
        }
    }

    /// The server's refusal of the request, read from the response.
    pub(crate) async fn refusal(self) -> ApiError {
        let response = match self {
            StreamResponse::Http1(response) => response,
            StreamResponse::Http2(H2Response { head, body }) => reqwest::Response::from(
                http::Response::from_parts(head, reqwest::Body::wrap_stream(body.into_stream())),
            ),
        };
        refusal(response).await
    }

    pub(crate) fn into_body(self) -> StreamBody {
        match self {
            StreamResponse::Http1(response) => StreamBody::Http1(Box::pin(response.bytes_stream())),
            StreamResponse::Http2(response) => StreamBody::Http2(response.body),
        }
    }
}

impl StreamBody {
    /// The next piece of the response, `None` at its end.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        match self {
            StreamBody::Http1(body) => Some(body.next().await?.map_err(Error::transport)),
            StreamBody::Http2(body) => Some(body.next().await?.map_err(Error::Transport)),
        }
    }
}
