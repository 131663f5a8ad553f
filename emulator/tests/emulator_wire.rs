//! Loopback tests of the emulator's wire behaviour, using plain HTTP clients.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use ccloud_kafka_rest_emulator::{DataType, Emulator, HttpFault, StoredRecord};
use common::raw_http::{RawConn, client, find};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn path(emu: &Emulator, prefix: &str, topic: &str) -> String {
    format!(
        "{prefix}/clusters/{}/topics/{topic}/records",
        emu.cluster_id()
    )
}

fn url(emu: &Emulator, prefix: &str, topic: &str) -> String {
    format!("{}{}", emu.url(), path(emu, prefix, topic))
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The delivery reports: every one must be terminated by CRLF.
    fn reports(&self) -> Vec<Value> {
        parse_reports(&self.body)
    }
}

fn parse_reports(body: &str) -> Vec<Value> {
    assert!(
        body.is_empty() || body.ends_with("\r\n"),
        "reports must end with CRLF: {body:?}"
    );
    body.split_terminator("\r\n")
        .map(|line| {
            assert!(
                !line.contains('\n'),
                "bare newline inside a report: {line:?}"
            );
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report {line:?}: {e}"))
        })
        .collect()
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = timeout(WAIT, req.send())
        .await
        .expect("response in time")
        .expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = timeout(WAIT, resp.text())
        .await
        .expect("body in time")
        .expect("body read");
    Reply {
        status,
        headers,
        body,
    }
}

async fn post(url: &str, body: impl Into<reqwest::Body>) -> Reply {
    send(
        client()
            .post(url)
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

fn string_record(value: &str) -> String {
    json!({"value": {"type": "STRING", "data": value}}).to_string()
}

fn values(records: &[StoredRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default()).unwrap())
        .collect()
}

#[tokio::test]
async fn content_length_body_gets_one_report_per_record_in_order() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let body = format!(
        "{}{}\r\n  {}\n\n{}\t{}",
        string_record("a"),
        string_record("b"),
        string_record("c"),
        string_record("d"),
        string_record("e")
    );
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(
        reply.headers["transfer-encoding"].to_str().unwrap(),
        "chunked"
    );
    let reports = reply.reports();
    assert_eq!(reports.len(), 5);
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r["error_code"], 200);
        assert_eq!(r["cluster_id"], "lkc-emulator");
        assert_eq!(r["topic_name"], "demo");
        assert_eq!(r["partition_id"], 0);
        assert_eq!(r["offset"], i as i64);
        assert_eq!(r["value"], json!({"type": "STRING", "size": 1}));
        assert!(r.get("key").is_none(), "no key object: {r}");
        let ts = r["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "timestamp {ts}");
    }
    assert_eq!(values(&emu.records("demo")), ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn both_prefixes_are_served() {
    let emu = Emulator::start_default().await.unwrap();
    for prefix in ["/kafka/v3", "/v3"] {
        let reply = post(
            &url(&emu, prefix, "demo"),
            json!({"partition_id": 2, "value": {"type": "STRING", "data": prefix}}).to_string(),
        )
        .await;
        assert_eq!(reply.status, 200, "{prefix}");
        assert_eq!(reply.reports()[0]["partition_id"], 2);
    }
    assert_eq!(
        values(&emu.partition_records("demo", 2)),
        ["/kafka/v3", "/v3"]
    );
    assert_eq!(emu.partition_records("demo", 2)[1].offset, 1);
}

#[tokio::test]
async fn chunks_split_records_at_arbitrary_boundaries() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let mut body = String::new();
    for i in 0..20 {
        body.push_str(
            &json!({"value": {"type": "JSON", "data": {"n": i, "s": "}{\"\\"}}}).to_string(),
        );
        body.push_str(if i % 2 == 0 { "\r\n" } else { " " });
    }
    for split in [1usize, 3, 7, 64] {
        let mut conn = RawConn::open(&emu, &path(&emu, "/v3", "demo"), &[]).await;
        for piece in body.as_bytes().chunks(split) {
            conn.chunk(piece).await;
        }
        conn.finish().await;
        assert_eq!(conn.status().await, 200);
        let (reports, ended) = conn.rest().await;
        assert!(ended, "the response must end with its final chunk");
        assert_eq!(reports.len(), 20, "split {split}");
        assert!(reports.iter().all(|r| r["error_code"] == 200));
    }
    let stored = emu.records("demo");
    assert_eq!(stored.len(), 80);
    assert_eq!(
        stored[5].value.as_deref().unwrap(),
        br#"{"n":5,"s":"}{\"\\"}"#
    );
    assert_eq!(stored[79].offset, 79);
}

