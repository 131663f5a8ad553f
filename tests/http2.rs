//! HTTP/2: negotiated by ALPN over TLS (and forced off), h2c by prior
//! knowledge, lanes sharing connections within the streams allowed, and
//! GOAWAY and RST_STREAM with the accounting of a cut connection.

mod common;

use ccloud_kafka_rest::{ClientCredentials, Credentials, Producer, Record, ServerKind};
use ccloud_kafka_rest_emulator::{Emulator, EmulatorBuilder};
use common::{fast_retries, logged};
use std::collections::HashMap;
use std::time::Duration;

/// Every wait here is bounded: a hang fails the test.
const LIMIT: Duration = Duration::from_secs(30);

async fn tls(builder: EmulatorBuilder) -> Emulator {
    builder
        .with_tls(true)
        .start()
        .await
        .expect("emulator starts")
}

fn client_of(emulator: &Emulator) -> ccloud_kafka_rest::ClientBuilder {
    let builder = common::client_for(emulator);
    match emulator.ca_certificate_pem() {
        Some(ca) => builder.with_root_certificate_pem(ca),
        None => builder,
    }
}

/// Sends `count` records to `topic` at once and waits for every report.
async fn send_all(producer: &Producer, topic: &str, count: u64) {
    let sends = (0..count).map(|i| async move {
        producer
            .send(topic, &Record::from_value(i.to_string()))
            .await
    });
    let reports = tokio::time::timeout(LIMIT, futures_util::future::join_all(sends))
        .await
        .expect("every record has its outcome in time");
    for report in reports {
        report.expect("delivered");
    }
}

/// 20 records streamed to `orders`, and one in its own request.
async fn stream_and_one_record(client: ccloud_kafka_rest::Client) {
    let producer = Producer::with_config(client.clone(), fast_retries()).unwrap();
    send_all(&producer, "orders", 20).await;
    client
        .produce("orders", &Record::from_value("1000"))
        .await
        .unwrap();
}

#[tokio::test]
async fn over_tls_streams_and_one_record_requests_negotiate_http2() {
    let emulator = tls(common::emulator()).await;
    let client = client_of(&emulator).build().unwrap();
    stream_and_one_record(client).await;
    let versions = emulator.requests_by_version();
    assert_eq!(versions.http1, 0, "{versions:?}");
    assert_eq!(versions.http2, 2, "one stream, one record: {versions:?}");
    assert_eq!(logged(&emulator, "orders").len(), 21);
}

#[tokio::test]
async fn http1_when_forced_and_when_the_server_offers_nothing_else() {
    let emulator = tls(common::emulator()).await;
    let client = client_of(&emulator).with_http1_only().build().unwrap();
    stream_and_one_record(client).await;
    let versions = emulator.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (2, 0), "{versions:?}");

    // A server that answers ALPN with HTTP/1.1 only: the producer falls back.
    let old = tls(common::emulator().with_http2(false)).await;
    let client = client_of(&old).build().unwrap();
    stream_and_one_record(client).await;
    let versions = old.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (2, 0), "{versions:?}");
    assert_eq!(logged(&old, "orders").len(), 21);
}

#[tokio::test]
async fn h2c_with_prior_knowledge_on_the_rest_proxy() {
    let emulator = common::emulator().start().await.unwrap();
    let client = common::client_for(&emulator)
        .with_server_kind(ServerKind::RestProxy)
        .with_http2_prior_knowledge()
        .build()
        .unwrap();
    stream_and_one_record(client.clone()).await;
    client
        .produce_batch(
            "orders",
            &[Record::from_value("1001"), Record::from_value("1002")],
        )
        .await
        .unwrap();
    let versions = emulator.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (0, 3), "{versions:?}");
    assert_eq!(logged(&emulator, "orders").len(), 23);

    // Without prior knowledge, plain http:// is HTTP/1.1.
    let plain = common::emulator().start().await.unwrap();
    let client = common::client_for(&plain).build().unwrap();
    let producer = Producer::with_config(client, fast_retries()).unwrap();
    send_all(&producer, "orders", 5).await;
    let versions = plain.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (1, 0), "{versions:?}");
}

