//! Absurd settings are refused by name when a client or producer is built,
//! and absurd durations from servers (Retry-After, token lifetimes) are
//! capped instead of overflowing a deadline.

mod common;

use ccloud_kafka_rest::{
    Client, ClientBuilder, ClientCredentials, Credentials, Error, MAX_CHUNK_BYTES,
    MAX_CONFIGURED_DURATION, MAX_CONNECTIONS, MAX_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_RECORDS,
    MAX_RECORD_BYTES_LIMIT, MAX_RETRY_AFTER, Producer, ProducerConfig, Record,
};
use ccloud_kafka_rest_emulator::HttpFault;
use std::time::Duration;

/// A client of a port nothing listens on: building a producer sends nothing.
fn idle_client() -> Client {
    Client::builder()
        .with_endpoint("http://127.0.0.1:9")
        .with_cluster_id("lkc-limits")
        .build()
        .expect("client builds")
}

/// The message of the configuration error `result` must be.
fn config_error<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn producer_refuses_absurd_settings_naming_them() {
    let long = MAX_CONFIGURED_DURATION + Duration::from_nanos(1);
    let default = ProducerConfig::default;
    let cases = [
        (
            default().with_max_in_flight_records(usize::MAX),
            "with_max_in_flight_records",
        ),
        (
            default().with_max_in_flight_records(MAX_IN_FLIGHT_RECORDS + 1),
            "with_max_in_flight_records",
        ),
        (
            default().with_max_in_flight_bytes(usize::MAX),
            "with_max_in_flight_bytes",
        ),
        (default().with_connections(usize::MAX), "with_connections"),
        (
            default().with_connections(MAX_CONNECTIONS + 1),
            "with_connections",
        ),
        (default().with_chunk_bytes(usize::MAX), "with_chunk_bytes"),
        (
            default().with_delivery_timeout(Duration::MAX),
            "with_delivery_timeout",
        ),
        (
            default().with_delivery_timeout(Duration::ZERO),
            "with_delivery_timeout",
        ),
        (
            default().with_delivery_timeout(long),
            "with_delivery_timeout",
        ),
        (
            default().with_idle_timeout(Duration::MAX),
            "with_idle_timeout",
        ),
        (
            default().with_idle_timeout(Duration::ZERO),
            "with_idle_timeout",
        ),
        (
            default().with_max_stream_age(Duration::MAX),
            "with_max_stream_age",
        ),
        (
            default().with_max_stream_age(Duration::ZERO),
            "with_max_stream_age",
        ),
        (default().with_linger(Duration::MAX), "with_linger"),
        (default().with_linger(long), "with_linger"),
        (
            default().with_backoff(Duration::MAX, Duration::MAX),
            "with_backoff",
        ),
        (
            default().with_backoff(Duration::ZERO, Duration::MAX),
            "with_backoff",
        ),
    ];
    let client = idle_client();
    for (config, setter) in cases {
        let shown = format!("{config:?}");
        let message = config_error(Producer::with_config(client.clone(), config));
        assert!(message.contains(setter), "{shown}: {message}");
        assert!(message.contains("out of range"), "{shown}: {message}");
    }
    // The message gives the range.
    let message = config_error(Producer::with_config(
        client.clone(),
        default().with_connections(usize::MAX),
    ));
    assert!(message.contains("1 to 1024"), "{message}");
    let message = config_error(Producer::with_config(
        client,
        default().with_delivery_timeout(Duration::MAX),
    ));
    assert!(message.contains("604800s"), "{message}");
}

#[tokio::test]
async fn a_producer_at_every_cap_delivers() {
    let (emulator, client) = common::open().await;
    let config = ProducerConfig::default()
        .with_connections(MAX_CONNECTIONS)
        .with_max_in_flight_records(MAX_IN_FLIGHT_RECORDS)
        .with_max_in_flight_bytes(MAX_IN_FLIGHT_BYTES)
        .with_chunk_bytes(MAX_CHUNK_BYTES)
        .with_delivery_timeout(MAX_CONFIGURED_DURATION)
        .with_idle_timeout(MAX_CONFIGURED_DURATION)
        .with_max_stream_age(MAX_CONFIGURED_DURATION)
        .with_backoff(MAX_CONFIGURED_DURATION, MAX_CONFIGURED_DURATION);
    let producer = Producer::with_config(client, config).unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        producer.send("orders", &Record::from_value("at the caps")),
    )
    .await
    .expect("delivered in time")
    .unwrap();
    assert_eq!(report.offset, 0);
    producer.close().await;
    assert_eq!(emulator.records("orders").len(), 1);
}

