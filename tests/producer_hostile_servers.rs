//! The streaming producer against servers and gateways that answer in odd
//! ways: each test states a promise of the README ("Delivery guarantees").
//! Every server here is a raw TCP listener on loopback that answers in a way
//! a real (or broken) server or gateway may, and every wait is bounded.

use ccloud_kafka_rest::{Client, Error, Producer, ProducerConfig, Record, RetryClass};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

/// How many connections a server accepted, and how many of them the client
/// still keeps open.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

struct Hostile {
    url: String,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server on loopback that runs `handler` for each connection (with its
/// index); a connection counts as open until the handler returns.
async fn hostile<F, Fut>(handler: F) -> Hostile
where
    F: Fn(usize, Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let handler = Arc::new(handler);
    let task = {
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut handlers = Vec::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let index = counts.accepted.fetch_add(1, Ordering::SeqCst);
                counts.open.fetch_add(1, Ordering::SeqCst);
                let counts = Arc::clone(&counts);
                let handler = Arc::clone(&handler);
                handlers.push(AbortOnDrop(tokio::spawn(async move {
                    // No connection lives longer than a test.
                    let _ =
                        timeout(Duration::from_secs(60), handler(index, Conn::new(socket))).await;
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                })));
            }
        })
    };
    Hostile { url, counts, task }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the decoding of a chunked request body is.
enum Chunked {
    Size,
    Data(usize),
    Crlf,
    Done,
}

/// Counts the complete top-level JSON objects of the request body (the
/// records), without keeping them.
#[derive(Default)]
struct Splitter {
    depth: u32,
    in_string: bool,
    escaped: bool,
    complete: usize,
}

impl Splitter {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.in_string && !self.escaped {
                // Skip the string's plain bytes at once.
                match bytes.iter().position(|&b| b == b'"' || b == b'\\') {
                    Some(at) => bytes = &bytes[at..],
                    None => return,
                }
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' => self.depth += 1,
                b'}' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.complete += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

/// One connection, server side: the request head, then a chunked body
/// decoded into records, and raw writes of the response.
struct Conn {
    socket: TcpStream,
    raw: Vec<u8>,
    state: Chunked,
    records: Splitter,
    taken: usize,
    offset: i64,
}

impl Conn {
    fn new(socket: TcpStream) -> Conn {
        Conn {
            socket,
            raw: Vec::new(),
            state: Chunked::Size,
            records: Splitter::default(),
            taken: 0,
            offset: 0,
        }
    }

    /// One read; false at the end of the connection.
    async fn read_some(&mut self) -> bool {
        let mut buffer = vec![0u8; 256 * 1024];
        match self.socket.read(&mut buffer).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buffer[..n]);
                true
            }
        }
    }

    /// Reads the request head; false if the connection ended first.
    async fn read_head(&mut self) -> bool {
        loop {
            if let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                self.raw.drain(..end + 4);
                return true;
            }
            if !self.read_some().await {
                return false;
            }
        }
    }

    fn decode(&mut self) {
        loop {
            match self.state {
                Chunked::Size => {
                    let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                        return;
                    };
                    let line = String::from_utf8_lossy(&self.raw[..end]).to_string();
                    let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                        .expect("a chunk size");
                    self.raw.drain(..end + 2);
                    self.state = if size == 0 {
                        Chunked::Done
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if self.raw.is_empty() {
                        return;
                    }
                    let n = left.min(self.raw.len());
                    self.records.feed(&self.raw[..n]);
                    self.raw.drain(..n);
                    self.state = if n == left {
                        Chunked::Crlf
                    } else {
                        Chunked::Data(left - n)
                    };
                }
                Chunked::Crlf => {
                    if self.raw.len() < 2 {
                        return;
                    }
                    self.raw.drain(..2);
                    self.state = Chunked::Size;
                }
                Chunked::Done => return,
            }
        }
    }

    /// Reads until at least one more record is complete; returns how many
    /// are, or `None` when the body or the connection ended.
    async fn next_records(&mut self) -> Option<usize> {
        loop {
            self.decode();
            let new = self.records.complete - self.taken;
            if new > 0 {
                self.taken = self.records.complete;
                return Some(new);
            }
            if matches!(self.state, Chunked::Done) || !self.read_some().await {
                return None;
            }
        }
    }

    /// Reads and drops everything until the client closes the connection.
    async fn drain(&mut self) {
        while self.read_some().await {
            self.raw.clear();
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        self.socket.write_all(bytes).await.is_ok()
    }

    async fn respond_200(&mut self) -> bool {
        self.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n",
        )
        .await
    }

    async fn report(&mut self, json: &str) -> bool {
        let body = format!("{json}\r\n");
        let frame = format!("{:x}\r\n{body}\r\n", body.len());
        self.write(frame.as_bytes()).await
    }

    async fn report_ok(&mut self, count: usize) -> bool {
        for _ in 0..count {
            let offset = self.offset;
            self.offset += 1;
            let json = format!(
                "{{\"error_code\":200,\"cluster_id\":\"lkc-test\",\"topic_name\":\"demo\",\
                 \"partition_id\":0,\"offset\":{offset}}}"
            );
            if !self.report(&json).await {
                return false;
            }
        }
        true
    }

    /// Reads records and reports each as written, until the body ends.
    async fn serve_well(&mut self) {
        while let Some(count) = self.next_records().await {
            if !self.report_ok(count).await {
                return;
            }
        }
    }
}

