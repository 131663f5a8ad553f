//! Runs the produce-endpoint emulator as a standalone server until Ctrl-C.
//!
//! ```text
//! cargo run -p ccloud-kafka-rest-emulator -- --listen 127.0.0.1:8082 --topic orders:6 --api-key k --api-secret s -v
//! ```
//!
//! Seeded faults for testing a client against a misbehaving server:
//!
//! ```text
//! cargo run -p ccloud-kafka-rest-emulator -- --seed 7 --error-rate 0.01 --error-codes 429,50003 \
//!     --cut-probability 0.001 --stream-max-records 10000 --dribble
//! ```
//!
//! HTTP/2 is served unless `--no-http2`: h2 by ALPN with `--tls-ca-out`, h2c
//! with prior knowledge on plain TCP. Stream resets and GOAWAY, per record:
//!
//! ```text
//! cargo run -p ccloud-kafka-rest-emulator -- --reset-probability 0.001 --goaway-probability 0.0005
//! ```
//!
//! Outages (the port refuses connections and open connections drop, then it
//! serves again), here from 1 s to 4 s and from 10 s to 12 s after start:
//!
//! ```text
//! cargo run -p ccloud-kafka-rest-emulator -- --outage 1000:4000 --outage 10000:12000
//! ```
//!
//! The self-managed REST Proxy's produce rate limits, here 1000 records/s
//! and 1 MB/s in all, and 200 records/s for each of two clusters:
//!
//! ```text
//! cargo run -p ccloud-kafka-rest-emulator -- --rate-limit 1000 --rate-limit-bytes 1000000 \
//!     --cluster-rate-limit 200 --extra-cluster-id lkc-other
//! ```
//!
//! Behind an intermediary, here one like nginx with its defaults (whole
//! bodies read first, capped at 1 MiB, 60 s upstream timeout):
//!
//! ```text
//! cargo run -p ccloud-kafka-rest-emulator -- --intermediary buffering --body-cap 1048576 \
//!     --upstream-timeout-ms 60000
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ccloud_kafka_rest_emulator::MAX_CONFIGURED_DURATION;
use ccloud_kafka_rest_emulator::{
    DEFAULT_CLUSTER_ID, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RECORD_BYTES, Emulator, EmulatorBuilder, FaultPlan,
    HttpFault, Intermediary, RateLimits,
};
use clap::builder::RangedU64ValueParser;
use clap::{Args as ClapArgs, Parser, ValueEnum};

/// Serve an emulated Kafka REST v3 produce endpoint (Confluent Cloud and REST Proxy paths).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,

    /// Cluster id accepted in request paths.
    #[arg(long, default_value = DEFAULT_CLUSTER_ID)]
    cluster_id: String,

    /// Another cluster id to serve (repeatable). The clusters share the
    /// topics; each has its own --cluster-rate-limit buckets.
    #[arg(long = "extra-cluster-id", value_name = "ID")]
    extra_cluster_ids: Vec<String>,

    /// Report delivered records without error_code, as REST Proxy 6.2 to
    /// 7.2 does.
    #[arg(long)]
    reports_without_error_code: bool,

    /// A topic as NAME:PARTITIONS (repeatable). Defaults to demo:3.
    #[arg(long = "topic", value_name = "NAME:PARTITIONS", value_parser = parse_topic)]
    topics: Vec<(String, i32)>,

    /// Create unknown topics on first use instead of answering 404.
    #[arg(long)]
    auto_create: bool,

    /// Require this API key (HTTP Basic user name).
    #[arg(long, requires = "api_secret")]
    api_key: Option<String>,

    /// The secret of --api-key.
    #[arg(long, requires = "api_key")]
    api_secret: Option<String>,

    /// Accept this bearer token (repeatable), as TOKEN or TOKEN:IDENTITY_POOL_ID.
    #[arg(long = "bearer-token", value_name = "TOKEN[:POOL]")]
    bearer_tokens: Vec<String>,

    /// Serve an OAuth token endpoint (/oauth2/token) for this client,
    /// as CLIENT_ID:SECRET:IDENTITY_POOL_ID (repeatable).
    #[arg(long = "oauth-client", value_name = "ID:SECRET:POOL", value_parser = parse_oauth_client)]
    oauth_clients: Vec<(String, String, String)>,

    /// Serve HTTPS with a certificate generated at start; its CA is written to
    /// this file so that clients can trust it (KAFKA_REST_CA_FILE).
    #[arg(long, value_name = "CA_FILE")]
    tls_ca_out: Option<std::path::PathBuf>,

    /// Serve HTTP/1.1 only: TLS offers no h2 by ALPN, and plain connections
    /// are not served h2c. [default: HTTP/2 too]
    #[arg(long)]
    no_http2: bool,

    /// The SETTINGS_MAX_CONCURRENT_STREAMS of an HTTP/2 connection: the most
    /// requests open on it at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
        value_parser = RangedU64ValueParser::<u32>::new().range(1..=u64::from(u32::MAX))
    )]
    http2_max_concurrent_streams: u32,

    /// Log every request at debug level.
    #[arg(short, long)]
    verbose: bool,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    rate_limits: RateLimitArgs,

    #[command(flatten)]
    faults: FaultArgs,

    #[command(flatten)]
    intermediary: IntermediaryArgs,
}

