//! REST Proxy 6.2 to 7.2 reports a delivered record without `error_code`,
//! saying only where it went: each produce path reads such a report as
//! delivered, against the emulator answering that way.

mod common;

use ccloud_kafka_rest::{ProducerConfig, Record, ServerKind};
use ccloud_kafka_rest_emulator::Emulator;
use futures_util::StreamExt;
use std::time::Duration;

/// Bounds every wait on the emulator.
const WAIT: Duration = Duration::from_secs(30);

async fn old_server() -> Emulator {
    common::emulator()
        .with_reports_without_error_code(true)
        .start()
        .await
        .expect("emulator starts")
}

#[tokio::test]
async fn the_emulator_leaves_error_code_out_of_delivered_reports_only() {
    let emulator = old_server().await;
    let http = common::raw_http::client();
    let url = format!(
        "{}/kafka/v3/clusters/{}/topics/orders/records",
        emulator.url(),
        emulator.cluster_id()
    );
    let send = |body: &'static str| {
        http.post(&url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let delivered = tokio::time::timeout(WAIT, send(r#"{"value":{"type":"STRING","data":"a"}}"#))
        .await
        .expect("answered in time")
        .expect("the request succeeds");
    let text = delivered.text().await.unwrap();
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(report.get("error_code").is_none(), "{text}");
    assert_eq!(report["offset"], 0, "{text}");
    assert_eq!(report["partition_id"], 0, "{text}");
    // A refused record keeps its error_code.
    let refused = tokio::time::timeout(WAIT, send(r#"{"partition_id":7,"value":null}"#))
        .await
        .expect("answered in time")
        .expect("the request succeeds");
    let text = refused.text().await.unwrap();
    assert!(text.contains("\"error_code\":"), "{text}");
}

#[tokio::test]
async fn one_record_call_reads_it_as_delivered() {
    let emulator = old_server().await;
    let client = common::client_for(&emulator).build().unwrap();
    for i in 0..3 {
        let report = tokio::time::timeout(
            WAIT,
            client.produce("orders", &Record::from_value(format!("v{i}"))),
        )
        .await
        .expect("answered in time")
        .expect("delivered");
        assert_eq!((report.partition, report.offset), (0, i));
        assert_eq!(report.topic, "orders");
        assert_eq!(report.cluster_id, emulator.cluster_id());
    }
    assert_eq!(emulator.records("orders").len(), 3);
}

#[tokio::test]
async fn streaming_producer_reads_them_as_delivered() {
    let emulator = old_server().await;
    let producer = common::producer(&emulator, ProducerConfig::default());
    let records = futures_util::stream::iter(0..500).map(|i| Record::from_value(format!("v{i}")));
    let outcomes: Vec<_> =
        tokio::time::timeout(WAIT, producer.send_all("orders", records).collect())
            .await
            .expect("every record resolved in time");
    for (i, outcome) in outcomes.iter().enumerate() {
        let report = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(report.offset, i as i64);
        assert!(!report.possibly_duplicated);
    }
    producer.close().await;
    let stats = producer.stats();
    assert_eq!((stats.delivered, stats.failed), (500, 0), "{stats:?}");
    assert_eq!(emulator.records("orders").len(), 500);
}

#[tokio::test]
async fn batch_call_reads_them_as_delivered() {
    let emulator = old_server().await;
    let client = common::client_for(&emulator)
        .with_server_kind(ServerKind::RestProxy)
        .build()
        .unwrap();
    let records: Vec<Record> = (0..12)
        .map(|i| Record::from_value(format!("v{i}")))
        .collect();
    let outcomes = tokio::time::timeout(WAIT, client.produce_batch("orders", &records))
        .await
        .expect("answered in time")
        .expect("the batches succeed");
    for (i, outcome) in outcomes.iter().enumerate() {
        let report = outcome.as_ref().expect("delivered");
        assert_eq!(report.offset, i as i64);
    }
}
