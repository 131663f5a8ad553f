//! An emulator of the Kafka REST v3 produce endpoint, in process or as a
//! standalone server (`cargo run -p ccloud-kafka-rest-emulator -- --listen 127.0.0.1:8082`).
//!
//! The emulator is a small HTTP/1.1 and HTTP/2 server that answers the produce API the way
//! Confluent Cloud and the self-managed REST Proxy do: it accepts
//! `POST {prefix}/clusters/{cluster_id}/topics/{topic_name}/records` under both the
//! `/kafka/v3` (Confluent Cloud) and `/v3` (REST Proxy) prefixes, reads the request
//! body incrementally as a sequence of concatenated JSON records, and streams one
//! delivery report per record back as soon as the record is handled. It also serves
//! `records:batch`.
//!
//! Records are kept in an in-memory log per topic partition, with offsets starting at
//! zero, so tests can check exactly what was delivered. Faults (HTTP errors before
//! streaming, in-band record errors, stream lifetime expiry and dropped connections)
//! can be injected to exercise a client's error handling, either one at a time or
//! as a reproducible, seeded [`FaultPlan`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ccloud_kafka_rest_emulator::Emulator;
//!
//! let emu = Emulator::builder()
//!     .with_cluster_id("lkc-test")
//!     .with_topic("orders", 3)
//!     .with_api_key("key", "secret")
//!     .start()
//!     .await?;
//! println!("produce to {}/kafka/v3/clusters/lkc-test/topics/orders/records", emu.url());
//! // ... run a client against it ...
//! let delivered = emu.records("orders");
//! # drop(delivered);
//! emu.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Partitioning: a record with an explicit `partition_id` goes to that partition. A
//! record without one but with a non-null key goes to partition
//! `(murmur2(key) & 0x7fffffff) % partitions`, the same hash Kafka's Java producer
//! uses, so placement is stable and matches what a real cluster would choose. Records
//! with neither are spread round-robin.
//!
//! OAuth and HTTPS: [`EmulatorBuilder::with_oauth_client`] registers a client with the
//! emulator's token endpoint (`POST /oauth2/token`, client-credentials grant); the
//! bearer tokens it issues expire after [`EmulatorBuilder::with_token_lifetime`] and are
//! accepted only with the client's identity pool in `Confluent-Identity-Pool-Id`.
//! [`EmulatorBuilder::with_tls`] serves everything over HTTPS with a certificate for
//! `127.0.0.1`, `::1` and `localhost` issued by a certificate authority generated at
//! start, whose PEM is [`Emulator::ca_certificate_pem`].
//!
//! HTTP/2: over TLS the emulator offers `h2` and `http/1.1` by ALPN and serves
//! what the handshake chose (HTTP/1.1 to a client that offers no ALPN); on
//! plain TCP it serves HTTP/1.1 and h2c with prior knowledge on the same port.
//! Everything behaves the same per request in either version; a fault that
//! drops the connection drops all of an HTTP/2 connection's streams.
//! [`Emulator::reset_stream_after_records`] resets one stream (`RST_STREAM`)
//! and [`Emulator::goaway_after_records`] has a connection send GOAWAY;
//! [`EmulatorBuilder::with_http2`] turns HTTP/2 off, and
//! [`Emulator::requests_by_version`] and [`Emulator::connections_accepted`]
//! tell what clients did.
//!
//! Rate limits: [`EmulatorBuilder::with_rate_limits`] and
//! [`EmulatorBuilder::with_cluster_rate_limits`] (or, while running,
//! [`Emulator::set_rate_limits`] and [`Emulator::set_cluster_rate_limits`])
//! play the self-managed REST Proxy's produce rate limiter: records and bytes
//! per second, global and per cluster, with an in-band 429 for each record
//! over a limit. [`EmulatorBuilder::with_extra_cluster_id`] serves more than
//! one cluster id, sharing the topics.
//!
//! Intermediaries: [`EmulatorBuilder::with_intermediary`] (or, while running,
//! [`Emulator::set_intermediary`]) plays an HTTP [`Intermediary`] in front of
//! the produce endpoints: a reverse proxy that reads whole request bodies
//! before passing them on, one that holds the reports back until the request
//! body has ended, a body size cap answered with an HTML 413, and an upstream
//! timeout answered with an HTML 504.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod activity;
mod auth;
mod batch;
mod body;
mod compact;
#[cfg(test)]
mod compact_agrees;
mod data_type;
mod faults;
mod in_flight;
mod inspect;
mod intermediary;
mod limits;
mod log;
mod oauth;
mod path;
mod produce;
mod protocol;
mod proxy;
mod rate_limit;
mod raw;
mod record;
mod report;
mod response;
mod scan;
mod secret;
mod server;
mod state;
mod stream;
mod sync;
mod tls;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{FaultPlan, FaultStats, HttpFault};
pub use intermediary::{Intermediary, IntermediaryMode, MAX_HELD_REPORT_BYTES};
pub use oauth::TokenRequest;
pub use protocol::{DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS, GOAWAY_GRACE, RequestVersions};
pub use rate_limit::{MAX_RATE_PER_SECOND, RateLimits};

