//! Loopback tests of the produce rate limits: in-band 429s in a stream that
//! goes on, byte costs, per-cluster limits, limits changed while running and
//! buckets that refill. Times are never asserted: counts are, with room for
//! the permits a slow machine accrues while a request is handled.

mod common;

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use ccloud_kafka_rest_emulator::{Emulator, EmulatorBuilder, RateLimits};
use common::raw_http::client;
use serde_json::{Value, json};
use tokio::time::timeout;

/// The longest any test here may run before it fails.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The longest one request may take.
const WAIT: Duration = Duration::from_secs(15);

/// How long a bucket takes to fill up again, with a margin.
const REFILL: Duration = Duration::from_millis(1_200);

/// Runs a test body, failing it if it hangs.
async fn guarded(test: impl Future<Output = ()>) {
    timeout(HANG_GUARD, test).await.expect("the test hung");
}

fn records(n: u64) -> RateLimits {
    RateLimits::unlimited().with_records_per_second(n)
}

fn bytes(n: u64) -> RateLimits {
    RateLimits::unlimited().with_bytes_per_second(n)
}

fn emulator() -> EmulatorBuilder {
    Emulator::builder().with_topic("demo", 2)
}

fn url(emu: &Emulator, cluster: &str) -> String {
    format!("{}/v3/clusters/{cluster}/topics/demo/records", emu.url())
}

fn record(i: usize) -> String {
    json!({"value": {"type": "STRING", "data": format!("r{i}")}}).to_string()
}

/// `n` records in one body, sent at once.
fn burst(n: usize) -> Vec<u8> {
    (0..n).map(record).collect::<String>().into_bytes()
}

