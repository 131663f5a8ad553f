//! End-to-end throughput against the emulator on 127.0.0.1, as a table.
//!
//! ```text
//! cargo bench --bench end_to_end                          # the whole table, about 2 minutes
//! cargo bench --bench end_to_end -- --seconds 5 --rounds 3 # longer windows, median of 3 rounds
//! cargo bench --bench end_to_end -- --sizes 100 ceiling producer
//! cargo bench --bench end_to_end -- --sizes 100 --rounds 3 tls # HTTP/2 beside HTTP/1.1
//! ```
//!
//! Every row starts a fresh emulator (it keeps every record in memory) on its
//! own thread with its own current-thread tokio runtime, and runs the client
//! on another thread with another current-thread runtime: neither side's
//! work is scheduled behind the other's, and on two cores each side has one,
//! as a producer talking to a remote server would. Each thread's CPU time is
//! read from `/proc/self/task/*/schedstat`, so the table also shows each
//! side's CPU time per record and how busy it was (the side near 100 % is
//! the bottleneck). CPU time per record is the figure least disturbed by
//! other load on the machine.
//!
//! Rows, for each value size:
//! - `ceiling`: a minimal hyper 1 client streams pre-encoded records (the
//!   same bytes the producer writes) in one chunked request and only counts
//!   CRLF-terminated reports; nothing a client could do is cheaper.
//! - `producer xN enqueue`: the streaming [`Producer`] over N connections,
//!   borrowed records handed over with `enqueue`, outcomes taken in order
//!   from a window of 10,000 per connection.
//! - `producer x1 send_all`: the same through `send_all`, with each record
//!   cloned from the pool as a caller producing owned records would.
//! - `ceiling tls h1`, `ceiling tls h2`: the ceiling over TLS (rustls,
//!   ALPN offering only `http/1.1`, or only `h2`): the same hyper HTTP/1.1
//!   client, and the `h2` crate's client streaming the same pre-encoded
//!   records in one request (one stream) within the emulator's window, its
//!   own receive windows wide (16 MiB a stream, 64 MiB the connection).
//! - `producer x1 tls h1`, `x1 tls h2`, `x4 tls h1`, `x4 tls h2`: the
//!   producer's `enqueue` rows over TLS, with `with_http1_only()` or the
//!   default (h2 by ALPN: each lane one stream, the four lanes of `x4` on
//!   one connection). The bench asserts that each row went over the HTTP
//!   version it is named for and that the emulator accepted exactly one
//!   connection for `x4 tls h2`, and prints the connections it accepted.
//!   Under the table: h2/h1 records/s for the ceiling, x1 and x4 (with the
//!   ratio of each round, the pair run one after the other), and both
//!   sides' CPU per record. A TLS row's `x ceiling` is against the ceiling
//!   of its own HTTP version.
//! - `unary 64 in flight`, `unary sequential`: `Client::produce`.
//! - `bare reqwest`: one reqwest POST per record with a pre-encoded body
//!   (reqwest set up with the client's default timeouts and user agent),
//!   sequential, the baseline of `unary sequential`.
//!
//! When both unary sequential and bare reqwest are selected, the two are
//! also run interleaved, in alternating blocks of 50 requests against one
//! emulator, and the ratio of their time per request printed: both then
//! see the same load on the machine, so this ratio moves far less between
//! runs than the two rows' rates do.
//!
//! Records have a STRING key `key-{i}` and a STRING value of the given size.
//! A run lasts `--warmup` then `--seconds` per row; records/s counts outcomes
//! the client saw during the measured window. MB/s is record JSON (the
//! request body, without HTTP framing) per second, in 10^6 bytes. With
//! `--records N` each row instead sends N records and is timed from start
//! to last outcome (use it under callgrind).
//!
//! Everything talks to 127.0.0.1 only.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ccloud_kafka_rest::{Client, Producer, ProducerConfig, Record};
use ccloud_kafka_rest_emulator::Emulator;
use clap::Parser;
use futures_util::{FutureExt as _, StreamExt, future, stream};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame};

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 3;
/// Distinct records cycled through by every row.
const POOL: usize = 1024;
/// Target size of one pre-encoded write of the ceiling (the producer's default chunk).
const CEILING_CHUNK: usize = 64 * 1024;

/// End-to-end throughput of the producer and the unary client against the
/// emulator on 127.0.0.1.
#[derive(Debug, Parser)]
struct Args {
    /// Measured seconds per row.
    #[arg(long, env = "E2E_SECONDS", default_value_t = 3.0)]
    seconds: f64,

    /// Seconds per row before measuring (connections, warm caches).
    #[arg(long, env = "E2E_WARMUP", default_value_t = 0.5)]
    warmup: f64,

    /// Send this many records per row instead of running for a time.
    #[arg(long, env = "E2E_RECORDS")]
    records: Option<u64>,

