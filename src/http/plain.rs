//! The plain-http rule: credentials (an API key, a token, an OAuth client
//! secret) never travel in clear over a hop that leaves this machine, unless
//! the caller allowed it with `with_credentials_over_http(true)`.
//!
//! A request to an `https://` URL is encrypted end to end, through a proxy
//! too (the proxy only tunnels it). A request to an `http://` URL is in
//! clear on every hop: it is allowed only when the URL is on loopback and
//! no proxy, or a proxy on loopback, carries it. The proxy is the one the
//! HTTP client will really use: the configured one, or the one the
//! environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, as
//! reqwest reads them) gives for that URL.

use crate::http::proxy::ProxySetting;
use crate::redact;
use url::Url;

/// Whether `url` names this machine.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The proxy requests to `url` go through, if any, as text that may hold
/// the proxy's own credentials (never shown: see [`redact::url`]).
fn proxy_for(setting: &ProxySetting, url: &Url) -> Option<String> {
    match setting {
        ProxySetting::Off => None,
        ProxySetting::Url(proxy) => {
            use secrecy::ExposeSecret;
            Some(proxy.expose_secret().to_owned())
        }
        ProxySetting::Environment => {
            let uri: http::Uri = url.as_str().parse().ok()?;
            // The matcher reqwest itself builds from the environment.
            let matcher = hyper_util::client::proxy::matcher::Matcher::from_env();
            matcher
                .intercept(&uri)
                .map(|intercept| intercept.uri().to_string())
        }
    }
}

/// The hop on which a request to `url` would travel in clear off this
/// machine, described for a message; `None` when there is none.
pub(crate) fn clear_hop(url: &Url, proxy: &ProxySetting) -> Option<String> {
    if url.scheme() != "http" {
        return None;
    }
    if !is_loopback(url) {
        return Some(url.host_str().unwrap_or("?").to_owned());
    }
    let proxy = proxy_for(proxy, url)?;
    let on_loopback = Url::parse(&proxy).is_ok_and(|p| is_loopback(&p));
    (!on_loopback).then(|| format!("the proxy {}", redact::url(&proxy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn through(proxy: &str) -> ProxySetting {
        ProxySetting::Url(SecretString::from(proxy.to_owned()))
    }

    #[test]
    fn only_loopback_hops_carry_plain_http() {
        let off = ProxySetting::Off;
        assert_eq!(clear_hop(&url("https://kafka.example"), &off), None);
        assert_eq!(clear_hop(&url("http://127.0.0.1:8082"), &off), None);
        assert_eq!(clear_hop(&url("http://[::1]:8082"), &off), None);
        assert_eq!(clear_hop(&url("http://localhost:8082"), &off), None);
        assert_eq!(
            clear_hop(&url("http://kafka.internal:8082"), &off).as_deref(),
            Some("kafka.internal")
        );
        // Through a proxy: https is tunnelled, http is forwarded in clear.
        let remote = through("http://user:pw-77@proxy.example:3128");
        assert_eq!(clear_hop(&url("https://kafka.example"), &remote), None);
        let hop = clear_hop(&url("http://127.0.0.1:8082"), &remote).unwrap();
        assert!(hop.contains("proxy.example:3128"), "{hop}");
        assert!(!hop.contains("pw-77"), "{hop}");
        let local = through("http://127.0.0.1:3128");
        assert_eq!(clear_hop(&url("http://127.0.0.1:8082"), &local), None);
    }
}
