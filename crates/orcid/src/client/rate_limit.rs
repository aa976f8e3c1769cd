//! The client-wide rate limiter (reference §4.4: 24 requests/s, burst 40, 503 beyond).
//!
//! Every request the client sends, retries included, first takes a permit from one
//! [`RateLimiter`], shared by all clones of the client. The limiter is a trait so that a
//! deployment with several replicas can put a shared limiter (e.g. one in Redis or a broker)
//! behind it; [`GovernorRateLimiter`], an in-process token bucket, is the default.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

use crate::error::Error;

/// A boxed future, as [`RateLimiter::acquire`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Gives out permission to send one request.
///
/// Implementations must be cheap to call concurrently; the client calls [`acquire`] once per
/// HTTP request (each retry too) and logs how long it waited.
///
/// [`acquire`]: RateLimiter::acquire
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Waits until one more request may be sent, takes the permit, and returns how long it
    /// waited (zero when a permit was free).
    fn acquire(&self) -> BoxFuture<'_, Duration>;
}

/// A token bucket's shape: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// How many requests may go at once after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    /// ORCID's member API limit: 24 requests per second, burst 40.
    pub const ORCID_MEMBER: RateLimit = RateLimit {
        per_second: 24,
        burst: 40,
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::ORCID_MEMBER
    }
}

/// What a [`GovernorRateLimiter`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimiterStats {
    /// Permits given out.
    pub permits: u64,
    /// Permits that were not free at once: the caller had to wait.
    pub waits: u64,
    /// Total time callers waited.
    pub waited: Duration,
}

/// An in-process token bucket (the `governor` crate's GCRA), shared by every clone of the
/// client that holds it.
pub struct GovernorRateLimiter {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    limit: RateLimit,
    permits: AtomicU64,
    waits: AtomicU64,
    waited_nanos: AtomicU64,
}

impl GovernorRateLimiter {
    /// A bucket of `limit`.
    ///
    /// # Errors
    /// [`Error::Config`] when the rate or the burst is zero.
    pub fn new(limit: RateLimit) -> Result<Self, Error> {
        let per_second = NonZeroU32::new(limit.per_second)
            .ok_or_else(|| Error::Config("rate_limit.per_second must be at least 1".to_owned()))?;
        let burst = NonZeroU32::new(limit.burst)
            .ok_or_else(|| Error::Config("rate_limit.burst must be at least 1".to_owned()))?;
        let quota = Quota::per_second(per_second).allow_burst(burst);
        let clock = DefaultClock::default();
        Ok(GovernorRateLimiter {
            limiter: governor::RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            limit,
            permits: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            waited_nanos: AtomicU64::new(0),
        })
    }

    /// The bucket's shape.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Permits given and waits so far.
    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            permits: self.permits.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited: Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed)),
        }
    }

    async fn acquire_permit(&self) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            match self.limiter.check() {
                Ok(()) => break,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
        self.permits.fetch_add(1, Ordering::Relaxed);
        if !waited.is_zero() {
            self.waits.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        waited
    }
}

impl fmt::Debug for GovernorRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GovernorRateLimiter")
            .field("limit", &self.limit)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RateLimiter for GovernorRateLimiter {
    fn acquire(&self) -> BoxFuture<'_, Duration> {
        Box::pin(self.acquire_permit())
    }
}

/// No limit at all: for benchmarks against a simulator, or when something outside the
/// client already limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl RateLimiter for Unlimited {
    fn acquire(&self) -> BoxFuture<'_, Duration> {
        Box::pin(std::future::ready(Duration::ZERO))
    }
}