fn client(url: &str) -> Client {
    Client::builder()
        .with_endpoint(url)
        .with_cluster_id("lkc-test")
        .with_max_record_bytes(64 << 20)
        .build()
        .unwrap()
}

/// Promise: "a lane recovers after any outage" and every record gets its
/// outcome from a healthy server.
///
/// A record throttled in band (429) comes back from its backoff into the
/// chunk being filled while the body cannot take more (the server stopped
/// reading for a moment); the next record does not fit, so the chunk is
/// marked full. The throttled record's deadline then passes while it is
/// still in the chunk, which is then taken apart; the stream must take
/// records again, so that records sent afterwards, to a server that reads
/// and reports again, are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_taken_apart_while_full_never_takes_records_again() {
    let start = Instant::now();
    let at = move |ms: u64| start + Duration::from_millis(ms);
    let server = hostile(move |index, mut conn| async move {
        if !conn.read_head().await || !conn.respond_200().await {
            return;
        }
        if index == 0 {
            // The first record is read, and throttled in band at 1.5 s.
            let Some(count) = conn.next_records().await else {
                return;
            };
            assert_eq!(count, 1);
            sleep_until(at(1500)).await;
            conn.report("{\"error_code\":429,\"message\":\"throttled\"}")
                .await;
            // Nothing is read until 3.1 s (a slow broker, a full socket)...
            sleep_until(at(3100)).await;
        }
        // ...and everything is read and reported from then on.
        let read_from = Instant::now();
        conn.serve_well().await;
        eprintln!(
            "server: body ended {:?} after resuming",
            read_from.elapsed()
        );
    })
    .await;
    let config = ProducerConfig::default()
        .with_delivery_timeout(Duration::from_secs(3))
        .with_backoff(Duration::from_millis(100), Duration::from_millis(100))
        .with_max_in_flight_bytes(256 << 20)
        .with_max_buffered_bytes(256 << 20);
    let producer = Producer::with_config(client(&server.url), config).unwrap();
    let run = async {
        // Throttled at 1.5 s; back in line 100 to 200 ms later; its
        // deadline is 3 s.
        let throttled = producer.enqueue("demo", &Record::from_value("r1")).await;
        // A large record that the socket cannot take whole while the server
        // does not read: the body stops taking chunks.
        sleep_until(at(1000)).await;
        let large = producer
            .enqueue("demo", &Record::from_value("g".repeat(16 << 20)))
            .await;
        // Two go into the body's queue; the others wait in the chunk, which
        // the throttled record joins when its backoff is over.
        let mut small = Vec::new();
        for i in 0..4u64 {
            sleep_until(at(1200 + 50 * i)).await;
            small.push(
                producer
                    .enqueue("demo", &Record::from_value(format!("s{i}")))
                    .await,
            );
        }
        // One that does not fit in what is left of the chunk: it is full.
        sleep_until(at(2000)).await;
        let big = producer
            .enqueue("demo", &Record::from_value("b".repeat(200 * 1024)))
            .await;
        // The throttled record expires in the chunk at 3 s; the server reads
        // and reports again from 3.1 s. A record sent after that, with 3 s
        // to go:
        sleep_until(at(3500)).await;
        let later = producer.enqueue("demo", &Record::from_value("x")).await;

        let show = |name: &str, outcome: &Result<ccloud_kafka_rest::DeliveryReport, Error>| {
            eprintln!(
                "{name}: {:?}",
                outcome
                    .as_ref()
                    .map(|r| r.offset)
                    .map_err(|e| e.to_string())
            );
        };
        let throttled = throttled.await;
        show("throttled", &throttled);
        let large = large.await;
        show("large", &large);
        let mut small_outcomes = Vec::new();
        for (i, s) in small.into_iter().enumerate() {
            let outcome = s.await;
            show(&format!("s{i}"), &outcome);
            small_outcomes.push(outcome);
        }
        let big = big.await;
        show("big", &big);
        let later = later.await;
        show("later", &later);
        eprintln!("{:?}", producer.stats());
        assert!(large.is_ok(), "the server read and reported it in time");
        later.expect("a record sent to a server that reads and reports is delivered");
        big.expect("a record waiting when the server recovered is delivered");
        for outcome in small_outcomes {
            outcome.expect("a record waiting when the server recovered is delivered");
        }
    };
    timeout(Duration::from_secs(20), run)
        .await
        .expect("the test ends");
    producer.close_timeout(Duration::from_secs(1)).await;
}

