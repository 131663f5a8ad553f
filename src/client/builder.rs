//! Client configuration: builder, environment, validation.

use crate::auth::oauth::{ClientAuth, ClientCredentials};
use crate::auth::{Authenticator, Credentials};
use crate::client::Client;
use crate::client::ServerKind;
use crate::env::{
    API_KEY, API_SECRET, BEARER_TOKEN, CA_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE, CLUSTER_ID,
    ENDPOINT, FLAVOUR, HTTP_VERSION, IDENTITY_POOL_ID, OAUTH_CLIENT_AUTH, OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET, OAUTH_SCOPE, OAUTH_TOKEN_URL, PROXY,
};
use crate::error::Error;
use crate::http::h2::{H2Pool, H2Settings, Target, Tunnel};
use crate::http::plain;
use crate::http::proxy::ProxySetting;
use crate::http::tls::{KeySource, PemSource, TlsSettings};
use crate::http::version::HttpVersion;
use crate::limits::{MAX_RECORD_BYTES_LIMIT, duration_problem};
use crate::redact;
use crate::retry::produce::ProduceRetries;
use secrecy::SecretString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Default maximum record size (key, value and headers): the REST Proxy's
/// Kafka producer refuses larger records.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Default number of records per `records:batch` request: the REST Proxy's
/// default limit. The server can be configured to accept up to 50.
pub const DEFAULT_MAX_BATCH_ENTRIES: usize = 10;

/// A stream's reads wait at least this long: a healthy server holds every
/// report behind one slow record for up to about 180 s (60 s blocked on
/// metadata or a full buffer, then up to 120 s of delivery).
pub(crate) const MIN_STREAM_READ_TIMEOUT: Duration = Duration::from_secs(200);
/// TCP keepalive: probes after this long idle, this often, this many.
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const TCP_KEEPALIVE_PROBES: u32 = 3;
/// Pooled connections are dropped after this long idle, before the
/// server's 30 s.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(25);
/// HTTP/2 pings on reqwest's connections: this often, idle or not, and a
/// connection whose ping goes unanswered this long is closed.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(20);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Default most streams (producer lanes) on one HTTP/2 connection. nginx
/// and Jetty allow 128 by default; a server's lower limit wins.
pub const DEFAULT_HTTP2_STREAMS_PER_CONNECTION: usize = 100;

/// Builds a [`Client`]. Settings given here win over the environment
/// ([`ClientBuilder::from_env`]), which wins over the defaults.
///
/// ```
/// use ccloud_kafka_rest::{Client, Credentials};
/// use std::time::Duration;
/// let client = Client::builder()
///     .with_endpoint("https://pkc-abc12.us-east-1.aws.confluent.cloud:443")
///     .with_cluster_id("lkc-abc12")
///     .with_credentials(Credentials::api_key("KEY", "SECRET"))
///     .with_connect_timeout(Duration::from_secs(5))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), ccloud_kafka_rest::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    pub(crate) endpoint: Option<String>,
    pub(crate) cluster_id: Option<String>,
    pub(crate) credentials: Credentials,
    pub(crate) flavour: ServerKind,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) user_agent: String,
    pub(crate) allow_credentials_over_http: bool,
    pub(crate) max_record_bytes: usize,
    pub(crate) max_batch_entries: usize,
    pub(crate) tls: TlsSettings,
    pub(crate) proxy: ProxySetting,
    pub(crate) produce_retries: Option<ProduceRetries>,
    pub(crate) http_version: HttpVersion,
    pub(crate) streams_per_connection: usize,
}

// By hand: an endpoint given with a password in it (refused when the client
// is built) must not show here either.
impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint.as_deref().map(redact::url))
            .field("cluster_id", &self.cluster_id)
            .field("credentials", &self.credentials)
            .field("flavour", &self.flavour)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("user_agent", &self.user_agent)
            .field(
                "allow_credentials_over_http",
                &self.allow_credentials_over_http,
            )
            .field("max_record_bytes", &self.max_record_bytes)
            .field("max_batch_entries", &self.max_batch_entries)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("produce_retries", &self.produce_retries)
            .field("http_version", &self.http_version)
            .field("streams_per_connection", &self.streams_per_connection)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoint: None,
            cluster_id: None,
            credentials: Credentials::None,
            flavour: ServerKind::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            user_agent: concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")).into(),
            allow_credentials_over_http: false,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_batch_entries: DEFAULT_MAX_BATCH_ENTRIES,
            tls: TlsSettings::default(),
            proxy: ProxySetting::default(),
            produce_retries: None,
            http_version: HttpVersion::default(),
            streams_per_connection: DEFAULT_HTTP2_STREAMS_PER_CONNECTION,
        }
    }
}

