//! Loopback tests of the intermediaries the emulator plays in front of its
//! produce endpoints, with a hand-driven HTTP/1.1 client that writes a
//! chunked body in pieces while it watches what comes back.

mod common;

use std::time::{Duration, Instant};

use ccloud_kafka_rest_emulator::{Emulator, FaultPlan, Intermediary, IntermediaryMode};
use common::raw_http::{RawConn, client};
use serde_json::{Value, json};
use tokio::time::timeout;

/// The hang guard of every test.
const GUARD: Duration = Duration::from_secs(20);
/// How long to watch for bytes that must not arrive.
const QUIET: Duration = Duration::from_millis(400);

async fn start(intermediary: Intermediary, plan: FaultPlan) -> Emulator {
    Emulator::builder()
        .with_topic("demo", 1)
        .with_intermediary(intermediary)
        .with_faults(plan)
        .start()
        .await
        .unwrap()
}

fn path(emu: &Emulator) -> String {
    format!(
        "/kafka/v3/clusters/{}/topics/demo/records",
        emu.cluster_id()
    )
}

fn record(i: usize) -> Vec<u8> {
    json!({"value": {"type": "STRING", "data": i.to_string()}})
        .to_string()
        .into_bytes()
}

/// Writes records `ids` as one chunk each.
async fn send(conn: &mut RawConn, ids: std::ops::Range<usize>) {
    for i in ids {
        assert!(conn.chunk(&record(i)).await, "record {i} written");
    }
}

/// Whether any response byte arrives within [`QUIET`].
async fn anything_arrives(conn: &mut RawConn) -> bool {
    let before = (conn.head.is_some(), conn.chunks.len());
    // A read cancelled by the timeout consumes nothing.
    let _ = timeout(QUIET, conn.read_more()).await;
    (conn.head.is_some(), conn.chunks.len()) != before || conn.eof
}

fn offsets(reports: &[Value]) -> Vec<i64> {
    reports
        .iter()
        .map(|r| {
            assert_eq!(r["error_code"], 200, "{r}");
            r["offset"].as_i64().unwrap()
        })
        .collect()
}

