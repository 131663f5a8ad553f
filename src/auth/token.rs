//! Access tokens: the provider trait users implement, and the cache that
//! stands between a client and its provider.
//!
//! The cache hands out the current token while it is fresh, refreshes it
//! shortly before it expires (60 s before, or a tenth of its lifetime when
//! that is shorter) and makes sure that only one fetch is in flight however
//! many requests are waiting for a token: the others wait for that fetch and
//! share its outcome, success or failure.

use crate::error::TokenError;
use crate::limits::{MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The future a [`TokenProvider`] returns.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'a>>;

/// A source of OAuth access tokens, e.g. a cloud's workload identity, a
/// token file written by a sidecar, or a company's own token service. The
/// client calls [`fetch_token`](TokenProvider::fetch_token) only when it
/// needs a new token: at the first request, shortly before the current token
/// expires, and after the server refused the current token. Tokens are cached
/// in between, and concurrent requests share one fetch.
///
/// The built-in client-credentials flow is [`ClientCredentials`](crate::ClientCredentials);
/// plug any other source in with [`Credentials::token_provider`](crate::Credentials::token_provider):
///
/// ```
/// use ccloud_kafka_rest::{AccessToken, Credentials, TokenError, TokenFuture, TokenProvider};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// struct TokenFile(std::path::PathBuf);
///
/// impl TokenProvider for TokenFile {
///     fn fetch_token(&self) -> TokenFuture<'_> {
///         Box::pin(async move {
///             let token = tokio::fs::read_to_string(&self.0).await.map_err(|e| {
///                 TokenError::new(format!("could not read {}: {e}", self.0.display()))
///             })?;
///             Ok(AccessToken::new(token.trim()).with_lifetime(Duration::from_secs(300)))
///         })
///     }
/// }
///
/// let credentials = Credentials::token_provider(Arc::new(TokenFile("/var/run/token".into())))
///     .with_identity_pool_id("pool-AbCd");
/// # let _ = credentials;
/// ```
pub trait TokenProvider: Send + Sync {
    /// Fetches a new access token.
    fn fetch_token(&self) -> TokenFuture<'_>;
}

/// An access token and how long it stays valid. The token never appears in
/// `Debug` output.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    lifetime: Option<Duration>,
    received: Instant,
}

impl AccessToken {
    /// A token whose lifetime is unknown: it is used until the server
    /// refuses it.
    pub fn new(token: impl Into<String>) -> AccessToken {
        AccessToken {
            secret: SecretString::from(token.into()),
            lifetime: None,
            received: Instant::now(),
        }
    }

    /// The token is valid for `lifetime` from now (OAuth's `expires_in`), at
    /// most [`MAX_TOKEN_LIFETIME`]: a longer lifetime is cut to it, so the
    /// token is refreshed at least daily. A lifetime under
    /// [`MIN_TOKEN_LIFETIME`] (`expires_in: 0`, say) is used as that long, so
    /// that a token is not fetched for every request.
    pub fn with_lifetime(mut self, lifetime: Duration) -> AccessToken {
        self.received = Instant::now();
        self.lifetime = Some(lifetime.min(MAX_TOKEN_LIFETIME));
        self
    }

    /// The token is valid until `expiry` (a JWT's `exp`, say), at most
    /// [`MAX_TOKEN_LIFETIME`] from now. A time in the past makes a token
    /// that is already expired.
    pub fn with_expiry(self, expiry: SystemTime) -> AccessToken {
        let lifetime = expiry
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        self.with_lifetime(lifetime)
    }

    /// How long the token was valid for when it was received, if known
    /// (at most [`MAX_TOKEN_LIFETIME`]).
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    pub(crate) fn secret(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The refresh margin: 60 s before expiry, or a tenth of the lifetime when
/// that is shorter.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(60))
}

/// After a failed refresh, while the current token is still valid, another
/// refresh is not tried for this long.
const RETRY_FAILED_REFRESH_AFTER: Duration = Duration::from_secs(1);

/// A token ready to be sent: its `Authorization` value and its deadlines.
#[derive(Clone)]
struct Cached {
    header: HeaderValue,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

impl Cached {
    fn from_token(token: &AccessToken) -> Result<Cached, TokenError> {
        let secret = token.secret();
        if secret.is_empty() {
            return Err(TokenError::new("the access token is empty"));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| {
            TokenError::new(
                "the access token contains characters that cannot be sent in an HTTP header",
            )
        })?;
        header.set_sensitive(true);
        // A lifetime under a second would have every request fetch a token.
        let lifetime = token
            .lifetime
            .map(|lifetime| lifetime.max(MIN_TOKEN_LIFETIME));
        // A deadline past what the clock can represent: the token is used
        // until the server refuses it, as one of unknown lifetime.
        let expires_at = lifetime.and_then(|lifetime| token.received.checked_add(lifetime));
        let refresh_at = expires_at.zip(lifetime).map(|(at, lifetime)| {
            at.checked_sub(refresh_margin(lifetime))
                .unwrap_or(token.received)
        });
        Ok(Cached {
            header,
            refresh_at,
            expires_at,
        })
    }

