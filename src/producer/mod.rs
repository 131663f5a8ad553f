//! The streaming producer: records written as concatenated JSON into long
//! chunked requests, one delivery report back per record, in order.
//!
//! A [`Producer`] keeps, per topic, up to `connections` lanes; each lane
//! holds at most one open stream and bounds the records and bytes it holds.
//! `send` waits while its lane is full (or `try_send` refuses), so memory
//! is bounded by the configuration, not by how many records are sent.

mod config;
mod delivery;
mod errors;
mod inbox;
mod lane;
mod machine;
mod outcome;
mod stats;
#[cfg(test)]
mod tests;

pub use crate::retry::policy::UnknownOutcome;
pub use config::{ProducerConfig, Routing};
pub use delivery::DeliveryFuture;
pub use errors::{SendAllError, TrySendError};
pub use stats::{ConnectionStats, ProducerStats, TopicStats};

use crate::client::Client;
use crate::error::{Error, GiveUpReason};
use crate::wire::encode;
use crate::wire::record::{Payload, Record, validate_topic};
use crate::wire::report::DeliveryReport;
use bytes::Bytes;
use delivery::{Pending, Room};
use futures_util::Stream;
use lane::{LaneContext, LaneHandle, LaneSlot, SlotState};
use stats::{Stats, TopicCounters};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Produces records over streaming connections.
///
/// Every record handed to [`send`](Producer::send) or
/// [`enqueue`](Producer::enqueue) gets exactly one outcome: a
/// [`DeliveryReport`] or the [`Error`] that ended its attempts. Retriable
/// failures (rate limits, throttling, a stream past its lifetime, server
/// errors, lost connections) are retried with exponential backoff and
/// jitter until the record's delivery timeout or attempts run out.
///
/// Order: reports, and therefore writes, follow send order on each
/// connection. A retried record is written again after records sent after
/// it, so order across retries holds only with
/// [`ProducerConfig::with_strict_order`]; order across connections holds
/// only for records routed to the same one ([`Routing::ByKey`],
/// [`Routing::ByPartition`]).
///
/// # Handing records over
///
/// A record is *handed over* once it has room in its connection and in
/// the producer ([`ProducerConfig`]'s bounds); from then on it is the
/// producer's, and its outcome comes through its [`DeliveryFuture`].
/// * [`enqueue`](Self::enqueue) waits for room, hands the record over and
///   returns its future; [`send`](Self::send) does the same, then waits
///   for the outcome; [`send_all`](Self::send_all) does it for a stream of
///   records. The wait for room is bounded by the queue timeout
///   ([`ProducerConfig::with_queue_timeout`], [`Error::QueueFull`]) or else
///   by the delivery timeout.
/// * [`try_send`](Self::try_send) never waits: a record without room now
///   is handed back ([`TrySendError::Full`]).
///
/// # Cancelling
///
/// Dropping a `send` or `enqueue` future while it waits for room cancels
/// the record: it is not handed over, not sent, gets no outcome and counts
/// nowhere in [`stats`](Self::stats). Once it is handed over (when
/// `enqueue` returns; within `send`, before it waits for the outcome),
/// nothing cancels it: dropping `send`'s future or the [`DeliveryFuture`]
/// only drops the outcome, and the record is still sent, retried and
/// resolved (and counted) as usual. The same holds for a `send_all` stream
/// dropped part way: the records it handed over go on, the one it was
/// waiting room for, and those it had not taken from the input yet, are not
/// sent.
///
/// # Clones and dropping
///
/// `Clone` is cheap (one reference count): every clone is the same
/// producer, with the same connections (lanes), bounds, configuration and
/// [`stats`](Self::stats); [`close`](Self::close) through one closes it for
/// all.
///
/// Dropping the last clone without `close` does not lose records: each
/// connection stops taking records, goes on with those it holds until each
/// is delivered or fails (by its delivery timeout at the latest), ends its
/// stream and stops, in the background of the Tokio runtime it was started
/// on. Their [`DeliveryFuture`]s still resolve. Nothing waits for that
/// except the runtime: if the runtime shuts down first, the records still
/// held resolve at once with [`Error::Closed`] (never written) or
/// [`Error::Interrupted`] (may have been written). To know when everything
/// is resolved, call [`close`](Self::close) or
/// [`close_timeout`](Self::close_timeout) before dropping it.
///
/// ```
/// use ccloud_kafka_rest::{Client, Producer, Record};
/// # use ccloud_kafka_rest_emulator::Emulator;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ccloud_kafka_rest::Error> {
/// # let emulator = Emulator::start_default().await.unwrap();
/// # let client = Client::builder().with_endpoint(emulator.url()).with_cluster_id(emulator.cluster_id()).build()?;
/// let producer = Producer::new(client);
/// let mut deliveries = Vec::new();
/// for i in 0..100 {
///     deliveries.push(producer.enqueue("demo", &Record::from_value(format!("event {i}"))).await);
/// }
/// for delivery in deliveries {
///     let report = delivery.await?;
///     assert!(report.offset >= 0);
/// }
/// producer.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    config: Arc<ProducerConfig>,
    stats: Arc<Stats>,
    /// Per topic, its lanes.
    lanes: RwLock<HashMap<String, Arc<TopicLanes>, BuildHasherDefault<TopicHasher>>>,
    next_lane: AtomicUsize,
    closed: AtomicBool,
    hasher: std::hash::RandomState,
    /// Set when `close_timeout` gives up waiting: lanes then resolve what
    /// they hold at once.
    abandon: watch::Sender<bool>,
    /// The bounds over every lane.
    room: Arc<Room>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("client", &self.shared.client)
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Producer {
    /// A producer with the default [`ProducerConfig`].
    pub fn new(client: Client) -> Producer {
        Producer::with_config(client, ProducerConfig::default())
            .expect("the default configuration is valid")
    }

    /// A producer with this configuration.
    pub fn with_config(client: Client, config: ProducerConfig) -> Result<Producer, Error> {
        config.validate()?;
        Ok(Producer {
            shared: Arc::new(Shared {
                client,
                stats: Arc::new(Stats::default()),
                lanes: RwLock::new(HashMap::default()),
                next_lane: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                hasher: std::hash::RandomState::new(),
                abandon: watch::Sender::new(false),
                room: Arc::new(Room::new(
                    config.max_buffered_records,
                    config.max_buffered_bytes,
                )),
                config: Arc::new(config),
            }),
        })
    }

    /// Sends a record and waits for its outcome. Waits first for room when
    /// the record's connection is full, as [`enqueue`](Self::enqueue) does.
    ///
    /// Dropping the future while it waits for room cancels the record;
    /// once the record is handed over, dropping it only drops the outcome
    /// (see [Cancelling](Self#cancelling)).
    pub async fn send(&self, topic: &str, record: &Record) -> Result<DeliveryReport, Error> {
        self.enqueue(topic, record).await.await
    }

    /// Hands a record to the producer, waiting only for room, and returns a
    /// future of its outcome. Use it to keep many records in flight from one
    /// task. A record that cannot be handed over gets a future that resolves
    /// to the reason at once: an invalid topic or record
    /// ([`Error::InvalidInput`]), a closed producer ([`Error::Closed`]), no
    /// room within the queue timeout ([`Error::QueueFull`], with the record)
    /// or, without one, within the delivery timeout
    /// ([`Error::GaveUp`] after 0 attempts).
    ///
    /// Dropping this call's future before it completes (while it waits for
    /// room) is safe: the record is then not handed over and not sent.
    pub async fn enqueue(&self, topic: &str, record: &Record) -> DeliveryFuture {
        match self.try_enqueue(topic, record).await {
            Ok(delivery) => delivery,
            Err(refusal) => self.refused(refusal.into_error(|| record.clone())),
        }
    }

    /// Hands a record over if its connection has room now, without
    /// waiting, and returns the future of its outcome, as
    /// [`enqueue`](Self::enqueue) would. Otherwise it sends nothing, counts
    /// nothing, and hands the record back with the reason:
    /// [`TrySendError::Full`] when the record's connection or the producer
    /// is full (try again once records resolve), [`TrySendError::Closed`]
    /// when the producer is closed, [`TrySendError::Invalid`] for an invalid
    /// topic or record.
    ///
    /// ```
    /// use ccloud_kafka_rest::{Client, Producer, Record, TrySendError};
    /// # use ccloud_kafka_rest_emulator::Emulator;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ccloud_kafka_rest::Error> {
    /// # let emulator = Emulator::start_default().await.unwrap();
    /// # let client = Client::builder().with_endpoint(emulator.url()).with_cluster_id(emulator.cluster_id()).build()?;
    /// let producer = Producer::new(client);
    /// match producer.try_send("demo", Record::from_value("event")) {
    ///     Ok(delivery) => assert!(delivery.await?.offset >= 0),
    ///     // No room now: keep the record, or wait for room.
    ///     Err(TrySendError::Full(record)) => drop(producer.send("demo", &record).await?),
    ///     Err(refused) => return Err(refused.into()),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    // The record comes back by value, as it was given: boxing it would cost
    // an allocation per refusal, when refusals come in runs.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&self, topic: &str, record: Record) -> Result<DeliveryFuture, TrySendError> {
        match self.admit_topic(topic, &record) {
            Ok(Admit::Now(delivery)) => Ok(delivery),
            Ok(Admit::Later(..)) => Err(TrySendError::Full(record)),
            Err(error) => Err(TrySendError::refused(error, record)),
        }
    }

    async fn try_enqueue(&self, topic: &str, record: &Record) -> Result<DeliveryFuture, Refusal> {
        match self.admit_topic(topic, record)? {
            Admit::Now(delivery) => Ok(delivery),
            Admit::Later(lane, prepared) => self.admit_later(lane, prepared).await,
        }
    }

    /// Checks and encodes a record for `topic` and hands it over when its
    /// lane has room; otherwise returns it ready to hand over once there is.
    fn admit_topic(&self, topic: &str, record: &Record) -> Result<Admit, Error> {
        // Most records are handed over at once, under the table's read lock;
        // only one that waits for room holds on to its topic's lanes.
        let known = {
            let table = self
                .shared
                .lanes
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match table.get(topic) {
                Some(lanes) => Some(self.admit(lanes, record)?),
                None => None,
            }
        };
        match known {
            Some(admitted) => Ok(admitted),
            None => self.admit(&*self.topic_lanes(topic)?, record),
        }
    }

    /// The lanes of a topic, created on first use.
    fn topic_lanes(&self, topic: &str) -> Result<Arc<TopicLanes>, Error> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(lanes) = shared
            .lanes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
        {
            return Ok(Arc::clone(lanes));
        }
        validate_topic(topic)?;
        let mut table = shared.lanes.write().unwrap_or_else(PoisonError::into_inner);
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let lanes = table.entry(topic.to_owned()).or_insert_with(|| {
            let stats = Arc::new(TopicCounters::new(topic, shared.config.connections));
            shared.stats.add_topic(Arc::clone(&stats));
            Arc::new(TopicLanes {
                topic: topic.to_owned(),
                slots: (0..shared.config.connections)
                    .map(|_| Arc::new(Mutex::new(SlotState::default())))
                    .collect(),
                stats,
            })
        });
        Ok(Arc::clone(lanes))
    }

    /// Checks and encodes a record and hands it to its lane when there is
    /// room; otherwise returns it ready to hand over once there is.
    fn admit(&self, lanes: &TopicLanes, record: &Record) -> Result<Admit, Error> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        record.validate(shared.client.max_record_bytes())?;
        let index = self.route(record);
        // Encoded, checked for room and handed over under the slot's lock:
        // the lane cannot stop meanwhile, and the record's bytes are in its
        // lane's own block.
        let mut slot = lanes.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        lanes.start_lane(&mut slot, index, shared)?;
        let SlotState { lane, encoder } = &mut *slot;
        let lane = lane.as_ref().expect("a running lane");
        let encoded = encode::encode_into(encoder, record);
        let now = Instant::now();
        let config = &shared.config;
        let prepared = Prepared {
            // A record larger than a bound takes all of it.
            bytes: encoded.len().min(config.max_record_room()) as u32,
            encoded,
            // The configuration caps the timeouts far below any overflow.
            deadline: now.checked_add(config.delivery_timeout).unwrap_or(now),
            // Only a queue timeout shorter than the delivery timeout ends
            // the wait first.
            queue_timeout: config
                .queue_timeout
                .filter(|timeout| *timeout < config.delivery_timeout),
            started: now,
        };
        Ok(match lane.shared.try_take(prepared.bytes)? {
            true => Admit::Now(hand_over(lane, prepared)?),
            false => Admit::Later(Arc::clone(lane), prepared),
        })
    }

    /// Waits for room in the record's lane, then hands it over. The lane
    /// does not stop while a caller holds it.
    async fn admit_later(
        &self,
        lane: Arc<LaneHandle>,
        prepared: Prepared,
    ) -> Result<DeliveryFuture, Refusal> {
        // The delivery timeout runs from the call, the wait for room
        // included; a shorter queue timeout, from the call too.
        let queue_deadline = prepared
            .queue_timeout
            .and_then(|timeout| prepared.started.checked_add(timeout));
        let until = queue_deadline.unwrap_or(prepared.deadline);
        match tokio::time::timeout_at(until, lane.shared.take(prepared.bytes)).await {
            Ok(taken) => taken?,
            Err(_) => {
                return Err(match prepared.queue_timeout {
                    Some(timeout) => Refusal::QueueTimeout(timeout),
                    None => Refusal::Error(Error::GaveUp {
                        reason: GiveUpReason::DeadlinePassed,
                        attempts: 0,
                        last_error: None,
                        may_have_been_written: false,
                    }),
                });
            }
        }
        Ok(hand_over(&lane, prepared)?)
    }

    /// The outcome of a record refused before it was handed over.
    fn refused(&self, error: Error) -> DeliveryFuture {
        self.shared.stats.refused();
        DeliveryFuture::resolved(Err(error))
    }

    /// Sends every record of `records` to `topic` and yields their outcomes
    /// in the same order, keeping up to `max_in_flight_records` in flight.
    ///
    /// A failure says which record failed: [`SendAllError::index`] is the
    /// record's index in `records` (0 for the first); successes come in the
    /// same order, so the n-th item is always the outcome of the n-th
    /// record. A record that found no room within the queue timeout is
    /// handed back in its error ([`SendAllError::into_record`]).
    ///
    /// Dropping the stream part way cancels only the records not yet
    /// handed over (see [Cancelling](Self#cancelling)).
    pub fn send_all<'a, S>(
        &'a self,
        topic: &'a str,
        records: S,
    ) -> impl Stream<Item = Result<DeliveryReport, SendAllError>> + 'a
    where
        S: Stream<Item = Record> + 'a,
    {
        SendAll {
            producer: self,
            topic,
            lanes: None,
            records: Some(Box::pin(records)),
            window: VecDeque::new(),
            limit: self.shared.config.max_in_flight_records,
            waiting: None,
            yielded: 0,
        }
    }

    /// Waits until every record handed over so far is resolved (delivered
    /// or failed). Records sent concurrently while waiting are waited for too.
    pub async fn flush(&self) {
        struct Flushing<'a>(&'a Stats);
        impl Drop for Flushing<'_> {
            fn drop(&mut self) {
                self.0.flush_ended();
            }
        }
        self.shared.stats.flush_started();
        let _flushing = Flushing(&self.shared.stats);
        loop {
            let resolved = self.shared.stats.resolved.notified();
            tokio::pin!(resolved);
            resolved.as_mut().enable();
            if self.shared.stats.in_flight() == 0 {
                return;
            }
            resolved.await;
        }
    }

    /// Waits at most `timeout` for every record handed over so far to be
    /// resolved. Returns how many are still unresolved then (0 when all
    /// were); those go on as before.
    pub async fn flush_timeout(&self, timeout: Duration) -> u64 {
        let _ = tokio::time::timeout(timeout, self.flush()).await;
        self.shared.stats.in_flight()
    }

    /// Stops accepting records, ends every stream gracefully and waits until
    /// each record already handed over is delivered or failed. Records sent
    /// after `close` fail with [`Error::Closed`]. Every concurrent call
    /// waits the same way.
    pub async fn close(&self) {
        self.stop_lanes();
        self.lanes_stopped().await;
    }

    /// [`close`](Self::close), waiting at most `timeout`. Records still
    /// unresolved then are resolved at once: those never written fail with
    /// [`Error::Closed`], those that may have been written with an error of
    /// unknown outcome ([`Error::Interrupted`]). Returns how many were
    /// resolved that way.
    pub async fn close_timeout(&self, timeout: Duration) -> u64 {
        self.stop_lanes();
        if tokio::time::timeout(timeout, self.lanes_stopped())
            .await
            .is_ok()
        {
            return 0;
        }
        let unresolved = self.shared.stats.in_flight();
        self.shared.abandon.send_replace(true);
        self.lanes_stopped().await;
        unresolved
    }

    /// Accepts no more records and lets every lane finish and stop.
    fn stop_lanes(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let topics: Vec<Arc<TopicLanes>> = {
            let mut table = self
                .shared
                .lanes
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            table.drain().map(|(_, lanes)| lanes).collect()
        };
        for slot in topics.iter().flat_map(|t| t.slots.iter()) {
            // The lane finishes what it holds, ends its stream and stops.
            if let Some(lane) = &slot.lock().unwrap_or_else(PoisonError::into_inner).lane {
                lane.inbox.close();
            }
        }
    }

    /// Completes once every lane has stopped.
    async fn lanes_stopped(&self) {
        let stats = &self.shared.stats;
        loop {
            let stopped = stats.lane_stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if stats.lanes() == 0 {
                return;
            }
            stopped.await;
        }
    }

    /// A snapshot of the producer's counters: totals, and the same per
    /// topic and connection. Cheap enough to call per record: it reads a
    /// few atomic counters per connection, under no lock the producer's
    /// records wait for, and allocates the lists of topics and
    /// connections.
    pub fn stats(&self) -> ProducerStats {
        let mut stats = self.shared.stats.snapshot();
        let (path, _) = self.shared.client.path().get();
        let now = tokio::time::Instant::now();
        stats.bounded_requests = path.bounded_bytes(now).is_some();
        stats.pace_records_per_s = self
            .shared
            .client
            .pace()
            .rates(now)
            .map(|(records, _)| records as u64);
        stats
    }

    fn route(&self, record: &Record) -> usize {
        let shared = &self.shared;
        let connections = shared.config.connections;
        if connections == 1 {
            return 0;
        }
        let by_key = |key: Option<&Payload>| {
            key.map(|key| {
                let mut hasher = shared.hasher.build_hasher();
                match key {
                    Payload::String(s) => s.as_bytes().hash(&mut hasher),
                    Payload::Binary(b) => b.as_ref().hash(&mut hasher),
                    Payload::Json(j) => j.get().as_bytes().hash(&mut hasher),
                }
                hasher.finish() as usize % connections
            })
        };
        let routed = match shared.config.routing {
            Routing::RoundRobin => None,
            Routing::ByKey => by_key(record.key()),
            Routing::ByPartition => record
                .partition()
                .map(|p| p as usize % connections)
                .or_else(|| by_key(record.key())),
        };
        routed.unwrap_or_else(|| shared.next_lane.fetch_add(1, Ordering::Relaxed) % connections)
    }
}

