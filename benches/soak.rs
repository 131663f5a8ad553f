//! A soak run of the streaming producer over real loopback sockets, through
//! outages, cut connections and in-band retriable errors, checked against
//! what the emulator stored.
//!
//! ```text
//! cargo bench --bench soak                                   # 10 minutes
//! cargo bench --bench soak -- --seconds 20 --outage-ms 2000 --outage-every-ms 6000
//! ```
//!
//! The emulator runs on 127.0.0.1 on its own runtime thread, with a fault
//! plan of periodic outage windows (the port refuses connections and open
//! streams drop), random cuts after a record is appended, and in-band
//! 429/42901/408 (not written) and 500/50003 (written half of the time)
//! errors. The producer, on another runtime, sends records at a bounded rate
//! with a bounded number unresolved at once for `--seconds`.
//!
//! Every record's value starts with its number, so at the end each outcome
//! is checked against the emulator's log: a delivered record must be stored
//! at the partition and offset of its report, once unless the report says
//! `possibly_duplicated`; a record failed with an error whose class says it
//! was not written (`RetryClass::Retriable` or `Terminal`) must not be stored.
//!
//! No wait is unbounded. A record unresolved `--delivery-timeout-ms` plus 5 s
//! after it was handed over counts as overdue and stops holding its place in
//! the in-flight bound (so that sending goes on); after the run the records
//! still unresolved get `--drain-ms` more and are then counted as unresolved.
//! `close()` gets `--close-timeout-ms`. The exit status is non-zero when an
//! invariant is broken (unresolved or wrongly stored records, a hung close).
//!
//! Peak RSS covers both sides: the emulator keeps every record in memory.

use std::collections::BTreeMap;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ccloud_kafka_rest::{Client, Error, ErrorScope, Producer, ProducerConfig, Record, RetryClass};
use ccloud_kafka_rest_emulator::{Emulator, FaultPlan};
use clap::Parser;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, timeout, timeout_at};

const TOPIC: &str = "soak";
const PARTITIONS: i32 = 3;
/// How far past its delivery timeout a record may stay unresolved before it
/// counts as overdue.
const OVERDUE_GRACE: Duration = Duration::from_secs(5);
/// How often the sender hands over a batch of records.
const TICK: Duration = Duration::from_millis(10);
/// How often progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A soak run of the producer against the emulator on 127.0.0.1.
#[derive(Debug, Parser)]
struct Args {
    /// How long records are sent, in seconds.
    #[arg(long, default_value_t = 600)]
    seconds: u64,

    /// Length of each outage, in milliseconds (0: none).
    #[arg(long, default_value_t = 2000)]
    outage_ms: u64,

    /// Time from the start of the run to the first outage, and between the
    /// starts of outages, in milliseconds.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    outage_every_ms: u64,

    /// Records handed over per second, at most.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,

    /// Records handed over and not yet resolved (nor overdue), at most.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    in_flight: u64,

    /// Producer connections.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    connections: u64,

    /// Bytes of each record's value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,

    /// Per appended record, the probability of cutting the connection before
    /// its report.
    #[arg(long, default_value_t = 0.0005)]
    cut_probability: f64,

    /// Per record, the probability of an in-band error (429, 42901, 408, 500
    /// or 50003).
    #[arg(long, default_value_t = 0.002)]
    error_rate: f64,

    /// Seed of the emulator's fault decisions.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// The producer's delivery timeout, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    delivery_timeout_ms: u64,

    /// The producer's attempts per record.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// How long records still unresolved after the run may take, in
    /// milliseconds. Default: the delivery timeout plus 5 s.
    #[arg(long)]
    drain_ms: Option<u64>,

