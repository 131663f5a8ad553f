//! The streaming producer against the emulator over loopback.

mod common;

use ccloud_kafka_rest::{
    Credentials, Error, Producer, ProducerConfig, Record, Routing, UnknownOutcome,
};
use ccloud_kafka_rest_emulator::{Emulator, HttpFault};
use common::{fast_retries, logged, producer};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn ten_thousand_records_on_one_stream_in_order() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default());
    let mut deliveries = Vec::new();
    for i in 0..10_000u64 {
        let record = Record::from_value(i.to_string()).with_partition(0);
        deliveries.push(producer.enqueue("demo", &record).await);
    }
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let report = delivery.await.unwrap();
        assert_eq!((report.partition, report.offset), (0, i as i64));
        assert_eq!((report.attempts, report.possibly_duplicated), (1, false));
    }
    assert_eq!(logged(&emulator, "demo"), (0..10_000).collect::<Vec<_>>());
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.delivered, stats.failed, stats.in_flight),
        (10_000, 10_000, 0, 0)
    );
    assert_eq!(stats.streams_opened, 1, "{stats:?}");
    assert!(
        emulator.requests() == 1,
        "one streaming request carried every record"
    );
    producer.close().await;
}

#[tokio::test]
async fn send_all_yields_outcomes_in_order() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default().with_connections(3));
    let records = futures_util::stream::iter(0..500u64).map(|i| match i {
        // Partition 7 does not exist: the server refuses this one.
        250 => Record::from_value(i.to_string()).with_partition(7),
        // Refused before anything is sent.
        100 => Record::from_value(i.to_string()).with_partition(-1),
        _ => Record::from_value(i.to_string()),
    });
    let outcomes: Vec<_> = producer.send_all("demo", records).collect().await;
    assert_eq!(outcomes.len(), 500);
    let mut failed = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Err(e) = outcome {
            // Each failure says which record it is.
            assert_eq!(e.index, i);
            assert!(e.to_string().starts_with(&format!("record {i} ")), "{e}");
            failed.push(i);
            match i {
                250 => assert_eq!(e.error.error_code(), Some(40403)),
                _ => assert!(matches!(e.error, Error::InvalidInput(_)), "{e}"),
            }
        }
    }
    assert_eq!(failed, [100, 250]);
    let mut values = logged(&emulator, "demo");
    values.sort_unstable();
    let expected: Vec<u64> = (0..500).filter(|i| *i != 250 && *i != 100).collect();
    assert_eq!(values, expected);
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.delivered, stats.failed, stats.refused),
        (499, 498, 1, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn in_flight_never_exceeds_the_bounds() {
    const RECORDS: u64 = 1_000_000;
    let emulator = common::emulator().start().await.unwrap();
    let config = ProducerConfig::default()
        .with_max_in_flight_records(64)
        .with_max_in_flight_bytes(4096);
    let producer = producer(&emulator, config);
    let records = futures_util::stream::iter(0..RECORDS).map(|i| Record::from_value(i.to_string()));
    let (delivered, max) = producer
        .send_all("orders", records)
        .fold((0u64, 0u64), |(delivered, max), outcome| {
            let in_flight = producer.stats().in_flight;
            async move { (delivered + u64::from(outcome.is_ok()), max.max(in_flight)) }
        })
        .await;
    assert_eq!(delivered, RECORDS);
    assert!(max <= 64, "in flight reached {max}");
    assert!(max > 1, "records were pipelined ({max})");
    assert_eq!(emulator.records("orders").len() as u64, RECORDS);
}

#[tokio::test]
async fn close_resolves_everything_pending_and_refuses_later_records() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default().with_connections(2));
    let mut deliveries = Vec::new();
    for i in 0..2_000u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    producer.close().await;
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    assert_eq!(emulator.records("orders").len(), 2_000);
    let late = producer.send("orders", &Record::from_value("late")).await;
    assert!(matches!(late, Err(Error::Closed)), "{late:?}");
}

#[tokio::test]
async fn dropped_futures_and_producer_still_deliver() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default());
    for i in 0..300u64 {
        drop(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    producer.flush().await;
    assert_eq!(producer.stats().delivered, 300);
    let second = producer.clone();
    drop(producer);
    drop(second.enqueue("orders", &Record::from_value("300")).await);
    drop(second);
    for _ in 0..100 {
        if emulator.records("orders").len() == 301 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("records sent before the producer was dropped were not delivered");
}

#[tokio::test]
async fn retriable_report_codes_are_resent() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, fast_retries());
    emulator.fail_next_records(42901, "throttled", 3);
    let mut deliveries = Vec::new();
    for i in 0..20u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    let mut retried = 0;
    for delivery in deliveries {
        let report = delivery.await.unwrap();
        assert!(!report.possibly_duplicated);
        retried += u32::from(report.attempts > 1);
    }
    assert_eq!(retried, 3);
    let mut values = logged(&emulator, "orders");
    values.sort_unstable();
    assert_eq!(values, (0..20).collect::<Vec<_>>());
    // Throttling is counted apart from the retries of errors.
    let stats = producer.stats();
    assert_eq!((stats.throttled, stats.retried), (3, 0), "{stats:?}");
}

