//! A lane's decisions, without I/O: what to write on which request, when to
//! open, end and give up a request, and what becomes of every record.
//!
//! The machine is driven by its inputs (records handed over, events of its
//! requests, the current time) and answers with [`Action`]s and the next
//! time it must be woken. It never reads a clock or sleeps, so the same
//! inputs always give the same actions: a simulated clock and server can
//! drive it through any schedule of faults (see the simulation tests).

mod entry;
#[cfg(test)]
mod simulation;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use entry::{Entry, Ticket};

use crate::error::RetryClass;
use crate::error::{Error, GiveUpReason};
use crate::http::path::{PathSettings, PathState};
use crate::retry::pace::{Credit, Demand, Signals};
use crate::retry::policy::{Decision, Failure, MAX_RETRY_AFTER, RetryPolicy};
use crate::wire::report::DeliveryReport;
use backon::ExponentialBackoff;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use stream::{Bound, Slot, Stream};
use tokio::time::Instant;

/// A record's outcome.
pub(crate) type Outcome = Result<DeliveryReport, Error>;

/// How long a request whose records are all resolved and whose body has
/// ended may take to end its response before it is dropped.
const END_GRACE: Duration = Duration::from_secs(1);
/// The same, when records are waiting for the next request.
const END_GRACE_BUSY: Duration = Duration::from_millis(100);
/// Retry decisions kept for the driver between two turns; more are only
/// counted.
const MAX_NOTES: usize = 64;
/// What a heartbeat writes: whitespace, which the server skips between
/// records.
const HEARTBEAT: &[u8] = b" ";
/// A stream ends this long before the credentials it was opened with
/// expire, or a tenth of the time they had left when that is shorter.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(30);

/// What a lane's machine needs of the producer's configuration.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) chunk_bytes: usize,
    /// Bytes a chunk's buffer is made for.
    pub(crate) chunk_capacity: usize,
    pub(crate) linger: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_stream_age: Duration,
    /// What one request may carry, when bounded by configuration.
    pub(crate) request_records: Option<usize>,
    pub(crate) request_bytes: Option<usize>,
    pub(crate) strict_order: bool,
    pub(crate) policy: RetryPolicy,
    pub(crate) path: PathSettings,
}

/// What happened to one of the lane's requests.
#[derive(Debug)]
pub(crate) enum Event {
    /// The request went out: its body began to be read. The credentials it
    /// carries expire at `credentials_until`, when they do.
    Sending { credentials_until: Option<Instant> },
    /// The server answered 200: the stream is open.
    Opened,
    /// The request body can take one more chunk.
    Writable,
    /// The next reports of the stream, in order.
    Reports(Vec<Outcome>),
    /// The request was refused as a whole (an HTTP status other than 200,
    /// or no credentials to send it with): no record on it was written.
    Refused(Error),
    /// The response ended: cleanly (`error` is `None`) or not. `reached`
    /// is false when the request never reached the server (the
    /// connection could not be made), so nothing on it was written.
    Ended { error: Option<Error>, reached: bool },
}

/// What the machine asks its driver to do. Records are resolved through
/// their [`Ticket`]s instead, one call each.
pub(crate) enum Action {
    /// Send a new request for `stream` (fetching credentials first).
    Open { stream: u64, reconnect: bool },
    /// Write these bytes on the stream's body.
    Write { stream: u64, chunk: Bytes },
    /// End the stream's request body.
    EndBody { stream: u64 },
    /// Drop the stream's request and response; no more events for it.
    Abort { stream: u64 },
    /// The server refused the credentials: drop any cached ones.
    RefreshCredentials,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Open { stream, reconnect } => write!(f, "Open({stream}, {reconnect})"),
            Action::Write { stream, chunk } => write!(f, "Write({stream}, {})", chunk.len()),
            Action::EndBody { stream } => write!(f, "EndBody({stream})"),
            Action::Abort { stream } => write!(f, "Abort({stream})"),
            Action::RefreshCredentials => write!(f, "RefreshCredentials"),
        }
    }
}

/// Counts the driver reports to the producer's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) retried: u64,
    /// Reports that came after their record was resolved.
    pub(crate) late_reports: u64,
    /// Reports with no record to match.
    pub(crate) unmatched_reports: u64,
    /// Notes not kept because [`MAX_NOTES`] were waiting.
    pub(crate) dropped_notes: u64,
    /// Streams that got no response headers in time: an intermediary
    /// buffers bodies.
    pub(crate) buffering_detected: u64,
    /// Requests of several records refused as too large (HTTP 413) and
    /// sent again in smaller ones.
    pub(crate) requests_shrunk: u64,
    /// Bodies ended because reports stopped coming.
    pub(crate) stalled_bodies: u64,
    /// Attempts refused for rate (in band, or by an HTTP 429).
    pub(crate) throttled: u64,
}

