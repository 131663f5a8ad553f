//! What the producer has learnt of the HTTP path to an endpoint: whether an
//! intermediary buffers request bodies (so that streams must be cut into
//! bounded requests), and the age at which something cuts long requests.
//! Kept per client and shared by its lanes, so that one lane's discovery
//! spares the others the same wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// How the producer adapts to intermediaries; the defaults follow what
/// nginx and ingress-nginx do with their default settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PathSettings {
    /// A stream that has had no response headers this long after its first
    /// record went out is taken to be buffered by an intermediary.
    pub(crate) buffering_check: Duration,
    /// A stream with records in flight, nothing to write and no report for
    /// this long ends its body (`None`: never).
    pub(crate) report_stall: Option<Duration>,
    /// While reports are awaited and nothing is written, a byte of
    /// whitespace goes on the body this often, so that idle timers of the
    /// server and intermediaries do not close it.
    pub(crate) heartbeat: Duration,
    /// The most bytes of records a bounded request starts with.
    pub(crate) fallback_bytes: usize,
    /// A bounded request takes records for at most this long.
    pub(crate) fallback_age: Duration,
    /// How long requests stay bounded before streaming is tried again.
    pub(crate) fallback_hold: Duration,
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings {
            buffering_check: Duration::from_secs(2),
            report_stall: Some(Duration::from_secs(1)),
            heartbeat: Duration::from_secs(10),
            // nginx's `client_max_body_size` default.
            fallback_bytes: 1 << 20,
            fallback_age: Duration::from_millis(100),
            fallback_hold: Duration::from_secs(600),
        }
    }
}

/// Cuts shorter than this say nothing about a time limit.
const MIN_CUT_AGE: Duration = Duration::from_secs(1);
/// Bodies end at this share of the age at which requests were cut.
const CUT_AGE_MARGIN: f64 = 0.8;

/// What is known of the path at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PathState {
    /// Requests are bounded until then: an intermediary buffers bodies.
    bounded_until: Option<Instant>,
    /// The most bytes of records in one bounded request.
    bounded_bytes: usize,
    /// Bodies end before this age: requests were cut at a steady age.
    age_cap: Option<Duration>,
    /// The age of the last request cut.
    last_cut_age: Option<Duration>,
}

impl PathState {
    /// The byte bound of a request opened at `now`, when requests are
    /// bounded.
    pub(crate) fn bounded_bytes(&self, now: Instant) -> Option<usize> {
        self.bounded_until
            .filter(|until| *until > now)
            .map(|_| self.bounded_bytes)
    }

    /// The age past which a request's body ends, learnt from cuts.
    pub(crate) fn age_cap(&self) -> Option<Duration> {
        self.age_cap
    }

    /// No response headers came while a body was open: bound requests for
    /// a while, keeping a bound already lowered by a 413.
    pub(crate) fn buffering_seen(&mut self, now: Instant, settings: &PathSettings) {
        if self.bounded_bytes(now).is_none() {
            self.bounded_bytes = settings.fallback_bytes.max(1);
        }
        self.bounded_until = Some(later(now, settings.fallback_hold));
    }

    /// A request of several records, of `written` bytes, was refused as too
    /// large (HTTP 413): bound requests to half of what it carried (or of
    /// the bound in force, when smaller), never below one byte, which still
    /// lets a request carry one record. Returns the new bound.
    pub(crate) fn too_large(
        &mut self,
        now: Instant,
        written: usize,
        settings: &PathSettings,
    ) -> usize {
        let bound = self
            .bounded_bytes(now)
            .unwrap_or(settings.fallback_bytes)
            .min(written);
        self.bounded_bytes = (bound / 2).max(1);
        self.bounded_until = Some(later(now, settings.fallback_hold));
        self.bounded_bytes
    }

