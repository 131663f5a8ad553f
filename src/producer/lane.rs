//! One connection of the producer to one topic: the async shell that runs a
//! lane's [`Machine`] over reqwest. It feeds the machine records from the
//! inbox, events from its requests and the time, and carries out what the
//! machine decides; it decides nothing itself.

use super::config::ProducerConfig;
use super::delivery::{LaneShared, Pending, Room};
use super::inbox::Inbox;
use super::machine::{Action, Counters, Entry, Event, Machine, Note};
use super::stats::{ConnectionCounters, Stats};
use crate::client::Client;
use crate::client::request::RecordsPath;
use crate::client::stream::{StreamFailed, UploadBody};
use crate::error::Error;
use crate::retry::pace::{ASK_AGAIN, PaceChange};
use crate::wire::decode::ReportDecoder;
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep, sleep_until};
use tracing::{Instrument, debug, info, info_span, warn};

/// Chunks handed to the HTTP body but not yet written to the socket.
const BODY_QUEUE: usize = 2;
/// Batches of reports decoded but not yet matched by the lane.
const EVENT_QUEUE: usize = 64;

type BodySender = mpsc::Sender<Result<Bytes, std::io::Error>>;
type BodyPermit = mpsc::OwnedPermit<Result<Bytes, std::io::Error>>;

/// Where the producer keeps a lane while it runs.
pub(crate) type LaneSlot = Mutex<SlotState>;

/// A slot's lane, if one runs, and the block its records are encoded into.
#[derive(Default)]
pub(crate) struct SlotState {
    pub(crate) lane: Option<Arc<LaneHandle>>,
    pub(crate) encoder: BytesMut,
}

/// What the rest of the producer holds of a lane.
pub(crate) struct LaneHandle {
    /// Records whose room is taken go here; closing it makes the lane
    /// finish what was sent and stop.
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) shared: Arc<LaneShared>,
}

/// A producer dropped without `close` still lets its lanes finish.
impl Drop for LaneHandle {
    fn drop(&mut self) {
        self.inbox.close();
    }
}

/// What every lane of a producer shares.
pub(crate) struct LaneContext {
    pub(crate) client: Client,
    pub(crate) config: Arc<ProducerConfig>,
    pub(crate) stats: Arc<Stats>,
    /// Becomes true when the producer's close gives up waiting.
    pub(crate) abandon: watch::Receiver<bool>,
    /// The producer's bounds over every lane.
    pub(crate) room: Arc<Room>,
    /// The counters of the connection the lane serves.
    pub(crate) connection: Arc<ConnectionCounters>,
}

pub(crate) fn spawn(
    context: LaneContext,
    topic: &str,
    index: usize,
    slot: Weak<LaneSlot>,
) -> LaneHandle {
    let LaneContext {
        client,
        config,
        stats,
        abandon,
        room,
        connection,
    } = context;
    let inbox = Arc::new(Inbox::default());
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let shared = Arc::new(LaneShared::new(
        config.max_in_flight_records,
        config.max_in_flight_bytes,
        room,
        stats.clone(),
        Arc::clone(&connection),
    ));
    let now = Instant::now();
    stats.lane_started();
    let driver = Driver {
        machine: Machine::new(config.lane_settings(), fastrand::u64(..), now),
        url: client.records_url(topic, RecordsPath::Records),
        client,
        shared: Arc::clone(&shared),
        stats,
        connection,
        inbox: Arc::clone(&inbox),
        taken: VecDeque::new(),
        incoming_open: true,
        abandon,
        abandon_open: true,
        timer: Box::pin(sleep_until(now)),
        timer_at: None,
        events_tx,
        events,
        streams: HashMap::new(),
        slot,
        path_version: 0,
        pace_wake: None,
    };
    let span = info_span!("kafka_rest_lane", topic = %topic, lane = index);
    tokio::spawn(driver.run().instrument(span));
    LaneHandle { inbox, shared }
}