/// A retry decision the machine made, for its driver to log: why records
/// or the next request wait, and for how long. Consecutive retries of the
/// same stream for the same cause make one note.
#[derive(Debug)]
pub(crate) enum Note {
    /// Records that failed on `stream` are sent again after a backoff.
    Retry {
        stream: u64,
        /// The failure (of the first record the note counts).
        cause: Error,
        /// What the failure means for the records.
        class: RetryClass,
        records: u64,
        /// The most attempts any of them has made.
        attempts: u32,
        /// The shortest and longest backoff chosen.
        backoff: (Duration, Duration),
    },
    /// The lane's next request waits `delay`, after `stream` was refused
    /// or ended; `cause` is `None` for a response that ended cleanly but
    /// early.
    Reopen {
        stream: u64,
        cause: Option<Error>,
        delay: Duration,
    },
    /// `stream` had no response headers `waited` after its first record
    /// went out: its body ends, and requests carry at most `bytes` for a
    /// while.
    Buffering {
        stream: u64,
        waited: Duration,
        bytes: usize,
    },
    /// `stream`, of `records` records, was refused as too large: they go
    /// again in requests of at most `bytes`.
    Shrunk {
        stream: u64,
        records: usize,
        bytes: usize,
    },
    /// `stream` had records in flight, nothing to write and no report for
    /// `waited`: its body ends, and later records go on the next request.
    Stalled { stream: u64, waited: Duration },
    /// Requests were cut twice at about the same age: bodies end at `cap`.
    AgeCap { cap: Duration },
}

/// One lane's state.
pub(crate) struct Machine<T> {
    settings: Settings,
    rng: fastrand::Rng,
    /// Records ready to be written, in the order they go.
    waiting: VecDeque<Entry<T>>,
    /// Records waiting out a backoff, by due time then order of failure.
    retries: BTreeMap<(Instant, u64), Entry<T>>,
    retry_seq: u64,
    /// Records refused for rate, by the order they were first written:
    /// they go before `waiting`, as the pace allows.
    resend: BTreeMap<u64, Entry<T>>,
    /// Records written so far, for their order.
    write_seq: u64,
    /// What the pace lets the lane write; `None`: anything.
    credit: Option<Credit>,
    /// What the lane learnt of the server's pace since the driver took it.
    signals: Signals,
    /// Open requests, oldest first; only the newest may take records.
    streams: VecDeque<Stream<T>>,
    next_stream: u64,
    /// No request is opened before this.
    reopen_at: Option<Instant>,
    open_backoff: Option<ExponentialBackoff>,
    /// The last request ended abnormally: the next one is a reconnect.
    reconnecting: bool,
    /// Credentials were renewed after a 401 and no request has opened
    /// since.
    refreshed: bool,
    /// No more records will be handed over.
    closing: bool,
    /// At or before the earliest deadline of any record held.
    deadline_floor: Option<Instant>,
    /// The last time the lane held anything.
    last_busy: Instant,
    actions: VecDeque<Action>,
    notes: VecDeque<Note>,
    counters: Counters,
    /// What is known of the path to the server.
    path: PathState,
    /// `path` changed since the driver last took it.
    path_changed: bool,
}

impl<T: Ticket> Machine<T> {
    /// A lane with nothing in it at `now`; `seed` seeds every random choice
    /// it makes (backoff jitter).
    pub(crate) fn new(settings: Settings, seed: u64, now: Instant) -> Machine<T> {
        Machine {
            settings,
            rng: fastrand::Rng::with_seed(seed),
            waiting: VecDeque::new(),
            retries: BTreeMap::new(),
            retry_seq: 0,
            resend: BTreeMap::new(),
            write_seq: 0,
            credit: None,
            signals: Signals::default(),
            streams: VecDeque::new(),
            next_stream: 0,
            reopen_at: None,
            open_backoff: None,
            reconnecting: false,
            refreshed: false,
            closing: false,
            deadline_floor: None,
            last_busy: now,
            actions: VecDeque::new(),
            notes: VecDeque::new(),
            counters: Counters::default(),
            path: PathState::default(),
            path_changed: false,
        }
    }

    /// What another lane learnt of the path: requests opened from now on
    /// follow it.
    pub(crate) fn adopt_path(&mut self, path: PathState) {
        self.path = path;
    }

    /// What this lane learnt of the path since the last call, to share.
    pub(crate) fn take_path_change(&mut self) -> Option<PathState> {
        std::mem::take(&mut self.path_changed).then_some(self.path)
    }

    /// What the lane would write now, for its pace: the records ready and
    /// the bytes of those the next chunks would carry.
    pub(crate) fn pace_demand(&self) -> Demand {
        // The bytes of the first records, and as many again for each as
        // many of the rest: a lane's demand is a rough bound, not a sum.
        const SAMPLE: usize = 256;
        let records = self.resend.len() + self.waiting.len();
        let bytes: usize = self
            .resend
            .values()
            .chain(self.waiting.iter())
            .take(SAMPLE)
            .map(|e| e.encoded.len())
            .sum();
        let bytes = bytes.saturating_mul(records.div_ceil(SAMPLE).max(1));
        Demand {
            records: records as u64,
            bytes: bytes as u64,
        }
    }

    /// The credit the lane holds, taken back by its driver.
    pub(crate) fn take_credit(&mut self) -> Option<Credit> {
        self.credit.take()
    }

    /// The credit the pace granted (`None`: write freely).
    pub(crate) fn set_credit(&mut self, credit: Option<Credit>) {
        self.credit = credit;
    }

    /// What the lane learnt of the server's pace since the last call.
    pub(crate) fn take_signals(&mut self) -> Signals {
        std::mem::take(&mut self.signals)
    }

    /// Whether records are ready and the pace's credit is used up: the
    /// driver asks the pace again soon even if it set no time.
    pub(crate) fn is_starved(&self) -> bool {
        self.credit.is_some_and(|credit| !credit.admits()) && self.has_ready()
    }

    /// Whether records are ready to be written (new, or refused for rate).
    fn has_ready(&self) -> bool {
        !self.waiting.is_empty() || !self.resend.is_empty()
    }