    /// How long `close()` may take, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    close_timeout_ms: u64,

    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What became of one record.
#[derive(Debug, Clone)]
enum State {
    Pending,
    Delivered {
        partition: i32,
        offset: i64,
        possibly_duplicated: bool,
    },
    Failed {
        kind: String,
        class: RetryClass,
    },
    Unresolved,
}

struct Slot {
    /// When it was handed over, in milliseconds from the start.
    sent_ms: u64,
    state: State,
}

#[derive(Default)]
struct Counters {
    overdue: AtomicU64,
    enqueue_timeouts: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A short name for an error's kind, with its code where it has one.
fn kind(error: &Error) -> String {
    match error {
        Error::Api(api) => match (api.scope == ErrorScope::Record, api.error_code) {
            (true, Some(code)) => format!("Api in-band {code}"),
            (false, Some(code)) => format!("Api HTTP {} ({code})", api.status),
            (_, None) => format!("Api HTTP {}", api.status),
        },
        Error::GaveUp { last_error, .. } => format!(
            "GaveUp (last: {})",
            last_error
                .as_deref()
                .map_or_else(|| "none".to_owned(), kind)
        ),
        Error::Interrupted(_) => "Interrupted".into(),
        Error::Closed => "Closed".into(),
        Error::Transport(e) if e.is_connect() => "Transport (connect)".into(),
        Error::Transport(_) => "Transport".into(),
        Error::Decode { .. } => "Decode".into(),
        Error::InvalidInput(_) => "InvalidInput".into(),
        Error::Config(_) => "Config".into(),
        Error::Token(_) => "Token".into(),
        _ => "other".into(),
    }
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The record number at the start of a stored value.
fn record_id(value: Option<&[u8]>) -> Option<usize> {
    let value = value?;
    let end = value.iter().position(|&b| b == b' ')?;
    std::str::from_utf8(&value[..end]).ok()?.parse().ok()
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn outage_windows(args: &Args) -> Vec<(Duration, Duration)> {
    if args.outage_ms == 0 {
        return Vec::new();
    }
    let every = Duration::from_millis(args.outage_every_ms);
    // Only windows that begin while records are being sent.
    let count = ((args.seconds * 1000).saturating_sub(1) / args.outage_every_ms) as u32;
    FaultPlan::new(0)
        .with_periodic_outages(every, every, Duration::from_millis(args.outage_ms), count)
        .outages
}

/// Runs the soak; true when every invariant held.
fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let windows = outage_windows(args);
    let plan = FaultPlan {
        seed: args.seed,
        cut_probability: args.cut_probability,
        record_error_rate: args.error_rate,
        record_error_codes: vec![429, 42901, 408, 500, 50003],
        ..FaultPlan::new(args.seed).with_outages(windows.clone())
    };
    // The emulator's own runtime thread: its work is never queued behind the
    // producer's.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulator")
        .enable_all()
        .build()?;
    let emulator = server.block_on(
        Emulator::builder()
            .with_topic(TOPIC, PARTITIONS)
            .with_faults(plan)
            .start(),
    )?;
    let started = Instant::now();
    let client = Client::builder()
        .with_endpoint(emulator.url())
        .with_cluster_id(emulator.cluster_id())
        .build()?;
    let config = ProducerConfig::default()
        .with_connections(args.connections as usize)
        .with_delivery_timeout(Duration::from_millis(args.delivery_timeout_ms))
        .with_max_attempts(args.max_attempts);
    let producer = Producer::with_config(client, config)?;

    println!(
        "soak: {} s at <= {} records/s, <= {} in flight, {} connection(s), {} outage(s) of {} ms every {} ms, cut p={}, error rate {}, seed {}",
        args.seconds,
        args.rate,
        args.in_flight,
        args.connections,
        windows.len(),
        args.outage_ms,
        args.outage_every_ms,
        args.cut_probability,
        args.error_rate,
        args.seed
    );

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("producer")
        .enable_all()
        .build()?;
    let slots: Arc<Mutex<Vec<Slot>>> = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(Counters::default());
    let drain = Duration::from_millis(
        args.drain_ms
            .unwrap_or(args.delivery_timeout_ms + OVERDUE_GRACE.as_millis() as u64),
    );
    let (send_elapsed, close_result) = client_rt.block_on(async {
        let end = started + Duration::from_secs(args.seconds);
        let drain_deadline = end + drain;
        let overdue_after = Duration::from_millis(args.delivery_timeout_ms) + OVERDUE_GRACE;
        let permits = Arc::new(Semaphore::new(args.in_flight as usize));
        let mut waiters = JoinSet::new();
        let padding = "x".repeat(args.value_size);
        let per_tick = args.rate as f64 * TICK.as_secs_f64();
        let mut owed = 0.0;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_progress = started + PROGRESS_EVERY;
        let mut id = 0usize;
        'send: while Instant::now() < end {
            tick.tick().await;
            while waiters.try_join_next().is_some() {}
            owed += per_tick;
            while owed >= 1.0 {
                owed -= 1.0;
                let Ok(Ok(permit)) = timeout_at(end, Arc::clone(&permits).acquire_owned()).await
                else {
                    break 'send;
                };
                let value = format!("{id} {padding}");
                let record = Record::from_value(value).with_key(format!("k{id}"));
                let Ok(delivery) = timeout_at(end, producer.enqueue(TOPIC, &record)).await else {
                    counters.enqueue_timeouts.fetch_add(1, Ordering::Relaxed);
                    break 'send;
                };
                let sent_at = Instant::now();
                lock(&slots).push(Slot {
                    sent_ms: (sent_at - started).as_millis() as u64,
                    state: State::Pending,
                });
                let (slots, counters) = (Arc::clone(&slots), Arc::clone(&counters));
                waiters.spawn(async move {
                    let mut delivery = pin!(delivery);
                    let mut permit = Some(permit);
                    let overdue_at = (sent_at + overdue_after).min(drain_deadline);
                    let outcome = match timeout_at(overdue_at, delivery.as_mut()).await {
                        Ok(outcome) => Some(outcome),
                        Err(_) => {
                            counters.overdue.fetch_add(1, Ordering::Relaxed);
                            // Sending goes on without this record's place.
                            drop(permit.take());
                            timeout_at(drain_deadline, delivery).await.ok()
                        }
                    };
                    let state = match outcome {
                        None => State::Unresolved,
                        Some(Ok(report)) => State::Delivered {
                            partition: report.partition,
                            offset: report.offset,
                            possibly_duplicated: report.possibly_duplicated,
                        },
                        Some(Err(error)) => State::Failed {
                            kind: kind(&error),
                            class: error.retry_class(),
                        },
                    };
                    if let Some(slot) = lock(&slots).get_mut(id) {
                        slot.state = state;
                    }
                    drop(permit);
                });
                id += 1;
            }
            if Instant::now() >= next_progress {
                next_progress += PROGRESS_EVERY;
                let stats = producer.stats();
                eprintln!(
                    "[{:>4} s] sent {} delivered {} failed {} in flight {} overdue {} listening {}",
                    started.elapsed().as_secs(),
                    id,
                    stats.delivered,
                    stats.failed,
                    stats.in_flight,
                    counters.overdue.load(Ordering::Relaxed),
                    emulator.is_listening()
                );
            }
        }
        let send_elapsed = started.elapsed();
        eprintln!(
            "sending stopped after {:.1} s; waiting up to {} ms for unresolved records",
            send_elapsed.as_secs_f64(),
            drain.as_millis()
        );
        // Every waiter ends by the drain deadline; the margin is for scheduling.
        let drained = timeout_at(drain_deadline + Duration::from_secs(1), async {
            while waiters.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            waiters.abort_all();
        }
        let close_started = Instant::now();
        let closed = timeout(
            Duration::from_millis(args.close_timeout_ms),
            producer.close(),
        )
        .await
        .map(|()| close_started.elapsed());
        (send_elapsed, closed)
    });
    let stats = producer.stats();
    drop(producer);
    // Lane tasks of a hung producer must not hold the process.
    client_rt.shutdown_timeout(Duration::from_secs(2));

    let fault_stats = emulator.fault_stats();
    let stored = emulator.records(TOPIC);
    let slots = std::mem::take(&mut *lock(&slots));
    let report = Report::new(&slots, &stored, &windows);
    let ok = report.print(
        args,
        &slots,
        &counters,
        send_elapsed,
        close_result,
        started.elapsed(),
    );
    println!("producer stats: {stats:?}");
    println!("emulator faults: {fault_stats:?}");
    println!("peak RSS (VmHWM): {}", peak_rss());
    // The timer must be made on the emulator's runtime.
    server.block_on(async {
        let _ = timeout(Duration::from_secs(5), emulator.shutdown()).await;
    });
    server.shutdown_timeout(Duration::from_secs(2));
    Ok(ok)
}

/// The checks of the outcomes against the log.
#[derive(Default)]
struct Report {
    delivered: u64,
    possibly_duplicated: u64,
    /// Delivered records stored once, more than once, or not at all.
    stored_once: u64,
    stored_more: u64,
    stored_more_unflagged: u64,
    delivered_missing: u64,
    /// Delivered records whose report names a position holding another record.
    wrong_position: u64,
    /// Failures by kind and class: count, and how many are in the log.
    failed: BTreeMap<(String, String), (u64, u64)>,
    /// Failed as not written (class Retriable or Terminal) but in the log.
    not_written_but_stored: u64,
    unresolved: u64,
    unresolved_during_outage: u64,
    unresolved_first_ms: Option<u64>,
    unresolved_last_ms: Option<u64>,
    stored_unknown: u64,
}

impl Report {
    fn new(
        slots: &[Slot],
        stored: &[ccloud_kafka_rest_emulator::StoredRecord],
        windows: &[(Duration, Duration)],
    ) -> Report {
        let mut copies = vec![0u32; slots.len()];
        let mut at: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        let mut report = Report::default();
        for record in stored {
            match record_id(record.value.as_deref()) {
                Some(id) if id < copies.len() => {
                    copies[id] += 1;
                    at.insert((record.partition, record.offset), id);
                }
                _ => report.stored_unknown += 1,
            }
        }
        let in_outage = |ms: u64| {
            let t = Duration::from_millis(ms);
            windows.iter().any(|&(start, end)| start <= t && t < end)
        };
        for (id, slot) in slots.iter().enumerate() {
            let n = copies[id];
            match &slot.state {
                State::Delivered {
                    partition,
                    offset,
                    possibly_duplicated,
                } => {
                    report.delivered += 1;
                    report.possibly_duplicated += u64::from(*possibly_duplicated);
                    match n {
                        0 => report.delivered_missing += 1,
                        1 => report.stored_once += 1,
                        _ => {
                            report.stored_more += 1;
                            report.stored_more_unflagged += u64::from(!possibly_duplicated);
                        }
                    }
                    if at.get(&(*partition, *offset)) != Some(&id) {
                        report.wrong_position += 1;
                    }
                }
                State::Failed { kind, class } => {
                    let entry = report
                        .failed
                        .entry((kind.clone(), format!("{class:?}")))
                        .or_default();
                    entry.0 += 1;
                    entry.1 += u64::from(n > 0);
                    if n > 0 && *class != RetryClass::OutcomeUnknown {
                        report.not_written_but_stored += 1;
                    }
                }
                State::Unresolved | State::Pending => {
                    report.unresolved += 1;
                    report.unresolved_during_outage += u64::from(in_outage(slot.sent_ms));
                    report.unresolved_first_ms.get_or_insert(slot.sent_ms);
                    report.unresolved_last_ms = Some(slot.sent_ms);
                }
            }
        }
        report
    }

    /// Prints the summary; true when every invariant held.
    fn print(
        &self,
        args: &Args,
        slots: &[Slot],
        counters: &Counters,
        send_elapsed: Duration,
        close: Result<Duration, tokio::time::error::Elapsed>,
        elapsed: Duration,
    ) -> bool {
        let failed: u64 = self.failed.values().map(|(n, _)| n).sum();
        println!();
        println!("records sent (handed over): {}", slots.len());
        println!(
            "  enqueue timed out at the end of the run: {}",
            counters.enqueue_timeouts.load(Ordering::Relaxed)
        );
        println!("delivered: {}", self.delivered);
        println!("  with possibly_duplicated: {}", self.possibly_duplicated);
        println!("  in the log exactly once: {}", self.stored_once);
        println!(
            "  in the log more than once: {} (without possibly_duplicated: {}, must be 0)",
            self.stored_more, self.stored_more_unflagged
        );
        println!("  not in the log: {} (must be 0)", self.delivered_missing);
        println!(
            "  report names another record's position: {} (must be 0)",
            self.wrong_position
        );
        println!("failed: {failed}");
        for ((kind, class), (n, stored)) in &self.failed {
            println!("  {kind} [{class}]: {n} ({stored} in the log)");
        }
        println!(
            "failed as not written (Retriable/Terminal) but in the log: {} (must be 0)",
            self.not_written_but_stored
        );
        println!(
            "overdue (unresolved {} ms after hand-over): {}",
            args.delivery_timeout_ms + OVERDUE_GRACE.as_millis() as u64,
            counters.overdue.load(Ordering::Relaxed)
        );
        match (self.unresolved_first_ms, self.unresolved_last_ms) {
            (Some(first), Some(last)) => println!(
                "unresolved after the drain: {} (must be 0): sent from {:.1} s to {:.1} s, {} of them during an outage",
                self.unresolved,
                first as f64 / 1000.0,
                last as f64 / 1000.0,
                self.unresolved_during_outage
            ),
            _ => println!("unresolved after the drain: 0"),
        }
        println!("stored records of no record sent: {}", self.stored_unknown);
        let hung = match close {
            Ok(took) => {
                println!("close(): returned after {} ms", took.as_millis());
                false
            }
            Err(_) => {
                println!(
                    "close(): HUNG (no return within {} ms)",
                    args.close_timeout_ms
                );
                true
            }
        };
        println!(
            "elapsed: {:.1} s ({:.1} s sending)",
            elapsed.as_secs_f64(),
            send_elapsed.as_secs_f64()
        );
        let ok = self.stored_more_unflagged == 0
            && self.delivered_missing == 0
            && self.wrong_position == 0
            && self.not_written_but_stored == 0
            && self.unresolved == 0
            && !hung;
        println!(
            "verdict: {}",
            if ok {
                "every invariant held"
            } else {
                "INVARIANTS BROKEN (see the lines marked must be 0, and close())"
            }
        );
        ok
    }
}