use auth::AuthConfig;
use faults::Faults;
use oauth::{OAuthClient, OAuthServer};
use protocol::Http2Settings;
pub use state::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BATCH_REQUEST_BYTES, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RECORD_BYTES,
};
use state::{Limits, Shared, Topics};

/// The cluster id the emulator answers to unless another is configured.
pub const DEFAULT_CLUSTER_ID: &str = "lkc-emulator";

pub use data_type::DataType;
pub use limits::MAX_CONFIGURED_DURATION;

/// A record as the emulator stored it in a topic partition's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The topic the record was produced to.
    pub topic: String,
    /// The partition the record was appended to.
    pub partition: i32,
    /// The record's offset within its partition (the first record has offset 0).
    pub offset: i64,
    /// The stored key bytes; `None` is a Kafka null key.
    pub key: Option<Vec<u8>>,
    /// The stored value bytes; `None` is a Kafka null value.
    pub value: Option<Vec<u8>>,
    /// The key's declared type, or `None` when the request had no key object.
    pub key_type: Option<DataType>,
    /// The value's declared type, or `None` when the request had no value object.
    pub value_type: Option<DataType>,
    /// Record headers in request order: name and decoded value (`None` for null).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record timestamp, truncated to milliseconds.
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// Configures and starts an [`Emulator`]. Create one with [`Emulator::builder`].
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    listen: SocketAddr,
    cluster_id: String,
    extra_cluster_ids: Vec<String>,
    rate_limits: RateLimits,
    cluster_rate_limits: Vec<(String, RateLimits)>,
    topics: Vec<(String, i32)>,
    auto_create_topics: bool,
    default_partitions: i32,
    api_keys: HashMap<String, String>,
    bearer_tokens: HashMap<String, (String, Option<String>)>,
    acls: HashMap<String, HashSet<String>>,
    limits: Limits,
    faults: FaultPlan,
    intermediary: Option<Intermediary>,
    oauth_clients: HashMap<String, OAuthClient>,
    token_lifetime: Duration,
    tls: bool,
    client_certificates: bool,
    reports_without_error_code: bool,
    http2: Http2Settings,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cluster_id: DEFAULT_CLUSTER_ID.to_owned(),
            extra_cluster_ids: Vec::new(),
            rate_limits: RateLimits::unlimited(),
            cluster_rate_limits: Vec::new(),
            topics: Vec::new(),
            auto_create_topics: false,
            default_partitions: 1,
            api_keys: HashMap::new(),
            bearer_tokens: HashMap::new(),
            acls: HashMap::new(),
            limits: Limits::default(),
            faults: FaultPlan::default(),
            intermediary: None,
            oauth_clients: HashMap::new(),
            token_lifetime: oauth::DEFAULT_TOKEN_LIFETIME,
            tls: false,
            client_certificates: false,
            reports_without_error_code: false,
            http2: Http2Settings::default(),
        }
    }
}

impl EmulatorBuilder {
    /// The address to listen on. Defaults to `127.0.0.1:0` (a free loopback port).
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The cluster id accepted in request paths. Defaults to [`DEFAULT_CLUSTER_ID`].
    pub fn with_cluster_id(mut self, id: impl Into<String>) -> Self {
        self.cluster_id = id.into();
        self
    }

