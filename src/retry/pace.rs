//! How fast records may go to a server that throttles them: a pure pacing
//! policy, fed by what the server answers and the clock it is handed.
//!
//! Until the server throttles a record the pace is unlimited and costs
//! nothing but counting deliveries. When enough of the records written
//! lately are throttled (an in-band 429 or 42901) to blame the rate, the
//! records in flight then are refused whatever the pace, so nothing goes
//! until they are answered ([`Onset`]): what the server took meanwhile, at
//! its limit, is where the pace starts. Each later throttle sets the pace
//! to a fraction ([`DECREASE`]) of the smaller of the rate in force and
//! what the server took over the stretch of reports in which it throttled,
//! in records and in bytes alike, since a report does not say which of the
//! server's limits it hit. Those rates are read by when reports came (the
//! server's time), only where it throttled, so that a burst it had in
//! store is not taken for its rate. From there the pace grows back as
//! CUBIC does: fast at first, flat near the rate that was throttled, then
//! faster again, doubling every [`PLATEAU`] once twice that has passed
//! without throttling, so that a limit that was raised is found again
//! within seconds. Records written before the pace was last set say
//! nothing of it: their throttling is ignored.
//!
//! [`SharedPace`] holds the state for every lane of a client's clones and of
//! every client of the same endpoint and cluster, as the server's limits are
//! per cluster and global.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// The fraction of the rate a throttled record leaves. The server's
/// limiter queues nothing (a record over the limit is refused, not held),
/// so there is no queue to drain as after a loss in TCP: just below what
/// it accepted is enough.
const DECREASE: f64 = 0.95;
/// How long the pace takes to grow back to the rate that was throttled.
const PLATEAU: Duration = Duration::from_millis(500);
/// Deliveries are counted by when their records were written, in slots of
/// this length, over the last [`WINDOW_SLOTS`] of them (a second): the
/// rate the server accepted is what got through of what was written over a
/// time, whenever the reports came.
const SLOT: Duration = Duration::from_millis(10);
const WINDOW_SLOTS: usize = 100;
/// The pace slows only when at least this share (in percent) of the
/// records written over the last [`SHARE_SLOTS`] slots (or over the whole
/// window, when those are too few) was throttled, of at least
/// [`MIN_SAMPLE`] records.
const THROTTLED_PERCENT: u64 = 2;
const SHARE_SLOTS: u64 = 10;
const MIN_SAMPLE: u64 = 8;
/// When an unlimited server first throttles, records wait until it has not
/// throttled for [`ONSET_QUIET`] (the records in flight are answered), or
/// for [`ONSET_WAIT`] at most.
const ONSET_QUIET: Duration = Duration::from_millis(20);
const ONSET_WAIT: Duration = Duration::from_millis(100);
/// The shortest time the server throttled at its onset that measures it.
const ONSET_SPAN: Duration = Duration::from_millis(2);
/// How many of the latest slots in which the server throttled measure the
/// rate it accepts at its limit.
const SATURATED_SLOTS: usize = 10;
/// Bytes per second that bound nothing: the pace of a server whose byte
/// rate is not known yet.
const UNKNOWN_BYTES_PER_S: f64 = 1e15;
/// Records a full pace holds in store: this much of its rate, and at least
/// one record.
const BURST: Duration = Duration::from_millis(10);
/// Credit is handed out in quanta of this much of the rate, so that a lane
/// is not woken for every record.
const QUANTUM: Duration = Duration::from_millis(5);
/// How soon a lane whose records became ready without credit, after it
/// asked, asks again.
pub(crate) const ASK_AGAIN: Duration = Duration::from_millis(1);
/// The lowest pace, whatever the server accepted.
const MIN_RECORDS_PER_S: f64 = 1.0;
const MIN_BYTES_PER_S: f64 = 1024.0;
/// A pace this many times what the server accepted over the last second is
/// no pace at all: it is lifted.
const LIFT_RATIO: f64 = 64.0;
/// The longest pause a server's `Retry-After` imposes.
pub(crate) use crate::limits::MAX_RETRY_AFTER;

/// What a lane may write: records, and bytes. Bytes may go below zero: a
/// record is written while any byte credit is left, and its whole length
/// is charged, so that a record larger than the pace's store still goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Credit {
    pub(crate) records: u64,
    pub(crate) bytes: i64,
}

impl Credit {
    /// Whether a record may be written on this credit.
    pub(crate) fn admits(&self) -> bool {
        self.records > 0 && self.bytes > 0
    }

    /// Charges one record of `len` bytes.
    pub(crate) fn charge(&mut self, len: usize) {
        self.records = self.records.saturating_sub(1);
        self.bytes = self
            .bytes
            .saturating_sub(i64::try_from(len).unwrap_or(i64::MAX));
    }
}

/// What a lane would write now if it could.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Demand {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

