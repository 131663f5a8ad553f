//! The self-managed REST Proxy's produce rate limiter: records per second and
//! bytes per second, globally and per cluster, checked once per record.
//!
//! Each limit is a token bucket with the semantics of Guava's bursty
//! `RateLimiter` used through `tryAcquire` without a timeout: permits accrue
//! at the rate, up to one second's worth stored; a request passes when the
//! next free time is not in the future, spends stored permits first and
//! pushes the next free time forward for the rest. A cost larger than the
//! burst therefore passes once, and the requests after it wait for the debt
//! to be paid off. Nothing waits: a request that does not pass is refused.
//!
//! The arithmetic is in integers (nanoseconds, and permits scaled by 10^9),
//! saturating, so that no rate or cost can make it panic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::time::Instant;

use super::sync::lock;

/// The largest rate a limit takes, records or bytes per second; larger ones
/// are treated as this (about 10^15, past anything a test can send).
pub const MAX_RATE_PER_SECOND: u64 = 1_000_000_000_000_000;

/// Nanoseconds in a second: the scale of stored permits.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The message of the in-band 429 for a record over a rate limit, as the
/// REST Proxy words it (its exception's title and detail).
pub(crate) const RATE_LIMITED_MESSAGE: &str =
    "Request rate limit exceeded: The rate limit of requests per second has been exceeded.";

/// Produce rate limits, as the self-managed REST Proxy applies them (off
/// unless set): how many records, and how many bytes of record JSON text,
/// may be produced per second. `None` or zero is unlimited.
///
/// A limit allows a burst of about one second's worth after a quiet
/// second; see [`EmulatorBuilder::with_rate_limits`](crate::EmulatorBuilder::with_rate_limits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RateLimits {
    /// Records per second.
    pub records_per_second: Option<u64>,
    /// Bytes per second, counting each record's JSON text as sent.
    pub bytes_per_second: Option<u64>,
}

impl RateLimits {
    /// No limit at all (the default).
    pub const fn unlimited() -> RateLimits {
        RateLimits {
            records_per_second: None,
            bytes_per_second: None,
        }
    }

    /// The same limits with `per_second` records per second (0: unlimited).
    pub const fn with_records_per_second(mut self, per_second: u64) -> RateLimits {
        self.records_per_second = Some(per_second);
        self
    }

    /// The same limits with `per_second` bytes per second (0: unlimited).
    pub const fn with_bytes_per_second(mut self, per_second: u64) -> RateLimits {
        self.bytes_per_second = Some(per_second);
        self
    }

    /// Whether neither limit applies.
    pub fn is_unlimited(&self) -> bool {
        rate(self.records_per_second).is_none() && rate(self.bytes_per_second).is_none()
    }
}

/// A configured rate, capped, or `None` for unlimited.
fn rate(per_second: Option<u64>) -> Option<u64> {
    per_second
        .filter(|&r| r > 0)
        .map(|r| r.min(MAX_RATE_PER_SECOND))
}

/// One token bucket. Times are nanoseconds since the limiter's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Permits per second, 1 to [`MAX_RATE_PER_SECOND`].
    rate: u64,
    /// Stored permits times 10^9, at most `rate` times 10^9 (one second's).
    stored: u128,
    /// When the next request may pass.
    next_free: u128,
}

impl Bucket {
    /// A bucket at `rate` per second (capped; at least 1) with a full
    /// second's burst stored, as one that has been idle a while.
    pub fn new(rate: u64, now: u128) -> Bucket {
        let rate = rate.clamp(1, MAX_RATE_PER_SECOND);
        Bucket {
            rate,
            stored: u128::from(rate) * NANOS_PER_SECOND,
            next_free: now,
        }
    }

    fn max_stored(&self) -> u128 {
        u128::from(self.rate) * NANOS_PER_SECOND
    }

    /// Adds the permits accrued up to `now`.
    fn refill(&mut self, now: u128) {
        if now > self.next_free {
            let accrued = (now - self.next_free).saturating_mul(u128::from(self.rate));
            self.stored = self.stored.saturating_add(accrued).min(self.max_stored());
            self.next_free = now;
        }
    }

