//! Shared emulator state: configuration, topics and their partition logs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::limits::duration_problem;

use super::StoredRecord;
use super::auth::AuthConfig;
use super::faults::Faults;
use super::intermediary::IntermediarySetting;
use super::log::PartitionLog;
use super::protocol::{Http2Settings, VersionCounts};
use super::rate_limit::{RateLimiter, RateLimits};
use super::record::{Prepared, RecordError};
use super::sync::lock;

/// Size and lifetime limits.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_record_bytes: usize,
    /// `None`: unlimited streams, and [`DEFAULT_MAX_BATCH_REQUEST_BYTES`] for
    /// `records:batch`.
    pub max_request_bytes: Option<u64>,
    pub max_batch_entries: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub stream_lifetime: Option<Duration>,
    pub stream_close_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_request_bytes: None,
            max_batch_entries: 10,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            stream_lifetime: None,
            stream_close_delay: Duration::from_millis(500),
        }
    }
}

impl Limits {
    /// The size limit of a request body: streaming or `records:batch`.
    pub fn request_bytes(&self, batch: bool) -> Option<u64> {
        match (self.max_request_bytes, batch) {
            (Some(limit), _) => Some(limit),
            (None, true) => Some(DEFAULT_MAX_BATCH_REQUEST_BYTES),
            (None, false) => None,
        }
    }

    /// Why a limit cannot work, naming its setter; `None` when all can.
    pub fn problem(&self) -> Option<String> {
        let at_least_one = |setter: &str, value: u64| {
            (value == 0).then(|| format!("{setter}(0) is out of range: it must be at least 1"))
        };
        at_least_one("max_record_bytes", self.max_record_bytes as u64)
            .or_else(|| at_least_one("max_request_bytes", self.max_request_bytes.unwrap_or(1)))
            .or_else(|| at_least_one("max_connections", self.max_connections as u64))
            .or_else(|| duration_problem("idle_timeout", self.idle_timeout, false))
    }
}

/// The record size limit unless
/// [`EmulatorBuilder::with_max_record_bytes`](super::EmulatorBuilder::with_max_record_bytes)
/// sets another: 16 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// The size limit of a `records:batch` body unless
/// [`EmulatorBuilder::with_max_request_bytes`](super::EmulatorBuilder::with_max_request_bytes)
/// sets one: 64 MiB. Streaming bodies have none by default.
pub const DEFAULT_MAX_BATCH_REQUEST_BYTES: u64 = 64 * 1024 * 1024;

/// The most connections served at once unless
/// [`EmulatorBuilder::with_max_connections`](super::EmulatorBuilder::with_max_connections)
/// sets another.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How long a connection may send nothing unless
/// [`EmulatorBuilder::with_idle_timeout`](super::EmulatorBuilder::with_idle_timeout) sets
/// another: 30 s, after which the real service closes idle connections.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest key plus value the emulated Kafka producer accepts (its
/// `max.request.size` default).
pub(crate) const MAX_KAFKA_RECORD_BYTES: usize = 1024 * 1024;

/// Everything the server tasks share.
pub(crate) struct Shared {
    /// The cluster id [`Emulator::cluster_id`](super::Emulator::cluster_id) answers.
    pub cluster_id: String,
    /// The other cluster ids served, sharing the topics.
    pub extra_cluster_ids: Vec<String>,
    /// The produce rate limits.
    pub rate_limiter: RateLimiter,
    pub topics: Topics,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub faults: Faults,
    /// The intermediary played in front of the produce endpoints.
    pub intermediary: IntermediarySetting,
    /// Delivered records are reported without `error_code`, as REST Proxy
    /// before 7.3 does.
    pub reports_without_error_code: bool,
    pub requests: AtomicU64,
    /// Requests by HTTP version.
    pub versions: VersionCounts,
    /// TCP connections accepted, those refused over the limit included.
    pub connections_accepted: AtomicU64,
    /// How HTTP/2 is served.
    pub http2: Http2Settings,
    last_headers: Mutex<Option<Vec<(String, String)>>>,
}

