//! The producer's API for callers that must not wait or must know which
//! record failed: `try_send`, the queue timeout, `send_all`'s indices, the
//! stats a service exports, cancellation, and the log of retry decisions.

mod common;

use ccloud_kafka_rest::{
    Error, InvalidInput, MAX_CONFIGURED_DURATION, Producer, ProducerConfig, Record, RetryClass,
    TrySendError,
};
use ccloud_kafka_rest_emulator::{FaultPlan, HttpFault};
use common::silent::silent_server;
use common::{client_at, fast_retries, logged, producer};
use futures_util::StreamExt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One record in flight per connection, never reported: the connection
/// stays full until the record's delivery timeout.
async fn full_lane(config: ProducerConfig) -> (Producer, tokio::task::JoinHandle<()>) {
    let (url, server) = silent_server().await;
    let config = config.with_max_in_flight_records(1);
    let producer = Producer::with_config(client_at(&url), config).unwrap();
    (producer, server)
}

fn value(record: &Record) -> Option<&ccloud_kafka_rest::Payload> {
    record.value()
}

#[tokio::test]
async fn try_send_hands_the_record_back_when_its_connection_is_full() {
    let (producer, server) =
        full_lane(ProducerConfig::default().with_delivery_timeout(Duration::from_secs(60))).await;
    let first = producer
        .try_send("demo", Record::from_value("first"))
        .expect("room for one");
    let refused = producer
        .try_send("demo", Record::from_value("second").with_key("k"))
        .expect_err("no room");
    assert!(refused.is_full(), "{refused}");
    assert!(matches!(refused, TrySendError::Full(_)));
    assert!(refused.to_string().contains("no room"), "{refused}");
    let back = refused.into_record();
    assert_eq!(back, Record::from_value("second").with_key("k"));
    // The refused record was neither sent nor counted.
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.in_flight, stats.refused, stats.failed),
        (1, 1, 0, 0),
        "{stats:?}"
    );
    // As an error, a full producer is QueueFull, retriable, with the record.
    let error = Error::from(producer.try_send("demo", back).expect_err("still no room"));
    assert_eq!(error.retry_class(), RetryClass::Retriable);
    assert!(matches!(error, Error::QueueFull { .. }), "{error}");
    assert_eq!(
        error.into_record().as_ref().and_then(value),
        Record::from_value("second").value()
    );

    // Invalid input says why and hands the record back too.
    let bad_topic = producer
        .try_send("bad topic", Record::from_value("x"))
        .expect_err("invalid topic");
    assert!(
        matches!(
            &bad_topic,
            TrySendError::Invalid {
                error: Error::InvalidInput(InvalidInput::TopicName { .. }),
                ..
            }
        ),
        "{bad_topic:?}"
    );
    assert!(bad_topic.to_string().contains("bad topic"), "{bad_topic}");
    let bad_record = producer
        .try_send("demo", Record::from_value("y").with_partition(-1))
        .expect_err("invalid partition");
    assert!(
        matches!(
            &bad_record,
            TrySendError::Invalid {
                error: Error::InvalidInput(InvalidInput::Partition(-1)),
                ..
            }
        ),
        "{bad_record:?}"
    );
    assert_eq!(bad_record.record().partition(), Some(-1));

    // Closed: the record in flight is resolved, a new one is handed back.
    assert_eq!(producer.close_timeout(Duration::from_millis(200)).await, 1);
    let error = first.await.expect_err("abandoned");
    assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown, "{error}");
    let closed = producer
        .try_send("demo", Record::from_value("late"))
        .expect_err("closed");
    assert!(matches!(&closed, TrySendError::Closed(_)), "{closed:?}");
    assert_eq!(closed.into_record(), Record::from_value("late"));
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.refused, stats.in_flight),
        (1, 1, 0, 0),
        "{stats:?}"
    );
    server.abort();
}

