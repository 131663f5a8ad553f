//! A simulated clock and server for a lane's [`Machine`]: no sockets, no
//! sleeping. A seed decides everything: the schedule of records and faults,
//! the server's answers and the machine's own jitter, so a failing seed
//! reproduces exactly. Invariants are checked after every step.

use super::{Action, Entry, Event, Machine, Note, Outcome, Settings, Ticket};
use crate::error::RetryClass;
use crate::error::TokenError;
use crate::error::{ApiError, Error, ErrorScope};
use crate::http::path::PathSettings;
use crate::retry::pace::{ASK_AGAIN, PaceState};
use crate::retry::policy::{Guarantee, MAX_RETRY_AFTER, RetryPolicy};
use crate::wire::report::DeliveryReport;
use bytes::Bytes;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

/// Bytes of a record in the simulation: its id, zero-padded.
const RECORD_BYTES: usize = 16;
const MS: Duration = Duration::from_millis(1);

/// How a record ended, as its ticket saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Told {
    Delivered {
        duplicate: bool,
    },
    /// A failure that says the record was not written.
    NotWritten,
    /// A failure that says the record may have been written.
    Unknown,
}

#[derive(Debug)]
struct RecordState {
    handed_at: Duration,
    /// Records held ahead of it when it was handed over.
    ahead: usize,
    deadline: Duration,
    told: Option<(Duration, Told)>,
    /// The error, for reports.
    error: Option<String>,
}

#[derive(Default)]
struct Ledger {
    records: Vec<RecordState>,
    now: Duration,
    violations: Vec<String>,
    /// Records resolved since the simulation last looked.
    just_resolved: Vec<usize>,
}

/// The simulation's ticket: it writes the outcome into the ledger.
pub(super) struct SimTicket {
    id: usize,
    ledger: Rc<RefCell<Ledger>>,
    maybe_written: bool,
    resolved: bool,
}

impl Ticket for SimTicket {
    fn set_maybe_written(&mut self, maybe: bool) {
        self.maybe_written = maybe;
    }

    fn resolve(mut self, outcome: Outcome) {
        self.resolved = true;
        let told = match &outcome {
            Ok(report) => Told::Delivered {
                duplicate: report.possibly_duplicated,
            },
            Err(e) if e.retry_class() == RetryClass::OutcomeUnknown => Told::Unknown,
            Err(_) => Told::NotWritten,
        };
        let error = outcome.as_ref().err().map(|e| e.to_string());
        self.tell(told, error);
    }
}

impl SimTicket {
    fn tell(&self, told: Told, error: Option<String>) {
        let mut ledger = self.ledger.borrow_mut();
        let now = ledger.now;
        let record = &mut ledger.records[self.id];
        if let Some((at, before)) = record.told {
            let message = format!(
                "record {} resolved twice: {before:?} at {at:?}, {told:?} at {now:?}",
                self.id
            );
            ledger.violations.push(message);
            return;
        }
        record.told = Some((now, told));
        record.error = error;
        ledger.just_resolved.push(self.id);
    }
}

/// Dropped unresolved (the lane stopped): the outcome a real ticket gives.
impl Drop for SimTicket {
    fn drop(&mut self) {
        if !self.resolved {
            let told = if self.maybe_written {
                Told::Unknown
            } else {
                Told::NotWritten
            };
            self.tell(told, Some("dropped unresolved".into()));
        }
    }
}

/// What the server does at a time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Mode {
    Healthy,
    /// Connections refused; open ones cut.
    Down,
    /// Requests answered with this HTTP status (and Retry-After seconds).
    Refusing {
        status: u16,
        retry_after: Option<u64>,
    },
    /// No credentials to be had: the token endpoint fails.
    TokenFailing {
        retriable: bool,
    },
    /// Reports come late, by up to this long.
    SlowReports(Duration),
    /// Streams accepted now never report and never end, until the mode
    /// ends (the server then resets them).
    Silent,
    /// Streams accepted now stop reading their body.
    NotReading,
    /// Records are refused in band with this code, at this rate in 100.
    InBand {
        code: i32,
        percent: u64,
    },
    /// Connections are cut after a few records, at this rate in 100.
    Cutting {
        percent: u64,
    },
    /// An intermediary buffers each request body before passing it on,
    /// refusing a body past `cap` bytes with an HTML 413 as a whole.
    Buffering {
        cap: Option<usize>,
    },
    /// An intermediary passes the headers at once but holds the reports
    /// until the request body ended.
    HoldingReports,
    /// An intermediary passes records on (the server stores them) but
    /// answers HTML 504 after this long without the server's headers.
    GatewayTimeout(Duration),
    /// The server limits records to this many per second, as the REST
    /// Proxy's limiter does (about a second of burst, none stored at
    /// first): a record over the limit gets an in-band 429 and the stream
    /// goes on.
    RateLimited {
        per_s: u32,
    },
}

impl Mode {
    fn healthy(self) -> bool {
        matches!(self, Mode::Healthy)
    }
}

/// Something the schedule makes happen.
#[derive(Clone, Debug)]
pub(super) enum Scheduled {
    Record {
        deadline: Duration,
    },
    Mode(Mode),
    Close,
    Abandon,
    /// The runtime shuts down: the machine is dropped.
    Shutdown,
}

/// Things the server does later.
#[derive(Debug)]
enum ServerEvent {
    Deliver(u64, Event),
}