/// What a lane learnt of the server's pace since it last told it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Signals {
    /// Records delivered, and their bytes.
    pub(crate) delivered: u64,
    pub(crate) delivered_bytes: u64,
    /// When the delivered records were written: the first and the last.
    pub(crate) delivered_written: Option<(Instant, Instant)>,
    /// Records refused for rate.
    pub(crate) throttled: u64,
    /// When they were written: the first and the last. Apart from the
    /// delivered, so that the slots in which the server refused records
    /// are told from those in which it took them all.
    pub(crate) throttled_written: Option<(Instant, Instant)>,
    /// A pause the server asked for (`Retry-After` on a refused request).
    pub(crate) pause: Option<Duration>,
}

impl Signals {
    /// Counts a delivered record of `bytes` bytes, written at `written`.
    pub(crate) fn delivered(&mut self, bytes: usize, written: Instant) {
        self.delivered += 1;
        self.delivered_bytes = self.delivered_bytes.saturating_add(bytes as u64);
        widen(&mut self.delivered_written, written);
    }

    /// Counts a record refused for rate, written at `written`.
    pub(crate) fn throttled(&mut self, written: Instant) {
        self.throttled += 1;
        widen(&mut self.throttled_written, written);
    }

    /// Asks for a pause (the longest asked wins).
    pub(crate) fn pause(&mut self, pause: Duration) {
        self.pause = Some(self.pause.map_or(pause, |p| p.max(pause)));
    }
}

/// Widens `range` to hold `at`.
fn widen(range: &mut Option<(Instant, Instant)>, at: Instant) {
    *range = Some(match *range {
        Some((first, last)) => (first.min(at), last.max(at)),
        None => (at, at),
    });
}

/// The answer to a lane: the credit it holds from now (`None`: unlimited,
/// write freely) and, when it got less than it wanted, when to ask again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) credit: Option<Credit>,
    pub(crate) again_at: Option<Instant>,
    /// What the signals changed of the pace, for the log.
    pub(crate) changed: Option<PaceChange>,
}

/// A change of the pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PaceChange {
    /// Records were unlimited and are paced now, at this many per second.
    Started(u64),
    /// The pace slowed to this many records per second.
    Slowed(u64),
    /// Nothing was throttled for a while: records are unlimited again.
    Lifted,
}

/// Reports over the last second of writes, in slots of write time.
#[derive(Clone, Debug)]
struct Window {
    /// Per slot: its number (write time since `origin`, in slots), records
    /// delivered, their bytes, records throttled.
    slots: Box<[[u64; 4]]>,
    origin: Option<Instant>,
    /// The first and the last write time of any record reported.
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            slots: vec![[0; 4]; WINDOW_SLOTS].into_boxed_slice(),
            origin: None,
            first: None,
            last: None,
        }
    }
}

impl Window {
    fn slot(&mut self, at: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(at);
        let since = at.saturating_duration_since(origin);
        // u64 holds far more slots than any Instant's range.
        (since.as_nanos() / SLOT.as_nanos()) as u64 + 1
    }

    /// Records reported, written from `first` to `last`: `delivered` (of
    /// `bytes` bytes) and `throttled`, spread evenly over the slots of
    /// those writes.
    fn add(
        &mut self,
        (first, last): (Instant, Instant),
        delivered: u64,
        bytes: u64,
        throttled: u64,
    ) {
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
        let (from, to) = (self.slot(first), self.slot(last));
        let from = from.max(to.saturating_sub(WINDOW_SLOTS as u64 - 1));
        let count = to - from + 1;
        // Each slot's share, the remainders going to the first slots.
        let share = |total: u64, index: u64| total / count + u64::from(index < total % count);
        for (index, slot) in (from..=to).enumerate() {
            let entry = &mut self.slots[(slot % WINDOW_SLOTS as u64) as usize];
            if entry[0] != slot {
                if entry[0] > slot {
                    // Older than what the slot holds now: out of the window.
                    continue;
                }
                *entry = [slot, 0, 0, 0];
            }
            let index = index as u64;
            entry[1] = entry[1].saturating_add(share(delivered, index));
            entry[2] = entry[2].saturating_add(share(bytes, index));
            entry[3] = entry[3].saturating_add(share(throttled, index));
        }
    }

    /// Sums of the slots within `slots` of the last write reported.
    fn sums(&mut self, slots: u64) -> [u64; 3] {
        let Some(last) = self.last else {
            return [0; 3];
        };
        let slot = self.slot(last);
        let oldest = slot.saturating_sub(slots - 1);
        let mut sums = [0u64; 3];
        for entry in self.slots.iter() {
            if entry[0] != 0 && entry[0] >= oldest && entry[0] <= slot {
                for (sum, value) in sums.iter_mut().zip(&entry[1..]) {
                    *sum = sum.saturating_add(*value);
                }
            }
        }
        sums
    }