/// The head's value of a header (lowercase name).
fn header(conn: &RawConn, name: &str) -> Option<String> {
    conn.head.as_ref()?.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Reads the body of a page announced with a `Content-Length` (its
/// connection closes only once the rest of the request body is discarded).
async fn read_page(conn: &mut RawConn) {
    let length: usize = header(conn, "content-length")
        .and_then(|v| v.parse().ok())
        .expect("a page with a length");
    while conn.unread_body().len() < length {
        assert!(conn.read_more().await, "page cut short");
    }
}

/// Checks an intermediary's own error page.
fn assert_html_page(conn: &RawConn, status: u16) {
    let content_type = header(conn, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type:?}");
    let body = String::from_utf8_lossy(conn.unread_body()).into_owned();
    assert!(body.contains(&format!("<h1>{status} ")), "{body}");
    assert!(!body.contains("error_code"), "{body}");
}

#[tokio::test]
async fn buffering_passes_the_request_on_once_the_body_has_ended() {
    timeout(GUARD, async {
        let emu = start(Intermediary::buffering(), FaultPlan::default()).await;
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut conn, 0..3).await;
        assert!(
            !anything_arrives(&mut conn).await,
            "no response while the body is open: {:?}",
            conn.head
        );
        assert!(
            emu.records("demo").is_empty(),
            "nothing reached the server yet"
        );

        conn.finish().await;
        assert_eq!(conn.status().await, 200);
        let (reports, ended) = conn.rest().await;
        assert!(ended);
        assert_eq!(offsets(&reports), [0, 1, 2]);
        let stored: Vec<_> = emu
            .records("demo")
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect();
        assert_eq!(stored, [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn a_body_past_the_cap_is_refused_whole_and_one_within_it_delivered() {
    timeout(GUARD, async {
        let cap = 200;
        let emu = start(
            Intermediary::buffering().with_body_cap(cap),
            FaultPlan::default(),
        )
        .await;
        let one = record(0).len();
        assert!(one * 3 < cap as usize && one * 6 > cap as usize, "{one}");

        // Chunked, counted while read: the cap passes mid-body.
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut conn, 0..6).await;
        assert_eq!(conn.status().await, 413);
        read_page(&mut conn).await;
        assert_html_page(&conn, 413);
        assert!(emu.records("demo").is_empty(), "no record of it appended");

        // Announced larger: refused unread.
        let http = client();
        let body: Vec<u8> = (0..6).flat_map(record).collect();
        let url = format!("{}{}", emu.url(), path(&emu));
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.headers()["content-type"], "text/html");
        assert!(!resp.text().await.unwrap().contains("error_code"));
        assert!(emu.records("demo").is_empty());

        // records:batch is capped too.
        let batch = json!({"entries": (0..8)
            .map(|i| json!({"id": i.to_string(), "value": {"type": "STRING", "data": "x"}}))
            .collect::<Vec<_>>()});
        let resp = http
            .post(format!("{url}:batch"))
            .header("content-type", "application/json")
            .body(batch.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert!(emu.records("demo").is_empty());

        // The inspection endpoint is not behind it.
        let inspect = http
            .get(format!("{}/emulator/topics/demo/records", emu.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(inspect.status(), 200);

        // Within the cap: delivered.
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut conn, 0..3).await;
        conn.finish().await;
        assert_eq!(conn.status().await, 200);
        let (reports, ended) = conn.rest().await;
        assert!(ended);
        assert_eq!(offsets(&reports), [0, 1, 2]);
        assert_eq!(emu.records("demo").len(), 3);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn holding_reports_passes_the_head_at_once_and_the_reports_at_the_end() {
    timeout(GUARD, async {
        let emu = start(Intermediary::holding_reports(), FaultPlan::default()).await;
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut conn, 0..3).await;
        assert_eq!(conn.status().await, 200, "the head before the body ends");
        assert!(
            !anything_arrives(&mut conn).await,
            "no report while the body is open: {:?}",
            conn.chunks
        );
        assert!(conn.unread_body().is_empty());
        assert_eq!(emu.records("demo").len(), 3, "the server got the records");

        send(&mut conn, 3..5).await;
        conn.finish().await;
        let (reports, ended) = conn.rest().await;
        assert!(ended);
        assert_eq!(offsets(&reports), [0, 1, 2, 3, 4]);
        assert_eq!(emu.records("demo").len(), 5);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn an_upstream_timeout_before_the_head_is_an_html_504_with_the_records_appended() {
    timeout(GUARD, async {
        let plan = FaultPlan {
            header_delay: Some(Duration::from_secs(5)),
            ..FaultPlan::default()
        };
        let wait = Duration::from_millis(300);
        for intermediary in [Intermediary::streaming(), Intermediary::buffering()] {
            let emu = start(
                intermediary.clone().with_upstream_timeout(wait),
                plan.clone(),
            )
            .await;
            let began = Instant::now();
            let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
            send(&mut conn, 0..2).await;
            if intermediary.mode() == IntermediaryMode::Buffering {
                conn.finish().await;
            }
            assert_eq!(conn.status().await, 504, "{intermediary:?}");
            let waited = began.elapsed();
            assert!(
                waited >= wait && waited < Duration::from_secs(4),
                "{waited:?}"
            );
            read_page(&mut conn).await;
            assert_html_page(&conn, 504);
            assert_eq!(
                emu.records("demo").len(),
                2,
                "the records were written: {intermediary:?}"
            );
            if intermediary.mode() == IntermediaryMode::Streaming {
                // The server's side is closed: later records are discarded.
                send(&mut conn, 2..3).await;
                tokio::time::sleep(QUIET).await;
                assert_eq!(emu.records("demo").len(), 2, "nothing after the 504");
            }
        }
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn a_streaming_gateway_with_a_timeout_passes_streams_through_and_cuts_quiet_ones() {
    timeout(GUARD, async {
        let emu = start(
            Intermediary::streaming().with_upstream_timeout(Duration::from_millis(500)),
            FaultPlan::default(),
        )
        .await;

        // Reports as they come, while the body is open.
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut conn, 0..2).await;
        assert_eq!(conn.status().await, 200);
        let first = conn.report().await.unwrap();
        let second = conn.report().await.unwrap();
        assert_eq!(offsets(&[first, second]), [0, 1]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&mut conn, 2..3).await;
        assert_eq!(offsets(&[conn.report().await.unwrap()]), [2]);
        conn.finish().await;
        let (reports, ended) = conn.rest().await;
        assert!(reports.is_empty() && ended, "{reports:?}");

        // A stream whose server sends nothing for the timeout is cut: no
        // final chunk, the connection drops.
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut conn, 3..4).await;
        assert_eq!(conn.status().await, 200);
        assert_eq!(offsets(&[conn.report().await.unwrap()]), [3]);
        let quiet = Instant::now();
        let (reports, ended) = conn.rest().await;
        assert!(reports.is_empty(), "{reports:?}");
        assert!(!ended, "cut, not ended");
        assert!(
            quiet.elapsed() >= Duration::from_millis(400),
            "{:?}",
            quiet.elapsed()
        );
        assert_eq!(emu.records("demo").len(), 4);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn set_intermediary_applies_to_the_next_request() {
    timeout(GUARD, async {
        let emu = Emulator::builder()
            .with_topic("demo", 1)
            .start()
            .await
            .unwrap();

        // None at first: the head comes while the body is open.
        let mut direct = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut direct, 0..1).await;
        assert_eq!(direct.status().await, 200);
        assert_eq!(offsets(&[direct.report().await.unwrap()]), [0]);

        emu.set_intermediary(Intermediary::buffering()).unwrap();
        // The request under way keeps its way through.
        send(&mut direct, 1..2).await;
        assert_eq!(offsets(&[direct.report().await.unwrap()]), [1]);
        direct.finish().await;
        assert!(direct.rest().await.1);

        let mut buffered = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut buffered, 2..3).await;
        assert!(!anything_arrives(&mut buffered).await, "buffered now");
        buffered.finish().await;
        assert_eq!(buffered.status().await, 200);
        assert_eq!(offsets(&buffered.rest().await.0), [2]);

        // A setting that cannot work is refused, naming it, and the one in
        // use stays.
        let refused = emu
            .set_intermediary(Intermediary::buffering().with_body_cap(0))
            .unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
        assert!(refused.to_string().contains("with_body_cap"), "{refused}");
        let mut still = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut still, 3..4).await;
        assert!(!anything_arrives(&mut still).await, "still buffered");
        still.finish().await;
        assert_eq!(still.status().await, 200);
        assert_eq!(offsets(&still.rest().await.0), [3]);

        emu.set_intermediary(Intermediary::streaming()).unwrap();
        let mut again = RawConn::open(&emu, &path(&emu), &[]).await;
        send(&mut again, 4..5).await;
        assert_eq!(again.status().await, 200, "direct again");
        assert_eq!(offsets(&[again.report().await.unwrap()]), [4]);
        again.finish().await;
        assert!(again.rest().await.1);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn start_refuses_settings_that_cannot_work() {
    let zero = Emulator::builder()
        .with_intermediary(Intermediary::streaming().with_upstream_timeout(Duration::ZERO))
        .start()
        .await
        .unwrap_err();
    assert_eq!(zero.kind(), std::io::ErrorKind::InvalidInput);
    assert!(zero.to_string().contains("with_upstream_timeout"), "{zero}");
    let cap = Emulator::builder()
        .with_intermediary(Intermediary::holding_reports().with_body_cap(0))
        .start()
        .await
        .unwrap_err();
    assert!(cap.to_string().contains("with_body_cap"), "{cap}");
}