/// Promise: memory is bounded by the configuration (and a lane holds at most
/// one open stream).
///
/// A stream whose response ends (here cleanly, before any report) while its
/// request body is still open must let its connection go (or be reused):
/// a lane with no stream keeps at most one connection open, however many
/// times it reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_ended_leave_their_connections_open() {
    let server = hostile(|_, mut conn| async move {
        if !conn.read_head().await {
            return;
        }
        // A complete response with no report: the stream is over.
        conn.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        .await;
        // The connection stays up as long as the client keeps it.
        conn.drain().await;
    })
    .await;
    let config = ProducerConfig::default()
        .with_max_attempts(5)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(20))
        .with_delivery_timeout(Duration::from_secs(10));
    let producer = Producer::with_config(client(&server.url), config).unwrap();
    let outcome = timeout(
        Duration::from_secs(15),
        producer.send("demo", &Record::from_value("a")),
    )
    .await
    .expect("resolved by its deadline");
    let error = outcome.expect_err("never reported");
    assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown, "{error}");
    // The lane holds nothing and no stream; give the client time to close
    // what it no longer uses.
    sleep(Duration::from_millis(500)).await;
    let accepted = server.counts.accepted.load(Ordering::SeqCst);
    let open = server.counts.open.load(Ordering::SeqCst);
    eprintln!(
        "{accepted} connections accepted, {open} still open; {:?}",
        producer.stats()
    );
    // The connection of a finished request may carry the next one (which
    // this server never answers: it is not a stream opened).
    assert!(producer.stats().retried >= 1, "the record was sent again");
    assert!(
        open <= 1,
        "{open} of the {accepted} connections are still open, though the lane has no stream"
    );
    producer.close_timeout(Duration::from_secs(1)).await;
}

/// Promise: a lane backs off after a failure (README: "exponential backoff
/// and jitter"), and a lingering record is written once its linger is over.
///
/// A stream that ends cleanly before anything was written on it (the record
/// waits out its linger in the chunk) is a failure for the backoff: against
/// a server that ends its responses at once, the lane opens a handful of
/// connections a second, not one per turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ended_before_its_linger_is_reopened_in_a_tight_loop() {
    let server = hostile(|_, mut conn| async move {
        if !conn.read_head().await {
            return;
        }
        conn.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\
              transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        .await;
    })
    .await;
    let config = ProducerConfig::default()
        .with_linger(Duration::from_millis(500))
        .with_delivery_timeout(Duration::from_secs(3));
    let producer = Producer::with_config(client(&server.url), config).unwrap();
    let delivery = producer.enqueue("demo", &Record::from_value("a")).await;
    sleep(Duration::from_secs(1)).await;
    let accepted = server.counts.accepted.load(Ordering::SeqCst);
    let stats = producer.stats();
    eprintln!("{accepted} connections in 1 s; {stats:?}");
    producer.close_timeout(Duration::from_millis(200)).await;
    let outcome = timeout(Duration::from_secs(5), delivery)
        .await
        .expect("resolved");
    eprintln!("outcome: {:?}", outcome.map_err(|e| e.to_string()));
    // With a backoff from 100 ms doubling, a handful of connections in a
    // second; one per linger at the very most.
    assert!(
        accepted <= 20,
        "{accepted} connections in one second for one record"
    );
}

/// Promise: "a failure never says 'not written' of a record that may have
/// been".
///
/// A gateway (or a server) may answer an HTTP error status after it read
/// the request's records, e.g. a 504 when its upstream took the records and
/// did not answer in time: such a record fails as outcome unknown, not as
/// "not written".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_after_the_records_were_read_is_not_called_not_written() {
    let server = hostile(|_, mut conn| async move {
        if !conn.read_head().await {
            return;
        }
        // The record is read (and handed upstream) before the answer.
        if conn.next_records().await.is_none() {
            return;
        }
        let body = "{\"error_code\":504,\"message\":\"upstream timed out\"}";
        let head = format!(
            "HTTP/1.1 504 Gateway Timeout\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write(head.as_bytes()).await;
    })
    .await;
    let config = ProducerConfig::default()
        .with_max_attempts(1)
        .with_unknown_outcome(ccloud_kafka_rest::UnknownOutcome::Fail)
        .with_delivery_timeout(Duration::from_secs(5));
    let producer = Producer::with_config(client(&server.url), config).unwrap();
    let outcome = timeout(
        Duration::from_secs(10),
        producer.send("demo", &Record::from_value("a")),
    )
    .await
    .expect("resolved");
    let error = outcome.expect_err("refused");
    eprintln!("{error:?}");
    assert_eq!(
        error.retry_class(),
        RetryClass::OutcomeUnknown,
        "the server read the record before it answered: {error}"
    );
    let _ = matches!(error, Error::GaveUp { .. });
    producer.close_timeout(Duration::from_secs(1)).await;
}
