//! TLS settings against the emulator over HTTPS: extra root certificates,
//! client certificates (mutual TLS) and an HTTPS proxy.

mod common;

use ccloud_kafka_rest::{ClientBuilder, ClientCredentials, Credentials, Error, Record};
use ccloud_kafka_rest_emulator::Emulator;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn https_emulator() -> Emulator {
    common::emulator().with_tls(true).start().await.unwrap()
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("ccloud-kafka-rest-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn the_emulator_certificate_is_trusted_only_with_its_ca() {
    let emulator = https_emulator().await;
    assert!(emulator.url().starts_with("https://"));
    let ca = emulator.ca_certificate_pem().unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    let untrusting = common::client_for(&emulator).build().unwrap();
    let e = untrusting
        .produce("demo", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");

    let client = common::client_for(&emulator)
        .with_root_certificate_pem(ca)
        .build()
        .unwrap();
    client
        .produce("demo", &Record::from_value("x"))
        .await
        .unwrap();

    // From a file, and under the name localhost too.
    let path = temp_file("ca.pem", ca);
    let client = ClientBuilder::new()
        .with_endpoint(format!("https://localhost:{}", emulator.addr().port()))
        .with_cluster_id(emulator.cluster_id())
        .with_root_certificate_file(&path)
        .build()
        .unwrap();
    client
        .produce("demo", &Record::from_value("y"))
        .await
        .unwrap();
    std::fs::remove_file(path).unwrap();
    assert_eq!(emulator.records("demo").len(), 2);
}

#[tokio::test]
async fn client_certificates_for_mutual_tls() {
    let emulator = common::emulator()
        .with_client_certificates_required(true)
        .start()
        .await
        .unwrap();
    let ca = emulator.ca_certificate_pem().unwrap();
    let (certificate, key) = emulator.client_certificate_pem().unwrap();

    let without = common::client_for(&emulator)
        .with_root_certificate_pem(ca)
        .build()
        .unwrap();
    let e = without
        .produce("demo", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");

    let with = common::client_for(&emulator)
        .with_root_certificate_pem(ca)
        .with_client_certificate_pem(certificate, key)
        .build()
        .unwrap();
    with.produce("demo", &Record::from_value("x"))
        .await
        .unwrap();

    let (cert_path, key_path) = (
        temp_file("client.pem", certificate),
        temp_file("client.key", key),
    );
    let from_files = common::client_for(&emulator)
        .with_root_certificate_pem(ca)
        .with_client_certificate_files(&cert_path, &key_path)
        .build()
        .unwrap();
    from_files
        .produce("demo", &Record::from_value("y"))
        .await
        .unwrap();
    std::fs::remove_file(cert_path).unwrap();
    std::fs::remove_file(key_path).unwrap();
    assert_eq!(emulator.records("demo").len(), 2);
}

#[tokio::test]
async fn bad_certificates_and_keys_are_configuration_errors_that_say_which() {
    let emulator = common::emulator()
        .with_client_certificates_required(true)
        .start()
        .await
        .unwrap();
    let other = common::emulator()
        .with_client_certificates_required(true)
        .start()
        .await
        .unwrap();
    let build = |builder: ClientBuilder| {
        builder
            .with_endpoint("https://pkc-1.example")
            .with_cluster_id("lkc-1")
            .build()
            .unwrap_err()
            .to_string()
    };
    let e = build(ClientBuilder::new().with_root_certificate_pem(b"garbage"));
    assert!(e.contains("with_root_certificate_pem"), "{e}");
    assert!(e.contains("no certificate"), "{e}");
    let e = build(ClientBuilder::new().with_root_certificate_file("/nonexistent/ca.pem"));
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");

    let (certificate, key) = emulator.client_certificate_pem().unwrap();
    let (_, other_key) = other.client_certificate_pem().unwrap();
    let e = build(ClientBuilder::new().with_client_certificate_pem(certificate, "not a key"));
    assert!(e.contains("no usable private key"), "{e}");
    let e = build(ClientBuilder::new().with_client_certificate_pem(certificate, other_key));
    assert!(e.contains("cannot be used together"), "{e}");
    assert!(!e.contains(other_key.lines().nth(1).unwrap()), "{e}");
    let e = build(ClientBuilder::new().with_client_certificate_pem("", key));
    assert!(e.contains("no client certificate"), "{e}");
}

/// A minimal HTTP CONNECT proxy recording the targets it tunnels to (and
/// the Proxy-Authorization sent, after a space).
async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                let target = match line.split_whitespace().collect::<Vec<_>>()[..] {
                    ["CONNECT", target, _] => target.to_owned(),
                    _ => return,
                };
                let mut authorization = None;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).await.unwrap();
                    if header == "\r\n" || header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("proxy-authorization")
                    {
                        authorization = Some(value.trim().to_owned());
                    }
                }
                let shown = match authorization {
                    Some(authorization) => format!("{target} {authorization}"),
                    None => target.clone(),
                };
                seen.lock().unwrap().push(shown);
                let mut upstream = TcpStream::connect(&target).await.unwrap();
                let mut client = reader.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (url, targets)
}