    /// Records and bytes per second delivered of what was written over the
    /// last second of writes reported (or since the first, when shorter).
    fn rates(&mut self) -> (f64, f64) {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return (0.0, 0.0);
        };
        let [records, bytes, _] = self.sums(WINDOW_SLOTS as u64);
        let span = last
            .saturating_duration_since(first)
            .saturating_add(SLOT)
            .min(SLOT * WINDOW_SLOTS as u32)
            .as_secs_f64();
        (records as f64 / span, bytes as f64 / span)
    }

    /// Records and bytes per second delivered over the stretch of the
    /// latest slots (up to [`SATURATED_SLOTS`] of them) in which the server
    /// also throttled: while it refused records the server was at its
    /// limit, so what got through then is the limit, whatever got through
    /// before (a burst it had in store). Kept by when reports came, the
    /// server's time: records are written faster than it reads them
    /// whenever the connection buffers. `None` when fewer than
    /// [`MIN_SAMPLE`] records got through, or the stretch is shorter than a
    /// slot.
    fn saturated_rates(&mut self) -> Option<(f64, f64)> {
        let last = self.slot(self.last?);
        let oldest = last.saturating_sub(WINDOW_SLOTS as u64 - 1);
        let mut saturated: Vec<[u64; 4]> = self
            .slots
            .iter()
            .filter(|e| e[0] != 0 && e[0] >= oldest && e[0] <= last && e[3] > 0)
            .copied()
            .collect();
        saturated.sort_unstable_by_key(|e| std::cmp::Reverse(e[0]));
        saturated.truncate(SATURATED_SLOTS);
        let (Some(newest), Some(oldest)) = (saturated.first(), saturated.last()) else {
            return None;
        };
        // Everything that came after the first of them up to the last
        // report: the slots between without a report count as time too,
        // and the first, which the throttling may have begun within, only
        // marks the start.
        let (from, to) = (oldest[0], newest[0]);
        let (Some(origin), Some(last)) = (self.origin, self.last) else {
            return None;
        };
        let start = u32::try_from(from)
            .ok()
            .and_then(|from| SLOT.checked_mul(from))
            .and_then(|since| origin.checked_add(since))?;
        let span = last.saturating_duration_since(start);
        let [mut delivered, mut bytes] = [0u64; 2];
        for e in self.slots.iter().filter(|e| e[0] > from && e[0] <= to) {
            delivered = delivered.saturating_add(e[1]);
            bytes = bytes.saturating_add(e[2]);
        }
        if delivered < MIN_SAMPLE || span < SLOT {
            return None;
        }
        let span = span.as_secs_f64();
        Some((delivered as f64 / span, bytes as f64 / span))
    }

    /// Whether records written lately were throttled often enough to say
    /// the rate is at fault: a server that throttles a few records whatever
    /// the rate is not answered by slowing down to nothing.
    fn throttling_is_the_rate(&mut self) -> bool {
        let [mut delivered, _, mut throttled] = self.sums(SHARE_SLOTS);
        if delivered.saturating_add(throttled) < MIN_SAMPLE {
            [delivered, _, throttled] = self.sums(WINDOW_SLOTS as u64);
        }
        let reported = delivered.saturating_add(throttled);
        reported >= MIN_SAMPLE
            && throttled.saturating_mul(100) >= THROTTLED_PERCENT.saturating_mul(reported)
    }

    /// Records per second reported (delivered or throttled) of what was
    /// written over the window: the rate the lanes wrote at.
    fn written_rate(&mut self) -> f64 {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return 0.0;
        };
        let [delivered, _, throttled] = self.sums(WINDOW_SLOTS as u64);
        let span = last
            .saturating_duration_since(first)
            .saturating_add(SLOT)
            .min(SLOT * WINDOW_SLOTS as u32)
            .as_secs_f64();
        delivered.saturating_add(throttled) as f64 / span
    }
}

/// The pace once a server throttled: the rates that were throttled and
/// when, from which the rates in force grow.
#[derive(Clone, Copy, Debug)]
struct Limit {
    /// Records and bytes per second at the last decrease (CUBIC's W_max).
    base: (f64, f64),
    /// When the growth began: the last decrease.
    since: Instant,
    /// When the pace was last set: what was written before says nothing
    /// of it.
    set_at: Instant,
}

impl Limit {
    /// The multiple of `base` in force `t` after the decrease: from
    /// [`DECREASE`] up to 1 at [`PLATEAU`], 1 + (1 - DECREASE) at twice
    /// the plateau, then doubling every plateau.
    fn factor(t: Duration) -> f64 {
        let k = PLATEAU.as_secs_f64();
        let t = t.as_secs_f64().min(3600.0);
        if t <= 2.0 * k {
            let x = (t - k) / k;
            1.0 + (1.0 - DECREASE) * x * x * x
        } else {
            (1.0 + (1.0 - DECREASE)) * 2f64.powf(((t - 2.0 * k) / k).min(60.0))
        }
    }