impl Shared {
    pub fn new(
        cluster_id: String,
        topics: Topics,
        auth: AuthConfig,
        limits: Limits,
        faults: Faults,
    ) -> Shared {
        Shared {
            cluster_id,
            extra_cluster_ids: Vec::new(),
            rate_limiter: RateLimiter::new(RateLimits::unlimited(), []),
            topics,
            auth,
            limits,
            faults,
            intermediary: IntermediarySetting::default(),
            reports_without_error_code: false,
            requests: AtomicU64::new(0),
            versions: VersionCounts::default(),
            connections_accepted: AtomicU64::new(0),
            http2: Http2Settings::default(),
            last_headers: Mutex::new(None),
        }
    }

    /// The same state serving `extra` cluster ids besides its own.
    pub fn with_extra_cluster_ids(mut self, extra: Vec<String>) -> Shared {
        self.extra_cluster_ids = extra;
        self
    }

    pub fn with_reports_without_error_code(mut self, on: bool) -> Shared {
        self.reports_without_error_code = on;
        self
    }

    pub fn with_http2(mut self, http2: Http2Settings) -> Shared {
        self.http2 = http2;
        self
    }

    /// The served cluster id equal to `id`, if any.
    pub fn served_cluster(&self, id: &str) -> Option<&str> {
        std::iter::once(&self.cluster_id)
            .chain(&self.extra_cluster_ids)
            .find(|served| *served == id)
            .map(String::as_str)
    }

    pub fn set_last_headers(&self, headers: Vec<(String, String)>) {
        *lock(&self.last_headers) = Some(headers);
    }

    pub fn last_headers(&self) -> Option<Vec<(String, String)>> {
        lock(&self.last_headers).clone()
    }
}

/// The topics known to the emulator.
pub(crate) struct Topics {
    map: Mutex<HashMap<String, Arc<TopicLog>>>,
    auto_create: bool,
    default_partitions: i32,
}

impl Topics {
    pub fn new(declared: Vec<(String, i32)>, auto_create: bool, default_partitions: i32) -> Topics {
        let map = declared
            .into_iter()
            .map(|(name, partitions)| {
                let log = Arc::new(TopicLog::new(name.clone(), partitions));
                (name, log)
            })
            .collect();
        Topics {
            map: Mutex::new(map),
            auto_create,
            default_partitions,
        }
    }

    /// Looks a topic up without creating it.
    pub fn lookup(&self, name: &str) -> Option<Arc<TopicLog>> {
        lock(&self.map).get(name).cloned()
    }

    /// Looks a topic up for producing, creating it when auto-creation is on.
    pub fn for_produce(&self, name: &str) -> Option<Arc<TopicLog>> {
        let mut map = lock(&self.map);
        if let Some(topic) = map.get(name) {
            return Some(Arc::clone(topic));
        }
        if !self.auto_create || !valid_topic_name(name) {
            return None;
        }
        let topic = Arc::new(TopicLog::new(name.to_owned(), self.default_partitions));
        map.insert(name.to_owned(), Arc::clone(&topic));
        tracing::debug!(
            topic = name,
            partitions = self.default_partitions,
            "topic created"
        );
        Some(topic)
    }

    /// Creates a topic unless it exists.
    pub fn create(&self, name: &str, partitions: i32) {
        lock(&self.map)
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(TopicLog::new(name.to_owned(), partitions)));
    }
}

/// Kafka's topic name rules: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The result of appending a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    pub partition: i32,
    pub offset: i64,
}

/// One topic: a log per partition plus the round-robin cursor.
pub(crate) struct TopicLog {
    name: String,
    partitions: Box<[Mutex<PartitionLog>]>,
    round_robin: AtomicU32,
}