#[tokio::test]
async fn reports_arrive_while_the_body_is_still_open() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    // The first record arrives split in two chunks.
    let first = string_record("one");
    conn.chunk(&first.as_bytes()[..5]).await;
    conn.chunk(&first.as_bytes()[5..]).await;
    assert_eq!(conn.status().await, 200);
    let r = conn.report().await.unwrap();
    assert_eq!(
        (r["error_code"].as_i64(), r["offset"].as_i64()),
        (Some(200), Some(0))
    );
    conn.chunk(format!("\r\n{}", string_record("two")).as_bytes())
        .await;
    let r = conn.report().await.unwrap();
    assert_eq!(r["offset"], 1);
    assert!(!conn.ended);
    conn.finish().await;
    let (rest, ended) = conn.rest().await;
    assert!(rest.is_empty() && ended);
}

#[tokio::test]
async fn reqwest_streaming_body_gets_reports_before_it_ends() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    tx.send(Ok(Bytes::from(string_record("first"))))
        .await
        .unwrap();
    let mut resp = timeout(
        WAIT,
        client()
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status(), 200);

    let mut pending = Vec::new();
    let mut next_line = async |resp: &mut reqwest::Response| -> Option<Value> {
        loop {
            if let Some(end) = find(&pending, b"\r\n") {
                let line: Vec<u8> = pending.drain(..end + 2).collect();
                return Some(serde_json::from_slice(&line[..end]).unwrap());
            }
            match timeout(WAIT, resp.chunk()).await.unwrap().unwrap() {
                Some(chunk) => pending.extend_from_slice(&chunk),
                None => return None,
            }
        }
    };
    assert_eq!(next_line(&mut resp).await.unwrap()["offset"], 0);
    tx.send(Ok(Bytes::from(string_record("second"))))
        .await
        .unwrap();
    assert_eq!(next_line(&mut resp).await.unwrap()["offset"], 1);
    drop(tx);
    assert!(next_line(&mut resp).await.is_none());
    assert_eq!(values(&emu.records("demo")), ["first", "second"]);
}