#[tokio::test]
async fn try_send_sends_exactly_what_it_takes() {
    // Reports come late, so connections fill up and try_send refuses.
    let mut plan = FaultPlan::new(1);
    plan.report_delay = Some(Duration::from_millis(2));
    let emulator = common::emulator().with_faults(plan).start().await.unwrap();
    let producer = producer(
        &emulator,
        ProducerConfig::default().with_max_in_flight_records(4),
    );
    let mut deliveries = Vec::new();
    let mut handed_back = 0;
    for i in 0..200u64 {
        let record = Record::from_value(i.to_string());
        match producer.try_send("orders", record) {
            Ok(delivery) => deliveries.push(delivery),
            Err(TrySendError::Full(record)) => {
                handed_back += 1;
                // Waits for room: this one is sent.
                deliveries.push(producer.enqueue("orders", &record).await);
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(handed_back > 0, "the connection never filled");
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    // Each record is in the log once: a refused try sent nothing.
    let mut values = logged(&emulator, "orders");
    values.sort_unstable();
    assert_eq!(values, (0..200).collect::<Vec<_>>());
    let stats = producer.stats();
    assert_eq!((stats.sent, stats.delivered, stats.refused), (200, 200, 0));
    producer.close().await;
}

#[tokio::test]
async fn the_queue_timeout_ends_the_wait_for_room_and_hands_the_record_back() {
    let config = ProducerConfig::default()
        .with_delivery_timeout(Duration::from_secs(60))
        .with_queue_timeout(Duration::from_millis(100));
    let (producer, server) = full_lane(config).await;
    let first = producer.enqueue("demo", &Record::from_value("first")).await;
    let record = Record::from_value("second").with_header("h", "v");
    let error = producer
        .send("demo", &record)
        .await
        .expect_err("no room within the queue timeout");
    match &error {
        Error::QueueFull {
            record: back,
            waited,
        } => {
            assert_eq!(**back, record);
            assert_eq!(*waited, Duration::from_millis(100));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.retry_class(), RetryClass::Retriable);
    assert!(error.is_retriable());
    assert!(error.to_string().contains("not sent"), "{error}");
    assert_eq!(error.record(), Some(&record));
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.in_flight, stats.refused, stats.failed),
        (1, 1, 1, 0),
        "{stats:?}"
    );
    producer.close_timeout(Duration::from_millis(100)).await;
    assert!(first.await.is_err());
    server.abort();
}

#[tokio::test]
async fn without_a_queue_timeout_the_delivery_timeout_bounds_the_wait() {
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_millis(300));
    let (producer, server) = full_lane(config).await;
    let first = producer.enqueue("demo", &Record::from_value("first")).await;
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        producer.send("demo", &Record::from_value("second")),
    )
    .await
    .expect("ends by the delivery timeout")
    .expect_err("no room in time");
    assert!(
        matches!(
            error,
            Error::GaveUp {
                attempts: 0,
                may_have_been_written: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(first.await.is_err());
    producer.close().await;
    server.abort();
}

#[tokio::test]
async fn send_all_failures_carry_their_index_and_queue_timeouts_their_record() {
    // Each record takes all of its connection's bytes; the window of
    // send_all (10 records) is not what stops it.
    let config = ProducerConfig::default()
        .with_delivery_timeout(Duration::from_secs(3))
        .with_queue_timeout(Duration::from_millis(100))
        .with_max_in_flight_records(10)
        .with_max_in_flight_bytes(1);
    let (url, server) = silent_server().await;
    let producer = Producer::with_config(client_at(&url), config).unwrap();
    let records = futures_util::stream::iter(0..3).map(|i| Record::from_value(format!("r{i}")));
    let outcomes: Vec<_> = tokio::time::timeout(
        Duration::from_secs(20),
        producer.send_all("demo", records).collect(),
    )
    .await
    .expect("every record resolves");
    assert_eq!(outcomes.len(), 3);
    let errors: Vec<_> = outcomes.into_iter().map(|o| o.unwrap_err()).collect();
    // The first was written and never reported.
    assert_eq!(errors[0].index, 0);
    assert!(
        matches!(errors[0].error, Error::GaveUp { .. }),
        "{}",
        errors[0]
    );
    // The others found no room in time and come back.
    for (i, error) in errors.into_iter().enumerate().skip(1) {
        assert_eq!(error.index, i);
        assert!(matches!(error.error, Error::QueueFull { .. }), "{error}");
        assert_eq!(
            error.into_record(),
            Some(Record::from_value(format!("r{i}")))
        );
    }
    let stats = producer.stats();
    assert_eq!((stats.sent, stats.failed, stats.refused), (1, 1, 2));
    producer.close().await;
    server.abort();
}

#[test]
fn the_queue_timeout_is_checked_like_other_durations() {
    let client = client_at("http://127.0.0.1:9");
    for timeout in [
        Duration::ZERO,
        MAX_CONFIGURED_DURATION + Duration::from_secs(1),
    ] {
        let config = ProducerConfig::default().with_queue_timeout(timeout);
        let error = Producer::with_config(client.clone(), config).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert!(error.to_string().contains("with_queue_timeout"), "{error}");
    }
    let config = ProducerConfig::default().with_queue_timeout(MAX_CONFIGURED_DURATION);
    assert!(Producer::with_config(client, config).is_ok());
}

#[tokio::test]
async fn a_send_dropped_while_waiting_for_room_sends_nothing() {
    let mut plan = FaultPlan::new(2);
    plan.report_delay = Some(Duration::from_millis(300));
    let emulator = common::emulator().with_faults(plan).start().await.unwrap();
    let producer = producer(
        &emulator,
        ProducerConfig::default().with_max_in_flight_records(1),
    );
    let first = producer.enqueue("orders", &Record::from_value("1")).await;
    // Waits for room behind the first, and is given up.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        producer.send("orders", &Record::from_value("2")),
    )
    .await;
    assert!(cancelled.is_err(), "it had to wait");
    first.await.unwrap();
    producer.flush().await;
    let stats = producer.stats();
    assert_eq!(
        (stats.sent, stats.delivered, stats.refused, stats.in_flight),
        (1, 1, 0, 0),
        "{stats:?}"
    );
    // A record handed over whose outcome is dropped still goes.
    drop(producer.enqueue("orders", &Record::from_value("3")).await);
    producer.close().await;
    let values: Vec<_> = emulator
        .records("orders")
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(values, [b"1".to_vec(), b"3".to_vec()]);
}

#[tokio::test]
async fn stats_have_each_topic_and_connection_and_serialize() {
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, ProducerConfig::default().with_connections(2));
    for (topic, count) in [("orders", 10), ("demo", 6)] {
        let mut deliveries = Vec::new();
        for i in 0..count {
            deliveries.push(
                producer
                    .enqueue(topic, &Record::from_value(format!("{i}")))
                    .await,
            );
        }
        for delivery in deliveries {
            delivery.await.unwrap();
        }
    }
    let stats = producer.stats();
    let names: Vec<&str> = stats.topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, ["orders", "demo"]);
    for (topic, count) in stats.topics.iter().zip([10, 6]) {
        assert_eq!(topic.connections.len(), 2);
        let sent: u64 = topic.connections.iter().map(|c| c.sent).sum();
        let delivered: u64 = topic.connections.iter().map(|c| c.delivered).sum();
        assert_eq!((sent, delivered), (count, count), "{topic:?}");
        for (index, connection) in topic.connections.iter().enumerate() {
            assert_eq!(connection.connection, index);
            // Round-robin: both connections were used, each on one stream
            // still open.
            assert!(connection.sent > 0, "{connection:?}");
            assert_eq!(
                (connection.in_flight, connection.bytes_in_flight),
                (0, 0),
                "{connection:?}"
            );
            assert!(connection.stream_open, "{connection:?}");
            assert_eq!(connection.streams_opened, 1, "{connection:?}");
        }
    }
    assert_eq!(
        (stats.sent, stats.delivered, stats.streams_opened),
        (16, 16, 4)
    );

    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["sent"], 16);
    assert_eq!(json["topics"][0]["topic"], "orders");
    assert_eq!(json["topics"][1]["connections"][1]["connection"], 1);
    assert_eq!(json["topics"][1]["connections"][1]["stream_open"], true);
    assert_eq!(json["topics"][0]["connections"][0]["streams_opened"], 1);

    producer.close().await;
    let closed = producer.stats();
    assert_eq!(closed.topics.len(), 2, "kept after close");
    assert!(
        closed
            .topics
            .iter()
            .flat_map(|t| &t.connections)
            .all(|c| !c.stream_open),
        "{closed:?}"
    );
}