/// What an intermediary in front of the produce endpoints does with bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Read the whole request body before passing the request on (nginx's
    /// default): no report until the body has ended.
    Buffering,
    /// Pass the 200 at once but hold every report until the request body has
    /// ended.
    HoldingReports,
    /// Pass everything through as it comes.
    Streaming,
}

/// An HTTP intermediary played in front of the produce endpoints.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Intermediary")]
struct IntermediaryArgs {
    /// Play an intermediary in front of the produce endpoints (not the token
    /// or /emulator endpoints). [default: none]
    #[arg(long, value_name = "MODE")]
    intermediary: Option<Mode>,

    /// The intermediary answers HTTP 413 (HTML) to a body larger than this,
    /// announced or (with buffering) counted while read; none of it reaches
    /// the server.
    #[arg(
        long,
        value_name = "BYTES",
        requires = "intermediary",
        value_parser = RangedU64ValueParser::<u64>::new().range(1..)
    )]
    body_cap: Option<u64>,

    /// The intermediary gives up on a server that sends nothing for this
    /// long: HTTP 504 (HTML) before the response headers, a cut connection
    /// after them.
    #[arg(
        long,
        value_name = "MS",
        requires = "intermediary",
        value_parser = RangedU64ValueParser::<u64>::new()
            .range(1..=MAX_CONFIGURED_DURATION.as_millis() as u64)
    )]
    upstream_timeout_ms: Option<u64>,
}

impl IntermediaryArgs {
    fn intermediary(&self) -> Option<Intermediary> {
        let mut intermediary = match self.intermediary? {
            Mode::Buffering => Intermediary::buffering(),
            Mode::HoldingReports => Intermediary::holding_reports(),
            Mode::Streaming => Intermediary::streaming(),
        };
        if let Some(cap) = self.body_cap {
            intermediary = intermediary.with_body_cap(cap);
        }
        if let Some(ms) = self.upstream_timeout_ms {
            intermediary = intermediary.with_upstream_timeout(Duration::from_millis(ms));
        }
        Some(intermediary)
    }
}

/// Bounds that keep the emulator up whatever its clients send.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Limits")]
struct LimitArgs {
    /// Refuse a request body larger than this, counted on the bytes read
    /// (chunked or not): HTTP 413, or an in-band 413 that ends a stream already
    /// answering 200. [default: unlimited for streams, 67108864 (64 MiB) for
    /// records:batch]
    #[arg(long, value_name = "BYTES", value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    max_request_bytes: Option<u64>,

    /// Refuse a streamed record whose JSON text grows past this (in-band 400,
    /// then the stream ends) without keeping the rest of it. Records over
    /// Kafka's 1 MiB below it get in-band 50002.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = DEFAULT_MAX_RECORD_BYTES,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_record_bytes: usize,

    /// Serve at most this many connections at once; more are accepted and
    /// closed at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_connections: usize,

    /// Close a connection that sends nothing for this long while its request
    /// head, its first body byte or its next body byte is awaited (any byte
    /// counts): a stream ends as the real service ends an idle one, after the
    /// reports of the records read so far. A client that reads nothing of the
    /// response for this long is dropped.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = DEFAULT_IDLE_TIMEOUT.as_millis() as u64,
        value_parser = RangedU64ValueParser::<u64>::new()
            .range(1..=MAX_CONFIGURED_DURATION.as_millis() as u64)
    )]
    idle_timeout_ms: u64,
}

impl LimitArgs {
    fn apply(&self, builder: EmulatorBuilder) -> EmulatorBuilder {
        let builder = builder
            .with_max_record_bytes(self.max_record_bytes)
            .with_max_connections(self.max_connections)
            .with_idle_timeout(Duration::from_millis(self.idle_timeout_ms));
        match self.max_request_bytes {
            Some(limit) => builder.with_max_request_bytes(limit),
            None => builder,
        }
    }
}

