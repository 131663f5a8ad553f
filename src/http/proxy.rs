//! The proxy setting every connection of a client follows.

use crate::redact;
use http::HeaderValue;
use hyper_util::client::proxy::matcher::Matcher;
use secrecy::SecretString;
use std::fmt;
use url::Url;

/// Which proxy connections go through.
#[derive(Clone, Default)]
pub(crate) enum ProxySetting {
    /// reqwest's default: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
    /// `NO_PROXY` from the environment (not the operating system's settings).
    #[default]
    Environment,
    /// This proxy for every connection.
    Url(SecretString),
    /// No proxy, whatever the environment says.
    Off,
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::Environment => f.write_str("Environment"),
            ProxySetting::Url(url) => {
                use secrecy::ExposeSecret;
                write!(f, "Url({})", redact::url(url.expose_secret()))
            }
            ProxySetting::Off => f.write_str("Off"),
        }
    }
}

/// The proxy a connection goes through: its address (without credentials)
/// and its Basic credentials as a `Proxy-Authorization` value.
pub(crate) struct ProxyHop {
    pub(crate) uri: http::Uri,
    pub(crate) authorization: Option<HeaderValue>,
}

impl ProxySetting {
    /// The proxy a connection to `url` goes through, as reqwest would pick
    /// it (the environment's `NO_PROXY` included); `None` for none.
    pub(crate) fn hop(&self, url: &Url) -> Option<ProxyHop> {
        let matcher = match self {
            ProxySetting::Off => return None,
            ProxySetting::Environment => Matcher::from_env(),
            ProxySetting::Url(proxy) => {
                use secrecy::ExposeSecret;
                Matcher::builder()
                    .all(proxy.expose_secret().to_owned())
                    .build()
            }
        };
        let uri: http::Uri = url.as_str().parse().ok()?;
        let intercept = matcher.intercept(&uri)?;
        Some(ProxyHop {
            uri: intercept.uri().clone(),
            authorization: intercept.basic_auth().cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_proxy_gives_its_address_and_credentials_apart() {
        let setting =
            ProxySetting::Url(SecretString::from("http://user:pw%2F7@proxy.example:3128"));
        let hop = setting
            .hop(&Url::parse("https://kafka.example").unwrap())
            .unwrap();
        assert_eq!(hop.uri.authority().unwrap().as_str(), "proxy.example:3128");
        let authorization = hop.authorization.unwrap();
        // user:pw/7, percent-decoded, in Basic.
        assert_eq!(authorization, "Basic dXNlcjpwdy83");
        assert!(
            ProxySetting::Off
                .hop(&Url::parse("https://kafka.example").unwrap())
                .is_none()
        );
    }
}