    /// A record handed over, its bytes in the lane's own blocks.
    #[cfg(test)]
    pub(crate) fn push(&mut self, entry: Entry<T>) {
        self.lower_floor(entry.deadline);
        self.waiting.push_back(entry);
    }

    /// Records handed over, in order; `entries` is left empty.
    pub(crate) fn push_all(&mut self, entries: &mut VecDeque<Entry<T>>) {
        if let Some(earliest) = entries.iter().map(|e| e.deadline).min() {
            self.lower_floor(earliest);
        }
        if self.waiting.is_empty() {
            // Both queues keep their capacity for the next batches.
            std::mem::swap(&mut self.waiting, entries);
        } else {
            self.waiting.append(entries);
        }
    }

    /// No more records will be handed over: finish what is held and stop.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    /// Records held: waiting, backing off or on a request.
    pub(crate) fn held(&self) -> usize {
        self.waiting.len()
            + self.retries.len()
            + self.resend.len()
            + self.streams.iter().map(|s| s.live).sum::<usize>()
    }

    /// Bytes of records held, and of the buffers holding them.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        let records = |entries: &mut dyn Iterator<Item = &Entry<T>>| {
            entries.map(|e| e.encoded.len()).sum::<usize>()
        };
        let mut bytes = records(&mut self.waiting.iter())
            + records(&mut self.retries.values())
            + records(&mut self.resend.values());
        for stream in &self.streams {
            bytes += stream.chunk.capacity();
            bytes += records(&mut stream.slots.iter().filter_map(|s| match s {
                Slot::Live(e) => Some(e),
                Slot::Gone => None,
            }));
        }
        bytes
    }

    /// The state, for a failing test's report.
    #[cfg(test)]
    pub(crate) fn describe(&self) -> String {
        let streams: Vec<String> = self
            .streams
            .iter()
            .map(|s| {
                format!(
                    "#{} live {} unsent {} chunk {} writable {} accepting {} body {} drained {:?}",
                    s.id,
                    s.live,
                    s.unsent,
                    s.chunk.len(),
                    s.writable,
                    s.accepting,
                    s.body_open,
                    s.drained_at
                )
            })
            .collect();
        format!(
            "waiting {} retries {} resend {} credit {:?} reopen {:?} floor {:?} closing {} wake {:?} streams {streams:?}",
            self.waiting.len(),
            self.retries.len(),
            self.resend.len(),
            self.credit,
            self.reopen_at,
            self.deadline_floor,
            self.closing,
            self.next_wake()
        )
    }

    /// Closed, nothing held and no request left: the lane can stop.
    pub(crate) fn is_finished(&self) -> bool {
        self.closing && self.held() == 0 && self.streams.is_empty()
    }

    /// Nothing held and no request for the idle timeout: the lane may stop
    /// and be started again when a record comes.
    pub(crate) fn is_idle_over(&self, now: Instant) -> bool {
        self.held() == 0
            && self.streams.is_empty()
            && self.actions.is_empty()
            && self
                .last_busy
                .checked_add(self.settings.idle_timeout)
                .is_some_and(|at| at <= now)
    }

    /// Starts the idle timeout again (the lane could not stop).
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last_busy = now;
    }

    /// The next action to carry out, if any.
    pub(crate) fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next retry decision to log, if any.
    pub(crate) fn next_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    /// Counters since the last call.
    pub(crate) fn take_counters(&mut self) -> Counters {
        std::mem::take(&mut self.counters)
    }

    /// The stream whose body the driver should get room in, if any.
    pub(crate) fn wants_writable(&self) -> Option<u64> {
        self.streams
            .iter()
            .find(|s| s.body_open && !s.writable)
            .map(|s| s.id)
    }

    /// An event of one of the lane's requests. Events of a stream already
    /// given up are ignored.
    pub(crate) fn on_event(&mut self, id: u64, event: Event, now: Instant) {
        let Some(index) = self.streams.iter().position(|s| s.id == id) else {
            return;
        };
        match event {
            Event::Sending { credentials_until } => {
                let stream = &mut self.streams[index];
                stream.sending_at = Some(now);
                if let Some(until) = credentials_until {
                    let left = until.saturating_duration_since(now);
                    let end = until
                        .checked_sub(CREDENTIALS_MARGIN.min(left / 10))
                        .unwrap_or(now);
                    stream.end_at = Some(stream.end_at.map_or(end, |at| at.min(end)));
                }
            }
            Event::Opened => {
                self.refreshed = false;
                self.streams[index].answered = true;
            }
            Event::Writable => self.streams[index].writable = true,
            Event::Reports(reports) => {
                for report in reports {
                    self.on_report(index, report, now);
                }
            }
            Event::Refused(error) => {
                let stream = self.streams.remove(index).expect("a stream at index");
                // The request is over: its connection goes too.
                self.actions.push_back(Action::Abort { stream: id });
                self.on_refused(stream, error, now);
            }
            Event::Ended { error, reached } => {
                let stream = self.streams.remove(index).expect("a stream at index");
                self.actions.push_back(Action::Abort { stream: id });
                self.on_ended(stream, error, reached, now);
            }
        }
    }

    /// Does everything due at `now`: backoffs that are over, deadlines that
    /// passed, requests to end, open or give up, records to write.
    pub(crate) fn poll(&mut self, now: Instant) {
        self.promote_due_retries(now);
        if self.deadline_floor.is_some_and(|floor| floor <= now) {
            self.expire(now);
        }
        self.tend_streams(now);
        self.open_if_needed(now);
        self.write(now);
        // A body whose request just filled ends now, not at the next turn.
        if self
            .streams
            .iter()
            .any(|s| !s.accepting && s.body_open && s.chunk.is_empty())
        {
            self.tend_streams(now);
        }
        if self.held() > 0 || !self.streams.is_empty() {
            self.last_busy = now;
        }
    }

    /// Resolves every record now, without waiting for any report: those
    /// never written as not sent, the others as of unknown outcome; and
    /// drops every request.
    pub(crate) fn abandon(&mut self) {
        self.closing = true;
        let mut entries: Vec<Entry<T>> = std::mem::take(&mut self.waiting).into();
        entries.extend(std::mem::take(&mut self.retries).into_values());
        entries.extend(std::mem::take(&mut self.resend).into_values());
        for mut stream in std::mem::take(&mut self.streams) {
            for entry in stream.take_unsent() {
                entries.push(entry);
            }
            for mut entry in stream.take_live() {
                entry.maybe_written = true;
                entries.push(entry);
            }
            self.actions.push_back(Action::Abort { stream: stream.id });
        }
        for entry in entries {
            let outcome = Err(if entry.maybe_written {
                Error::Interrupted(
                    "the producer was closed before the record's delivery report arrived".into(),
                )
            } else {
                Error::Closed
            });
            self.resolve(entry, outcome);
        }
        self.deadline_floor = None;
    }

    /// The next time the machine must be polled even if nothing else
    /// happens. A time in the past means now.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |time: Option<Instant>| {
            if let Some(time) = time {
                wake = Some(wake.map_or(time, |w| w.min(time)));
            }
        };
        at(self.retries.first_key_value().map(|((due, _), _)| *due));
        at(self.deadline_floor);
        if self.streams.is_empty() && self.has_ready() {
            at(self.reopen_at);
        }
        let settings = &self.settings;
        let waiting = self.has_ready();
        for stream in &self.streams {
            if stream.writable && !stream.chunk.is_empty() {
                at(stream.chunk_started.checked_add(settings.linger));
            }
            if stream.accepting {
                at(stream.end_at);
                at(bound_age_over(stream));
                if stream.live == 0 && !waiting {
                    at(stream.last_activity.checked_add(settings.idle_timeout));
                }
                at(buffering_check_at(stream, &settings.path));
                at(stall_at(stream, &settings.path, waiting));
            } else if stream.body_open && stream.chunk.is_empty() {
                // Its body is to end: now.
                at(Some(stream.opened_at));
            }
            at(heartbeat_at(stream, &settings.path, waiting));
            if let Some(drained) = stream.drained_at {
                at(drained.checked_add(self.end_grace()));
            }
        }
        if self.held() == 0 && self.streams.is_empty() && !self.closing {
            at(self.last_busy.checked_add(settings.idle_timeout));
        }
        wake
    }

    fn end_grace(&self) -> Duration {
        if !self.has_ready() {
            END_GRACE
        } else {
            END_GRACE_BUSY
        }
    }

    fn lower_floor(&mut self, deadline: Instant) {
        self.deadline_floor = Some(self.deadline_floor.map_or(deadline, |f| f.min(deadline)));
    }

    /// Gives a record its outcome, through its ticket: the one output
    /// that is not queued as an action, as there is one per record.
    fn resolve(&mut self, entry: Entry<T>, outcome: Outcome) {
        entry.ticket.resolve(outcome);
    }

    fn deliver(&mut self, entry: Entry<T>, mut report: DeliveryReport) {
        report.attempts = entry.attempts;
        report.possibly_duplicated = entry.maybe_written;
        self.resolve(entry, Ok(report));
    }

    /// Fails a record whose time or attempts are used up.
    fn expire(&mut self, now: Instant) {
        let mut floor: Option<Instant> = None;
        let mut keep = |deadline: Instant| {
            floor = Some(floor.map_or(deadline, |f| f.min(deadline)));
        };
        let mut expired = Vec::new();
        let waiting = std::mem::take(&mut self.waiting);
        for entry in waiting {
            if entry.deadline <= now {
                expired.push((entry, false));
            } else {
                keep(entry.deadline);
                self.waiting.push_back(entry);
            }
        }
        for entry in take_expired(&mut self.retries, now)
            .into_iter()
            .chain(take_expired(&mut self.resend, now))
        {
            expired.push((entry, false));
        }
        for entry in self.retries.values().chain(self.resend.values()) {
            keep(entry.deadline);
        }
        let mut requeue = Vec::new();
        for stream in &mut self.streams {
            // Records still in the chunk were never sent: the chunk is
            // taken apart if one of them expired, so that none is sent
            // after it was reported as not written.
            let sent = stream.slots.len() - stream.unsent;
            let unsent_expired = stream
                .slots
                .iter()
                .skip(sent)
                .any(|slot| matches!(slot, Slot::Live(e) if e.deadline <= now));
            if unsent_expired {
                for entry in stream.take_unsent() {
                    if entry.deadline <= now {
                        expired.push((entry, false));
                    } else {
                        requeue.push(entry);
                    }
                }
            }
            let mut stalled = false;
            for slot in stream.slots.iter_mut() {
                let due = matches!(slot, Slot::Live(e) if e.deadline <= now);
                if due {
                    if let Slot::Live(entry) = std::mem::replace(slot, Slot::Gone) {
                        stream.live -= 1;
                        stalled = true;
                        expired.push((entry, true));
                    }
                } else if let Slot::Live(entry) = slot {
                    keep(entry.deadline);
                }
            }
            if stalled {
                // Its oldest record's report is overdue: nothing more goes
                // on it.
                stream.accepting = false;
                requeue.extend(stream.take_unsent());
            }
        }
        for entry in &requeue {
            keep(entry.deadline);
        }
        self.deadline_floor = floor;
        for entry in requeue.into_iter().rev() {
            self.waiting.push_front(entry);
        }
        for (mut entry, in_flight) in expired {
            let last_error = entry.take_last_error();
            let error = Error::GaveUp {
                reason: GiveUpReason::DeadlinePassed,
                attempts: entry.attempts,
                last_error: last_error.map(Box::new),
                may_have_been_written: in_flight || entry.maybe_written,
            };
            self.resolve(entry, Err(error));
        }
    }

    /// Moves retries whose backoff is over to the front of the line, in
    /// the order they failed.
    fn promote_due_retries(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        for entry in due.into_iter().rev() {
            self.waiting.push_front(entry);
        }
    }

    /// Ends bodies that must end and gives up requests that have nothing
    /// more to tell.
    fn tend_streams(&mut self, now: Instant) {
        let settings = &self.settings;
        let closing = self.closing && !self.has_ready() && self.retries.is_empty();
        let waiting = self.has_ready();
        let grace = self.end_grace();
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        let mut learnt = None;
        let mut index = 0;
        while index < self.streams.len() {
            let stream = &mut self.streams[index];
            if stream.accepting {
                let idle = stream.live == 0
                    && !waiting
                    && due(stream.last_activity.checked_add(settings.idle_timeout));
                let old = due(stream.end_at) || due(bound_age_over(stream));
                if idle || old || closing {
                    stream.accepting = false;
                } else if due(buffering_check_at(stream, &settings.path)) {
                    // Nothing is lost: whatever buffers the body passes it
                    // on once it ends, and every record is answered.
                    stream.accepting = false;
                    let from = stream.sending_at.max(stream.first_written).unwrap_or(now);
                    learnt = Some(Learnt::Buffering {
                        stream: stream.id,
                        waited: now.saturating_duration_since(from),
                    });
                } else if due(stall_at(stream, &settings.path, waiting)) {
                    stream.accepting = false;
                    let since = stream.pending_since.unwrap_or(stream.last_activity);
                    learnt = Some(Learnt::Stalled {
                        stream: stream.id,
                        waited: now.saturating_duration_since(since),
                    });
                }
            }
            if !stream.accepting && stream.body_open && stream.chunk.is_empty() {
                stream.body_open = false;
                stream.writable = false;
                self.actions
                    .push_back(Action::EndBody { stream: stream.id });
            }
            if !stream.body_open && stream.live == 0 {
                let overdue = stream.slots.iter().any(|s| matches!(s, Slot::Gone));
                let drained = *stream.drained_at.get_or_insert(now);
                let grace_over = drained.checked_add(grace).is_none_or(|at| at <= now);
                if overdue || grace_over {
                    let id = stream.id;
                    self.streams.remove(index);
                    self.actions.push_back(Action::Abort { stream: id });
                    continue;
                }
            }
            index += 1;
        }
        match learnt {
            Some(Learnt::Buffering { stream, waited }) => {
                self.path.buffering_seen(now, &self.settings.path);
                self.path_changed = true;
                self.counters.buffering_detected += 1;
                let bytes = self.path.bounded_bytes(now).unwrap_or(usize::MAX);
                self.note(Note::Buffering {
                    stream,
                    waited,
                    bytes,
                });
            }
            Some(Learnt::Stalled { stream, waited }) => {
                self.counters.stalled_bodies += 1;
                self.note(Note::Stalled { stream, waited });
            }
            None => {}
        }
    }

    fn open_if_needed(&mut self, now: Instant) {
        if !self.streams.is_empty()
            || !self.has_ready()
            || self.reopen_at.is_some_and(|at| at > now)
        {
            return;
        }
        self.next_stream += 1;
        let id = self.next_stream;
        let reconnect = std::mem::take(&mut self.reconnecting);
        let settings = &self.settings;
        let buffered = self.path.bounded_bytes(now);
        let bound = Bound {
            records: settings.request_records,
            bytes: match (settings.request_bytes, buffered) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            age: buffered.map(|_| settings.path.fallback_age),
            buffered: buffered.is_some(),
        };
        let age = self.path.age_cap().map_or(settings.max_stream_age, |cap| {
            cap.min(settings.max_stream_age)
        });
        self.streams.push_back(Stream::new(
            id,
            now,
            settings.chunk_capacity,
            now.checked_add(age),
            bound,
        ));
        self.actions.push_back(Action::Open {
            stream: id,
            reconnect,
        });
    }

    /// Fills the newest stream's chunk with waiting records and hands it to
    /// the body when the body has room and the linger is over.
    fn write(&mut self, now: Instant) {
        let settings = &self.settings;
        let retries_pending = !self.retries.is_empty();
        let Some(stream) = self.streams.back_mut() else {
            return;
        };
        loop {
            while stream.accepting && stream.chunk_has_room(settings.chunk_bytes) {
                if settings.strict_order && (stream.live > 0 || retries_pending) {
                    break;
                }
                // Records refused for rate go first, in the order they were
                // first written.
                let resending = !self.resend.is_empty();
                let next = if resending {
                    self.resend.first_key_value().map(|(_, e)| e)
                } else {
                    self.waiting.front()
                };
                let Some(len) = next.map(|e| e.encoded.len()) else {
                    break;
                };
                if self.credit.is_some_and(|credit| !credit.admits()) {
                    // The pace allows no more for now.
                    break;
                }
                if !stream
                    .bound
                    .admits(stream.taken_records, stream.taken_bytes, len)
                {
                    // The request is full: the next record goes on the next.
                    stream.accepting = false;
                    break;
                }
                let next = if resending {
                    self.resend.pop_first().map(|(_, e)| e)
                } else {
                    self.waiting.pop_front()
                };
                let Some(entry) = next else {
                    break;
                };
                if stream.chunk.is_empty() {
                    stream.chunk_started = now;
                    // Room for a whole chunk (the buffer is reused once the
                    // previous chunks are written).
                    stream.chunk.reserve(len.max(settings.chunk_capacity));
                } else if stream.chunk.capacity() - stream.chunk.len() < len {
                    stream.chunk_full = true;
                    if resending {
                        self.resend.insert(entry.first_written, entry);
                    } else {
                        self.waiting.push_front(entry);
                    }
                    break;
                }
                if let Some(credit) = &mut self.credit {
                    credit.charge(len);
                }
                stream.chunk.extend_from_slice(&entry.encoded);
                stream.slots.push_back(Slot::Live(entry));
                stream.live += 1;
                stream.unsent += 1;
                stream.taken_records += 1;
                stream.taken_bytes = stream.taken_bytes.saturating_add(len);
                stream.first_taken.get_or_insert(now);
            }
            // A strict chunk holds one record: waiting for more is pointless.
            let linger_over = !stream.chunk_has_room(settings.chunk_bytes)
                || settings.linger.is_zero()
                || settings.strict_order
                || !stream.accepting
                || stream
                    .chunk_started
                    .checked_add(settings.linger)
                    .is_some_and(|at| at <= now);
            if !(stream.writable && !stream.chunk.is_empty() && linger_over) {
                let waiting = !self.waiting.is_empty();
                if stream.writable
                    && heartbeat_at(stream, &settings.path, waiting).is_some_and(|at| at <= now)
                {
                    stream.writable = false;
                    stream.last_write = now;
                    stream.written_bytes = stream.written_bytes.saturating_add(HEARTBEAT.len());
                    self.actions.push_back(Action::Write {
                        stream: stream.id,
                        chunk: Bytes::from_static(HEARTBEAT),
                    });
                }
                return;
            }
            let chunk = stream.chunk.split().freeze();
            let sent = stream.slots.len() - stream.unsent;
            for slot in stream.slots.iter_mut().skip(sent) {
                if let Slot::Live(entry) = slot {
                    entry.attempts = entry.attempts.saturating_add(1);
                    entry.written_at = Some(now);
                    if entry.first_written == 0 {
                        self.write_seq += 1;
                        entry.first_written = self.write_seq;
                    }
                    entry.ticket.set_maybe_written(true);
                }
            }
            stream.unsent = 0;
            stream.chunk_full = false;
            stream.writable = false;
            stream.last_activity = now;
            stream.last_write = now;
            stream.first_written.get_or_insert(now);
            stream.pending_since.get_or_insert(now);
            stream.written_bytes = stream.written_bytes.saturating_add(chunk.len());
            self.actions.push_back(Action::Write {
                stream: stream.id,
                chunk,
            });
        }
    }

    fn on_report(&mut self, index: usize, report: Outcome, now: Instant) {
        let stream = &mut self.streams[index];
        let id = stream.id;
        // Reports can only be for records sent.
        if stream.slots.len() == stream.unsent {
            self.counters.unmatched_reports += 1;
            return;
        }
        let entry = match stream.slots.pop_front() {
            Some(Slot::Live(entry)) => entry,
            Some(Slot::Gone) => {
                self.counters.late_reports += 1;
                return;
            }
            None => {
                self.counters.unmatched_reports += 1;
                return;
            }
        };
        stream.live -= 1;
        stream.last_activity = now;
        stream.pending_since = (stream.live > stream.unsent).then_some(now);
        let error = match report {
            Ok(report) => {
                self.open_backoff = None;
                self.signals
                    .delivered(entry.encoded.len(), entry.written_at.unwrap_or(now));
                return self.deliver(entry, report);
            }
            Err(error) => error,
        };
        let mut delay = None;
        if error.error_code() == Some(408) {
            // The stream outlived the server's limit: finish it and send
            // the record again on a new one, without waiting.
            stream.accepting = false;
            let unsent = stream.take_unsent();
            self.requeue(unsent);
            self.reconnecting = true;
            delay = Some(Duration::ZERO);
        }
        let class = error.retry_class();
        if class == RetryClass::Throttled {
            self.signals.throttled(entry.written_at.unwrap_or(now));
            if self.credit.is_some() {
                // Paced: it goes as the pace allows, not on a timer.
                delay = Some(Duration::ZERO);
            }
            // Unpaced (the server throttles too little to slow down for):
            // it waits out its own backoff, so that it is not sent again
            // at once in a loop.
        }
        self.after_failure(id, entry, error, class, delay, now);
    }

    fn on_refused(&mut self, mut stream: Stream<T>, error: Error, now: Instant) {
        self.reconnecting = true;
        let unsent = stream.take_unsent();
        let mut sent = stream.take_live();
        let unauthorized = error.status() == Some(401);
        if unauthorized && !self.refreshed {
            // A token may have been revoked or expired early: get new
            // credentials once and send the records again.
            self.refreshed = true;
            self.actions.push_back(Action::RefreshCredentials);
            for entry in &mut sent {
                entry.attempts = entry.attempts.saturating_sub(1);
            }
            sent.extend(unsent);
            self.requeue(sent);
            return;
        }
        if error.status() == Some(413) && sent.len() > 1 {
            // A request refused as too large as a whole (an intermediary's
            // body cap): none of it was processed. Smaller requests carry
            // the records again, at once, as if this one never was; only
            // a request of one record refused so fails it.
            let bytes = self
                .path
                .too_large(now, stream.written_bytes, &self.settings.path);
            self.path_changed = true;
            self.counters.requests_shrunk += 1;
            self.note(Note::Shrunk {
                stream: stream.id,
                records: sent.len(),
                bytes,
            });
            for entry in &mut sent {
                entry.attempts = entry.attempts.saturating_sub(1);
                entry.ticket.set_maybe_written(entry.maybe_written);
            }
            sent.extend(unsent);
            self.requeue(sent);
            return;
        }
        // Records still in the chunk were not sent at all.
        self.requeue(unsent);
        // An intermediary's 502, 503 or 504 (no Confluent error code) may
        // come after it passed the body on, and a 504 is a timeout however
        // it is worded (the server's own request timeout comes after it
        // took the records): what was sent may have been written. The
        // server's other refusals come before a record is read.
        let forwarded = match error.status() {
            Some(504) => true,
            Some(502 | 503) => error.error_code().is_none(),
            _ => false,
        };
        let class = error.retry_class();
        if class == RetryClass::Throttled
            && let Some(pause) = error.retry_after()
        {
            // A limit on requests, not records: every lane waits it out.
            self.signals.pause(pause);
        }
        // The next request waits, whatever the refusal: records that were
        // not written on this one go on it, and a server that refuses
        // every request is not asked again in a tight loop.
        let reopen = self.open_delay(error.retry_after());
        self.reopen_at = now.checked_add(reopen);
        self.note_reopen(stream.id, Some(&error), reopen);
        let delay = class.is_retriable().then_some(reopen);
        let class = if forwarded {
            RetryClass::OutcomeUnknown
        } else {
            not_written(class)
        };
        for entry in sent {
            self.after_failure(stream.id, entry, error.clone(), class, delay, now);
        }
    }

    fn on_ended(
        &mut self,
        mut stream: Stream<T>,
        error: Option<Error>,
        reached: bool,
        now: Instant,
    ) {
        let unsent = stream.take_unsent();
        self.requeue(unsent);
        let sent = stream.take_live();
        if error.is_none() && sent.is_empty() {
            if stream.body_open {
                // The server ended a request the lane had not finished: the
                // next waits out a backoff, so that a server that ends every
                // request at once is not asked again in a tight loop.
                self.reconnecting = true;
                let delay = self.open_delay(None);
                self.reopen_at = now.checked_add(delay);
                self.note_reopen(stream.id, None, delay);
            }
            return;
        }
        self.reconnecting = true;
        if error.is_some()
            && reached
            && stream.answered
            && self
                .path
                .cut_at(now.saturating_duration_since(stream.opened_at))
        {
            self.path_changed = true;
            if let Some(cap) = self.path.age_cap() {
                self.note(Note::AgeCap { cap });
            }
        }
        let delay = self.open_delay(None);
        self.reopen_at = now.checked_add(delay);
        self.note_reopen(stream.id, error.as_ref(), delay);
        let error = error.unwrap_or_else(|| {
            Error::Interrupted("the server ended the response before reporting every record".into())
        });
        let (class, delay) = if reached {
            (RetryClass::OutcomeUnknown, Some(Duration::ZERO))
        } else {
            (RetryClass::Retriable, Some(delay))
        };
        for entry in sent {
            self.after_failure(stream.id, entry, error.clone(), class, delay, now);
        }
    }

    /// Puts records never sent back at the front of the line, in order.
    fn requeue(&mut self, entries: Vec<Entry<T>>) {
        for entry in entries.into_iter().rev() {
            self.waiting.push_front(entry);
        }
    }

    /// The delay before the next request after one failed or was refused.
    fn open_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let policy = self.settings.policy;
        let rng = &mut self.rng;
        let backoff = self.open_backoff.get_or_insert_with(|| policy.backoff(rng));
        let delay = backoff.next().unwrap_or(policy.backoff_max);
        delay.max(retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER)))
    }

    /// Keeps a note for the driver, unless too many wait.
    fn note(&mut self, note: Note) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push_back(note);
        } else {
            self.counters.dropped_notes += 1;
        }
    }

    fn note_reopen(&mut self, stream: u64, cause: Option<&Error>, delay: Duration) {
        self.note(Note::Reopen {
            stream,
            cause: cause.cloned(),
            delay,
        });
    }

    /// Notes a record's retry, in the last note when it is for the same
    /// stream and the same kind of failure.
    fn note_retry(
        &mut self,
        stream: u64,
        error: &Error,
        class: RetryClass,
        attempts: u32,
        delay: Duration,
    ) {
        if let Some(Note::Retry {
            stream: last_stream,
            cause,
            class: last_class,
            records,
            attempts: most,
            backoff,
        }) = self.notes.back_mut()
            && *last_stream == stream
            && *last_class == class
            && same_failure(cause, error)
        {
            *records += 1;
            *most = (*most).max(attempts);
            *backoff = (backoff.0.min(delay), backoff.1.max(delay));
            return;
        }
        self.note(Note::Retry {
            stream,
            cause: error.clone(),
            class,
            records: 1,
            attempts,
            backoff: (delay, delay),
        });
    }

    /// Asks the retry policy what becomes of a record after a failure on
    /// `stream`.
    fn after_failure(
        &mut self,
        stream: u64,
        mut entry: Entry<T>,
        error: Error,
        class: RetryClass,
        delay: Option<Duration>,
        now: Instant,
    ) {
        if class == RetryClass::Throttled {
            entry.throttled = entry.throttled.saturating_add(1);
            self.counters.throttled += 1;
        }
        let failure = Failure {
            class,
            // Requeues of records never sent are the lane's own.
            attempted: true,
            attempts: entry.counted_attempts(),
            retry_after: error.retry_after(),
            delay,
            now,
            deadline: entry.deadline,
        };
        let policy = self.settings.policy;
        let decision = policy.decide(&failure, entry.backoff(), &mut self.rng);
        if class == RetryClass::OutcomeUnknown {
            entry.maybe_written = true;
        }
        entry.ticket.set_maybe_written(entry.maybe_written);
        match decision {
            Decision::Fail
                if entry.maybe_written && error.retry_class() != RetryClass::OutcomeUnknown =>
            {
                // An earlier attempt may have written it: never say it was
                // not.
                let error = Error::MaybeWritten {
                    attempts: entry.attempts,
                    last_error: Box::new(error),
                };
                self.resolve(entry, Err(error));
            }
            Decision::Fail => self.resolve(entry, Err(error)),
            Decision::Expire(reason) => {
                let error = Error::GaveUp {
                    reason,
                    attempts: entry.attempts,
                    may_have_been_written: entry.maybe_written,
                    last_error: Some(Box::new(error)),
                };
                self.resolve(entry, Err(error));
            }
            Decision::RetryAt { at, .. } => {
                let backoff = at.saturating_duration_since(now);
                self.note_retry(stream, &error, class, entry.attempts, backoff);
                entry.failed(error);
                self.counters.retried += 1;
                self.retry_seq += 1;
                self.lower_floor(entry.deadline);
                self.retries.insert((at, self.retry_seq), entry);
            }
            Decision::Requeue => {
                entry.failed(error);
                self.waiting.push_front(entry);
            }
            Decision::Paced { at } => {
                entry.failed(error);
                self.lower_floor(entry.deadline);
                if at > now {
                    // A wait the server asked for, or its own backoff while
                    // records are not paced.
                    self.retry_seq += 1;
                    self.retries.insert((at, self.retry_seq), entry);
                    return;
                }
                // Its own timer would flood a server that asked to slow
                // down: the lane's pace sends it, first among the records.
                if entry.first_written == 0 {
                    self.write_seq += 1;
                    entry.first_written = self.write_seq;
                }
                self.resend.insert(entry.first_written, entry);
            }
        }
    }
}

