//! What to do with a record after a failed attempt: the one retry decision,
//! a pure function of the failure, the record's state, the configuration and
//! a random source it is handed. The streaming producer's lanes and
//! `Client::produce`'s opt-in retries both ask it.

use crate::error::{GiveUpReason, RetryClass};
pub(crate) use crate::limits::MAX_RETRY_AFTER;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;
use tokio::time::Instant;

/// The delivery guarantee the caller chose for records whose outcome is
/// unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Guarantee {
    /// Send again; the record may be written twice.
    AtLeastOnce,
    /// Fail the record; the caller decides.
    AtMostOnce,
}

/// The settings the decision depends on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) guarantee: Guarantee,
}

/// One failed attempt, as the policy sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure {
    /// What the failure means for the record.
    pub(crate) class: RetryClass,
    /// Whether the attempt was made at all: false when the record never
    /// left the client (its request ended before its bytes were sent, or
    /// the server refused a request for reasons that are not the record's).
    pub(crate) attempted: bool,
    /// Attempts made so far that count against the limit, this one
    /// included when `attempted`: attempts refused only for rate do not.
    pub(crate) attempts: u32,
    /// The server's `Retry-After`, as received.
    pub(crate) retry_after: Option<Duration>,
    /// A delay that replaces the record's own backoff (a lane's shared
    /// reopen backoff, or zero for a stream past its lifetime).
    pub(crate) delay: Option<Duration>,
    pub(crate) now: Instant,
    pub(crate) deadline: Instant,
}

/// What becomes of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It fails with this attempt's error: it cannot succeed, or the
    /// caller asked to fail records whose outcome is unknown.
    Fail,
    /// It fails because its attempts or its time are used up.
    Expire(GiveUpReason),
    /// It is sent again at `at`; `duplicate` when this attempt may have
    /// written it.
    RetryAt { at: Instant, duplicate: bool },
    /// It was never sent: it goes back in line without using an attempt.
    Requeue,
    /// It was refused for rate: it goes again as the pace allows, not
    /// before `at` (the server's `Retry-After`, or the backoff of a caller
    /// that has no pace), and the attempt is not counted against it.
    Paced { at: Instant },
}

impl RetryPolicy {
    /// The decision for one failure. `backoff` is the record's own backoff,
    /// started on its first retry with a seed drawn from `rng`, so that
    /// every delay follows from the caller's random source.
    pub(crate) fn decide(
        &self,
        failure: &Failure,
        backoff: &mut Option<ExponentialBackoff>,
        rng: &mut fastrand::Rng,
    ) -> Decision {
        if failure.now >= failure.deadline {
            return Decision::Expire(GiveUpReason::DeadlinePassed);
        }
        if !failure.attempted && failure.class != RetryClass::Terminal {
            return Decision::Requeue;
        }
        let duplicate = match failure.class {
            RetryClass::Terminal => return Decision::Fail,
            RetryClass::OutcomeUnknown if self.guarantee == Guarantee::AtMostOnce => {
                return Decision::Fail;
            }
            RetryClass::OutcomeUnknown => true,
            _ => false,
        };
        let paced = failure.class == RetryClass::Throttled;
        if !paced && failure.attempts >= self.max_attempts {
            return Decision::Expire(GiveUpReason::AttemptsExhausted);
        }
        let delay = match failure.delay {
            Some(delay) => delay,
            None => backoff
                .get_or_insert_with(|| self.backoff(rng))
                .next()
                .unwrap_or(self.backoff_max),
        };
        let remaining = failure.deadline.saturating_duration_since(failure.now);
        let asked = failure
            .retry_after
            .map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER));
        let delay = delay.max(asked);
        if delay >= remaining {
            // It could not be sent again before its deadline.
            return Decision::Expire(GiveUpReason::NoTimeToRetry);
        }
        match failure.now.checked_add(delay) {
            Some(at) if paced => Decision::Paced { at },
            Some(at) => Decision::RetryAt { at, duplicate },
            None => Decision::Expire(GiveUpReason::NoTimeToRetry),
        }
    }

    /// A new exponential backoff with jitter (each delay between one and
    /// two times the exponential step), seeded from `rng`.
    pub(crate) fn backoff(&self, rng: &mut fastrand::Rng) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.backoff_min)
            .with_max_delay(self.backoff_max)
            .with_jitter()
            .with_jitter_seed(rng.u64(..))
            .without_max_times()
            .build()
    }
}

/// What to do with a record whose outcome is unknown: the server reported a
/// 5xx error code for it (500, 50003, 50302) or the connection ended before
/// its report arrived. It may or may not have been written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnknownOutcome {
    /// Send it again (at-least-once); its report then says
    /// [`possibly_duplicated`](crate::DeliveryReport::possibly_duplicated).
    #[default]
    Resend,
    /// Fail it (at-most-once): the caller decides.
    Fail,
}

impl UnknownOutcome {
    /// The delivery guarantee this choice makes.
    pub(crate) fn guarantee(self) -> Guarantee {
        match self {
            UnknownOutcome::Resend => Guarantee::AtLeastOnce,
            UnknownOutcome::Fail => Guarantee::AtMostOnce,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            guarantee: Guarantee::AtLeastOnce,
        }
    }

