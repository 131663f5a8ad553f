//! Client configuration: builder, environment, validation.

use crate::auth::Credentials;
use crate::client::Client;
use crate::error::Error;
use std::time::Duration;
use url::Url;

/// Environment variable holding the cluster's REST endpoint.
pub const ENV_ENDPOINT: &str = "KAFKA_REST_ENDPOINT";
/// Environment variable holding the cluster id.
pub const ENV_CLUSTER_ID: &str = "KAFKA_CLUSTER_ID";
/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "KAFKA_API_KEY";
/// Environment variable holding the API secret.
pub const ENV_API_SECRET: &str = "KAFKA_API_SECRET";
/// Environment variable holding a static bearer token (used when no API key is set).
pub const ENV_BEARER_TOKEN: &str = "KAFKA_REST_BEARER_TOKEN";
/// Environment variable holding the identity pool of the bearer token.
pub const ENV_IDENTITY_POOL_ID: &str = "KAFKA_IDENTITY_POOL_ID";
/// Environment variable choosing the API flavour: `cloud` (default) or `rest-proxy`.
pub const ENV_FLAVOUR: &str = "KAFKA_REST_FLAVOUR";

/// Default maximum record size (key, value and headers): the REST Proxy's
/// Kafka producer refuses larger records.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Default number of records per `records:batch` request: the REST Proxy's
/// default limit. The server can be configured to accept up to 50.
pub const DEFAULT_MAX_BATCH_ENTRIES: usize = 10;

/// Which server the endpoint is, which sets the API's path prefix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiFlavour {
    /// Confluent Cloud (and Confluent Server's embedded REST): `/kafka/v3`.
    #[default]
    ConfluentCloud,
    /// The self-managed Confluent REST Proxy: `/v3`.
    RestProxy,
}

impl ApiFlavour {
    /// The path prefix of the v3 API.
    pub fn path_prefix(self) -> &'static str {
        match self {
            ApiFlavour::ConfluentCloud => "/kafka/v3",
            ApiFlavour::RestProxy => "/v3",
        }
    }
}

impl std::str::FromStr for ApiFlavour {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "cloud" | "confluent-cloud" | "kafka/v3" => Ok(ApiFlavour::ConfluentCloud),
            "rest-proxy" | "proxy" | "self-managed" | "v3" => Ok(ApiFlavour::RestProxy),
            other => Err(Error::Config(format!(
                "unknown API flavour {other:?}: use \"cloud\" (paths under /kafka/v3) or \"rest-proxy\" (paths under /v3)"
            ))),
        }
    }
}

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
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pub(crate) endpoint: Option<String>,
    pub(crate) cluster_id: Option<String>,
    pub(crate) credentials: Credentials,
    pub(crate) flavour: ApiFlavour,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) user_agent: String,
    pub(crate) allow_credentials_over_http: bool,
    pub(crate) max_record_bytes: usize,
    pub(crate) max_batch_entries: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoint: None,
            cluster_id: None,
            credentials: Credentials::None,
            flavour: ApiFlavour::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            user_agent: concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")).into(),
            allow_credentials_over_http: false,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_batch_entries: DEFAULT_MAX_BATCH_ENTRIES,
        }
    }
}

