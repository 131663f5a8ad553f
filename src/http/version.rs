//! Which HTTP versions the client speaks to the REST endpoint, and what that
//! means for TLS (the ALPN protocols offered) and for reqwest.

use std::fmt;

/// Which HTTP versions the client speaks to the REST endpoint.
///
/// The OAuth token endpoint always negotiates for itself (HTTP/2 by ALPN
/// when its server offers it), except that [`Http1Only`](Self::Http1Only)
/// holds for it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/2 when the server offers it by ALPN over TLS, HTTP/1.1
    /// otherwise; plain `http://` endpoints are spoken to in HTTP/1.1.
    #[default]
    Negotiate,
    /// HTTP/1.1 only, over TLS and in clear.
    Http1Only,
    /// HTTP/2 with prior knowledge: h2c on `http://` endpoints (the REST
    /// Proxy serves it by default), and over TLS ALPN `h2` alone, with no
    /// fallback.
    Http2PriorKnowledge,
}

impl HttpVersion {
    /// The ALPN protocols offered over TLS.
    pub(crate) fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            HttpVersion::Negotiate => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            HttpVersion::Http1Only => vec![b"http/1.1".to_vec()],
            HttpVersion::Http2PriorKnowledge => vec![b"h2".to_vec()],
        }
    }

    /// What the token endpoint speaks when the REST endpoint speaks this:
    /// prior knowledge is for the REST endpoint only.
    pub(crate) fn for_token_endpoint(self) -> HttpVersion {
        match self {
            HttpVersion::Http2PriorKnowledge => HttpVersion::Negotiate,
            other => other,
        }
    }

    /// Reads the setting's text (`KAFKA_REST_HTTP_VERSION`).
    pub(crate) fn parse(text: &str) -> Option<HttpVersion> {
        match text.trim().to_ascii_lowercase().as_str() {
            "negotiate" | "auto" => Some(HttpVersion::Negotiate),
            "1.1" | "http1" | "http/1.1" | "http1-only" => Some(HttpVersion::Http1Only),
            "2" | "h2c" | "http2" | "http/2" | "http2-prior-knowledge" => {
                Some(HttpVersion::Http2PriorKnowledge)
            }
            _ => None,
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpVersion::Negotiate => "negotiate",
            HttpVersion::Http1Only => "1.1",
            HttpVersion::Http2PriorKnowledge => "2",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_reads_back_from_its_text() {
        for version in [
            HttpVersion::Negotiate,
            HttpVersion::Http1Only,
            HttpVersion::Http2PriorKnowledge,
        ] {
            assert_eq!(HttpVersion::parse(&version.to_string()), Some(version));
        }
        assert_eq!(
            HttpVersion::parse(" H2C "),
            Some(HttpVersion::Http2PriorKnowledge)
        );
        assert_eq!(HttpVersion::parse("3"), None);
    }

    #[test]
    fn prior_knowledge_stays_with_the_rest_endpoint() {
        assert_eq!(
            HttpVersion::Http2PriorKnowledge.for_token_endpoint(),
            HttpVersion::Negotiate
        );
        assert_eq!(
            HttpVersion::Http1Only.for_token_endpoint(),
            HttpVersion::Http1Only
        );
        assert_eq!(
            HttpVersion::Http2PriorKnowledge.alpn(),
            vec![b"h2".to_vec()]
        );
    }
}
