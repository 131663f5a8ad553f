//! Upload rate of one streaming request over TLS, HTTP/2 against HTTP/1.1:
//! the HTTP/2 receive windows must not hold a stream below HTTP/1.1. A
//! measurement, not a check; run it in release:
//! `cargo test -p ccloud-kafka-rest-emulator --release --test http2_throughput -- --ignored --nocapture`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ccloud_kafka_rest_emulator::Emulator;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// How long each run sends.
const RUN: Duration = Duration::from_secs(3);

fn tls_client(emu: &Emulator, alpn: &[u8]) -> reqwest::Client {
    let _ = common::raw_http::client();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::pem::PemObject::pem_slice_iter(
        emu.ca_certificate_pem().unwrap().as_bytes(),
    ) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// Streams records with 100-byte values, `per_chunk` to a piece of body,
/// for [`RUN`]: the records reported per second.
async fn rate(alpn: &[u8], per_chunk: usize) -> f64 {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_tls(true)
        .start()
        .await
        .unwrap();
    let http = tls_client(&emu, alpn);
    let value = "x".repeat(100);
    let record = format!(r#"{{"value":{{"type":"STRING","data":"{value}"}}}}"#);
    let chunk = Bytes::from(record.repeat(per_chunk));
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let url = format!(
        "{}/kafka/v3/clusters/{}/topics/demo/records",
        emu.url(),
        emu.cluster_id()
    );
    tx.send(chunk.clone()).await.unwrap();
    let mut resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    let expected = if alpn == b"h2" {
        reqwest::Version::HTTP_2
    } else {
        reqwest::Version::HTTP_11
    };
    assert_eq!(resp.version(), expected);
    let began = Instant::now();
    let feeder = tokio::spawn(async move {
        while began.elapsed() < RUN {
            if tx.send(chunk.clone()).await.is_err() {
                break;
            }
        }
    });
    let mut reports = 0usize;
    while let Ok(Ok(Some(data))) = timeout(Duration::from_secs(10), resp.chunk()).await {
        reports += data.iter().filter(|&&b| b == b'\n').count();
        if began.elapsed() >= RUN && feeder.is_finished() {
            break;
        }
    }
    let took = began.elapsed().as_secs_f64();
    emu.shutdown().await;
    reports as f64 / took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it in release with --ignored --nocapture"]
async fn one_stream_uploads_as_fast_over_h2_as_over_http1() {
    for per_chunk in [1, 16, 256] {
        let http1 = rate(b"http/1.1", per_chunk).await;
        let h2 = rate(b"h2", per_chunk).await;
        println!(
            "{per_chunk:>4} records a piece: HTTP/1.1 {http1:>9.0} records/s, HTTP/2 {h2:>9.0} records/s ({:.2}x)",
            h2 / http1
        );
    }
}