    /// A request was cut at `age`: two cuts at about the same age (within
    /// a fifth) are a time limit, and bodies end before it from then on.
    /// Returns whether the cap changed.
    pub(crate) fn cut_at(&mut self, age: Duration) -> bool {
        if age < MIN_CUT_AGE {
            return false;
        }
        let previous = self.last_cut_age.replace(age);
        let Some(previous) = previous else {
            return false;
        };
        let (shorter, longer) = (previous.min(age), previous.max(age));
        if longer.saturating_sub(shorter) > shorter / 5 {
            return false;
        }
        let cap = shorter.mul_f64(CUT_AGE_MARGIN);
        if self.age_cap.is_some_and(|current| current <= cap) {
            return false;
        }
        self.age_cap = Some(cap);
        true
    }
}

/// `now + hold`, or a year on when the clock cannot go that far.
fn later(now: Instant, hold: Duration) -> Instant {
    now.checked_add(hold)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// The path state shared by a client's lanes: the latest a lane learnt.
#[derive(Debug, Default)]
pub(crate) struct SharedPath {
    state: Mutex<PathState>,
    /// Changes published, so that a lane looks at the state only when it
    /// changed.
    version: AtomicU64,
}

impl SharedPath {
    /// The number of changes published so far.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The state, and the version it is of.
    pub(crate) fn get(&self) -> (PathState, u64) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (*state, self.version())
    }

    /// Publishes what a lane learnt; returns the new version.
    pub(crate) fn publish(&self, learnt: PathState) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = learnt;
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn buffering_bounds_requests_for_the_hold_then_streams_again() {
        let settings = PathSettings::default();
        let now = Instant::now();
        let mut path = PathState::default();
        assert_eq!(path.bounded_bytes(now), None);
        path.buffering_seen(now, &settings);
        assert_eq!(path.bounded_bytes(now), Some(1 << 20));
        assert_eq!(path.bounded_bytes(now + secs(599)), Some(1 << 20));
        assert_eq!(path.bounded_bytes(now + secs(600)), None);
    }

    #[test]
    fn each_413_halves_the_bound_down_to_one_byte() {
        let settings = PathSettings::default();
        let now = Instant::now();
        let mut path = PathState::default();
        // A stream refused after 3 MiB: half of the fallback bound.
        assert_eq!(path.too_large(now, 3 << 20, &settings), 512 << 10);
        // A bounded request of 300 KiB refused: half of what it carried.
        assert_eq!(path.too_large(now, 300 << 10, &settings), 150 << 10);
        let mut bound = 150 << 10;
        for _ in 0..40 {
            bound = path.too_large(now, bound, &settings);
        }
        assert_eq!(bound, 1);
        // Buffering seen again keeps the lowered bound.
        path.buffering_seen(now + secs(1), &settings);
        assert_eq!(path.bounded_bytes(now + secs(1)), Some(1));
    }

    #[test]
    fn cuts_at_a_steady_age_cap_it_and_others_do_not() {
        let mut path = PathState::default();
        assert!(!path.cut_at(secs(30)));
        assert_eq!(path.age_cap(), None);
        // A second cut at about the same age: a limit.
        assert!(path.cut_at(Duration::from_millis(30_500)));
        assert_eq!(path.age_cap(), Some(secs(24)));
        // Cuts at random ages, or too early to mean anything, change nothing.
        let mut random = PathState::default();
        for age in [5, 40, 12, 90] {
            assert!(!random.cut_at(secs(age)));
        }
        assert!(!random.cut_at(Duration::from_millis(300)));
        assert!(!random.cut_at(Duration::from_millis(310)));
        assert_eq!(random.age_cap(), None);
    }

    #[test]
    fn absurd_durations_do_not_panic() {
        let settings = PathSettings {
            fallback_hold: Duration::MAX,
            ..PathSettings::default()
        };
        let now = Instant::now();
        let mut path = PathState::default();
        path.buffering_seen(now, &settings);
        assert!(path.bounded_bytes(now + secs(86_400)).is_some());
        path.too_large(now, usize::MAX, &settings);
        assert!(!path.cut_at(Duration::MAX));
        assert!(path.cut_at(Duration::MAX - Duration::from_secs(1)));
    }
}