    fn fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }

    fn sendable(&self) -> (HeaderValue, Option<Instant>) {
        (self.header.clone(), self.expires_at)
    }

    fn usable(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

#[derive(Default)]
struct CacheState {
    current: Option<Cached>,
    /// Fetches finished so far.
    fetches: u64,
    /// The error of the latest fetch, if it failed.
    last_error: Option<TokenError>,
    last_failure: Option<Instant>,
}

/// Caches a provider's tokens; see the module documentation.
pub(crate) struct TokenCache {
    provider: Arc<dyn TokenProvider>,
    state: Mutex<CacheState>,
    /// Held while a fetch is in flight.
    fetching: tokio::sync::Mutex<()>,
}

impl TokenCache {
    pub(crate) fn new(provider: Arc<dyn TokenProvider>) -> TokenCache {
        TokenCache {
            provider,
            state: Mutex::new(CacheState::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Authorization` value for the next request, fetching a token
    /// when there is none or the current one is due for refresh.
    #[cfg(test)]
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, TokenError> {
        self.authorization_until().await.map(|(header, _)| header)
    }

    /// The same, with the time the token expires, when it does.
    pub(crate) async fn authorization_until(
        &self,
    ) -> Result<(HeaderValue, Option<Instant>), TokenError> {
        let seen = {
            let state = self.state();
            if let Some(current) = &state.current
                && current.fresh(Instant::now())
            {
                return Ok(current.sendable());
            }
            state.fetches
        };
        let _fetching = self.fetching.lock().await;
        {
            let state = self.state();
            let now = Instant::now();
            let current = state.current.as_ref();
            // Another request refreshed it while this one waited.
            if let Some(current) = current
                && current.fresh(now)
            {
                return Ok(current.sendable());
            }
            let usable = current.filter(|c| c.usable(now));
            // The fetch this request waited for failed: share its outcome
            // rather than asking again at once.
            if state.fetches != seen
                && let Some(error) = &state.last_error
            {
                return match usable {
                    Some(current) => Ok(current.sendable()),
                    None => Err(error.clone()),
                };
            }
            // A refresh failed a moment ago: keep using the token while it lasts.
            if let Some(current) = usable
                && state.last_failure.is_some_and(|at| {
                    now.saturating_duration_since(at) < RETRY_FAILED_REFRESH_AFTER
                })
            {
                return Ok(current.sendable());
            }
        }
        tracing::debug!("fetching an OAuth access token");
        let fetched = self
            .provider
            .fetch_token()
            .await
            .and_then(|token| Ok((Cached::from_token(&token)?, token.lifetime)));
        let mut state = self.state();
        state.fetches += 1;
        match fetched {
            Ok((cached, lifetime)) => {
                tracing::debug!(?lifetime, "received an OAuth access token");
                state.current = Some(cached.clone());
                state.last_error = None;
                state.last_failure = None;
                Ok(cached.sendable())
            }
            Err(error) => {
                let now = Instant::now();
                state.last_error = Some(error.clone());
                state.last_failure = Some(now);
                match &state.current {
                    Some(current) if current.usable(now) => {
                        tracing::warn!(
                            %error,
                            "refreshing the OAuth access token failed; using the current one until it expires"
                        );
                        Ok(current.sendable())
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// Forgets the current token so that the next request fetches a new
    /// one. With `rejected`, only when the current token is that one: a
    /// refusal of a token already replaced changes nothing.
    pub(crate) fn invalidate(&self, rejected: Option<&HeaderValue>) {
        let mut state = self.state();
        let matches = match (&state.current, rejected) {
            (Some(current), Some(rejected)) => current.header == rejected,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if matches {
            tracing::debug!(
                "the OAuth access token was refused; the next request fetches a new one"
            );
            state.current = None;
            state.last_failure = None;
        }
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("TokenCache")
            .field("has_token", &state.current.is_some())
            .field("fetches", &state.fetches)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting {
        calls: AtomicU32,
        lifetime: Option<Duration>,
        fail: bool,
    }

    impl TokenProvider for Counting {
        fn fetch_token(&self) -> TokenFuture<'_> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if self.fail {
                    return Err(TokenError::new("no"));
                }
                let token = AccessToken::new(format!("token-{n}"));
                Ok(match self.lifetime {
                    Some(lifetime) => token.with_lifetime(lifetime),
                    None => token,
                })
            })
        }
    }

    fn cache(lifetime: Option<Duration>, fail: bool) -> (Arc<Counting>, Arc<TokenCache>) {
        let provider = Arc::new(Counting {
            calls: AtomicU32::new(0),
            lifetime,
            fail,
        });
        let cache = Arc::new(TokenCache::new(provider.clone()));
        (provider, cache)
    }

    #[test]
    fn margin_is_a_tenth_of_the_lifetime_up_to_a_minute() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3)),
            Duration::from_millis(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let (provider, cache) = cache(Some(Duration::from_secs(3600)), false);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.authorization().await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), "Bearer token-1");
        }
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_failure() {
        let (provider, cache) = cache(None, true);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.authorization().await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_err());
        }
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_ahead_of_expiry() {
        let (provider, cache) = cache(Some(Duration::from_secs(2)), false);
        assert_eq!(cache.authorization().await.unwrap(), "Bearer token-1");
        tokio::time::sleep(Duration::from_millis(1550)).await;
        assert_eq!(cache.authorization().await.unwrap(), "Bearer token-1");
        // Within the last 200 ms (a tenth of 2 s), before expiry.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(cache.authorization().await.unwrap(), "Bearer token-2");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn invalidating_a_replaced_token_changes_nothing() {
        let (provider, cache) = cache(None, false);
        let first = cache.authorization().await.unwrap();
        cache.invalidate(Some(&first));
        let second = cache.authorization().await.unwrap();
        assert_ne!(first, second);
        cache.invalidate(Some(&first));
        assert_eq!(cache.authorization().await.unwrap(), second);
        cache.invalidate(None);
        assert_eq!(cache.authorization().await.unwrap(), "Bearer token-3");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn absurd_lifetimes_are_capped_without_panicking() {
        let token = AccessToken::new("t").with_lifetime(Duration::MAX);
        assert_eq!(token.lifetime(), Some(MAX_TOKEN_LIFETIME));
        let cached = Cached::from_token(&token).unwrap();
        let now = Instant::now();
        assert!(cached.fresh(now) && cached.usable(now));
        let expires_at = cached.expires_at.unwrap();
        assert!(expires_at <= token.received + MAX_TOKEN_LIFETIME);
        assert!(expires_at > now + MAX_TOKEN_LIFETIME - Duration::from_secs(60));

        let far = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(1 << 40))
            .unwrap();
        let token = AccessToken::new("t").with_expiry(far);
        assert_eq!(token.lifetime(), Some(MAX_TOKEN_LIFETIME));

        // A lifetime past the clock's range (not reachable through the
        // setters) leaves the token without deadlines instead of panicking.
        let unbounded = AccessToken {
            lifetime: Some(Duration::MAX),
            ..AccessToken::new("t")
        };
        let cached = Cached::from_token(&unbounded).unwrap();
        assert_eq!((cached.refresh_at, cached.expires_at), (None, None));

        // The cache hands out such a token and keeps it.
        let (provider, cache) = cache(Some(Duration::MAX), false);
        assert_eq!(cache.authorization().await.unwrap(), "Bearer token-1");
        assert_eq!(cache.authorization().await.unwrap(), "Bearer token-1");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_and_errors_hold_no_token() {
        let token = AccessToken::new("sekrit-token").with_lifetime(Duration::from_secs(5));
        assert!(!format!("{token:?}").contains("sekrit"));
        let e = TokenError::new("boom")
            .at_endpoint("https://idp.example/token")
            .answered(
                401,
                Some("invalid_client".into()),
                Some("bad secret".into()),
            );
        assert_eq!(
            e.to_string(),
            "could not get an OAuth access token from the token endpoint https://idp.example/token: \
             it answered HTTP 401 with error \"invalid_client\" (bad secret): boom"
        );
    }
}
