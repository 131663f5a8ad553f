//! A CONNECT tunnel through an HTTP proxy, for the pool's connections: the
//! proxy only relays the TLS inside, as reqwest's tunnels do.

use super::failure::connect_failure;
use super::socket::{Socket, server_name};
use crate::error::TransportError;
use crate::http::proxy::ProxyHop;
use http::HeaderValue;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// The most a proxy's answer to CONNECT may hold before its end.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// A proxy and how to ask it for a tunnel.
pub(crate) struct Tunnel {
    pub(crate) host: url::Host<String>,
    pub(crate) port: u16,
    /// TLS to the proxy itself, for an `https://` proxy.
    pub(crate) tls: Option<(TlsConnector, ServerName<'static>)>,
    authorization: Option<HeaderValue>,
    /// The proxy as messages show it.
    pub(crate) shown: String,
}

impl Tunnel {
    /// The tunnel through `hop`; `None` for a proxy this cannot speak to
    /// (SOCKS), which reqwest's own connections then handle.
    pub(crate) fn of(hop: ProxyHop, tls: Arc<rustls::ClientConfig>) -> Option<Tunnel> {
        let url = url::Url::parse(&hop.uri.to_string()).ok()?;
        let host = url.host()?.to_owned();
        let port = url.port_or_known_default()?;
        let tls = match url.scheme() {
            "http" => None,
            "https" => Some((TlsConnector::from(tls), server_name(&host)?)),
            _ => return None,
        };
        Some(Tunnel {
            host,
            port,
            tls,
            authorization: hop.authorization,
            shown: format!("the proxy {}://{}", url.scheme(), url.authority()),
        })
    }

    /// Asks the proxy, over `io`, for a tunnel to `authority` (host:port)
    /// and reads its answer: on 200 the connection is the tunnel.
    pub(crate) async fn open(
        &self,
        io: &mut Box<dyn Socket>,
        authority: &str,
    ) -> Result<(), TransportError> {
        let failed = |cause: String| connect_failure(&self.shown, cause, false);
        let mut ask = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
        if let Some(authorization) = &self.authorization {
            ask.extend_from_slice(b"Proxy-Authorization: ");
            ask.extend_from_slice(authorization.as_bytes());
            ask.extend_from_slice(b"\r\n");
        }
        ask.extend_from_slice(b"\r\n");
        io.write_all(&ask)
            .await
            .map_err(|e| failed(e.to_string()))?;
        io.flush().await.map_err(|e| failed(e.to_string()))?;
        let mut answer = Vec::with_capacity(512);
        let mut piece = [0u8; 512];
        let end = loop {
            let n = io
                .read(&mut piece)
                .await
                .map_err(|e| failed(e.to_string()))?;
            if n == 0 {
                return Err(failed(
                    "the proxy closed the connection before answering CONNECT".into(),
                ));
            }
            answer.extend_from_slice(&piece[..n]);
            if let Some(at) = memchr::memmem::find(&answer, b"\r\n\r\n") {
                break at + 4;
            }
            if answer.len() > MAX_ANSWER_BYTES {
                return Err(failed(format!(
                    "the proxy's answer to CONNECT went on past {MAX_ANSWER_BYTES} bytes"
                )));
            }
        };
        let status_line = answer
            .split(|&b| b == b'\n')
            .next()
            .map(|line| String::from_utf8_lossy(line).trim().to_owned())
            .unwrap_or_default();
        let status = status_line.split(' ').nth(1).unwrap_or("");
        if !status_line.starts_with("HTTP/1.") || status != "200" {
            // The status line only: the headers may echo what was sent.
            let shown: String = status_line.chars().take(80).collect();
            return Err(failed(format!("the proxy refused the tunnel: {shown}")));
        }
        if answer.len() > end {
            return Err(failed(
                "the proxy sent data after its answer to CONNECT".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::proxy::ProxySetting;
    use secrecy::SecretString;

    fn tunnel() -> Tunnel {
        let setting = ProxySetting::Url(SecretString::from("http://user:sekrit@127.0.0.1:3128"));
        let hop = setting
            .hop(&url::Url::parse("https://kafka.example").unwrap())
            .unwrap();
        let tls = crate::http::tls::client_config(&Default::default(), Default::default());
        Tunnel::of(hop, Arc::new(tls.unwrap())).unwrap()
    }

    /// The proxy's side: reads the request head, answers `answer`.
    async fn answering(answer: &'static [u8]) -> (Result<(), TransportError>, String) {
        let (client, mut proxy) = tokio::io::duplex(64 * 1024);
        let mut io: Box<dyn Socket> = Box::new(client);
        let tunnel = tunnel();
        let asked = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut piece = [0u8; 256];
            while memchr::memmem::find(&seen, b"\r\n\r\n").is_none() {
                let n = proxy.read(&mut piece).await.unwrap();
                seen.extend_from_slice(&piece[..n]);
            }
            proxy.write_all(answer).await.unwrap();
            // Held open: the client must not wait for more.
            std::mem::forget(proxy);
            String::from_utf8(seen).unwrap()
        });
        let opened = tunnel.open(&mut io, "kafka.example:443").await;
        (opened, asked.await.unwrap())
    }

    #[tokio::test]
    async fn a_tunnel_is_asked_for_with_the_proxy_credentials() {
        let (opened, asked) = answering(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
        opened.unwrap();
        assert!(
            asked.starts_with("CONNECT kafka.example:443 HTTP/1.1\r\n"),
            "{asked}"
        );
        // user:sekrit in Basic.
        assert!(
            asked.contains("Proxy-Authorization: Basic dXNlcjpzZWtyaXQ=\r\n"),
            "{asked}"
        );
    }

    #[tokio::test]
    async fn a_refusal_names_the_status_and_no_secret() {
        let (opened, _) = answering(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nX-Echo: dXNlcjpzZWtyaXQ=\r\n\r\n",
        )
        .await;
        let e = opened.unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(e.is_connect(), "{shown}");
        assert!(
            shown.contains("407") && shown.contains("127.0.0.1:3128"),
            "{shown}"
        );
        assert!(
            !shown.contains("sekrit") && !shown.contains("dXNlcjpzZWtyaXQ"),
            "{shown}"
        );
    }
}
