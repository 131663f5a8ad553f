//! The producer's JSON writer: any key, value and header, as text or bytes,
//! encodes to one JSON object that reads back to the same data.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ccloud_kafka_rest::Record;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff);
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let bytes = parts.next().unwrap_or_default().to_vec();
    let record = Record::new()
        .with_key(key.as_str())
        .with_value(bytes.clone())
        .with_header(name.as_str(), value.clone().into_bytes());
    let encoded = ccloud_kafka_rest::__fuzz::encode_record(&record);
    let json: Value = serde_json::from_slice(&encoded).expect("the encoding is JSON");
    assert_eq!(json["key"]["type"], "STRING");
    assert_eq!(json["key"]["data"].as_str(), Some(key.as_str()));
    assert_eq!(json["value"]["type"], "BINARY");
    let stored = STANDARD
        .decode(json["value"]["data"].as_str().expect("base64 text"))
        .expect("valid base64");
    assert_eq!(stored, bytes);
    assert_eq!(json["headers"][0]["name"].as_str(), Some(name.as_str()));
    let header = STANDARD
        .decode(json["headers"][0]["value"].as_str().expect("base64 text"))
        .expect("valid base64");
    assert_eq!(header, value.as_bytes());
});