#[tokio::test]
async fn every_connection_goes_through_the_proxy() {
    let emulator = common::emulator()
        .with_oauth_client("client", "client-secret", "sa-1", common::POOL)
        .with_tls(true)
        .start()
        .await
        .unwrap();
    let (proxy, targets) = connect_proxy().await;
    let client = common::client_for(&emulator)
        .with_root_certificate_pem(emulator.ca_certificate_pem().unwrap())
        .with_proxy(proxy)
        .with_credentials(
            Credentials::oauth(ClientCredentials::new(
                emulator.token_url(),
                "client",
                "client-secret",
            ))
            .with_identity_pool_id(common::POOL),
        )
        .build()
        .unwrap();
    client
        .produce("demo", &Record::from_value("via proxy"))
        .await
        .unwrap();
    let targets = targets.lock().unwrap().clone();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| *t == emulator.addr().to_string()),
        "{targets:?}"
    );
    assert_eq!(emulator.tokens_issued(), 1);
    assert_eq!(emulator.records("demo").len(), 1);
}

#[tokio::test]
async fn streams_go_through_the_proxy_tunnel_in_http2() {
    let emulator = https_emulator().await;
    let (proxy, targets) = connect_proxy().await;
    // Credentials for the proxy go in Proxy-Authorization, as reqwest
    // sends them.
    let proxy = proxy.replace("http://", "http://user:pw%2F7@");
    let client = common::client_for(&emulator)
        .with_root_certificate_pem(emulator.ca_certificate_pem().unwrap())
        .with_proxy(proxy)
        .build()
        .unwrap();
    let config = common::fast_retries().with_connections(3);
    let producer = ccloud_kafka_rest::Producer::with_config(client, config).unwrap();
    for i in 0..30 {
        producer
            .enqueue("demo", &Record::from_value(i.to_string()))
            .await;
    }
    tokio::time::timeout(Duration::from_secs(30), producer.flush())
        .await
        .expect("flushed in time");
    let versions = emulator.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (0, 3), "{versions:?}");
    // One tunnel carries the three lanes' streams.
    let targets = targets.lock().unwrap().clone();
    let expected = format!("{} Basic dXNlcjpwdy83", emulator.addr());
    assert_eq!(targets, vec![expected]);
    assert_eq!(emulator.records("demo").len(), 30);
}

#[tokio::test]
async fn without_proxy_ignores_a_proxy_that_does_not_exist() {
    let emulator = https_emulator().await;
    // Would fail if used: nothing listens there.
    let client = common::client_for(&emulator)
        .with_root_certificate_pem(emulator.ca_certificate_pem().unwrap())
        .with_proxy("http://127.0.0.1:9")
        .without_proxy()
        .build()
        .unwrap();
    client
        .produce("demo", &Record::from_value("direct"))
        .await
        .unwrap();
}
