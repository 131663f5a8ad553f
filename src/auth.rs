//! Credentials, and the headers they become.

use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// Header naming the identity pool of an OAuth bearer token.
pub(crate) const IDENTITY_POOL_HEADER: HeaderName =
    HeaderName::from_static("confluent-identity-pool-id");

/// How the client proves who it is. Secrets are held in [`secrecy`] types and
/// never appear in `Debug` output or errors.
///
/// ```
/// use ccloud_kafka_rest::Credentials;
/// let api_key = Credentials::api_key("ABCDEFGH12345678", "s3cr3t");
/// let oauth = Credentials::bearer_token("eyJhbGciOi...").with_identity_pool_id("pool-AbCd");
/// assert!(!format!("{api_key:?}").contains("s3cr3t"));
/// # let _ = oauth;
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// No credentials (a REST Proxy without authentication, or the emulator).
    #[default]
    None,
    /// A resource API key and its secret, sent with HTTP Basic authentication.
    ApiKey {
        /// The key id, used as the user name. Not secret.
        key: String,
        /// The secret, used as the password.
        secret: SecretString,
    },
    /// A bearer token, e.g. an OAuth access token from the organisation's
    /// identity provider, with the identity pool Confluent Cloud maps it to.
    BearerToken {
        /// The token.
        token: SecretString,
        /// Sent as `Confluent-Identity-Pool-Id` when set.
        identity_pool_id: Option<String>,
    },
}

impl Credentials {
    /// An API key and secret (HTTP Basic).
    pub fn api_key(key: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials::ApiKey {
            key: key.into(),
            secret: SecretString::from(secret.into()),
        }
    }

    /// A static bearer token.
    pub fn bearer_token(token: impl Into<String>) -> Credentials {
        Credentials::BearerToken {
            token: SecretString::from(token.into()),
            identity_pool_id: None,
        }
    }

    /// Sets the identity pool of a bearer token; no effect on other kinds.
    pub fn with_identity_pool_id(self, pool: impl Into<String>) -> Credentials {
        match self {
            Credentials::BearerToken { token, .. } => Credentials::BearerToken {
                token,
                identity_pool_id: Some(pool.into()),
            },
            other => other,
        }
    }

    /// Whether any credentials are set.
    pub fn is_none(&self) -> bool {
        matches!(self, Credentials::None)
    }

    /// The headers every request carries, computed once.
    pub(crate) fn authenticator(&self) -> Result<Authenticator, Error> {
        let mut headers = HeaderMap::new();
        let invalid = |what: &str| {
            Error::Config(format!(
                "the {what} contains characters that cannot be sent in an HTTP header"
            ))
        };
        match self {
            Credentials::None => {}
            Credentials::ApiKey { key, secret } => {
                if key.is_empty() || secret.expose_secret().is_empty() {
                    return Err(Error::Config(
                        "the API key and its secret must both be non-empty".into(),
                    ));
                }
                let pair = format!("{key}:{}", secret.expose_secret());
                let value = format!("Basic {}", STANDARD.encode(pair));
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&value).ok_or_else(|| invalid("API key"))?,
                );
            }
            Credentials::BearerToken {
                token,
                identity_pool_id,
            } => {
                if token.expose_secret().is_empty() {
                    return Err(Error::Config("the bearer token is empty".into()));
                }
                let value = format!("Bearer {}", token.expose_secret());
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&value).ok_or_else(|| invalid("bearer token"))?,
                );
                if let Some(pool) = identity_pool_id {
                    let value =
                        HeaderValue::from_str(pool).map_err(|_| invalid("identity pool id"))?;
                    headers.insert(IDENTITY_POOL_HEADER, value);
                }
            }
        }
        Ok(Authenticator { headers })
    }
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(value).ok()?;
    // Keeps the value out of Debug output and out of HTTP/2 header tables.
    header.set_sensitive(true);
    Some(header)
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::ApiKey { key, .. } => f
                .debug_struct("ApiKey")
                .field("key", key)
                .field("secret", &"[redacted]")
                .finish(),
            Credentials::BearerToken {
                identity_pool_id, ..
            } => f
                .debug_struct("BearerToken")
                .field("token", &"[redacted]")
                .field("identity_pool_id", identity_pool_id)
                .finish(),
        }
    }
}

/// What the generated client carries to authenticate each request: the
/// headers derived from the credentials (the secret ones marked sensitive).
#[derive(Clone, Default)]
pub(crate) struct Authenticator {
    headers: HeaderMap,
}

impl Authenticator {
    /// Adds the credential headers to a request.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Authenticator")
            .field("headers", &names)
            .finish()
    }
}