    fn rates(&self, now: Instant) -> (f64, f64) {
        let f = Limit::factor(now.saturating_duration_since(self.since));
        (
            (self.base.0 * f).max(MIN_RECORDS_PER_S),
            (self.base.1 * f).max(MIN_BYTES_PER_S),
        )
    }
}

/// The pace of one endpoint and cluster.
#[derive(Clone, Debug, Default)]
pub(crate) struct PaceState {
    limit: Option<Limit>,
    /// Records and bytes in store, when limited.
    tokens: (f64, f64),
    refilled_at: Option<Instant>,
    /// No record goes before this (a server's `Retry-After`).
    paused_until: Option<Instant>,
    /// An unlimited server throttled: nothing goes until its rate at the
    /// limit is measured.
    onset: Option<Onset>,
    delivered: Window,
    /// The same reports, by when they came.
    arrivals: Window,
    /// Decreases so far.
    decreases: u64,
}

impl PaceState {
    /// Whether records are paced now.
    #[cfg(test)]
    pub(crate) fn is_limited(&self) -> bool {
        self.limit.is_some()
    }

    /// The rates in force, when limited: records and bytes per second.
    pub(crate) fn rates(&self, now: Instant) -> Option<(f64, f64)> {
        self.limit.map(|limit| limit.rates(now))
    }

    /// Decreases so far.
    #[cfg(test)]
    pub(crate) fn decreases(&self) -> u64 {
        self.decreases
    }

    /// Takes back what a lane held, learns from its signals and hands it
    /// the credit it may use until it asks again. `demand` (what the lane
    /// would write) is asked only when records are paced.
    pub(crate) fn exchange(
        &mut self,
        now: Instant,
        signals: &Signals,
        held: Option<Credit>,
        demand: impl FnOnce() -> Demand,
    ) -> Grant {
        if let Some(written) = signals.delivered_written {
            self.delivered
                .add(written, signals.delivered, signals.delivered_bytes, 0);
        }
        if let Some(written) = signals.throttled_written {
            self.delivered.add(written, 0, 0, signals.throttled);
        }
        if signals.delivered > 0 || signals.throttled > 0 {
            self.arrivals.add(
                (now, now),
                signals.delivered,
                signals.delivered_bytes,
                signals.throttled,
            );
        }
        let (decreases, limited) = (self.decreases, self.limit.is_some());
        if let Some(onset) = &mut self.onset {
            onset.learn(now, signals);
        }
        if let Some((_, last)) = signals.throttled_written {
            self.throttled(now, last);
        }
        if let Some(pause) = signals.pause {
            let until = now.checked_add(pause.min(MAX_RETRY_AFTER));
            self.paused_until = self.paused_until.max(until);
        }
        self.refill(now);
        if let Some(held) = held {
            self.tokens.0 += held.records as f64;
            self.tokens.1 += held.bytes as f64;
        }
        if let Some(onset) = self.onset.filter(|o| o.is_over(now)) {
            self.onset = None;
            // Both measures are rough over the few milliseconds the
            // records in flight take to answer: the lower one, as a pace
            // too slow costs a second of growth and one too fast costs
            // refused records.
            let saturated = self.arrivals.saturated_rates();
            match (onset.rates(), saturated) {
                (Some(a), Some(b)) => self.measured(now, (a.0.min(b.0), a.1.min(b.1))),
                (Some(base), None) | (None, Some(base)) => self.measured(now, base),
                (None, None) => self.decrease(now),
            }
        }
        if self.limit.is_some() {
            self.lift_if_loose(now);
        }
        let rate = self.rates(now).map_or(0, |(records, _)| records as u64);
        let changed = match (self.decreases != decreases, limited, self.limit.is_some()) {
            (true, false, _) => Some(PaceChange::Started(rate)),
            (true, true, _) => Some(PaceChange::Slowed(rate)),
            (false, true, false) => Some(PaceChange::Lifted),
            _ => None,
        };
        if let Some(until) = self.paused_until.filter(|at| *at > now) {
            return Grant {
                credit: Some(Credit::default()),
                again_at: Some(until),
                changed,
            };
        }
        if self.onset.is_some() {
            return Grant {
                credit: Some(Credit::default()),
                again_at: now.checked_add(SLOT),
                changed,
            };
        }
        let Some(limit) = self.limit else {
            return Grant {
                credit: None,
                again_at: None,
                changed,
            };
        };
        let demand = demand();
        let records = (self.tokens.0.max(0.0).floor() as u64).min(demand.records);
        let bytes = if self.tokens.1 > 0.0 && records > 0 {
            self.tokens.1.min(demand.bytes as f64).ceil().max(1.0)
        } else {
            0.0
        };
        self.tokens.0 -= records as f64;
        self.tokens.1 -= bytes;
        let credit = Credit {
            records,
            bytes: bytes as i64,
        };
        let again_at = (records < demand.records || (bytes as u64) < demand.bytes).then(|| {
            let (rate, byte_rate) = limit.rates(now);
            let quantum = |rate: f64, store: f64| {
                let quantum = (rate * QUANTUM.as_secs_f64()).max(1.0);
                let missing = (quantum - store).max(0.0);
                Duration::try_from_secs_f64((missing / rate).clamp(0.0, 1.0))
                    .unwrap_or(Duration::from_secs(1))
            };
            let wait = quantum(rate, self.tokens.0).max(quantum(byte_rate, self.tokens.1));
            now.checked_add(wait.max(Duration::from_micros(100)))
                .unwrap_or(now)
        });
        Grant {
            credit: Some(credit),
            again_at,
            changed,
        }
    }

