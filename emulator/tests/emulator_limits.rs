//! Loopback tests of the emulator's bounds against hostile clients: the idle
//! timeout, the connection cap, and the request and record size limits, the
//! last one with the peak memory of an emulator in a child process.

mod common;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ccloud_kafka_rest_emulator::{Emulator, EmulatorBuilder};
use common::raw_http::{RawConn, chunk_frame};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// The longest any test here may run before it fails.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The shortened idle timeout.
const IDLE: Duration = Duration::from_millis(300);

/// Runs a test body, failing it if it hangs.
async fn guarded(test: impl Future<Output = ()>) {
    timeout(HANG_GUARD, test).await.expect("the test hung");
}

fn emulator() -> EmulatorBuilder {
    Emulator::builder().with_topic("demo", 1)
}

fn path(emu: &Emulator) -> String {
    format!(
        "/kafka/v3/clusters/{}/topics/demo/records",
        emu.cluster_id()
    )
}

fn batch_path(emu: &Emulator) -> String {
    format!("{}:batch", path(emu))
}

fn record(value: &str) -> String {
    json!({"value": {"type": "STRING", "data": value}}).to_string()
}

fn values(emu: &Emulator) -> Vec<String> {
    emu.records("demo")
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default()).unwrap())
        .collect()
}