struct SimStream {
    mode_at_open: Mode,
    /// Records an intermediary holds, and their bytes: the body's, or
    /// their reports.
    held: Vec<usize>,
    held_bytes: usize,
    held_reports: Vec<Outcome>,
    /// Records the body carried.
    records: usize,
    /// The credentials it was sent with expire then.
    credentials_until: Option<Duration>,
    last_report_at: Duration,
    body_ended: bool,
    /// The connection is gone; nothing more comes from it.
    dead: bool,
    cut_after: Option<usize>,
}

/// The settings and schedule of one run.
pub(super) struct Plan {
    pub(super) seed: u64,
    pub(super) settings: Settings,
    schedule: Vec<(Duration, Scheduled)>,
    max_held: usize,
    /// Credentials expire this long after each request fetched them.
    token_lifetime: Option<Duration>,
    /// Every record is small, none larger than a chunk.
    small_records: bool,
    /// A rate-limited server starts with a second of burst in store, as
    /// one does after an idle while.
    full_bucket: bool,
}

impl Plan {
    /// The same plan with small records only.
    pub(super) fn with_small_records(mut self) -> Plan {
        self.small_records = true;
        self
    }

    /// The same plan with the server's rate limiter full at the start.
    pub(super) fn with_full_bucket(mut self) -> Plan {
        self.full_bucket = true;
        self
    }
}

/// Settings drawn for a seed: durations from milliseconds to hours.
pub(super) fn plan(seed: u64, events: usize) -> Plan {
    let mut rng = fastrand::Rng::with_seed(seed);
    let log_uniform = |rng: &mut fastrand::Rng, low: Duration, high: Duration| {
        let (low, high) = (low.as_secs_f64().ln(), high.as_secs_f64().ln());
        Duration::from_secs_f64((low + (high - low) * rng.f64()).exp())
    };
    let backoff_min = log_uniform(&mut rng, MS, Duration::from_millis(500));
    let backoff_max = backoff_min.max(log_uniform(&mut rng, 10 * MS, Duration::from_secs(20)));
    let settings = Settings {
        chunk_bytes: RECORD_BYTES * rng.usize(1..8),
        chunk_capacity: RECORD_BYTES * 8,
        linger: if rng.bool() {
            Duration::ZERO
        } else {
            log_uniform(&mut rng, MS, Duration::from_millis(200))
        },
        idle_timeout: log_uniform(&mut rng, 10 * MS, Duration::from_secs(60)),
        max_stream_age: log_uniform(&mut rng, 10 * MS, Duration::from_secs(3600)),
        request_records: (rng.u8(..4) == 0).then(|| rng.usize(1..20)),
        request_bytes: (rng.u8(..4) == 0).then(|| RECORD_BYTES * rng.usize(1..40)),
        path: PathSettings {
            // Short enough to matter within a run, long enough that hours
            // of silence do not take millions of steps.
            buffering_check: log_uniform(&mut rng, 100 * MS, Duration::from_secs(5)),
            report_stall: (rng.u8(..4) > 0)
                .then(|| log_uniform(&mut rng, 100 * MS, Duration::from_secs(5))),
            heartbeat: log_uniform(&mut rng, Duration::from_secs(1), Duration::from_secs(20)),
            fallback_bytes: RECORD_BYTES * rng.usize(1..64),
            fallback_age: log_uniform(&mut rng, MS, Duration::from_secs(1)),
            fallback_hold: log_uniform(&mut rng, 10 * MS, Duration::from_secs(1200)),
        },
        strict_order: rng.u8(..) < 40,
        policy: RetryPolicy {
            max_attempts: rng.u32(1..12),
            backoff_min,
            backoff_max,
            guarantee: if rng.u8(..) < 50 {
                Guarantee::AtMostOnce
            } else {
                Guarantee::AtLeastOnce
            },
        },
    };
    let mut schedule = Vec::new();
    let mut t = Duration::ZERO;
    let timeout = log_uniform(&mut rng, 50 * MS, Duration::from_secs(1800));
    let mut records = 0;
    while schedule.len() < events {
        t += log_uniform(
            &mut rng,
            Duration::from_micros(100),
            Duration::from_secs(30),
        );
        let event = match rng.u8(..100) {
            0..60 => {
                records += 1;
                // Most records share the lane's timeout; some do not.
                let deadline = if rng.u8(..10) == 0 {
                    log_uniform(&mut rng, MS, Duration::from_secs(3600))
                } else {
                    timeout
                };
                Scheduled::Record { deadline }
            }
            60..80 => Scheduled::Mode(Mode::Healthy),
            _ => {
                let mode = match rng.u8(..13) {
                    0 => Mode::Down,
                    1 => Mode::Refusing {
                        status: [401, 429, 500, 503, 404][rng.usize(..5)],
                        retry_after: match rng.u8(..4) {
                            0 => None,
                            1 => Some(u64::MAX),
                            _ => Some(rng.u64(0..120)),
                        },
                    },
                    2 => Mode::TokenFailing {
                        retriable: rng.u8(..4) > 0,
                    },
                    3 => Mode::SlowReports(log_uniform(&mut rng, MS, Duration::from_secs(600))),
                    4 => Mode::Silent,
                    5 => Mode::NotReading,
                    9 => Mode::Buffering {
                        cap: rng.bool().then(|| RECORD_BYTES * rng.usize(1..64)),
                    },
                    10 => Mode::HoldingReports,
                    11 => Mode::GatewayTimeout(log_uniform(
                        &mut rng,
                        10 * MS,
                        Duration::from_secs(60),
                    )),
                    12 => Mode::RateLimited {
                        per_s: log_uniform(&mut rng, MS, Duration::from_secs(50_000)).as_secs()
                            as u32
                            + 1,
                    },
                    6 => Mode::InBand {
                        code: [429, 42901, 408, 500, 50003, 50302, 40403, 40002][rng.usize(..8)],
                        percent: rng.u64(1..100),
                    },
                    _ => Mode::Cutting {
                        percent: rng.u64(1..100),
                    },
                };
                // Outages from milliseconds to hours.
                let length = log_uniform(&mut rng, MS, Duration::from_secs(4 * 3600));
                schedule.push((t, Scheduled::Mode(mode)));
                t += length;
                Scheduled::Mode(Mode::Healthy)
            }
        };
        schedule.push((t, event));
    }
    let _ = records;
    let end = match rng.u8(..10) {
        0 => Scheduled::Abandon,
        1 => Scheduled::Shutdown,
        _ => Scheduled::Close,
    };
    t += log_uniform(&mut rng, MS, Duration::from_secs(60));
    schedule.push((t, end));
    Plan {
        seed,
        settings,
        schedule,
        max_held: rng.usize(1..64),
        token_lifetime: (rng.u8(..4) == 0)
            .then(|| log_uniform(&mut rng, Duration::from_secs(60), Duration::from_secs(7200))),
        small_records: false,
        full_bucket: false,
    }
}

