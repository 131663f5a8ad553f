//! The emulator's records endpoint (`GET /emulator/topics/{topic}/records`),
//! read over plain HTTP as any client would.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ccloud_kafka_rest_emulator::Emulator;
use common::raw_http::client;
use serde_json::{Value, json};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn get(request: reqwest::RequestBuilder) -> (u16, String, String) {
    let response = timeout(WAIT, request.send())
        .await
        .expect("answer in time")
        .expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = timeout(WAIT, response.text())
        .await
        .expect("body in time")
        .expect("body read");
    (status, content_type, body)
}

fn lines(body: &str) -> Vec<Value> {
    assert!(body.is_empty() || body.ends_with('\n'), "{body:?}");
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

async fn produce(emu: &Emulator, topic: &str, records: &[Value], auth: Option<(&str, &str)>) {
    let url = format!(
        "{}/kafka/v3/clusters/{}/topics/{topic}/records",
        emu.url(),
        emu.cluster_id()
    );
    let body: String = records.iter().map(Value::to_string).collect();
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some((key, secret)) = auth {
        request = request.basic_auth(key, Some(secret));
    }
    let (status, _, reports) = get(request).await;
    assert_eq!(status, 200, "{reports}");
    assert_eq!(reports.matches("\"error_code\":200").count(), records.len());
}

fn records_url(emu: &Emulator, topic: &str, query: &str) -> String {
    format!("{}/emulator/topics/{topic}/records{query}", emu.url())
}

#[tokio::test]
async fn answers_the_stored_records_by_partition_then_offset_with_their_bytes() {
    let emu = Emulator::builder()
        .with_topic("demo", 2)
        .start()
        .await
        .unwrap();
    produce(
        &emu,
        "demo",
        &[
            json!({"partition_id": 1, "key": {"type": "STRING", "data": "k"},
                   "value": {"type": "JSON", "data": {"a": 1}},
                   "headers": [{"name": "h", "value": STANDARD.encode([0u8, 255])},
                               {"name": "empty", "value": null}]}),
            json!({"partition_id": 0, "value": {"type": "BINARY", "data": STANDARD.encode([1u8, 2, 3])}}),
            json!({"partition_id": 1, "value": null}),
            json!({"partition_id": 0, "key": {"type": "STRING", "data": "é\"x"}}),
        ],
        None,
    )
    .await;

    let (status, content_type, body) = get(client().get(records_url(&emu, "demo", ""))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/x-ndjson");
    let got = lines(&body);
    let stored = emu.records("demo");
    assert_eq!(got.len(), stored.len());
    assert_eq!(got.len(), 4);
    for (line, record) in got.iter().zip(&stored) {
        let data = |bytes: &Option<Vec<u8>>| match bytes {
            Some(bytes) => json!({"type": "BINARY", "data": STANDARD.encode(bytes)}),
            None => Value::Null,
        };
        let headers: Vec<Value> = record
            .headers
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value.as_ref().map(|v| STANDARD.encode(v))}))
            .collect();
        let expected = json!({
            "partition_id": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "key": data(&record.key),
            "value": data(&record.value),
            "headers": headers,
        });
        assert_eq!(line, &expected);
    }
    let order: Vec<(i64, i64)> = got
        .iter()
        .map(|l| {
            (
                l["partition_id"].as_i64().unwrap(),
                l["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [(0, 0), (0, 1), (1, 0), (1, 1)]);
    // The stored bytes: the JSON value compact, the string's UTF-8.
    assert_eq!(got[2]["value"]["data"], STANDARD.encode(br#"{"a":1}"#));
    assert_eq!(got[1]["key"]["data"], STANDARD.encode("é\"x"));
    assert_eq!(got[2]["headers"][0]["value"], STANDARD.encode([0u8, 255]));
    assert_eq!(got[3]["value"], Value::Null);
}

#[tokio::test]
async fn partition_and_from_offset_narrow_the_answer_across_pages() {
    let emu = Emulator::builder()
        .with_topic("demo", 3)
        .start()
        .await
        .unwrap();
    // More records than one page holds, so the answer is written in pieces.
    let records: Vec<Value> = (0..1500)
        .map(|i| json!({"partition_id": i % 3, "value": {"type": "STRING", "data": format!("v{i}")}}))
        .collect();
    produce(&emu, "demo", &records, None).await;

    let (_, _, all) = get(client().get(records_url(&emu, "demo", ""))).await;
    assert_eq!(lines(&all).len(), 1500);

    let (status, _, body) =
        get(client().get(records_url(&emu, "demo", "?partition=2&from_offset=498"))).await;
    assert_eq!(status, 200, "{body}");
    let got = lines(&body);
    let offsets: Vec<i64> = got.iter().map(|l| l["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [498, 499]);
    assert!(got.iter().all(|l| l["partition_id"] == 2));
    assert_eq!(got[1]["value"]["data"], STANDARD.encode("v1499"));

    let (_, _, past) = get(client().get(records_url(&emu, "demo", "?from_offset=600"))).await;
    assert_eq!(past, "");
}

#[tokio::test]
async fn refuses_what_it_cannot_answer_with_the_reason() {
    let emu = Emulator::builder()
        .with_topic("demo", 2)
        .with_api_key("KEY", "secret")
        .start()
        .await
        .unwrap();
    produce(
        &emu,
        "demo",
        &[json!({"value": {"type": "STRING", "data": "x"}})],
        Some(("KEY", "secret")),
    )
    .await;
    let authed = |url: String| client().get(url).basic_auth("KEY", Some("secret"));

    let (status, _, body) = get(client().get(records_url(&emu, "demo", ""))).await;
    assert_eq!((status, body.contains("40101")), (401, true), "{body}");
    let (status, _, body) = get(authed(records_url(&emu, "demo", ""))).await;
    assert_eq!((status, lines(&body).len()), (200, 1), "{body}");

    for (query, code, says) in [
        ("?partition=2", 404, "Partition 2"),
        ("?partition=-1", 400, "partition"),
        ("?from_offset=x", 400, "from_offset"),
        ("?limit=3", 400, "unknown query parameter"),
    ] {
        let (status, _, body) = get(authed(records_url(&emu, "demo", query))).await;
        assert_eq!(status, code, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    let (status, _, body) = get(authed(records_url(&emu, "nope", ""))).await;
    assert_eq!((status, body.contains("40403")), (404, true), "{body}");
    let (status, _, _) = get(client()
        .post(records_url(&emu, "demo", ""))
        .basic_auth("KEY", Some("secret")))
    .await;
    assert_eq!(status, 405);
    // Reading is not producing: the log is as it was.
    assert_eq!(emu.records("demo").len(), 1);
}
