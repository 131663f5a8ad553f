//! TLS: rustls with the ring provider and the platform's certificate
//! verifier, configured here rather than through process-wide defaults so the
//! crate never changes a setting its users own.
//!
//! Extra root certificates (a private CA, a TLS-inspecting proxy's CA, the
//! emulator's) are trusted in addition to the platform's roots, through the
//! platform verifier's own support for them. A client certificate and key
//! may be given for mutual TLS.

use crate::error::Error;
use crate::http::version::HttpVersion;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls_platform_verifier::{BuilderVerifierExt, Verifier};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// PEM text given directly or read from a file when the client is built.
#[derive(Clone)]
pub(crate) enum PemSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl PemSource {
    fn read(&self, what: &str) -> Result<Vec<u8>, Error> {
        match self {
            PemSource::Bytes(bytes) => Ok(bytes.clone()),
            PemSource::File(path) => std::fs::read(path).map_err(|e| {
                Error::Config(format!(
                    "could not read the {what} file {}: {e}",
                    path.display()
                ))
            }),
        }
    }

    fn origin(&self, method: &str) -> String {
        match self {
            PemSource::Bytes(_) => format!("the PEM given to {method}"),
            PemSource::File(path) => path.display().to_string(),
        }
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::Bytes(bytes) => write!(f, "Pem({} bytes)", bytes.len()),
            PemSource::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// A private key given directly (held as a secret) or read from a file.
#[derive(Clone)]
pub(crate) enum KeySource {
    Pem(SecretString),
    File(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Pem(_) => f.write_str("Pem([redacted])"),
            KeySource::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// TLS settings of the client beyond the defaults.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    /// Certificates trusted in addition to the platform's roots.
    pub(crate) extra_roots: Vec<PemSource>,
    /// A certificate chain and its key, presented when the server asks.
    pub(crate) client_identity: Option<(PemSource, KeySource)>,
}

/// The rustls configuration for connections to the REST endpoint (and to
/// the OAuth token endpoint), offering `version`'s ALPN protocols.
pub(crate) fn client_config(
    settings: &TlsSettings,
    version: HttpVersion,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = extra_roots(settings)?;
    let setup = |e: rustls::Error| Error::Config(format!("could not set up TLS: {e}"));
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(setup)?;
    let builder = if roots.is_empty() {
        builder.with_platform_verifier().map_err(setup)?
    } else {
        let verifier = Verifier::new_with_extra_roots(roots, provider).map_err(|e| {
            Error::Config(format!(
                "could not set up TLS with the extra root certificates: {e}"
            ))
        })?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    };
    let mut config = match &settings.client_identity {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => {
            let (chain, key) = client_identity(certificate, key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::Config(format!(
                    "the client certificate and key cannot be used together: {e}"
                ))
            })?
        }
    };
    config.alpn_protocols = version.alpn();
    Ok(config)
}

fn extra_roots(settings: &TlsSettings) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut roots = Vec::new();
    for source in &settings.extra_roots {
        let pem = source.read("CA certificate")?;
        let origin = source.origin("with_root_certificate_pem");
        let before = roots.len();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            roots.push(certificate.map_err(|e| {
                Error::Config(format!("{origin} holds an unreadable certificate: {e}"))
            })?);
        }
        if roots.len() == before {
            return Err(Error::Config(format!(
                "{origin} holds no certificate (expected -----BEGIN CERTIFICATE-----)"
            )));
        }
    }
    Ok(roots)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(certificate: &PemSource, key: &KeySource) -> Result<Identity, Error> {
    let pem = certificate.read("client certificate")?;
    let origin = certificate.origin("with_client_certificate_pem");
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{origin} holds an unreadable certificate: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Config(format!(
            "{origin} holds no client certificate (expected -----BEGIN CERTIFICATE-----)"
        )));
    }
    let (bytes, origin) = match key {
        KeySource::Pem(pem) => (
            pem.expose_secret().as_bytes().to_vec(),
            "the key given to with_client_certificate_pem".to_owned(),
        ),
        KeySource::File(path) => (
            std::fs::read(path).map_err(|e| {
                Error::Config(format!(
                    "could not read the client key file {}: {e}",
                    path.display()
                ))
            })?,
            path.display().to_string(),
        ),
    };
    // The parser's error names the PEM section, never the key's contents.
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        Error::Config(format!(
            "{origin} holds no usable private key (expected a PEM PKCS#8, PKCS#1 or SEC1 key): {e}"
        ))
    })?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build() {
        client_config(&TlsSettings::default(), HttpVersion::default()).unwrap();
    }

    #[test]
    fn pem_without_certificate_is_an_error_naming_its_origin() {
        let settings = TlsSettings {
            extra_roots: vec![PemSource::Bytes(b"not a certificate".to_vec())],
            client_identity: None,
        };
        let e = client_config(&settings, HttpVersion::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("with_root_certificate_pem"), "{e}");
        let settings = TlsSettings {
            extra_roots: vec![PemSource::File("/nonexistent/ca.pem".into())],
            client_identity: None,
        };
        let e = client_config(&settings, HttpVersion::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn debug_redacts_the_key() {
        let settings = TlsSettings {
            extra_roots: vec![],
            client_identity: Some((
                PemSource::Bytes(b"cert".to_vec()),
                KeySource::Pem(SecretString::from("-----BEGIN PRIVATE KEY-----sekrit")),
            )),
        };
        assert!(!format!("{settings:?}").contains("sekrit"));
    }
}
