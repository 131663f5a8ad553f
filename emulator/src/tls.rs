//! HTTPS for the emulator: a throw-away certificate authority generated at
//! start, a server certificate it signs for `127.0.0.1`, `::1` and
//! `localhost`, and optionally a client certificate for mutual TLS. Clients
//! trust the authority's PEM ([`Emulator::ca_certificate_pem`](super::Emulator::ca_certificate_pem)).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The emulator's TLS setup.
pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    /// The certificate authority, PEM.
    pub ca_pem: String,
    /// A client certificate and its key (PEM) when client certificates are
    /// required.
    pub client_identity: Option<(String, String)>,
}

fn other(context: &str, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {error}"))
}

/// Generates the certificates and the server configuration, which offers
/// `alpn` to clients (by preference).
pub(crate) fn generate(require_client_certificate: bool, alpn: Vec<Vec<u8>>) -> io::Result<Tls> {
    let ca_key = KeyPair::generate().map_err(|e| other("generating the CA key", e))?;
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Kafka REST emulator CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .map_err(|e| other("generating the CA certificate", e))?;

    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut server_params =
        CertificateParams::new(names).map_err(|e| other("naming the server certificate", e))?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server_params.use_authority_key_identifier_extension = true;
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(|e| other("generating the server key", e))?;
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .map_err(|e| other("signing the server certificate", e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| other("configuring TLS", e))?;
    let (builder, client_identity) = if require_client_certificate {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.der().clone())
            .map_err(|e| other("trusting the CA", e))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| other("configuring client certificates", e))?;

        let mut client_params = CertificateParams::default();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "kafka-rest-emulator-client");
        client_params.use_authority_key_identifier_extension = true;
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().map_err(|e| other("generating the client key", e))?;
        let client_cert = client_params
            .signed_by(&client_key, &ca)
            .map_err(|e| other("signing the client certificate", e))?;
        (
            builder.with_client_cert_verifier(verifier),
            Some((client_cert.pem(), client_key.serialize_pem())),
        )
    } else {
        (builder.with_no_client_auth(), None)
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| other("using the server certificate", e))?;
    // A client that offers no ALPN is served HTTP/1.1.
    config.alpn_protocols = alpn;
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca.pem(),
        client_identity,
    })
}

/// Completes the TLS handshake of an accepted connection; `None` (logged) if
/// it fails or takes too long.
pub(crate) async fn accept(
    acceptor: &TlsAcceptor,
    socket: TcpStream,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}
