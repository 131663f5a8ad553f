//! The producer against servers that stop answering, and runtimes that stop
//! under it: every record still gets a truthful outcome by its deadline.

mod common;

use ccloud_kafka_rest::{Error, Producer, ProducerConfig, Record, RetryClass};
use common::client_at as client;
use common::silent::silent_server;
use std::time::Duration;

#[tokio::test]
async fn written_records_that_are_never_reported_expire_as_outcome_unknown() {
    let (url, server) = silent_server().await;
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_millis(800));
    let producer = Producer::with_config(client(&url), config).unwrap();
    let started = tokio::time::Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        deliveries.push(
            producer
                .enqueue("demo", &Record::from_value(format!("r{i}")))
                .await,
        );
    }
    for delivery in deliveries {
        let outcome = tokio::time::timeout(Duration::from_secs(10), delivery)
            .await
            .expect("resolved by its deadline");
        let error = outcome.expect_err("never reported");
        assert!(
            matches!(
                error,
                Error::GaveUp {
                    may_have_been_written: true,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing is left, so close ends.
    tokio::time::timeout(Duration::from_secs(10), producer.close())
        .await
        .expect("close ends");
    server.abort();
}

#[tokio::test]
async fn close_timeout_resolves_what_is_still_in_flight() {
    let (url, server) = silent_server().await;
    let producer = Producer::new(client(&url));
    let delivery = producer.enqueue("demo", &Record::from_value("x")).await;
    // Let the record reach the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let unresolved = producer.close_timeout(Duration::from_millis(200)).await;
    assert_eq!(unresolved, 1);
    let error = delivery.await.expect_err("abandoned");
    assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown, "{error}");
    assert_eq!(producer.stats().in_flight, 0);
    server.abort();
}

#[tokio::test]
async fn flush_timeout_says_how_many_are_left_and_leaves_them_running() {
    let (url, server) = silent_server().await;
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_secs(2));
    let producer = Producer::with_config(client(&url), config).unwrap();
    let a = producer.enqueue("demo", &Record::from_value("a")).await;
    let b = producer.enqueue("demo", &Record::from_value("b")).await;
    assert_eq!(producer.flush_timeout(Duration::from_millis(100)).await, 2);
    // Still running: they resolve by their deadline.
    assert!(a.await.is_err());
    assert!(b.await.is_err());
    assert_eq!(producer.flush_timeout(Duration::from_millis(100)).await, 0);
    server.abort();
}

#[tokio::test]
async fn concurrent_closes_all_wait_for_every_record() {
    let (url, server) = silent_server().await;
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_millis(500));
    let producer = Producer::with_config(client(&url), config).unwrap();
    let delivery = producer.enqueue("demo", &Record::from_value("x")).await;
    let (first, second) = tokio::join!(
        async {
            producer.close().await;
            producer.stats().in_flight
        },
        async {
            producer.close().await;
            producer.stats().in_flight
        }
    );
    assert_eq!((first, second), (0, 0));
    assert!(delivery.await.is_err());
    server.abort();
}

#[test]
fn a_runtime_shut_down_mid_flight_reports_written_records_as_outcome_unknown() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deliveries = runtime.block_on(async {
        let (url, _server) = silent_server().await;
        let producer = Producer::new(client(&url));
        let mut deliveries = Vec::new();
        for i in 0..10 {
            deliveries.push(
                producer
                    .enqueue("demo", &Record::from_value(format!("r{i}")))
                    .await,
            );
        }
        // Let them be written.
        tokio::time::sleep(Duration::from_millis(300)).await;
        deliveries
    });
    drop(runtime);
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        for delivery in deliveries {
            let error = tokio::time::timeout(Duration::from_secs(5), delivery)
                .await
                .expect("resolved when the runtime stopped")
                .expect_err("not delivered");
            assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown, "{error}");
        }
    });
}

#[tokio::test]
async fn a_refused_connection_says_so() {
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}");
    let config = ProducerConfig::default()
        .with_delivery_timeout(Duration::from_millis(600))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
    let producer = Producer::with_config(client(&url), config).unwrap();
    let error = producer
        .send("demo", &Record::from_value("x"))
        .await
        .expect_err("nothing listens");
    assert_eq!(error.retry_class(), RetryClass::Terminal, "{error}");
    let text = error.to_string();
    assert!(text.contains("it was not written"), "{text}");
    assert!(
        !text.contains("before the record's delivery report"),
        "{text}"
    );
    producer.close().await;
}