    /// A record written at `written` was throttled.
    fn throttled(&mut self, now: Instant, written: Instant) {
        if self.limit.is_some_and(|limit| written < limit.set_at) {
            // Written at the pace before the last decrease.
            return;
        }
        if !self.delivered.throttling_is_the_rate() {
            return;
        }
        if self.limit.is_none() {
            // The records in flight now are refused whatever the pace:
            // their reports measure the server at its limit.
            self.onset.get_or_insert(Onset::new(now));
            return;
        }
        self.decrease(now);
    }

    /// Sets the pace just below the rate the server accepts.
    fn decrease(&mut self, now: Instant) {
        let [delivered, _, _] = self.delivered.sums(WINDOW_SLOTS as u64);
        let saturated = self.arrivals.saturated_rates();
        let (accepted, accepted_bytes) = saturated.unwrap_or_else(|| self.delivered.rates());
        let base = match self.limit {
            // What got through is known well enough: just below it.
            _ if saturated.is_some() || delivered >= MIN_SAMPLE => {
                let current = self
                    .limit
                    .map_or((f64::INFINITY, f64::INFINITY), |l| l.rates(now));
                (current.0.min(accepted), current.1.min(accepted_bytes))
            }
            // Too little got through to measure: below the pace in force...
            Some(limit) => limit.rates(now),
            // ...or, unpaced, below what was written.
            None => (self.delivered.written_rate(), UNKNOWN_BYTES_PER_S),
        };
        self.limit_to(base, now);
    }

    /// Sets the pace to the rate the server was measured to take at its
    /// onset: measured, not refused at, so the pace starts at it rather
    /// than below, and probes upward from [`PLATEAU`] on.
    fn measured(&mut self, now: Instant, base: (f64, f64)) {
        self.limit_to(base, now);
        if let Some(limit) = &mut self.limit {
            limit.since = now.checked_sub(PLATEAU).unwrap_or(now);
        }
    }

    /// Sets the pace to grow from `base` (records and bytes per second).
    fn limit_to(&mut self, base: (f64, f64), now: Instant) {
        let base = (
            base.0.clamp(MIN_RECORDS_PER_S, UNKNOWN_BYTES_PER_S),
            base.1.clamp(MIN_BYTES_PER_S, UNKNOWN_BYTES_PER_S),
        );
        self.limit = Some(Limit {
            base,
            since: now,
            set_at: now,
        });
        self.decreases += 1;
        // What was in store was for the faster pace.
        self.tokens = (self.tokens.0.min(1.0), self.tokens.1.min(1.0));
    }

    /// Adds what the rates earned since the last refill, up to the store.
    fn refill(&mut self, now: Instant) {
        let last = self.refilled_at.replace(now);
        let Some(limit) = self.limit else {
            return;
        };
        let since = last.map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
        let (rate, byte_rate) = limit.rates(now);
        let burst = BURST.as_secs_f64();
        let elapsed = since.as_secs_f64();
        let cap = |rate: f64| (rate * burst).max(1.0);
        self.tokens.0 = (self.tokens.0 + rate * elapsed).min(cap(rate));
        self.tokens.1 = (self.tokens.1 + byte_rate * elapsed).min(cap(byte_rate));
    }

    /// Lifts a pace far above what the server accepts: nothing has been
    /// throttled for a long while.
    fn lift_if_loose(&mut self, now: Instant) {
        let Some(limit) = self.limit else { return };
        if now.saturating_duration_since(limit.set_at) < PLATEAU * 4 {
            return;
        }
        let (accepted, _) = self.delivered.rates();
        let (rate, _) = limit.rates(now);
        if rate > accepted.max(MIN_RECORDS_PER_S) * LIFT_RATIO {
            self.limit = None;
            self.tokens = (0.0, 0.0);
        }
    }
}

/// What the reports of the records in flight when an unlimited server
/// first throttled tell of its rate. It refuses them while it is at its
/// limit and takes the limit's worth: what it took from the first
/// throttled report to the last is its rate, whatever it had in store
/// before.
#[derive(Clone, Copy, Debug)]
struct Onset {
    at: Instant,
    /// Records and bytes delivered after `at`, up to the last throttled
    /// report; and since then.
    taken: (u64, u64),
    pending: (u64, u64),
    last_throttled: Instant,
}