    /// Value sizes in bytes.
    #[arg(long, env = "E2E_SIZES", value_delimiter = ',', default_values_t = [100, 1024])]
    sizes: Vec<usize>,

    /// Runs of the whole table; each row shows the median.
    #[arg(long, env = "E2E_ROUNDS", default_value_t = 1)]
    rounds: usize,

    /// Requests in flight in the concurrent unary row.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,

    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,

    /// Only rows whose name contains one of these words.
    filter: Vec<String>,
}

/// How a row reaches the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Wire {
    /// `http://`, HTTP/1.1.
    Plain,
    /// `https://`, HTTP/1.1 (ALPN `http/1.1`).
    TlsH1,
    /// `https://`, HTTP/2 (ALPN `h2`).
    TlsH2,
}

impl Wire {
    fn tls(self) -> bool {
        self != Wire::Plain
    }

    fn label(self) -> &'static str {
        match self {
            Wire::Plain => "",
            Wire::TlsH1 => " tls h1",
            Wire::TlsH2 => " tls h2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    Ceiling(Wire),
    Producer {
        connections: usize,
        send_all: bool,
        wire: Wire,
    },
    UnaryConcurrent,
    UnarySequential,
    BareReqwest,
}

const ROWS: [Row; 13] = [
    Row::Ceiling(Wire::Plain),
    Row::Producer {
        connections: 1,
        send_all: false,
        wire: Wire::Plain,
    },
    Row::Producer {
        connections: 1,
        send_all: true,
        wire: Wire::Plain,
    },
    Row::Producer {
        connections: 4,
        send_all: false,
        wire: Wire::Plain,
    },
    Row::Ceiling(Wire::TlsH1),
    Row::Ceiling(Wire::TlsH2),
    Row::Producer {
        connections: 1,
        send_all: false,
        wire: Wire::TlsH1,
    },
    Row::Producer {
        connections: 1,
        send_all: false,
        wire: Wire::TlsH2,
    },
    Row::Producer {
        connections: 4,
        send_all: false,
        wire: Wire::TlsH1,
    },
    Row::Producer {
        connections: 4,
        send_all: false,
        wire: Wire::TlsH2,
    },
    Row::UnaryConcurrent,
    Row::UnarySequential,
    Row::BareReqwest,
];

impl Row {
    fn name(self, in_flight: usize) -> String {
        match self {
            Row::Ceiling(Wire::Plain) => "ceiling (hyper, pre-encoded)".into(),
            Row::Ceiling(wire) => format!("ceiling{}", wire.label()),
            Row::Producer {
                connections,
                send_all: false,
                wire: Wire::Plain,
            } => format!("producer x{connections} enqueue"),
            Row::Producer {
                connections,
                send_all: true,
                wire: Wire::Plain,
            } => format!("producer x{connections} send_all"),
            Row::Producer {
                connections,
                send_all,
                wire,
            } => format!(
                "producer x{connections}{}{}",
                wire.label(),
                if send_all { " send_all" } else { "" }
            ),
            Row::UnaryConcurrent => format!("unary {in_flight} in flight"),
            Row::UnarySequential => "unary sequential".into(),
            Row::BareReqwest => "bare reqwest sequential".into(),
        }
    }

    fn wire(self) -> Wire {
        match self {
            Row::Ceiling(wire) | Row::Producer { wire, .. } => wire,
            _ => Wire::Plain,
        }
    }
}

/// The records of one value size, as records and as their JSON.
struct Workload {
    value_size: usize,
    records: Vec<Record>,
    encoded: Vec<Bytes>,
    /// The pool's JSON concatenated and cut into writes of whole records.
    chunks: Vec<Chunk>,
    /// Mean record JSON bytes.
    mean_json: f64,
}

struct Chunk {
    bytes: Bytes,
    /// Where each record in `bytes` ends.
    ends: Vec<usize>,
}

impl Workload {
    fn new(value_size: usize) -> Workload {
        let records: Vec<Record> = (0..POOL)
            .map(|i| {
                let value: String = (0..value_size)
                    .map(|j| char::from(b'a' + ((i + j) % 26) as u8))
                    .collect();
                Record::new().with_key(format!("key-{i}")).with_value(value)
            })
            .collect();
        let encoded: Vec<Bytes> = records
            .iter()
            .map(|r| Bytes::from(serde_json::to_vec(r).expect("a record encodes")))
            .collect();
        let mut chunks = Vec::new();
        let mut current = Vec::new();
        let mut ends = Vec::new();
        for json in &encoded {
            current.extend_from_slice(json);
            ends.push(current.len());
            if current.len() >= CEILING_CHUNK {
                chunks.push(Chunk {
                    bytes: Bytes::from(std::mem::take(&mut current)),
                    ends: std::mem::take(&mut ends),
                });
            }
        }
        if !current.is_empty() {
            chunks.push(Chunk {
                bytes: Bytes::from(current),
                ends,
            });
        }
        let mean_json = encoded.iter().map(Bytes::len).sum::<usize>() as f64 / POOL as f64;
        Workload {
            value_size,
            records,
            encoded,
            chunks,
            mean_json,
        }
    }
}

/// What a row and the measuring thread share.
struct Meter {
    /// Outcomes seen by the client.
    done: AtomicU64,
    errors: AtomicU64,
    /// Records handed out to send.
    issued: AtomicU64,
    limit: u64,
    stop: AtomicBool,
    /// The row has finished (every outcome seen).
    finished: AtomicBool,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Meter {
    fn new(limit: Option<u64>) -> Meter {
        Meter {
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            limit: limit.unwrap_or(u64::MAX),
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            first_error: std::sync::Mutex::new(None),
        }
    }

    /// Claims up to `n` records to send; 0 once the row must stop.
    fn claim(&self, n: u64) -> u64 {
        if self.stop.load(Ordering::Relaxed) {
            return 0;
        }
        let before = self.issued.fetch_add(n, Ordering::Relaxed);
        n.min(self.limit.saturating_sub(before))
    }

    fn outcome<T, E: std::fmt::Display>(&self, result: Result<T, E>) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = result {
            self.error(error.to_string());
        }
    }

    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .expect("error slot")
            .get_or_insert(message);
    }
}

