//! The credential headers of each request, and the one retry after a
//! refused token.

use crate::auth::token::TokenCache;
use crate::error::{ApiError, Error, ErrorScope};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::time::Instant;

/// What the generated client carries to authenticate each request: the
/// fixed headers derived from the credentials (the secret ones marked
/// sensitive) and, for OAuth, the token cache that supplies the
/// `Authorization` header.
#[derive(Clone, Default)]
pub(crate) struct Authenticator {
    headers: HeaderMap,
    tokens: Option<Arc<TokenCache>>,
}

impl Authenticator {
    /// Credentials made of these fixed headers and, for OAuth, this cache.
    pub(super) fn new(headers: HeaderMap, tokens: Option<Arc<TokenCache>>) -> Authenticator {
        Authenticator { headers, tokens }
    }

    /// The credential headers for a new request or stream, fetching or
    /// refreshing an access token when needed.
    pub(crate) async fn headers(&self) -> Result<HeaderMap, Error> {
        self.headers_until().await.map(|(headers, _)| headers)
    }

    /// The same, with the time they stop being valid (a token's expiry),
    /// when they do: a stream must end before then.
    pub(crate) async fn headers_until(&self) -> Result<(HeaderMap, Option<Instant>), Error> {
        let mut headers = self.headers.clone();
        let mut until = None;
        if let Some(tokens) = &self.tokens {
            let (authorization, expires) =
                tokens.authorization_until().await.map_err(Error::Token)?;
            headers.insert(AUTHORIZATION, authorization);
            until = expires;
        }
        Ok((headers, until))
    }

    /// Whether the credentials are tokens that a refresh may replace.
    pub(crate) fn refreshes(&self) -> bool {
        self.tokens.is_some()
    }

    /// The server refused the credentials in `sent` (or, without it, the
    /// current ones): the next request fetches a new token. Nothing happens
    /// for fixed credentials, or when the refused token was already replaced.
    pub(crate) fn rejected(&self, sent: Option<&HeaderMap>) {
        if let Some(tokens) = &self.tokens {
            tokens.invalidate(sent.and_then(|h| h.get(AUTHORIZATION)));
        }
    }

    /// Runs `call` with fresh credential headers. When the server answers
    /// HTTP 401 and the credentials are refreshable tokens, the token is
    /// dropped, a new one fetched and the call made once more; if that
    /// fails too, the 401 is returned and says why.
    pub(crate) async fn call_with_refresh<T, F, Fut>(&self, mut call: F) -> Result<T, Error>
    where
        F: FnMut(HeaderMap) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let headers = self.headers().await?;
        if !self.refreshes() {
            // Nothing to refresh: no copy of the headers kept for a retry.
            return call(headers).await;
        }
        let refused = match call(headers.clone()).await {
            Err(Error::Api(api)) if is_refusal(&api) => api,
            other => return other,
        };
        tracing::debug!(
            "the server refused the access token; fetching a new one and retrying once"
        );
        self.rejected(Some(&headers));
        let headers = match self.headers().await {
            Ok(headers) => headers,
            Err(Error::Token(token)) => {
                return Err(Error::Api(noted(
                    refused,
                    &format!(
                        "the access token was refused and a new one could not be fetched: {token}"
                    ),
                )));
            }
            Err(other) => return Err(other),
        };
        match call(headers).await {
            Err(Error::Api(api)) if is_refusal(&api) => Err(Error::Api(noted(
                api,
                "a newly fetched access token was refused too",
            ))),
            other => other,
        }
    }
}

/// An HTTP 401 for the whole request.
fn is_refusal(api: &ApiError) -> bool {
    api.status == 401 && api.scope == ErrorScope::Request
}

fn noted(mut api: ApiError, note: &str) -> ApiError {
    api.message = if api.message.is_empty() {
        note.to_owned()
    } else {
        format!("{}; {note}", api.message)
    };
    api
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Authenticator")
            .field("headers", &names)
            .field("tokens", &self.tokens)
            .finish()
    }
}