/// The I/O side of one of the lane's requests.
struct StreamIo {
    body: Option<BodySender>,
    permit: Option<BodyPermit>,
    reader: JoinHandle<()>,
    /// The request follows one that ended abnormally.
    reconnect: bool,
    /// Set once the server answered 200: the connection's counters, which
    /// count the stream as open until it is dropped.
    open: Option<Arc<ConnectionCounters>>,
}

impl Drop for StreamIo {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(connection) = self.open.take() {
            connection.stream_closed();
        }
    }
}

struct Driver {
    machine: Machine<Pending>,
    client: Client,
    url: String,
    shared: Arc<LaneShared>,
    stats: Arc<Stats>,
    connection: Arc<ConnectionCounters>,
    inbox: Arc<Inbox>,
    /// Records just taken from the inbox, on their way to the machine.
    taken: VecDeque<Entry<Pending>>,
    /// False once the inbox is closed and emptied.
    incoming_open: bool,
    /// Becomes true when the producer's close gives up waiting.
    abandon: watch::Receiver<bool>,
    /// False once the producer is gone: nothing can be abandoned then.
    abandon_open: bool,
    /// Wakes the lane at the machine's next deadline; reset only when that
    /// deadline changes.
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    events_tx: mpsc::Sender<(u64, Event)>,
    events: mpsc::Receiver<(u64, Event)>,
    streams: HashMap<u64, StreamIo>,
    /// Emptied when the lane stops after being idle.
    slot: Weak<LaneSlot>,
    /// The version of the client's path state the machine follows.
    path_version: u64,
    /// When to ask the pace for more credit.
    pace_wake: Option<Instant>,
}

/// A lane that stops, however it stops, makes callers waiting for room fail.
impl Drop for Driver {
    fn drop(&mut self) {
        self.shared.close();
        // Records handed over since are refused, and those queued resolve
        // as closed when dropped here.
        self.inbox.close();
        self.inbox.take_all(&mut VecDeque::new());
        self.stats.lane_ended();
    }
}