/// The thread id of the calling thread, for its CPU time.
fn own_tid() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// CPU time a thread of this process has run, in nanoseconds.
fn thread_cpu_ns(tid: Option<&str>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", tid?)).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// What the emulator saw during a row.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    connections: u64,
    http1_requests: u64,
    http2_requests: u64,
}

/// An emulator on its own thread and runtime.
struct Server {
    url: String,
    cluster_id: String,
    /// The emulator's CA certificate, when it serves HTTPS.
    ca_pem: Option<String>,
    tid: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<Seen>>,
}

impl Server {
    /// An emulator serving `http://`, or `https://` (HTTP/1.1 and h2 by
    /// ALPN) with `tls`.
    fn start(tls: bool) -> Server {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::Builder::new()
            .name("emulator".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    let emulator = Emulator::builder()
                        .with_topic(TOPIC, PARTITIONS)
                        .with_tls(tls)
                        .start()
                        .await
                        .expect("the emulator starts");
                    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
                    let _ = ready_tx.send((
                        emulator.url(),
                        emulator.cluster_id().to_owned(),
                        emulator.ca_certificate_pem().map(str::to_owned),
                        own_tid(),
                        stop_tx,
                    ));
                    let _ = stop_rx.await;
                    let versions = emulator.requests_by_version();
                    let seen = Seen {
                        connections: emulator.connections_accepted(),
                        http1_requests: versions.http1,
                        http2_requests: versions.http2,
                    };
                    emulator.shutdown().await;
                    seen
                })
            })
            .expect("a thread");
        let (url, cluster_id, ca_pem, tid, stop) = ready_rx.recv().expect("the emulator started");
        Server {
            url,
            cluster_id,
            ca_pem,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The row's client: HTTP/1.1 only for [`Wire::TlsH1`], the default
    /// (h2 when ALPN chooses it) otherwise.
    fn client(&self, wire: Wire) -> Result<Client, String> {
        let mut builder = Client::builder()
            .with_endpoint(&self.url)
            .with_cluster_id(&self.cluster_id)
            .without_proxy();
        if let Some(ca) = &self.ca_pem {
            builder = builder.with_root_certificate_pem(ca);
        }
        if wire == Wire::TlsH1 {
            builder = builder.with_http1_only();
        }
        builder.build().map_err(|e| e.to_string())
    }

    /// Stops the emulator and returns what it saw.
    fn finish(mut self) -> Seen {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One measurement of one row.
#[derive(Debug, Clone, Copy)]
struct Sample {
    records_per_second: f64,
    /// Share of the measured wall time each thread was on a CPU.
    client_busy: Option<f64>,
    server_busy: Option<f64>,
    /// CPU time per record of each thread, in microseconds.
    client_us: Option<f64>,
    server_us: Option<f64>,
    errors: u64,
    /// What the emulator saw over the whole row (warm-up included).
    seen: Seen,
}

#[derive(Clone, Copy)]
struct Point {
    at: Instant,
    done: u64,
    client_ns: Option<u64>,
    server_ns: Option<u64>,
}

fn point(meter: &Meter, client: Option<&str>, server: Option<&str>) -> Point {
    Point {
        at: Instant::now(),
        done: meter.done.load(Ordering::Relaxed),
        client_ns: thread_cpu_ns(client),
        server_ns: thread_cpu_ns(server),
    }
}

fn run_row(row: Row, workload: &Arc<Workload>, args: &Args) -> Result<Sample, String> {
    let server = Server::start(row.wire().tls());
    let meter = Arc::new(Meter::new(args.records));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let client_thread = {
        let meter = Arc::clone(&meter);
        let workload = Arc::clone(workload);
        let (url, cluster_id) = (server.url.clone(), server.cluster_id.clone());
        let ca_pem = server.ca_pem.clone();
        let client = server.client(row.wire())?;
        let in_flight = args.in_flight;
        thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                let _ = tid_tx.send(own_tid());
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                let target = Target {
                    url,
                    cluster_id,
                    ca_pem,
                    client,
                    in_flight,
                };
                let result = runtime.block_on(run(row, &target, &workload, &meter));
                drop(runtime);
                if let Err(error) = result {
                    meter.error(error);
                }
                meter.finished.store(true, Ordering::Release);
                // Stay alive until the measuring thread has read our CPU time.
                let _ = exit_rx.recv();
            })
            .expect("a thread")
    };
    let client_tid = tid_rx.recv().expect("the client thread started");
    let (client, server_tid) = (client_tid.as_deref(), server.tid.as_deref());
    let wait_finished = || {
        while !meter.finished.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(2));
        }
    };
    let (start, end) = if args.records.is_some() {
        let start = point(&meter, client, server_tid);
        wait_finished();
        (start, point(&meter, client, server_tid))
    } else {
        thread::sleep(Duration::from_secs_f64(args.warmup));
        let start = point(&meter, client, server_tid);
        thread::sleep(Duration::from_secs_f64(args.seconds));
        let end = point(&meter, client, server_tid);
        meter.stop.store(true, Ordering::Relaxed);
        wait_finished();
        (start, end)
    };
    let _ = exit_tx.send(());
    let _ = client_thread.join();
    let seen = server.finish();
    check_wire(row, &seen);
    let wall = (end.at - start.at).as_secs_f64();
    let busy = |a: Option<u64>, b: Option<u64>| Some((b? - a?) as f64 / 1e9 / wall);
    let errors = meter.errors.load(Ordering::Relaxed);
    let done = end.done - start.done;
    if done == 0 {
        let error = meter.first_error.lock().expect("error slot").clone();
        return Err(error.unwrap_or_else(|| "no record completed".into()));
    }
    if errors > 0 {
        let error = meter.first_error.lock().expect("error slot").clone();
        eprintln!(
            "  {}: {errors} errors, first: {}",
            row.name(args.in_flight),
            error.unwrap_or_default()
        );
    }
    let per_record = |a: Option<u64>, b: Option<u64>| Some((b? - a?) as f64 / 1e3 / done as f64);
    Ok(Sample {
        records_per_second: done as f64 / wall,
        client_busy: busy(start.client_ns, end.client_ns),
        server_busy: busy(start.server_ns, end.server_ns),
        client_us: per_record(start.client_ns, end.client_ns),
        server_us: per_record(start.server_ns, end.server_ns),
        errors,
        seen,
    })
}

