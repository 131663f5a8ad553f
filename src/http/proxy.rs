//! The proxy setting every connection of a client follows.

use crate::redact;
use secrecy::SecretString;
use std::fmt;

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