impl ClientBuilder {
    /// A builder with defaults and nothing from the environment.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A builder preset from the environment. Unset (or empty) variables
    /// leave the defaults; later `with_*` calls override what was read.
    ///
    /// * `KAFKA_REST_ENDPOINT`, `KAFKA_CLUSTER_ID`, `KAFKA_REST_FLAVOUR`
    ///   (`cloud` or `rest-proxy`);
    /// * credentials, the first kind that is set: an API key
    ///   (`KAFKA_API_KEY` with `KAFKA_API_SECRET`); an OAuth client
    ///   (`KAFKA_OAUTH_TOKEN_URL`, `KAFKA_OAUTH_CLIENT_ID`,
    ///   `KAFKA_OAUTH_CLIENT_SECRET`, optionally `KAFKA_OAUTH_SCOPE` and
    ///   `KAFKA_OAUTH_CLIENT_AUTH` = `basic` or `post`); a static token
    ///   (`KAFKA_REST_BEARER_TOKEN`). `KAFKA_IDENTITY_POOL_ID` goes with
    ///   either kind of token. Half of a kind (a key without its secret, a
    ///   token URL without a client id, ...) is an error naming what is missing;
    /// * TLS and proxy: `KAFKA_REST_CA_FILE` (extra CA certificates, PEM),
    ///   `KAFKA_REST_CLIENT_CERT_FILE` with `KAFKA_REST_CLIENT_KEY_FILE`
    ///   (mutual TLS, PEM), `KAFKA_REST_PROXY` (a proxy URL for every
    ///   connection).
    pub fn from_env() -> Result<ClientBuilder, Error> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`ClientBuilder::from_env`] over any source of variables.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ClientBuilder, Error> {
        let mut builder = ClientBuilder::new();
        builder.endpoint = lookup(ENDPOINT);
        builder.cluster_id = lookup(CLUSTER_ID);
        if let Some(flavour) = lookup(FLAVOUR) {
            builder.flavour = flavour.parse()?;
        }
        builder.credentials = match (lookup(API_KEY), lookup(API_SECRET)) {
            (Some(key), Some(secret)) => Credentials::api_key(key, secret),
            (Some(_), None) => {
                return Err(Error::Config(format!(
                    "{API_KEY} is set but {API_SECRET} is not; set both"
                )));
            }
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{API_SECRET} is set but {API_KEY} is not; set both"
                )));
            }
            (None, None) => match oauth_from_lookup(&lookup)? {
                Some(oauth) => with_pool(Credentials::oauth(oauth), &lookup),
                None => match lookup(BEARER_TOKEN) {
                    Some(token) => with_pool(Credentials::bearer_token(token), &lookup),
                    None => Credentials::None,
                },
            },
        };
        if let Some(path) = lookup(CA_FILE) {
            builder = builder.with_root_certificate_file(path);
        }
        match (lookup(CLIENT_CERT_FILE), lookup(CLIENT_KEY_FILE)) {
            (Some(cert), Some(key)) => builder = builder.with_client_certificate_files(cert, key),
            (Some(_), None) => {
                return Err(Error::Config(format!(
                    "{CLIENT_CERT_FILE} is set but {CLIENT_KEY_FILE} is not; set both"
                )));
            }
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{CLIENT_KEY_FILE} is set but {CLIENT_CERT_FILE} is not; set both"
                )));
            }
            (None, None) => {}
        }
        if let Some(proxy) = lookup(PROXY) {
            builder = builder.with_proxy(proxy);
        }
        if let Some(version) = lookup(HTTP_VERSION) {
            builder.http_version = HttpVersion::parse(&version).ok_or_else(|| {
                Error::Config(format!(
                    "{HTTP_VERSION}={version:?} is not an HTTP version setting: use negotiate, \
                     1.1 (HTTP/1.1 only) or 2 (HTTP/2 with prior knowledge, h2c on http://)"
                ))
            })?;
        }
        Ok(builder)
    }

    /// The cluster's REST endpoint, e.g.
    /// `https://pkc-abc12.us-east-1.aws.confluent.cloud:443`. A path ending in
    /// the flavour's prefix (`/kafka/v3` or `/v3`) is accepted too.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> ClientBuilder {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The cluster id, e.g. `lkc-abc12`.
    pub fn with_cluster_id(mut self, cluster_id: impl Into<String>) -> ClientBuilder {
        self.cluster_id = Some(cluster_id.into());
        self
    }

    /// The credentials.
    pub fn with_credentials(mut self, credentials: Credentials) -> ClientBuilder {
        self.credentials = credentials;
        self
    }

    /// Confluent Cloud (`/kafka/v3`, the default) or the REST Proxy (`/v3`).
    pub fn with_server_kind(mut self, kind: ServerKind) -> ClientBuilder {
        self.flavour = kind;
        self
    }

    /// Former name of [`with_server_kind`](Self::with_server_kind).
    #[deprecated(since = "0.2.0", note = "renamed to `with_server_kind`")]
    pub fn with_flavour(self, kind: ServerKind) -> ClientBuilder {
        self.with_server_kind(kind)
    }

    /// How long to wait for a connection (TCP and TLS): more than 0 and at
    /// most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION), checked by
    /// [`build`](Self::build). Default 10 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a read may wait for the server before the request fails:
    /// more than 0 and at most [`MAX_CONFIGURED_DURATION`](crate::MAX_CONFIGURED_DURATION), checked by
    /// [`build`](Self::build). Default 60 s. There is no total timeout:
    /// streams may live for hours.
    pub fn with_read_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.read_timeout = timeout;
        self
    }

    /// The `User-Agent` header. Default `ccloud-kafka-rest/<version>`.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> ClientBuilder {
        self.user_agent = user_agent.into();
        self
    }

    /// Allows sending credentials over plain `http://` to a host other than
    /// loopback. Off by default: credentials sent in clear can be read by
    /// anyone on the path.
    pub fn with_credentials_over_http(mut self, allow: bool) -> ClientBuilder {
        self.allow_credentials_over_http = allow;
        self
    }

    /// Former name of [`with_credentials_over_http`](Self::with_credentials_over_http).
    #[deprecated(since = "0.2.0", note = "renamed to `with_credentials_over_http`")]
    pub fn allow_credentials_over_http(self, allow: bool) -> ClientBuilder {
        self.with_credentials_over_http(allow)
    }

    /// The largest record (key, value and headers, in bytes) accepted before
    /// sending: 1 to [`MAX_RECORD_BYTES_LIMIT`], checked by
    /// [`build`](Self::build). Default 1 MiB.
    pub fn with_max_record_bytes(mut self, max: usize) -> ClientBuilder {
        self.max_record_bytes = max;
        self
    }

    /// Makes [`Client::produce`] retry retriable failures as `retries`
    /// says, with the streaming producer's policy. Off by default: the
    /// call then sends once and its error's class tells the caller what it
    /// may do.
    pub fn with_produce_retries(mut self, retries: ProduceRetries) -> ClientBuilder {
        self.produce_retries = Some(retries);
        self
    }

    /// The most records [`Client::produce_batch`] puts in one `records:batch`
    /// request: 1 to 50, default 10. Raise it only as far as the REST Proxy's
    /// own limit; [`ClientBuilder::build`] refuses values outside 1 to 50.
    pub fn with_max_batch_entries(mut self, max: usize) -> ClientBuilder {
        self.max_batch_entries = max;
        self
    }

    /// Which HTTP versions to speak to the REST endpoint; see
    /// [`HttpVersion`]. Default: HTTP/2 when the server offers it by ALPN,
    /// HTTP/1.1 otherwise.
    pub fn with_http_version(mut self, version: HttpVersion) -> ClientBuilder {
        self.http_version = version;
        self
    }

    /// HTTP/1.1 only, e.g. for a path whose HTTP/2 misbehaves:
    /// [`HttpVersion::Http1Only`].
    pub fn with_http1_only(self) -> ClientBuilder {
        self.with_http_version(HttpVersion::Http1Only)
    }

    /// HTTP/2 with prior knowledge (h2c on `http://`, as the REST Proxy
    /// serves): [`HttpVersion::Http2PriorKnowledge`].
    pub fn with_http2_prior_knowledge(self) -> ClientBuilder {
        self.with_http_version(HttpVersion::Http2PriorKnowledge)
    }

    /// The most producer streams (lanes) on one HTTP/2 connection, 1 to
    /// 1,000, default [`DEFAULT_HTTP2_STREAMS_PER_CONNECTION`]; the
    /// server's `SETTINGS_MAX_CONCURRENT_STREAMS` when lower. A lane that
    /// finds every connection full opens another.
    pub fn with_http2_streams_per_connection(mut self, streams: usize) -> ClientBuilder {
        self.streams_per_connection = streams;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more PEM
    /// `CERTIFICATE` blocks) in addition to the platform's roots, e.g. a
    /// private CA or a TLS-inspecting proxy's. May be called several times.
    pub fn with_root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> ClientBuilder {
        self.tls
            .extra_roots
            .push(PemSource::Bytes(pem.as_ref().to_vec()));
        self
    }

    /// Like [`with_root_certificate_pem`](Self::with_root_certificate_pem),
    /// with the PEM read from a file when the client is built.
    pub fn with_root_certificate_file(mut self, path: impl Into<PathBuf>) -> ClientBuilder {
        self.tls.extra_roots.push(PemSource::File(path.into()));
        self
    }

    /// A client certificate (PEM, the leaf first, then any intermediates)
    /// and its private key (PEM, PKCS#8, PKCS#1 or SEC1), presented when
    /// the server asks for one (mutual TLS). The key is held as a secret.
    pub fn with_client_certificate_pem(
        mut self,
        certificate_chain: impl AsRef<[u8]>,
        private_key: impl AsRef<[u8]>,
    ) -> ClientBuilder {
        let key = String::from_utf8_lossy(private_key.as_ref()).into_owned();
        self.tls.client_identity = Some((
            PemSource::Bytes(certificate_chain.as_ref().to_vec()),
            KeySource::Pem(SecretString::from(key)),
        ));
        self
    }

    /// Like [`with_client_certificate_pem`](Self::with_client_certificate_pem),
    /// with both read from files when the client is built.
    pub fn with_client_certificate_files(
        mut self,
        certificate_chain: impl Into<PathBuf>,
        private_key: impl Into<PathBuf>,
    ) -> ClientBuilder {
        self.tls.client_identity = Some((
            PemSource::File(certificate_chain.into()),
            KeySource::File(private_key.into()),
        ));
        self
    }

    /// Sends every connection (to the REST endpoint and to the OAuth token
    /// endpoint) through this proxy: `http://host:port` or
    /// `https://host:port`, with `user:password@` for a proxy that asks for
    /// Basic authentication. HTTPS traffic is tunnelled with `CONNECT`, so the
    /// proxy never sees the credentials or the records.
    ///
    /// Without this call the client follows the `HTTPS_PROXY`, `HTTP_PROXY`,
    /// `ALL_PROXY` and `NO_PROXY` environment variables, as reqwest does; the
    /// operating system's proxy settings (macOS, Windows) are not read.
    pub fn with_proxy(mut self, url: impl Into<String>) -> ClientBuilder {
        self.proxy = ProxySetting::Url(SecretString::from(url.into()));
        self
    }

    /// Connects directly, whatever the proxy environment variables say.
    pub fn without_proxy(mut self) -> ClientBuilder {
        self.proxy = ProxySetting::Off;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        Client::from_builder(self)
    }

    /// The HTTP client for one-record and batch requests.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, Error> {
        self.http_client_reading(Some(self.read_timeout), self.http_version)
    }

    /// The HTTP client for the token endpoint, when it differs from
    /// [`http_client`](Self::http_client)'s: prior knowledge is for the
    /// REST endpoint only.
    pub(crate) fn token_http_client(&self) -> Result<Option<reqwest::Client>, Error> {
        let version = self.http_version.for_token_endpoint();
        if version == self.http_version {
            return Ok(None);
        }
        self.http_client_reading(Some(self.read_timeout), version)
            .map(Some)
    }

    /// The HTTP client for the producer's streams that do not go on its own
    /// HTTP/2 connections (through a proxy, or when the server speaks only
    /// HTTP/1.1): no read timeout of its own, as the lane times reads out
    /// itself, no shorter than a healthy server may hold reports back.
    pub(crate) fn stream_http_client(&self) -> Result<reqwest::Client, Error> {
        let version = match self.http_version {
            HttpVersion::Http2PriorKnowledge => HttpVersion::Http2PriorKnowledge,
            _ => HttpVersion::Http1Only,
        };
        self.http_client_reading(None, version)
    }

    /// The producer's own HTTP/2 connections to `base_url`, unless streams
    /// go on HTTP/1.1 there: HTTP/1.1 forced, or a plain `http://` endpoint
    /// without prior knowledge. Through an HTTP proxy they go in its CONNECT
    /// tunnel; h2c through a proxy, and SOCKS proxies, are left to reqwest.
    pub(crate) fn stream_pool(&self, base_url: &str) -> Result<Option<H2Pool>, Error> {
        let Ok(url) = Url::parse(base_url) else {
            return Ok(None);
        };
        let h2_possible = match self.http_version {
            HttpVersion::Http1Only => false,
            HttpVersion::Negotiate => url.scheme() == "https",
            HttpVersion::Http2PriorKnowledge => true,
        };
        if !h2_possible {
            return Ok(None);
        }
        let via = match self.proxy.hop(&url) {
            None => None,
            Some(_) if url.scheme() != "https" => return Ok(None),
            Some(hop) => {
                let tls = crate::http::tls::client_config(&self.tls, HttpVersion::Http1Only)?;
                match Tunnel::of(hop, std::sync::Arc::new(tls)) {
                    Some(tunnel) => Some(tunnel),
                    None => return Ok(None),
                }
            }
        };
        let tls = crate::http::tls::client_config(&self.tls, self.http_version)?;
        let settings = H2Settings {
            streams_per_connection: self.streams_per_connection,
            connect_timeout: self.connect_timeout,
        };
        Ok(Target::of(&url, std::sync::Arc::new(tls), via)
            .map(|target| H2Pool::new(target, settings)))
    }

    fn http_client_reading(
        &self,
        read_timeout: Option<Duration>,
        version: HttpVersion,
    ) -> Result<reqwest::Client, Error> {
        // Never the generated constructor: its 15 s total timeout would cut
        // long-lived streams.
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http::tls::client_config(&self.tls, version)?)
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(HTTP2_PING_INTERVAL)
            .http2_keep_alive_timeout(HTTP2_PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            // A dead peer is noticed within about half a minute, whatever
            // the request waits for.
            .tcp_keepalive(TCP_KEEPALIVE_IDLE)
            .tcp_keepalive_interval(TCP_KEEPALIVE_INTERVAL)
            .tcp_keepalive_retries(TCP_KEEPALIVE_PROBES)
            // The server closes a connection idle for 30 s: a pooled one is
            // dropped first, so that no request lands on a closing socket.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // A compressor may hold reports back, and a streaming request
            // must never ask for it: off whatever features reqwest has.
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .user_agent(self.user_agent.clone());
        if let Some(timeout) = read_timeout {
            http = http.read_timeout(timeout);
        }
        http = match version {
            HttpVersion::Negotiate => http,
            HttpVersion::Http1Only => http.http1_only(),
            HttpVersion::Http2PriorKnowledge => http.http2_prior_knowledge(),
        };
        match &self.proxy {
            ProxySetting::Environment => {}
            ProxySetting::Off => http = http.no_proxy(),
            ProxySetting::Url(url) => {
                use secrecy::ExposeSecret;
                let shown = redact::url(url.expose_secret());
                let parsed = Url::parse(url.expose_secret()).map_err(|e| {
                    Error::Config(format!(
                        "the proxy {shown} is not a URL ({e}); expected e.g. http://proxy.example:3128"
                    ))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(Error::Config(format!(
                        "the proxy {shown} has scheme {:?}; use http:// or https://",
                        parsed.scheme()
                    )));
                }
                let proxy = reqwest::Proxy::all(parsed.as_str()).map_err(|e| {
                    Error::Config(format!(
                        "the proxy {shown} cannot be used: {}",
                        e.without_url()
                    ))
                })?;
                http = http.proxy(proxy);
            }
        }
        http.build()
            .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))
    }

    /// How long a stream waits for the next piece of its response.
    pub(crate) fn stream_read_timeout(&self) -> Duration {
        self.read_timeout.max(MIN_STREAM_READ_TIMEOUT)
    }

    /// What authenticates requests, with OAuth tokens fetched through `http`.
    pub(crate) fn authenticator(&self, http: &reqwest::Client) -> Result<Authenticator, Error> {
        self.credentials
            .authenticator(http, self.allow_credentials_over_http, &self.proxy)
    }

    /// The base URL of the v3 API: endpoint plus the flavour's prefix.
    pub(crate) fn base_url(&self) -> Result<String, Error> {
        let endpoint = self.endpoint.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "no endpoint: call with_endpoint(\"https://pkc-….confluent.cloud:443\") or set {ENDPOINT}"
            ))
        })?;
        let shown = redact::url(endpoint);
        let url = Url::parse(endpoint).map_err(|e| {
            Error::Config(format!(
                "endpoint {shown:?} is not a URL ({e}); expected e.g. https://pkc-abc12.us-east-1.aws.confluent.cloud:443"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            // reqwest would send it as a Basic header, and the URL is shown
            // in messages and Debug output.
            return Err(Error::Config(format!(
                "endpoint {shown:?} has a user name or password in it; give the endpoint without \
                 them and the API key with with_credentials(Credentials::api_key(key, secret)) \
                 (or {API_KEY} and {API_SECRET})"
            )));
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                if !self.credentials.is_none()
                    && !self.allow_credentials_over_http
                    && let Some(hop) = plain::clear_hop(&url, &self.proxy)
                {
                    return Err(Error::Config(format!(
                        "refusing to send credentials over plain http to {hop}; use https, \
                         or call with_credentials_over_http(true) if the network is trusted"
                    )));
                }
            }
            other => {
                return Err(Error::Config(format!(
                    "endpoint scheme {other:?} is not supported; use https:// (or http:// for a local server)"
                )));
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(format!(
                "endpoint {shown:?} must not have a query or fragment"
            )));
        }
        let prefix = self.flavour.path_prefix();
        let trimmed = url.as_str().trim_end_matches('/');
        if url.path().trim_end_matches('/').ends_with(prefix) {
            Ok(trimmed.to_owned())
        } else {
            Ok(format!("{trimmed}{prefix}"))
        }
    }

    /// Refuses timeouts and sizes that cannot work, naming the setter.
    pub(crate) fn check_limits(&self) -> Result<(), Error> {
        for (setter, timeout) in [
            ("with_connect_timeout", self.connect_timeout),
            ("with_read_timeout", self.read_timeout),
        ] {
            // Zero would fail every request; past the cap, deadlines overflow.
            if let Some(problem) = duration_problem(setter, timeout, false) {
                return Err(Error::Config(problem));
            }
        }
        if let Some(retries) = &self.produce_retries {
            retries.check()?;
        }
        if !(1..=1000).contains(&self.streams_per_connection) {
            return Err(Error::Config(format!(
                "with_http2_streams_per_connection({}) is out of range: it must be 1 to 1000",
                self.streams_per_connection
            )));
        }
        if !(1..=MAX_RECORD_BYTES_LIMIT).contains(&self.max_record_bytes) {
            return Err(Error::Config(format!(
                "with_max_record_bytes({}) is out of range: it must be 1 to {MAX_RECORD_BYTES_LIMIT} \
                 (MAX_RECORD_BYTES_LIMIT)",
                self.max_record_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn max_batch_entries(&self) -> Result<usize, Error> {
        match self.max_batch_entries {
            max @ 1..=50 => Ok(max),
            other => Err(Error::Config(format!(
                "with_max_batch_entries({other}) is out of range: the REST Proxy accepts 1 to 50 \
                 records per records:batch request (10 unless it is configured otherwise)"
            ))),
        }
    }

    pub(crate) fn cluster_id(&self) -> Result<&str, Error> {
        match self.cluster_id.as_deref() {
            Some(id) if !id.trim().is_empty() => Ok(id),
            _ => Err(Error::Config(format!(
                "no cluster id: call with_cluster_id(\"lkc-…\") or set {CLUSTER_ID}"
            ))),
        }
    }
}

/// Reads the OAuth client-credentials variables: `None` when none is set,
/// an error naming what is missing when only some are.
fn oauth_from_lookup(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ClientCredentials>, Error> {
    let url = lookup(OAUTH_TOKEN_URL);
    let id = lookup(OAUTH_CLIENT_ID);
    let secret = lookup(OAUTH_CLIENT_SECRET);
    let scope = lookup(OAUTH_SCOPE);
    let client_auth = lookup(OAUTH_CLIENT_AUTH);
    if url.is_none() && id.is_none() && secret.is_none() && scope.is_none() && client_auth.is_none()
    {
        return Ok(None);
    }
    let missing: Vec<&str> = [
        (OAUTH_TOKEN_URL, url.is_none()),
        (OAUTH_CLIENT_ID, id.is_none()),
        (OAUTH_CLIENT_SECRET, secret.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    let (Some(url), Some(id), Some(secret)) = (url, id, secret) else {
        return Err(Error::Config(format!(
            "OAuth settings are incomplete: {} not set; an OAuth client needs \
             {OAUTH_TOKEN_URL}, {OAUTH_CLIENT_ID} and {OAUTH_CLIENT_SECRET}",
            missing.join(" and ")
        )));
    };
    let mut oauth = ClientCredentials::new(url, id, secret);
    if let Some(scope) = scope {
        oauth = oauth.with_scope(scope);
    }
    if let Some(client_auth) = client_auth {
        let client_auth: ClientAuth = client_auth.parse().map_err(|e: Error| {
            Error::Config(format!("{OAUTH_CLIENT_AUTH}: {}", config_message(e)))
        })?;
        oauth = oauth.with_client_auth(client_auth);
    }
    Ok(Some(oauth))
}

fn config_message(e: Error) -> String {
    match e {
        Error::Config(message) => message,
        other => other.to_string(),
    }
}

fn with_pool(credentials: Credentials, lookup: &impl Fn(&str) -> Option<String>) -> Credentials {
    match lookup(IDENTITY_POOL_ID) {
        Some(pool) => credentials.with_identity_pool_id(pool),
        None => credentials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<ClientBuilder, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClientBuilder::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn environment_sets_endpoint_cluster_and_credentials() {
        let b = from(&[
            (ENDPOINT, "https://pkc-1.example:443"),
            (CLUSTER_ID, "lkc-1"),
            (API_KEY, "k"),
            (API_SECRET, "s"),
        ])
        .unwrap();
        assert_eq!(b.base_url().unwrap(), "https://pkc-1.example/kafka/v3");
        assert_eq!(b.cluster_id().unwrap(), "lkc-1");
        assert!(matches!(b.credentials, Credentials::ApiKey { ref key, .. } if key == "k"));
        // The builder overrides the environment.
        let b = b
            .with_cluster_id("lkc-2")
            .with_server_kind(ServerKind::RestProxy);
        assert_eq!(b.cluster_id().unwrap(), "lkc-2");
        assert_eq!(b.base_url().unwrap(), "https://pkc-1.example/v3");
    }

    #[test]
    fn half_an_api_key_is_an_error_naming_the_missing_variable() {
        let e = from(&[(API_KEY, "k")]).unwrap_err().to_string();
        assert!(e.contains(API_SECRET), "{e}");
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let e = ClientBuilder::new().base_url().unwrap_err().to_string();
        assert!(e.contains(ENDPOINT), "{e}");
        let e = ClientBuilder::new().cluster_id().unwrap_err().to_string();
        assert!(e.contains(CLUSTER_ID), "{e}");
    }

    #[test]
    fn credentials_over_plain_http_only_to_loopback() {
        let with = |endpoint: &str| {
            ClientBuilder::new()
                .with_endpoint(endpoint)
                .with_credentials(Credentials::api_key("k", "s"))
        };
        assert!(with("http://127.0.0.1:8082").base_url().is_ok());
        assert!(with("http://[::1]:8082").base_url().is_ok());
        assert!(with("http://localhost:8082").base_url().is_ok());
        let e = with("http://kafka.internal:8082")
            .base_url()
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http"), "{e}");
        assert!(
            with("http://kafka.internal:8082")
                .with_credentials_over_http(true)
                .base_url()
                .is_ok()
        );
        assert!(
            ClientBuilder::new()
                .with_endpoint("http://kafka.internal")
                .base_url()
                .is_ok()
        );
    }

    #[test]
    fn environment_sets_oauth_with_pool_and_says_what_is_missing() {
        let b = from(&[
            (OAUTH_TOKEN_URL, "https://idp.example/token"),
            (OAUTH_CLIENT_ID, "client"),
            (OAUTH_CLIENT_SECRET, "secret"),
            (OAUTH_SCOPE, "kafka"),
            (OAUTH_CLIENT_AUTH, "post"),
            (IDENTITY_POOL_ID, "pool-1"),
            (BEARER_TOKEN, "ignored: OAuth comes first"),
        ])
        .unwrap();
        let Credentials::OAuth {
            client,
            identity_pool_id,
        } = &b.credentials
        else {
            panic!("{:?}", b.credentials)
        };
        assert_eq!(client.token_url(), "https://idp.example/token");
        assert_eq!(client.client_id(), "client");
        assert_eq!(client.scope(), Some("kafka"));
        assert_eq!(identity_pool_id.as_deref(), Some("pool-1"));
        assert!(format!("{client:?}").contains("RequestBody"));

        let e = from(&[(OAUTH_TOKEN_URL, "https://idp.example/token")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(OAUTH_CLIENT_ID), "{e}");
        assert!(e.contains(OAUTH_CLIENT_SECRET), "{e}");
        let e = from(&[
            (OAUTH_TOKEN_URL, "https://idp.example/token"),
            (OAUTH_CLIENT_ID, "client"),
            (OAUTH_CLIENT_SECRET, "secret"),
            (OAUTH_CLIENT_AUTH, "jwt"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains(OAUTH_CLIENT_AUTH), "{e}");

        // An API key comes before OAuth.
        let b = from(&[
            (API_KEY, "k"),
            (API_SECRET, "s"),
            (OAUTH_TOKEN_URL, "https://idp.example/token"),
        ])
        .unwrap();
        assert!(matches!(b.credentials, Credentials::ApiKey { .. }));
    }

    #[test]
    fn environment_sets_tls_and_proxy() {
        let b = from(&[
            (CA_FILE, "/etc/ca.pem"),
            (CLIENT_CERT_FILE, "/etc/client.pem"),
            (CLIENT_KEY_FILE, "/etc/client.key"),
            (PROXY, "http://user:pw@proxy.example:3128"),
        ])
        .unwrap();
        let debug = format!("{b:?}");
        assert!(debug.contains("/etc/ca.pem"), "{debug}");
        assert!(debug.contains("/etc/client.key"), "{debug}");
        assert!(debug.contains("proxy.example"), "{debug}");
        assert!(!debug.contains("pw@"), "{debug}");
        let e = from(&[(CLIENT_KEY_FILE, "/etc/client.key")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(CLIENT_CERT_FILE), "{e}");
        // The file is read when the client is built, and a missing one named.
        let e = b
            .with_endpoint("https://pkc-1.example")
            .with_cluster_id("lkc-1")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/ca.pem"), "{e}");
    }

    #[test]
    fn proxy_urls_are_checked_without_showing_passwords() {
        let build = |proxy: &str| {
            ClientBuilder::new()
                .with_endpoint("https://pkc-1.example")
                .with_cluster_id("lkc-1")
                .with_proxy(proxy)
                .build()
        };
        assert!(build("http://proxy.example:3128").is_ok());
        let e = build("socks5://user:hunter2@proxy.example:1080")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http:// or https://"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = build("proxy.example:3128").unwrap_err().to_string();
        assert!(e.contains("use http:// or https://"), "{e}");
        let e = build("http//proxy").unwrap_err().to_string();
        assert!(e.contains("not a URL"), "{e}");
    }

    #[test]
    fn oauth_token_url_over_plain_http_only_to_loopback() {
        let build = |token_url: &str, allow: bool| {
            ClientBuilder::new()
                .with_endpoint("https://pkc-1.example")
                .with_cluster_id("lkc-1")
                .with_credentials(Credentials::oauth(ClientCredentials::new(
                    token_url, "id", "secret",
                )))
                .with_credentials_over_http(allow)
                .build()
        };
        let e = build("http://idp.example/token", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http"), "{e}");
        assert!(build("http://idp.example/token", true).is_ok());
        assert!(build("http://localhost:8080/token", false).is_ok());
    }

    #[test]
    fn the_http_version_comes_from_the_environment_and_is_checked() {
        let builder = from(&[(HTTP_VERSION, "2")]).unwrap();
        assert_eq!(builder.http_version, HttpVersion::Http2PriorKnowledge);
        let e = from(&[(HTTP_VERSION, "3")]).unwrap_err().to_string();
        assert!(e.contains(HTTP_VERSION) && e.contains("1.1"), "{e}");
        let e = ClientBuilder::new()
            .with_endpoint("https://kafka.example")
            .with_cluster_id("lkc-1")
            .with_http2_streams_per_connection(0)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("with_http2_streams_per_connection(0)"), "{e}");
    }

    #[test]
    fn endpoint_with_prefix_is_not_doubled() {
        let b = ClientBuilder::new().with_endpoint("https://h.example/kafka/v3/");
        assert_eq!(b.base_url().unwrap(), "https://h.example/kafka/v3");
    }
}
