//! HTTP plumbing shared by every request: the proxy setting, the check that
//! nothing secret leaves in clear, TLS and the HTTP version, the producer's
//! own HTTP/2 connections, bounded body reads, and what is known of the
//! intermediaries on the path.

pub(crate) mod body;
pub(crate) mod h2;
pub(crate) mod path;
pub(crate) mod plain;
pub(crate) mod proxy;
pub(crate) mod tls;
pub(crate) mod version;
