//! The streaming producer: records written as concatenated JSON into long
//! chunked requests, one delivery report back per record, in order.
//!
//! A [`Producer`] keeps, per topic, up to `connections` lanes; each lane
//! holds at most one open stream and bounds the records and bytes it holds.
//! `send` waits while its lane is full, so memory is bounded by the
//! configuration, not by how many records are sent.

mod config;
pub(crate) mod decode;
mod delivery;
mod lane;
mod stats;

pub use config::{OnOutcomeUnknown, ProducerConfig, Routing};
pub use delivery::DeliveryFuture;
pub use stats::ProducerStats;

use crate::client::Client;
use crate::error::Error;
use crate::record::{Payload, Record, validate_topic};
use crate::report::DeliveryReport;
use bytes::Bytes;
use delivery::Pending;
use futures_util::{Stream, StreamExt};
use lane::LaneHandle;
use stats::Stats;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
/// ```
/// use ccloud_kafka_rest::{Client, Producer, Record};
/// # use ccloud_kafka_rest::emulator::Emulator;
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
    /// Per topic, one slot per connection, filled when first used.
    lanes: Mutex<HashMap<String, Vec<Option<LaneHandle>>>>,
    next_lane: AtomicUsize,
    closed: AtomicBool,
    hasher: std::hash::RandomState,
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
                config: Arc::new(config),
                stats: Arc::new(Stats::default()),
                lanes: Mutex::new(HashMap::new()),
                next_lane: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                hasher: std::hash::RandomState::new(),
            }),
        })
    }

    /// Sends a record and waits for its outcome. Waits first for room when
    /// the record's connection is full.
    pub async fn send(&self, topic: &str, record: &Record) -> Result<DeliveryReport, Error> {
        self.enqueue(topic, record).await.await
    }

    /// Hands a record to the producer, waiting only for room, and returns a
    /// future of its outcome. Use it to keep many records in flight from one
    /// task. A record that cannot be sent (invalid topic or record, producer
    /// closed) gets a future that resolves to that error at once.
    ///
    /// Dropping this call's future before it completes (while it waits for
    /// room) is safe: the record is then not handed over and not sent.
    pub async fn enqueue(&self, topic: &str, record: &Record) -> DeliveryFuture {
        match self.try_enqueue(topic, record).await {
            Ok(delivery) => delivery,
            Err(error) => {
                self.shared.stats.sent();
                self.shared.stats.failed();
                DeliveryFuture::resolved(Err(error))
            }
        }
    }

    async fn try_enqueue(&self, topic: &str, record: &Record) -> Result<DeliveryFuture, Error> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        validate_topic(topic)?;
        record.validate(shared.client.max_record_bytes())?;
        let encoded = encode(record)?;
        let deadline = Instant::now() + shared.config.delivery_timeout;
        let index = self.route(record);
        let (sender, records, bytes) = {
            let mut table = shared.lanes.lock().expect("lane table");
            if !table.contains_key(topic) {
                let slots = (0..shared.config.connections).map(|_| None).collect();
                table.insert(topic.to_owned(), slots);
            }
            let slot = &mut table.get_mut(topic).expect("inserted above")[index];
            let lane = slot.get_or_insert_with(|| {
                lane::spawn(
                    shared.client.clone(),
                    topic,
                    index,
                    shared.config.clone(),
                    shared.stats.clone(),
                )
            });
            (
                lane.sender.clone(),
                lane.records.clone(),
                lane.bytes.clone(),
            )
        };
        let byte_permits = encoded.len().min(shared.config.max_in_flight_bytes) as u32;
        let permits = (
            records.acquire_owned().await.map_err(|_| Error::Closed)?,
            bytes
                .acquire_many_owned(byte_permits)
                .await
                .map_err(|_| Error::Closed)?,
        );
        let (pending, delivery) = Pending::new(encoded, deadline, shared.stats.clone(), permits);
        // The permits guarantee room in the channel; if the lane is gone the
        // record resolves as closed when `pending` is dropped.
        let _ = sender.send(pending).await;
        Ok(delivery)
    }

    /// Sends every record of `records` to `topic` and yields their outcomes
    /// in the same order, keeping up to `max_in_flight_records` in flight.
    pub fn send_all<'a, S>(
        &'a self,
        topic: &'a str,
        records: S,
    ) -> impl Stream<Item = Result<DeliveryReport, Error>> + 'a
    where
        S: Stream<Item = Record> + 'a,
    {
        let window = self.shared.config.max_in_flight_records;
        // Enqueue one record at a time (waiting for room), then let up to
        // `window` delivery futures run while the next ones are enqueued.
        #[allow(clippy::async_yields_async)]
        let enqueued =
            records.then(move |record| async move { self.enqueue(topic, &record).await });
        enqueued.buffered(window)
    }

    /// Waits until every record handed over so far is resolved (delivered
    /// or failed). Records sent concurrently while waiting are waited for too.
    pub async fn flush(&self) {
        loop {
            let resolved = self.shared.stats.resolved.notified();
            tokio::pin!(resolved);
            resolved.as_mut().enable();
            if self.shared.stats.snapshot().in_flight == 0 {
                return;
            }
            resolved.await;
        }
    }

    /// Stops accepting records, ends every stream gracefully and waits until
    /// each record already handed over is delivered or failed. Records sent
    /// after `close` fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let lanes: Vec<LaneHandle> = {
            let mut table = self.shared.lanes.lock().expect("lane table");
            table
                .drain()
                .flat_map(|(_, slots)| slots.into_iter().flatten())
                .collect()
        };
        for lane in lanes {
            // Closing the queue lets the lane finish what it holds, end its
            // stream and stop.
            drop(lane.sender);
            let _ = lane.task.await;
        }
    }

    /// A snapshot of the producer's counters.
    pub fn stats(&self) -> ProducerStats {
        self.shared.stats.snapshot()
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

/// The record as the server reads it.
fn encode(record: &Record) -> Result<Bytes, Error> {
    let mut buffer = Vec::with_capacity(64 + record.size() * 4 / 3);
    serde_json::to_writer(&mut buffer, record)
        .map_err(|e| Error::InvalidInput(crate::error::InvalidInput::Json(e.to_string())))?;
    Ok(Bytes::from(buffer))
}