/// Reads until the peer closes the connection; false if it is still open
/// after `wait`.
async fn closed_within(socket: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    for _ in 0..1000 {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
    false
}

/// The status and body of a complete `Content-Length` request to `path`;
/// status 0 when the connection fails.
async fn post(emu: &Emulator, path: &str, body: &str) -> (u16, String) {
    let Ok(mut socket) = TcpStream::connect(emu.addr()).await else {
        return (0, String::new());
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        emu.addr(),
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body.as_bytes());
    // The response is read even if the server stops reading the request.
    let _ = socket.write_all(&request).await;
    let mut response = Vec::new();
    let read = timeout(Duration::from_secs(10), socket.read_to_end(&mut response))
        .await
        .expect("response in time");
    if read.is_err() && response.is_empty() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

#[tokio::test]
async fn chunked_bodies_over_max_request_bytes_get_413() {
    guarded(async {
        let emu = emulator()
            .with_max_request_bytes(1_000)
            .start()
            .await
            .unwrap();

        // Whitespace only: refused before the stream answers.
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        for _ in 0..4 {
            if !conn.chunk(&[b' '; 600]).await {
                break;
            }
        }
        assert_eq!(conn.status().await, 413);

        // A stream answering 200: the records within the limit are reported,
        // then an in-band 413 ends it.
        let body: String = (0..40).map(|i| record(&format!("{i:03}"))).collect();
        let within = 1_000 / record("000").len();
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        let writer = conn.send_all(body.into_bytes());
        assert_eq!(conn.status().await, 200);
        let (reports, ended) = conn.rest().await;
        writer.abort();
        assert!(ended, "the stream ends with its final chunk");
        assert_eq!(reports.len(), within + 1, "{reports:?}");
        assert!(reports[..within].iter().all(|r| r["error_code"] == 200));
        let last = &reports[within];
        assert_eq!(last["error_code"], 413, "{last}");
        assert!(last["message"].as_str().unwrap().contains("1000 bytes"));
        assert!(!conn.read_more().await, "then the connection closes");
        assert_eq!(emu.records("demo").len(), within);

        // records:batch, chunked.
        let mut conn = RawConn::open(&emu, &batch_path(&emu), &[]).await;
        let writer = conn.send_all(vec![b' '; 2_000]);
        assert_eq!(conn.status().await, 413);
        writer.abort();
    })
    .await;
}

#[tokio::test]
async fn batch_bodies_are_limited_to_64_mib_by_default() {
    guarded(async {
        let emu = emulator().start().await.unwrap();
        let mut socket = TcpStream::connect(emu.addr()).await.unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            batch_path(&emu),
            (64 << 20) + 1
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .expect("answered unread")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 413"), "{:?}", &buf[..n]);

        // Countless tiny entries are counted, not kept.
        let entries = vec!["{}"; 200_000].join(",");
        let (status, body) = post(
            &emu,
            &batch_path(&emu),
            &format!("{{\"entries\":[{entries}]}}"),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("this one has 200000"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn connections_sending_nothing_are_closed_after_the_idle_timeout() {
    guarded(async {
        let emu = emulator().with_idle_timeout(IDLE).start().await.unwrap();

        // Headers and no body: the stream ends as an idle one does, with an
        // empty 200, and the connection closes.
        let began = Instant::now();
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        assert_eq!(conn.status().await, 200);
        let (reports, ended) = conn.rest().await;
        assert!(reports.is_empty() && ended);
        assert!(!conn.read_more().await, "the connection closes");
        let waited = began.elapsed();
        assert!(
            waited >= IDLE - Duration::from_millis(20) && waited < Duration::from_secs(3),
            "{waited:?}"
        );

        // A records:batch body that never comes: 408.
        let began = Instant::now();
        let mut conn = RawConn::open(&emu, &batch_path(&emu), &[]).await;
        assert_eq!(conn.status().await, 408);
        assert!(began.elapsed() < Duration::from_secs(3));

        // Records already reported stay reported when the body stops.
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        assert!(conn.chunk(record("kept").as_bytes()).await);
        assert_eq!(conn.status().await, 200);
        assert_eq!(conn.report().await.unwrap()["error_code"], 200);
        assert!(conn.chunk(br#"{"value":{"type":"STRI"#).await);
        let (reports, ended) = conn.rest().await;
        assert!(reports.is_empty() && ended);
        assert!(!conn.read_more().await);
        assert_eq!(values(&emu), ["kept"]);

        // Not even a request head.
        let began = Instant::now();
        let mut socket = TcpStream::connect(emu.addr()).await.unwrap();
        assert!(closed_within(&mut socket, Duration::from_secs(3)).await);
        assert!(began.elapsed() >= IDLE - Duration::from_millis(20));
    })
    .await;
}

#[tokio::test]
async fn a_connection_sending_a_byte_every_100_ms_stays_open() {
    guarded(async {
        let emu = emulator().with_idle_timeout(IDLE).start().await.unwrap();
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        // Chunk framing counts: the first body byte comes only after 400 ms.
        for &byte in &chunk_frame(b" ") {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(conn.raw(&[byte]).await, "the connection was closed");
        }
        assert!(conn.chunk(record("first").as_bytes()).await);
        assert_eq!(conn.status().await, 200);
        assert_eq!(conn.report().await.unwrap()["error_code"], 200);
        // Inside a record, once the stream answers.
        let text = record("second");
        let (head, tail) = text.split_at(12);
        let bytes = chunk_frame(head.as_bytes());
        for &byte in &bytes[..8] {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(conn.raw(&[byte]).await, "the connection was closed");
        }
        assert!(conn.raw(&bytes[8..]).await);
        assert!(conn.chunk(tail.as_bytes()).await);
        conn.finish().await;
        let (reports, ended) = conn.rest().await;
        assert!(ended);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0]["error_code"], 200);
        assert_eq!(values(&emu), ["first", "second"]);
    })
    .await;
}

#[tokio::test]
async fn a_client_that_reads_no_reports_is_dropped_after_the_idle_timeout() {
    guarded(async {
        let emu = emulator().with_idle_timeout(IDLE).start().await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let socket = socket.connect(emu.addr()).await.unwrap();
        let (_unread, mut writer) = socket.into_split();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            path(&emu)
        );
        writer.write_all(head.as_bytes()).await.unwrap();
        // Small records, whose reports are larger: the reports fill the
        // buffers, the emulator stops reading, and then drops the connection.
        let piece = chunk_frame(&record("r").repeat(1_000).into_bytes());
        let began = Instant::now();
        let mut dropped = false;
        for _ in 0..10_000 {
            match timeout(Duration::from_secs(5), writer.write_all(&piece)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    dropped = true;
                    break;
                }
                Err(_) => break,
            }
        }
        assert!(dropped, "the connection is still open after {:?}", began.elapsed());
        assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    })
    .await;
}

#[tokio::test]
async fn a_record_growing_past_max_record_bytes_is_refused() {
    guarded(async {
        let emu = emulator()
            .with_max_record_bytes(64 << 10)
            .start()
            .await
            .unwrap();
        let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
        assert!(conn.chunk(record("before").as_bytes()).await);
        assert_eq!(conn.status().await, 200);
        assert_eq!(conn.report().await.unwrap()["error_code"], 200);
        // Never closed.
        let mut endless = br#"{"value":{"type":"STRING","data":""#.to_vec();
        endless.resize(4 << 20, b'x');
        let writer = conn.send_all(endless);
        let (reports, ended) = conn.rest().await;
        writer.abort();
        assert!(ended);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0]["error_code"], 400);
        let message = reports[0]["message"].as_str().unwrap();
        assert!(
            message.contains("larger than allowed threshold of 65536 bytes"),
            "{message}"
        );
        assert!(
            !conn.read_more().await,
            "framing is lost: the connection closes"
        );
        assert_eq!(values(&emu), ["before"]);

        // Over Kafka's 1 MiB but within the limit: the broker's in-band 50002.
        let emu = emulator().start().await.unwrap();
        let big = record(&"y".repeat((1 << 20) + 1));
        let (status, body) = post(&emu, &path(&emu), &big).await;
        assert_eq!(status, 200);
        assert!(body.contains("\"error_code\":50002"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_the_others_go_on() {
    guarded(async {
        let emu = emulator().with_max_connections(2).start().await.unwrap();
        let mut open = Vec::new();
        for i in 0..2 {
            let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
            assert!(conn.chunk(record(&format!("open-{i}")).as_bytes()).await);
            assert_eq!(conn.status().await, 200);
            assert_eq!(conn.report().await.unwrap()["error_code"], 200);
            open.push(conn);
        }
        for _ in 0..3 {
            let mut refused = TcpStream::connect(emu.addr()).await.unwrap();
            let _ = refused
                .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            assert!(closed_within(&mut refused, Duration::from_secs(3)).await);
        }
        // The connections served are not disturbed.
        for (i, conn) in open.iter_mut().enumerate() {
            assert!(conn.chunk(record(&format!("more-{i}")).as_bytes()).await);
            assert_eq!(conn.report().await.unwrap()["error_code"], 200);
        }
        // Once one ends, a new one is served.
        let mut done = open.pop().unwrap();
        done.finish().await;
        assert!(done.rest().await.1);
        drop(done);
        let mut served = false;
        for _ in 0..50 {
            let (status, _) = post(&emu, &path(&emu), &record("after")).await;
            if status == 200 {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(served, "a connection under the cap is served");
        assert_eq!(values(&emu).len(), 5);
    })
    .await;
}

#[tokio::test]
async fn deep_nesting_is_a_400() {
    guarded(async {
        let emu = emulator().start().await.unwrap();
        let nested = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep = format!("{{\"value\":{}}}", nested(1_000_000));
        let (status, body) = post(&emu, &path(&emu), &deep).await;
        assert_eq!(status, 200);
        assert!(body.contains("\"error_code\":400"), "{body}");
        let deep = format!(
            "{{\"entries\":[{{\"id\":\"a\",\"value\":{}}}]}}",
            nested(1_000_000)
        );
        let (status, _) = post(&emu, &batch_path(&emu), &deep).await;
        assert_eq!(status, 400);
    })
    .await;
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    let cases = [
        (emulator().with_max_connections(0), "max_connections"),
        (emulator().with_idle_timeout(Duration::ZERO), "idle_timeout"),
        (emulator().with_idle_timeout(Duration::MAX), "idle_timeout"),
        (emulator().with_max_record_bytes(0), "max_record_bytes"),
        (emulator().with_max_request_bytes(0), "max_request_bytes"),
    ];
    for (builder, setter) in cases {
        let error = builder.start().await.expect_err(setter);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().starts_with(setter), "{error}");
    }
}

/// Set in the child process that runs only the emulator.
const CHILD: &str = "EMULATOR_LIMITS_CHILD";

/// The child process: an emulator with the default limits, its address on
/// standard output, until standard input closes (or a minute has passed).
/// Does nothing in an ordinary test run.
#[test]
fn child_emulator() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let emu = emulator().start().await.unwrap();
        println!("EMULATOR_ADDR={}", emu.addr());
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        });
        let _ = timeout(Duration::from_secs(60), stdin_closed).await;
    });
    // Not waiting for the blocking read of standard input.
    std::process::exit(0);
}

/// The child's peak resident memory, from `/proc`.
fn peak_rss(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Ends the child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_endless_record_leaves_peak_memory_flat() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return;
    }
    guarded(async {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_emulator", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let child = Reaped(child);
        let addr = tokio::task::spawn_blocking(move || {
            let lines = BufReader::new(stdout).lines();
            lines
                .take(100)
                .map_while(Result::ok)
                // The test harness may have written to the line first.
                .find_map(|l| l.split_once("EMULATOR_ADDR=").map(|(_, a)| a.to_owned()))
        })
        .await
        .unwrap()
        .expect("the child prints its address");
        let before = peak_rss(&child.0);

        let socket = TcpStream::connect(&addr).await.unwrap();
        let (mut reader, mut writer) = socket.into_split();
        let head = format!(
            "POST /kafka/v3/clusters/lkc-emulator/topics/demo/records HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        writer.write_all(head.as_bytes()).await.unwrap();
        let response = tokio::spawn(async move {
            let mut response = Vec::new();
            let _ = reader.read_to_end(&mut response).await;
            response
        });
        // 256 MiB of one record's string, never closed, until the emulator
        // stops reading.
        let mut piece = chunk_frame(br#"{"value":{"type":"STRING","data":""#);
        writer.write_all(&piece).await.unwrap();
        piece = chunk_frame(&vec![b'x'; 1 << 20]);
        let mut sent = 0;
        while sent < 256 && writer.write_all(&piece).await.is_ok() {
            sent += 1;
        }
        let grew = peak_rss(&child.0).saturating_sub(before);
        assert!(grew < 64 << 20, "peak memory grew by {grew} bytes");
        assert!(sent < 256, "the emulator kept reading the record");
        let response = timeout(Duration::from_secs(10), response)
            .await
            .expect("the emulator ends the response")
            .unwrap();
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\"error_code\":400"), "{text}");

    })
    .await;
}
