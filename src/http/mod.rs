//! HTTP plumbing shared by every request: the proxy setting, the check that
//! nothing secret leaves in clear, TLS, bounded body reads, and what is
//! known of the intermediaries on the path.

pub(crate) mod body;
pub(crate) mod path;
pub(crate) mod plain;
pub(crate) mod proxy;
pub(crate) mod tls;