#[tokio::test]
async fn data_types_are_stored_byte_exact() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let bin = [0u8, 1, 2, 254, 255];
    let records = [
        json!({"key": {"type": "STRING", "data": "k1"}, "value": {"type": "STRING", "data": "héllo"}}),
        json!({"key": {"type": "BINARY", "data": STANDARD.encode(bin)}, "value": {"type": "BINARY", "data": "AAE"}}),
        json!({"value": {"type": "JSON", "data": {"foo": 7}}}),
        json!({"key": {"type": "STRING", "data": null}, "value": {"type": "JSON", "data": null}}),
        json!({"value": {"type": "STRING", "data": ""}}),
        json!({"key": null}),
        json!({"value": {"type": "JSON", "data": [1, "two", {"z": 1, "a": false}]}}),
    ];
    let body: String = records.iter().map(|r| r.to_string() + "\n").collect();
    // Key order inside JSON data must survive, so send that record verbatim.
    let body = body + r#"{"value":{"type":"JSON","data":{ "b" : 1 , "a" : [ 2.5 ] }}}"#;
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    assert_eq!(reply.status, 200);
    let reports = reply.reports();
    assert_eq!(reports.len(), 8);
    assert!(
        reports.iter().all(|r| r["error_code"] == 200),
        "{reports:?}"
    );

    assert_eq!(reports[0]["key"], json!({"type": "STRING", "size": 2}));
    assert_eq!(reports[0]["value"], json!({"type": "STRING", "size": 6}));
    assert_eq!(reports[1]["key"], json!({"type": "BINARY", "size": 5}));
    assert_eq!(reports[1]["value"], json!({"type": "BINARY", "size": 2}));
    assert_eq!(reports[2]["value"], json!({"type": "JSON", "size": 9}));
    assert_eq!(reports[3]["key"], json!({"type": "STRING", "size": 0}));
    assert_eq!(reports[4]["value"], json!({"type": "STRING", "size": 0}));
    assert!(reports[5].get("key").is_none() && reports[5].get("value").is_none());

    let s = emu.records("demo");
    assert_eq!(s[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(s[0].value.as_deref(), Some("héllo".as_bytes()));
    assert_eq!(s[0].key_type, Some(DataType::String));
    assert_eq!(s[1].key.as_deref(), Some(&bin[..]));
    assert_eq!(s[1].value.as_deref(), Some(&[0u8, 1][..]));
    assert_eq!(s[1].value_type, Some(DataType::Binary));
    assert_eq!(s[2].value.as_deref(), Some(&br#"{"foo":7}"#[..]));
    assert_eq!(s[2].value_type, Some(DataType::Json));
    assert_eq!(
        (s[3].key.clone(), s[3].key_type),
        (None, Some(DataType::String))
    );
    assert_eq!(
        (s[3].value.clone(), s[3].value_type),
        (None, Some(DataType::Json))
    );
    assert_eq!(s[4].value.as_deref(), Some(&b""[..]));
    assert_eq!(
        (s[5].key.clone(), s[5].key_type, s[5].value_type),
        (None, None, None)
    );
    assert_eq!(
        s[6].value.as_deref(),
        // (json! sorts object members, so this is also the order that was sent)
        Some(&br#"[1,"two",{"a":false,"z":1}]"#[..])
    );
    assert_eq!(s[7].value.as_deref(), Some(&br#"{"b":1,"a":[2.5]}"#[..]));
}

#[tokio::test]
async fn headers_and_timestamps_are_stored() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let record = json!({
        "headers": [
            {"name": "trace", "value": STANDARD.encode("abc")},
            {"name": "trace", "value": null},
            {"name": "empty", "value": ""}
        ],
        "timestamp": "2024-02-03T04:05:06.789999+01:00",
        "value": {"type": "STRING", "data": "v"}
    });
    let reply = post(&url(&emu, "/kafka/v3", "demo"), record.to_string()).await;
    let report = &reply.reports()[0];
    assert_eq!(report["timestamp"], "2024-02-03T03:05:06.789Z");
    let stored = &emu.records("demo")[0];
    assert_eq!(
        stored.headers,
        vec![
            ("trace".to_owned(), Some(b"abc".to_vec())),
            ("trace".to_owned(), None),
            ("empty".to_owned(), Some(Vec::new())),
        ]
    );
    assert_eq!(stored.timestamp.timestamp_millis(), 1_706_929_506_789);
}

#[tokio::test]
async fn bad_records_get_in_band_400_and_the_stream_goes_on() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let body = [
        r#"{"value":{"type":"BINARY","data":"not base64!"}}"#,
        r#"{"value":{"type":"BINARY","data":"AA-_"}}"#,
        r#"{"value":{"type":"STRING","data":"ok-1"},"colour":"red"}"#,
        r#"{"value":{"type":"string","data":"x"}}"#,
        r#"{"value":{"data":"x"}}"#,
        r#"{"value":{"type":"STRING","data":{"not":"a string"}}}"#,
        r#"{"headers":[{"name":"h","value":"AAE"}]}"#,
        r#"{"partition_id":"zero"}"#,
        r#"{"timestamp":"last tuesday"}"#,
        r#"{"value":{"type":"STRING","data":"ok-2"}}"#,
    ]
    .join("\n");
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    assert_eq!(reply.status, 200);
    let reports = reply.reports();
    assert_eq!(reports.len(), 10);
    for r in &reports[..9] {
        assert_eq!(r["error_code"], 400, "{r}");
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            r.as_object().unwrap().len(),
            2,
            "failure has only code and message: {r}"
        );
    }
    assert!(
        reports[4]["message"]
            .as_str()
            .unwrap()
            .contains("Schema Registry")
    );
    assert_eq!(reports[9]["error_code"], 200);
    assert_eq!(reports[9]["offset"], 0);
    assert_eq!(values(&emu.records("demo")), ["ok-2"]);
}

#[tokio::test]
async fn malformed_json_ends_the_stream() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    for bad in [r#"{"value": tru}"#, ",", "[]", "{\"value\":"] {
        let body = format!(
            "{}\n{}\n{bad}\n{}",
            string_record("a"),
            string_record("b"),
            string_record("never")
        );
        let body = if bad == "{\"value\":" {
            format!("{}\n{}\n{bad}", string_record("a"), string_record("b"))
        } else {
            body
        };
        let reply = post(&url(&emu, "/v3", "demo"), body).await;
        assert_eq!(reply.status, 200);
        let reports = reply.reports();
        assert_eq!(reports.len(), 3, "{bad}: {reports:?}");
        assert_eq!(reports[0]["error_code"], 200);
        assert_eq!(reports[1]["error_code"], 200);
        assert_eq!(reports[2]["error_code"], 400);
        let message = reports[2]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Bad Request: Error processing JSON: "),
            "{message}"
        );
    }
    assert!(!values(&emu.records("demo")).contains(&"never".to_owned()));
    assert_eq!(emu.records("demo").len(), 8);
}

#[tokio::test]
async fn malformed_json_ends_the_response_while_the_body_is_still_open() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    conn.chunk(string_record("a").as_bytes()).await;
    assert_eq!(conn.status().await, 200);
    assert_eq!(conn.report().await.unwrap()["error_code"], 200);
    // A complete record followed by a stray closing brace.
    conn.chunk(b"{\"value\":{\"type\":\"STRING\",\"data\":\"x\"}}}")
        .await;
    assert_eq!(conn.report().await.unwrap()["error_code"], 200);
    let r = conn.report().await.unwrap();
    assert_eq!(r["error_code"], 400);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: Error processing JSON")
    );
    // The request body was never finished, yet the response is complete.
    let (rest, ended) = conn.rest().await;
    assert!(rest.is_empty());
    assert!(ended);
    assert_eq!(values(&emu.records("demo")), ["a", "x"]);
}