#[tokio::test]
async fn stats_count_what_is_in_flight_on_each_connection() {
    let (url, server) = silent_server().await;
    let producer = Producer::new(client_at(&url));
    let delivery = producer
        .enqueue("demo", &Record::from_value("0123456789"))
        .await;
    // The stream opens and the record stays in flight, never reported.
    let connection = || producer.stats().topics[0].connections[0];
    for _ in 0..500 {
        if connection().stream_open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = connection();
    assert!(held.stream_open, "{held:?}");
    assert_eq!((held.sent, held.in_flight), (1, 1), "{held:?}");
    assert!(held.bytes_in_flight >= 10, "{held:?}");
    assert_eq!(producer.stats().bytes_in_flight, held.bytes_in_flight);
    producer.close_timeout(Duration::from_millis(100)).await;
    assert!(delivery.await.is_err());
    let after = connection();
    assert_eq!(
        (after.in_flight, after.bytes_in_flight, after.failed),
        (0, 0, 1)
    );
    assert!(!after.stream_open, "{after:?}");
    server.abort();
}

/// A log written into memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn retries_are_logged_with_their_cause_class_and_backoff() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime has one thread: the lanes log there too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let emulator = common::emulator().start().await.unwrap();
    let producer = producer(&emulator, fast_retries());

    emulator.fail_next_records(50003, "timed out", 1);
    let report = producer
        .send("orders", &Record::from_value("0"))
        .await
        .unwrap();
    assert_eq!(report.attempts, 2);
    emulator.fail_next_requests(HttpFault::json(503, 50302, "broker unavailable"), 1);
    producer
        .send("demo", &Record::from_value("1"))
        .await
        .unwrap();
    producer.close().await;

    let log = captured.text();
    let retry = log
        .lines()
        .find(|line| line.contains("retry scheduled") && line.contains("50003"))
        .unwrap_or_else(|| panic!("no retry line for 50003 in:\n{log}"));
    for part in [
        "class=OutcomeUnknown",
        "backoff=",
        "records=1",
        "attempts=1",
        "timed out",
    ] {
        assert!(retry.contains(part), "{part} missing: {retry}");
    }
    let reopen = log
        .lines()
        .find(|line| line.contains("next stream after a backoff") && line.contains("50302"))
        .unwrap_or_else(|| panic!("no reopen line for 50302 in:\n{log}"));
    assert!(reopen.contains("backoff="), "{reopen}");
    assert!(reopen.contains("class=Retriable"), "{reopen}");
    let retry = log
        .lines()
        .find(|line| line.contains("retry scheduled") && line.contains("50302"))
        .unwrap_or_else(|| panic!("no retry line for the refused stream's record in:\n{log}"));
    assert!(retry.contains("class=Retriable"), "{retry}");
}