/// FNV-1a, for the lane table: topic names are short and chosen by the
/// caller, so a simple hash does better than SipHash's resistance to
/// chosen collisions, which the table does not need.
struct TopicHasher(u64);

impl Default for TopicHasher {
    fn default() -> TopicHasher {
        TopicHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for TopicHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The lanes of one topic: one slot per connection, each started when first
/// used and emptied when its lane stops after being idle.
struct TopicLanes {
    topic: String,
    slots: Box<[Arc<LaneSlot>]>,
    /// The counters of its connections, by slot.
    stats: Arc<TopicCounters>,
}

impl TopicLanes {
    /// Starts the lane of a locked slot if none runs.
    fn start_lane(&self, slot: &mut SlotState, index: usize, shared: &Shared) -> Result<(), Error> {
        // A lane whose inbox is closed has stopped (or is stopping after
        // a failure): the slot gets a new one.
        let running = slot
            .lane
            .as_ref()
            .is_some_and(|lane| !lane.inbox.is_closed());
        if !running {
            // Checked under the slot's lock, which `close` takes after
            // setting the flag: no lane starts that `close` would miss.
            if shared.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let context = LaneContext {
                client: shared.client.clone(),
                config: shared.config.clone(),
                stats: shared.stats.clone(),
                abandon: shared.abandon.subscribe(),
                room: Arc::clone(&shared.room),
                connection: Arc::clone(&self.stats.connections[index]),
            };
            let lane = lane::spawn(
                context,
                &self.topic,
                index,
                Arc::downgrade(&self.slots[index]),
            );
            slot.lane = Some(Arc::new(lane));
        }
        Ok(())
    }
}

/// A checked and encoded record on its way to a lane.
struct Prepared {
    encoded: Bytes,
    bytes: u32,
    deadline: Instant,
    /// How long it may wait for room, when that ends before its deadline.
    queue_timeout: Option<Duration>,
    /// When it was given to the producer.
    started: Instant,
}

/// Why a record was not handed over.
enum Refusal {
    Error(Error),
    /// It found no room within the queue timeout.
    QueueTimeout(Duration),
}

impl Refusal {
    /// The record's error; `record` gives the record back when the error
    /// hands it back.
    fn into_error(self, record: impl FnOnce() -> Record) -> Error {
        match self {
            Refusal::Error(error) => error,
            Refusal::QueueTimeout(waited) => Error::QueueFull {
                record: Box::new(record()),
                waited,
            },
        }
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Refusal {
        Refusal::Error(error)
    }
}

enum Admit {
    /// Handed over.
    Now(DeliveryFuture),
    /// The lane is full.
    Later(Arc<LaneHandle>, Prepared),
}

/// Hands a record whose room is taken to its lane. A lane that stopped
/// taking records meanwhile gets its room back, and the record is refused
/// as closed, without having been counted as sent.
fn hand_over(lane: &LaneHandle, prepared: Prepared) -> Result<DeliveryFuture, Error> {
    let bytes = prepared.bytes;
    let mut delivery = None;
    let queued = lane.inbox.push_with(|| {
        let (pending, future) = Pending::new(bytes, Arc::clone(&lane.shared));
        delivery = Some(future);
        machine::Entry::new(pending, prepared.encoded, prepared.deadline)
    });
    match delivery {
        Some(delivery) if queued => Ok(delivery),
        _ => {
            lane.shared.untake(bytes);
            Err(Error::Closed)
        }
    }
}

/// The stream of [`Producer::send_all`]: records are handed over while the
/// window has room, and outcomes are taken from its front only, in order.
/// Outcomes arrive in order on each lane, so waiting on the oldest one costs
/// one wake-up per batch instead of one per record. Every record taken from
/// the input gets one place in the window, in order, so the front's index
/// in the input is the count of outcomes yielded.
struct SendAll<'a, S> {
    producer: &'a Producer,
    topic: &'a str,
    lanes: Option<Result<Arc<TopicLanes>, Error>>,
    records: Option<Pin<Box<S>>>,
    window: VecDeque<DeliveryFuture>,
    limit: usize,
    /// A record waiting for room in its lane.
    waiting: Option<Pin<Box<dyn Future<Output = DeliveryFuture> + Send + 'a>>>,
    /// Outcomes yielded so far.
    yielded: usize,
}

impl<S: Stream<Item = Record>> SendAll<'_, S> {
    /// Hands one record over, or starts waiting for room for it.
    fn admit(&mut self, record: Record) {
        let (producer, topic) = (self.producer, self.topic);
        let lanes = self
            .lanes
            .get_or_insert_with(|| producer.topic_lanes(topic));
        let lanes = match lanes {
            Ok(lanes) => lanes,
            Err(error) => {
                let delivery = producer.refused(error.clone());
                return self.window.push_back(delivery);
            }
        };
        match producer.admit(lanes, &record) {
            Ok(Admit::Now(delivery)) => self.window.push_back(delivery),
            Ok(Admit::Later(lane, prepared)) => {
                // Yields the record's delivery future once it is handed over.
                #[allow(clippy::async_yields_async)]
                let handed_over = async move {
                    match producer.admit_later(lane, prepared).await {
                        Ok(delivery) => delivery,
                        Err(refusal) => producer.refused(refusal.into_error(|| record)),
                    }
                };
                self.waiting = Some(Box::pin(handed_over));
            }
            Err(error) => self.window.push_back(producer.refused(error)),
        }
    }
}

impl<S: Stream<Item = Record>> Stream for SendAll<'_, S> {
    type Item = Result<DeliveryReport, SendAllError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(waiting) = this.waiting.as_mut() {
                match waiting.as_mut().poll(cx) {
                    Poll::Ready(delivery) => {
                        this.waiting = None;
                        this.window.push_back(delivery);
                    }
                    Poll::Pending => break,
                }
            }
            let Some(records) = this.records.as_mut() else {
                break;
            };
            if this.window.len() >= this.limit {
                break;
            }
            match records.as_mut().poll_next(cx) {
                Poll::Ready(Some(record)) => this.admit(record),
                Poll::Ready(None) => this.records = None,
                Poll::Pending => break,
            }
        }
        match this.window.front_mut() {
            Some(front) => match Pin::new(front).poll(cx) {
                Poll::Ready(outcome) => {
                    this.window.pop_front();
                    let index = this.yielded;
                    this.yielded += 1;
                    Poll::Ready(Some(outcome.map_err(|error| SendAllError { index, error })))
                }
                Poll::Pending => Poll::Pending,
            },
            None if this.records.is_none() && this.waiting.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}
