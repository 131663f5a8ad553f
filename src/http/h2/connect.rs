//! A connection to the REST endpoint for the HTTP/2 pool: DNS, TCP (with
//! the client's keepalive), a proxy's tunnel when there is one, then TLS
//! offering the client's ALPN protocols, or nothing more for h2c.

use super::failure::connect_failure;
use super::socket::{Io, server_name};
use super::tunnel::Tunnel;
use crate::error::TransportError;
use rustls::pki_types::ServerName;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

/// TCP keepalive: probes after this long idle, this often, this many (as
/// on reqwest's connections).
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const TCP_KEEPALIVE_PROBES: u32 = 3;
/// The HTTP/2 codec reads a few KiB at a time; reading the socket (and
/// decrypting) in larger pieces made a stream's client cost per record
/// that of HTTP/1.1 (BENCHMARKS.md, HTTP/2 beside HTTP/1.1).
const READ_BUFFER: usize = 64 << 10;

/// Where the pool connects, and how.
pub(crate) struct Target {
    host: url::Host<String>,
    port: u16,
    /// TLS and the name the certificate must have; `None` is h2c.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The proxy whose tunnel the connection goes through, if any.
    via: Option<Tunnel>,
    /// The endpoint as messages show it.
    pub(crate) shown: String,
}

impl Target {
    /// The target of `url`'s host and port, over TLS for `https://`,
    /// through `via` when given; `None` when the URL has no host.
    pub(crate) fn of(
        url: &Url,
        tls: Arc<rustls::ClientConfig>,
        via: Option<Tunnel>,
    ) -> Option<Target> {
        let host = url.host()?.to_owned();
        let port = url.port_or_known_default()?;
        let tls = match url.scheme() {
            "https" => Some((TlsConnector::from(tls), server_name(&host)?)),
            _ => None,
        };
        let shown = format!("{}://{}", url.scheme(), url.authority());
        Some(Target {
            host,
            port,
            tls,
            via,
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
        let mut io: Io =
            match &self.via {
                None => Box::new(
                    tcp(&self.host, self.port)
                        .await
                        .map_err(|e| connect_failure(&self.shown, e.to_string(), false))?,
                ),
                Some(tunnel) => {
                    let tcp = tcp(&tunnel.host, tunnel.port)
                        .await
                        .map_err(|e| connect_failure(&tunnel.shown, e.to_string(), false))?;
                    let mut io: Io = Box::new(tcp);
                    if let Some((connector, name)) = &tunnel.tls {
                        io =
                            Box::new(connector.connect(name.clone(), io).await.map_err(|e| {
                                connect_failure(&tunnel.shown, tls_cause(&e), false)
                            })?);
                    }
                    tunnel
                        .open(&mut io, &authority(&self.host, self.port))
                        .await?;
                    io
                }
            };
        let Some((connector, name)) = &self.tls else {
            return Ok((Box::new(BufReader::with_capacity(READ_BUFFER, io)), true));
        };
        let tls = connector
            .connect(name.clone(), io)
            .await
            .map_err(|e| connect_failure(&self.shown, tls_cause(&e), false))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        io = Box::new(BufReader::with_capacity(READ_BUFFER, tls));
        Ok((io, h2))
    }
}

/// `host:port` as CONNECT names it.
fn authority(host: &url::Host<String>, port: u16) -> String {
    match host {
        url::Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        other => format!("{other}:{port}"),
    }
}

/// The TLS stack's reason, without the io wrapping.
fn tls_cause(e: &io::Error) -> String {
    match e.get_ref() {
        Some(inner) => format!("TLS: {inner}"),
        None => format!("TLS: {e}"),
    }
}

/// A TCP connection to the first of the host's addresses that accepts,
/// with the client's keepalive.
async fn tcp(host: &url::Host<String>, port: u16) -> io::Result<TcpStream> {
    let name = match host {
        url::Host::Domain(name) => name.clone(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let mut last = None;
    for addr in tokio::net::lookup_host((name.as_str(), port)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let keepalive = socket2::TcpKeepalive::new()
                    .with_time(TCP_KEEPALIVE_IDLE)
                    .with_interval(TCP_KEEPALIVE_INTERVAL)
                    .with_retries(TCP_KEEPALIVE_PROBES);
                let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}
