//! HTTP plumbing shared by every request: the proxy setting, the check that
//! nothing secret leaves in clear, TLS, and bounded body reads.

pub(crate) mod body;
pub(crate) mod plain;
pub(crate) mod proxy;
pub(crate) mod tls;