/// Takes the records whose deadline passed out of `held`.
fn take_expired<K: Ord + Copy, T>(held: &mut BTreeMap<K, Entry<T>>, now: Instant) -> Vec<Entry<T>> {
    let due: Vec<K> = held
        .iter()
        .filter(|(_, e)| e.deadline <= now)
        .map(|(k, _)| *k)
        .collect();
    due.into_iter()
        .filter_map(|key| held.remove(&key))
        .collect()
}

/// What a turn learnt of a stream, applied once the streams are tended.
enum Learnt {
    Buffering { stream: u64, waited: Duration },
    Stalled { stream: u64, waited: Duration },
}

/// When a bounded request stops taking records: its age bound after its
/// first record.
fn bound_age_over<T>(stream: &Stream<T>) -> Option<Instant> {
    let (age, first) = stream.bound.age.zip(stream.first_taken)?;
    first.checked_add(age)
}

/// When a stream still without response headers is taken to be buffered by
/// an intermediary: the check's time after the request went out and its
/// first record was written. Not for a request bounded because of that.
fn buffering_check_at<T>(stream: &Stream<T>, path: &PathSettings) -> Option<Instant> {
    if stream.answered || !stream.body_open || stream.bound.buffered {
        return None;
    }
    let (sending, first) = stream.sending_at.zip(stream.first_written)?;
    sending.max(first).checked_add(path.buffering_check)
}