/// Asserts that a row went over the HTTP version it is named for, and
/// that four HTTP/2 lanes shared one connection.
fn check_wire(row: Row, seen: &Seen) {
    match row.wire() {
        Wire::Plain => {}
        Wire::TlsH1 => assert_eq!(
            seen.http2_requests, 0,
            "{row:?} must not use HTTP/2: {seen:?}"
        ),
        Wire::TlsH2 => assert!(
            seen.http1_requests == 0 && seen.http2_requests > 0,
            "{row:?} must use HTTP/2 only: {seen:?}"
        ),
    }
    if let Row::Producer {
        connections: 4,
        wire: Wire::TlsH2,
        ..
    } = row
    {
        assert_eq!(
            seen.connections, 1,
            "four HTTP/2 lanes share one connection: {seen:?}"
        );
    }
}

struct Target {
    url: String,
    cluster_id: String,
    /// The emulator's CA certificate, on `https://`.
    ca_pem: Option<String>,
    client: Client,
    in_flight: usize,
}

async fn run(
    row: Row,
    target: &Target,
    w: &Arc<Workload>,
    meter: &Arc<Meter>,
) -> Result<(), String> {
    let indices = || stream::iter(0..).take_while(|_| future::ready(meter.claim(1) == 1));
    match row {
        Row::Ceiling(Wire::Plain) => ceiling(target, w, meter).await?,
        Row::Ceiling(Wire::TlsH1) => ceiling_tls_h1(target, w, meter).await?,
        Row::Ceiling(Wire::TlsH2) => ceiling_tls_h2(target, w, meter).await?,
        Row::Producer {
            connections,
            send_all,
            ..
        } => {
            let config = ProducerConfig::default().with_connections(connections);
            let producer =
                Producer::with_config(target.client.clone(), config).map_err(|e| e.to_string())?;
            if send_all {
                let records = indices().map(|i: usize| w.records[i % POOL].clone());
                let outcomes = producer.send_all(TOPIC, records);
                let mut outcomes = std::pin::pin!(outcomes);
                while let Some(outcome) = outcomes.next().await {
                    meter.outcome(outcome);
                }
            } else {
                // Borrowed records, outcomes taken in order as they are known.
                let limit = 10_000 * connections;
                let mut window = VecDeque::with_capacity(limit);
                let mut i = 0;
                while meter.claim(1) == 1 {
                    window.push_back(producer.enqueue(TOPIC, &w.records[i % POOL]).await);
                    i += 1;
                    while let Some(front) = window.front_mut() {
                        let Some(outcome) = front.now_or_never() else {
                            break;
                        };
                        meter.outcome(outcome);
                        window.pop_front();
                    }
                    if window.len() >= limit
                        && let Some(oldest) = window.pop_front()
                    {
                        meter.outcome(oldest.await);
                    }
                }
                for delivery in window {
                    meter.outcome(delivery.await);
                }
            }
            producer.close().await;
        }
        Row::UnaryConcurrent => {
            let client = &target.client;
            let outcomes = indices()
                .map(|i| client.produce(TOPIC, &w.records[i % POOL]))
                .buffer_unordered(target.in_flight);
            let mut outcomes = std::pin::pin!(outcomes);
            while let Some(outcome) = outcomes.next().await {
                meter.outcome(outcome);
            }
        }
        Row::UnarySequential => {
            let mut i = 0;
            while meter.claim(1) == 1 {
                let result = target.client.produce(TOPIC, &w.records[i % POOL]).await;
                meter.outcome(result);
                i += 1;
            }
        }
        Row::BareReqwest => bare_reqwest(target, w, meter).await?,
    }
    Ok(())
}