impl Driver {
    async fn run(mut self) {
        loop {
            #[cfg(test)]
            self.stats
                .lane_turns
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Room freed by the records resolved since the last turn.
            self.shared.give_back();
            self.take_incoming();
            self.follow_path();
            let now = Instant::now();
            self.follow_pace(now);
            self.machine.poll(now);
            if self.pace_wake.is_none() && self.machine.is_starved() {
                // Records became ready after the pace was asked.
                self.pace_wake = now.checked_add(ASK_AGAIN);
            }
            self.carry_out().await;
            // Room freed by the records just resolved.
            self.shared.give_back();
            if self.machine.is_finished() {
                debug!("lane finished");
                return;
            }
            let now = Instant::now();
            if self.machine.is_idle_over(now) {
                if self.retire() {
                    debug!("idle lane stopped");
                    return;
                }
                // A caller is handing a record over: stay.
                self.machine.touch(now);
            }

            let wake = match (self.machine.next_wake(), self.pace_wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if wake != self.timer_at {
                if let Some(at) = wake {
                    self.timer.as_mut().reset(at);
                }
                self.timer_at = wake;
            }
            let has_timer = wake.is_some();
            let wants = self
                .machine
                .wants_writable()
                .and_then(|id| self.streams.get(&id).map(|io| (id, io)))
                .filter(|(_, io)| io.permit.is_none())
                .and_then(|(id, io)| io.body.clone().map(|body| (id, body)));
            let wants_stream = wants.as_ref().map(|(id, _)| *id);
            // A closed channel (the producer is gone) would be ready at
            // every turn: it is watched only while open.
            let watch_abandon = self.abandon_open && !*self.abandon.borrow();
            tokio::select! {
                biased;
                event = self.events.recv() => {
                    // The driver holds a sender, so the channel never closes.
                    if let Some((id, event)) = event {
                        if matches!(event, Event::Opened) {
                            self.on_opened(id);
                        }
                        self.machine.on_event(id, event, Instant::now());
                    }
                }
                permit = async { wants.expect("checked").1.reserve_owned().await }, if wants_stream.is_some() => {
                    self.on_permit(wants_stream, permit.ok());
                }
                _ = self.inbox.ready(), if self.incoming_open => {}
                _ = self.timer.as_mut(), if has_timer => {
                    self.timer_at = None;
                }
                changed = self.abandon.changed(), if watch_abandon => {
                    if changed.is_err() {
                        self.abandon_open = false;
                    } else if *self.abandon.borrow() {
                        // Records already queued are given up with the rest.
                        self.take_incoming();
                        self.machine.abandon();
                    }
                }
            }
        }
    }

    /// Leaves the lane's slot if nobody else holds the lane and nothing is
    /// queued, so that the next record starts a new lane.
    fn retire(&mut self) -> bool {
        let Some(slot) = self.slot.upgrade() else {
            // The producer is gone; the inbox is closed.
            return false;
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let ours = slot.lane.as_ref().is_some_and(|lane| {
            Arc::ptr_eq(&lane.inbox, &self.inbox) && Arc::strong_count(lane) == 1
        });
        if !ours || !self.inbox.close_if_empty() {
            return false;
        }
        *slot = SlotState::default();
        true
    }

    /// Shares what the machine learnt of the path with the client's other
    /// lanes, and follows what they learnt.
    fn follow_path(&mut self) {
        let path = self.client.path();
        if let Some(learnt) = self.machine.take_path_change() {
            self.path_version = path.publish(learnt);
        } else if path.version() != self.path_version {
            let (state, version) = path.get();
            self.machine.adopt_path(state);
            self.path_version = version;
        }
    }

    /// Tells the client's pace what the machine learnt of the server's,
    /// and hands the machine the credit it may write on.
    fn follow_pace(&mut self, now: Instant) {
        let signals = self.machine.take_signals();
        let held = self.machine.take_credit();
        let machine = &self.machine;
        let grant = self
            .client
            .pace()
            .exchange(now, &signals, held, || machine.pace_demand());
        self.machine.set_credit(grant.credit);
        self.pace_wake = grant.again_at;
        match grant.changed {
            Some(PaceChange::Started(records_per_s)) => info!(
                records_per_s,
                "the server throttles records: they are paced from now on"
            ),
            Some(PaceChange::Slowed(records_per_s)) => {
                debug!(
                    records_per_s,
                    "the server throttles records: the pace slows"
                )
            }
            Some(PaceChange::Lifted) => {
                info!("no record throttled for a while: records are no longer paced")
            }
            None => {}
        }
    }

    /// Hands the machine every record queued in the inbox.
    fn take_incoming(&mut self) {
        if !self.incoming_open {
            return;
        }
        self.incoming_open = self.inbox.take_all(&mut self.taken);
        self.machine.push_all(&mut self.taken);
        if !self.incoming_open {
            self.machine.close();
        }
    }

    /// The server answered a request with 200: its stream is open.
    fn on_opened(&mut self, id: u64) {
        let Some(io) = self.streams.get_mut(&id) else {
            return;
        };
        if io.open.is_none() {
            self.connection.stream_opened(io.reconnect);
            self.stats.stream_opened(io.reconnect);
            io.open = Some(Arc::clone(&self.connection));
            debug!(stream = id, reconnect = io.reconnect, "stream open");
        }
    }

    fn on_permit(&mut self, id: Option<u64>, permit: Option<BodyPermit>) {
        let Some(id) = id else { return };
        let Some(io) = self.streams.get_mut(&id) else {
            return;
        };
        match permit {
            Some(permit) => {
                io.permit = Some(permit);
                self.machine.on_event(id, Event::Writable, Instant::now());
            }
            // The request is over; its reader reports how.
            None => io.body = None,
        }
    }

    async fn carry_out(&mut self) {
        while let Some(action) = self.machine.next_action() {
            match action {
                Action::Write { stream, chunk } => {
                    if let Some(io) = self.streams.get_mut(&stream) {
                        match io.permit.take() {
                            Some(permit) => {
                                permit.send(Ok(chunk));
                            }
                            None => {
                                if let Some(body) = &io.body {
                                    let _ = body.try_send(Ok(chunk));
                                }
                            }
                        }
                    }
                }
                Action::Open { stream, reconnect } => self.open(stream, reconnect),
                Action::EndBody { stream } => {
                    if let Some(io) = self.streams.get_mut(&stream) {
                        debug!(stream, "ending the request body");
                        io.body = None;
                        io.permit = None;
                    }
                }
                Action::Abort { stream } => {
                    debug!(stream, "request given up");
                    self.streams.remove(&stream);
                }
                Action::RefreshCredentials => {
                    debug!("credentials refused; getting new ones and sending the records again");
                    self.client.credentials_rejected();
                }
            }
        }
        while let Some(note) = self.machine.next_note() {
            log_note(note);
        }
        self.record_counters();
        if let Some(learnt) = self.machine.take_path_change() {
            self.path_version = self.client.path().publish(learnt);
        }
    }

    fn record_counters(&mut self) {
        let Counters {
            retried,
            late_reports,
            unmatched_reports,
            dropped_notes,
            buffering_detected,
            requests_shrunk,
            stalled_bodies,
            throttled,
        } = self.machine.take_counters();
        self.stats.add_throttled(throttled);
        self.stats
            .add_path_counts(buffering_detected, requests_shrunk, stalled_bodies);
        self.stats.add_retried(retried);
        self.connection.add_retried(retried);
        self.stats.add_late_reports(late_reports);
        if dropped_notes > 0 {
            debug!(dropped_notes, "more retry decisions than logged");
        }
        if unmatched_reports > 0 {
            warn!(
                unmatched_reports,
                "delivery reports without a record; ignored"
            );
        }
    }

    fn open(&mut self, stream: u64, reconnect: bool) {
        let (body_tx, mut body_rx) = mpsc::channel(BODY_QUEUE);
        // The HTTP client reads the body once the request is out: the
        // first read tells the lane so.
        let (out_tx, out) = oneshot::channel();
        let mut out_tx = Some(out_tx);
        let body: UploadBody = Box::pin(futures_util::stream::poll_fn(move |cx| {
            if let Some(out_tx) = out_tx.take() {
                let _ = out_tx.send(());
            }
            body_rx.poll_recv(cx)
        }));
        debug!(stream, reconnect, "stream opening");
        let reader = tokio::spawn(
            read_stream(
                self.client.clone(),
                self.url.clone(),
                body,
                out,
                stream,
                self.events_tx.clone(),
            )
            .in_current_span(),
        );
        self.streams.insert(
            stream,
            StreamIo {
                body: Some(body_tx),
                permit: None,
                reader,
                reconnect,
                open: None,
            },
        );
    }
}

/// Logs why records or the next request wait, as the machine decided.
fn log_note(note: Note) {
    match note {
        Note::Retry {
            stream,
            cause,
            class,
            records,
            attempts,
            backoff: (shortest, longest),
        } => debug!(
            stream,
            records,
            attempts,
            class = ?class,
            backoff = %Backoff(shortest, longest),
            error = %cause,
            "retry scheduled"
        ),
        Note::Reopen {
            stream,
            cause,
            delay,
        } => match cause {
            Some(error) => debug!(
                stream,
                class = ?error.retry_class(),
                backoff = ?delay,
                %error,
                "next stream after a backoff: the last one failed"
            ),
            None => debug!(
                stream,
                backoff = ?delay,
                "next stream after a backoff: the server ended the last one early"
            ),
        },
        Note::Buffering {
            stream,
            waited,
            bytes,
        } => warn!(
            stream,
            ?waited,
            max_request_bytes = bytes,
            "no response headers yet: something on the path buffers request bodies; \
             ending this body and sending bounded requests for a while"
        ),
        Note::Shrunk {
            stream,
            records,
            bytes,
        } => info!(
            stream,
            records,
            max_request_bytes = bytes,
            "a request of several records was refused as too large (HTTP 413); \
             sending them again in smaller requests"
        ),
        Note::Stalled { stream, waited } => debug!(
            stream,
            ?waited,
            "no report for a while with nothing to write: ending the body; \
             later records go on the next request"
        ),
        Note::AgeCap { cap } => info!(
            ?cap,
            "requests were cut twice at about the same age: bodies end before it from now on"
        ),
    }
}

/// A backoff, or the range of backoffs, chosen for the records of a note.
struct Backoff(Duration, Duration);

impl std::fmt::Display for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == self.1 {
            write!(f, "{:?}", self.0)
        } else {
            write!(f, "{:?} to {:?}", self.0, self.1)
        }
    }
}