#[tokio::test]
async fn one_client_reuses_its_connection_across_requests() {
    let emu = Emulator::start_default().await.unwrap();
    let http = client();
    let target = url(&emu, "/kafka/v3", "demo");
    for i in 0..5 {
        let reply = send(
            http.post(&target)
                .header("content-type", "application/json")
                .body(format!("{}{}", string_record("a"), string_record("b"))),
        )
        .await;
        assert_eq!(reply.reports().len(), 2, "round {i}");
        let reply = send(http.post(&target).body("{}")).await;
        assert_eq!(reply.status, 415);
    }
    assert_eq!(emu.records("demo").len(), 10);
    assert_eq!(emu.requests(), 10);
}

#[tokio::test]
async fn empty_body_is_422() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    for body in ["", " \r\n\t "] {
        let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json(),
            json!({"error_code": 422, "message": "Payload error. Request body is empty. Data is required."})
        );
    }
    // Chunked: emptiness is only known when the body ends.
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    conn.chunk(b"  \r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.chunk(b"\n").await;
    conn.finish().await;
    assert_eq!(conn.status().await, 422);
}

#[tokio::test]
async fn content_type_is_checked() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let client = client();
    let record = string_record("x");
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = client
            .post(url(&emu, "/kafka/v3", "demo"))
            .body(record.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let reply = send(req).await;
        assert_eq!(reply.status, 415, "{ct:?}");
        assert_eq!(
            reply.json(),
            json!({"error_code": 415, "message": "HTTP 415 Unsupported Media Type"})
        );
    }
    let reply = send(
        client
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json; charset=utf-16")
            .body(record.clone()),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error_code"], 400);
    let reply = send(
        client
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json; charset=UTF-8")
            .body(record.clone()),
    )
    .await;
    assert_eq!(reply.status, 200);

    // ISO-8859-1 bodies are decoded before the record is read.
    let mut latin1 = br#"{"value":{"type":"STRING","data":"caf"#.to_vec();
    latin1.push(0xE9);
    latin1.extend_from_slice(br#""}}"#);
    let reply = send(
        client
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json; charset=ISO-8859-1")
            .body(latin1),
    )
    .await;
    assert_eq!(reply.reports()[0]["value"]["size"], 5);
    assert_eq!(values(&emu.records("demo")), ["x", "café"]);
}

#[tokio::test]
async fn api_keys_and_topic_acls() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_topic("secret", 1)
        .with_api_key("key", "secret")
        .with_api_key("admin", "pw")
        .with_allowed_topics("key", ["demo"])
        .start()
        .await
        .unwrap();
    let client = client();
    let attempt = |topic: &str, user: Option<(&str, &str)>| {
        let mut req = client
            .post(url(&emu, "/kafka/v3", topic))
            .header("content-type", "application/json")
            .body(string_record("x"));
        if let Some((u, p)) = user {
            req = req.basic_auth(u, Some(p));
        }
        send(req)
    };
    for user in [None, Some(("key", "wrong")), Some(("nobody", "secret"))] {
        let reply = attempt("demo", user).await;
        assert_eq!(reply.status, 401, "{user:?}");
        assert_eq!(
            reply.json(),
            json!({"error_code": 40101, "message": "Authentication failed"})
        );
    }
    // Authentication comes before the topic is looked at.
    assert_eq!(attempt("missing", None).await.status, 401);
    assert_eq!(attempt("demo", Some(("key", "secret"))).await.status, 200);
    let reply = attempt("secret", Some(("key", "secret"))).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json(),
        json!({"error_code": 40301, "message": "Request is not authorized"})
    );
    assert_eq!(
        attempt("missing", Some(("key", "secret"))).await.status,
        403
    );
    assert_eq!(attempt("secret", Some(("admin", "pw"))).await.status, 200);
    assert_eq!(emu.records("demo").len(), 1);
    assert_eq!(emu.records("secret").len(), 1);

    let headers = emu.last_request_headers().unwrap();
    let auth = headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(auth, format!("Basic {}", STANDARD.encode("admin:pw")));
}

