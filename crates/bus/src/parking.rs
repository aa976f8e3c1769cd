//! Operator tools for parked messages: list with reasons, replay, purge.
//! (The `idbridge dlq` CLI wraps these.)

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::AttemptRecord;

/// RabbitMQ's `x-delivery-count` at which a listing or replay re-publishes the parked
/// messages it fetched instead of giving them back (the quorum queue counts each give-back
/// as a delivery, and from RabbitMQ 4.0 drops a message past its delivery limit, 20 by
/// default). A message is given back at most with a count of `REFRESH_AT - 1`, reaching
/// `REFRESH_AT`, so any delivery limit of at least `REFRESH_AT` never drops one while
/// operations succeed; RabbitMQ 4's default leaves 15 failed re-publishings (a broker
/// refusing publishes during an alarm, say) before one could be dropped. A queue listed over
/// and over is re-published on one listing in six.
pub const REFRESH_AT: u64 = 5;

/// A message in a service's parking queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParkedMessage {
    /// The envelope's id (from the AMQP `message-id` property), if it had one.
    pub message_id: Option<String>,
    /// The envelope's type, if known.
    pub message_type: Option<String>,
    /// Why it was parked: the handler's reason, "invalid envelope: …", "gave up after N
    /// attempts; last: …", or the broker's delivery limit.
    pub reason: String,
    /// When.
    pub parked_at: Option<DateTime<Utc>>,
    /// The queue it was taken from, where a replay puts it back.
    pub origin_queue: Option<String>,
    /// The routing key it was first published with.
    pub routing_key: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Every failed attempt, oldest first.
    pub history: Vec<AttemptRecord>,
    /// The body as text (lossy for non-UTF-8).
    pub body: String,
}

/// Which parked messages to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every parked message of the service.
    All,
    /// Only these message ids.
    Ids(Vec<String>),
}

impl Selection {
    pub(crate) fn matches(&self, message_id: Option<&str>) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => message_id.is_some_and(|id| ids.iter().any(|i| i == id)),
        }
    }
}