    /// Serves another cluster id besides [`with_cluster_id`](Self::with_cluster_id)'s,
    /// as one REST Proxy in front of several clusters does. Calling it again
    /// adds another; an id already served is not added twice.
    ///
    /// To keep things simple the clusters share everything but their
    /// per-cluster [rate limits](Self::with_cluster_rate_limits): the same
    /// topics and logs (a record produced through one cluster id is read
    /// back through any), credentials and faults. Reports name the cluster
    /// id of the request's path.
    pub fn with_extra_cluster_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !self.extra_cluster_ids.contains(&id) {
            self.extra_cluster_ids.push(id);
        }
        self
    }

    /// Reports delivered records without `error_code` (on streams and
    /// one-record requests), as REST Proxy 6.2 to 7.2 does: they say only
    /// where the record went. Errors keep their `error_code`.
    pub fn with_reports_without_error_code(mut self, on: bool) -> Self {
        self.reports_without_error_code = on;
        self
    }

    /// Turns on the self-managed REST Proxy's produce rate limiter (off by
    /// default) with these global limits, shared by every cluster id
    /// served. [`with_cluster_rate_limits`](Self::with_cluster_rate_limits)
    /// adds limits of one cluster.
    ///
    /// The limits apply to each record of a stream, of a one-record request
    /// and of a `records:batch`, once it has been read and validated and
    /// before the broker's checks, in this order: the global record count,
    /// the global bytes, the cluster's record count, the cluster's bytes; a
    /// check passed spends its allowance even when a later one refuses the
    /// record. A record counts one record and the length of its JSON text as
    /// sent (base64 data at its encoded length, whitespace within the object
    /// included, none between objects). Nothing waits: a record over a limit
    /// is answered with the in-band report `{"error_code":429,"message":
    /// "Request rate limit exceeded: ..."}` (a `failures` entry with 429 in a
    /// batch), is not stored, and the stream goes on; the HTTP status stays
    /// 200. Each limit allows a burst of one second's worth, stored up at
    /// the rate while quiet (a limit starts with its burst stored), and one
    /// record more: a record costing more than is stored still passes when
    /// the limit is not already in debt, and the records after it wait for
    /// the debt to be paid off. Refused records are counted by
    /// [`Emulator::rate_limited_records`].
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// use ccloud_kafka_rest_emulator::{Emulator, RateLimits};
    ///
    /// let emulator = Emulator::builder()
    ///     .with_topic("orders", 3)
    ///     .with_cluster_id("lkc-a")
    ///     .with_extra_cluster_id("lkc-b")
    ///     .with_rate_limits(RateLimits::unlimited().with_records_per_second(1_000))
    ///     .with_cluster_rate_limits("lkc-b", RateLimits::unlimited().with_bytes_per_second(65_536))
    ///     .start()
    ///     .await?;
    /// // Halve the global limit while running:
    /// emulator.set_rate_limits(RateLimits::unlimited().with_records_per_second(500));
    /// emulator.set_cluster_rate_limits("lkc-a", RateLimits::unlimited().with_records_per_second(10))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_rate_limits(mut self, global: RateLimits) -> Self {
        self.rate_limits = global;
        self
    }

    /// Rate limits of one cluster id (the one of
    /// [`with_cluster_id`](Self::with_cluster_id) or one of
    /// [`with_extra_cluster_id`](Self::with_extra_cluster_id); [`start`](Self::start)
    /// refuses another), checked after the global ones of
    /// [`with_rate_limits`](Self::with_rate_limits). Calling it again for the
    /// same cluster replaces its limits.
    pub fn with_cluster_rate_limits(
        mut self,
        cluster_id: impl Into<String>,
        limits: RateLimits,
    ) -> Self {
        let cluster_id = cluster_id.into();
        self.cluster_rate_limits.retain(|(c, _)| *c != cluster_id);
        self.cluster_rate_limits.push((cluster_id, limits));
        self
    }

    /// Declares a topic with the given number of partitions (at least 1).
    ///
    /// Declaring the same name again replaces the earlier partition count.
    pub fn with_topic(mut self, name: impl Into<String>, partitions: i32) -> Self {
        let name = name.into();
        let partitions = partitions.max(1);
        self.topics.retain(|(n, _)| *n != name);
        self.topics.push((name, partitions));
        self
    }

    /// Whether producing to an unknown topic creates it (with
    /// [`default_partitions`](Self::default_partitions) partitions) instead of
    /// answering HTTP 404. Off by default.
    pub fn with_auto_create_topics(mut self, on: bool) -> Self {
        self.auto_create_topics = on;
        self
    }

    /// The partition count of automatically created topics. Defaults to 1.
    pub fn with_default_partitions(mut self, partitions: i32) -> Self {
        self.default_partitions = partitions.max(1);
        self
    }

    /// Accepts an API key and secret sent as HTTP Basic credentials. The principal
    /// name is the key itself.
    ///
    /// Once any API key or bearer token is configured, every request must
    /// authenticate; with none configured, anyone may produce.
    pub fn with_api_key(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.api_keys.insert(key.into(), secret.into());
        self
    }

    /// Accepts `Authorization: Bearer {token}` as the given principal, whatever
    /// `Confluent-Identity-Pool-Id` header comes with it (or none).
    pub fn with_bearer_token(
        mut self,
        token: impl Into<String>,
        principal: impl Into<String>,
    ) -> Self {
        self.bearer_tokens
            .insert(token.into(), (principal.into(), None));
        self
    }

    /// Accepts `Authorization: Bearer {token}` as the given principal only when the
    /// request also carries `Confluent-Identity-Pool-Id: {pool_id}`.
    pub fn with_bearer_token_in_pool(
        mut self,
        token: impl Into<String>,
        principal: impl Into<String>,
        pool_id: impl Into<String>,
    ) -> Self {
        self.bearer_tokens
            .insert(token.into(), (principal.into(), Some(pool_id.into())));
        self
    }

    /// Restricts a principal to the given topics: producing to any other topic is
    /// answered with HTTP 403. Principals without an allow-list may produce anywhere.
    /// Calling this again for the same principal adds to its list.
    pub fn with_allowed_topics<I, S>(mut self, principal: impl Into<String>, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acls
            .entry(principal.into())
            .or_default()
            .extend(topics.into_iter().map(Into::into));
        self
    }

    /// Limits the size of one streamed record's JSON text. A record that grows
    /// past it gets a final in-band 400 and ends the stream (a record cut off
    /// cannot be framed any more), without the rest of it being kept, so that
    /// an endless record takes no more memory than this. Records within it whose
    /// key and value exceed Kafka's 1 MiB are still answered with the broker's
    /// in-band 50002. Defaults to [`DEFAULT_MAX_RECORD_BYTES`] (16 MiB);
    /// [`start`](Self::start) refuses 0.
    pub fn with_max_record_bytes(mut self, limit: usize) -> Self {
        self.limits.max_record_bytes = limit;
        self
    }

    /// Limits the size of a request body, counted on the bytes read (with or
    /// without `Content-Length`). A body announced larger is answered with HTTP
    /// 413 at once; one that grows larger gets HTTP 413, or, once its stream has
    /// answered 200, the reports of the records within the limit, an in-band 413
    /// and the end of the stream. Without it streaming bodies are unlimited
    /// and `records:batch` bodies are limited to
    /// [`DEFAULT_MAX_BATCH_REQUEST_BYTES`] (64 MiB); [`start`](Self::start)
    /// refuses 0.
    pub fn with_max_request_bytes(mut self, limit: u64) -> Self {
        self.limits.max_request_bytes = Some(limit);
        self
    }

    /// The most connections served at once: one more is accepted and closed at
    /// once, leaving the others be. Defaults to [`DEFAULT_MAX_CONNECTIONS`]
    /// (4096); [`start`](Self::start) refuses 0.
    pub fn with_max_connections(mut self, limit: usize) -> Self {
        self.limits.max_connections = limit;
        self
    }

    /// How long a connection may send nothing while a request is awaited or
    /// read: the request head must arrive within it, and no more than this may
    /// pass before the first body byte and between body bytes (any byte
    /// counts, whitespace and chunk framing included). A stream then ends as
    /// the real service ends an idle one (and as [`FaultPlan::idle_timeout`]
    /// does): the reports of the records read so far are written, the response
    /// ends normally and the connection closes; before its first record that
    /// is an empty HTTP 200. A `records:batch` body gets HTTP 408. A client
    /// that takes none of the response for this long (reads no reports, say)
    /// is dropped. On HTTP/2 each request counts only its own bytes, a stream
    /// given no window for this long drops its connection, and a connection
    /// with no request in flight is sent GOAWAY and closed once quiet this
    /// long. Defaults to
    /// [`DEFAULT_IDLE_TIMEOUT`] (30 s); [`start`](Self::start) refuses zero and
    /// durations past [`MAX_CONFIGURED_DURATION`].
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// The most entries a `records:batch` request may hold. Defaults to 10.
    pub fn with_max_batch_entries(mut self, limit: usize) -> Self {
        self.limits.max_batch_entries = limit.max(1);
        self
    }

    /// How long a streaming request may stay open. Once exceeded, every further
    /// record is answered with an in-band 408 and the connection is closed after
    /// the [`stream_close_delay`](Self::stream_close_delay). Unlimited by default.
    pub fn with_stream_lifetime(mut self, lifetime: Duration) -> Self {
        self.limits.stream_lifetime = Some(lifetime);
        self
    }

    /// How long after the first in-band 408 the connection is closed. Defaults to
    /// 500 ms.
    pub fn with_stream_close_delay(mut self, delay: Duration) -> Self {
        self.limits.stream_close_delay = delay;
        self
    }

    /// Applies a seeded [`FaultPlan`] to every streaming request. No faults by
    /// default; replace the plan while running with [`Emulator::set_faults`].
    pub fn with_faults(mut self, plan: FaultPlan) -> Self {
        self.faults = plan;
        self
    }

    /// Plays an HTTP [`Intermediary`] (a buffering reverse proxy, one that
    /// holds reports back, a body cap, an upstream timeout) in front of the
    /// produce endpoints. None by default: requests reach the server
    /// directly. Replace it while running with [`Emulator::set_intermediary`];
    /// [`start`](Self::start) refuses one that cannot work (a zero body cap,
    /// a zero upstream timeout or one past [`MAX_CONFIGURED_DURATION`]).
    pub fn with_intermediary(mut self, intermediary: Intermediary) -> Self {
        self.intermediary = Some(intermediary);
        self
    }

    /// Registers an OAuth client with the token endpoint (`POST /oauth2/token`,
    /// client-credentials grant, HTTP Basic or form client authentication). Its
    /// tokens authenticate as `principal` and only with `Confluent-Identity-Pool-Id:
    /// {pool_id}`. Like API keys, any OAuth client makes authentication mandatory.
    /// Faults injected with [`Emulator::fail_next_requests`] apply to the produce
    /// endpoints only, never to the token endpoint.
    pub fn with_oauth_client(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
        principal: impl Into<String>,
        pool_id: impl Into<String>,
    ) -> Self {
        self.oauth_clients.insert(
            client_id.into(),
            OAuthClient {
                secret: secret.into(),
                principal: principal.into(),
                pool_id: pool_id.into(),
            },
        );
        self
    }

    /// How long issued tokens stay valid (announced as `expires_in`, in whole
    /// seconds). Defaults to one hour.
    pub fn with_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Serves HTTPS instead of HTTP, with a certificate generated at start; see
    /// [`Emulator::ca_certificate_pem`]. Off by default.
    pub fn with_tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Serves HTTPS (as [`with_tls`](Self::with_tls)) and requires every client to present a
    /// certificate issued by the emulator's certificate authority; one is available
    /// from [`Emulator::client_certificate_pem`]. Off by default.
    pub fn with_client_certificates_required(mut self, on: bool) -> Self {
        self.client_certificates = on;
        if on {
            self.tls = true;
        }
        self
    }

    /// Whether HTTP/2 is served (on by default): over TLS, `h2` is offered by
    /// ALPN besides `http/1.1`; on plain TCP, a client that opens with the
    /// HTTP/2 preface (h2c with prior knowledge) is served HTTP/2. Off, TLS
    /// offers `http/1.1` only and plain connections are read as HTTP/1.1, so
    /// an h2c client is refused. Requests behave the same in both versions
    /// (the faults that drop a connection drop all its streams).
    pub fn with_http2(mut self, on: bool) -> Self {
        self.http2.enabled = on;
        self
    }

    /// The `SETTINGS_MAX_CONCURRENT_STREAMS` an HTTP/2 connection announces:
    /// the most requests a client may have open on it at once. Defaults to
    /// [`DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS`] (128); [`start`](Self::start)
    /// refuses 0.
    pub fn with_http2_max_concurrent_streams(mut self, max: u32) -> Self {
        self.http2.max_concurrent_streams = max;
        self
    }

    /// Binds the listener and starts serving in the background on the current
    /// tokio runtime. A limit that cannot work is refused with
    /// [`io::ErrorKind::InvalidInput`], naming its setter.
    pub async fn start(self) -> io::Result<Emulator> {
        if let Some(problem) = self
            .limits
            .problem()
            .or_else(|| self.intermediary.as_ref().and_then(Intermediary::problem))
            .or_else(|| self.http2.problem())
        {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, problem));
        }
        if let Some((unknown, _)) = self
            .cluster_rate_limits
            .iter()
            .find(|(c, _)| *c != self.cluster_id && !self.extra_cluster_ids.contains(c))
        {
            return Err(unknown_cluster("with_cluster_rate_limits", unknown));
        }
        let listener = server::bind(self.listen)?;
        let addr = listener.local_addr()?;
        let topics = Topics::new(
            self.topics,
            self.auto_create_topics,
            self.default_partitions,
        );
        let auth = AuthConfig::new(self.api_keys, self.bearer_tokens, self.acls)
            .with_oauth(OAuthServer::new(self.oauth_clients, self.token_lifetime));
        let tls = match self.tls {
            true => Some(Arc::new(tls::generate(
                self.client_certificates,
                self.http2.alpn_protocols(),
            )?)),
            false => None,
        };
        let shared = Arc::new(
            Shared::new(
                self.cluster_id,
                topics,
                auth,
                self.limits,
                Faults::with_plan(self.faults),
            )
            .with_extra_cluster_ids(self.extra_cluster_ids)
            .with_reports_without_error_code(self.reports_without_error_code)
            .with_http2(self.http2),
        );
        shared.rate_limiter.set_global(self.rate_limits);
        for (cluster, limits) in &self.cluster_rate_limits {
            shared.rate_limiter.set_cluster(cluster, *limits);
        }
        shared.intermediary.set(self.intermediary);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (listening_tx, listening) = watch::channel(server::Listening {
            up: true,
            outages: 0,
        });
        let task = tokio::spawn(server::serve(
            listener,
            addr,
            Arc::clone(&shared),
            shutdown_rx,
            tls.as_ref().map(|tls| tls.acceptor.clone()),
            listening_tx,
        ));
        tracing::debug!(%addr, cluster_id = %shared.cluster_id, "emulator listening");
        Ok(Emulator {
            addr,
            shared,
            shutdown_tx,
            listening,
            task: Some(task),
            tls,
        })
    }
}