#[tokio::test]
async fn bearer_tokens_and_identity_pools() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_bearer_token("open-token", "alice")
        .with_bearer_token_in_pool("pool-token", "bob", "pool-abc")
        .with_allowed_topics("bob", ["demo"])
        .start()
        .await
        .unwrap();
    let client = client();
    let attempt = |token: &str, pool: Option<&str>| {
        let mut req = client
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(string_record("x"));
        if let Some(pool) = pool {
            req = req.header("Confluent-Identity-Pool-Id", pool);
        }
        send(req)
    };
    assert_eq!(attempt("open-token", None).await.status, 200);
    assert_eq!(attempt("open-token", Some("pool-zzz")).await.status, 200);
    assert_eq!(attempt("pool-token", Some("pool-abc")).await.status, 200);
    assert_eq!(attempt("pool-token", None).await.status, 401);
    assert_eq!(attempt("pool-token", Some("pool-xyz")).await.status, 401);
    assert_eq!(attempt("unknown", Some("pool-abc")).await.status, 401);
    let reply = send(
        client
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json")
            .basic_auth("open-token", Some(""))
            .body(string_record("x")),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(emu.records("demo").len(), 3);
}

#[tokio::test]
async fn unknown_paths_clusters_and_methods() {
    let emu = Emulator::start_default().await.unwrap();
    let client = client();
    for p in [
        "/kafka/v3/clusters/lkc-emulator/topics/demo",
        "/v2/topics/demo",
        "/kafka/v3/clusters/lkc-emulator/topics/demo/records/extra",
        "/",
    ] {
        let reply = send(
            client
                .post(format!("{}{p}", emu.url()))
                .header("content-type", "application/json")
                .body(string_record("x")),
        )
        .await;
        assert_eq!(reply.status, 404, "{p}");
        assert_eq!(
            reply.json(),
            json!({"error_code": 404, "message": "HTTP 404 Not Found"})
        );
    }
    let reply = send(client.get(url(&emu, "/kafka/v3", "demo"))).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["error_code"], 405);

    let reply = post(
        &format!(
            "{}/kafka/v3/clusters/lkc-other/topics/demo/records",
            emu.url()
        ),
        string_record("x"),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error_code"], 404);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("lkc-other")
    );
    assert!(emu.records("demo").is_empty());
}

