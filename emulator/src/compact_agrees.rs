//! Property test: the emulator's compact record reader reads what serde
//! reads, for records generated from the grammar of produce records (any
//! field order, escapes, number limits, whitespace) and single-byte
//! mutations of them.

use super::compact::{Reader, read};
use super::raw::RawRecord;
use ccloud_kafka_rest_testkit::json_grammar::{fields, mutation, number, object, string};
use proptest::prelude::*;

fn data() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => string(),
        1 => Just("null".to_owned()),
        1 => number(),
        1 => Just("{\"a\":[1,\"x\"]}".to_owned()),
        1 => Just("\"AAEC\"".to_owned()),
    ]
}

fn payload() -> impl Strategy<Value = String> {
    let ty = prop::sample::select(vec![
        "\"STRING\"",
        "\"BINARY\"",
        "\"JSON\"",
        "\"AVRO\"",
        "\"string\"",
        "null",
        "3",
    ]);
    let field = prop_oneof![
        (Just("type"), ty.prop_map(str::to_owned)),
        (Just("data"), data()),
        (Just("schema_id"), number()),
        (Just("subject"), string()),
    ]
    .prop_map(|(n, v)| (n.to_owned(), v));
    prop_oneof![4 => object(fields(field)), 1 => Just("null".to_owned())]
}

fn header() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        (Just("name"), string()),
        (
            Just("value"),
            prop_oneof![string(), Just("null".to_owned())]
        ),
        (Just("other"), number()),
    ]
    .prop_map(|(n, v)| (n.to_owned(), v));
    object(fields(field))
}

fn record() -> impl Strategy<Value = String> {
    let headers = prop_oneof![
        4 => prop::collection::vec(header(), 0..3).prop_map(|h| format!("[{}]", h.join(","))),
        1 => Just("null".to_owned()),
    ];
    let field = prop_oneof![
        2 => (Just("partition_id"), number()),
        1 => (Just("headers"), headers),
        3 => (Just("key"), payload()),
        3 => (Just("value"), payload()),
        1 => (Just("timestamp"), prop_oneof![string(), Just("\"2024-05-06T07:08:09.123Z\"".to_owned())]),
        1 => (Just("id"), string()),
        1 => (Just("unknown"), string()),
    ]
    .prop_map(|(n, v)| (n.to_owned(), v));
    object(fields(field))
}

fn agrees(json: &[u8]) -> Result<(), TestCaseError> {
    let by_serde = || match serde_json::from_slice::<RawRecord<'_>>(json) {
        Ok(record) => format!("{record:?}"),
        Err(error) => format!("error: {error}"),
    };
    if let Some(record) = read(json) {
        prop_assert_eq!(
            format!("{record:?}"),
            by_serde(),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
    // At the start of a stream, followed by another record.
    if let Ok(text) = std::str::from_utf8(json) {
        let followed = format!("{text}{{\"value\":null}}");
        let mut reader = Reader::new(&followed);
        if let Some(record) = reader.record()
            && reader.consumed() == text.len()
        {
            prop_assert_eq!(format!("{record:?}"), by_serde(), "{}", text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_compact_record_reader_agrees_with_serde(text in record(), change in mutation()) {
        agrees(text.as_bytes())?;
        agrees(&change.apply(text.as_bytes()))?;
    }
}