    /// Takes `cost` permits if the bucket lets a request through at `now`.
    pub fn try_acquire(&mut self, cost: u64, now: u128) -> bool {
        if self.next_free > now {
            return false;
        }
        self.refill(now);
        let wanted = u128::from(cost).saturating_mul(NANOS_PER_SECOND);
        let from_store = wanted.min(self.stored);
        self.stored -= from_store;
        let fresh = wanted - from_store;
        // Nanoseconds until the fresh permits are paid off, rounded up.
        let wait = fresh.div_ceil(u128::from(self.rate));
        self.next_free = self.next_free.saturating_add(wait);
        true
    }

    /// Changes the rate at `now`, keeping the stored share of the burst.
    pub fn set_rate(&mut self, rate: u64, now: u128) {
        let rate = rate.clamp(1, MAX_RATE_PER_SECOND);
        self.refill(now);
        // stored / old_max == new_stored / new_max; stored <= 10^33, so the
        // product stays within u128 after dividing by the old rate first.
        let per_permit = self.stored / u128::from(self.rate);
        let rest = self.stored % u128::from(self.rate);
        self.stored = per_permit
            .saturating_mul(u128::from(rate))
            .saturating_add(rest.saturating_mul(u128::from(rate)) / u128::from(self.rate));
        self.rate = rate;
        self.stored = self.stored.min(self.max_stored());
    }
}

/// The record and byte buckets of one scope (global, or one cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Buckets {
    records: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Buckets {
    /// Applies new limits at `now`: a bucket kept changes its rate, a new
    /// one starts full, one no longer limited goes.
    fn set(&mut self, limits: RateLimits, now: u128) {
        set_bucket(&mut self.records, rate(limits.records_per_second), now);
        set_bucket(&mut self.bytes, rate(limits.bytes_per_second), now);
    }

    fn is_unlimited(&self) -> bool {
        self.records.is_none() && self.bytes.is_none()
    }

    /// The record check, then the byte check; a check passed has spent its
    /// permits even when the next one fails.
    fn try_acquire(&mut self, cost: u64, now: u128) -> bool {
        let pass = |bucket: &mut Option<Bucket>, cost| {
            bucket.as_mut().is_none_or(|b| b.try_acquire(cost, now))
        };
        pass(&mut self.records, 1) && pass(&mut self.bytes, cost)
    }
}

fn set_bucket(bucket: &mut Option<Bucket>, rate: Option<u64>, now: u128) {
    match (bucket.as_mut(), rate) {
        (_, None) => *bucket = None,
        (Some(b), Some(rate)) => b.set_rate(rate, now),
        (None, Some(rate)) => *bucket = Some(Bucket::new(rate, now)),
    }
}

/// Every bucket, and the configured limits they follow.
#[derive(Debug)]
pub(crate) struct Limiters {
    origin: Instant,
    global: Buckets,
    clusters: HashMap<String, Buckets>,
}

impl Limiters {
    /// Limiters starting at `origin`, every bucket full.
    pub fn new(
        global: RateLimits,
        clusters: impl IntoIterator<Item = (String, RateLimits)>,
        origin: Instant,
    ) -> Limiters {
        let mut limiters = Limiters {
            origin,
            global: Buckets::default(),
            clusters: HashMap::new(),
        };
        limiters.set_global(global, origin);
        for (cluster, limits) in clusters {
            limiters.set_cluster(&cluster, limits, origin);
        }
        limiters
    }

    fn nanos(&self, now: Instant) -> u128 {
        now.saturating_duration_since(self.origin).as_nanos()
    }

    pub fn set_global(&mut self, limits: RateLimits, now: Instant) {
        let now = self.nanos(now);
        self.global.set(limits, now);
    }

    pub fn set_cluster(&mut self, cluster: &str, limits: RateLimits, now: Instant) {
        let now = self.nanos(now);
        let buckets = self.clusters.entry(cluster.to_owned()).or_default();
        buckets.set(limits, now);
        if buckets.is_unlimited() {
            self.clusters.remove(cluster);
        }
    }

    /// Whether no bucket limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.global.is_unlimited() && self.clusters.is_empty()
    }

    /// Whether a record of `cost` bytes to `cluster` passes at `now`: the
    /// global count, the global bytes, the cluster's count, the cluster's
    /// bytes, in that order, each spending its permits when it passes.
    pub fn try_acquire(&mut self, cluster: &str, cost: u64, now: Instant) -> bool {
        let now = self.nanos(now);
        self.global.try_acquire(cost, now)
            && self
                .clusters
                .get_mut(cluster)
                .is_none_or(|b| b.try_acquire(cost, now))
    }
}