fn records_path(target: &Target) -> String {
    format!(
        "/kafka/v3/clusters/{}/topics/{TOPIC}/records",
        target.cluster_id
    )
}

/// The baseline's reqwest client.
fn bare_client() -> Result<reqwest::Client, String> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    // The settings `Client` gives its reqwest client by default (timeouts,
    // user agent), so that the ratio measures the crate's own work rather
    // than reqwest features the crate turns on.
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("ccloud-kafka-rest/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// One baseline request: a POST of a pre-encoded record, response read whole.
async fn bare_post(http: &reqwest::Client, url: &str, body: Bytes) -> Result<(), String> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    response
        .bytes()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One POST per record with its pre-encoded body, one at a time.
async fn bare_reqwest(target: &Target, w: &Workload, meter: &Meter) -> Result<(), String> {
    let http = bare_client()?;
    let url = format!("{}{}", target.url, records_path(target));
    let mut i = 0;
    while meter.claim(1) == 1 {
        meter.outcome(bare_post(&http, &url, w.encoded[i % POOL].clone()).await);
        i += 1;
    }
    Ok(())
}

/// Requests per block in [`unary_interleaved`].
const INTERLEAVED_BLOCK: usize = 50;

/// `Client::produce` and the bare reqwest baseline against one emulator,
/// alternating blocks of requests for the whole measurement, so that both
/// see the same machine at the same moments. Returns the wall time per
/// request of each, in microseconds.
fn unary_interleaved(workload: &Workload, args: &Args) -> Result<(f64, f64), String> {
    let server = Server::start(false);
    let client = server.client(Wire::Plain)?;
    let url = format!(
        "{}/kafka/v3/clusters/{}/topics/{TOPIC}/records",
        server.url, server.cluster_id
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let http = bare_client()?;
        let started = Instant::now();
        let warmup = Duration::from_secs_f64(args.warmup);
        let until = warmup + Duration::from_secs_f64(args.seconds * 2.0);
        let (mut unary, mut bare) = (Duration::ZERO, Duration::ZERO);
        let (mut blocks, mut i) = (0u32, 0usize);
        while started.elapsed() < until {
            let measured = started.elapsed() >= warmup;
            let at = Instant::now();
            for _ in 0..INTERLEAVED_BLOCK {
                let record = &workload.records[i % POOL];
                client
                    .produce(TOPIC, record)
                    .await
                    .map_err(|e| e.to_string())?;
                i += 1;
            }
            let between = Instant::now();
            for _ in 0..INTERLEAVED_BLOCK {
                bare_post(&http, &url, workload.encoded[i % POOL].clone()).await?;
                i += 1;
            }
            if measured {
                unary += between - at;
                bare += between.elapsed();
                blocks += 1;
            }
        }
        let per_request = |total: Duration| {
            total.as_secs_f64() * 1e6 / (f64::from(blocks) * INTERLEAVED_BLOCK as f64)
        };
        match blocks {
            0 => Err("no block measured".to_owned()),
            _ => Ok((per_request(unary), per_request(bare))),
        }
    })
}

/// The request body of the ceiling: the pool's pre-encoded chunks, over and
/// over, until the meter says stop.
struct CeilingBody {
    workload: Arc<Workload>,
    next: usize,
    meter: Arc<Meter>,
}

impl Body for CeilingBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunks = &self.workload.chunks;
        let chunk = &chunks[self.next % chunks.len()];
        let claimed = self.meter.claim(chunk.ends.len() as u64) as usize;
        if claimed == 0 {
            return Poll::Ready(None);
        }
        let data = chunk.bytes.slice(..chunk.ends[claimed - 1]);
        self.next += 1;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

