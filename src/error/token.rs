//! The error of getting an access token.

use std::fmt;

/// Getting an access token failed: the token endpoint refused the client or
/// could not be reached, or a [`TokenProvider`](crate::TokenProvider) reported an error.
///
/// Its message names the endpoint and what it answered (HTTP status and the
/// OAuth `error` and `error_description` fields), never the client secret or
/// a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    endpoint: Option<String>,
    status: Option<u16>,
    error: Option<String>,
    description: Option<String>,
    detail: String,
    retriable: bool,
}

impl TokenError {
    /// An error with a message, for [`TokenProvider`](crate::TokenProvider) implementations. Not
    /// retriable unless [`with_retriable`](TokenError::with_retriable) says so.
    pub fn new(message: impl Into<String>) -> TokenError {
        TokenError {
            endpoint: None,
            status: None,
            error: None,
            description: None,
            detail: message.into(),
            retriable: false,
        }
    }

    /// Whether trying again later may succeed (the provider was unreachable
    /// or overloaded, rather than refusing the client).
    pub fn with_retriable(mut self, retriable: bool) -> TokenError {
        self.retriable = retriable;
        self
    }

    pub(crate) fn at_endpoint(mut self, endpoint: impl Into<String>) -> TokenError {
        self.endpoint = Some(endpoint.into());
        self
    }

    pub(crate) fn answered(
        mut self,
        status: u16,
        error: Option<String>,
        description: Option<String>,
    ) -> TokenError {
        self.status = Some(status);
        self.error = error;
        self.description = description;
        self
    }

    /// The token endpoint's URL, when the built-in client-credentials flow
    /// failed.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The HTTP status the token endpoint answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The OAuth `error` field of the answer, e.g. `invalid_client`.
    pub fn oauth_error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The OAuth `error_description` field of the answer.
    pub fn oauth_error_description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Whether trying again later may succeed: the endpoint could not be
    /// reached, timed out, or answered 408, 429 or 5xx.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not get an OAuth access token")?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, " from the token endpoint {endpoint}")?;
        }
        if let Some(status) = self.status {
            write!(f, ": it answered HTTP {status}")?;
            if let Some(error) = &self.error {
                write!(f, " with error {error:?}")?;
            }
            if let Some(description) = &self.description {
                write!(f, " ({description})")?;
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for TokenError {}