/// The error for a cluster id the emulator does not serve.
fn unknown_cluster(setter: &str, cluster: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{setter} names cluster {cluster:?}, which is not served: \
             add it with with_extra_cluster_id"
        ),
    )
}

/// The builder's former setter names, before every one was `with_*`.
impl EmulatorBuilder {
    /// Former name of [`with_listen`](Self::with_listen).
    #[deprecated(since = "0.2.0", note = "renamed to `with_listen`")]
    pub fn listen(self, addr: SocketAddr) -> Self {
        self.with_listen(addr)
    }

    /// Former name of [`with_cluster_id`](Self::with_cluster_id).
    #[deprecated(since = "0.2.0", note = "renamed to `with_cluster_id`")]
    pub fn cluster_id(self, id: impl Into<String>) -> Self {
        self.with_cluster_id(id)
    }

    /// Former name of [`with_topic`](Self::with_topic).
    #[deprecated(since = "0.2.0", note = "renamed to `with_topic`")]
    pub fn topic(self, name: impl Into<String>, partitions: i32) -> Self {
        self.with_topic(name, partitions)
    }

    /// Former name of [`with_auto_create_topics`](Self::with_auto_create_topics).
    #[deprecated(since = "0.2.0", note = "renamed to `with_auto_create_topics`")]
    pub fn auto_create_topics(self, on: bool) -> Self {
        self.with_auto_create_topics(on)
    }