#[tokio::test]
async fn unknown_outcomes_are_resent_and_flagged_or_failed_by_policy() {
    let emulator = common::emulator().start().await.unwrap();
    let resend = producer(&emulator, fast_retries());
    emulator.fail_next_records(50003, "retriable kafka error", 1);
    let report = resend
        .send("orders", &Record::from_value("0"))
        .await
        .unwrap();
    assert_eq!((report.attempts, report.possibly_duplicated), (2, true));

    let at_most_once = producer(
        &emulator,
        fast_retries().with_unknown_outcome(UnknownOutcome::Fail),
    );
    emulator.fail_next_records(50003, "retriable kafka error", 1);
    let e = at_most_once
        .send("orders", &Record::from_value("1"))
        .await
        .unwrap_err();
    assert_eq!(e.error_code(), Some(50003));
}

#[tokio::test]
async fn a_cut_connection_resends_what_had_no_report() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, fast_retries());
    emulator.cut_connection_after_records(50);
    let mut deliveries = Vec::new();
    for i in 0..200u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    let mut flagged = Vec::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let report = delivery.await.unwrap();
        if report.possibly_duplicated {
            flagged.push(i as u64);
        }
    }
    // Every record is in the log; any duplicate is one the report flagged.
    common::assert_each_logged_duplicates_flagged(&emulator, "orders", 200, &flagged);
    let stats = producer.stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
}

#[tokio::test]
async fn refused_stream_opens_are_retried_after_backoff() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, fast_retries());
    emulator.fail_next_requests(HttpFault::json(503, 50302, "broker unavailable"), 2);
    let report = producer
        .send("orders", &Record::from_value("0"))
        .await
        .unwrap();
    assert_eq!(report.attempts, 3);
    assert!(
        !report.possibly_duplicated,
        "a refused stream wrote nothing"
    );
    // Three requests, one answered 200 after two refusals: one stream
    // opened, one reconnect; the refused opens count as neither.
    assert_eq!(emulator.requests(), 3);
    let stats = producer.stats();
    assert_eq!(
        (stats.streams_opened, stats.reconnects),
        (1, 1),
        "{stats:?}"
    );
    let connection = stats.topics[0].connections[0];
    assert_eq!((connection.streams_opened, connection.reconnects), (1, 1));
    emulator.fail_next_requests(HttpFault::rate_limited(Some(0)), 1);
    producer
        .send("orders", &Record::from_value("1"))
        .await
        .unwrap();
    assert_eq!(logged(&emulator, "orders"), vec![0, 1]);
}