impl ClientBuilder {
    /// A builder with defaults and nothing from the environment.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A builder preset from the environment: `KAFKA_REST_ENDPOINT`,
    /// `KAFKA_CLUSTER_ID`, `KAFKA_API_KEY` with `KAFKA_API_SECRET`, or else
    /// `KAFKA_REST_BEARER_TOKEN` with `KAFKA_IDENTITY_POOL_ID`, and
    /// `KAFKA_REST_FLAVOUR` (`cloud` or `rest-proxy`). Unset variables leave
    /// the defaults; later `with_*` calls override what was read.
    pub fn from_env() -> Result<ClientBuilder, Error> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`ClientBuilder::from_env`] over any source of variables.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ClientBuilder, Error> {
        let mut builder = ClientBuilder::new();
        builder.endpoint = lookup(ENV_ENDPOINT);
        builder.cluster_id = lookup(ENV_CLUSTER_ID);
        if let Some(flavour) = lookup(ENV_FLAVOUR) {
            builder.flavour = flavour.parse()?;
        }
        builder.credentials = match (lookup(ENV_API_KEY), lookup(ENV_API_SECRET)) {
            (Some(key), Some(secret)) => Credentials::api_key(key, secret),
            (Some(_), None) => {
                return Err(Error::Config(format!(
                    "{ENV_API_KEY} is set but {ENV_API_SECRET} is not; set both"
                )));
            }
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{ENV_API_SECRET} is set but {ENV_API_KEY} is not; set both"
                )));
            }
            (None, None) => match lookup(ENV_BEARER_TOKEN) {
                Some(token) => {
                    let credentials = Credentials::bearer_token(token);
                    match lookup(ENV_IDENTITY_POOL_ID) {
                        Some(pool) => credentials.with_identity_pool_id(pool),
                        None => credentials,
                    }
                }
                None => Credentials::None,
            },
        };
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
    pub fn with_flavour(mut self, flavour: ApiFlavour) -> ClientBuilder {
        self.flavour = flavour;
        self
    }

    /// How long to wait for a connection (TCP and TLS). Default 10 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a read may wait for the server before the request fails.
    /// Default 60 s. There is no total timeout: streams may live for hours.
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
    pub fn allow_credentials_over_http(mut self, allow: bool) -> ClientBuilder {
        self.allow_credentials_over_http = allow;
        self
    }

    /// The largest record (key, value and headers, in bytes) accepted before
    /// sending. Default 1 MiB.
    pub fn with_max_record_bytes(mut self, max: usize) -> ClientBuilder {
        self.max_record_bytes = max;
        self
    }

    /// The most records [`Client::produce_batch`] puts in one `records:batch`
    /// request: 1 to 50, default 10. Raise it only as far as the REST Proxy's
    /// own limit; [`ClientBuilder::build`] refuses values outside 1 to 50.
    pub fn with_max_batch_entries(mut self, max: usize) -> ClientBuilder {
        self.max_batch_entries = max;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        Client::from_builder(self)
    }

    /// The base URL of the v3 API: endpoint plus the flavour's prefix.
    pub(crate) fn base_url(&self) -> Result<String, Error> {
        let endpoint = self.endpoint.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "no endpoint: call with_endpoint(\"https://pkc-….confluent.cloud:443\") or set {ENV_ENDPOINT}"
            ))
        })?;
        let url = Url::parse(endpoint).map_err(|e| {
            Error::Config(format!(
                "endpoint {endpoint:?} is not a URL ({e}); expected e.g. https://pkc-abc12.us-east-1.aws.confluent.cloud:443"
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" => {
                if !self.credentials.is_none()
                    && !self.allow_credentials_over_http
                    && !is_loopback(&url)
                {
                    return Err(Error::Config(format!(
                        "refusing to send credentials over plain http to {}; use https, \
                         or call allow_credentials_over_http(true) if the network is trusted",
                        url.host_str().unwrap_or("?")
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
                "endpoint {endpoint:?} must not have a query or fragment"
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
                "no cluster id: call with_cluster_id(\"lkc-…\") or set {ENV_CLUSTER_ID}"
            ))),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
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
            (ENV_ENDPOINT, "https://pkc-1.example:443"),
            (ENV_CLUSTER_ID, "lkc-1"),
            (ENV_API_KEY, "k"),
            (ENV_API_SECRET, "s"),
        ])
        .unwrap();
        assert_eq!(b.base_url().unwrap(), "https://pkc-1.example/kafka/v3");
        assert_eq!(b.cluster_id().unwrap(), "lkc-1");
        assert!(matches!(b.credentials, Credentials::ApiKey { ref key, .. } if key == "k"));
        // The builder overrides the environment.
        let b = b
            .with_cluster_id("lkc-2")
            .with_flavour(ApiFlavour::RestProxy);
        assert_eq!(b.cluster_id().unwrap(), "lkc-2");
        assert_eq!(b.base_url().unwrap(), "https://pkc-1.example/v3");
    }

    #[test]
    fn half_an_api_key_is_an_error_naming_the_missing_variable() {
        let e = from(&[(ENV_API_KEY, "k")]).unwrap_err().to_string();
        assert!(e.contains(ENV_API_SECRET), "{e}");
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let e = ClientBuilder::new().base_url().unwrap_err().to_string();
        assert!(e.contains(ENV_ENDPOINT), "{e}");
        let e = ClientBuilder::new().cluster_id().unwrap_err().to_string();
        assert!(e.contains(ENV_CLUSTER_ID), "{e}");
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
                .allow_credentials_over_http(true)
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
    fn endpoint_with_prefix_is_not_doubled() {
        let b = ClientBuilder::new().with_endpoint("https://h.example/kafka/v3/");
        assert_eq!(b.base_url().unwrap(), "https://h.example/kafka/v3");
    }
}
