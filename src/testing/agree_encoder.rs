//! The producer's JSON writer writes what serde_json writes for the same
//! record (the form the generated client sends), for any text, bytes, JSON,
//! headers, partition and timestamp.

use crate::wire::encode::encode;
use crate::wire::record::{Payload, Record};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::Value;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\"\\\\/a\u{7f}\u{2028}é😀]{0,12}".prop_map(|s| s),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        text().prop_map(Payload::String),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Payload::from),
        json().prop_map(Payload::from),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        prop::option::of(payload()),
        prop::option::of(payload()),
        prop::collection::vec(
            (
                text(),
                prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            ),
            0..3,
        ),
        prop::option::of(0i32..=i32::MAX),
        prop::option::of(-62_000_000_000_000i64..250_000_000_000_000),
    )
        .prop_map(|(key, value, headers, partition, millis)| {
            let mut record = Record::new();
            if let Some(key) = key {
                record = record.with_key(key);
            }
            if let Some(value) = value {
                record = record.with_value(value);
            }
            for (name, value) in headers {
                record = match value {
                    Some(value) => record.with_header(name, value),
                    None => record.with_null_header(name),
                };
            }
            if let Some(partition) = partition {
                record = record.with_partition(partition);
            }
            if let Some(time) = millis.and_then(DateTime::<Utc>::from_timestamp_millis) {
                record = record.with_timestamp(time);
            }
            record
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_producers_json_writer_agrees_with_serde(record in record()) {
        let encoded = encode(&record);
        let written: Value = serde_json::from_slice(&encoded)
            .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&encoded))))?;
        let expected = serde_json::to_value(&record).unwrap();
        prop_assert_eq!(written, expected);
    }
}