#[tokio::test]
async fn unknown_topics_are_404_unless_auto_created() {
    let emu = Emulator::start_default().await.unwrap();
    let reply = post(&url(&emu, "/kafka/v3", "nope"), string_record("x")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error_code"], 40403);
    assert!(reply.json()["message"].as_str().unwrap().contains("nope"));

    let emu = Emulator::builder()
        .with_auto_create_topics(true)
        .with_default_partitions(4)
        .start()
        .await
        .unwrap();
    assert_eq!(emu.partition_count("fresh"), None);
    let reply = post(
        &url(&emu, "/kafka/v3", "fresh"),
        json!({"partition_id": 3, "value": {"type": "STRING", "data": "x"}}).to_string(),
    )
    .await;
    assert_eq!(reply.reports()[0]["error_code"], 200);
    assert_eq!(emu.partition_count("fresh"), Some(4));
    assert_eq!(values(&emu.partition_records("fresh", 3)), ["x"]);
}

#[tokio::test]
async fn partition_problems_are_in_band() {
    let emu = Emulator::start_default().await.unwrap();
    let body = [
        r#"{"partition_id":-1,"value":{"type":"STRING","data":"neg"}}"#,
        r#"{"partition_id":3,"value":{"type":"STRING","data":"big"}}"#,
        r#"{"partition_id":2147483648,"value":{"type":"STRING","data":"huge"}}"#,
        r#"{"partition_id":null,"key":{"type":"STRING","data":"a"},"value":{"type":"STRING","data":"ok"}}"#,
    ]
    .concat();
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    let reports = reply.reports();
    assert_eq!(
        reports[0],
        json!({"error_code": 40402, "message": "Partition not found."})
    );
    assert_eq!(reports[1]["error_code"], 40403);
    assert_eq!(reports[2]["error_code"], 40403);
    assert_eq!(reports[3]["error_code"], 200);
    assert_eq!(emu.records("demo").len(), 1);
}

#[tokio::test]
async fn keyed_records_are_hashed_and_unkeyed_ones_round_robin() {
    let emu = Emulator::start_default().await.unwrap();
    let keyed = |k: &str| {
        json!({"key": {"type": "STRING", "data": k}, "value": {"type": "STRING", "data": k}})
            .to_string()
    };
    let body: String = ["a", "b", "foobar", "a", "b", "foobar"]
        .iter()
        .map(|k| keyed(k))
        .collect();
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    let partitions: Vec<i64> = reply
        .reports()
        .iter()
        .map(|r| r["partition_id"].as_i64().unwrap())
        .collect();
    // Kafka's murmur2 partitioner: "a" -> 1, "b" -> 2, "foobar" -> 0 with 3 partitions.
    assert_eq!(partitions, [1, 2, 0, 1, 2, 0]);
    // The same key is hashed from its bytes, whatever its declared type.
    let reply = post(
        &url(&emu, "/kafka/v3", "demo"),
        json!({"key": {"type": "BINARY", "data": STANDARD.encode("b")}}).to_string(),
    )
    .await;
    assert_eq!(reply.reports()[0]["partition_id"], 2);

    let body: String = (0..6).map(|i| string_record(&i.to_string())).collect();
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    let mut counts = [0; 3];
    for r in reply.reports() {
        counts[r["partition_id"].as_i64().unwrap() as usize] += 1;
    }
    assert_eq!(counts, [2, 2, 2]);
}

#[tokio::test]
async fn http_faults_answer_the_next_requests() {
    let emu = Emulator::start_default().await.unwrap();
    let target = url(&emu, "/kafka/v3", "demo");
    emu.fail_next_requests(HttpFault::rate_limited(Some(3)), 1);
    emu.fail_next_requests(HttpFault::json(500, 50003, "Retriable Kafka error"), 2);
    emu.fail_next_requests(
        HttpFault::new(503, "text/plain", "down").with_retry_after(5),
        1,
    );
    emu.fail_next_requests(HttpFault::json(413, 413, "Request too large"), 1);

    let reply = post(&target, string_record("x")).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["retry-after"], "3");
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.body.contains("429") && reply.body.contains("<html"));
    assert!(serde_json::from_str::<Value>(&reply.body).is_err());

    for _ in 0..2 {
        let reply = post(&target, string_record("x")).await;
        assert_eq!(reply.status, 500);
        assert_eq!(
            reply.json(),
            json!({"error_code": 50003, "message": "Retriable Kafka error"})
        );
        assert!(reply.headers.get("retry-after").is_none());
    }
    let reply = post(&target, string_record("x")).await;
    assert_eq!((reply.status, reply.body.as_str()), (503, "down"));
    assert_eq!(reply.headers["retry-after"], "5");
    assert_eq!(reply.headers["content-type"], "text/plain");
    let reply = post(&target, string_record("x")).await;
    assert_eq!(
        (reply.status, reply.json()["error_code"].as_i64()),
        (413, Some(413))
    );

    assert!(emu.records("demo").is_empty());
    let reply = post(&target, string_record("ok")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(values(&emu.records("demo")), ["ok"]);
    assert_eq!(emu.requests(), 6);
}

