//! The emulator over HTTP/2: h2 by ALPN over TLS, h2c with prior knowledge
//! on plain TCP, the same produce semantics as over HTTP/1.1, several streams
//! on one connection, and the faults that reset a stream or send GOAWAY.
//! With reqwest, and a hand-driven HTTP/2 client to see the frames.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ccloud_kafka_rest_emulator::{
    DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS, Emulator, FaultPlan, RequestVersions, StoredRecord,
};
use common::raw_h2::{self, H2Conn};
use common::raw_http::{RawConn, client};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn path(emu: &Emulator) -> String {
    format!(
        "/kafka/v3/clusters/{}/topics/demo/records",
        emu.cluster_id()
    )
}

fn url(emu: &Emulator) -> String {
    format!("{}{}", emu.url(), path(emu))
}

fn record(i: usize) -> String {
    json!({"value": {"type": "STRING", "data": i.to_string()}}).to_string()
}

fn records(ids: impl IntoIterator<Item = usize>) -> Vec<u8> {
    ids.into_iter().map(record).collect::<String>().into_bytes()
}

/// The stored values, parsed back to record numbers.
fn ids(stored: &[StoredRecord]) -> Vec<usize> {
    stored
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn offsets(reports: &[Value]) -> Vec<i64> {
    reports
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect()
}

fn parse_reports(body: &str) -> Vec<Value> {
    assert!(body.is_empty() || body.ends_with("\r\n"), "{body:?}");
    body.split_terminator("\r\n")
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

async fn start(builder: ccloud_kafka_rest_emulator::EmulatorBuilder) -> Emulator {
    builder.with_topic("demo", 1).start().await.unwrap()
}

/// A reqwest client that trusts the emulator's CA and offers `alpn`.
fn tls_client(emu: &Emulator, alpn: &[&[u8]]) -> reqwest::Client {
    let _ = client();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::pem::PemObject::pem_slice_iter(
        emu.ca_certificate_pem().unwrap().as_bytes(),
    ) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// A reqwest client that speaks h2c with prior knowledge.
fn h2c_client() -> reqwest::Client {
    let _ = client();
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// POSTs a whole body: the HTTP version, status and reports.
async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (reqwest::Version, u16, String) {
    let resp = timeout(
        WAIT,
        http.post(url)
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await
    .expect("response in time")
    .expect("request sent");
    let version = resp.version();
    let status = resp.status().as_u16();
    let text = timeout(WAIT, resp.text()).await.unwrap().unwrap();
    (version, status, text)
}

/// A streaming request: its body is fed through the sender.
struct Streaming {
    tx: mpsc::Sender<Bytes>,
    resp: reqwest::Response,
    body: Vec<u8>,
}

impl Streaming {
    async fn open(http: &reqwest::Client, url: &str, first: Vec<u8>) -> Streaming {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tx.send(Bytes::from(first)).await.unwrap();
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
        });
        let resp = timeout(
            WAIT,
            http.post(url)
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(body))
                .send(),
        )
        .await
        .expect("response in time")
        .expect("request sent");
        Streaming {
            tx,
            resp,
            body: Vec::new(),
        }
    }

    async fn send(&self, data: Vec<u8>) {
        self.tx.send(Bytes::from(data)).await.unwrap();
    }

    /// The next `n` reports, read while the request body is still open.
    async fn reports(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            if let Some(end) = self.body.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.body.drain(..end + 2).collect();
                out.push(serde_json::from_slice(&line[..end]).unwrap());
                continue;
            }
            let chunk = timeout(WAIT, self.resp.chunk())
                .await
                .expect("a report in time")
                .expect("the response goes on")
                .expect("the response is not over");
            self.body.extend_from_slice(&chunk);
        }
        out
    }
}

/// Whether a response HEADERS frame says 200 (HPACK static index 8).
fn is_200(frame: &raw_h2::Frame) -> bool {
    frame.kind == raw_h2::HEADERS && frame.payload.first() == Some(&0x88)
}

