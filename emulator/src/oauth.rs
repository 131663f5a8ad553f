//! An OAuth 2.0 token endpoint (client-credentials grant, RFC 6749 §4.4) and
//! the bearer tokens it issues, standing in for an organisation's identity
//! provider.
//!
//! `POST /oauth2/token` with `Content-Type: application/x-www-form-urlencoded`
//! and `grant_type=client_credentials`; the client authenticates with HTTP
//! Basic (id and secret form-encoded, as §2.3.1 says) or with `client_id` and
//! `client_secret` form fields. The answer is
//! `{"access_token":…,"token_type":"Bearer","expires_in":…}`, or an error
//! `{"error":…,"error_description":…}` (400 for a bad request, 401
//! `invalid_client` for a bad client). Tokens look like JWTs but are opaque
//! to the emulator: it remembers each one, with its principal, identity pool
//! and expiry, and checks produce requests against that.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use url::form_urlencoded;

use super::response::{ResponseBody, json_response};
use super::secret::constant_time_eq;
use super::sync::lock;

/// Where the token endpoint is served.
pub(crate) const TOKEN_PATH: &str = "/oauth2/token";

/// The largest token request body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Token lifetime unless the builder sets another.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// An OAuth client the token endpoint knows.
#[derive(Clone)]
pub(crate) struct OAuthClient {
    pub secret: String,
    pub principal: String,
    pub pool_id: String,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("secret", &"[redacted]")
            .field("principal", &self.principal)
            .field("pool_id", &self.pool_id)
            .finish()
    }
}

/// What the most recent token request carried (the client secret left out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRequest {
    /// The client id, from HTTP Basic or the `client_id` field.
    pub client_id: Option<String>,
    /// How the client authenticated: `"basic"`, `"body"` or `"none"`.
    pub client_auth: &'static str,
    /// The `grant_type` field.
    pub grant_type: Option<String>,
    /// The `scope` field.
    pub scope: Option<String>,
    /// Every other form field, in request order.
    pub params: Vec<(String, String)>,
}

struct Entry {
    client: OAuthClient,
    enabled: bool,
}

struct Issued {
    client_id: String,
    principal: String,
    pool_id: String,
    expires_at: Instant,
    revoked: bool,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Expired,
    Revoked,
    MissingPool,
    WrongPool,
}

/// The token endpoint's clients and the tokens it issued.
pub(crate) struct OAuthServer {
    clients: Mutex<HashMap<String, Entry>>,
    tokens: Mutex<HashMap<String, Issued>>,
    lifetime: Duration,
    issued: AtomicU64,
    seed: RandomState,
    last_request: Mutex<Option<TokenRequest>>,
}

impl OAuthServer {
    pub fn new(clients: HashMap<String, OAuthClient>, lifetime: Duration) -> OAuthServer {
        OAuthServer {
            clients: Mutex::new(
                clients
                    .into_iter()
                    .map(|(id, client)| {
                        (
                            id,
                            Entry {
                                client,
                                enabled: true,
                            },
                        )
                    })
                    .collect(),
            ),
            tokens: Mutex::new(HashMap::new()),
            lifetime,
            issued: AtomicU64::new(0),
            seed: RandomState::new(),
            last_request: Mutex::new(None),
        }
    }