#[test]
fn client_builder_refuses_absurd_settings_naming_them() {
    let builder = || {
        ClientBuilder::new()
            .with_endpoint("http://127.0.0.1:9")
            .with_cluster_id("lkc-limits")
    };
    let cases = [
        (
            builder().with_connect_timeout(Duration::MAX),
            "with_connect_timeout",
        ),
        (
            builder().with_connect_timeout(MAX_CONFIGURED_DURATION + Duration::from_secs(1)),
            "with_connect_timeout",
        ),
        (
            builder().with_connect_timeout(Duration::ZERO),
            "with_connect_timeout",
        ),
        (
            builder().with_read_timeout(Duration::MAX),
            "with_read_timeout",
        ),
        (
            builder().with_read_timeout(Duration::ZERO),
            "with_read_timeout",
        ),
        (
            builder().with_max_record_bytes(usize::MAX),
            "with_max_record_bytes",
        ),
        (
            builder().with_max_record_bytes(MAX_RECORD_BYTES_LIMIT + 1),
            "with_max_record_bytes",
        ),
        (builder().with_max_record_bytes(0), "with_max_record_bytes"),
    ];
    for (builder, setter) in cases {
        let message = config_error(builder.build());
        assert!(message.contains(setter), "{setter}: {message}");
        assert!(message.contains("out of range"), "{setter}: {message}");
    }
    // The caps themselves are accepted.
    builder()
        .with_connect_timeout(MAX_CONFIGURED_DURATION)
        .with_read_timeout(MAX_CONFIGURED_DURATION)
        .with_max_record_bytes(MAX_RECORD_BYTES_LIMIT)
        .build()
        .unwrap();
}

#[tokio::test]
async fn an_endless_retry_after_is_capped() {
    let (emulator, client) = common::open().await;
    emulator.fail_next_requests(
        HttpFault::new(503, "text/plain", "down").with_retry_after(u64::MAX),
        1,
    );
    let e = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert_eq!(e.retry_after(), Some(MAX_RETRY_AFTER));
    assert!(e.to_string().contains("retry after 600 s"), "{e}");
}

#[tokio::test]
async fn a_producer_told_to_retry_after_forever_still_times_out() {
    let (emulator, client) = common::open().await;
    emulator.fail_next_requests(
        HttpFault::new(503, "text/plain", "down").with_retry_after(u64::MAX),
        1,
    );
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_secs(1));
    let producer = Producer::with_config(client, config).unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        producer.send("orders", &Record::from_value("x")),
    )
    .await
    .expect("resolved by its delivery timeout");
    let e = outcome.unwrap_err();
    assert!(matches!(e, Error::GaveUp { .. }), "{e:?}");
    assert_eq!(e.status(), Some(503), "{e}");
    // The server asked to wait (capped at ten minutes): a later record
    // also gets its outcome by its deadline, and the lane ends when closed.
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        producer.send("orders", &Record::from_value("y")),
    )
    .await
    .expect("resolved by its delivery timeout");
    assert!(matches!(second, Err(Error::GaveUp { .. })), "{second:?}");
    tokio::time::timeout(Duration::from_secs(10), producer.close())
        .await
        .expect("close ends");
}

#[tokio::test]
async fn a_token_endpoint_promising_eternity_does_not_panic() {
    const CLIENT_ID: &str = "sa-client-1";
    const CLIENT_SECRET: &str = "client-secret-value-93b1f0";
    // expires_in: 18446744073709551615, more seconds than a Duration holds
    // once read as a float.
    let emulator = common::emulator()
        .with_oauth_client(CLIENT_ID, CLIENT_SECRET, "sa-abc123", common::POOL)
        .with_token_lifetime(Duration::MAX)
        .start()
        .await
        .unwrap();
    let client = common::client_for(&emulator)
        .with_credentials(
            Credentials::oauth(ClientCredentials::new(
                emulator.token_url(),
                CLIENT_ID,
                CLIENT_SECRET,
            ))
            .with_identity_pool_id(common::POOL),
        )
        .build()
        .unwrap();
    for i in 0..3 {
        client
            .produce("orders", &Record::from_value(i.to_string()))
            .await
            .unwrap();
    }
    assert_eq!(emulator.tokens_issued(), 1);
    assert_eq!(emulator.records("orders").len(), 3);
}