/// When a stream with records in flight and nothing to write ends its body
/// for lack of reports.
fn stall_at<T>(stream: &Stream<T>, path: &PathSettings, waiting: bool) -> Option<Instant> {
    let stall = path.report_stall?;
    let idle = stream.answered
        && stream.body_open
        && stream.live > 0
        && stream.unsent == 0
        && stream.chunk.is_empty()
        && !waiting;
    let since = stream.pending_since.unwrap_or(stream.last_activity);
    idle.then(|| since.checked_add(stall))?
}

/// When a stream awaiting reports, with nothing to write, writes a
/// heartbeat (once its body has room: a body that has none is being
/// written anyway).
fn heartbeat_at<T>(stream: &Stream<T>, path: &PathSettings, waiting: bool) -> Option<Instant> {
    let quiet = stream.answered
        && stream.body_open
        && stream.writable
        && stream.live > 0
        && stream.chunk.is_empty()
        && !waiting;
    quiet.then(|| stream.last_write.checked_add(path.heartbeat))?
}

/// Whether two failures are of the same kind, for notes: the same variant,
/// status and error code.
fn same_failure(a: &Error, b: &Error) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
        && a.status() == b.status()
        && a.error_code() == b.error_code()
}

/// The class of a failure of a request refused as a whole: whatever the
/// error says about records in general, none on it was written.
fn not_written(class: RetryClass) -> RetryClass {
    match class {
        RetryClass::OutcomeUnknown => RetryClass::Retriable,
        other => other,
    }
}
