//! The API's own request and response shapes, `ccloud_kafka_rest::types`,
//! generated from the OpenAPI document, next to the crate's `Record` and
//! `DeliveryReport`: a `ProduceRequest` is built, turned into a `Record`,
//! produced with `Client::produce`, and the report turned back into a
//! `ProduceResponse`. Runs against the embedded emulator.
//!
//! ```text
//! cargo run --example generated_types
//! ```
//!
//! The generated types follow the OpenAPI document the crate was built from,
//! and Confluent's documents differ in which fields are required and how wide
//! their integers are (`partition_id` is an `Option<i32>` in some, an `i64`
//! in others), and the key and value objects carry more fields in some. So
//! they are built and read here through their JSON form, which is the same
//! whatever the document: this example builds with any of them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ccloud_kafka_rest::types::{ProduceRequest, ProduceResponse};
use ccloud_kafka_rest::{Client, DeliveryReport, Payload, PayloadSummary, Record};
use ccloud_kafka_rest_emulator::Emulator;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start_default().await?;
    let client = Client::builder()
        .with_endpoint(emulator.url())
        .with_cluster_id(emulator.cluster_id())
        .build()?;

    // A request in the API's shape: what is posted to .../topics/demo/records.
    let request: ProduceRequest = serde_json::from_value(json!({
        "partition_id": 1,
        "headers": [{"name": "source", "value": STANDARD.encode("checkout")}],
        "key": {"type": "STRING", "data": "order-7"},
        "value": {"type": "JSON", "data": {"item": "book", "total": 12.5}},
    }))?;
    println!("request:  {}", serde_json::to_string(&request)?);

    // The same record as the crate's Record: identical on the wire.
    let record = record_from_request(&request)?;
    assert_eq!(
        serde_json::to_value(&record)?,
        serde_json::to_value(&request)?
    );

    // And back: any Record as a ProduceRequest.
    let again: ProduceRequest = serde_json::from_value(serde_json::to_value(&record)?)?;
    assert_eq!(serde_json::to_value(&again)?["partition_id"], 1);

    let report = client.produce("demo", &record).await?;
    println!("report:   {report} (attempts {})", report.attempts);

    // The report in the API's shape, as the server wrote it.
    let response = response_from_report(&report)?;
    println!("response: {}", serde_json::to_string(&response)?);
    let response = serde_json::to_value(&response)?;
    assert_eq!(
        (&response["partition_id"], &response["offset"]),
        (&json!(1), &json!(report.offset))
    );

    let stored = emulator.records("demo");
    assert_eq!(stored.len(), 1);
    let text = |bytes: &Option<Vec<u8>>| {
        String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).into_owned()
    };
    let headers: Vec<String> = stored[0]
        .headers
        .iter()
        .map(|(name, value)| format!("{name}={}", text(value)))
        .collect();
    println!(
        "stored:   key {}, value {}, headers {}",
        text(&stored[0].key),
        text(&stored[0].value),
        headers.join(",")
    );
    Ok(())
}

/// A `Record` with the key, value, headers, partition and timestamp of
/// `request`, read through its JSON form.
fn record_from_request(request: &ProduceRequest) -> Result<Record, Box<dyn std::error::Error>> {
    let request = serde_json::to_value(request)?;
    let mut record = Record::new();
    if let Some(key) = payload(&request["key"])? {
        record = record.with_key(key);
    }
    if let Some(value) = payload(&request["value"])? {
        record = record.with_value(value);
    }
    for header in request["headers"].as_array().into_iter().flatten() {
        let name = header["name"].as_str().ok_or("a header without a name")?;
        record = match header["value"].as_str() {
            Some(value) => record.with_header(name, STANDARD.decode(value)?),
            None => record.with_null_header(name),
        };
    }
    if let Some(partition) = request["partition_id"].as_i64() {
        record = record.with_partition(i32::try_from(partition)?);
    }
    if let Some(timestamp) = request["timestamp"].as_str() {
        record = record.with_timestamp(timestamp.parse()?);
    }
    Ok(record)
}

/// A key or value object, `{"type": ..., "data": ...}`, as a payload; `None`
/// for a Kafka null.
fn payload(object: &Value) -> Result<Option<Payload>, Box<dyn std::error::Error>> {
    let data = match object.get("data") {
        None | Some(Value::Null) => return Ok(None),
        Some(data) => data,
    };
    let text = || {
        data.as_str()
            .ok_or("STRING and BINARY data is a JSON string")
    };
    Ok(Some(match object.get("type").and_then(Value::as_str) {
        Some("STRING") => Payload::from(text()?),
        Some("BINARY") => Payload::from(STANDARD.decode(text()?)?),
        Some("JSON") => Payload::from(data.clone()),
        other => return Err(format!("unsupported key or value type {other:?}").into()),
    }))
}

/// The delivery report as the server's `ProduceResponse`.
fn response_from_report(report: &DeliveryReport) -> Result<ProduceResponse, serde_json::Error> {
    let stored = |data: Option<PayloadSummary>| {
        data.map(|d| json!({"type": d.data_type.as_str(), "size": d.size}))
    };
    serde_json::from_value(json!({
        "error_code": 200,
        "cluster_id": report.cluster_id,
        "topic_name": report.topic,
        "partition_id": report.partition,
        "offset": report.offset,
        "timestamp": report.timestamp,
        "key": stored(report.key),
        "value": stored(report.value),
    }))
}