    /// Former name of [`with_default_partitions`](Self::with_default_partitions).
    #[deprecated(since = "0.2.0", note = "renamed to `with_default_partitions`")]
    pub fn default_partitions(self, partitions: i32) -> Self {
        self.with_default_partitions(partitions)
    }

    /// Former name of [`with_api_key`](Self::with_api_key).
    #[deprecated(since = "0.2.0", note = "renamed to `with_api_key`")]
    pub fn api_key(self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.with_api_key(key, secret)
    }

    /// Former name of [`with_bearer_token`](Self::with_bearer_token).
    #[deprecated(since = "0.2.0", note = "renamed to `with_bearer_token`")]
    pub fn bearer_token(self, token: impl Into<String>, principal: impl Into<String>) -> Self {
        self.with_bearer_token(token, principal)
    }

    /// Former name of [`with_bearer_token_in_pool`](Self::with_bearer_token_in_pool).
    #[deprecated(since = "0.2.0", note = "renamed to `with_bearer_token_in_pool`")]
    pub fn bearer_token_with_pool(
        self,
        token: impl Into<String>,
        principal: impl Into<String>,
        pool_id: impl Into<String>,
    ) -> Self {
        self.with_bearer_token_in_pool(token, principal, pool_id)
    }

    /// Former name of [`with_allowed_topics`](Self::with_allowed_topics).
    #[deprecated(since = "0.2.0", note = "renamed to `with_allowed_topics`")]
    pub fn allow_topics<I, S>(self, principal: impl Into<String>, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with_allowed_topics(principal, topics)
    }