/// The self-managed REST Proxy's produce rate limiter, off unless a limit is
/// set. Each record counts one record and its JSON text's length in bytes;
/// one over a limit gets an in-band 429 and the stream goes on. A limit
/// allows a burst of one second's worth. 0 is unlimited.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Rate limits")]
struct RateLimitArgs {
    /// Records per second, over every cluster: a record over it gets an
    /// in-band 429 and the stream goes on; a burst of one second's worth
    /// passes. [default: unlimited; 0 is unlimited too]
    #[arg(long, value_name = "RECORDS_PER_S")]
    rate_limit: Option<u64>,

    /// Bytes of record JSON text per second, over every cluster.
    #[arg(long, value_name = "BYTES_PER_S")]
    rate_limit_bytes: Option<u64>,

    /// Records per second for each cluster id served, apart.
    #[arg(long, value_name = "RECORDS_PER_S")]
    cluster_rate_limit: Option<u64>,

    /// Bytes of record JSON text per second for each cluster id served, apart.
    #[arg(long, value_name = "BYTES_PER_S")]
    cluster_rate_limit_bytes: Option<u64>,
}

impl RateLimitArgs {
    fn global(&self) -> RateLimits {
        RateLimits {
            records_per_second: self.rate_limit,
            bytes_per_second: self.rate_limit_bytes,
        }
    }

    fn per_cluster(&self) -> RateLimits {
        RateLimits {
            records_per_second: self.cluster_rate_limit,
            bytes_per_second: self.cluster_rate_limit_bytes,
        }
    }

    fn apply(&self, mut builder: EmulatorBuilder, clusters: &[&str]) -> EmulatorBuilder {
        builder = builder.with_rate_limits(self.global());
        if !self.per_cluster().is_unlimited() {
            for cluster in clusters {
                builder = builder.with_cluster_rate_limits(*cluster, self.per_cluster());
            }
        }
        builder
    }
}

/// `100 records/s and 1000 bytes/s` and the like.
fn describe(limits: RateLimits) -> String {
    let part = |limit: Option<u64>, unit: &str| match limit.filter(|&n| n > 0) {
        Some(n) => format!("{n} {unit}/s"),
        None => format!("unlimited {unit}"),
    };
    format!(
        "{}, {}",
        part(limits.records_per_second, "records"),
        part(limits.bytes_per_second, "bytes")
    )
}

/// Seeded faults applied to every streaming produce request.
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Fault injection")]
struct FaultArgs {
    /// Seed of the fault decisions: the same seed and traffic give the same faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Per stream, drop the connection once N records are appended, before the
    /// N-th record's report (that record is stored, its report lost).
    #[arg(long, value_name = "N")]
    cut_after: Option<u64>,

    /// Per record, the probability of appending it and then dropping the
    /// connection before its report.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    cut_probability: f64,

    /// Per record delivered, the probability of resetting its stream after
    /// its report: RST_STREAM on HTTP/2 (the connection's other streams go
    /// on), a dropped connection on HTTP/1.1.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    reset_probability: f64,

    /// Per record delivered, the probability that its connection sends
    /// GOAWAY after its report and closes 50 ms later (on HTTP/1.1, closes).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    goaway_probability: f64,

    /// Per record, the probability of an injected in-band error instead of success.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    error_rate: f64,

    /// The codes --error-rate chooses from. 5xx codes (500, 50003, 50302) store the
    /// record half of the time; other codes never do.
    #[arg(
        long,
        value_name = "CODES",
        value_delimiter = ',',
        default_value = "50003"
    )]
    error_codes: Vec<i32>,

    /// Answer in-band 408 to every record after the first N of a stream, then drop
    /// the connection.
    #[arg(long, value_name = "N")]
    stream_max_records: Option<u64>,

    /// Answer in-band 408 to every record once a stream is this old, then drop the
    /// connection.
    #[arg(long, value_name = "MS")]
    stream_lifetime_ms: Option<u64>,

    /// Per request, the probability of answering --open-failure instead of
    /// streaming.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    open_failure_rate: f64,

    /// The HTTP error of a failed open: 429 (HTML, Retry-After: 1), 500 (50003) or
    /// 503 (50302).
    #[arg(long, value_name = "STATUS", default_value = "429", value_parser = parse_open_failure)]
    open_failure: HttpFault,

    /// Write reports in pieces of 1 to 7 bytes, each its own HTTP chunk.
    #[arg(long)]
    dribble: bool,

    /// Wait this long before writing each report.
    #[arg(long, value_name = "MS")]
    report_delay_ms: Option<u64>,

    /// Hold a stream's 200 headers (and reports) back until this long after
    /// the request arrived, while still appending its records; behind an
    /// --upstream-timeout-ms shorter than this, the client gets a 504 for
    /// records that are in the log.
    #[arg(
        long,
        value_name = "MS",
        value_parser = RangedU64ValueParser::<u64>::new()
            .range(1..=MAX_CONFIGURED_DURATION.as_millis() as u64)
    )]
    header_delay_ms: Option<u64>,

    /// An outage from START_MS to END_MS after start (repeatable): the
    /// listening socket is closed, so connects are refused, open connections
    /// are dropped, and at END_MS the same port serves again.
    #[arg(long = "outage", value_name = "START_MS:END_MS", value_parser = parse_outage)]
    outages: Vec<(Duration, Duration)>,
}