/// A plan written by hand: these settings, these events at these times.
pub(super) fn scripted(
    settings: Settings,
    max_held: usize,
    events: Vec<(Duration, Scheduled)>,
) -> Plan {
    Plan {
        seed: 1,
        settings,
        schedule: events,
        max_held,
        token_lifetime: None,
        small_records: false,
        full_bucket: false,
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub(super) struct Summary {
    pub(super) steps: usize,
    pub(super) records: usize,
    pub(super) delivered: usize,
    /// Each record's outcome, when, and its error.
    pub(super) told: Vec<(Duration, Told, Option<String>)>,
    pub(super) stored: Vec<u32>,
    /// Retries told of in the machine's notes.
    pub(super) retries_noted: u64,
    /// What the machine counted of the path: buffering detected, requests
    /// shrunk after a 413, bodies ended for lack of reports.
    pub(super) buffering_detected: u64,
    pub(super) requests_shrunk: u64,
    pub(super) stalled_bodies: u64,
    /// Chunks of whitespace only the server read.
    pub(super) heartbeats: u64,
    /// Requests the server saw, and the most records one carried.
    pub(super) requests: u64,
    pub(super) most_records_per_request: usize,
    /// Attempts refused for rate, as the machine counted them.
    pub(super) throttled: u64,
    /// When the server read the first record, and sent the last report of
    /// a delivered record.
    pub(super) first_read: Option<Duration>,
    pub(super) last_delivered: Option<Duration>,
}

struct Sim {
    plan_seed: u64,
    base: Instant,
    now: Duration,
    rng: fastrand::Rng,
    machine: Option<Machine<SimTicket>>,
    ledger: Rc<RefCell<Ledger>>,
    /// Times the server stored each record.
    stored: Vec<u32>,
    events: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    event_store: HashMap<usize, ServerEvent>,
    event_seq: u64,
    streams: HashMap<u64, SimStream>,
    mode: Mode,
    /// The server has been healthy since then, and has asked nobody to
    /// wait past it.
    healthy_since: Option<Duration>,
    /// Records handed over and not yet resolved, by deadline.
    unresolved: BTreeSet<(Duration, usize)>,
    max_held: usize,
    /// Records waiting for room, as callers would.
    queued: Vec<Duration>,
    steps: usize,
    /// The schedule gave up on the records (close with a timeout, or
    /// shutdown): they may end without delivery.
    ended: bool,
    /// The lane stopped when idle; the next record starts one.
    retired: bool,
    settings: Settings,
    trace: bool,
    /// The end of the longest wait the server asked for.
    asked_until: Duration,
    /// The largest record's bytes.
    max_record: usize,
    /// Retries the machine counted, and those its notes told of, while no
    /// note was dropped.
    retries_counted: u64,
    retries_noted: u64,
    notes_dropped: bool,
    counted: super::Counters,
    heartbeats: u64,
    requests: u64,
    most_records_per_request: usize,
    token_lifetime: Option<Duration>,
    /// The client's pace, as the lane's driver keeps it, and when the
    /// driver asks it again.
    pace: PaceState,
    pace_wake: Option<Duration>,
    /// The server's rate limiter: records in store, and when last counted.
    bucket: (f64, Duration),
    first_read: Option<Duration>,
    last_delivered: Option<Duration>,
}

/// Runs one plan; returns what it saw or the first broken invariant.
pub(super) fn run(plan: Plan) -> Result<Summary, String> {
    let Plan {
        seed,
        settings,
        schedule,
        max_held,
        token_lifetime,
        small_records,
        full_bucket,
    } = plan;
    let base = Instant::now();
    let mut sim = Sim {
        plan_seed: seed,
        base,
        now: Duration::ZERO,
        rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
        machine: Some(Machine::new(settings.clone(), seed, base)),
        ledger: Rc::default(),
        stored: Vec::new(),
        events: BinaryHeap::new(),
        event_store: HashMap::new(),
        event_seq: 0,
        streams: HashMap::new(),
        mode: Mode::Healthy,
        healthy_since: Some(Duration::ZERO),
        unresolved: BTreeSet::new(),
        max_held,
        queued: Vec::new(),
        steps: 0,
        ended: false,
        retired: false,
        settings: settings.clone(),
        trace: std::env::var_os("SIM_TRACE").is_some(),
        asked_until: Duration::ZERO,
        max_record: if small_records {
            RECORD_BYTES + 1
        } else {
            3 * settings.chunk_capacity
        },
        retries_counted: 0,
        retries_noted: 0,
        notes_dropped: false,
        counted: super::Counters::default(),
        heartbeats: 0,
        requests: 0,
        most_records_per_request: 0,
        token_lifetime,
        pace: PaceState::default(),
        pace_wake: None,
        // Tokens are capped at the rate when taken: infinity is a full store.
        bucket: (
            if full_bucket { f64::INFINITY } else { 0.0 },
            Duration::ZERO,
        ),
        first_read: None,
        last_delivered: None,
    };
    let mut schedule = schedule.into_iter().peekable();
    let mut ended = false;
    loop {
        let next_scheduled = schedule.peek().map(|(t, _)| *t);
        let next_server = sim.events.peek().map(|Reverse((t, _, _))| *t);
        let next_wake = sim
            .machine
            .as_ref()
            .and_then(|m| m.next_wake())
            .map(|at| at.saturating_duration_since(base));
        let next_pace = sim.pace_wake.filter(|_| sim.machine.is_some());
        let Some(next) = [next_scheduled, next_server, next_wake, next_pace]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        sim.now = sim.now.max(next);
        sim.ledger.borrow_mut().now = sim.now;
        sim.steps += 1;
        if let Some(m) = sim.machine.as_ref().filter(|_| sim.steps > 1_999_995) {
            eprintln!("{}", m.describe());
        }
        if sim.steps > 2_000_000 {
            return Err(sim.fail("the lane never settles (a loop without progress)"));
        }
        if next_scheduled == Some(next) {
            let (_, event) = schedule.next().expect("peeked");
            if sim.trace {
                eprintln!("{:?} schedule: {event:?}", sim.now);
            }
            match event {
                Scheduled::Record { deadline } => sim.hand_over(deadline),
                Scheduled::Mode(mode) => sim.set_mode(mode),
                Scheduled::Close => {
                    ended = true;
                    sim.queued.clear();
                    if let Some(m) = sim.machine.as_mut() {
                        m.close();
                    }
                }
                Scheduled::Abandon => {
                    ended = true;
                    sim.ended = true;
                    sim.queued.clear();
                    if let Some(m) = sim.machine.as_mut() {
                        m.abandon();
                    }
                }
                Scheduled::Shutdown => {
                    ended = true;
                    sim.ended = true;
                    sim.queued.clear();
                    sim.machine = None;
                    sim.settle()?;
                }
            }
        } else if next_server == Some(next) {
            let Reverse((_, _, key)) = sim.events.pop().expect("peeked");
            let ServerEvent::Deliver(id, event) =
                sim.event_store.remove(&key).expect("stored event");
            if sim.trace {
                eprintln!("{:?} stream {id}: {event:?}", sim.now);
            }
            if let Some(machine) = sim.machine.as_mut() {
                let at = base + sim.now;
                if matches!(&event, Event::Reports(r) if r.iter().any(Result::is_ok)) {
                    sim.last_delivered = Some(sim.now);
                }
                machine.on_event(id, event, at);
            }
        }
        sim.step()?;
        if let Some(m) = sim.machine.as_ref().filter(|_| sim.trace) {
            eprintln!("{:?}     {}", sim.now, m.describe());
        }
        if ended && (sim.retired || sim.machine.as_ref().is_none_or(|m| m.is_finished())) {
            break;
        }
    }
    sim.finish()
}

impl Sim {
    fn fail(&self, what: &str) -> String {
        format!(
            "seed {}: step {} at {:?}: {what}",
            self.plan_seed, self.steps, self.now
        )
    }

    fn schedule(&mut self, after: Duration, stream: u64, event: Event) {
        self.event_seq += 1;
        let key = self.event_seq as usize;
        self.event_store
            .insert(key, ServerEvent::Deliver(stream, event));
        self.events
            .push(Reverse((self.now + after, self.event_seq, key)));
    }

    fn latency(&mut self) -> Duration {
        Duration::from_micros(self.rng.u64(50..20_000))
    }

    /// A record from a caller: handed over at once when the lane has room,
    /// otherwise when room frees (as `send` waits).
    fn hand_over(&mut self, timeout: Duration) {
        if self.retired {
            self.retired = false;
            let at = self.base + self.now;
            let seed = self.rng.u64(..);
            self.machine = Some(Machine::new(self.settings.clone(), seed, at));
        }
        if self.machine.is_none() {
            return;
        }
        self.queued.push(timeout);
        self.admit_queued();
    }

    /// Most records are small; some are larger than a chunk.
    fn record_size(&mut self) -> usize {
        match self.rng.u8(..20) {
            0 if self.max_record > RECORD_BYTES + 1 => {
                self.rng.usize(RECORD_BYTES + 1..=self.max_record)
            }
            _ => RECORD_BYTES + 1,
        }
    }

    fn admit_queued(&mut self) {
        while !self.queued.is_empty() && self.unresolved.len() < self.max_held {
            let timeout = self.queued.remove(0);
            let size = self.record_size();
            let Some(machine) = self.machine.as_mut() else {
                return;
            };
            let mut ledger = self.ledger.borrow_mut();
            let id = ledger.records.len();
            let deadline = self.now + timeout;
            let ahead = self.unresolved.len();
            ledger.records.push(RecordState {
                handed_at: self.now,
                ahead,
                deadline,
                told: None,
                error: None,
            });
            drop(ledger);
            self.stored.push(0);
            self.unresolved.insert((deadline, id));
            let ticket = SimTicket {
                id,
                ledger: Rc::clone(&self.ledger),
                maybe_written: false,
                resolved: false,
            };
            // Its id, then filler up to its size, then a line feed.
            let mut text = format!("{id:016}");
            text.extend(std::iter::repeat_n(
                '.',
                size.saturating_sub(RECORD_BYTES + 1),
            ));
            text.push('\n');
            let encoded = Bytes::from(text);
            machine.push(Entry::new(ticket, encoded, self.base + deadline));
        }
    }

    fn set_mode(&mut self, mode: Mode) {
        let before = self.mode;
        self.mode = mode;
        // A server that recovers resets what was stuck, and one that goes
        // down cuts what was open.
        let reset = matches!(before, Mode::Silent | Mode::NotReading) || mode == Mode::Down;
        if reset {
            let ids: Vec<u64> = self.streams.keys().copied().collect();
            for id in ids {
                self.cut(id);
            }
        }
        if mode.healthy() {
            if !before.healthy() {
                self.healthy_since = Some(self.now);
                // Streams opened while it was failing go with the fault.
                let ids: Vec<u64> = self
                    .streams
                    .iter()
                    .filter(|(_, s)| !s.mode_at_open.healthy())
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.cut(id);
                }
            }
        } else {
            self.healthy_since = None;
        }
    }

    fn cut(&mut self, id: u64) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.dead {
            return;
        }
        stream.dead = true;
        let after = self.latency();
        self.schedule(
            after,
            id,
            Event::Ended {
                error: Some(Error::Interrupted("connection reset".into())),
                reached: true,
            },
        );
    }

    /// Runs the machine and carries out its actions, then checks the
    /// invariants.
    fn step(&mut self) -> Result<(), String> {
        let at = self.base + self.now;
        // As the driver: records that got room are handed over and the
        // machine polled again, until nothing changes.
        let mut polls = 0;
        loop {
            let before = (self.unresolved.len(), self.ledger.borrow().records.len());
            self.admit_queued();
            let after = (self.unresolved.len(), self.ledger.borrow().records.len());
            if polls > 0 && before == after {
                break;
            }
            polls += 1;
            if let Some(machine) = self.machine.as_mut() {
                // As the driver: the pace learns what the machine learnt
                // and grants what it may write.
                let signals = machine.take_signals();
                let held = machine.take_credit();
                let grant = self
                    .pace
                    .exchange(at, &signals, held, || machine.pace_demand());
                machine.set_credit(grant.credit);
                self.pace_wake = grant
                    .again_at
                    .map(|t| t.saturating_duration_since(self.base));
                if self.trace && grant.credit.is_some() {
                    eprintln!(
                        "{:?} pace {:?} {signals:?} {grant:?}",
                        self.now,
                        self.pace.rates(at)
                    );
                }
                machine.poll(at);
                if self.pace_wake.is_none() && machine.is_starved() {
                    self.pace_wake = Some(self.now + ASK_AGAIN);
                }
            }
            self.carry_out()?;
        }
        if self.machine.as_ref().is_some_and(|m| m.is_idle_over(at)) {
            // The idle lane stops, as the driver does after carrying out
            // every action; the next record starts a new one. What its
            // requests still had to say goes with it.
            self.machine = None;
            self.retired = true;
            self.events.clear();
            self.event_store.clear();
            self.streams.clear();
        }
        self.check_step()
    }

    /// Checks the records resolved since the last look.
    fn settle(&mut self) -> Result<(), String> {
        let resolved = std::mem::take(&mut self.ledger.borrow_mut().just_resolved);
        for id in resolved {
            let deadline = self.ledger.borrow().records[id].deadline;
            self.unresolved.remove(&(deadline, id));
            self.check_resolution(id)?;
        }
        Ok(())
    }

    fn carry_out(&mut self) -> Result<(), String> {
        self.settle()?;
        loop {
            let Some(action) = self.machine.as_mut().and_then(|m| m.next_action()) else {
                break;
            };
            if self.trace {
                eprintln!("{:?}   {action:?}", self.now);
            }
            match action {
                Action::Open { stream, .. } => self.open(stream),
                Action::Write { stream, chunk } => self.receive(stream, &chunk),
                Action::EndBody { stream } => self.body_ended(stream),
                Action::Abort { stream } => {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        s.dead = true;
                    }
                }
                Action::RefreshCredentials => {}
            }
        }
        self.check_notes()?;
        self.settle()
    }

    /// Every retry the machine counts is in one of its notes, each with a
    /// class that allows it and a backoff range in order.
    fn check_notes(&mut self) -> Result<(), String> {
        let Some(machine) = self.machine.as_mut() else {
            return Ok(());
        };
        let mut noted = 0;
        let mut wrong = None;
        while let Some(note) = machine.next_note() {
            if let Note::Retry {
                class,
                records,
                backoff,
                ..
            } = &note
            {
                noted += records;
                if !class.is_retriable() || backoff.0 > backoff.1 || *records == 0 {
                    wrong = Some(format!("{note:?}"));
                }
            }
        }
        let counters = machine.take_counters();
        self.counted.throttled += counters.throttled;
        self.counted.buffering_detected += counters.buffering_detected;
        self.counted.requests_shrunk += counters.requests_shrunk;
        self.counted.stalled_bodies += counters.stalled_bodies;
        self.retries_counted += counters.retried;
        self.retries_noted += noted;
        self.notes_dropped |= counters.dropped_notes > 0;
        if let Some(note) = wrong {
            return Err(self.fail(&format!("a retry note that cannot be: {note}")));
        }
        if !self.notes_dropped && self.retries_counted != self.retries_noted {
            return Err(self.fail(&format!(
                "{} retries counted, {} in notes",
                self.retries_counted, self.retries_noted
            )));
        }
        Ok(())
    }

    fn open(&mut self, id: u64) {
        self.requests += 1;
        let latency = self.latency();
        let mode = self.mode;
        self.streams.insert(
            id,
            SimStream {
                mode_at_open: mode,
                held: Vec::new(),
                held_bytes: 0,
                held_reports: Vec::new(),
                records: 0,
                credentials_until: self.token_lifetime.map(|l| self.now + l),
                last_report_at: self.now,
                body_ended: false,
                dead: false,
                cut_after: match mode {
                    Mode::Cutting { percent } if self.rng.u64(..100) < percent => {
                        Some(self.rng.usize(0..8))
                    }
                    _ => None,
                },
            },
        );
        let refuse = |sim: &mut Sim, event: Event| {
            sim.streams.get_mut(&id).expect("just added").dead = true;
            sim.schedule(latency, id, event);
        };
        match mode {
            Mode::Down => refuse(
                self,
                Event::Ended {
                    error: Some(Error::Interrupted("connection refused".into())),
                    reached: false,
                },
            ),
            Mode::Refusing {
                status,
                retry_after,
            } => {
                if let Some(seconds) = retry_after {
                    let wait = Duration::from_secs(seconds.min(MAX_RETRY_AFTER.as_secs()));
                    self.asked_until = self.asked_until.max(self.now + latency + wait);
                }
                refuse(
                    self,
                    Event::Refused(Error::Api(ApiError {
                        status,
                        error_code: Some(i32::from(status)),
                        message: "refused".into(),
                        retry_after: retry_after.map(Duration::from_secs),
                        scope: ErrorScope::Request,
                    })),
                )
            }
            Mode::TokenFailing { retriable } => refuse(
                self,
                Event::Refused(Error::Token(
                    TokenError::new("token endpoint failed").with_retriable(retriable),
                )),
            ),
            Mode::Buffering { .. } => {
                self.schedule(
                    latency / 4,
                    id,
                    Event::Sending {
                        credentials_until: self.credentials_until(id),
                    },
                );
                self.schedule(latency / 2, id, Event::Writable);
            }
            Mode::GatewayTimeout(after) => {
                self.schedule(
                    latency / 4,
                    id,
                    Event::Sending {
                        credentials_until: self.credentials_until(id),
                    },
                );
                self.schedule(latency / 2, id, Event::Writable);
                self.schedule(after, id, Event::Refused(gateway_error(504)));
            }
            _ => {
                self.schedule(
                    latency / 4,
                    id,
                    Event::Sending {
                        credentials_until: self.credentials_until(id),
                    },
                );
                self.schedule(latency, id, Event::Opened);
                self.schedule(latency / 2, id, Event::Writable);
            }
        }
    }

    /// When the credentials of a request expire, on the machine's clock.
    fn credentials_until(&self, id: u64) -> Option<Instant> {
        let until = self.streams.get(&id)?.credentials_until?;
        Some(self.base + until)
    }

    /// The request body ended: an intermediary passes on what it held.
    fn body_ended(&mut self, id: u64) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.body_ended = true;
        if stream.dead {
            return;
        }
        match stream.mode_at_open {
            Mode::Silent | Mode::GatewayTimeout(_) => {}
            Mode::Buffering { .. } => {
                let held = std::mem::take(&mut stream.held);
                stream.mode_at_open = Mode::Healthy;
                let latency = self.latency();
                self.schedule(latency, id, Event::Opened);
                for record in held {
                    self.stored[record] += 1;
                    self.schedule(latency + MS, id, Event::Reports(vec![Ok(report(record))]));
                }
                self.schedule(
                    latency + 2 * MS,
                    id,
                    Event::Ended {
                        error: None,
                        reached: true,
                    },
                );
            }
            Mode::HoldingReports => {
                let held = std::mem::take(&mut stream.held_reports);
                let latency = self.latency();
                if !held.is_empty() {
                    self.schedule(latency, id, Event::Reports(held));
                }
                self.schedule(
                    latency + MS,
                    id,
                    Event::Ended {
                        error: None,
                        reached: true,
                    },
                );
            }
            _ => {
                // Not dead: a reset may still cut it before its last
                // reports.
                let after = stream.last_report_at.saturating_sub(self.now) + MS;
                self.schedule(
                    after,
                    id,
                    Event::Ended {
                        error: None,
                        reached: true,
                    },
                );
            }
        }
    }

    /// The server reads a chunk: each record is stored or refused, and its
    /// report scheduled.
    fn receive(&mut self, id: u64, chunk: &[u8]) {
        if chunk.iter().all(u8::is_ascii_whitespace) {
            self.heartbeats += 1;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.records += record_ids(chunk).len();
        self.most_records_per_request = self.most_records_per_request.max(stream.records);
        if stream.dead {
            return;
        }
        let mode = stream.mode_at_open;
        if let Mode::Buffering { cap } = mode {
            let stream = self.streams.get_mut(&id).expect("present");
            stream.held_bytes += chunk.len();
            if cap.is_some_and(|cap| stream.held_bytes > cap) {
                // Refused as a whole: none of it goes on.
                stream.held.clear();
                stream.dead = true;
                let latency = self.latency();
                self.schedule(latency, id, Event::Refused(gateway_error(413)));
                return;
            }
            stream.held.extend(record_ids(chunk));
            let room = Duration::from_micros(self.rng.u64(10..2_000));
            self.schedule(room, id, Event::Writable);
            return;
        }
        let ids = record_ids(chunk);
        let mut reports = Vec::new();
        for record in ids {
            let stream = self.streams.get_mut(&id).expect("present");
            if let Some(left) = stream.cut_after.as_mut() {
                if *left == 0 {
                    // Cut while reading: stored or not, nobody knows.
                    if self.rng.bool() {
                        self.stored[record] += 1;
                    }
                    self.cut(id);
                    break;
                }
                *left -= 1;
            }
            self.first_read.get_or_insert(self.now);
            let outcome = match (mode, self.mode) {
                (_, Mode::Down) => {
                    self.cut(id);
                    break;
                }
                (_, Mode::RateLimited { per_s }) if !self.take_permit(per_s) => {
                    Err(Error::Api(ApiError {
                        status: 200,
                        error_code: Some(429),
                        message: "rate limited".into(),
                        retry_after: None,
                        scope: ErrorScope::Record,
                    }))
                }
                (Mode::InBand { code, percent }, _) if self.rng.u64(..100) < percent => {
                    let class = RetryClass::for_error_code(code);
                    if class == RetryClass::OutcomeUnknown && self.rng.bool() {
                        self.stored[record] += 1;
                    }
                    Err(Error::Api(ApiError {
                        status: 200,
                        error_code: Some(code),
                        message: "in band".into(),
                        retry_after: None,
                        scope: ErrorScope::Record,
                    }))
                }
                _ => {
                    self.stored[record] += 1;
                    Ok(report(record))
                }
            };
            reports.push(outcome);
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.dead || mode == Mode::Silent {
            return;
        }
        let extra = match mode {
            Mode::SlowReports(up_to) => up_to.mul_f64(self.rng.f64()),
            _ => Duration::ZERO,
        };
        let latency = Duration::from_micros(self.rng.u64(50..20_000)) + extra;
        let stream = self.streams.get_mut(&id).expect("present");
        let at = (self.now + latency).max(stream.last_report_at);
        stream.last_report_at = at;
        let after = at - self.now;
        let readable = mode != Mode::NotReading;
        if matches!(mode, Mode::HoldingReports | Mode::GatewayTimeout(_)) {
            let stream = self.streams.get_mut(&id).expect("present");
            stream.held_reports.extend(reports);
            let room = Duration::from_micros(self.rng.u64(10..2_000));
            self.schedule(room, id, Event::Writable);
            return;
        }
        for outcome in reports {
            self.schedule(after, id, Event::Reports(vec![outcome]));
        }
        // The stream ends after its last report once the body has ended.
        let stream = self.streams.get_mut(&id).expect("present");
        if stream.body_ended && !stream.dead {
            self.schedule(
                after + MS,
                id,
                Event::Ended {
                    error: None,
                    reached: true,
                },
            );
        }
        if readable {
            let room = Duration::from_micros(self.rng.u64(10..2_000));
            self.schedule(room, id, Event::Writable);
        }
    }

    /// Whether the server's limiter lets one more record through now: a
    /// second's worth in store at most.
    fn take_permit(&mut self, per_s: u32) -> bool {
        let rate = f64::from(per_s.max(1));
        let (tokens, at) = self.bucket;
        let elapsed = self.now.saturating_sub(at).as_secs_f64();
        let tokens = (tokens + elapsed * rate).min(rate);
        let allowed = tokens >= 1.0;
        self.bucket = (if allowed { tokens - 1.0 } else { tokens }, self.now);
        allowed
    }

    /// A record just resolved: its outcome must be true and on time.
    fn check_resolution(&self, id: usize) -> Result<(), String> {
        let ledger = self.ledger.borrow();
        if let Some(v) = ledger.violations.first() {
            return Err(self.fail(v));
        }
        let record = &ledger.records[id];
        let (at, told) = record.told.expect("just resolved");
        let stored = self.stored[id];
        let truthful = match told {
            Told::Delivered { duplicate } => stored >= 1 && (stored == 1 || duplicate),
            Told::NotWritten => stored == 0,
            Told::Unknown => true,
        };
        if !truthful {
            return Err(self.fail(&format!(
                "record {id} told {told:?} ({:?}) but stored {stored} times",
                record.error
            )));
        }
        if at > record.deadline + MS {
            return Err(self.fail(&format!(
                "record {id} resolved at {at:?}, after its deadline {:?}",
                record.deadline
            )));
        }
        // Resolved while the server has been healthy for long enough (from
        // the end of any wait it asked for), with time left after that: it
        // must be delivered, whenever it was handed over. Records failed by
        // a fault were resolved before.
        let since = self.healthy_since.map(|since| since.max(self.asked_until));
        if let Some(since) = since.filter(|_| !self.ended) {
            // Twice the cap: jitter can double a delay.
            let settled = since + 2 * self.settings.policy.backoff_max + 100 * MS;
            // Time enough to be sent after those ahead of it, one round
            // trip each when strict.
            let per_record = if self.settings.strict_order {
                50 * MS
            } else {
                MS
            };
            let ahead = record.ahead.max(if record.handed_at < settled {
                self.max_held
            } else {
                0
            });
            let needed = Duration::from_secs(1) + per_record * ahead as u32;
            if at >= settled
                && record.deadline >= record.handed_at.max(settled) + needed
                && !matches!(told, Told::Delivered { .. })
            {
                return Err(self.fail(&format!(
                    "record {id} handed over at {:?} to a server healthy since {since:?} \
                     was told {told:?}: {:?}",
                    record.handed_at, record.error
                )));
            }
        }
        Ok(())
    }

    fn check_step(&self) -> Result<(), String> {
        if let Some(v) = self.ledger.borrow().violations.first() {
            return Err(self.fail(v));
        }
        if let Some(&(deadline, id)) = self.unresolved.first()
            && self.now > deadline + MS
        {
            return Err(self.fail(&format!(
                "record {id} unresolved past its deadline {deadline:?}"
            )));
        }
        let Some(machine) = self.machine.as_ref() else {
            return Ok(());
        };
        if machine.held() > self.max_held {
            return Err(self.fail(&format!(
                "the lane holds {} records, above its bound of {}",
                machine.held(),
                self.max_held
            )));
        }
        // Every step while few are held; then now and then, as counting
        // every record's bytes at every step would take most of the run.
        if machine.held() > 1_000 && !self.steps.is_multiple_of(64) {
            return self.check_liveness(machine);
        }
        let bytes = machine.held_bytes();
        // Held records, plus at most one chunk and one block of the lane's
        // own memory.
        let bound = self.max_held * self.max_record
            + 2 * (machine.settings.chunk_capacity + self.max_record);
        if bytes > bound {
            return Err(self.fail(&format!("the lane holds {bytes} bytes, above {bound}")));
        }
        // No body goes on past the expiry of the credentials it was sent
        // with.
        for (id, stream) in &self.streams {
            if let Some(until) = stream.credentials_until
                && !stream.body_ended
                && !stream.dead
                && self.now > until
            {
                return Err(self.fail(&format!(
                    "stream {id} still writing at {:?}, past its credentials' expiry {until:?}",
                    self.now
                )));
            }
        }
        self.check_liveness(machine)
    }

    /// A lane holding records has something that will wake it.
    fn check_liveness(&self, machine: &Machine<SimTicket>) -> Result<(), String> {
        if machine.held() > 0
            && machine.next_wake().is_none()
            && self.pace_wake.is_none()
            && self.events.is_empty()
        {
            return Err(self.fail("the lane holds records and nothing will wake it"));
        }
        Ok(())
    }

    fn finish(self) -> Result<Summary, String> {
        let ledger = self.ledger.borrow();
        if let Some(v) = ledger.violations.first() {
            return Err(self.fail(v));
        }
        let mut delivered = 0;
        for (id, record) in ledger.records.iter().enumerate() {
            let Some((_, told)) = record.told else {
                return Err(self.fail(&format!("record {id} never resolved")));
            };
            let stored = self.stored[id];
            let truthful = match told {
                Told::Delivered { duplicate } => {
                    delivered += 1;
                    stored >= 1 && (stored == 1 || duplicate)
                }
                Told::NotWritten => stored == 0,
                Told::Unknown => true,
            };
            if !truthful {
                return Err(self.fail(&format!(
                    "record {id} told {told:?} ({:?}) but stored {stored} times in the end",
                    record.error
                )));
            }
        }
        Ok(Summary {
            buffering_detected: self.counted.buffering_detected,
            requests_shrunk: self.counted.requests_shrunk,
            stalled_bodies: self.counted.stalled_bodies,
            heartbeats: self.heartbeats,
            requests: self.requests,
            most_records_per_request: self.most_records_per_request,
            throttled: self.counted.throttled,
            first_read: self.first_read,
            last_delivered: self.last_delivered,
            retries_noted: self.retries_noted,
            steps: self.steps,
            records: ledger.records.len(),
            delivered,
            told: ledger
                .records
                .iter()
                .map(|r| {
                    let (at, told) = r.told.expect("checked above");
                    (at, told, r.error.clone())
                })
                .collect(),
            stored: self.stored.clone(),
        })
    }
}

/// The ids of the records in a chunk. Whitespace between records
/// (heartbeats) is skipped, as the server's JSON reader does.
fn record_ids(chunk: &[u8]) -> Vec<usize> {
    chunk
        .split(|&b| b == b'\n')
        .map(|r| r.trim_ascii_start())
        .filter(|r| !r.is_empty())
        .map(|r| {
            std::str::from_utf8(&r[..RECORD_BYTES])
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// An intermediary's error page: no Confluent error code.
fn gateway_error(status: u16) -> Error {
    Error::Api(ApiError {
        status,
        error_code: None,
        message: "<html><body>gateway</body></html>".into(),
        retry_after: None,
        scope: ErrorScope::Request,
    })
}

fn report(id: usize) -> DeliveryReport {
    DeliveryReport {
        cluster_id: String::new(),
        topic: String::new(),
        partition: 0,
        offset: id as i64,
        timestamp: None,
        key: None,
        value: None,
        attempts: 1,
        possibly_duplicated: false,
    }
}
