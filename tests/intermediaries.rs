//! The producer through the intermediaries the emulator plays: a proxy that
//! buffers request bodies (with and without a body cap), one that holds
//! reports back until a body ends, gateways that answer 502, 503 or 504,
//! and a slow but healthy server. Thresholds are scaled down; every record
//! must be delivered once, in order, or fail alone for a reason of its own.

mod common;

use ccloud_kafka_rest::{DeliveryReport, Error, Producer, ProducerConfig, Record};
use ccloud_kafka_rest_emulator::{Emulator, FaultPlan, HttpFault, Intermediary};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Every test ends within this, or fails.
const GUARD: Duration = Duration::from_secs(60);

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The default configuration, with the path's thresholds scaled down.
fn scaled() -> ProducerConfig {
    common::fast_retries()
        .with_buffering_check(ms(200))
        .with_report_stall(Some(ms(200)))
        .with_fallback_requests(64 * 1024, ms(50), Duration::from_secs(600))
}

async fn start(intermediary: Intermediary, faults: FaultPlan) -> Emulator {
    common::emulator()
        .with_intermediary(intermediary)
        .with_faults(faults)
        .start()
        .await
        .expect("emulator starts")
}

/// Sends `values` to `orders` (one partition) and returns each outcome.
async fn send(
    producer: &Producer,
    values: impl Iterator<Item = String> + Send,
) -> Vec<Result<DeliveryReport, Error>> {
    let records = futures_util::stream::iter(values.map(Record::from_value));
    let outcomes = timeout(
        GUARD,
        producer
            .send_all("orders", records)
            .map(|outcome| outcome.map_err(|e| e.error))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("the records are resolved in time");
    timeout(GUARD, producer.close())
        .await
        .expect("the producer closes");
    outcomes
}

fn numbers(count: u64) -> impl Iterator<Item = String> + Send {
    (0..count).map(|i| i.to_string())
}

/// Every record delivered, none flagged as a duplicate, each in the log
/// once, in the order sent.
fn delivered_once_in_order(emulator: &Emulator, outcomes: &[Result<DeliveryReport, Error>]) {
    for (i, outcome) in outcomes.iter().enumerate() {
        let report = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert!(!report.possibly_duplicated, "record {i}: {report:?}");
    }
    let logged = common::logged(emulator, "orders");
    let expected: Vec<u64> = (0..outcomes.len() as u64).collect();
    assert_eq!(logged, expected, "the log holds each record once, in order");
}

#[tokio::test]
async fn a_buffering_proxy_is_detected_and_bounded_requests_deliver_everything() {
    let emulator = start(Intermediary::buffering(), FaultPlan::default()).await;
    let producer = common::producer(&emulator, scaled());
    // The first records go on a stream that gets no headers until the
    // check ends its body; those after go on bounded requests.
    let first =
        futures_util::stream::iter((0..5_000u64).map(|i| Record::from_value(i.to_string())));
    let mut outcomes: Vec<_> = timeout(
        GUARD,
        producer
            .send_all("orders", first)
            .map(|outcome| outcome.map_err(|e| e.error))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("resolved in time");
    let stats = producer.stats();
    assert_eq!(stats.buffering_detected, 1, "{stats:?}");
    assert!(stats.bounded_requests, "{stats:?}");
    let opened = stats.streams_opened;
    let rest = (5_000..10_000u64).map(|i| i.to_string());
    outcomes.extend(send(&producer, rest).await);
    delivered_once_in_order(&emulator, &outcomes);
    let stats = producer.stats();
    assert_eq!(stats.buffering_detected, 1, "{stats:?}");
    assert_eq!(stats.retried, 0, "{stats:?}");
    // Requests of at most 64 KiB: 5,000 records of about 30 bytes take
    // more than one.
    assert!(stats.streams_opened >= opened + 2, "{stats:?}");
}

#[tokio::test]
async fn a_body_cap_shrinks_requests_of_many_records_and_fails_nothing() {
    // The default buffering check: the cap's 413 comes first.
    let intermediary = Intermediary::buffering().with_body_cap(16 * 1024);
    let emulator = start(intermediary, FaultPlan::default()).await;
    let config =
        common::fast_retries().with_fallback_requests(64 * 1024, ms(50), Duration::from_secs(600));
    let producer = common::producer(&emulator, config);
    let outcomes = send(&producer, numbers(5_000)).await;
    delivered_once_in_order(&emulator, &outcomes);
    // A request refused as a whole costs no attempt.
    for outcome in &outcomes {
        assert_eq!(outcome.as_ref().unwrap().attempts, 1);
    }
    let stats = producer.stats();
    assert!(stats.requests_shrunk >= 1, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
}

#[tokio::test]
async fn a_single_record_over_the_cap_fails_alone() {
    let intermediary = Intermediary::buffering().with_body_cap(2 * 1024);
    let emulator = start(intermediary, FaultPlan::default()).await;
    let producer = common::producer(&emulator, scaled());
    let big = "x".repeat(4 * 1024);
    let values = (0..400u64).map(move |i| if i == 200 { big.clone() } else { i.to_string() });
    let outcomes = send(&producer, values).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (200, Err(error)) => {
                assert_eq!(error.status(), Some(413), "{error}");
                assert!(!matches!(error, Error::MaybeWritten { .. }), "{error}");
            }
            (200, Ok(report)) => panic!("the record over the cap was delivered: {report:?}"),
            (_, Err(error)) => panic!("record {i} failed: {error}"),
            (_, Ok(report)) => assert!(!report.possibly_duplicated),
        }
    }
    let logged = common::logged(&emulator, "orders");
    let expected: Vec<u64> = (0..400).filter(|i| *i != 200).collect();
    assert_eq!(logged, expected);
}

#[tokio::test]
async fn reports_held_until_the_body_ends_come_out_after_the_stall() {
    let emulator = start(Intermediary::holding_reports(), FaultPlan::default()).await;
    let producer = common::producer(&emulator, scaled());
    // A trickle: each record waits for its report before the next goes.
    for i in 0..5u64 {
        let record = Record::from_value(i.to_string());
        let report = timeout(GUARD, producer.send("orders", &record))
            .await
            .expect("a held report comes out once the body ends")
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert!(!report.possibly_duplicated);
    }
    // And a stream of them.
    let records =
        futures_util::stream::iter((5..2_000u64).map(|i| Record::from_value(i.to_string())));
    let outcomes = timeout(
        GUARD,
        producer.send_all("orders", records).collect::<Vec<_>>(),
    )
    .await
    .expect("resolved in time");
    timeout(GUARD, producer.close()).await.expect("closes");
    assert!(
        outcomes
            .iter()
            .all(|o| o.as_ref().is_ok_and(|r| !r.possibly_duplicated))
    );
    let logged = common::logged(&emulator, "orders");
    assert_eq!(logged, (0..2_000).collect::<Vec<u64>>());
    let stats = producer.stats();
    assert!(stats.stalled_bodies >= 5, "{stats:?}");
    assert_eq!(stats.buffering_detected, 0, "{stats:?}");
}

#[tokio::test]
async fn a_slow_healthy_server_is_neither_cut_nor_taken_for_a_buffering_one() {
    // Each report 300 ms late: past the scaled buffering check and stall.
    let faults = FaultPlan {
        report_delay: Some(ms(300)),
        ..FaultPlan::default()
    };
    let emulator = start(Intermediary::streaming(), faults).await;
    let producer = common::producer(&emulator, scaled());
    let outcomes = send(&producer, numbers(20)).await;
    delivered_once_in_order(&emulator, &outcomes);
    let stats = producer.stats();
    assert_eq!(stats.buffering_detected, 0, "{stats:?}");
    assert_eq!(stats.retried, 0, "{stats:?}");
    assert!(!stats.bounded_requests);
}

#[tokio::test]
async fn gateway_errors_before_the_stream_lose_nothing() {
    let emulator = start(Intermediary::streaming(), FaultPlan::default()).await;
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    emulator.fail_next_requests(HttpFault::new(502, "text/html", page), 1);
    emulator.fail_next_requests(HttpFault::new(503, "text/html", page), 1);
    // The server's own refusal, with its code: nothing was read.
    emulator.fail_next_requests(HttpFault::json(503, 50302, "unavailable"), 1);
    let producer = common::producer(&emulator, scaled());
    let outcomes = send(&producer, numbers(1_000)).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.is_ok(), "record {i}: {outcome:?}");
    }
    // Each in the log once: a gateway error page may come after records
    // went into the body, so they are sent again flagged, but none was
    // stored twice here.
    let logged = common::logged(&emulator, "orders");
    assert_eq!(logged, (0..1_000).collect::<Vec<u64>>());
    assert!(producer.stats().retried > 0);
}