impl Onset {
    fn new(at: Instant) -> Onset {
        Onset {
            at,
            taken: (0, 0),
            pending: (0, 0),
            last_throttled: at,
        }
    }

    /// Counts what one exchange reported, at `now`.
    fn learn(&mut self, now: Instant, signals: &Signals) {
        self.pending.0 = self.pending.0.saturating_add(signals.delivered);
        self.pending.1 = self.pending.1.saturating_add(signals.delivered_bytes);
        if signals.throttled > 0 {
            self.taken.0 = self.taken.0.saturating_add(self.pending.0);
            self.taken.1 = self.taken.1.saturating_add(self.pending.1);
            self.pending = (0, 0);
            self.last_throttled = now;
        }
    }

    /// Whether the server stopped throttling (the records in flight are
    /// all answered) or waiting took long enough.
    fn is_over(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_throttled) >= ONSET_QUIET
            || now.saturating_duration_since(self.at) >= ONSET_WAIT
    }

    /// The rates the server took at its limit, when measured well enough.
    fn rates(&self) -> Option<(f64, f64)> {
        let span = self.last_throttled.saturating_duration_since(self.at);
        (span >= ONSET_SPAN && self.taken.0 >= MIN_SAMPLE).then(|| {
            let span = span.as_secs_f64();
            (self.taken.0 as f64 / span, self.taken.1 as f64 / span)
        })
    }
}

/// A [`PaceState`] shared by lanes.
#[derive(Debug, Default)]
pub(crate) struct SharedPace {
    state: Mutex<PaceState>,
}

impl SharedPace {
    /// [`PaceState::exchange`] on the shared state.
    pub(crate) fn exchange(
        &self,
        now: Instant,
        signals: &Signals,
        held: Option<Credit>,
        demand: impl FnOnce() -> Demand,
    ) -> Grant {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .exchange(now, signals, held, demand)
    }

