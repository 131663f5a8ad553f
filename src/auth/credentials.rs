//! Credentials, and the headers they become.

use crate::auth::Authenticator;
use crate::auth::oauth::ClientCredentials;
use crate::auth::token::{TokenCache, TokenProvider};
use crate::error::Error;
use crate::http::proxy::ProxySetting;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::Arc;

/// Header naming the identity pool of an OAuth bearer token.
const IDENTITY_POOL_HEADER: HeaderName = HeaderName::from_static("confluent-identity-pool-id");

/// How the client proves who it is. Secrets are held in [`secrecy`] types and
/// never appear in `Debug` output or errors.
///
/// ```
/// use ccloud_kafka_rest::{ClientCredentials, Credentials};
/// let api_key = Credentials::api_key("ABCDEFGH12345678", "s3cr3t");
/// let static_token = Credentials::bearer_token("eyJhbGciOi...").with_identity_pool_id("pool-AbCd");
/// let oauth = Credentials::oauth(ClientCredentials::new(
///     "https://login.example.com/oauth2/token",
///     "client-id",
///     "client-s3cr3t",
/// ))
/// .with_identity_pool_id("pool-AbCd");
/// assert!(!format!("{api_key:?} {oauth:?}").contains("s3cr3t"));
/// # let _ = static_token;
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
    /// Used as is until the server refuses it; see [`Credentials::OAuth`] and
    /// [`Credentials::TokenProvider`] for tokens that are renewed.
    BearerToken {
        /// The token.
        token: SecretString,
        /// Sent as `Confluent-Identity-Pool-Id` when set.
        identity_pool_id: Option<String>,
    },
    /// An OAuth client of the organisation's identity provider: access
    /// tokens come from its token endpoint (client-credentials grant), are
    /// cached, refreshed before they expire, and refreshed once when the
    /// server refuses one.
    OAuth {
        /// The client and its token endpoint.
        client: ClientCredentials,
        /// Sent as `Confluent-Identity-Pool-Id` when set.
        identity_pool_id: Option<String>,
    },
    /// Access tokens from any [`TokenProvider`], cached and refreshed like
    /// those of [`Credentials::OAuth`].
    TokenProvider {
        /// The source of tokens.
        provider: Arc<dyn TokenProvider>,
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

    /// Tokens fetched from an identity provider with the client-credentials
    /// grant; see [`ClientCredentials`].
    pub fn oauth(client: ClientCredentials) -> Credentials {
        Credentials::OAuth {
            client,
            identity_pool_id: None,
        }
    }

    /// Tokens from a [`TokenProvider`] of your own, e.g. a cloud's workload
    /// identity.
    pub fn token_provider(provider: Arc<dyn TokenProvider>) -> Credentials {
        Credentials::TokenProvider {
            provider,
            identity_pool_id: None,
        }
    }

    /// Sets the identity pool of bearer tokens (static, OAuth or from a
    /// provider); no effect on other kinds.
    pub fn with_identity_pool_id(self, pool: impl Into<String>) -> Credentials {
        let pool = Some(pool.into());
        match self {
            Credentials::BearerToken { token, .. } => Credentials::BearerToken {
                token,
                identity_pool_id: pool,
            },
            Credentials::OAuth { client, .. } => Credentials::OAuth {
                client,
                identity_pool_id: pool,
            },
            Credentials::TokenProvider { provider, .. } => Credentials::TokenProvider {
                provider,
                identity_pool_id: pool,
            },
            other => other,
        }
    }

    /// Whether any credentials are set.
    pub fn is_none(&self) -> bool {
        matches!(self, Credentials::None)
    }

    /// The identity pool id, for the kinds that have one.
    fn identity_pool_id(&self) -> Option<&str> {
        match self {
            Credentials::BearerToken {
                identity_pool_id, ..
            }
            | Credentials::OAuth {
                identity_pool_id, ..
            }
            | Credentials::TokenProvider {
                identity_pool_id, ..
            } => identity_pool_id.as_deref(),
            _ => None,
        }
    }

    /// What authenticates each request. `http` carries the requests to an
    /// OAuth token endpoint; `allow_http` allows that endpoint on plain
    /// `http://` off loopback.
    pub(crate) fn authenticator(
        &self,
        http: &reqwest::Client,
        allow_http: bool,
        proxy: &ProxySetting,
    ) -> Result<Authenticator, Error> {
        let mut headers = HeaderMap::new();
        let invalid = |what: &str| {
            Error::Config(format!(
                "the {what} contains characters that cannot be sent in an HTTP header"
            ))
        };
        let mut tokens = None;
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
            Credentials::BearerToken { token, .. } => {
                if token.expose_secret().is_empty() {
                    return Err(Error::Config("the bearer token is empty".into()));
                }
                let value = format!("Bearer {}", token.expose_secret());
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&value).ok_or_else(|| invalid("bearer token"))?,
                );
            }
            Credentials::OAuth { client, .. } => {
                let provider = client.provider(http.clone(), allow_http, proxy)?;
                tokens = Some(Arc::new(TokenCache::new(Arc::new(provider))));
            }
            Credentials::TokenProvider { provider, .. } => {
                tokens = Some(Arc::new(TokenCache::new(Arc::clone(provider))));
            }
        }
        if let Some(pool) = self.identity_pool_id() {
            if pool.trim().is_empty() {
                return Err(Error::Config(
                    "the identity pool id is empty; give the pool's id, e.g. pool-AbCd, or leave it unset"
                        .into(),
                ));
            }
            let value = HeaderValue::from_str(pool).map_err(|_| invalid("identity pool id"))?;
            headers.insert(IDENTITY_POOL_HEADER, value);
        }
        Ok(Authenticator::new(headers, tokens))
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
            Credentials::OAuth {
                client,
                identity_pool_id,
            } => f
                .debug_struct("OAuth")
                .field("client", client)
                .field("identity_pool_id", identity_pool_id)
                .finish(),
            Credentials::TokenProvider {
                identity_pool_id, ..
            } => f
                .debug_struct("TokenProvider")
                .field("provider", &"[custom]")
                .field("identity_pool_id", identity_pool_id)
                .finish(),
        }
    }
}