impl FaultArgs {
    fn plan(&self) -> FaultPlan {
        FaultPlan {
            seed: self.seed,
            cut_after_records: self.cut_after,
            cut_probability: self.cut_probability,
            reset_probability: self.reset_probability,
            goaway_probability: self.goaway_probability,
            record_error_rate: self.error_rate,
            record_error_codes: self.error_codes.clone(),
            stream_max_records: self.stream_max_records,
            stream_lifetime: self.stream_lifetime_ms.map(Duration::from_millis),
            open_failure_rate: self.open_failure_rate,
            open_failure: self.open_failure.clone(),
            report_dribble: self.dribble,
            report_delay: self.report_delay_ms.map(Duration::from_millis),
            header_delay: self.header_delay_ms.map(Duration::from_millis),
            outages: self.outages.clone(),
            ..FaultPlan::default()
        }
    }
}

fn parse_probability(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .parse()
        .map_err(|e| format!("bad probability {text:?}: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("a probability is between 0 and 1, got {p}"))
    }
}

fn parse_outage(text: &str) -> Result<(Duration, Duration), String> {
    let (start, end) = text
        .split_once(':')
        .ok_or_else(|| format!("expected START_MS:END_MS, got {text:?}"))?;
    let ms = |part: &str| {
        part.parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("bad milliseconds {part:?}: {e}"))
    };
    let (start, end) = (ms(start)?, ms(end)?);
    if end <= start {
        return Err(format!("the outage ends before it starts: {text:?}"));
    }
    Ok((start, end))
}

fn parse_open_failure(text: &str) -> Result<HttpFault, String> {
    match text {
        "429" => Ok(HttpFault::rate_limited(Some(1))),
        "500" => Ok(HttpFault::json(500, 50003, "Retriable Kafka error")),
        "503" => Ok(HttpFault::json(503, 50302, "Broker not available")),
        _ => Err(format!("expected 429, 500 or 503, got {text:?}")),
    }
}