/// The ceiling: hyper's own HTTP/1.1 client connection, pre-encoded records,
/// reports only counted.
async fn ceiling(target: &Target, w: &Arc<Workload>, meter: &Arc<Meter>) -> Result<(), String> {
    let authority = target
        .url
        .strip_prefix("http://")
        .ok_or("the emulator URL is http://")?;
    let socket = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    ceiling_h1(socket, authority, target, w, meter).await
}

/// The ceiling over TLS: the same HTTP/1.1 client on a rustls connection
/// that chose `http/1.1` by ALPN.
async fn ceiling_tls_h1(
    target: &Target,
    w: &Arc<Workload>,
    meter: &Arc<Meter>,
) -> Result<(), String> {
    let (io, authority) = tls_connect(target, b"http/1.1").await?;
    ceiling_h1(io, authority, target, w, meter).await
}

/// One chunked HTTP/1.1 request of pre-encoded records on `io`, its
/// reports counted.
async fn ceiling_h1<I>(
    io: I,
    authority: &str,
    target: &Target,
    w: &Arc<Workload>,
    meter: &Arc<Meter>,
) -> Result<(), String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    let body = CeilingBody {
        workload: Arc::clone(w),
        next: 0,
        meter: Arc::clone(meter),
    };
    let request = hyper::Request::post(records_path(target))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                count_reports(meter, &data);
            }
        }
        Ok(())
    };
    tokio::spawn(connection);
    exchange.await
}

fn count_reports(meter: &Meter, data: &[u8]) {
    let reports = memchr::memchr_iter(b'\n', data).count();
    meter.done.fetch_add(reports as u64, Ordering::Relaxed);
}

type TlsIo = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the emulator trusting its CA, offering only `alpn`
/// (and checking that the server chose it). Returns the URL's authority too.
async fn tls_connect<'t>(target: &'t Target, alpn: &[u8]) -> Result<(TlsIo, &'t str), String> {
    use rustls::pki_types::pem::PemObject as _;
    let authority = target
        .url
        .strip_prefix("https://")
        .ok_or("the emulator URL is https://")?;
    let ca = target.ca_pem.as_deref().ok_or("the emulator has a CA")?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots
            .add(certificate.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .to_owned();
    let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
    let socket = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, socket)
        .await
        .map_err(|e| e.to_string())?;
    if tls.get_ref().1.alpn_protocol() != Some(alpn) {
        return Err(format!(
            "the emulator chose ALPN {:?}, not {:?}",
            tls.get_ref().1.alpn_protocol().map(String::from_utf8_lossy),
            String::from_utf8_lossy(alpn)
        ));
    }
    Ok((tls, authority))
}

/// The h2 ceiling's receive windows for the reports: wide enough never to
/// hold the reports back (4 times the producer's).
const CEILING_H2_STREAM_WINDOW: u32 = 16 << 20;
const CEILING_H2_CONNECTION_WINDOW: u32 = 64 << 20;

