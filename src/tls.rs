//! TLS: rustls with the ring provider and the platform's certificate
//! verifier, configured here rather than through process-wide defaults so the
//! crate never changes a setting its users own.

use crate::error::Error;
use rustls_platform_verifier::BuilderVerifierExt;
use std::sync::Arc;

/// The rustls configuration for connections to the REST endpoint.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| Error::Config(format!("could not set up TLS: {e}")))?
        .with_no_client_auth();
    // Streaming produce relies on HTTP/1.1 chunked request bodies.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
