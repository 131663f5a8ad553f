//! Retries for [`Client::produce`](crate::Client::produce), off by default:
//! the same decisions as the streaming producer's, from the one retry
//! policy.

use crate::error::RetryClass;
use crate::error::{Error, GiveUpReason};
use crate::limits::duration_problem;
use crate::retry::policy::UnknownOutcome;
use crate::retry::policy::{Decision, Failure, RetryPolicy};
use crate::wire::report::DeliveryReport;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How [`Client::produce`](crate::Client::produce) retries a record, set
/// with [`ClientBuilder::with_produce_retries`](crate::ClientBuilder::with_produce_retries).
/// Retriable failures are sent again with exponential backoff and jitter
/// (a longer `Retry-After` wins, up to [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER))
/// until the attempts or the delivery timeout run out; then the call fails
/// with [`Error::GaveUp`]. A record whose outcome was unknown is
/// sent again (its report says `possibly_duplicated`) unless
/// [`UnknownOutcome::Fail`] is chosen. Throttling (HTTP 429, in-band 429
/// or 42901) backs off the same way but does not use up attempts: only the
/// delivery timeout ends it.
///
/// ```
/// use ccloud_kafka_rest::{Client, ProduceRetries};
/// use std::time::Duration;
/// let builder = Client::builder()
///     .with_produce_retries(ProduceRetries::new(5, Duration::from_secs(30)));
/// # let _ = builder;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ProduceRetries {
    pub(crate) max_attempts: u32,
    pub(crate) delivery_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) on_outcome_unknown: UnknownOutcome,
}

impl ProduceRetries {
    /// At most `max_attempts` attempts (the first included), all within
    /// `delivery_timeout` of the call; backoff from 100 ms to 10 s.
    pub fn new(max_attempts: u32, delivery_timeout: Duration) -> ProduceRetries {
        ProduceRetries {
            max_attempts,
            delivery_timeout,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            on_outcome_unknown: UnknownOutcome::Resend,
        }
    }

    /// The backoff's first delay and cap.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> ProduceRetries {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Resend (default) or fail a record whose outcome is unknown.
    pub fn with_unknown_outcome(mut self, policy: UnknownOutcome) -> ProduceRetries {
        self.on_outcome_unknown = policy;
        self
    }

    /// Former name of [`with_unknown_outcome`](Self::with_unknown_outcome).
    #[deprecated(since = "0.2.0", note = "renamed to `with_unknown_outcome`")]
    pub fn with_on_outcome_unknown(self, policy: UnknownOutcome) -> ProduceRetries {
        self.with_unknown_outcome(policy)
    }

    /// Refuses settings that cannot work, naming the setting.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let problem = (self.max_attempts == 0)
            .then(|| "the attempts must be at least 1".to_owned())
            .or_else(|| {
                duration_problem(
                    "ProduceRetries::new (delivery timeout)",
                    self.delivery_timeout,
                    false,
                )
            })
            .or_else(|| {
                duration_problem("ProduceRetries::with_backoff (cap)", self.backoff_max, true)
            })
            .or_else(|| {
                (self.backoff_min > self.backoff_max).then(|| {
                    format!(
                        "with_backoff({:?}, {:?}): the first delay is longer than the cap",
                        self.backoff_min, self.backoff_max
                    )
                })
            });
        match problem {
            Some(problem) => Err(Error::Config(format!("with_produce_retries: {problem}"))),
            None => Ok(()),
        }
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            guarantee: self.on_outcome_unknown.guarantee(),
        }
    }

    /// Runs `attempt` until the policy says to stop.
    pub(crate) async fn run<F, Fut>(&self, mut attempt: F) -> Result<DeliveryReport, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<DeliveryReport, Error>>,
    {
        let policy = self.policy();
        let started = Instant::now();
        let deadline = started
            .checked_add(self.delivery_timeout)
            .unwrap_or(started);
        let mut rng = fastrand::Rng::new();
        let mut backoff = None;
        let mut attempts = 0;
        // Attempts refused only for rate, which do not count against the
        // limit.
        let mut throttled = 0;
        let mut maybe_written = false;
        loop {
            attempts += 1;
            let error = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(Ok(mut report)) => {
                    report.attempts = attempts;
                    report.possibly_duplicated = maybe_written;
                    return Ok(report);
                }
                Ok(Err(error)) => error,
                // Cut short while in flight: it may have been written.
                Err(_) => {
                    return Err(Error::GaveUp {
                        reason: GiveUpReason::DeadlinePassed,
                        attempts,
                        last_error: None,
                        may_have_been_written: true,
                    });
                }
            };
            let class = error.retry_class();
            let failure = Failure {
                class,
                attempted: true,
                attempts: attempts - throttled,
                retry_after: error.retry_after(),
                delay: None,
                now: Instant::now(),
                deadline,
            };
            let decision = policy.decide(&failure, &mut backoff, &mut rng);
            let unknown = class == RetryClass::OutcomeUnknown;
            match decision {
                Decision::RetryAt { at, .. } => {
                    maybe_written |= unknown;
                    tokio::time::sleep_until(at).await;
                }
                Decision::Paced { at } => {
                    throttled += 1;
                    tokio::time::sleep_until(at).await;
                }
                Decision::Requeue => maybe_written |= unknown,
                Decision::Fail if maybe_written && !unknown => {
                    return Err(Error::MaybeWritten {
                        attempts,
                        last_error: Box::new(error),
                    });
                }
                Decision::Fail => return Err(error),
                Decision::Expire(reason) => {
                    return Err(Error::GaveUp {
                        reason,
                        attempts,
                        may_have_been_written: maybe_written || unknown,
                        last_error: Some(Box::new(error)),
                    });
                }
            }
        }
    }
}