/// The limiter the server tasks share: a flag read without a lock on the
/// unlimited path, the buckets behind a mutex, and the count of records
/// refused.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    on: AtomicBool,
    limiters: Mutex<Limiters>,
    refused: AtomicU64,
}

impl RateLimiter {
    pub fn new(
        global: RateLimits,
        clusters: impl IntoIterator<Item = (String, RateLimits)>,
    ) -> Self {
        let limiters = Limiters::new(global, clusters, Instant::now());
        RateLimiter {
            on: AtomicBool::new(!limiters.is_unlimited()),
            limiters: Mutex::new(limiters),
            refused: AtomicU64::new(0),
        }
    }

    /// Whether a record of `cost` bytes to `cluster` may be produced now;
    /// counts it when it may not.
    pub fn admit(&self, cluster: &str, cost: usize) -> bool {
        if !self.is_on() {
            return true;
        }
        let cost = u64::try_from(cost).unwrap_or(u64::MAX);
        let admitted = lock(&self.limiters).try_acquire(cluster, cost, Instant::now());
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Whether any limit is set.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Replaces the global limits.
    pub fn set_global(&self, limits: RateLimits) {
        let mut limiters = lock(&self.limiters);
        limiters.set_global(limits, Instant::now());
        self.on.store(!limiters.is_unlimited(), Ordering::Relaxed);
    }

    /// Replaces one cluster's limits.
    pub fn set_cluster(&self, cluster: &str, limits: RateLimits) {
        let mut limiters = lock(&self.limiters);
        limiters.set_cluster(cluster, limits, Instant::now());
        self.on.store(!limiters.is_unlimited(), Ordering::Relaxed);
    }

    /// Records refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn reset_refused(&self) {
        self.refused.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u128 = 1_000_000;
    const SECOND: u128 = 1_000 * MS;

    /// How many of `n` requests of `cost` pass at `now`.
    fn passes(bucket: &mut Bucket, n: usize, cost: u64, now: u128) -> usize {
        (0..n).filter(|_| bucket.try_acquire(cost, now)).count()
    }

    #[test]
    fn a_full_bucket_lets_a_second_and_one_more_through() {
        let mut bucket = Bucket::new(10, 0);
        assert_eq!(passes(&mut bucket, 100, 1, 0), 11);
    }

    #[test]
    fn permits_accrue_at_the_rate_up_to_one_second() {
        let mut bucket = Bucket::new(10, 0);
        assert_eq!(passes(&mut bucket, 100, 1, 0), 11);
        // The 11th pushed the next free time to 100 ms.
        assert_eq!(passes(&mut bucket, 100, 1, 50 * MS), 0);
        assert_eq!(passes(&mut bucket, 100, 1, 100 * MS), 1);
        // That one pushed it to 200 ms: by 500 ms 3 are stored, and one
        // more passes on credit.
        assert_eq!(passes(&mut bucket, 100, 1, 500 * MS), 4);
        // After a long pause only one second's worth is stored.
        assert_eq!(passes(&mut bucket, 100, 1, 100 * SECOND), 11);
    }

    #[test]
    fn a_cost_over_the_burst_passes_once_then_blocks() {
        let mut bucket = Bucket::new(100, 0);
        assert!(bucket.try_acquire(1_000, 0));
        // 100 stored, 900 owed: 9 s until the next one.
        assert!(!bucket.try_acquire(1, 8 * SECOND));
        assert!(bucket.try_acquire(1, 9 * SECOND));
        assert!(!bucket.try_acquire(1, 9 * SECOND));
    }

    #[test]
    fn a_rate_change_keeps_the_stored_share() {
        let mut bucket = Bucket::new(100, 0);
        assert_eq!(passes(&mut bucket, 50, 1, 0), 50);
        // Half the burst left: half of the new one.
        bucket.set_rate(10, 0);
        assert_eq!(passes(&mut bucket, 100, 1, 0), 6);
        bucket.set_rate(1_000, 10 * SECOND);
        assert_eq!(passes(&mut bucket, 5_000, 1, 10 * SECOND), 1_001);
    }

    #[test]
    fn absurd_rates_and_costs_do_not_panic() {
        for rate in [0, 1, u64::MAX] {
            let mut bucket = Bucket::new(rate, 0);
            assert!(bucket.try_acquire(u64::MAX, 0));
            assert!(!bucket.try_acquire(1, 1));
            bucket.set_rate(u64::MAX, u128::MAX);
            bucket.set_rate(0, u128::MAX);
            let _ = bucket.try_acquire(u64::MAX, u128::MAX);
        }
        let mut bucket = Bucket::new(u64::MAX, 0);
        assert_eq!(bucket.rate, MAX_RATE_PER_SECOND);
        assert_eq!(passes(&mut bucket, 1_000, 1 << 30, 0), 1_000);
    }

    fn limiters(global: RateLimits, clusters: &[(&str, RateLimits)]) -> (Limiters, Instant) {
        let origin = Instant::now();
        let clusters = clusters.iter().map(|(c, l)| (c.to_string(), *l));
        (Limiters::new(global, clusters, origin), origin)
    }

    fn admitted(l: &mut Limiters, cluster: &str, n: usize, cost: u64, now: Instant) -> usize {
        (0..n).filter(|_| l.try_acquire(cluster, cost, now)).count()
    }

    #[test]
    fn zero_or_absent_limits_are_unlimited() {
        assert!(RateLimits::default().is_unlimited());
        let zero = RateLimits::unlimited()
            .with_records_per_second(0)
            .with_bytes_per_second(0);
        assert!(zero.is_unlimited());
        let (mut l, now) = limiters(zero, &[("a", zero)]);
        assert!(l.is_unlimited());
        assert_eq!(admitted(&mut l, "a", 10_000, u64::MAX, now), 10_000);
    }

    #[test]
    fn checks_run_in_order_and_a_pass_spends() {
        // Bytes refuse first: the record count was spent all the same.
        let global = RateLimits::unlimited()
            .with_records_per_second(10)
            .with_bytes_per_second(100);
        let (mut l, now) = limiters(global, &[]);
        assert_eq!(admitted(&mut l, "a", 5, 60, now), 2);
        // 5 records counted: 6 more pass on count with bytes out of the way.
        l.set_global(global.with_bytes_per_second(0), now);
        assert_eq!(admitted(&mut l, "a", 100, 60, now), 6);

        // A cluster's refusal leaves the global permits spent.
        let (mut l, now) = limiters(
            RateLimits::unlimited().with_records_per_second(10),
            &[("a", RateLimits::unlimited().with_records_per_second(2))],
        );
        assert_eq!(admitted(&mut l, "a", 5, 1, now), 3);
        assert_eq!(admitted(&mut l, "b", 100, 1, now), 11 - 5);
    }

    #[test]
    fn clusters_have_their_own_buckets_and_share_the_global_one() {
        let per_cluster = |n| RateLimits::unlimited().with_records_per_second(n);
        let (mut l, now) = limiters(
            per_cluster(1_000),
            &[("a", per_cluster(5)), ("b", per_cluster(20))],
        );
        assert_eq!(admitted(&mut l, "a", 100, 1, now), 6);
        assert_eq!(admitted(&mut l, "b", 100, 1, now), 21);
        // Every attempt above spent a global permit, refused or not.
        assert_eq!(admitted(&mut l, "c", 2_000, 1, now), 1_001 - 100 - 100);
        l.set_cluster("b", RateLimits::unlimited(), now);
        assert_eq!(admitted(&mut l, "b", 5, 1, now + Duration::from_secs(1)), 5);
    }

    #[test]
    fn time_before_the_origin_is_the_origin() {
        let (mut l, now) = limiters(RateLimits::unlimited().with_records_per_second(1), &[]);
        let earlier = now.checked_sub(Duration::from_secs(5)).unwrap_or(now);
        assert_eq!(admitted(&mut l, "a", 10, 1, earlier), 2);
    }

    #[test]
    fn the_shared_limiter_counts_refusals() {
        let limiter = RateLimiter::new(RateLimits::unlimited(), []);
        assert!((0..1_000).all(|_| limiter.admit("a", 10)));
        limiter.set_cluster("a", RateLimits::unlimited().with_records_per_second(1));
        let passed = (0..10).filter(|_| limiter.admit("a", 10)).count();
        assert!((2..=3).contains(&passed), "{passed}");
        assert_eq!(limiter.refused(), 10 - passed as u64);
        assert!(limiter.admit("b", 10));
        limiter.reset_refused();
        assert_eq!(limiter.refused(), 0);
        limiter.set_cluster("a", RateLimits::unlimited());
        assert!(!limiter.on.load(Ordering::Relaxed));
    }
}