#[tokio::test]
async fn h2_is_negotiated_over_tls() {
    let emu = start(Emulator::builder().with_tls(true)).await;
    let http = tls_client(&emu, &[b"h2", b"http/1.1"]);
    let (version, status, text) = post(&http, &url(&emu), records(0..3)).await;
    assert_eq!((version, status), (reqwest::Version::HTTP_2, 200));
    assert_eq!(offsets(&parse_reports(&text)), [0, 1, 2]);
    assert_eq!(ids(&emu.records("demo")), [0, 1, 2]);
    assert_eq!(
        emu.requests_by_version(),
        RequestVersions { http1: 0, http2: 1 }
    );
    // The emulator's own endpoint too.
    let inspect = format!("{}/emulator/topics/demo/records", emu.url());
    let resp = timeout(WAIT, http.get(inspect).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let lines = timeout(WAIT, resp.text()).await.unwrap().unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert_eq!(emu.requests_by_version().http2, 2);
    assert_eq!(emu.connections_accepted(), 1);
}

#[tokio::test]
async fn http1_over_tls_when_the_client_offers_only_it_or_no_alpn() {
    let emu = start(Emulator::builder().with_tls(true)).await;
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let http = tls_client(&emu, alpn);
        let (version, status, text) = post(&http, &url(&emu), records(0..2)).await;
        assert_eq!(
            (version, status),
            (reqwest::Version::HTTP_11, 200),
            "{alpn:?}"
        );
        assert_eq!(parse_reports(&text).len(), 2);
    }
    assert_eq!(
        emu.requests_by_version(),
        RequestVersions { http1: 2, http2: 0 }
    );
}