    /// The rates in force, when limited.
    pub(crate) fn rates(&self, now: Instant) -> Option<(f64, f64)> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rates(now)
    }

    /// The pace of `endpoint` and `cluster`, shared by every client of
    /// them in the process.
    pub(crate) fn of(endpoint: &str, cluster: &str) -> Arc<SharedPace> {
        type Paces = Mutex<HashMap<(String, String), Weak<SharedPace>>>;
        static PACES: OnceLock<Paces> = OnceLock::new();
        let mut paces = PACES
            .get_or_init(Paces::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (endpoint.to_owned(), cluster.to_owned());
        if let Some(pace) = paces.get(&key).and_then(Weak::upgrade) {
            return pace;
        }
        paces.retain(|_, pace| pace.strong_count() > 0);
        let pace = Arc::new(SharedPace::default());
        paces.insert(key, Arc::downgrade(&pace));
        pace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` records delivered, written over the 100 ms before `at`.
    fn delivered_at(at: Instant, n: u64, bytes_each: u64) -> Signals {
        Signals {
            delivered: n,
            delivered_bytes: n * bytes_each,
            delivered_written: Some((at - ms(99), at)),
            ..Signals::default()
        }
    }

    /// Enough records throttled, written at `written`, to say the rate is
    /// at fault.
    fn throttled(written: Instant) -> Signals {
        let mut s = Signals::default();
        for _ in 0..MIN_SAMPLE {
            s.throttled(written);
        }
        s
    }

    const WANT: Demand = Demand {
        records: 1_000_000,
        bytes: 1 << 40,
    };

    /// The first throttle of an unlimited pace at `at`: records wait; the
    /// onset ends quietly, with nothing measured. When it ends.
    fn onset(pace: &mut PaceState, at: Instant, signals: &Signals) -> Instant {
        let grant = pace.exchange(at, signals, None, || WANT);
        assert_eq!(grant.credit, Some(Credit::default()), "records wait");
        assert!(!pace.is_limited());
        let end = at + ONSET_QUIET;
        pace.exchange(end, &Signals::default(), None, || WANT);
        assert!(pace.is_limited());
        end
    }

    #[test]
    fn at_the_onset_records_wait_and_the_pace_is_what_the_server_took() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        // A burst the server had in store: 1,000 records at once.
        pace.exchange(t0, &delivered_at(t0, 1000, 10), None, || WANT);
        // Then, of the records in flight (written at 20 ms), the server
        // takes 20 and refuses 180 every 10 ms for 50 ms: 2,000/s.
        let written = t0 + ms(20);
        let mut first = Signals::default();
        for _ in 0..100 {
            first.throttled(written);
        }
        let start = t0 + ms(21);
        let grant = pace.exchange(start, &first, None, || WANT);
        assert_eq!(grant.credit, Some(Credit::default()));
        assert!(grant.again_at.is_some());
        for i in 1..=5 {
            let mut answered = Signals::default();
            for _ in 0..20 {
                answered.delivered(10, written);
            }
            for _ in 0..180 {
                answered.throttled(written);
            }
            let grant = pace.exchange(start + ms(10 * i), &answered, None, || WANT);
            assert_eq!(grant.credit, Some(Credit::default()), "waiting at {i}");
        }
        // Quiet: the records in flight are answered.
        let end = start + ms(50) + ONSET_QUIET;
        let grant = pace.exchange(end, &Signals::default(), None, || WANT);
        assert!(grant.again_at.is_some());
        let grant = pace.exchange(end + ms(10), &Signals::default(), None, || WANT);
        assert!(grant.credit.unwrap().records > 0);
        let (rate, bytes) = pace.rates(end).unwrap();
        assert!((1_800.0..=2_200.0).contains(&rate), "{rate}");
        assert!((18_000.0..=22_000.0).contains(&bytes), "{bytes}");
        assert_eq!(pace.decreases(), 1);
    }

    #[test]
    fn the_onset_waits_no_longer_than_its_bound() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        pace.exchange(t0, &delivered_at(t0, 100, 10), None, || WANT);
        // The server goes on throttling records written before the onset.
        let mut at = t0 + ms(1);
        while at < t0 + ONSET_WAIT {
            let grant = pace.exchange(at, &throttled(t0), None, || WANT);
            assert_eq!(grant.credit, Some(Credit::default()));
            at += ms(5);
        }
        pace.exchange(t0 + ms(1) + ONSET_WAIT, &throttled(t0), None, || WANT);
        assert!(pace.is_limited());
    }

    #[test]
    fn unlimited_until_throttled() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        for i in 0..100 {
            let grant = pace.exchange(t0 + ms(i), &delivered_at(t0 + ms(i), 100, 10), None, || {
                WANT
            });
            assert_eq!(grant.credit, None);
            assert_eq!(grant.again_at, None);
        }
        assert!(!pace.is_limited());
        // One record throttled says nothing of the rate.
        let mut lone = Signals::default();
        lone.throttled(t0 + ms(200));
        pace.exchange(t0 + ms(200), &lone, None, || WANT);
        assert!(!pace.is_limited());
    }

    #[test]
    fn a_throttle_with_nothing_delivered_paces_below_what_was_written() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        // 50 records written over 10 ms, all throttled.
        let mut signals = Signals::default();
        for i in 0..50 {
            signals.throttled(t0 + Duration::from_micros(200 * i));
        }
        let end = onset(&mut pace, t0 + ms(20), &signals);
        let (rate, bytes) = pace.rates(end).unwrap();
        assert!((1000.0..=5000.0).contains(&rate), "{rate}");
        assert!(bytes >= 1e12, "no byte rate known: {bytes}");
    }

    #[test]
    fn a_throttle_paces_below_what_was_accepted() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        // 1,000 records/s of 100 bytes accepted for a second.
        for i in 0..10 {
            pace.exchange(
                t0 + ms(100 * i),
                &delivered_at(t0 + ms(100 * i), 100, 100),
                None,
                || WANT,
            );
        }
        let now = t0 + ms(1000);
        let now = onset(&mut pace, now, &throttled(now));
        let (rate, bytes) = pace.rates(now).unwrap();
        assert!((800.0..=950.0).contains(&rate), "{rate}");
        assert!((80_000.0..=95_000.0).contains(&bytes), "{bytes}");
        // It grows back to about what was accepted after the plateau.
        let (later, _) = pace.rates(now + PLATEAU).unwrap();
        assert!((850.0..=1050.0).contains(&later), "{later}");
    }

    #[test]
    fn throttles_of_records_written_before_a_decrease_are_ignored() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        pace.exchange(t0, &delivered_at(t0, 1000, 10), None, || WANT);
        let first = onset(&mut pace, t0 + ms(500), &throttled(t0 + ms(499)));
        assert_eq!(pace.decreases(), 1);
        for i in 1..10 {
            pace.exchange(first + ms(i), &throttled(first - ms(1)), None, || WANT);
        }
        assert_eq!(pace.decreases(), 1);
        pace.exchange(first + ms(20), &throttled(first + ms(10)), None, || WANT);
        assert_eq!(pace.decreases(), 2);
    }

    #[test]
    fn a_few_throttled_among_many_delivered_do_not_slow_the_pace() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        // 1 in 100 throttled, whatever the rate: not the rate's fault.
        for i in 1..=100 {
            let at = t0 + ms(10 * i);
            let mut signals = delivered_at(at, 99, 10);
            signals.throttled(at);
            pace.exchange(at, &signals, None, || WANT);
        }
        assert!(!pace.is_limited());
        // 1 in 10 is.
        let at = t0 + ms(1010);
        let mut signals = delivered_at(at, 9, 10);
        for _ in 0..10 {
            signals.throttled(at);
        }
        onset(&mut pace, at, &signals);
    }

    #[test]
    fn credit_follows_the_rate() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        for i in 0..10 {
            pace.exchange(
                t0 + ms(100 * i),
                &delivered_at(t0 + ms(100 * i), 1000, 10),
                None,
                || WANT,
            );
        }
        let start = t0 + ms(1000);
        pace.exchange(start, &throttled(start), None, || WANT);
        // Ask every millisecond for two seconds; count what is granted.
        let mut granted = 0;
        let mut held = None;
        for i in 0..2000 {
            let grant = pace.exchange(start + ms(i), &Signals::default(), held, || WANT);
            let credit = grant.credit.unwrap();
            granted += credit.records;
            held = Some(Credit {
                records: 0,
                bytes: 0,
            });
            assert!(grant.again_at.is_some());
        }
        // Just below 10,000/s back to it over the first half second, a
        // little above it over the next, then doubling every half second:
        // about 30,000 in all.
        assert!((25_000..=35_000).contains(&granted), "{granted}");
    }

    #[test]
    fn unused_credit_goes_back() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        pace.exchange(t0, &delivered_at(t0, 1000, 10), None, || WANT);
        let now = onset(&mut pace, t0 + ms(100), &throttled(t0 + ms(100)));
        let later = now + ms(20);
        let grant = pace.exchange(later, &Signals::default(), None, || WANT);
        let credit = grant.credit.unwrap();
        assert!(credit.records > 0);
        let again = pace.exchange(later, &Signals::default(), Some(credit), || WANT);
        assert_eq!(again.credit.unwrap().records, credit.records);
    }

    #[test]
    fn a_record_larger_than_the_store_still_goes() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        pace.exchange(t0, &delivered_at(t0, 10, 10), None, || WANT);
        let now = onset(&mut pace, t0 + ms(100), &throttled(t0 + ms(100)));
        let mut credit = pace
            .exchange(now + ms(500), &Signals::default(), None, || WANT)
            .credit
            .unwrap();
        assert!(credit.admits());
        credit.charge(10 << 20);
        assert!(!credit.admits());
        // The debt is paid before anything else goes.
        let next = pace
            .exchange(now + ms(600), &Signals::default(), Some(credit), || WANT)
            .credit
            .unwrap();
        assert!(!next.admits(), "{next:?}");
    }

    #[test]
    fn a_pause_holds_everything_until_it_is_over() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        pace.exchange(t0, &delivered_at(t0, 1000, 10), None, || WANT);
        pace.exchange(t0 + ms(10), &throttled(t0 + ms(10)), None, || WANT);
        let mut pause = Signals::default();
        pause.pause(Duration::from_secs(3));
        let grant = pace.exchange(t0 + ms(20), &pause, None, || WANT);
        assert_eq!(grant.credit.unwrap().records, 0);
        assert_eq!(grant.again_at, Some(t0 + ms(20) + Duration::from_secs(3)));
        // An absurd pause is capped.
        let mut absurd = Signals::default();
        absurd.pause(Duration::MAX);
        let grant = pace.exchange(t0 + ms(30), &absurd, None, || WANT);
        assert!(grant.again_at.unwrap() <= t0 + ms(30) + MAX_RETRY_AFTER);
    }

    #[test]
    fn a_raised_limit_is_found_again_and_a_loose_pace_lifted() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        pace.exchange(t0, &delivered_at(t0, 100, 10), None, || WANT);
        let first = onset(&mut pace, t0 + ms(100), &throttled(t0 + ms(100)));
        let (at_first, _) = pace.rates(first).unwrap();
        let (later, _) = pace.rates(t0 + Duration::from_secs(10)).unwrap();
        assert!(later > at_first * 100.0, "{at_first} {later}");
        // Nothing delivered lately and a pace far above it: lifted.
        let grant = pace.exchange(
            t0 + Duration::from_secs(10),
            &Signals::default(),
            None,
            || WANT,
        );
        assert_eq!(grant.credit, None);
        assert!(!pace.is_limited());
    }

    #[test]
    fn no_panic_on_extreme_inputs() {
        let t0 = Instant::now();
        let mut pace = PaceState::default();
        let huge = Signals {
            delivered: u64::MAX,
            delivered_bytes: u64::MAX,
            ..Signals::default()
        };
        pace.exchange(t0, &huge, None, || WANT);
        pace.exchange(
            t0,
            &throttled(t0),
            Some(Credit {
                records: u64::MAX,
                bytes: i64::MIN,
            }),
            || WANT,
        );
        for later in [ms(0), ms(1), Duration::from_secs(86_400 * 365)] {
            let grant = pace.exchange(t0 + later, &throttled(t0 + later), None, || WANT);
            assert!(grant.credit.is_some());
        }
        assert!(Limit::factor(Duration::MAX).is_finite());
    }

    #[test]
    fn clients_of_one_endpoint_and_cluster_share_a_pace() {
        let a = SharedPace::of("https://a.example", "lkc-1");
        let b = SharedPace::of("https://a.example", "lkc-1");
        let c = SharedPace::of("https://a.example", "lkc-2");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