    /// Whether any client is configured (then every request must authenticate).
    pub fn has_clients(&self) -> bool {
        !lock(&self.clients).is_empty()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    pub fn last_request(&self) -> Option<TokenRequest> {
        lock(&self.last_request).clone()
    }

    /// Every token issued so far is refused from now on.
    pub fn revoke_all(&self) {
        for issued in lock(&self.tokens).values_mut() {
            issued.revoked = true;
        }
    }

    /// Every token issued so far counts as expired from now on.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for issued in lock(&self.tokens).values_mut() {
            issued.expires_at = issued.expires_at.min(now);
        }
    }

    /// Allows or refuses a client at the token endpoint. Returns whether the
    /// client exists.
    pub fn set_enabled(&self, client_id: &str, enabled: bool) -> bool {
        match lock(&self.clients).get_mut(client_id) {
            Some(entry) => {
                entry.enabled = enabled;
                true
            }
            None => false,
        }
    }

    /// Checks a bearer token: `None` when this endpoint did not issue it,
    /// otherwise its principal or why it is refused.
    pub fn check(&self, token: &str, pool: Option<&str>) -> Option<Result<String, Refusal>> {
        let tokens = lock(&self.tokens);
        let issued = tokens.get(token)?;
        Some(if issued.revoked {
            Err(Refusal::Revoked)
        } else if Instant::now() >= issued.expires_at {
            Err(Refusal::Expired)
        } else {
            match pool {
                None => Err(Refusal::MissingPool),
                Some(pool) if pool != issued.pool_id => Err(Refusal::WrongPool),
                Some(_) => {
                    tracing::trace!(client_id = %issued.client_id, "bearer token accepted");
                    Ok(issued.principal.clone())
                }
            }
        })
    }

    /// A new token for a client, valid for the configured lifetime.
    fn issue(&self, client_id: &str, client: &OAuthClient) -> String {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = r#"{"alg":"RS256","typ":"JWT","kid":"kafka-rest-emulator"}"#;
        let claims = serde_json::json!({
            "iss": "kafka-rest-emulator",
            "sub": client.principal,
            "client_id": client_id,
            "identity_pool_id": client.pool_id,
            "iat": now,
            "exp": now.saturating_add(self.lifetime.as_secs()),
            "jti": format!("{n}-{:016x}", self.seed.hash_one((n, "jti"))),
        });
        let signature: Vec<u8> = (0..4u8)
            .flat_map(|i| self.seed.hash_one((n, i)).to_be_bytes())
            .collect();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        );
        lock(&self.tokens).insert(
            token.clone(),
            Issued {
                client_id: client_id.to_owned(),
                principal: client.principal.clone(),
                pool_id: client.pool_id.clone(),
                expires_at: deadline(self.lifetime),
                revoked: false,
            },
        );
        token
    }

    /// Answers a request to the token endpoint.
    pub async fn respond(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        if req.method() != Method::POST {
            let mut response = oauth_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "the token endpoint accepts POST only",
            );
            response
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| {
                media
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            );
        }
        let basic = req
            .headers()
            .get(AUTHORIZATION)
            .map(|value| basic_credentials(value.as_bytes()));
        let body = match Limited::new(req.into_body(), MAX_FORM_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the request body could not be read or is too large",
                );
            }
        };
        let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let body_id = field("client_id");
        let body_secret = field("client_secret");
        let (client_auth, credentials) = match (basic, &body_secret) {
            (Some(_), Some(_)) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the client authenticated in more than one way",
                );
            }
            (Some(Some((id, secret))), None) => ("basic", Some((id, secret))),
            (Some(None), None) => {
                return invalid_client(true, "the Authorization header is not valid HTTP Basic");
            }
            (None, Some(secret)) => ("body", body_id.clone().map(|id| (id, secret.clone()))),
            (None, None) => ("none", None),
        };
        *lock(&self.last_request) = Some(TokenRequest {
            client_id: credentials.as_ref().map(|(id, _)| id.clone()).or(body_id),
            client_auth,
            grant_type: field("grant_type"),
            scope: field("scope"),
            params: form
                .iter()
                .filter(|(n, _)| {
                    !matches!(
                        n.as_str(),
                        "client_id" | "client_secret" | "grant_type" | "scope"
                    )
                })
                .cloned()
                .collect(),
        });
        match field("grant_type").as_deref() {
            Some("client_credentials") => {}
            Some(other) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("grant type {other:?} is not supported; use client_credentials"),
                );
            }
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is missing",
                );
            }
        }
        let Some((client_id, secret)) = credentials else {
            return invalid_client(false, "no client authentication");
        };
        let client = {
            let clients = lock(&self.clients);
            match clients.get(&client_id) {
                Some(entry)
                    if entry.enabled
                        && constant_time_eq(entry.client.secret.as_bytes(), secret.as_bytes()) =>
                {
                    entry.client.clone()
                }
                _ => {
                    tracing::debug!(%client_id, "token request refused: unknown client, wrong secret or disabled client");
                    return invalid_client(client_auth == "basic", "Client authentication failed");
                }
            }
        };
        let token = self.issue(&client_id, &client);
        tracing::debug!(%client_id, lifetime = ?self.lifetime, "access token issued");
        let mut answer = serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime.as_secs(),
        });
        if let Some(scope) = field("scope") {
            answer["scope"] = serde_json::Value::String(scope);
        }
        let mut response = json_response(StatusCode::OK, Bytes::from(answer.to_string()));
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// When a token issued now for `lifetime` expires; a lifetime too long to
/// represent lasts as long as the emulator does.
fn deadline(lifetime: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(lifetime)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// The id and secret of an HTTP Basic header, form-decoded; `None` when the
/// header is not Basic or is malformed.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<ResponseBody> {
    let body = serde_json::json!({"error": error, "error_description": description});
    let mut response = json_response(status, Bytes::from(body.to_string()));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn invalid_client(basic: bool, description: &str) -> Response<ResponseBody> {
    let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if basic {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"kafka-rest-emulator\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(lifetime: Duration) -> OAuthServer {
        let mut clients = HashMap::new();
        clients.insert(
            "client-1".to_owned(),
            OAuthClient {
                secret: "s".into(),
                principal: "sa-1".into(),
                pool_id: "pool-1".into(),
            },
        );
        OAuthServer::new(clients, lifetime)
    }

    #[test]
    fn issued_tokens_are_checked_for_expiry_revocation_and_pool() {
        let oauth = server(Duration::from_secs(60));
        let client = lock(&oauth.clients)["client-1"].client.clone();
        let token = oauth.issue("client-1", &client);
        assert_eq!(token.split('.').count(), 3, "looks like a JWT");
        assert_eq!(
            oauth.check(&token, Some("pool-1")),
            Some(Ok("sa-1".to_owned()))
        );
        assert_eq!(oauth.check(&token, None), Some(Err(Refusal::MissingPool)));
        assert_eq!(
            oauth.check(&token, Some("pool-2")),
            Some(Err(Refusal::WrongPool))
        );
        assert_eq!(oauth.check("other", Some("pool-1")), None);
        oauth.expire_all();
        assert_eq!(
            oauth.check(&token, Some("pool-1")),
            Some(Err(Refusal::Expired))
        );
        let second = oauth.issue("client-1", &client);
        assert_ne!(token, second);
        oauth.revoke_all();
        assert_eq!(
            oauth.check(&second, Some("pool-1")),
            Some(Err(Refusal::Revoked))
        );
        assert_eq!(oauth.tokens_issued(), 2);
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("id%3A1:s%26cret+x"));
        assert_eq!(
            basic_credentials(header.as_bytes()),
            Some(("id:1".to_owned(), "s&cret x".to_owned()))
        );
        assert_eq!(basic_credentials(b"Bearer abc"), None);
    }

    #[test]
    fn debug_of_a_client_hides_its_secret() {
        let client = OAuthClient {
            secret: "hunter2".into(),
            principal: "p".into(),
            pool_id: "pool".into(),
        };
        assert!(!format!("{client:?}").contains("hunter2"));
    }
}
