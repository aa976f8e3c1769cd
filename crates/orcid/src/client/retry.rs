//! When a request is sent again: exponential back-off with full jitter, for requests that are
//! safe to repeat.
//!
//! The rules (also in the crate README):
//! - **Idempotent requests** (GET, PUT, DELETE, webhook PUT/DELETE, token revocation, and
//!   the client-credentials grant, where asking twice only issues a second token) are
//!   retried on connection failures, timeouts, any 5xx, and 429. A DELETE whose retry finds
//!   the item gone (404, code 9016 or 9028) succeeded: the earlier attempt deleted it.
//! - **POST** (create, bulk create, code exchange, refresh) is retried
//!   only when ORCID certainly did not act on it: the connection could not be made (nothing
//!   was sent), or ORCID refused it for load (503 over the burst, or 429 — the rate limiter
//!   turns requests away before processing them). When the outcome is unknown — a timeout
//!   or lost connection after sending, or 500/502/504 — the caller gets
//!   [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) and must read back before
//!   trying again: a blind repeat could create the item twice, and a code exchange cannot be
//!   repeated at all.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry.
///
/// The n-th retry (n from 0) waits a random time between zero and
/// `min(max_delay, base_delay × 2ⁿ)` ("full jitter"); a `Retry-After` from ORCID raises
/// that to its value, capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// The back-off ceiling of the first retry.
    pub base_delay: Duration,
    /// The largest back-off ceiling.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Never retry.
    pub const fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// `max_retries` retries with back-off from `base_delay` up to `max_delay`.
    pub const fn new(max_retries: u32, base_delay: Duration, max_delay: Duration) -> Self {
        RetryPolicy {
            max_retries,
            base_delay,
            max_delay,
        }
    }

    /// How long to wait before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base_delay
            .checked_mul(2u32.saturating_pow(retry.min(30)))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let jittered = if ceiling_nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::rng().random_range(0..=ceiling_nanos))
        };
        match retry_after {
            Some(after) => jittered.max(after.min(self.max_delay)),
            None => jittered,
        }
    }
}

impl Default for RetryPolicy {
    /// 3 retries, 200 ms base, 5 s ceiling.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_stays_under_the_ceiling() {
        let p = RetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(350));
        for retry in 0..10 {
            let ceiling = Duration::from_millis(100 * 2u64.pow(retry.min(20))).min(p.max_delay);
            for _ in 0..50 {
                assert!(p.delay(retry, None) <= ceiling);
            }
        }
        assert_eq!(RetryPolicy::none().delay(3, None), Duration::ZERO);
    }

    #[test]
    fn retry_after_raises_the_delay_up_to_the_cap() {
        let p = RetryPolicy::new(5, Duration::from_millis(1), Duration::from_secs(2));
        assert!(p.delay(0, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }
}