/// Sends the request and turns its response into events for the lane.
async fn read_stream(
    client: Client,
    url: String,
    body: UploadBody,
    out: oneshot::Receiver<()>,
    stream: u64,
    events: mpsc::Sender<(u64, Event)>,
) {
    let send = |event: Event| {
        let events = events.clone();
        async move { events.send((stream, event)).await.is_ok() }
    };
    let (headers, credentials_until) = match client.credential_headers_until().await {
        Ok(headers) => headers,
        Err(error) => {
            warn!(%error, "could not get credentials for a stream");
            send(Event::Refused(error)).await;
            return;
        }
    };
    let mut sending = std::pin::pin!(client.send_stream(&url, headers, body));
    let mut out = Some(out);
    let sent = loop {
        tokio::select! {
            biased;
            sent = &mut sending => break sent,
            went = async { out.as_mut().expect("checked").await }, if out.is_some() => {
                out = None;
                if went.is_ok() && !send(Event::Sending { credentials_until }).await {
                    return;
                }
            }
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(StreamFailed { error, reached }) => {
            send(Event::Ended {
                error: Some(error),
                reached,
            })
            .await;
            return;
        }
    };
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let error = response.refusal().await;
        warn!(stream, error = %error, "stream refused");
        send(Event::Refused(Error::Api(error))).await;
        return;
    }
    debug!(stream, version = ?response.version(), "stream answered");
    if !send(Event::Opened).await {
        return;
    }
    let mut decoder = ReportDecoder::default();
    let mut body = response.into_body();
    let read_timeout = client.stream_read_timeout();
    let error = loop {
        let Ok(next) = tokio::time::timeout(read_timeout, body.next()).await else {
            break Some(Error::Interrupted(format!(
                "no part of the response came for {read_timeout:?}"
            )));
        };
        match next {
            Some(Ok(chunk)) => {
                // About as many as the piece can hold, so that the vector
                // rarely grows (reports are rarely under 128 bytes).
                let mut reports = Vec::with_capacity(chunk.len() / 128 + 1);
                let decoded = decoder.push(&chunk, &mut reports);
                // Reports decoded before an undecodable one still count.
                if !reports.is_empty() {
                    let outcomes = reports.into_iter().map(|r| r.into_result()).collect();
                    if !send(Event::Reports(outcomes)).await {
                        return;
                    }
                }
                if let Err(e) = decoded {
                    break Some(Error::Interrupted(e.to_string()));
                }
            }
            Some(Err(error)) => break Some(error),
            None if decoder.has_partial() => {
                break Some(Error::Interrupted(
                    "the response ended inside a delivery report".into(),
                ));
            }
            None => break None,
        }
    };
    match &error {
        Some(error) => warn!(stream, %error, "stream ended"),
        None => debug!(stream, "stream closed"),
    }
    send(Event::Ended {
        error,
        reached: true,
    })
    .await;
}
