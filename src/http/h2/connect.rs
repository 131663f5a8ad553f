//! A connection to the REST endpoint for the HTTP/2 pool: DNS, TCP (with
//! the client's keepalive), then TLS offering the client's ALPN protocols,
//! or nothing more for h2c.

use super::failure::connect_failure;
use crate::error::TransportError;
use rustls::pki_types::ServerName;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use url::Url;

/// TCP keepalive: probes after this long idle, this often, this many (as
/// on reqwest's connections).
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const TCP_KEEPALIVE_PROBES: u32 = 3;

/// Where the pool connects, and how.
pub(crate) struct Target {
    host: url::Host<String>,
    port: u16,
    /// TLS and the name the certificate must have; `None` is h2c.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The endpoint as messages show it.
    pub(crate) shown: String,
}

impl Target {
    /// The target of `url`'s host and port, over TLS for `https://`;
    /// `None` when the URL has no host.
    pub(crate) fn of(url: &Url, tls: Arc<rustls::ClientConfig>) -> Option<Target> {
        let host = url.host()?.to_owned();
        let port = url.port_or_known_default()?;
        let tls = match url.scheme() {
            "https" => {
                let name = match &host {
                    url::Host::Domain(name) => ServerName::try_from(name.clone()).ok()?,
                    url::Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
                    url::Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
                };
                Some((TlsConnector::from(tls), name))
            }
            _ => None,
        };
        let shown = format!("{}://{}", url.scheme(), url.authority());
        Some(Target {
            host,
            port,
            tls,
            shown,
        })
    }

    /// A connection, and whether it speaks HTTP/2: over TLS, what ALPN
    /// chose; h2c always does.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<(Io, bool), TransportError> {
        let connected = tokio::time::timeout(timeout, self.connect_unbounded()).await;
        match connected {
            Ok(result) => result,
            Err(_) => Err(connect_failure(
                &self.shown,
                format!("no connection within {timeout:?}"),
                true,
            )),
        }
    }

    async fn connect_unbounded(&self) -> Result<(Io, bool), TransportError> {
        let failed = |e: io::Error| connect_failure(&self.shown, e.to_string(), false);
        let tcp = match &self.host {
            url::Host::Domain(name) => tcp(name.as_str(), self.port).await,
            url::Host::Ipv4(ip) => tcp((*ip).to_string().as_str(), self.port).await,
            url::Host::Ipv6(ip) => tcp((*ip).to_string().as_str(), self.port).await,
        }
        .map_err(failed)?;
        let _ = tcp.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(TCP_KEEPALIVE_IDLE)
            .with_interval(TCP_KEEPALIVE_INTERVAL)
            .with_retries(TCP_KEEPALIVE_PROBES);
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        let Some((connector, name)) = &self.tls else {
            return Ok((Io::Plain(tcp), true));
        };
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| connect_failure(&self.shown, tls_cause(&e), false))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((Io::Tls(Box::new(tls)), h2))
    }
}

/// The TLS stack's reason, without the io wrapping.
fn tls_cause(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) => format!("TLS: {inner}"),
        None => format!("TLS: {e}"),
    }
}

/// The first of the host's addresses that accepts.
async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// A connection in clear or over TLS.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
