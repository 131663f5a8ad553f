//! Where the API is: the server flavour and its path prefix.

use crate::error::Error;

/// Which server the endpoint is, which sets the API's path prefix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerKind {
    /// Confluent Cloud (and Confluent Server's embedded REST): `/kafka/v3`.
    #[default]
    ConfluentCloud,
    /// The self-managed Confluent REST Proxy: `/v3`.
    RestProxy,
}

impl ServerKind {
    /// The path prefix of the v3 API.
    pub fn path_prefix(self) -> &'static str {
        match self {
            ServerKind::ConfluentCloud => "/kafka/v3",
            ServerKind::RestProxy => "/v3",
        }
    }
}

impl std::str::FromStr for ServerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "cloud" | "confluent-cloud" | "kafka/v3" => Ok(ServerKind::ConfluentCloud),
            "rest-proxy" | "proxy" | "self-managed" | "v3" => Ok(ServerKind::RestProxy),
            other => Err(Error::Config(format!(
                "unknown API flavour {other:?}: use \"cloud\" (paths under /kafka/v3) or \"rest-proxy\" (paths under /v3)"
            ))),
        }
    }
}