    /// Former name of [`with_max_record_bytes`](Self::with_max_record_bytes).
    #[deprecated(since = "0.2.0", note = "renamed to `with_max_record_bytes`")]
    pub fn max_record_bytes(self, limit: usize) -> Self {
        self.with_max_record_bytes(limit)
    }

    /// Former name of [`with_max_request_bytes`](Self::with_max_request_bytes).
    #[deprecated(since = "0.2.0", note = "renamed to `with_max_request_bytes`")]
    pub fn max_request_bytes(self, limit: u64) -> Self {
        self.with_max_request_bytes(limit)
    }

    /// Former name of [`with_max_connections`](Self::with_max_connections).
    #[deprecated(since = "0.2.0", note = "renamed to `with_max_connections`")]
    pub fn max_connections(self, limit: usize) -> Self {
        self.with_max_connections(limit)
    }

    /// Former name of [`with_idle_timeout`](Self::with_idle_timeout).
    #[deprecated(since = "0.2.0", note = "renamed to `with_idle_timeout`")]
    pub fn idle_timeout(self, timeout: Duration) -> Self {
        self.with_idle_timeout(timeout)
    }

    /// Former name of [`with_max_batch_entries`](Self::with_max_batch_entries).
    #[deprecated(since = "0.2.0", note = "renamed to `with_max_batch_entries`")]
    pub fn max_batch_entries(self, limit: usize) -> Self {
        self.with_max_batch_entries(limit)
    }

    /// Former name of [`with_stream_lifetime`](Self::with_stream_lifetime).
    #[deprecated(since = "0.2.0", note = "renamed to `with_stream_lifetime`")]
    pub fn stream_lifetime(self, lifetime: Duration) -> Self {
        self.with_stream_lifetime(lifetime)
    }

    /// Former name of [`with_stream_close_delay`](Self::with_stream_close_delay).
    #[deprecated(since = "0.2.0", note = "renamed to `with_stream_close_delay`")]
    pub fn stream_close_delay(self, delay: Duration) -> Self {
        self.with_stream_close_delay(delay)
    }

    /// Former name of [`with_faults`](Self::with_faults).
    #[deprecated(since = "0.2.0", note = "renamed to `with_faults`")]
    pub fn faults(self, plan: FaultPlan) -> Self {
        self.with_faults(plan)
    }

    /// Former name of [`with_oauth_client`](Self::with_oauth_client).
    #[deprecated(since = "0.2.0", note = "renamed to `with_oauth_client`")]
    pub fn oauth_client(
        self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
        principal: impl Into<String>,
        pool_id: impl Into<String>,
    ) -> Self {
        self.with_oauth_client(client_id, secret, principal, pool_id)
    }

    /// Former name of [`with_token_lifetime`](Self::with_token_lifetime).
    #[deprecated(since = "0.2.0", note = "renamed to `with_token_lifetime`")]
    pub fn token_lifetime(self, lifetime: Duration) -> Self {
        self.with_token_lifetime(lifetime)
    }

    /// Former name of [`with_tls`](Self::with_tls).
    #[deprecated(since = "0.2.0", note = "renamed to `with_tls`")]
    pub fn tls(self, on: bool) -> Self {
        self.with_tls(on)
    }

    /// Former name of [`with_client_certificates_required`](Self::with_client_certificates_required).
    #[deprecated(
        since = "0.2.0",
        note = "renamed to `with_client_certificates_required`"
    )]
    pub fn require_client_certificates(self, on: bool) -> Self {
        self.with_client_certificates_required(on)
    }
}