#[tokio::test]
async fn ten_lanes_started_at_once_share_one_connection() {
    let emulator = tls(common::emulator()).await;
    let config = fast_retries().with_connections(10);
    let producer = Producer::with_config(client_of(&emulator).build().unwrap(), config).unwrap();
    send_all(&producer, "orders", 100).await;
    let versions = emulator.requests_by_version();
    assert_eq!(versions.http2, 10, "one stream per lane: {versions:?}");
    assert_eq!(emulator.connections_accepted(), 1);
}

#[tokio::test]
async fn a_full_connection_makes_the_next_lane_open_another() {
    // Three streams a connection by setting: ten lanes take four.
    let emulator = tls(common::emulator()).await;
    let client = client_of(&emulator)
        .with_http2_streams_per_connection(3)
        .build()
        .unwrap();
    let producer = Producer::with_config(client, fast_retries().with_connections(10)).unwrap();
    send_all(&producer, "orders", 100).await;
    assert_eq!(emulator.requests_by_version().http2, 10);
    assert_eq!(emulator.connections_accepted(), 4);

    // Two by the server's SETTINGS_MAX_CONCURRENT_STREAMS: five.
    let strict = tls(common::emulator().with_http2_max_concurrent_streams(2)).await;
    let producer = Producer::with_config(
        client_of(&strict).build().unwrap(),
        fast_retries().with_connections(10),
    )
    .unwrap();
    send_all(&producer, "orders", 100).await;
    assert_eq!(strict.requests_by_version().http2, 10);
    assert_eq!(strict.connections_accepted(), 5);
}

/// Sends 300 records over `lanes` lanes of an HTTP/2 client while the
/// emulator's fault ends streams, then checks that each record has exactly
/// one outcome, every one is in the log, and any duplicate was flagged.
async fn every_record_once_through(
    emulator: &Emulator,
    lanes: usize,
) -> ccloud_kafka_rest::ProducerStats {
    let config = fast_retries().with_connections(lanes);
    let producer = Producer::with_config(client_of(emulator).build().unwrap(), config).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..300u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    let mut flagged = Vec::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let report = tokio::time::timeout(LIMIT, delivery)
            .await
            .expect("an outcome in time")
            .expect("delivered");
        if report.possibly_duplicated {
            flagged.push(i as u64);
        }
    }
    common::assert_each_logged_duplicates_flagged(emulator, "orders", 300, &flagged);
    producer.stats()
}

#[tokio::test]
async fn goaway_mid_stream_gives_every_record_one_outcome() {
    let emulator = tls(common::emulator()).await;
    emulator.goaway_after_records(50);
    let stats = every_record_once_through(&emulator, 2).await;
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(emulator.connections_accepted() >= 2);
    assert_eq!(emulator.requests_by_version().http1, 0);
}

#[tokio::test]
async fn rst_stream_mid_stream_gives_every_record_one_outcome() {
    let emulator = tls(common::emulator()).await;
    emulator.reset_stream_after_records(50);
    let stats = every_record_once_through(&emulator, 2).await;
    assert!(stats.reconnects >= 1, "{stats:?}");
    // The other lane's stream went on: the reset cost no connection.
    assert_eq!(emulator.connections_accepted(), 1);
}

#[tokio::test]
async fn prior_knowledge_is_for_the_rest_endpoint_only() {
    // The token endpoint on the same plain listener: HTTP/1.1 for it, h2c
    // for the records.
    let emulator = common::emulator()
        .with_oauth_client("h2-client", "h2-secret", "sa-1", common::POOL)
        .start()
        .await
        .unwrap();
    let oauth = ClientCredentials::new(emulator.token_url(), "h2-client", "h2-secret");
    let client = common::client_for(&emulator)
        .with_server_kind(ServerKind::RestProxy)
        .with_http2_prior_knowledge()
        .with_credentials(Credentials::oauth(oauth).with_identity_pool_id(common::POOL))
        .build()
        .unwrap();
    client
        .produce("orders", &Record::from_value("7"))
        .await
        .unwrap();
    let producer = Producer::with_config(client, fast_retries()).unwrap();
    send_all(&producer, "orders", 5).await;
    assert_eq!(emulator.tokens_issued(), 1);
    let versions = emulator.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (1, 2), "{versions:?}");
}

