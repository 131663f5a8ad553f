//! Unary produce against the emulator over loopback: what arrives in the log
//! is byte-exact, and the report says where and how big.

mod common;

use ccloud_kafka_rest::{DataType, Payload, PayloadSummary, Record, ServerKind};
use ccloud_kafka_rest_emulator::DataType as StoredType;
use chrono::{TimeZone, Utc};
use serde_json::json;

#[tokio::test]
async fn string_key_and_value_arrive_byte_exact() {
    let (emulator, client) = common::open().await;
    let report = client
        .produce(
            "orders",
            &Record::new().with_key("k-é").with_value("value ✓"),
        )
        .await
        .unwrap();
    assert_eq!(report.topic, "orders");
    assert_eq!(report.cluster_id, emulator.cluster_id());
    assert_eq!((report.partition, report.offset), (0, 0));
    assert_eq!(
        report.key,
        Some(PayloadSummary {
            data_type: DataType::String,
            size: 4
        })
    );
    assert_eq!(
        report.value,
        Some(PayloadSummary {
            data_type: DataType::String,
            size: 9
        })
    );

    let log = emulator.records("orders");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].key.as_deref(), Some("k-é".as_bytes()));
    assert_eq!(log[0].value.as_deref(), Some("value ✓".as_bytes()));
    assert_eq!(log[0].key_type, Some(StoredType::String));
}

#[tokio::test]
async fn binary_payloads_are_base64_encoded_and_arrive_as_bytes() {
    let (emulator, client) = common::open().await;
    let every_byte: Vec<u8> = (0..=255).collect();
    let report = client
        .produce(
            "orders",
            &Record::new()
                .with_key(&b"\x00\xff\x10"[..])
                .with_value(every_byte.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        report.key,
        Some(PayloadSummary {
            data_type: DataType::Binary,
            size: 3
        })
    );
    assert_eq!(
        report.value,
        Some(PayloadSummary {
            data_type: DataType::Binary,
            size: 256
        })
    );
    let log = emulator.records("orders");
    assert_eq!(log[0].key.as_deref(), Some(&b"\x00\xff\x10"[..]));
    assert_eq!(log[0].value.as_deref(), Some(&every_byte[..]));
    assert_eq!(log[0].value_type, Some(StoredType::Binary));
}

#[tokio::test]
async fn json_from_any_serialize_is_stored_compact() {
    #[derive(serde::Serialize)]
    struct Order {
        id: u32,
        items: Vec<&'static str>,
    }
    let (emulator, client) = common::open().await;
    let record = Record::new()
        .with_key(json!({"customer": 42}))
        .with_json_value(&Order {
            id: 7,
            items: vec!["book", "pen"],
        })
        .unwrap();
    let report = client.produce("orders", &record).await.unwrap();
    let stored_value = br#"{"id":7,"items":["book","pen"]}"#;
    assert_eq!(
        report.value,
        Some(PayloadSummary {
            data_type: DataType::Json,
            size: stored_value.len() as u64
        })
    );
    assert_eq!(report.key.unwrap().size, br#"{"customer":42}"#.len() as u64);
    let log = emulator.records("orders");
    assert_eq!(log[0].value.as_deref(), Some(&stored_value[..]));
    assert_eq!(log[0].value_type, Some(StoredType::Json));
}

#[tokio::test]
async fn null_key_and_value_and_empty_string_are_distinct() {
    let (emulator, client) = common::open().await;
    let tombstone = client
        .produce("orders", &Record::new().with_key("k").with_null_value())
        .await
        .unwrap();
    assert_eq!(tombstone.value, None);
    let empty = client
        .produce("orders", &Record::new().with_value(""))
        .await
        .unwrap();
    assert_eq!(empty.key, None);
    assert_eq!(
        empty.value,
        Some(PayloadSummary {
            data_type: DataType::String,
            size: 0
        })
    );

    let log = emulator.records("orders");
    assert_eq!(log[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(log[0].value, None);
    assert_eq!(log[1].key, None);
    assert_eq!(log[1].value.as_deref(), Some(&b""[..]));
}

#[tokio::test]
async fn headers_partition_and_timestamp_arrive() {
    let (emulator, client) = common::open().await;
    let when = Utc.with_ymd_and_hms(2024, 5, 17, 8, 30, 0).unwrap()
        + chrono::Duration::microseconds(123_456);
    let record = Record::from_value("v")
        .with_header("trace", &b"\x01\x02"[..])
        .with_header("trace", "second")
        .with_null_header("empty")
        .with_partition(2)
        .with_timestamp(when);
    let report = client.produce("demo", &record).await.unwrap();
    assert_eq!(report.partition, 2);
    let truncated =
        Utc.with_ymd_and_hms(2024, 5, 17, 8, 30, 0).unwrap() + chrono::Duration::milliseconds(123);
    assert_eq!(report.timestamp, Some(truncated));

    let stored = &emulator.partition_records("demo", 2)[0];
    assert_eq!(
        stored.headers,
        vec![
            ("trace".to_owned(), Some(vec![1, 2])),
            ("trace".to_owned(), Some(b"second".to_vec())),
            ("empty".to_owned(), None),
        ]
    );
    assert_eq!(stored.timestamp, truncated);
}

#[tokio::test]
async fn offsets_grow_per_partition_and_keys_pick_a_stable_partition() {
    let (emulator, client) = common::open().await;
    let mut partitions = Vec::new();
    for i in 0..6 {
        let report = client
            .produce(
                "demo",
                &Record::new()
                    .with_key("same-key")
                    .with_value(format!("v{i}")),
            )
            .await
            .unwrap();
        partitions.push((report.partition, report.offset));
    }
    let first = partitions[0].0;
    assert!(
        partitions.iter().all(|(p, _)| *p == first),
        "{partitions:?}"
    );
    let offsets: Vec<i64> = partitions.iter().map(|(_, o)| *o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(emulator.partition_records("demo", first).len(), 6);
}

#[tokio::test]
async fn rest_proxy_flavour_uses_the_v3_paths() {
    let emulator = common::emulator().start().await.unwrap();
    let client = common::client_for(&emulator)
        .with_server_kind(ServerKind::RestProxy)
        .build()
        .unwrap();
    assert_eq!(client.base_url(), format!("{}/v3", emulator.url()));
    client
        .produce("orders", &Record::from_value("via /v3"))
        .await
        .unwrap();
    assert_eq!(
        emulator.records("orders")[0].value.as_deref(),
        Some(&b"via /v3"[..])
    );
}

#[tokio::test]
async fn requests_carry_json_content_type_and_user_agent() {
    let emulator = common::emulator().start().await.unwrap();
    let client = common::client_for(&emulator)
        .with_user_agent("orders-service/2.1")
        .build()
        .unwrap();
    client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
    let headers = emulator.last_request_headers().unwrap();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("user-agent"), Some("orders-service/2.1"));
    assert_eq!(get("content-type"), Some("application/json"));
    assert_eq!(get("authorization"), None);
}

#[tokio::test]
async fn concurrent_produces_each_get_their_own_report() {
    let (emulator, client) = common::open().await;
    let sends = (0..32).map(|i| {
        let client = client.clone();
        async move {
            client
                .produce(
                    "orders",
                    &Record::from_value(Payload::from(format!("r{i}"))),
                )
                .await
                .unwrap()
                .offset
        }
    });
    let mut offsets = futures_util::future::join_all(sends).await;
    offsets.sort_unstable();
    assert_eq!(offsets, (0..32).collect::<Vec<i64>>());
    assert_eq!(emulator.records("orders").len(), 32);
}
