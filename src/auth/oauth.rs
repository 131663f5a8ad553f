//! OAuth 2.0 client-credentials grant (RFC 6749 §4.4) against the
//! organisation's identity provider.
//!
//! A small implementation on the client's own HTTP client rather than the
//! `oauth2` crate, whose HTTP integration is built on another reqwest
//! release: the exchange is one form POST and one JSON answer.
//!
//! * request: `POST {token_url}`, `Content-Type: application/x-www-form-urlencoded`,
//!   body `grant_type=client_credentials[&scope=…][&extra=…]`; the client
//!   authenticates with HTTP Basic (`client_secret_basic`, the default: id and
//!   secret form-encoded, then base64, as §2.3.1 says) or with `client_id` and
//!   `client_secret` in the body (`client_secret_post`);
//! * answer: `{"access_token":…,"token_type":"Bearer","expires_in":…}`; an
//!   error answer `{"error":…,"error_description":…}` becomes a
//!   [`TokenError`] naming the endpoint, the status and those two fields.

use crate::auth::token::{AccessToken, TokenFuture, TokenProvider};
use crate::error::TokenError;
use crate::http::body;
use crate::http::plain;
use crate::http::proxy::ProxySetting;
use crate::limits::{MAX_TOKEN_ANSWER_BYTES, MAX_TOKEN_LIFETIME};
use crate::redact;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::time::Duration;
use url::Url;
use url::form_urlencoded;

/// The longest a token request may take, connection included.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a non-JSON error answer is kept in the error message.
const MAX_BODY_IN_ERROR: usize = 512;

/// Form fields the flow sets itself.
const RESERVED_PARAMS: [&str; 4] = ["grant_type", "scope", "client_id", "client_secret"];

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (`client_secret_basic`),
    /// the default and what RFC 6749 asks every server to support.
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form fields in the request body
    /// (`client_secret_post`), for identity providers that require it.
    RequestBody,
}

impl std::str::FromStr for ClientAuth {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<ClientAuth, crate::Error> {
        match s.to_ascii_lowercase().as_str() {
            "basic" | "client_secret_basic" => Ok(ClientAuth::Basic),
            "post" | "body" | "form" | "client_secret_post" => Ok(ClientAuth::RequestBody),
            other => Err(crate::Error::Config(format!(
                "unknown OAuth client authentication {other:?}: use \"basic\" (client_secret_basic) \
                 or \"post\" (client_secret_post)"
            ))),
        }
    }
}

/// An OAuth client registered with the identity provider, and where to get
/// its tokens: the client-credentials grant. Used with
/// [`Credentials::oauth`](crate::Credentials::oauth); the client fetches a
/// token at the first request, caches it, refreshes it before it expires
/// and once more when the server refuses it.
///
/// ```
/// use ccloud_kafka_rest::{ClientAuth, ClientCredentials, Credentials};
/// let oauth = ClientCredentials::new(
///     "https://login.example.com/oauth2/v2.0/token",
///     "my-client-id",
///     "my-client-secret",
/// )
/// .with_scope("api://kafka/.default")
/// .with_param("audience", "confluent")
/// .with_client_auth(ClientAuth::Basic);
/// let credentials = Credentials::oauth(oauth).with_identity_pool_id("pool-AbCd");
/// assert!(!format!("{credentials:?}").contains("my-client-secret"));
/// ```
#[derive(Clone)]
pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    params: Vec<(String, String)>,
    client_auth: ClientAuth,
}

