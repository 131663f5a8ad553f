//! Request authentication (HTTP Basic API keys, bearer tokens, tokens issued
//! by the emulator's OAuth endpoint) and topic ACLs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use super::oauth::{DEFAULT_TOKEN_LIFETIME, OAuthServer};
use super::secret::constant_time_eq;

/// The header Confluent Cloud uses to name the identity pool of an OAuth token.
pub(crate) const IDENTITY_POOL_HEADER: &str = "confluent-identity-pool-id";

/// Configured credentials and per-principal allow-lists.
pub(crate) struct AuthConfig {
    api_keys: HashMap<String, String>,
    bearer_tokens: HashMap<String, (String, Option<String>)>,
    acls: HashMap<String, HashSet<String>>,
    /// The OAuth token endpoint and the tokens it issued.
    pub oauth: OAuthServer,
    /// Requests refused for their credentials.
    refused: AtomicU64,
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// No credentials are configured, so every request is accepted.
    Anonymous,
    /// An authenticated principal.
    Named(String),
}

impl AuthConfig {
    pub fn new(
        api_keys: HashMap<String, String>,
        bearer_tokens: HashMap<String, (String, Option<String>)>,
        acls: HashMap<String, HashSet<String>>,
    ) -> AuthConfig {
        AuthConfig {
            api_keys,
            bearer_tokens,
            acls,
            oauth: OAuthServer::new(HashMap::new(), DEFAULT_TOKEN_LIFETIME),
            refused: AtomicU64::new(0),
        }
    }

    /// Adds an OAuth token endpoint.
    pub fn with_oauth(mut self, oauth: OAuthServer) -> AuthConfig {
        self.oauth = oauth;
        self
    }

    fn open(&self) -> bool {
        self.api_keys.is_empty() && self.bearer_tokens.is_empty() && !self.oauth.has_clients()
    }

    /// How many requests were refused for their credentials.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Checks the request's credentials. `None` means authentication failed.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Principal> {
        let principal = self.check(headers);
        if principal.is_none() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        principal
    }

    fn check(&self, headers: &HeaderMap) -> Option<Principal> {
        if self.open() {
            return Some(Principal::Anonymous);
        }
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
        let (scheme, credentials) = value.split_once(' ')?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(credentials).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (key, secret) = decoded.split_once(':')?;
            let expected = self.api_keys.get(key)?;
            constant_time_eq(expected.as_bytes(), secret.as_bytes())
                .then(|| Principal::Named(key.to_owned()))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let sent_pool = headers
                .get(IDENTITY_POOL_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            if let Some(checked) = self.oauth.check(credentials, sent_pool) {
                return match checked {
                    Ok(principal) => Some(Principal::Named(principal)),
                    Err(refusal) => {
                        tracing::debug!(?refusal, "bearer token refused");
                        None
                    }
                };
            }
            let (principal, pool) = self.bearer_tokens.get(credentials)?;
            if let Some(pool) = pool {
                let sent = headers.get(IDENTITY_POOL_HEADER)?.to_str().ok()?.trim();
                if sent != pool {
                    return None;
                }
            }
            Some(Principal::Named(principal.clone()))
        } else {
            None
        }
    }

    /// Whether the principal may produce to the topic.
    pub fn may_produce(&self, principal: &Principal, topic: &str) -> bool {
        match principal {
            Principal::Anonymous => true,
            Principal::Named(name) => self
                .acls
                .get(name)
                .is_none_or(|allowed| allowed.contains(topic)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn config() -> AuthConfig {
        let mut keys = HashMap::new();
        keys.insert("key".to_owned(), "secret".to_owned());
        let mut tokens = HashMap::new();
        tokens.insert("tok".to_owned(), ("alice".to_owned(), None));
        tokens.insert(
            "pooled".to_owned(),
            ("bob".to_owned(), Some("pool-1".to_owned())),
        );
        let mut acls = HashMap::new();
        acls.insert("key".to_owned(), HashSet::from(["demo".to_owned()]));
        AuthConfig::new(keys, tokens, acls)
    }

    fn headers(auth: &str, pool: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        if let Some(pool) = pool {
            h.insert(IDENTITY_POOL_HEADER, HeaderValue::from_str(pool).unwrap());
        }
        h
    }

    #[test]
    fn basic_and_bearer() {
        let c = config();
        let basic = format!("Basic {}", STANDARD.encode("key:secret"));
        assert_eq!(
            c.authenticate(&headers(&basic, None)),
            Some(Principal::Named("key".into()))
        );
        let wrong = format!("Basic {}", STANDARD.encode("key:nope"));
        assert_eq!(c.authenticate(&headers(&wrong, None)), None);
        assert_eq!(
            c.authenticate(&headers("Bearer tok", None)),
            Some(Principal::Named("alice".into()))
        );
        assert_eq!(c.authenticate(&headers("Bearer pooled", None)), None);
        assert_eq!(
            c.authenticate(&headers("Bearer pooled", Some("pool-2"))),
            None
        );
        assert_eq!(
            c.authenticate(&headers("bearer pooled", Some("pool-1"))),
            Some(Principal::Named("bob".into()))
        );
        assert_eq!(c.authenticate(&HeaderMap::new()), None);
    }

    #[test]
    fn acls() {
        let c = config();
        assert!(c.may_produce(&Principal::Named("key".into()), "demo"));
        assert!(!c.may_produce(&Principal::Named("key".into()), "other"));
        assert!(c.may_produce(&Principal::Named("alice".into()), "other"));
    }
}