#[tokio::test]
async fn record_faults_replace_the_next_appends() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    emu.fail_next_records(42901, "Throttled", 3);
    let body = [
        string_record("1"),
        r#"{"nope":1}"#.to_owned(),
        string_record("2"),
        string_record("3"),
        string_record("4"),
        string_record("5"),
    ]
    .concat();
    let reports = post(&url(&emu, "/kafka/v3", "demo"), body).await.reports();
    let codes: Vec<i64> = reports
        .iter()
        .map(|r| r["error_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [42901, 400, 42901, 42901, 200, 200]);
    assert_eq!(
        reports[0],
        json!({"error_code": 42901, "message": "Throttled"})
    );
    assert_eq!(values(&emu.records("demo")), ["4", "5"]);
    assert_eq!(reports[4]["offset"], 0);
}

#[tokio::test]
async fn stream_lifetime_answers_408_then_closes() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_stream_lifetime(Duration::from_millis(300))
        .with_stream_close_delay(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    conn.chunk(string_record("early").as_bytes()).await;
    assert_eq!(conn.status().await, 200);
    assert_eq!(conn.report().await.unwrap()["error_code"], 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    conn.chunk(string_record("late").as_bytes()).await;
    let r = conn.report().await.unwrap();
    assert_eq!(r["error_code"], 408);
    let closed_from = std::time::Instant::now();
    conn.chunk(string_record("later").as_bytes()).await;
    assert_eq!(conn.report().await.unwrap()["error_code"], 408);
    let (rest, ended) = conn.rest().await;
    assert!(rest.is_empty());
    assert!(!ended, "the connection is dropped, not ended cleanly");
    assert!(closed_from.elapsed() < Duration::from_secs(3));
    assert_eq!(values(&emu.records("demo")), ["early"]);
}

#[tokio::test]
async fn connection_cut_after_n_reports() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    emu.cut_connection_after_records(2);
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    let body: String = (0..4).map(|i| string_record(&i.to_string())).collect();
    conn.chunk(body.as_bytes()).await;
    assert_eq!(conn.status().await, 200);
    let (reports, ended) = conn.rest().await;
    assert_eq!(reports.len(), 2);
    assert!(!ended);
    assert_eq!(values(&emu.records("demo")), ["0", "1"]);

    // Only one stream is cut.
    let body: String = (0..4).map(|i| string_record(&i.to_string())).collect();
    let reply = post(&url(&emu, "/kafka/v3", "demo"), body).await;
    assert_eq!(reply.reports().len(), 4);
}

#[tokio::test]
async fn size_limits() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_max_record_bytes(100)
        .with_max_request_bytes(2_000)
        .start()
        .await
        .unwrap();
    let target = url(&emu, "/kafka/v3", "demo");
    let reply = post(&target, " ".repeat(2_001)).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error_code"], 413);

    let big = string_record(&"x".repeat(200));
    let body = format!("{}{big}{}", string_record("a"), string_record("b"));
    let reports = post(&target, body).await.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["error_code"], 200);
    assert_eq!(reports[1]["error_code"], 400);
    assert!(
        reports[1]["message"]
            .as_str()
            .unwrap()
            .contains("Produce request size is larger than allowed threshold")
    );
    assert_eq!(values(&emu.records("demo")), ["a"]);
}

#[tokio::test]
async fn records_over_one_mebibyte_get_50002() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .start()
        .await
        .unwrap();
    let body = format!(
        "{}{}",
        string_record(&"x".repeat(1024 * 1024 + 1)),
        string_record(&"y".repeat(1024 * 1024))
    );
    let reports = post(&url(&emu, "/kafka/v3", "demo"), body).await.reports();
    assert_eq!(reports[0]["error_code"], 50002);
    assert_eq!(reports[1]["error_code"], 200);
    assert_eq!(reports[1]["value"]["size"], 1024 * 1024);
}

fn batch_url(emu: &Emulator, topic: &str) -> String {
    format!("{}:batch", url(emu, "/v3", topic))
}