impl ClientCredentials {
    /// A client id and secret, and the identity provider's token endpoint.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientCredentials {
        ClientCredentials {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            scope: None,
            params: Vec::new(),
            client_auth: ClientAuth::default(),
        }
    }

    /// The `scope` to ask for (space-separated when several).
    pub fn with_scope(mut self, scope: impl Into<String>) -> ClientCredentials {
        self.scope = Some(scope.into());
        self
    }

    /// Another form field for the token request, e.g. `audience` or
    /// `resource`, which some identity providers require.
    pub fn with_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> ClientCredentials {
        self.params.push((name.into(), value.into()));
        self
    }

    /// How the client authenticates to the token endpoint; HTTP Basic by
    /// default.
    pub fn with_client_auth(mut self, client_auth: ClientAuth) -> ClientCredentials {
        self.client_auth = client_auth;
        self
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The client id (not secret).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The scope asked for, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Checks the settings; `allow_http` allows a plain `http://` token
    /// endpoint that is not on loopback.
    pub(crate) fn validate(
        &self,
        allow_http: bool,
        proxy: &ProxySetting,
    ) -> Result<Url, crate::Error> {
        let config = |message: String| crate::Error::Config(message);
        if self.token_url.trim().is_empty() {
            return Err(config(
                "the OAuth token URL is empty; give the identity provider's token endpoint, \
                 e.g. https://login.example.com/oauth2/token"
                    .into(),
            ));
        }
        let url = Url::parse(&self.token_url).map_err(|e| {
            config(format!(
                "the OAuth token URL {:?} is not a URL ({e}); expected e.g. https://login.example.com/oauth2/token",
                redact::url(&self.token_url)
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config(
                "the OAuth token URL must not carry credentials; give the client id and secret separately"
                    .into(),
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => {
                if let Some(hop) = plain::clear_hop(&url, proxy) {
                    return Err(config(format!(
                        "refusing to send the OAuth client secret over plain http to {hop}; use an \
                         https token URL, or call with_credentials_over_http(true) if the network \
                         is trusted"
                    )));
                }
            }
            other => {
                return Err(config(format!(
                    "OAuth token URL scheme {other:?} is not supported; use https://"
                )));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(config("the OAuth client id is empty".into()));
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(config("the OAuth client secret is empty".into()));
        }
        for (name, _) in &self.params {
            if name.is_empty() {
                return Err(config("an extra OAuth form field has an empty name".into()));
            }
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(config(format!(
                    "the extra OAuth form field {name:?} is set by the client itself; use \
                     ClientCredentials::with_scope for the scope and the constructor for the client id and secret"
                )));
            }
        }
        Ok(url)
    }

    /// A provider fetching tokens with `http`.
    pub(crate) fn provider(
        &self,
        http: reqwest::Client,
        allow_http: bool,
        proxy: &ProxySetting,
    ) -> Result<ClientCredentialsProvider, crate::Error> {
        let url = self.validate(allow_http, proxy)?;
        Ok(ClientCredentialsProvider {
            config: self.clone(),
            endpoint: endpoint_name(&url),
            url,
            http,
        })
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let param_names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scope", &self.scope)
            .field("params", &param_names)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// The token URL as errors show it: without query or fragment.
fn endpoint_name(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Fetches tokens with the client-credentials grant.
pub(crate) struct ClientCredentialsProvider {
    config: ClientCredentials,
    url: Url,
    endpoint: String,
    http: reqwest::Client,
}

impl TokenProvider for ClientCredentialsProvider {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
}

impl ClientCredentialsProvider {
    fn error(&self, detail: impl Into<String>) -> TokenError {
        TokenError::new(detail).at_endpoint(&self.endpoint)
    }

    fn form(&self) -> String {
        let config = &self.config;
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &config.scope {
            form.append_pair("scope", scope);
        }
        for (name, value) in &config.params {
            form.append_pair(name, value);
        }
        if config.client_auth == ClientAuth::RequestBody {
            form.append_pair("client_id", &config.client_id);
            form.append_pair("client_secret", config.client_secret.expose_secret());
        }
        form.finish()
    }

    fn basic_authorization(&self) -> Option<HeaderValue> {
        let config = &self.config;
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!(
            "{}:{}",
            encode(&config.client_id),
            encode(config.client_secret.expose_secret())
        );
        let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair))).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Removes the client secret from text the endpoint sent back, in case
    /// it echoes the request.
    fn scrub(&self, text: &str) -> String {
        let secret = self.config.client_secret.expose_secret();
        if secret.is_empty() {
            return text.to_owned();
        }
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        text.replace(secret, "[redacted]")
            .replace(&encoded, "[redacted]")
    }

    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        tracing::debug!(endpoint = %self.endpoint, client_id = %self.config.client_id, "requesting an OAuth access token");
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(self.form());
        if self.config.client_auth == ClientAuth::Basic {
            let value = self.basic_authorization().ok_or_else(|| {
                self.error("the client id or secret cannot be sent in an HTTP header")
            })?;
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(|e| {
            let retriable = e.is_connect() || e.is_timeout() || e.is_request();
            self.error(format!("the request failed: {}", chain(e)))
                .with_retriable(retriable)
        })?;
        let status = response.status();
        let limited = body::read_limited(response, MAX_TOKEN_ANSWER_BYTES)
            .await
            .map_err(|e| {
                self.error(format!("reading the answer failed: {}", chain(e)))
                    .with_retriable(true)
            })?;
        if limited.overflowed && status.is_success() {
            return Err(self.error(format!(
                "it answered HTTP {} with a body longer than {MAX_TOKEN_ANSWER_BYTES} bytes \
                 (MAX_TOKEN_ANSWER_BYTES), which is not a token response",
                status.as_u16()
            )));
        }
        self.answer(status.as_u16(), &limited.bytes)
    }

    /// The token, or the error, in the endpoint's answer.
    pub(crate) fn answer(&self, status: u16, body: &[u8]) -> Result<AccessToken, TokenError> {
        if !(200..300).contains(&status) {
            let retriable = matches!(status, 408 | 429) || (500..600).contains(&status);
            let error = match serde_json::from_slice::<ErrorAnswer>(body) {
                Ok(answer) if answer.error.is_some() => {
                    self.error(hint(answer.error.as_deref())).answered(
                        status,
                        answer.error.map(|e| self.scrub(&e)),
                        answer.error_description.map(|d| self.scrub(&d)),
                    )
                }
                _ => {
                    let cut = &body[..body.len().min(MAX_BODY_IN_ERROR)];
                    let text = self.scrub(String::from_utf8_lossy(cut).trim());
                    self.error(text).answered(status, None, None)
                }
            };
            return Err(error.with_retriable(retriable));
        }
        let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
            // serde quotes what it could not read, which may echo the secret.
            self.error(format!(
                "it answered HTTP {} with a body that is not a token response ({})",
                status,
                self.scrub(&e.to_string())
            ))
        })?;
        let Some(token) = answer.access_token.filter(|t| !t.is_empty()) else {
            return Err(self.error(format!(
                "it answered HTTP {} without an access_token",
                status
            )));
        };
        if let Some(token_type) = &answer.token_type
            && !token_type.eq_ignore_ascii_case("bearer")
        {
            return Err(self.error(format!(
                "it issued a token of type {:?}; only bearer tokens are supported",
                self.scrub(token_type)
            )));
        }
        let token = AccessToken::new(token);
        Ok(match expires_in(answer.expires_in.as_ref()) {
            Some(lifetime) => token.with_lifetime(lifetime),
            None => token,
        })
    }
}

/// A transport error and its causes, without the URL (the endpoint is named
/// once, by the caller).
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `expires_in` as a number of seconds, or a string holding one (as some
/// providers send it), at most [`MAX_TOKEN_LIFETIME`]: a larger number,
/// infinity included, is that long. A negative or non-numeric one is
/// ignored (the lifetime is unknown).
fn expires_in(value: Option<&serde_json::Value>) -> Option<Duration> {
    let seconds: f64 = match value? {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    // Fails only for values too large for a Duration.
    let lifetime = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    Some(lifetime.min(MAX_TOKEN_LIFETIME))
}

/// What to check for the common OAuth errors.
fn hint(error: Option<&str>) -> &'static str {
    match error {
        Some("invalid_client") => {
            "check the client id and secret, and whether the provider expects them as HTTP Basic \
             or in the request body (ClientAuth)"
        }
        Some("unauthorized_client") => {
            "the client is not allowed to use the client-credentials grant"
        }
        Some("invalid_scope") => "check the scope",
        Some("invalid_request") => "check the token URL and the extra form fields",
        Some("unsupported_grant_type") => {
            "the endpoint does not support the client-credentials grant"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(config: ClientCredentials) -> ClientCredentialsProvider {
        let http = crate::ClientBuilder::new().http_client().unwrap();
        config.provider(http, false, &ProxySetting::Off).unwrap()
    }

    #[test]
    fn form_and_basic_follow_the_rfc() {
        let p = provider(
            ClientCredentials::new("https://idp.example/token", "id:1", "s&cret")
                .with_scope("a b")
                .with_param("audience", "x"),
        );
        assert_eq!(
            p.form(),
            "grant_type=client_credentials&scope=a+b&audience=x"
        );
        let basic = p.basic_authorization().unwrap();
        assert!(basic.is_sensitive());
        let encoded = basic.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "id%3A1:s%26cret");

        let p = provider(
            ClientCredentials::new("https://idp.example/token", "id", "secret")
                .with_client_auth(ClientAuth::RequestBody),
        );
        assert_eq!(
            p.form(),
            "grant_type=client_credentials&client_id=id&client_secret=secret"
        );
    }

    #[test]
    fn validation_says_what_is_wrong() {
        let check = |c: ClientCredentials| {
            c.validate(false, &ProxySetting::Off)
                .unwrap_err()
                .to_string()
        };
        assert!(check(ClientCredentials::new("", "id", "s")).contains("token URL is empty"));
        assert!(check(ClientCredentials::new("idp/token", "id", "s")).contains("not a URL"));
        assert!(
            check(ClientCredentials::new(
                "http://idp.example/token",
                "id",
                "s"
            ))
            .contains("plain http")
        );
        assert!(
            ClientCredentials::new("http://127.0.0.1:9/token", "id", "s")
                .validate(false, &ProxySetting::Off)
                .is_ok()
        );
        assert!(
            ClientCredentials::new("http://idp.example/token", "id", "s")
                .validate(true, &ProxySetting::Off)
                .is_ok()
        );
        assert!(check(ClientCredentials::new("https://idp/t", "", "s")).contains("client id"));
        assert!(check(ClientCredentials::new("https://idp/t", "id", "")).contains("secret"));
        assert!(
            check(ClientCredentials::new("https://u:p@idp/t", "id", "s"))
                .contains("must not carry credentials")
        );
        assert!(
            check(ClientCredentials::new("https://idp/t", "id", "s").with_param("scope", "x"))
                .contains("with_scope")
        );
    }

    #[test]
    fn expires_in_as_number_or_string() {
        use serde_json::json;
        assert_eq!(
            expires_in(Some(&json!(3600))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            expires_in(Some(&json!("60"))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(expires_in(Some(&json!(-1))), None);
        assert_eq!(expires_in(None), None);
    }

    #[test]
    fn absurd_expires_in_is_capped_without_panicking() {
        use serde_json::json;
        for value in [
            json!(1e20),
            json!(u64::MAX),
            json!(f64::MAX),
            json!(86401),
            json!("1e20"),
            json!("inf"),
            json!("infinity"),
            json!("1e400"),
        ] {
            assert_eq!(
                expires_in(Some(&value)),
                Some(MAX_TOKEN_LIFETIME),
                "{value}"
            );
        }
        for value in [
            json!(-1e20),
            json!("-inf"),
            json!("NaN"),
            json!("-0.5"),
            json!(true),
        ] {
            assert_eq!(expires_in(Some(&value)), None, "{value}");
        }
        assert_eq!(
            expires_in(Some(&json!(0.25))),
            Some(Duration::from_millis(250))
        );
        assert_eq!(expires_in(Some(&json!(-0.0))), Some(Duration::ZERO));
    }

    #[test]
    fn an_answer_echoing_the_secret_keeps_it_out_of_the_error() {
        let p = provider(ClientCredentials::new(
            "https://idp/t",
            "id",
            "s3cret-value",
        ));
        for body in [
            r#""bad s3cret-value""#,
            r#"{"access_token":"t","token_type":"s3cret-value"}"#,
            r#"{"access_token":["s3cret-value"]}"#,
        ] {
            let error = p.answer(200, body.as_bytes()).unwrap_err().to_string();
            assert!(!error.contains("s3cret-value"), "{body}: {error}");
        }
    }

    #[test]
    fn scrub_removes_the_secret_plain_and_encoded() {
        let p = provider(ClientCredentials::new("https://idp/t", "id", "a b&c"));
        assert_eq!(
            p.scrub("got a b&c and a+b%26c"),
            "got [redacted] and [redacted]"
        );
    }
}