#[tokio::test]
async fn auth_failure_at_open_fails_the_records_with_it() {
    let emulator = common::emulator()
        .with_api_key(common::API_KEY, common::API_SECRET)
        .start()
        .await
        .unwrap();
    let client = common::client_for(&emulator)
        .with_credentials(Credentials::api_key(common::API_KEY, "wrong"))
        .build()
        .unwrap();
    let producer = Producer::with_config(client, fast_retries()).unwrap();
    let e = producer
        .send("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), e.error_code()),
        (Some(401), Some(40101)),
        "{e}"
    );
    let e = producer
        .send("no-such-topic", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn unknown_topic_fails_its_records_only() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, fast_retries());
    let e = producer
        .send("no-such-topic", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    producer
        .send("orders", &Record::from_value("7"))
        .await
        .unwrap();
    assert_eq!(logged(&emulator, "orders"), vec![7]);
}

#[tokio::test]
async fn expired_streams_are_replaced_without_losing_records() {
    let emulator = common::emulator()
        .with_stream_lifetime(Duration::from_millis(150))
        .with_stream_close_delay(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let producer = producer(&emulator, fast_retries());
    let mut deliveries = Vec::new();
    for i in 0..60u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    // A 408 record is not written, so each record is in the log exactly once
    // (a record cut off by the close may be flagged, but is not duplicated).
    let mut values = logged(&emulator, "orders");
    values.sort_unstable();
    assert_eq!(values, (0..60).collect::<Vec<_>>());
    assert!(
        producer.stats().streams_opened >= 3,
        "{:?}",
        producer.stats()
    );
}

#[tokio::test]
async fn delivery_timeout_bounds_retries() {
    let emulator = common::emulator().start().await.unwrap();
    let config = fast_retries().with_delivery_timeout(Duration::from_millis(300));
    let producer = producer(&emulator, config);
    emulator.fail_next_requests(HttpFault::json(503, 50302, "broker unavailable"), 1_000);
    let started = std::time::Instant::now();
    let e = producer
        .send("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::GaveUp { attempts, last_error: Some(_), .. } if *attempts >= 2),
        "{e:?}"
    );
    assert!(e.to_string().contains("50302"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let producer = producer_with_attempts(&emulator, 3);
    let e = producer
        .send("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::GaveUp { attempts: 3, .. }), "{e:?}");
}

fn producer_with_attempts(emulator: &Emulator, attempts: u32) -> Producer {
    producer(emulator, fast_retries().with_max_attempts(attempts))
}

#[tokio::test]
async fn idle_streams_are_closed_and_reopened_on_demand() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(
        &emulator,
        ProducerConfig::default().with_idle_timeout(Duration::from_millis(100)),
    );
    producer
        .send("orders", &Record::from_value("1"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    producer
        .send("orders", &Record::from_value("2"))
        .await
        .unwrap();
    let stats = producer.stats();
    assert_eq!(
        (stats.streams_opened, stats.reconnects),
        (2, 0),
        "{stats:?}"
    );
    assert_eq!(emulator.requests(), 2);
}

#[tokio::test]
async fn by_key_routing_keeps_per_key_order_across_connections() {
    let emulator = common::emulator().start().await.unwrap();
    let config = ProducerConfig::default()
        .with_connections(4)
        .with_routing(Routing::ByKey);
    let producer = producer(&emulator, config);
    let mut deliveries = Vec::new();
    for i in 0..2_000u64 {
        let key = format!("key-{}", i % 10);
        let record = Record::new().with_key(key).with_value(i.to_string());
        deliveries.push(producer.enqueue("demo", &record).await);
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    let mut last: HashMap<Vec<u8>, u64> = HashMap::new();
    for record in emulator.records("demo") {
        // records() is ordered by partition then offset, so per-key order is
        // log order within the key's partition.
        let value: u64 = std::str::from_utf8(record.value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let key = record.key.clone().unwrap();
        if let Some(previous) = last.insert(key, value) {
            assert!(previous < value, "out of order: {previous} then {value}");
        }
    }
    assert!(producer.stats().streams_opened >= 2);
}

#[tokio::test]
async fn strict_order_holds_across_retries() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, fast_retries().with_strict_order(true));
    emulator.fail_next_records(42901, "throttled", 5);
    let mut deliveries = Vec::new();
    for i in 0..50u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    assert_eq!(logged(&emulator, "orders"), (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn invalid_records_fail_alone() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default());
    let bad = producer
        .enqueue("orders", &Record::from_value("x").with_partition(-1))
        .await;
    let good = producer.enqueue("orders", &Record::from_value("5")).await;
    let bad_topic = producer
        .enqueue("bad topic", &Record::from_value("x"))
        .await;
    assert!(matches!(bad.await, Err(Error::InvalidInput(_))));
    assert!(matches!(bad_topic.await, Err(Error::InvalidInput(_))));
    good.await.unwrap();
    // The two refused ones were never handed over: they are not sent.
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.delivered, stats.failed, stats.refused),
        (1, 1, 0, 2)
    );
}

#[tokio::test]
async fn credentials_over_loopback_http_stream_records() {
    let (emulator, client) = common::with_api_key().await;
    let producer = Producer::new(client);
    let report = producer
        .send("orders", &Record::from_value("9"))
        .await
        .unwrap();
    assert_eq!(report.offset, 0);
    let headers = emulator.last_request_headers().unwrap();
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "authorization" && v.starts_with("Basic "))
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "application/json")
    );
    producer.close().await;
}

#[tokio::test]
async fn streams_are_rotated_before_their_age_limit() {
    let emulator = common::emulator().start().await.unwrap();
    let config = ProducerConfig::default().with_max_stream_age(Duration::from_millis(60));
    let producer = producer(&emulator, config);
    for i in 0..30u64 {
        let report = producer
            .send("orders", &Record::from_value(i.to_string()))
            .await
            .unwrap();
        assert!(!report.possibly_duplicated);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = producer.stats();
    assert!(stats.streams_opened >= 3, "{stats:?}");
    assert_eq!(stats.reconnects, 0, "rotation is not a failure: {stats:?}");
    assert_eq!(logged(&emulator, "orders"), (0..30).collect::<Vec<_>>());
}

/// Several connections to one topic on a multi-threaded runtime: the
/// emulator's streams append to the same partitions at the same moments,
/// which must neither lose a record nor leave a stream waiting forever. The
/// run has its own thread and runtime, so that a stuck runtime fails the
/// test instead of hanging it.
#[test]
fn concurrent_streams_to_one_topic_on_several_threads() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(concurrent_streams());
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(90))
        .expect("40,000 records over 4 connections resolve within 90 s");
}

async fn concurrent_streams() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default().with_connections(4));
    let sent = 40_000u64;
    let records = futures_util::stream::iter(0..sent).map(|i| Record::from_value(i.to_string()));
    let outcomes: Vec<_> = producer.send_all("demo", records).collect().await;
    let failed: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    let mut values = logged(&emulator, "demo");
    values.sort_unstable();
    assert_eq!(values, (0..sent).collect::<Vec<_>>());
    // Offsets are dense in every partition: no two appends took the same one.
    for partition in 0..3 {
        let offsets: Vec<i64> = emulator
            .partition_records("demo", partition)
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
    producer.close().await;
}
