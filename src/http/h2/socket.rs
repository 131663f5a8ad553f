//! What the pool's connections run on: TCP, TLS over it, or TLS through a
//! proxy's tunnel, behind one type.

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

/// What a connection runs on: TCP, TLS over it, or TLS through a tunnel.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Socket for T {}

/// A connection in clear or over TLS.
pub(crate) type Io = Box<dyn Socket>;

/// The name a host's certificate must have.
pub(crate) fn server_name(host: &url::Host<String>) -> Option<ServerName<'static>> {
    Some(match host {
        url::Host::Domain(name) => ServerName::try_from(name.clone()).ok()?,
        url::Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
        url::Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
    })
}