#[tokio::test]
async fn h2c_and_http1_share_the_plain_port() {
    let emu = start(Emulator::builder().with_oauth_client("app", "s3cret", "app", "pool-1")).await;
    let h2c = h2c_client();
    // The token endpoint over h2c, then a produce with its token.
    let resp = timeout(
        WAIT,
        h2c.post(emu.token_url())
            .basic_auth("app", Some("s3cret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let token: Value = timeout(WAIT, resp.json()).await.unwrap().unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let resp = timeout(
        WAIT,
        h2c.post(url(&emu))
            .bearer_auth(&token)
            .header("confluent-identity-pool-id", "pool-1")
            .header("content-type", "application/json")
            .body(records(0..2))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let text = timeout(WAIT, resp.text()).await.unwrap().unwrap();
    assert_eq!(offsets(&parse_reports(&text)), [0, 1]);

    let resp = timeout(
        WAIT,
        client()
            .post(url(&emu))
            .bearer_auth(&token)
            .header("confluent-identity-pool-id", "pool-1")
            .header("content-type", "application/json")
            .body(records(2..3))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.status(), 200);
    assert_eq!(ids(&emu.records("demo")), [0, 1, 2]);
    assert_eq!(
        emu.requests_by_version(),
        RequestVersions { http1: 1, http2: 2 }
    );
    // Authentication is checked over HTTP/2 too.
    let (_, status, _) = post(&h2c, &url(&emu), records(3..4)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn http2_off_offers_http1_only_and_refuses_h2c() {
    let tls = start(Emulator::builder().with_tls(true).with_http2(false)).await;
    let http = tls_client(&tls, &[b"h2", b"http/1.1"]);
    let (version, status, _) = post(&http, &url(&tls), records(0..1)).await;
    assert_eq!((version, status), (reqwest::Version::HTTP_11, 200));
    // A client that speaks nothing but h2 finds no protocol in common.
    let h2_only = tls_client(&tls, &[b"h2"]);
    let refused = timeout(WAIT, h2_only.post(url(&tls)).body(records(1..2)).send())
        .await
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");

    let plain = start(Emulator::builder().with_http2(false)).await;
    let refused = timeout(
        WAIT,
        h2c_client()
            .post(url(&plain))
            .header("content-type", "application/json")
            .body(records(0..1))
            .send(),
    )
    .await
    .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(plain.requests_by_version(), RequestVersions::default());
    assert!(plain.records("demo").is_empty());
    let (version, status, _) = post(&client(), &url(&plain), records(0..1)).await;
    assert_eq!((version, status), (reqwest::Version::HTTP_11, 200));
}

#[tokio::test]
async fn streaming_over_h2_reports_each_record_while_the_body_is_open() {
    let emu = start(Emulator::builder().with_tls(true)).await;
    let http = tls_client(&emu, &[b"h2", b"http/1.1"]);
    let mut stream = Streaming::open(&http, &url(&emu), records(0..1)).await;
    assert_eq!(stream.resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(stream.resp.status(), 200);
    let mut reports = stream.reports(1).await;
    for batch in 0..20 {
        let from = 1 + batch * 10;
        // A record split across two pieces of body.
        let mut data = records(from..from + 10);
        let tail = data.split_off(data.len() - 7);
        stream.send(data).await;
        stream.send(tail).await;
        reports.extend(stream.reports(10).await);
    }
    assert_eq!(offsets(&reports), (0..201).collect::<Vec<i64>>());
    assert!(reports.iter().all(|r| r["error_code"] == 200));
    drop(stream.tx);
    // The response ends with the body (an empty DATA frame may close it).
    let mut ended = false;
    for _ in 0..3 {
        match timeout(WAIT, stream.resp.chunk()).await.unwrap().unwrap() {
            Some(rest) => assert!(rest.is_empty(), "{rest:?}"),
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended);
    assert!(stream.body.is_empty());
    assert_eq!(ids(&emu.records("demo")), (0..201).collect::<Vec<_>>());
}

#[tokio::test]
async fn ten_streams_share_one_connection() {
    let emu = start(Emulator::builder().with_topic("demo", 1)).await;
    let http = h2c_client();
    let mut streams = Vec::new();
    for lane in 0..10 {
        streams.push(Streaming::open(&http, &url(&emu), records([lane * 1000])).await);
    }
    // Every stream is open at once, each fed in turn.
    for round in 1..5 {
        for (lane, stream) in streams.iter_mut().enumerate() {
            if round == 1 {
                assert_eq!(stream.reports(1).await[0]["error_code"], 200);
            }
            stream.send(records([lane * 1000 + round])).await;
            assert_eq!(stream.reports(1).await[0]["error_code"], 200);
        }
    }
    assert_eq!(emu.connections_accepted(), 1);
    assert_eq!(
        emu.requests_by_version(),
        RequestVersions {
            http1: 0,
            http2: 10
        }
    );
    let mut stored = ids(&emu.records("demo"));
    stored.sort_unstable();
    let mut sent: Vec<usize> = (0..10)
        .flat_map(|lane| (0..5).map(move |round| lane * 1000 + round))
        .collect();
    sent.sort_unstable();
    assert_eq!(stored, sent);
    // Each lane's records are in its order in the log.
    for lane in 0..10 {
        let mine: Vec<usize> = ids(&emu.records("demo"))
            .into_iter()
            .filter(|id| id / 1000 == lane)
            .collect();
        assert_eq!(mine, (0..5).map(|r| lane * 1000 + r).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn settings_announce_the_stream_limit_and_large_windows() {
    for (limit, expected) in [(None, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS), (Some(7), 7)] {
        let mut builder = Emulator::builder();
        if let Some(limit) = limit {
            builder = builder.with_http2_max_concurrent_streams(limit);
        }
        let emu = start(builder).await;
        let mut conn = H2Conn::connect(emu.addr()).await;
        let settings = conn
            .until(|f| f.kind == raw_h2::SETTINGS && f.flags == 0)
            .await
            .expect("the server's SETTINGS");
        let settings = settings.settings();
        // SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE.
        assert_eq!(settings.get(&0x3), Some(&expected));
        assert!(settings[&0x4] >= 1024 * 1024, "{settings:?}");
        // The connection's window grows past the default 65535 at once.
        let update = conn
            .until(|f| f.kind == raw_h2::WINDOW_UPDATE && f.stream == 0)
            .await
            .expect("a connection WINDOW_UPDATE");
        let increment = u32::from_be_bytes(update.payload[..4].try_into().unwrap());
        assert!(increment >= 1024 * 1024, "{increment}");
    }
    let refused = Emulator::builder()
        .with_http2_max_concurrent_streams(0)
        .start()
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        refused
            .to_string()
            .contains("with_http2_max_concurrent_streams")
    );
}

#[tokio::test]
async fn reset_fault_resets_one_stream_and_the_other_goes_on() {
    let emu = start(Emulator::builder()).await;
    let mut conn = H2Conn::connect(emu.addr()).await;
    let other = conn.post(&path(&emu)).await;
    assert!(conn.data(other, &records([100]), false).await);
    assert_eq!(conn.report(other).await.unwrap()["offset"], 0);

    emu.reset_stream_after_records(2);
    let reset = conn.post(&path(&emu)).await;
    assert!(conn.data(reset, &records(0..4), false).await);
    let mut reports = Vec::new();
    while let Some(report) = conn.report(reset).await {
        reports.push(report);
    }
    assert_eq!(offsets(&reports), [1, 2]);
    let rst = conn.received(reset, raw_h2::RST_STREAM);
    assert_eq!(rst.len(), 1, "{:?}", conn.frames);
    assert_eq!(rst[0].error_code(), raw_h2::INTERNAL_ERROR);
    assert!(is_200(conn.received(reset, raw_h2::HEADERS)[0]));

    // The other stream, on the same connection, goes on.
    assert!(conn.data(other, &records([101]), false).await);
    assert_eq!(conn.report(other).await.unwrap()["offset"], 3);
    assert!(conn.received(other, raw_h2::RST_STREAM).is_empty());
    assert!(conn.frames.iter().all(|f| f.kind != raw_h2::GOAWAY));
    assert_eq!(ids(&emu.records("demo")), [100, 0, 1, 101]);
    assert_eq!(emu.connections_accepted(), 1);
    assert_eq!(emu.fault_stats().stream_resets, 1);
    assert_eq!(emu.fault_stats().cuts, 0);
}

#[tokio::test]
async fn reset_fault_cuts_an_http1_connection() {
    let emu = start(Emulator::builder()).await;
    emu.reset_stream_after_records(2);
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    conn.chunk(&records(0..4)).await;
    assert_eq!(conn.status().await, 200);
    let (reports, ended) = conn.rest().await;
    assert_eq!(offsets(&reports), [0, 1]);
    assert!(!ended, "the response does not end cleanly");
    assert!(conn.eof);
    assert_eq!(ids(&emu.records("demo")), [0, 1]);
    assert_eq!(emu.fault_stats().stream_resets, 1);
}

#[tokio::test]
async fn goaway_fault_sends_goaway_then_closes_the_connection() {
    let emu = start(Emulator::builder()).await;
    emu.goaway_after_records(2);
    let mut conn = H2Conn::connect(emu.addr()).await;
    let stream = conn.post(&path(&emu)).await;
    assert!(conn.data(stream, &records(0..4), false).await);
    let mut reports = Vec::new();
    while let Some(report) = conn.report(stream).await {
        reports.push(report);
    }
    assert_eq!(offsets(&reports), [0, 1]);
    let goaway = conn
        .frames
        .iter()
        .find(|f| f.kind == raw_h2::GOAWAY)
        .cloned()
        .or(conn.until(|f| f.kind == raw_h2::GOAWAY).await)
        .expect("a GOAWAY");
    assert_eq!(goaway.error_code(), raw_h2::NO_ERROR);
    let goaway_at = Instant::now();
    // Then the connection closes, the stream with it, after the grace.
    let more = timeout(WAIT, conn.until(|_| false)).await.unwrap();
    assert!(more.is_none() && conn.eof);
    assert!(goaway_at.elapsed() < Duration::from_secs(2));
    let last = conn
        .frames
        .iter()
        .rev()
        .find(|f| f.kind == raw_h2::GOAWAY)
        .unwrap();
    assert!(last.last_stream_id() >= stream, "{last:?}");
    assert!(
        conn.frames
            .iter()
            .all(|f| !(f.stream == stream && f.ends_stream())),
        "the stream never ends by itself"
    );
    assert_eq!(ids(&emu.records("demo")), [0, 1]);
    assert_eq!(emu.fault_stats().goaways, 1);

    // A new connection is served.
    let (version, status, _) = post(&h2c_client(), &url(&emu), records(2..3)).await;
    assert_eq!((version, status), (reqwest::Version::HTTP_2, 200));
}

#[tokio::test]
async fn goaway_fault_closes_an_http1_connection_after_the_reports() {
    let emu = start(Emulator::builder()).await;
    emu.goaway_after_records(2);
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    conn.chunk(&records(0..4)).await;
    assert_eq!(conn.status().await, 200);
    let (reports, _) = conn.rest().await;
    assert_eq!(offsets(&reports), [0, 1]);
    assert!(conn.eof);
    assert_eq!(ids(&emu.records("demo")), [0, 1]);
    assert_eq!(emu.fault_stats().goaways, 1);
}

#[tokio::test]
async fn a_cut_drops_every_stream_of_the_connection() {
    let emu = start(Emulator::builder()).await;
    let mut conn = H2Conn::connect(emu.addr()).await;
    let other = conn.post(&path(&emu)).await;
    assert!(conn.data(other, &records([100]), false).await);
    assert_eq!(conn.report(other).await.unwrap()["offset"], 0);
    emu.cut_connection_after_records(1);
    let cut = conn.post(&path(&emu)).await;
    assert!(conn.data(cut, &records(0..3), false).await);
    assert_eq!(conn.report(cut).await.unwrap()["offset"], 1);
    assert_eq!(conn.report(cut).await, None);
    assert!(
        timeout(WAIT, conn.until(|_| false))
            .await
            .unwrap()
            .is_none()
    );
    assert!(conn.eof);
    assert!(conn.frames.iter().all(|f| f.kind != raw_h2::RST_STREAM));
    assert!(
        !conn.ended(other) && !conn.ended(cut),
        "both cut, neither ended"
    );
    assert_eq!(ids(&emu.records("demo")), [100, 0]);
    assert_eq!(emu.fault_stats().cuts, 1);
}

#[tokio::test]
async fn planned_resets_and_goaways() {
    let plan = FaultPlan {
        seed: 3,
        reset_probability: 0.2,
        ..FaultPlan::default()
    };
    let emu = start(Emulator::builder().with_faults(plan.clone())).await;
    let run = |emu: &Emulator| {
        let path = path(emu);
        let addr = emu.addr();
        async move {
            let mut conn = H2Conn::connect(addr).await;
            let stream = conn.post(&path).await;
            assert!(conn.data(stream, &records(0..50), false).await);
            let mut n = 0;
            while conn.report(stream).await.is_some() {
                n += 1;
            }
            let rst = conn.received(stream, raw_h2::RST_STREAM);
            (n, rst.first().map(|f| f.error_code()))
        }
    };
    let (first, reason) = run(&emu).await;
    assert!(first < 50, "a reset within 50 records at 0.2");
    assert_eq!(reason, Some(raw_h2::INTERNAL_ERROR));
    assert_eq!(emu.records("demo").len(), first);
    // The same plan again makes the same decision.
    emu.set_faults(plan);
    assert_eq!(run(&emu).await, (first, reason));
    assert_eq!(emu.fault_stats().stream_resets, 2);

    emu.set_faults(FaultPlan {
        seed: 3,
        goaway_probability: 1.0,
        ..FaultPlan::default()
    });
    let mut conn = H2Conn::connect(emu.addr()).await;
    let stream = conn.post(&path(&emu)).await;
    assert!(conn.data(stream, &records(0..5), false).await);
    assert!(conn.report(stream).await.is_some());
    assert!(conn.until(|f| f.kind == raw_h2::GOAWAY).await.is_some());
    assert!(
        timeout(WAIT, conn.until(|_| false))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(emu.fault_stats().goaways, 1);
}

#[tokio::test]
async fn an_idle_stream_ends_while_another_on_its_connection_is_busy() {
    let idle = Duration::from_millis(300);
    let emu = start(Emulator::builder().with_idle_timeout(idle)).await;
    let mut conn = H2Conn::connect(emu.addr()).await;
    let quiet = conn.post(&path(&emu)).await;
    assert!(conn.data(quiet, &records([0]), false).await);
    assert!(conn.report(quiet).await.is_some());
    let busy = conn.post(&path(&emu)).await;
    let began = Instant::now();
    let mut ended = None;
    for i in 1..=20 {
        assert!(conn.data(busy, &records([i]), false).await);
        assert!(conn.report(busy).await.is_some());
        if ended.is_none() && conn.ended(quiet) {
            ended = Some(began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = ended.expect("the quiet stream ended");
    assert!(ended >= idle - Duration::from_millis(100), "{ended:?}");
    // The busy one is still served.
    assert!(conn.data(busy, &records([99]), false).await);
    assert!(conn.report(busy).await.is_some());
    assert!(!conn.eof);
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_with_goaway() {
    let idle = Duration::from_millis(200);
    let emu = start(Emulator::builder().with_idle_timeout(idle)).await;
    let began = Instant::now();
    let mut conn = H2Conn::connect(emu.addr()).await;
    let goaway = conn.until(|f| f.kind == raw_h2::GOAWAY).await;
    assert_eq!(goaway.map(|f| f.error_code()), Some(raw_h2::NO_ERROR));
    assert!(
        timeout(WAIT, conn.until(|_| false))
            .await
            .unwrap()
            .is_none()
    );
    let took = began.elapsed();
    assert!(took >= idle && took < Duration::from_secs(2), "{took:?}");

    // A plain connection that sends nothing is closed as well.
    let began = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = timeout(WAIT, tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(began.elapsed() >= idle, "{:?}", began.elapsed());
}

#[tokio::test]
async fn a_stream_whose_client_reads_nothing_drops_its_connection() {
    let idle = Duration::from_millis(300);
    let emu = start(Emulator::builder().with_idle_timeout(idle)).await;
    let mut conn = H2Conn::connect(emu.addr()).await;
    conn.window_updates = false;
    conn.ready().await;
    let stream = conn.post(&path(&emu)).await;
    // Far more reports than the client's 65535-byte window holds.
    assert!(conn.data(stream, &records(0..2000), false).await);
    let began = Instant::now();
    assert!(
        timeout(WAIT, conn.until(|_| false))
            .await
            .unwrap()
            .is_none()
    );
    let took = began.elapsed();
    assert!(took >= idle && took < Duration::from_secs(3), "{took:?}");
    let received: usize = conn
        .received(stream, raw_h2::DATA)
        .iter()
        .map(|f| f.payload.len())
        .sum();
    assert!(received <= 65535, "{received}");
}

#[tokio::test]
async fn shutdown_sends_goaway_to_an_h2_connection() {
    let emu = start(Emulator::builder()).await;
    let mut conn = H2Conn::connect(emu.addr()).await;
    conn.until(|f| f.kind == raw_h2::SETTINGS).await.unwrap();
    timeout(WAIT, emu.shutdown()).await.unwrap();
    let goaway = conn.until(|f| f.kind == raw_h2::GOAWAY).await;
    assert_eq!(goaway.map(|f| f.error_code()), Some(raw_h2::NO_ERROR));
    assert!(
        timeout(WAIT, conn.until(|_| false))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_outage_drops_h2_connections() {
    let emu = start(Emulator::builder()).await;
    let mut conn = H2Conn::connect(emu.addr()).await;
    let stream = conn.post(&path(&emu)).await;
    assert!(conn.data(stream, &records([0]), false).await);
    assert!(conn.report(stream).await.is_some());
    emu.outage(Duration::from_millis(300)).await;
    assert!(
        timeout(WAIT, conn.until(|_| false))
            .await
            .unwrap()
            .is_none()
    );
    assert!(conn.frames.iter().all(|f| f.kind != raw_h2::GOAWAY));
    assert_eq!(emu.fault_stats().outage_dropped_connections, 1);
}
