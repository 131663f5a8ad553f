//! The environment variables the client reads
//! ([`ClientBuilder::from_env`](crate::ClientBuilder::from_env)), named in one
//! place: Confluent's own tools read the same names.

/// Environment variable holding the cluster's REST endpoint.
pub const ENDPOINT: &str = "KAFKA_REST_ENDPOINT";
/// Environment variable holding the cluster id.
pub const CLUSTER_ID: &str = "KAFKA_CLUSTER_ID";
/// Environment variable holding the API key.
pub const API_KEY: &str = "KAFKA_API_KEY";
/// Environment variable holding the API secret.
pub const API_SECRET: &str = "KAFKA_API_SECRET";
/// Environment variable holding a static bearer token (used when no API key is set).
pub const BEARER_TOKEN: &str = "KAFKA_REST_BEARER_TOKEN";
/// Environment variable holding the identity pool of the bearer token.
pub const IDENTITY_POOL_ID: &str = "KAFKA_IDENTITY_POOL_ID";
/// Environment variable choosing the API flavour: `cloud` (default) or `rest-proxy`.
pub const FLAVOUR: &str = "KAFKA_REST_FLAVOUR";
/// Environment variable holding the OAuth token endpoint of the identity provider.
pub const OAUTH_TOKEN_URL: &str = "KAFKA_OAUTH_TOKEN_URL";
/// Environment variable holding the OAuth client id.
pub const OAUTH_CLIENT_ID: &str = "KAFKA_OAUTH_CLIENT_ID";
/// Environment variable holding the OAuth client secret.
pub const OAUTH_CLIENT_SECRET: &str = "KAFKA_OAUTH_CLIENT_SECRET";
/// Environment variable holding the OAuth scope to ask for (optional).
pub const OAUTH_SCOPE: &str = "KAFKA_OAUTH_SCOPE";
/// Environment variable choosing how the OAuth client authenticates to the
/// token endpoint: `basic` (default) or `post` (id and secret in the form).
pub const OAUTH_CLIENT_AUTH: &str = "KAFKA_OAUTH_CLIENT_AUTH";
/// Environment variable naming a PEM file of CA certificates to trust in
/// addition to the platform's.
pub const CA_FILE: &str = "KAFKA_REST_CA_FILE";
/// Environment variable naming a PEM file with the client certificate (chain)
/// for mutual TLS.
pub const CLIENT_CERT_FILE: &str = "KAFKA_REST_CLIENT_CERT_FILE";
/// Environment variable naming a PEM file with the client certificate's
/// private key.
pub const CLIENT_KEY_FILE: &str = "KAFKA_REST_CLIENT_KEY_FILE";
/// Environment variable holding a proxy URL for every connection the client
/// makes (`http://` or `https://`, optionally with `user:password@`).
pub const PROXY: &str = "KAFKA_REST_PROXY";
/// Environment variable choosing the HTTP version spoken to the REST
/// endpoint: `negotiate` (default), `1.1`, or `2` (prior knowledge, h2c on
/// `http://`).
pub const HTTP_VERSION: &str = "KAFKA_REST_HTTP_VERSION";
