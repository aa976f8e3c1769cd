//! The bus's error type.

use std::time::Duration;

/// Everything that can go wrong talking to the bus, the outbox or the inbox.
///
/// Variants say what failed; `is_transient` says whether trying again later can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The AMQP client reported an error (connection, channel or protocol).
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    /// Connecting to the broker did not finish in time.
    #[error("connecting to the broker timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The broker did not confirm a publish in time (it may still have taken the message).
    #[error("the broker did not confirm the publish within {0:?}")]
    PublishTimeout(Duration),
    /// The broker refused to take responsibility for a message (publisher confirm `nack`).
    #[error("the broker nacked the message published to exchange {exchange:?}")]
    Nacked {
        /// The exchange the message was published to.
        exchange: String,
    },
    /// A mandatory message matched no queue and the broker returned it.
    #[error("message to exchange {exchange:?} with routing key {routing_key:?} matched no queue")]
    Unroutable {
        /// The exchange the message was published to.
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// A database call (outbox, inbox, migrations) failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A message or payload could not be encoded or decoded as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A payload was read as the wrong event type or version.
    #[error("expected a {expected} message, got {actual}")]
    WrongType {
        /// `type@version` the caller asked for.
        expected: String,
        /// `type@version` of the message.
        actual: String,
    },
    /// The topology or the configuration is invalid (a name, a partition count, a policy).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The service named is not part of the declared topology.
    #[error("unknown service {0:?}: declare it in the topology first")]
    UnknownService(String),
    /// The broker did not confirm closing the channel of a parked-queue listing or replay in
    /// time. The publishing connection was reset so that the broker puts back whatever the
    /// channel still held, but the outcome is unknown: a listing may be incomplete, a replay
    /// may have stopped short or left a re-published message parked too. Running the
    /// operation again is safe.
    #[error(
        "the broker did not confirm closing the channel of the parked-queue {operation} within {timeout:?}; the connection was reset so the broker puts back the messages it held, but the {operation} may be incomplete: retry"
    )]
    ChannelCloseUnconfirmed {
        /// `list` or `replay`.
        operation: &'static str,
        /// How long the close was waited for.
        timeout: Duration,
    },
    /// The consumer or bus was shut down.
    #[error("the bus is closed")]
    Closed,
}

impl BusError {
    /// Whether the same operation may succeed later without any change (broker or database
    /// back, connection re-established). Configuration and encoding errors are permanent.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Amqp(_)
            | Self::ConnectTimeout(_)
            | Self::PublishTimeout(_)
            | Self::Nacked { .. }
            | Self::ChannelCloseUnconfirmed { .. }
            | Self::Database(_) => true,
            Self::Unroutable { .. }
            | Self::Json(_)
            | Self::WrongType { .. }
            | Self::Config(_)
            | Self::UnknownService(_)
            | Self::Closed => false,
        }
    }
}
