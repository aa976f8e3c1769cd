//! What happens after a handler answers: acknowledge, which retry tier, or park.
//! Both backends take their decisions here, so they behave the same.

use std::time::Duration;

use crate::{BusError, Outcome};

/// Retry tiers and the attempt limit of one consuming service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay of each retry tier, shortest first. Attempt *n* that asks for a retry waits in
    /// tier *n − 1* (the last tier repeats), or in a later tier when the handler asked for a
    /// longer wait than that tier gives.
    pub tiers: Vec<Duration>,
    /// Deliveries to the handler before the message is parked (first delivery included).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 5 s, 30 s, 2 min, 10 min, 1 h; parked after 8 attempts (about 3 h 20 min of trying).
    fn default() -> Self {
        Self {
            tiers: [5, 30, 120, 600, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Checks the policy can work: at least one tier, tiers strictly increasing and at least
    /// 1 ms (RabbitMQ TTLs are milliseconds), at least one attempt.
    ///
    /// # Errors
    /// [`BusError::Config`] naming what is wrong.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.max_attempts == 0 {
            return Err(BusError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        if self.tiers.is_empty() {
            return Err(BusError::Config(
                "retry.tiers must name at least one delay".into(),
            ));
        }
        if self.tiers.iter().any(|d| d.as_millis() == 0) {
            return Err(BusError::Config("retry tiers must be at least 1 ms".into()));
        }
        if self.tiers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BusError::Config(
                "retry tiers must be strictly increasing (each tier is one queue)".into(),
            ));
        }
        Ok(())
    }

    /// Decides what to do with a delivery on its `attempt`-th try given the handler's answer.
    #[must_use]
    pub fn decide(&self, attempt: u32, outcome: Outcome) -> Action {
        match outcome {
            Outcome::Ack => Action::Ack,
            Outcome::Park { reason } => Action::Park { reason },
            Outcome::Retry { reason, .. } if attempt >= self.max_attempts => Action::Park {
                reason: format!("gave up after {attempt} attempts; last: {reason}"),
            },
            Outcome::Retry { after, reason } => {
                let by_attempt = usize::try_from(attempt.saturating_sub(1))
                    .unwrap_or(usize::MAX)
                    .min(self.tiers.len().saturating_sub(1));
                // Honour a longer wait asked for (e.g. Retry-After) by moving up the tiers.
                let tier = self
                    .tiers
                    .iter()
                    .enumerate()
                    .skip(by_attempt)
                    .find(|(_, delay)| **delay >= after)
                    .map_or(self.tiers.len().saturating_sub(1), |(i, _)| i);
                if let Some(longest) = self.tiers.last()
                    && after > *longest
                {
                    tracing::warn!(
                        asked = ?after,
                        waiting = ?longest,
                        attempt,
                        %reason,
                        "the handler asked for a longer wait than the longest retry tier; the message comes back earlier"
                    );
                }
                Action::Retry { tier, reason }
            }
        }
    }
}

/// What the consumer does with a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Acknowledge.
    Ack,
    /// Send to retry tier `tier` (index into [`RetryPolicy::tiers`]), then acknowledge.
    Retry {
        /// Index of the tier.
        tier: usize,
        /// The handler's reason.
        reason: String,
    },
    /// Send to the parking queue, then acknowledge.
    Park {
        /// Why.
        reason: String,
    },
}

/// `delay` spread by ±20 % at random, so that processes backing off after the same outage
/// do not all come back at the same instant.
pub(crate) fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.8..1.2))
}

/// Formats a delay the way queue names carry it: `250ms`, `5s`, `2m`, `1h`.
#[must_use]
pub fn delay_label(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            tiers: vec![
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_secs(60),
            ],
            max_attempts: 5,
        }
    }

    fn retry(after: u64) -> Outcome {
        Outcome::retry(Duration::from_secs(after), "503")
    }

    #[test]
    fn tiers_escalate_then_repeat_then_park() {
        let p = policy();
        let tiers: Vec<Action> = (1..=5).map(|n| p.decide(n, retry(0))).collect();
        let tier = |t| Action::Retry {
            tier: t,
            reason: "503".into(),
        };
        assert_eq!(&tiers[..4], &[tier(0), tier(1), tier(2), tier(2)]);
        assert!(
            matches!(&tiers[4], Action::Park { reason } if reason.contains("5 attempts") && reason.contains("503"))
        );
    }

    #[test]
    fn a_longer_wait_moves_up_the_tiers() {
        let p = policy();
        assert!(matches!(
            p.decide(1, retry(5)),
            Action::Retry { tier: 1, .. }
        ));
        assert!(matches!(
            p.decide(1, retry(3600)),
            Action::Retry { tier: 2, .. }
        ));
        assert!(matches!(
            p.decide(3, retry(5)),
            Action::Retry { tier: 2, .. }
        ));
    }

    #[test]
    fn ack_and_park_pass_through() {
        let p = policy();
        assert_eq!(p.decide(1, Outcome::Ack), Action::Ack);
        assert_eq!(
            p.decide(1, Outcome::park("bad")),
            Action::Park {
                reason: "bad".into()
            }
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let mut p = policy();
        p.tiers = vec![Duration::from_secs(10), Duration::from_secs(1)];
        assert!(p.validate().is_err());
        p.tiers.clear();
        assert!(p.validate().is_err());
        assert!(policy().validate().is_ok());
        assert!(RetryPolicy::default().validate().is_ok());
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let base = Duration::from_secs(10);
        let spread: Vec<Duration> = (0..50).map(|_| jittered(base)).collect();
        assert!(
            spread
                .iter()
                .all(|d| *d >= base.mul_f64(0.8) && *d <= base.mul_f64(1.2))
        );
        assert!(spread.iter().any(|d| *d != spread[0]), "not constant");
    }

    #[test]
    fn labels() {
        assert_eq!(delay_label(Duration::from_millis(250)), "250ms");
        assert_eq!(delay_label(Duration::from_secs(5)), "5s");
        assert_eq!(delay_label(Duration::from_secs(120)), "2m");
        assert_eq!(delay_label(Duration::from_secs(3600)), "1h");
    }
}