/// The ceiling over HTTP/2: the `h2` crate's client on a rustls connection
/// that chose `h2` by ALPN, the same pre-encoded records in one request
/// (one stream), written as the emulator's window allows, reports only
/// counted and their window given back as they are read.
async fn ceiling_tls_h2(
    target: &Target,
    w: &Arc<Workload>,
    meter: &Arc<Meter>,
) -> Result<(), String> {
    let (io, authority) = tls_connect(target, b"h2").await?;
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(CEILING_H2_STREAM_WINDOW)
        .initial_connection_window_size(CEILING_H2_CONNECTION_WINDOW)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut send = send.ready().await.map_err(|e| e.to_string())?;
    let request = http::Request::post(format!("https://{authority}{}", records_path(target)))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(())
        .map_err(|e| e.to_string())?;
    let (response, mut upload) = send
        .send_request(request, false)
        .map_err(|e| e.to_string())?;
    let (workload, pump_meter) = (Arc::clone(w), Arc::clone(meter));
    tokio::spawn(async move {
        let chunks = &workload.chunks;
        let mut next = 0;
        loop {
            let chunk = &chunks[next % chunks.len()];
            next += 1;
            let claimed = pump_meter.claim(chunk.ends.len() as u64) as usize;
            if claimed == 0 {
                break;
            }
            let mut data = chunk.bytes.slice(..chunk.ends[claimed - 1]);
            while !data.is_empty() {
                upload.reserve_capacity(data.len());
                match std::future::poll_fn(|cx| upload.poll_capacity(cx)).await {
                    Some(Ok(0)) => {}
                    Some(Ok(granted)) => {
                        let part = data.split_to(granted.min(data.len()));
                        if upload.send_data(part, false).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }
        let _ = upload.send_data(Bytes::new(), true);
    });
    let response = response.await.map_err(|e| e.to_string())?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let data = data.map_err(|e| e.to_string())?;
        let _ = body.flow_control().release_capacity(data.len());
        count_reports(meter, &data);
    }
    Ok(())
}

/// The streaming producer's row over TLS with `connections` lanes.
fn tls_producer(connections: usize, wire: Wire) -> Row {
    Row::Producer {
        connections,
        send_all: false,
        wire,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU microseconds per record, and the share of wall time on a CPU.
fn cpu(per_record: Option<f64>, busy: Option<f64>) -> String {
    match (per_record, busy) {
        (Some(us), Some(busy)) => format!("{us:.2} ({:.0}%)", busy * 100.0),
        _ => "-".into(),
    }
}

fn main() {
    let args = Args::parse();
    let rows: Vec<Row> = ROWS
        .into_iter()
        .filter(|row| {
            let name = row.name(args.in_flight);
            args.filter.is_empty() || args.filter.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    let workloads: Vec<Arc<Workload>> = args
        .sizes
        .iter()
        .map(|&size| Arc::new(Workload::new(size)))
        .collect();
    let mut samples: HashMap<(usize, Row), Vec<Sample>> = HashMap::new();
    let what = match args.records {
        Some(n) => format!("{n} records per row"),
        None => format!("{}+{} s per row", args.warmup, args.seconds),
    };
    eprintln!(
        "end_to_end: {} rows x {} sizes x {} rounds, {what}",
        rows.len(),
        workloads.len(),
        args.rounds
    );
    for round in 0..args.rounds.max(1) {
        for workload in &workloads {
            for &row in &rows {
                match run_row(row, workload, &args) {
                    Ok(sample) => {
                        eprintln!(
                            "  round {} {:>5} B {:<28} {:>10.0} records/s",
                            round + 1,
                            workload.value_size,
                            row.name(args.in_flight),
                            sample.records_per_second
                        );
                        samples
                            .entry((workload.value_size, row))
                            .or_default()
                            .push(sample);
                    }
                    Err(error) => eprintln!(
                        "  round {} {} B {}: failed: {error}",
                        round + 1,
                        workload.value_size,
                        row.name(args.in_flight)
                    ),
                }
            }
        }
    }

    println!();
    for workload in &workloads {
        let size = workload.value_size;
        let summary = |row: Row| -> Option<Sample> {
            let list = samples.get(&(size, row))?;
            let mut rates: Vec<f64> = list.iter().map(|s| s.records_per_second).collect();
            let rate = median(&mut rates);
            // The busy shares of the sample closest to the median rate.
            let closest = list.iter().min_by(|a, b| {
                (a.records_per_second - rate)
                    .abs()
                    .total_cmp(&(b.records_per_second - rate).abs())
            })?;
            Some(Sample {
                records_per_second: rate,
                errors: list.iter().map(|s| s.errors).sum(),
                ..*closest
            })
        };
        let ceiling_of = |wire: Wire| summary(Row::Ceiling(wire)).map(|s| s.records_per_second);
        let bare = summary(Row::BareReqwest).map(|s| s.records_per_second);
        println!(
            "value {size} B (record JSON {:.0} B), {what}, median of {} round(s)",
            workload.mean_json,
            args.rounds.max(1)
        );
        println!(
            "| {:<28} | {:>9} | {:>7} | {:>9} | {:>13} | {:>13} | {:>6} |",
            "row", "records/s", "MB/s", "x ceiling", "client us/rec", "server us/rec", "errors"
        );
        println!(
            "|{:-<30}|{:->11}|{:->9}|{:->11}|{:->15}|{:->15}|{:->8}|",
            "", "", "", "", "", "", ""
        );
        for &row in &rows {
            let Some(sample) = summary(row) else {
                continue;
            };
            let rate = sample.records_per_second;
            // Each row against the ceiling of its own wire.
            let ratio = ceiling_of(row.wire()).map_or("-".into(), |c| format!("{:.3}", rate / c));
            println!(
                "| {:<28} | {:>9.0} | {:>7.1} | {:>9} | {:>13} | {:>13} | {:>6} |",
                row.name(args.in_flight),
                rate,
                rate * workload.mean_json / 1e6,
                ratio,
                cpu(sample.client_us, sample.client_busy),
                cpu(sample.server_us, sample.server_busy),
                sample.errors
            );
        }
        if let (Some(unary), Some(bare)) = (summary(Row::UnarySequential), bare) {
            let per_record = |rate: f64| 1e6 / rate;
            // Each round runs the two rows one after the other, so the ratio
            // within a round is the pair least disturbed by other load.
            let paired = match (
                samples.get(&(size, Row::UnarySequential)),
                samples.get(&(size, Row::BareReqwest)),
            ) {
                (Some(unary), Some(bare)) if unary.len() == bare.len() => {
                    let mut ratios: Vec<f64> = unary
                        .iter()
                        .zip(bare)
                        .map(|(u, b)| b.records_per_second / u.records_per_second)
                        .collect();
                    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
                    let high = ratios.iter().copied().fold(0.0, f64::max);
                    format!(
                        "; per round: median {:.3}x, from {low:.3}x to {high:.3}x",
                        median(&mut ratios)
                    )
                }
                _ => String::new(),
            };
            println!(
                "unary sequential: {:.1} us per record, bare reqwest {:.1} us: {:.3}x{paired}",
                per_record(unary.records_per_second),
                per_record(bare),
                bare / unary.records_per_second
            );
        }
        for wire in [Wire::Plain, Wire::TlsH1, Wire::TlsH2] {
            let Some(ceiling) = summary(Row::Ceiling(wire)) else {
                continue;
            };
            let (Some(client), Some(server)) = (ceiling.client_us, ceiling.server_us) else {
                continue;
            };
            // What each side of the ceiling row could do alone at 100 % of
            // its core: the lower one is what the ceiling measures.
            let (client_cap, server_cap) = (1e6 / client, 1e6 / server);
            println!(
                "{}: its client alone could send {client_cap:.0} records/s, the emulator alone \
                 handle {server_cap:.0} records/s (one core each): bound by the {}",
                Row::Ceiling(wire).name(args.in_flight),
                if server_cap < client_cap {
                    "emulator"
                } else {
                    "client"
                }
            );
        }
        // HTTP/2 against HTTP/1.1, both over TLS, row by row. Each round
        // runs the pair one after the other, so the ratio within a round
        // is the one least disturbed by other load.
        for (h1, h2) in [
            (Row::Ceiling(Wire::TlsH1), Row::Ceiling(Wire::TlsH2)),
            (tls_producer(1, Wire::TlsH1), tls_producer(1, Wire::TlsH2)),
            (tls_producer(4, Wire::TlsH1), tls_producer(4, Wire::TlsH2)),
        ] {
            let (Some(one), Some(two)) = (summary(h1), summary(h2)) else {
                continue;
            };
            let per_round = match (samples.get(&(size, h1)), samples.get(&(size, h2))) {
                (Some(a), Some(b)) if a.len() == b.len() && a.len() > 1 => {
                    let mut ratios: Vec<f64> = a
                        .iter()
                        .zip(b)
                        .map(|(a, b)| b.records_per_second / a.records_per_second)
                        .collect();
                    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
                    let high = ratios.iter().copied().fold(0.0, f64::max);
                    format!(
                        " (per round: median {:.3}, from {low:.3} to {high:.3})",
                        median(&mut ratios)
                    )
                }
                _ => String::new(),
            };
            let us = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
            println!(
                "h2/h1 {}: {:.0} / {:.0} records/s = {:.3}{per_round}; us/rec client h1 {} h2 {}, \
                 emulator h1 {} h2 {}",
                h2.name(args.in_flight).replace(" tls h2", " tls"),
                two.records_per_second,
                one.records_per_second,
                two.records_per_second / one.records_per_second,
                us(one.client_us),
                us(two.client_us),
                us(one.server_us),
                us(two.server_us),
            );
        }
        for wire in [Wire::TlsH1, Wire::TlsH2] {
            let row = tls_producer(4, wire);
            if let Some(list) = samples.get(&(size, row)) {
                let seen: Vec<String> = list
                    .iter()
                    .map(|s| {
                        format!(
                            "{} connection(s), {} HTTP/1.1 + {} HTTP/2 requests",
                            s.seen.connections, s.seen.http1_requests, s.seen.http2_requests
                        )
                    })
                    .collect();
                println!(
                    "{}: the emulator accepted, per round: {}",
                    row.name(args.in_flight),
                    seen.join("; ")
                );
            }
        }
        println!();
    }

    // The unary target compares two latency-bound rows, which other load on
    // the machine disturbs most; interleaving them gives the pair the same
    // conditions.
    if rows.contains(&Row::UnarySequential) && rows.contains(&Row::BareReqwest) {
        for workload in &workloads {
            let mut ratios = Vec::new();
            let mut times = Vec::new();
            for _ in 0..args.rounds.max(1) {
                match unary_interleaved(workload, &args) {
                    Ok((unary, bare)) => {
                        ratios.push(unary / bare);
                        times.push((unary, bare));
                    }
                    Err(error) => eprintln!("  unary interleaved: failed: {error}"),
                }
            }
            if ratios.is_empty() {
                continue;
            }
            let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let high = ratios.iter().copied().fold(0.0, f64::max);
            // The times of the round with the median ratio.
            times.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
            let (unary, bare) = times[times.len() / 2];
            println!(
                "value {} B: unary sequential and bare reqwest interleaved in blocks of \
                 {INTERLEAVED_BLOCK} on one emulator: {unary:.1} against {bare:.1} us per request, \
                 {:.3}x (median of {}, from {low:.3}x to {high:.3}x)",
                workload.value_size,
                median(&mut ratios),
                ratios.len()
            );
        }
    }
}