#[tokio::test]
async fn a_reset_stream_says_so_in_the_outcomes_it_leaves_unknown() {
    let emulator = tls(common::emulator()).await;
    emulator.reset_stream_after_records(20);
    let config = fast_retries().with_unknown_outcome(ccloud_kafka_rest::UnknownOutcome::Fail);
    let producer = Producer::with_config(client_of(&emulator).build().unwrap(), config).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..200u64 {
        deliveries.push(
            producer
                .enqueue("orders", &Record::from_value(i.to_string()))
                .await,
        );
    }
    let mut unknown = 0;
    for delivery in deliveries {
        let outcome = tokio::time::timeout(LIMIT, delivery)
            .await
            .expect("in time");
        if let Err(e) = outcome {
            assert_eq!(
                e.retry_class(),
                ccloud_kafka_rest::RetryClass::OutcomeUnknown,
                "{e}"
            );
            // e.g. "the server reset the HTTP/2 stream (RST_STREAM) (https://…):
            // stream error received: unexpected internal error encountered"
            assert!(
                e.to_string()
                    .contains("reset the HTTP/2 stream (RST_STREAM)"),
                "{e}"
            );
            unknown += 1;
        }
    }
    assert!(unknown >= 1, "the reset left some record without a report");
}

#[tokio::test]
async fn a_buffering_proxy_is_detected_over_http2_too() {
    let emulator =
        tls(common::emulator()
            .with_intermediary(ccloud_kafka_rest_emulator::Intermediary::buffering()))
        .await;
    let config = fast_retries()
        .with_buffering_check(Duration::from_millis(200))
        .with_report_stall(Some(Duration::from_millis(200)))
        .with_fallback_requests(
            64 * 1024,
            Duration::from_millis(50),
            Duration::from_secs(600),
        );
    let producer = Producer::with_config(client_of(&emulator).build().unwrap(), config).unwrap();
    send_all(&producer, "orders", 3_000).await;
    let stats = producer.stats();
    assert_eq!(stats.buffering_detected, 1, "{stats:?}");
    assert!(stats.bounded_requests, "{stats:?}");
    // Later records go on bounded requests, over HTTP/2 as well.
    send_all(&producer, "orders", 3_000).await;
    let stats = producer.stats();
    assert_eq!(
        (stats.buffering_detected, stats.retried),
        (1, 0),
        "{stats:?}"
    );
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for value in logged(&emulator, "orders") {
        *counts.entry(value).or_default() += 1;
    }
    assert_eq!(counts.len(), 3_000);
    assert!(
        counts.values().all(|&n| n == 2),
        "each value once per round"
    );
    let versions = emulator.requests_by_version();
    assert!(versions.http1 == 0 && versions.http2 >= 2, "{versions:?}");
}

#[tokio::test]
async fn a_connection_without_streams_is_closed_before_the_server_would() {
    // The server would keep it two minutes: only the client's own idle
    // close (25 s without a stream) makes the last send open another.
    let emulator = tls(common::emulator().with_idle_timeout(Duration::from_secs(120))).await;
    let client = client_of(&emulator).build().unwrap();
    let config = fast_retries().with_idle_timeout(Duration::from_millis(200));
    let producer = Producer::with_config(client, config).unwrap();
    send_all(&producer, "orders", 5).await;
    // Idle lanes stop; a connection without streams is kept a while...
    tokio::time::sleep(Duration::from_secs(5)).await;
    send_all(&producer, "orders", 5).await;
    assert_eq!(emulator.connections_accepted(), 1);
    // ...and closed 25 s after its last stream ended.
    tokio::time::sleep(Duration::from_secs(27)).await;
    send_all(&producer, "orders", 5).await;
    assert_eq!(emulator.connections_accepted(), 2);
    let versions = emulator.requests_by_version();
    assert_eq!((versions.http1, versions.http2), (0, 3), "{versions:?}");
}
