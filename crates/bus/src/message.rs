//! What goes in (an [`OutgoingMessage`]) and what a handler sees and answers
//! ([`Delivery`], [`Outcome`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BusError, Envelope, events::Event};

/// A message to publish: an envelope plus where it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingMessage {
    /// Exchange name *relative to the bus prefix*: `hr` becomes `idbridge.hr`.
    pub exchange: String,
    /// Routing key, e.g. `hr.hire`.
    pub routing_key: String,
    /// Key that partitioned consumers serialise on (the person or ORCID iD); sent as the
    /// `x-partition-key` header. `None` for events no partitioned consumer cares about.
    pub partition_key: Option<String>,
    /// The message.
    pub envelope: Envelope,
}

impl OutgoingMessage {
    /// Routes `envelope` to `exchange` (relative name) with `routing_key`.
    #[must_use]
    pub fn new(exchange: &str, routing_key: &str, envelope: Envelope) -> Self {
        Self {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            partition_key: None,
            envelope,
        }
    }

    /// Wraps `event` in a new envelope and routes it where its contract says
    /// ([`Event::EXCHANGE`], [`Event::routing_key`], [`Event::partition_key`]).
    ///
    /// # Errors
    /// [`BusError::Json`] when the event does not serialise.
    pub fn event<E: Event>(event: &E) -> Result<Self, BusError> {
        Ok(Self {
            exchange: E::EXCHANGE.to_owned(),
            routing_key: event.routing_key(),
            partition_key: event.partition_key(),
            envelope: Envelope::new(event)?,
        })
    }

    /// Sets the partition key.
    #[must_use]
    pub fn partition_key(mut self, key: impl Into<String>) -> Self {
        self.partition_key = Some(key.into());
        self
    }

    /// Replaces the envelope (to set causation, trace, occurred-at on it).
    #[must_use]
    pub fn with_envelope(mut self, f: impl FnOnce(Envelope) -> Envelope) -> Self {
        self.envelope = f(self.envelope);
        self
    }
}

/// A message handed to a handler.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The decoded envelope.
    pub envelope: Envelope,
    /// 1 for the first delivery; +1 for each pass through a retry tier.
    /// Redeliveries after a crash do not count (they are not the handler's verdict).
    pub attempt: u32,
    /// The broker redelivered this message after a consumer died or a channel closed before
    /// the ack; the handler may have seen it already (the inbox exists for this).
    pub redelivered: bool,
    /// Exchange the message was first published to (full name).
    pub exchange: String,
    /// Routing key it was first published with.
    pub routing_key: String,
    /// `x-partition-key`, when the publisher set one.
    pub partition_key: Option<String>,
    /// Queue it was consumed from.
    pub queue: String,
    /// Earlier attempts and why they did not succeed.
    pub history: Vec<AttemptRecord>,
}

impl Delivery {
    /// Reads the payload as `E`, checking type and version.
    ///
    /// # Errors
    /// See [`Envelope::payload`].
    pub fn payload<E: Event>(&self) -> Result<E, BusError> {
        self.envelope.payload()
    }
}

/// A handler's verdict on a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done (effects committed, or nothing to do): acknowledge.
    Ack,
    /// Failed for a reason that may pass (ORCID 5xx, rate limit, database down): try again
    /// after at least `after`, through the retry tier whose delay covers it.
    Retry {
        /// Minimum wait before the next attempt (e.g. from `Retry-After`).
        after: Duration,
        /// Why, kept in the attempt history.
        reason: String,
    },
    /// Will never succeed as it is (invalid payload, no such person): set aside in the
    /// service's parking queue with the reason, for an operator.
    Park {
        /// Why, readable by an operator.
        reason: String,
    },
}

impl Outcome {
    /// `Retry` with a reason; `after` zero means "the next tier".
    #[must_use]
    pub fn retry(after: Duration, reason: impl Into<String>) -> Self {
        Self::Retry {
            after,
            reason: reason.into(),
        }
    }

    /// `Park` with a reason.
    #[must_use]
    pub fn park(reason: impl Into<String>) -> Self {
        Self::Park {
            reason: reason.into(),
        }
    }
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// Sent to a retry tier.
    Retry,
    /// Set aside in the parking queue.
    Park,
}

impl AttemptOutcome {
    /// `retry` or `park`, as in the `x-idbridge-history` header.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Park => "park",
        }
    }

    /// The inverse of [`AttemptOutcome::as_str`].
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "retry" => Some(Self::Retry),
            "park" => Some(Self::Park),
            _ => None,
        }
    }
}

/// One failed attempt, as kept in the `x-idbridge-history` header and shown to operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Which attempt (1-based).
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Retried or parked.
    pub outcome: AttemptOutcome,
    /// The handler's reason (or the bus's, e.g. "invalid envelope").
    pub reason: String,
    /// Delay of the retry tier chosen, in milliseconds (0 when parked).
    pub delay_ms: u64,
}