fn parse_topic(text: &str) -> Result<(String, i32), String> {
    let (name, partitions) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("expected NAME:PARTITIONS, got {text:?}"))?;
    if name.is_empty() {
        return Err("the topic name is empty".into());
    }
    let partitions: i32 = partitions
        .parse()
        .map_err(|e| format!("bad partition count {partitions:?}: {e}"))?;
    if partitions < 1 {
        return Err("a topic needs at least one partition".into());
    }
    Ok((name.to_owned(), partitions))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.verbose {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .init();
    }

    let topics = if args.topics.is_empty() {
        vec![("demo".to_owned(), 3)]
    } else {
        args.topics.clone()
    };
    let mut builder = Emulator::builder()
        .with_listen(args.listen)
        .with_cluster_id(args.cluster_id.clone())
        .with_auto_create_topics(args.auto_create)
        .with_reports_without_error_code(args.reports_without_error_code);
    for id in &args.extra_cluster_ids {
        builder = builder.with_extra_cluster_id(id.clone());
    }
    let clusters: Vec<&str> = std::iter::once(&args.cluster_id)
        .chain(&args.extra_cluster_ids)
        .map(String::as_str)
        .collect();
    builder = args.rate_limits.apply(builder, &clusters);
    for (name, partitions) in &topics {
        builder = builder.with_topic(name.clone(), *partitions);
    }
    if let (Some(key), Some(secret)) = (&args.api_key, &args.api_secret) {
        builder = builder.with_api_key(key.clone(), secret.clone());
    }
    for token in &args.bearer_tokens {
        builder = match token.split_once(':') {
            Some((token, pool)) => builder.with_bearer_token_in_pool(token, "bearer", pool),
            None => builder.with_bearer_token(token.clone(), "bearer"),
        };
    }
    for (id, secret, pool) in &args.oauth_clients {
        builder = builder.with_oauth_client(id.clone(), secret.clone(), id.clone(), pool.clone());
    }
    builder = builder
        .with_tls(args.tls_ca_out.is_some())
        .with_http2(!args.no_http2)
        .with_http2_max_concurrent_streams(args.http2_max_concurrent_streams);
    builder = args.limits.apply(builder);
    let plan = args.faults.plan();
    // Faults are on when the plan differs from one that only names codes and
    // an open failure without ever using them.
    let faulty = plan
        != FaultPlan {
            seed: plan.seed,
            record_error_codes: plan.record_error_codes.clone(),
            open_failure: plan.open_failure.clone(),
            ..FaultPlan::default()
        };
    builder = builder.with_faults(plan.clone());
    let intermediary = args.intermediary.intermediary();
    if let Some(intermediary) = &intermediary {
        builder = builder.with_intermediary(intermediary.clone());
    }
    let emu = match builder.start().await {
        Ok(emu) => emu,
        Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("invalid setting: {error}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };

    if let (Some(path), Some(pem)) = (&args.tls_ca_out, emu.ca_certificate_pem()) {
        if let Err(error) = std::fs::write(path, pem) {
            eprintln!(
                "cannot write the CA certificate to {}: {error}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        println!("CA certificate written to {}", path.display());
    }
    if !args.oauth_clients.is_empty() {
        println!("OAuth token endpoint: {}", emu.token_url());
    }
    let topic = &topics[0].0;
    let mut auth = match &args.api_key {
        Some(key) => format!(" -u '{key}:<secret>'"),
        None => String::new(),
    };
    if let Some(path) = &args.tls_ca_out {
        // curl must trust the emulator's own CA.
        auth.push_str(&format!(" --cacert '{}'", path.display()));
    }
    println!("Kafka REST emulator listening on {}", emu.url());
    if args.no_http2 {
        println!("HTTP/1.1 only");
    } else if args.tls_ca_out.is_some() {
        println!("HTTP/1.1 and HTTP/2 (h2 by ALPN)");
    } else {
        println!("HTTP/1.1 and HTTP/2 (h2c with prior knowledge)");
    }
    for cluster in emu.cluster_ids() {
        println!("cluster id: {cluster}");
    }
    let (global, per_cluster) = (args.rate_limits.global(), args.rate_limits.per_cluster());
    if !global.is_unlimited() {
        println!("rate limits (global): {}", describe(global));
    }
    if !per_cluster.is_unlimited() {
        println!("rate limits (each cluster): {}", describe(per_cluster));
    }
    for (name, partitions) in &topics {
        println!("topic: {name} ({partitions} partitions)");
    }
    if faulty {
        println!("faults: {plan:?}");
    }
    if let Some(intermediary) = &intermediary {
        println!("intermediary: {intermediary:?}");
    }
    println!();
    println!("try:");
    println!(
        "  curl -sS{auth} -H 'Content-Type: application/json' \\\n    --data-binary '{{\"value\":{{\"type\":\"STRING\",\"data\":\"hello\"}}}}' \\\n    {}/kafka/v3/clusters/{}/topics/{topic}/records",
        emu.url(),
        emu.cluster_id()
    );
    println!();
    println!("press Ctrl-C to stop");

    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {error}");
    }
    let delivered: usize = topics.iter().map(|(name, _)| emu.records(name).len()).sum();
    let stats = emu.fault_stats();
    let rate_limited = emu.rate_limited_records();
    emu.shutdown().await;
    println!("stopped after {delivered} delivered record(s) in the declared topics");
    if !global.is_unlimited() || !per_cluster.is_unlimited() {
        println!("records refused for rate: {rate_limited}");
    }
    if faulty {
        println!("faults applied: {stats:?}");
    }
    ExitCode::SUCCESS
}

fn parse_oauth_client(text: &str) -> Result<(String, String, String), String> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(secret), Some(pool))
            if !id.is_empty() && !secret.is_empty() && !pool.is_empty() =>
        {
            Ok((id.to_owned(), secret.to_owned(), pool.to_owned()))
        }
        _ => Err("expected CLIENT_ID:SECRET:IDENTITY_POOL_ID".to_owned()),
    }
}
