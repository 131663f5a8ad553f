//! Loopback tests of the emulator's outages: the listening socket is closed
//! (connects are refused), open connections are dropped, and the same port
//! serves again once the window is over. Over HTTP and HTTPS.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use ccloud_kafka_rest::{Error, Record};
use ccloud_kafka_rest_emulator::{Emulator, FaultPlan};
use common::raw_http::{RawConn, client};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// The longest any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(10);

fn path(emu: &Emulator) -> String {
    format!(
        "/kafka/v3/clusters/{}/topics/demo/records",
        emu.cluster_id()
    )
}

fn record(data: &str) -> String {
    json!({"value": {"type": "STRING", "data": data}}).to_string()
}

fn values(emu: &Emulator) -> Vec<String> {
    emu.records("demo")
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Asserts that a TCP connect to `addr` is refused.
async fn assert_refused(addr: SocketAddr) {
    let attempt = timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("the connect is answered in time");
    match attempt {
        Ok(_) => panic!("a connect to {addr} succeeded during the outage"),
        Err(error) => assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "{error}"),
    }
}

/// Waits (bounded) until the emulator listens again.
async fn wait_listening(emu: &Emulator) {
    let deadline = Instant::now() + WAIT;
    while !emu.is_listening() {
        assert!(
            Instant::now() < deadline,
            "still not listening after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until the emulator has stopped listening.
async fn wait_down(emu: &Emulator) {
    let deadline = Instant::now() + WAIT;
    while emu.is_listening() {
        assert!(Instant::now() < deadline, "no outage began within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asserts that the peer closes `socket` (end of file or a reset).
async fn assert_closed(socket: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + WAIT;
    loop {
        let read = timeout(WAIT, socket.read(&mut buf))
            .await
            .expect("the connection is closed in time");
        match read {
            Ok(0) | Err(_) => return,
            // Whatever was already on its way; keep reading until the close.
            Ok(_) => assert!(Instant::now() < deadline, "the connection stays open"),
        }
    }
}

async fn post(http: &reqwest::Client, emu: &Emulator, data: &str) -> Value {
    let response = timeout(
        WAIT,
        http.post(format!("{}{}", emu.url(), path(emu)))
            .header("Content-Type", "application/json")
            .body(record(data))
            .send(),
    )
    .await
    .expect("answered in time")
    .expect("the request succeeds");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("a body");
    serde_json::from_str(text.trim()).expect("a JSON report")
}

#[tokio::test]
async fn outage_refuses_connects_cuts_streams_and_serves_again_on_the_same_port() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let addr = emu.addr();

    // A stream in flight: one record reported, the body still open.
    let mut stream = RawConn::open(&emu, &path(&emu), &[]).await;
    assert!(stream.chunk(record("before").as_bytes()).await);
    assert_eq!(stream.status().await, 200);
    let report = stream.report().await.expect("a report before the outage");
    assert_eq!(report["error_code"], 200);

    emu.outage(Duration::from_millis(600)).await;
    assert!(!emu.is_listening());
    assert_refused(addr).await;
    // The open stream is cut: no final chunk, the connection ends.
    let (reports, ended) = stream.rest().await;
    assert!(reports.is_empty(), "{reports:?}");
    assert!(!ended, "the response ended cleanly instead of being cut");
    assert!(stream.eof);

    wait_listening(&emu).await;
    assert_eq!(emu.addr(), addr);
    let report = post(&client(), &emu, "after").await;
    assert_eq!(report["error_code"], 200);
    assert_eq!(report["offset"], 1, "the log survives the outage");
    assert_eq!(values(&emu), ["before", "after"]);

    let stats = emu.fault_stats();
    assert_eq!(stats.outages, 1);
    assert_eq!(stats.outage_dropped_connections, 1);
}

#[tokio::test]
async fn planned_windows_close_and_reopen_the_listener() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let addr = emu.addr();
    let http = client();
    assert_eq!(post(&http, &emu, "one").await["error_code"], 200);

    // An idle connection, open when the window begins.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // Windows count from when the plan is set.
    emu.set_faults(FaultPlan::new(1).with_outages(vec![(
        Duration::from_millis(100),
        Duration::from_millis(700),
    )]));
    wait_down(&emu).await;
    assert_refused(addr).await;
    assert_closed(&mut idle).await;

    wait_listening(&emu).await;
    assert_eq!(post(&http, &emu, "two").await["error_code"], 200);
    assert_eq!(values(&emu), ["one", "two"]);
    assert_eq!(emu.fault_stats().outages, 1);
    // Nothing more is planned: the emulator keeps listening.
    assert!(emu.is_listening());
}

#[test]
fn periodic_windows_are_laid_out_from_the_first() {
    let plan = FaultPlan::new(0).with_periodic_outages(
        Duration::from_secs(1),
        Duration::from_secs(5),
        Duration::from_secs(2),
        3,
    );
    let s = Duration::from_secs;
    assert_eq!(plan.outages, [(s(1), s(3)), (s(6), s(8)), (s(11), s(13))]);
}

#[tokio::test]
async fn outage_over_https() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_tls(true)
        .start()
        .await
        .unwrap();
    let addr = emu.addr();
    let ca = emu.ca_certificate_pem().expect("a CA");
    let https = common::client_for(&emu)
        .with_root_certificate_pem(ca)
        .build()
        .unwrap();
    let report = https
        .produce("demo", &Record::from_value("before"))
        .await
        .unwrap();
    assert_eq!(report.offset, 0);

    // A connection accepted and waiting for its TLS handshake.
    let mut pending = TcpStream::connect(addr).await.unwrap();
    emu.outage(Duration::from_millis(500)).await;
    assert_refused(addr).await;
    assert_closed(&mut pending).await;

    // A connect error while down; the same client succeeds once it is back.
    let error = https
        .produce("demo", &Record::from_value("during"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert!(error.is_retriable(), "{error:?}");
    wait_listening(&emu).await;
    let report = https
        .produce("demo", &Record::from_value("after"))
        .await
        .unwrap();
    assert_eq!(report.offset, 1);
    assert_eq!(values(&emu), ["before", "after"]);
}

#[tokio::test]
async fn clear_faults_ends_an_outage_early() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    // Far longer than the test may take: only clearing can end it.
    emu.outage(Duration::from_secs(3600)).await;
    assert_refused(emu.addr()).await;
    emu.clear_faults();
    wait_listening(&emu).await;
    assert_eq!(post(&client(), &emu, "back").await["error_code"], 200);
}