    fn failure(class: RetryClass, attempts: u32) -> Failure {
        let now = Instant::now();
        Failure {
            class,
            attempted: true,
            attempts,
            retry_after: None,
            delay: None,
            now,
            deadline: now + Duration::from_secs(60),
        }
    }

    fn decide(policy: &RetryPolicy, failure: &Failure) -> Decision {
        policy.decide(failure, &mut None, &mut fastrand::Rng::with_seed(7))
    }

    #[test]
    fn terminal_fails_and_unknown_fails_only_at_most_once() {
        let f = failure(RetryClass::Terminal, 1);
        assert_eq!(decide(&policy(), &f), Decision::Fail);
        let f = failure(RetryClass::OutcomeUnknown, 1);
        assert!(matches!(
            decide(&policy(), &f),
            Decision::RetryAt {
                duplicate: true,
                ..
            }
        ));
        let at_most_once = RetryPolicy {
            guarantee: Guarantee::AtMostOnce,
            ..policy()
        };
        assert_eq!(decide(&at_most_once, &f), Decision::Fail);
    }

    #[test]
    fn retriable_retries_within_the_backoff_then_expires_on_attempts() {
        let f = failure(RetryClass::Retriable, 1);
        match decide(&policy(), &f) {
            Decision::RetryAt { at, duplicate } => {
                assert!(!duplicate);
                let delay = at - f.now;
                // Jitter adds up to one step.
                assert!(delay >= Duration::from_millis(100), "{delay:?}");
                assert!(delay <= Duration::from_millis(200), "{delay:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&policy(), &failure(RetryClass::Retriable, 3)),
            Decision::Expire(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn throttling_uses_no_attempt_and_ends_only_at_the_deadline() {
        let mut f = failure(RetryClass::Throttled, 50);
        f.delay = Some(Duration::ZERO);
        assert_eq!(decide(&policy(), &f), Decision::Paced { at: f.now });
        f.retry_after = Some(Duration::from_secs(2));
        assert_eq!(
            decide(&policy(), &f),
            Decision::Paced {
                at: f.now + Duration::from_secs(2)
            }
        );
        f.retry_after = Some(Duration::from_secs(120));
        assert_eq!(
            decide(&policy(), &f),
            Decision::Expire(GiveUpReason::NoTimeToRetry)
        );
        f.now = f.deadline;
        assert_eq!(
            decide(&policy(), &f),
            Decision::Expire(GiveUpReason::DeadlinePassed)
        );
    }

    #[test]
    fn never_sent_requeues_without_an_attempt_until_the_deadline() {
        let mut f = failure(RetryClass::Retriable, 3);
        f.attempted = false;
        assert_eq!(decide(&policy(), &f), Decision::Requeue);
        f.now = f.deadline;
        assert_eq!(
            decide(&policy(), &f),
            Decision::Expire(GiveUpReason::DeadlinePassed)
        );
    }

    #[test]
    fn retry_after_is_capped_by_the_deadline_and_the_maximum() {
        let mut f = failure(RetryClass::Retriable, 1);
        f.retry_after = Some(Duration::from_secs(5));
        let Decision::RetryAt { at, .. } = decide(&policy(), &f) else {
            panic!("no retry");
        };
        assert_eq!(at - f.now, Duration::from_secs(5));
        // Longer than what is left: it cannot be sent in time.
        f.retry_after = Some(Duration::MAX);
        assert_eq!(
            decide(&policy(), &f),
            Decision::Expire(GiveUpReason::NoTimeToRetry)
        );
        // Longer than the cap, with a deadline beyond the cap.
        f.deadline = f.now + Duration::from_secs(3600);
        let Decision::RetryAt { at, .. } = decide(&policy(), &f) else {
            panic!("no retry");
        };
        assert_eq!(at - f.now, MAX_RETRY_AFTER);
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let f = failure(RetryClass::Retriable, 1);
        let delays = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut backoff = None;
            (0..5)
                .map(|_| match policy().decide(&f, &mut backoff, &mut rng) {
                    Decision::RetryAt { at, .. } => at - f.now,
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(1), delays(1));
        assert_ne!(delays(1), delays(2));
        // Exponential up to the cap, jitter at most doubling a step.
        assert!(delays(3).iter().all(|d| *d <= Duration::from_secs(2)));
    }

    #[test]
    fn a_deadline_far_away_or_absurd_delays_do_not_panic() {
        let mut f = failure(RetryClass::Retriable, 1);
        f.deadline = f.now + Duration::from_secs(7 * 24 * 3600);
        f.delay = Some(Duration::MAX);
        assert_eq!(
            decide(&policy(), &f),
            Decision::Expire(GiveUpReason::NoTimeToRetry)
        );
        f.delay = None;
        f.retry_after = Some(Duration::MAX);
        assert!(matches!(decide(&policy(), &f), Decision::RetryAt { .. }));
    }
}