/// POSTs a whole body: the HTTP status and the JSON lines of the response.
async fn post(url: &str, body: Vec<u8>) -> (u16, Vec<Value>) {
    let http = client();
    let response = timeout(
        WAIT,
        http.post(url)
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await
    .expect("response in time")
    .expect("request sent");
    let status = response.status().as_u16();
    let text = timeout(WAIT, response.text()).await.unwrap().unwrap();
    let values = text
        .split_terminator("\r\n")
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    (status, values)
}

/// Streams `body` to `cluster`, checks that every record is answered with
/// HTTP 200 and a success or an in-band 429, and returns how many
/// succeeded.
async fn stream(emu: &Emulator, cluster: &str, body: Vec<u8>, n: usize) -> usize {
    let (status, reports) = post(&url(emu, cluster), body).await;
    assert_eq!(status, 200);
    assert_eq!(reports.len(), n, "every record is answered: {reports:?}");
    let mut delivered = 0;
    for report in &reports {
        match report["error_code"].as_i64() {
            Some(200) => {
                assert_eq!(report["cluster_id"], cluster, "{report}");
                delivered += 1;
            }
            Some(429) => {
                let message = report["message"].as_str().unwrap();
                assert!(
                    message.starts_with("Request rate limit exceeded"),
                    "{report}"
                );
                assert_eq!(report.as_object().unwrap().len(), 2, "{report}");
            }
            _ => panic!("unexpected report {report}"),
        }
    }
    delivered
}

#[tokio::test]
async fn a_burst_gets_one_seconds_worth_then_in_band_429s() {
    guarded(async {
        let emu = emulator().with_rate_limits(records(20)).start().await.unwrap();
        let cluster = emu.cluster_id().to_owned();
        let (status, reports) = post(&url(&emu, &cluster), burst(200)).await;
        assert_eq!(status, 200);
        assert_eq!(reports.len(), 200, "the stream goes on after the 429s");
        let delivered = reports.iter().filter(|r| r["error_code"] == 200).count();
        // 20 stored and one on credit, and whatever accrued meanwhile.
        assert!((21..=30).contains(&delivered), "{delivered} delivered");
        assert!(reports[..21].iter().all(|r| r["error_code"] == 200));
        let refused = &reports[delivered + 5];
        assert_eq!(
            refused,
            &json!({
                "error_code": 429,
                "message": "Request rate limit exceeded: The rate limit of requests per second has been exceeded."
            })
        );
        assert_eq!(reports[199]["error_code"], 429, "later records are answered");
        assert_eq!(emu.records("demo").len(), delivered);
        assert_eq!(emu.rate_limited_records(), 200 - delivered as u64);
        emu.reset_rate_limited_records();
        assert_eq!(emu.rate_limited_records(), 0);
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn without_limits_nothing_is_refused() {
    guarded(async {
        let emu = emulator()
            .with_rate_limits(RateLimits::unlimited().with_records_per_second(0))
            .start()
            .await
            .unwrap();
        let cluster = emu.cluster_id().to_owned();
        assert_eq!(stream(&emu, &cluster, burst(2_000), 2_000).await, 2_000);
        assert_eq!(emu.rate_limited_records(), 0);
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_bytes_limit_counts_the_json_text_as_sent() {
    guarded(async {
        // 1000 bytes of BINARY data are 1336 of base64, and this JSON value is
        // mostly whitespace that is not stored: a limit of 10 records' text
        // passes 11 of them (10 stored, one on credit, 100 ms of debt), where
        // one counting stored bytes would pass 14 or more.
        let binary = base64::engine::general_purpose::STANDARD.encode([7u8; 1_000]);
        let binary = json!({"value": {"type": "BINARY", "data": binary}}).to_string();
        let spaced = format!(
            "{{\"value\":{{\"type\":\"JSON\",\"data\":{{\"a\":{}1}}}}}}",
            " ".repeat(1_000)
        );
        for text in [binary, spaced] {
            let cost = text.len() as u64;
            let emu = emulator()
                .with_rate_limits(bytes(10 * cost))
                .start()
                .await
                .unwrap();
            let cluster = emu.cluster_id().to_owned();
            let body = text.repeat(30).into_bytes();
            let delivered = stream(&emu, &cluster, body, 30).await;
            assert!((11..=12).contains(&delivered), "{delivered} delivered");
            let stored: usize = emu
                .records("demo")
                .iter()
                .map(|r| r.value.as_ref().map_or(0, Vec::len))
                .sum();
            assert!(stored < delivered * text.len(), "less is stored than sent");
            emu.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn per_cluster_limits_differ_between_cluster_ids() {
    guarded(async {
        let emu = emulator()
            .with_cluster_id("lkc-a")
            .with_extra_cluster_id("lkc-b")
            .with_extra_cluster_id("lkc-c")
            .with_rate_limits(records(1_000))
            .with_cluster_rate_limits("lkc-a", records(5))
            .with_cluster_rate_limits("lkc-b", records(15))
            .start()
            .await
            .unwrap();
        assert_eq!(emu.cluster_id(), "lkc-a");
        assert_eq!(emu.cluster_ids(), ["lkc-a", "lkc-b", "lkc-c"]);
        let a = stream(&emu, "lkc-a", burst(50), 50).await;
        let b = stream(&emu, "lkc-b", burst(50), 50).await;
        let c = stream(&emu, "lkc-c", burst(50), 50).await;
        assert!((6..=9).contains(&a), "lkc-a: {a}");
        assert!((16..=21).contains(&b), "lkc-b: {b}");
        assert_eq!(c, 50, "lkc-c has no limit of its own");
        // The clusters share the topics.
        assert_eq!(emu.records("demo").len(), a + b + c);
        let (status, _) = post(&url(&emu, "lkc-d"), burst(1)).await;
        assert_eq!(status, 404, "an id not served is still unknown");
        emu.shutdown().await;

        let refused = emulator()
            .with_cluster_rate_limits("lkc-x", records(1))
            .start()
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
        assert!(refused.to_string().contains("lkc-x"), "{refused}");
    })
    .await;
}

#[tokio::test]
async fn the_global_limit_is_shared_by_the_clusters() {
    guarded(async {
        let emu = emulator()
            .with_extra_cluster_id("lkc-other")
            .with_rate_limits(records(10))
            .start()
            .await
            .unwrap();
        let cluster = emu.cluster_id().to_owned();
        let first = stream(&emu, &cluster, burst(8), 8).await;
        let second = stream(&emu, "lkc-other", burst(8), 8).await;
        assert_eq!(first, 8);
        assert!((3..=6).contains(&second), "lkc-other: {second}");
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_limit_changed_while_running_takes_effect() {
    guarded(async {
        let emu = emulator()
            .with_extra_cluster_id("lkc-b")
            .with_rate_limits(records(40))
            .start()
            .await
            .unwrap();
        let cluster = emu.cluster_id().to_owned();
        let before = stream(&emu, &cluster, burst(200), 200).await;
        assert!((41..=55).contains(&before), "{before} delivered at 40/s");

        emu.set_rate_limits(records(20));
        tokio::time::sleep(REFILL).await;
        let halved = stream(&emu, &cluster, burst(200), 200).await;
        assert!((21..=30).contains(&halved), "{halved} delivered at 20/s");

        // A cluster's own limit, set while running, on top of the global one.
        emu.set_rate_limits(RateLimits::unlimited());
        emu.set_cluster_rate_limits("lkc-b", records(4)).unwrap();
        assert_eq!(stream(&emu, &cluster, burst(100), 100).await, 100);
        let b = stream(&emu, "lkc-b", burst(100), 100).await;
        assert!((5..=8).contains(&b), "{b} delivered to lkc-b at 4/s");

        emu.set_cluster_rate_limits("lkc-b", RateLimits::unlimited())
            .unwrap();
        assert_eq!(stream(&emu, "lkc-b", burst(100), 100).await, 100);
        let unknown = emu.set_cluster_rate_limits("lkc-z", records(1));
        assert_eq!(
            unknown.unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_bucket_refills_after_a_pause() {
    guarded(async {
        let emu = emulator()
            .with_rate_limits(records(10))
            .start()
            .await
            .unwrap();
        let cluster = emu.cluster_id().to_owned();
        let first = stream(&emu, &cluster, burst(50), 50).await;
        assert!((11..=15).contains(&first), "{first}");
        let empty = stream(&emu, &cluster, burst(50), 50).await;
        assert!(empty <= 4, "{empty} delivered from an empty bucket");
        tokio::time::sleep(REFILL).await;
        let refilled = stream(&emu, &cluster, burst(50), 50).await;
        // One second's worth at most is stored, however long the pause.
        assert!((10..=15).contains(&refilled), "{refilled} after the pause");
        assert_eq!(
            emu.rate_limited_records(),
            150 - (first + empty + refilled) as u64
        );
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn one_record_requests_and_batch_entries_are_limited() {
    guarded(async {
        let emu = emulator()
            .with_rate_limits(records(3))
            .start()
            .await
            .unwrap();
        let cluster = emu.cluster_id().to_owned();
        // One record per request: HTTP 200 each, the report says 429.
        let mut codes = Vec::new();
        for i in 0..8 {
            let (status, reports) = post(&url(&emu, &cluster), record(i).into_bytes()).await;
            assert_eq!(status, 200);
            assert_eq!(reports.len(), 1);
            codes.push(reports[0]["error_code"].as_i64().unwrap());
        }
        let delivered = codes.iter().filter(|&&c| c == 200).count();
        assert!((4..=6).contains(&delivered), "{codes:?}");
        assert!(codes[..4].iter().all(|&c| c == 200), "{codes:?}");
        assert!(codes.iter().all(|&c| c == 200 || c == 429), "{codes:?}");
        emu.shutdown().await;

        // records:batch: each entry checked, refused ones among the failures.
        let emu = emulator()
            .with_rate_limits(records(3))
            .start()
            .await
            .unwrap();
        let entries: Vec<Value> = (0..8)
            .map(|i| json!({"id": format!("e{i}"), "value": {"type": "STRING", "data": "x"}}))
            .collect();
        let body = json!({ "entries": entries }).to_string().into_bytes();
        let batch = format!("{}:batch", url(&emu, &cluster));
        let (status, answer) = post(&batch, body).await;
        assert_eq!(status, 207);
        let answer = &answer[0];
        let successes = answer["successes"].as_array().unwrap();
        let failures = answer["failures"].as_array().unwrap();
        assert_eq!(successes.len() + failures.len(), 8, "{answer}");
        assert!((4..=6).contains(&successes.len()), "{answer}");
        assert_eq!(successes[0]["id"], "e0");
        for failure in failures {
            assert_eq!(failure["error_code"], 429, "{failure}");
            assert!(failure["id"].as_str().unwrap().starts_with('e'));
        }
        assert_eq!(emu.rate_limited_records(), failures.len() as u64);
        emu.shutdown().await;
    })
    .await;
}