/// A running emulator. It stops when [`shutdown`](Emulator::shutdown) is awaited or
/// when it is dropped.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    listening: watch::Receiver<server::Listening>,
    task: Option<JoinHandle<()>>,
    tls: Option<Arc<tls::Tls>>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("cluster_id", &self.shared.cluster_id)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A builder with defaults: loopback on a free port, cluster id
    /// [`DEFAULT_CLUSTER_ID`], no topics, no authentication.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with topic `demo` (3 partitions) and no authentication.
    pub async fn start_default() -> io::Result<Emulator> {
        Emulator::builder().with_topic("demo", 3).start().await
    }

    /// The base URL, `http://{ip}:{port}` (`https://` with [`EmulatorBuilder::with_tls`]),
    /// without any path.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The OAuth token endpoint, `{url}/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.url(), oauth::TOKEN_PATH)
    }

    /// The PEM of the certificate authority that issued the HTTPS certificate, for
    /// clients to trust; `None` without [`EmulatorBuilder::with_tls`].
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.ca_pem.as_str())
    }

    /// A client certificate and its private key (both PEM) that the emulator
    /// accepts; `None` without [`EmulatorBuilder::with_client_certificates_required`].
    pub fn client_certificate_pem(&self) -> Option<(&str, &str)> {
        let tls = self.tls.as_ref()?;
        let (certificate, key) = tls.client_identity.as_ref()?;
        Some((certificate.as_str(), key.as_str()))
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.auth.oauth.tokens_issued()
    }

    /// Revokes every token issued so far: requests bearing one are answered with
    /// HTTP 401 (`error_code` 40101). New tokens can still be had.
    pub fn revoke_tokens(&self) {
        self.shared.auth.oauth.revoke_all();
    }

    /// Makes every token issued so far expire now, as if the clocks had run past
    /// their expiry (clock skew, say): requests bearing one are answered with
    /// HTTP 401 (`error_code` 40101).
    pub fn expire_tokens(&self) {
        self.shared.auth.oauth.expire_all();
    }

    /// Lets an OAuth client get tokens, or refuses it (`invalid_client`) from now
    /// on. Tokens already issued stay valid. Returns whether the client exists.
    pub fn set_oauth_client_enabled(&self, client_id: &str, enabled: bool) -> bool {
        self.shared.auth.oauth.set_enabled(client_id, enabled)
    }

    /// What the most recent request to the token endpoint carried.
    pub fn last_token_request(&self) -> Option<TokenRequest> {
        self.shared.auth.oauth.last_request()
    }

    /// How many requests to the produce endpoints were refused with HTTP 401.
    pub fn auth_failures(&self) -> u64 {
        self.shared.auth.refused()
    }

    /// The address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The cluster id accepted in request paths (the first one, when
    /// [`EmulatorBuilder::with_extra_cluster_id`] adds others).
    pub fn cluster_id(&self) -> &str {
        &self.shared.cluster_id
    }

    /// Every cluster id accepted in request paths: [`cluster_id`](Self::cluster_id)
    /// first, then those of [`EmulatorBuilder::with_extra_cluster_id`].
    pub fn cluster_ids(&self) -> Vec<&str> {
        std::iter::once(&self.shared.cluster_id)
            .chain(&self.shared.extra_cluster_ids)
            .map(String::as_str)
            .collect()
    }

    /// Replaces the global produce rate limits (see
    /// [`EmulatorBuilder::with_rate_limits`]) from the next record on.
    /// Limits kept change their rate keeping the share of their burst that
    /// is stored; a new one starts with its burst stored;
    /// [`RateLimits::unlimited`] turns them off.
    pub fn set_rate_limits(&self, global: RateLimits) {
        self.shared.rate_limiter.set_global(global);
    }

    /// Replaces the produce rate limits of one cluster id served, as
    /// [`set_rate_limits`](Self::set_rate_limits) does the global ones. A
    /// cluster id not served is refused with [`io::ErrorKind::InvalidInput`].
    pub fn set_cluster_rate_limits(&self, cluster_id: &str, limits: RateLimits) -> io::Result<()> {
        let Some(cluster) = self.shared.served_cluster(cluster_id) else {
            return Err(unknown_cluster("set_cluster_rate_limits", cluster_id));
        };
        self.shared.rate_limiter.set_cluster(cluster, limits);
        Ok(())
    }

    /// How many records the produce rate limits have refused since the
    /// start (or the last [`reset_rate_limited_records`](Self::reset_rate_limited_records)).
    pub fn rate_limited_records(&self) -> u64 {
        self.shared.rate_limiter.refused()
    }

    /// Sets [`rate_limited_records`](Self::rate_limited_records) back to zero.
    pub fn reset_rate_limited_records(&self) {
        self.shared.rate_limiter.reset_refused();
    }

    /// Creates a topic (or does nothing if it already exists) while running.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.shared.topics.create(name, partitions.max(1));
    }

    /// The partition count of a topic, or `None` if it does not exist.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.shared
            .topics
            .lookup(topic)
            .map(|t| t.partition_count())
    }

    /// Every record stored in a topic, ordered by partition then offset. Empty for
    /// an unknown topic.
    pub fn records(&self, topic: &str) -> Vec<StoredRecord> {
        self.shared
            .topics
            .lookup(topic)
            .map(|t| t.records())
            .unwrap_or_default()
    }

    /// The records of one partition in offset order. Empty for an unknown topic or
    /// partition.
    pub fn partition_records(&self, topic: &str, partition: i32) -> Vec<StoredRecord> {
        self.shared
            .topics
            .lookup(topic)
            .map(|t| t.partition_records(partition))
            .unwrap_or_default()
    }

    /// Answers each of the next `count` HTTP requests with `fault` instead of
    /// handling it. Calls queue up: faults are used in the order they were added.
    pub fn fail_next_requests(&self, fault: HttpFault, count: usize) {
        self.shared.faults.push_http(fault, count);
    }

    /// Answers each of the next `count` otherwise valid records with the in-band
    /// report `{"error_code":code,"message":message}` instead of appending it.
    pub fn fail_next_records(&self, code: i32, message: impl Into<String>, count: usize) {
        self.shared.faults.push_records(code, message.into(), count);
    }

    /// Makes the next streaming request drop its TCP connection right after its
    /// `reports`-th delivery report has been written. Later records of that request
    /// are not handled. On HTTP/2 every stream of the connection is cut.
    pub fn cut_connection_after_records(&self, reports: usize) {
        self.shared.faults.set_cut(reports);
    }

    /// Makes the next streaming request reset its stream once its `reports`
    /// first reports have gone out (at once, before any record, with 0).
    /// Later records of that request are not handled. On HTTP/2 the response
    /// fails with `RST_STREAM` (`INTERNAL_ERROR`, what hyper sends for a
    /// failed response body) and the connection's other streams go on; on
    /// HTTP/1.1, which has nothing smaller to fail, the connection drops.
    /// Replaces a reset armed before and not used yet.
    pub fn reset_stream_after_records(&self, reports: usize) {
        self.shared.faults.set_reset(reports);
    }

    /// Makes the next streaming request's connection send GOAWAY once the
    /// request's `reports` first reports have gone out (at once, before any
    /// record, with 0), and close [`GOAWAY_GRACE`] later, since a streaming
    /// request never ends by itself: the client learns that no new stream
    /// will be served there, and the streams still open are cut. Later
    /// records of that request are not handled. On HTTP/1.1 the connection
    /// closes as well. Replaces a GOAWAY armed before and not used yet.
    pub fn goaway_after_records(&self, reports: usize) {
        self.shared.faults.set_goaway(reports);
    }

    /// Removes every pending injected fault, and the [`FaultPlan`].
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Replaces the [`FaultPlan`]. Streams already open keep the plan they started
    /// with; the stream numbering the plan's generator uses starts again from zero,
    /// so setting the same plan again repeats the same decisions.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.faults.set_plan(plan);
    }

    /// Replaces the [`Intermediary`] played in front of the produce
    /// endpoints, for requests that start after the call (those under way
    /// keep theirs). [`Intermediary::streaming`] without a cap or timeout
    /// removes it. One that cannot work (see
    /// [`EmulatorBuilder::with_intermediary`]) is refused with
    /// [`io::ErrorKind::InvalidInput`], naming its setter, and the one in use
    /// is kept.
    pub fn set_intermediary(&self, intermediary: Intermediary) -> io::Result<()> {
        if let Some(problem) = intermediary.problem() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, problem));
        }
        self.shared.intermediary.set(Some(intermediary));
        Ok(())
    }

    /// Begins an outage of `length` from now, as a window of
    /// [`FaultPlan::outages`] would: the listening socket is closed, so that
    /// connection attempts are refused, every open connection is dropped, and
    /// once `length` has passed the emulator listens on the same address
    /// again. Returns once the outage is under way (at once if one already
    /// is; this one then extends it as needed). [`clear_faults`](Self::clear_faults)
    /// ends it early.
    pub async fn outage(&self, length: Duration) {
        let mut listening = self.listening.clone();
        let begun = listening.borrow().outages;
        self.shared.faults.begin_outage(length);
        // An error means the server has stopped: nothing listens anyway.
        let _ = listening.wait_for(|l| !l.up || l.outages > begun).await;
    }

    /// Whether the emulator is accepting connections: false during an outage
    /// (and while the address cannot be bound again after one), and after
    /// shutdown.
    pub fn is_listening(&self) -> bool {
        self.listening.borrow().up
    }

    /// How often each kind of fault has been applied since the start (or the last
    /// [`reset_fault_stats`](Self::reset_fault_stats)).
    pub fn fault_stats(&self) -> FaultStats {
        self.shared.faults.stats.snapshot()
    }

    /// Sets every [`fault_stats`](Self::fault_stats) counter back to zero.
    pub fn reset_fault_stats(&self) {
        self.shared.faults.stats.reset();
    }

    /// How many HTTP requests have been received (every path and method).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// [`requests`](Self::requests) by HTTP version: HTTP/1.x and HTTP/2.
    pub fn requests_by_version(&self) -> RequestVersions {
        self.shared.versions.snapshot()
    }

    /// How many TCP connections have been accepted since the start: every
    /// one, those closed at once over
    /// [`with_max_connections`](EmulatorBuilder::with_max_connections) and
    /// those whose TLS handshake failed included. Requests multiplexed on one
    /// HTTP/2 connection count it once.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections_accepted.load(Ordering::Relaxed)
    }

    /// The headers of the most recent request, with lowercase names, in the order
    /// they were received. `None` before the first request.
    pub fn last_request_headers(&self) -> Option<Vec<(String, String)>> {
        self.shared.last_headers()
    }

    /// Stops accepting connections, lets in-flight requests finish for a short
    /// grace period, then closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Entry points for the client's benchmarks and fuzz targets, not part of the
/// API: they may change or go away in any release.
#[doc(hidden)]
pub mod __bench {
    /// The emulator's handling of a streamed request body held in memory,
    /// `read` bytes at a time: parsing, checks, appending to a fresh topic
    /// and writing reports. Returns the reports and their bytes.
    pub fn emulator_stream(body: &[u8], read: usize) -> (usize, usize) {
        crate::stream::handle_in_memory(body, read)
    }
}