impl TopicLog {
    fn new(name: String, partitions: i32) -> TopicLog {
        let count = partitions.max(1) as usize;
        TopicLog {
            name,
            partitions: (0..count).map(|_| Mutex::default()).collect(),
            round_robin: AtomicU32::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Picks the partition for a record: the explicit one when given (checked),
    /// otherwise by key hash, otherwise round-robin.
    pub fn choose_partition(
        &self,
        explicit: Option<i64>,
        key: Option<&[u8]>,
    ) -> Result<i32, RecordError> {
        let count = self.partitions.len() as u32;
        match explicit {
            Some(p) if p < 0 => Err(RecordError::new(40402, "Partition not found.")),
            Some(p) if p >= i64::from(count) => Err(RecordError::new(
                40403,
                "This server does not host this topic-partition.",
            )),
            Some(p) => Ok(p as i32),
            None => Ok(match key {
                Some(key) => key_partition(key, count),
                None => (self.round_robin.fetch_add(1, Ordering::Relaxed) % count) as i32,
            }),
        }
    }

    /// Appends records, locking each partition once for all of them.
    pub fn appender(&self) -> Appender<'_> {
        Appender {
            topic: self,
            held: self.partitions.iter().map(|_| None).collect(),
        }
    }

    /// All records, ordered by partition then offset.
    pub fn records(&self) -> Vec<StoredRecord> {
        (0..self.partition_count())
            .flat_map(|p| self.partition_records(p))
            .collect()
    }

    /// Runs `read` on one partition's log while holding it; `None` for a
    /// partition the topic does not have.
    pub fn with_partition<R>(
        &self,
        partition: i32,
        read: impl FnOnce(&PartitionLog) -> R,
    ) -> Option<R> {
        let log = usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))?;
        Some(read(&lock(log)))
    }

    /// The records of one partition.
    pub fn partition_records(&self, partition: i32) -> Vec<StoredRecord> {
        let Some(log) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
        else {
            return Vec::new();
        };
        let log = lock(log);
        let mut records = Vec::with_capacity(log.len());
        records.extend(log.iter().map(|r| StoredRecord {
            topic: self.name.clone(),
            partition,
            offset: r.offset,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            key_type: r.key_type,
            value_type: r.value_type,
            headers: r.headers.to_vec(),
            timestamp: r.timestamp,
        }));
        records
    }
}

/// Appends records to a topic's partitions. Each partition is locked when
/// first appended to and stays locked until the appender is dropped (or
/// until another stream holds a partition it needs), so that records handled
/// together (a piece of a request body) take its lock once, not once each.
pub(crate) struct Appender<'t> {
    topic: &'t TopicLog,
    held: Vec<Option<MutexGuard<'t, PartitionLog>>>,
}

impl Appender<'_> {
    /// Appends a record (taking its headers) to a partition chosen by
    /// [`choose_partition`](TopicLog::choose_partition).
    pub fn append(
        &mut self,
        partition: i32,
        record: &mut Prepared<'_>,
        timestamp: DateTime<Utc>,
    ) -> Appended {
        let index = partition as usize;
        if self.held[index].is_none() {
            let guard = self.take_lock(index);
            self.held[index] = Some(guard);
        }
        let log = self.held[index].as_mut().expect("the partition is locked");
        let offset = log.append(record, timestamp);
        Appended { partition, offset }
    }
}

impl<'t> Appender<'t> {
    /// Locks partition `index`. It never waits for a partition while holding
    /// another: two streams taking partitions in different orders would wait
    /// for each other forever. When the partition is busy, the partitions
    /// held are released first.
    fn take_lock(&mut self, index: usize) -> MutexGuard<'t, PartitionLog> {
        let partition = &self.topic.partitions[index];
        match partition.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                self.held.iter_mut().for_each(|held| *held = None);
                lock(partition)
            }
        }
    }
}

/// The partition Kafka's default partitioner gives a keyed record.
pub(crate) fn key_partition(key: &[u8], partitions: u32) -> i32 {
    ((murmur2(key) as u32 & 0x7fff_ffff) % partitions) as i32
}

/// MurmurHash2 (32-bit) with Kafka's seed, as in its Java client.
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic_name("orders.v1_x-y"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("a/b"));
    }
}