#[tokio::test]
async fn a_gateway_timeout_after_records_went_through_resends_them_flagged() {
    // The server holds its headers 2 s; the gateway gives up after 300 ms
    // with an HTML 504, after the records reached the server.
    let faults = FaultPlan {
        header_delay: Some(Duration::from_secs(2)),
        ..FaultPlan::default()
    };
    let intermediary = Intermediary::streaming().with_upstream_timeout(ms(300));
    let emulator = start(intermediary, faults).await;
    let producer = common::producer(&emulator, common::fast_retries());
    let record = Record::from_value("0");
    let first = timeout(GUARD, producer.send("orders", &record));
    let heal = async {
        tokio::time::sleep(ms(1_000)).await;
        emulator.set_faults(FaultPlan::default());
    };
    let (outcome, ()) = tokio::join!(first, heal);
    let report = outcome.expect("resolved in time").expect("delivered");
    let copies = common::logged(&emulator, "orders").len();
    assert!(copies >= 2, "the 504 came after the record was stored");
    assert!(
        report.possibly_duplicated,
        "a record resent after a gateway error that may have passed it on is flagged: {report:?}"
    );
    timeout(GUARD, producer.close()).await.expect("closes");
}

#[tokio::test]
async fn a_stream_request_never_asks_for_a_compressed_response() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let producer = Producer::with_config(
        common::client_at(&url),
        ProducerConfig::default().with_delivery_timeout(ms(2_000)),
    )
    .unwrap();
    let sending = tokio::spawn(async move {
        let _ = producer.send("orders", &Record::from_value("x")).await;
    });
    let (mut socket, _) = timeout(GUARD, listener.accept()).await.unwrap().unwrap();
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let read = timeout(GUARD, socket.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(read > 0, "the request head ended early");
        head.extend_from_slice(&buffer[..read]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("post "), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("accept-encoding"), "{head}");
    drop(socket);
    timeout(GUARD, sending).await.unwrap().unwrap();
}
