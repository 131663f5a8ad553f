//! End-to-end throughput against the emulator on 127.0.0.1, as a table.
//!
//! ```text
//! cargo bench --bench end_to_end                          # the whole table, about 1.5 minutes
//! cargo bench --bench end_to_end -- --seconds 5 --rounds 3 # longer windows, median of 3 rounds
//! cargo bench --bench end_to_end -- --sizes 100 ceiling producer
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Row {
    Ceiling,
    Producer { connections: usize, send_all: bool },
    UnaryConcurrent,
    UnarySequential,
    BareReqwest,
}

const ROWS: [Row; 7] = [
    Row::Ceiling,
    Row::Producer {
        connections: 1,
        send_all: false,
    },
    Row::Producer {
        connections: 1,
        send_all: true,
    },
    Row::Producer {
        connections: 4,
        send_all: false,
    },
    Row::UnaryConcurrent,
    Row::UnarySequential,
    Row::BareReqwest,
];

impl Row {
    fn name(self, in_flight: usize) -> String {
        match self {
            Row::Ceiling => "ceiling (hyper, pre-encoded)".into(),
            Row::Producer {
                connections,
                send_all: false,
            } => format!("producer x{connections} enqueue"),
            Row::Producer {
                connections,
                send_all: true,
            } => format!("producer x{connections} send_all"),
            Row::UnaryConcurrent => format!("unary {in_flight} in flight"),
            Row::UnarySequential => "unary sequential".into(),
            Row::BareReqwest => "bare reqwest sequential".into(),
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

/// An emulator on its own thread and runtime.
struct Server {
    url: String,
    cluster_id: String,
    tid: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
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
                        .start()
                        .await
                        .expect("the emulator starts");
                    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
                    let _ = ready_tx.send((
                        emulator.url(),
                        emulator.cluster_id().to_owned(),
                        own_tid(),
                        stop_tx,
                    ));
                    let _ = stop_rx.await;
                    emulator.shutdown().await;
                });
            })
            .expect("a thread");
        let (url, cluster_id, tid, stop) = ready_rx.recv().expect("the emulator started");
        Server {
            url,
            cluster_id,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn client(&self) -> Result<Client, String> {
        Client::builder()
            .with_endpoint(&self.url)
            .with_cluster_id(&self.cluster_id)
            .without_proxy()
            .build()
            .map_err(|e| e.to_string())
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
    let server = Server::start();
    let meter = Arc::new(Meter::new(args.records));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let client_thread = {
        let meter = Arc::clone(&meter);
        let workload = Arc::clone(workload);
        let (url, cluster_id) = (server.url.clone(), server.cluster_id.clone());
        let client = server.client()?;
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
    drop(server);
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
    })
}

struct Target {
    url: String,
    cluster_id: String,
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
        Row::Ceiling => ceiling(target, w, meter).await?,
        Row::Producer {
            connections,
            send_all,
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
    let server = Server::start();
    let client = server.client()?;
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
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(socket))
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
                let reports = data.iter().filter(|&&b| b == b'\n').count();
                meter.done.fetch_add(reports as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    };
    tokio::spawn(connection);
    exchange.await
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
        let ceiling = summary(Row::Ceiling).map(|s| s.records_per_second);
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
            let ratio = ceiling.map_or("-".into(), |c| format!("{:.3}", rate / c));
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
        if let Some(ceiling) = summary(Row::Ceiling)
            && let (Some(client), Some(server)) = (ceiling.client_us, ceiling.server_us)
        {
            // What each side of the ceiling row could do alone at 100 % of
            // its core: the lower one is what the ceiling measures.
            let (client_cap, server_cap) = (1e6 / client, 1e6 / server);
            println!(
                "ceiling: its client alone could send {client_cap:.0} records/s, the emulator alone \
                 handle {server_cap:.0} records/s (one core each): bound by the {}",
                if server_cap < client_cap {
                    "emulator"
                } else {
                    "client"
                }
            );
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