#[tokio::test]
async fn batch_produce() {
    let emu = Emulator::start_default().await.unwrap();
    let body = json!({"entries": [
        {"id": "1", "partition_id": 1, "value": {"type": "STRING", "data": "one"}},
        {"id": "a_b-C", "partition_id": 7, "value": {"type": "STRING", "data": "bad"}},
        {"id": "3", "partition_id": 1, "key": {"type": "STRING", "data": "k"}, "value": {"type": "BINARY", "data": "AAE="}},
    ]});
    let reply = post(&batch_url(&emu, "demo"), body.to_string()).await;
    assert_eq!(reply.status, 207);
    let v = reply.json();
    let successes = v["successes"].as_array().unwrap();
    assert_eq!(successes.len(), 2);
    assert_eq!(successes[0]["id"], "1");
    assert_eq!(successes[0]["cluster_id"], "lkc-emulator");
    assert_eq!(successes[0]["topic_name"], "demo");
    assert_eq!(successes[0]["partition_id"], 1);
    assert_eq!(successes[0]["offset"], 0);
    assert_eq!(successes[0]["value"], json!({"type": "STRING", "size": 3}));
    assert_eq!(successes[1]["id"], "3");
    assert_eq!(successes[1]["offset"], 1);
    assert_eq!(successes[1]["key"], json!({"type": "STRING", "size": 1}));
    assert_eq!(
        v["failures"],
        json!([{"id": "a_b-C", "error_code": 40403, "message": "This server does not host this topic-partition."}])
    );
    assert_eq!(emu.partition_records("demo", 1).len(), 2);

    // Also under the Confluent Cloud prefix.
    let cloud = format!("{}:batch", url(&emu, "/kafka/v3", "demo"));
    let reply = post(
        &cloud,
        json!({"entries": [{"id": "x", "value": null}]}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 207);
}

#[tokio::test]
async fn batch_rules_are_422_42208() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_max_batch_entries(3)
        .start()
        .await
        .unwrap();
    let entry = |id: &str| json!({"id": id, "value": {"type": "STRING", "data": "v"}});
    let cases = [
        json!({"entries": []}),
        json!({"entries": [entry("1"), entry("2"), entry("3"), entry("4")]}),
        json!({"entries": [entry("1"), entry("1")]}),
        json!({"entries": [entry("has space")]}),
        json!({"entries": [entry("")]}),
        json!({"entries": [entry(&"x".repeat(81))]}),
        json!({"entries": [{"value": {"type": "STRING", "data": "v"}}]}),
    ];
    for case in cases {
        let reply = post(&batch_url(&emu, "demo"), case.to_string()).await;
        assert_eq!(reply.status, 422, "{case}");
        assert_eq!(reply.json()["error_code"], 42208, "{case}");
    }
    assert!(emu.records("demo").is_empty());
    let ok = json!({"entries": [entry("1"), entry("2"), entry(&"x".repeat(80))]});
    assert_eq!(
        post(&batch_url(&emu, "demo"), ok.to_string()).await.status,
        207
    );
    assert_eq!(emu.records("demo").len(), 3);
}

#[tokio::test]
async fn request_counter_and_headers() {
    let emu = Emulator::start_default().await.unwrap();
    assert_eq!(emu.requests(), 0);
    assert!(emu.last_request_headers().is_none());
    send(
        client()
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json")
            .header("User-Agent", "wire-test/1.0")
            .header("X-Custom", "yes")
            .body(string_record("x")),
    )
    .await;
    let _ = post(&format!("{}/nowhere", emu.url()), "{}").await;
    assert_eq!(emu.requests(), 2);
    let headers = emu.last_request_headers().unwrap();
    assert!(headers.iter().all(|(n, _)| *n == n.to_ascii_lowercase()));
    assert!(!headers.iter().any(|(n, _)| n == "x-custom"));
    let first = send(
        client()
            .post(url(&emu, "/kafka/v3", "demo"))
            .header("content-type", "application/json")
            .header("User-Agent", "wire-test/1.0")
            .body(string_record("x")),
    )
    .await;
    assert_eq!(first.status, 200);
    let headers = emu.last_request_headers().unwrap();
    assert!(headers.contains(&("user-agent".to_owned(), "wire-test/1.0".to_owned())));
    assert_eq!(emu.requests(), 3);
}

#[tokio::test]
async fn shutdown_stops_the_listener() {
    let emu = Emulator::start_default().await.unwrap();
    let addr = emu.addr();
    assert!(emu.url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        post(&url(&emu, "/kafka/v3", "demo"), string_record("x"))
            .await
            .status,
        200
    );
    emu.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_does_not_wait_for_open_streams() {
    let emu = Emulator::start_default().await.unwrap();
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    conn.chunk(string_record("x").as_bytes()).await;
    assert_eq!(conn.status().await, 200);
    assert_eq!(conn.report().await.unwrap()["error_code"], 200);
    timeout(Duration::from_secs(3), emu.shutdown())
        .await
        .expect("shutdown finishes while a client keeps its stream open");
    let (_, ended) = conn.rest().await;
    assert!(!ended);
}

#[tokio::test]
async fn errors_before_streaming_reach_a_client_still_sending() {
    let emu = Emulator::builder()
        .with_topic("demo", 1)
        .with_api_key("key", "secret")
        .start()
        .await
        .unwrap();
    let mut conn = RawConn::open(&emu, &path(&emu, "/kafka/v3", "demo"), &[]).await;
    conn.chunk(string_record("x").as_bytes()).await;
    assert_eq!(conn.status().await, 401);
    assert!(emu.records("demo").is_empty());
}

#[test]
fn emulator_can_be_shared_between_tasks() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Emulator>();
    assert_send_sync::<HttpFault>();
    assert_send_sync::<StoredRecord>();
}
