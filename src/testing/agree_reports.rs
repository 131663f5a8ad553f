//! The compact report reader and the report decoder read what serde reads:
//! a report the fast path accepts is the report serde gives for the same
//! bytes, and a decoded stream is serde's stream, under any split.

use crate::wire::decode::ReportDecoder;
use crate::wire::report::{Repeated, ReportWire};
use ccloud_kafka_rest_testkit::json_grammar::{
    Mutation, fields, mutation, number, object, string, ws,
};
use proptest::prelude::*;

fn stored_data() -> impl Strategy<Value = String> {
    let ty = prop::sample::select(vec![
        "\"STRING\"",
        "\"BINARY\"",
        "\"JSON\"",
        "\"AVRO\"",
        "7",
    ]);
    let field = prop_oneof![
        (Just("type"), ty.prop_map(str::to_owned)),
        (Just("size"), number()),
        (Just("extra"), string()),
    ]
    .prop_map(|(n, v)| (n.to_owned(), v));
    prop_oneof![
        4 => object(fields(field)),
        1 => Just("null".to_owned()),
        1 => Just("{\"type\":\"STRING\",\"size\":3}".to_owned()),
    ]
}

fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"2025-06-02T09:14:42.123Z\"",
            "\"2025-06-02T09:14:42Z\"",
            "\"2025-06-02T09:14:42.123456+01:00\"",
            "\"2025-13-02T09:14:42.123Z\"",
            "\"yesterday\"",
            "null",
        ])
        .prop_map(str::to_owned),
        number(),
    ]
}

/// A report in any order, with optional and unknown fields.
fn any_order() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        3 => (Just("error_code"), prop_oneof![3 => Just("200".to_owned()), 1 => number()]),
        1 => (Just("message"), prop_oneof![string(), Just("null".to_owned())]),
        1 => (Just("cluster_id"), string()),
        1 => (Just("topic_name"), string()),
        2 => (Just("partition_id"), number()),
        2 => (Just("offset"), number()),
        1 => (Just("timestamp"), timestamp()),
        1 => (Just("key"), stored_data()),
        1 => (Just("value"), stored_data()),
        1 => (Just("unknown"), string()),
    ]
    .prop_map(|(n, v)| (n.to_owned(), v));
    object(fields(field))
}

/// A report exactly as the servers write it, with its parts varied.
fn server_form() -> impl Strategy<Value = String> {
    (
        string(),
        string(),
        number(),
        number(),
        timestamp(),
        prop::option::of(stored_data()),
        prop::option::of(stored_data()),
    )
        .prop_map(|(cluster, topic, partition, offset, time, key, value)| {
            let mut out = format!(
                "{{\"error_code\":200,\"cluster_id\":{cluster},\"topic_name\":{topic},\
                 \"partition_id\":{partition},\"offset\":{offset},\"timestamp\":{time}"
            );
            for (name, data) in [("key", key), ("value", value)] {
                if let Some(data) = data {
                    out.push_str(&format!(",\"{name}\":{data}"));
                }
            }
            out.push('}');
            out
        })
}

fn report() -> impl Strategy<Value = String> {
    prop_oneof![any_order(), server_form()]
}

/// The fast path either leaves `text` to serde or reads it as serde does.
fn agrees(text: &[u8], repeated: &mut Repeated) -> Result<(), TestCaseError> {
    let serde = || {
        let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<ReportWire>();
        stream.next().map(|r| r.map(|r| (r, stream.byte_offset())))
    };
    for compact in [
        ReportWire::parse_compact_in_stream(text, Some(repeated)),
        ReportWire::parse_compact_in_stream(text, None),
    ] {
        let Some((report, len)) = compact else {
            continue;
        };
        match serde() {
            Some(Ok((by_serde, end))) => {
                prop_assert_eq!(format!("{report:?}"), format!("{by_serde:?}"));
                let between = &text[len.min(end)..len.max(end)];
                prop_assert!(
                    between.iter().all(u8::is_ascii_whitespace),
                    "{len} vs {end}"
                );
            }
            other => prop_assert!(
                false,
                "the fast path read {report:?} from {:?}; serde: {other:?}",
                String::from_utf8_lossy(text)
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_compact_report_reader_agrees_with_serde(text in report(), change in mutation()) {
        let mut repeated = Repeated::default();
        let mutated = change.apply(text.as_bytes());
        for candidate in [text.as_bytes(), &mutated[..]] {
            // Twice: the second read meets what the first left in `repeated`.
            agrees(candidate, &mut repeated)?;
            agrees(candidate, &mut repeated)?;
        }
    }

    #[test]
    fn the_report_decoder_gives_serdes_stream_under_any_split(
        reports in prop::collection::vec((report(), ws()), 1..5),
        crlf in any::<bool>(),
        change in prop::option::of(mutation()),
        step in 1usize..40,
    ) {
        let mut body = Vec::new();
        for (report, space) in &reports {
            body.extend_from_slice(report.as_bytes());
            body.extend_from_slice(if crlf { b"\r\n" } else { space.as_bytes() });
        }
        let body = change.as_ref().map_or(body.clone(), |c: &Mutation| c.apply(&body));
        let by_serde: Result<Vec<ReportWire>, _> =
            serde_json::Deserializer::from_slice(&body).into_iter().collect();
        for pieces in [vec![&body[..]], body.chunks(step).collect()] {
            let mut decoder = ReportDecoder::default();
            let mut out = Vec::new();
            let mut failed = false;
            for piece in pieces {
                if decoder.push(piece, &mut out).is_err() {
                    failed = true;
                    break;
                }
            }
            if let Ok(expected) = &by_serde {
                prop_assert!(!failed, "serde read {:?}", String::from_utf8_lossy(&body));
                prop_assert!(!decoder.has_partial());
                prop_assert_eq!(format!("{out:?}"), format!("{expected:?}"));
            } else {
                // Serde refuses the text: the decoder refuses it too, or
                // holds the unfinished rest.
                prop_assert!(failed || decoder.has_partial(), "{:?}", String::from_utf8_lossy(&body));
            }
        }
    }
}
