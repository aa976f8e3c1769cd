//! The event contracts: one Rust type per message in `proto/schemas/`, with where it is
//! published. Every type here serialises to JSON valid against its schema (tested).
//!
//! | type | schema | exchange | routing key | partition key |
//! |---|---|---|---|---|
//! | [`IdConnected`] | `id-connected.v1` | `events` | `id.connected` | person id |
//! | [`ConnectionReady`] | `connection-ready.v1` | `events` | `connection.ready` | person id |
//! | [`ConnectionLost`] | `connection-lost.v1` | `events` | `connection.lost` | person id |
//! | [`HrEvent`] | `hr-event.v1` | `hr` | `hr.hire` / `hr.leave` / `hr.change` | person id |
//! | [`WorkEvent`] | `work-event.v1` | `works` | `work.upsert` / `work.delete` | person id |
//! | [`ItemWritten`] | `item-written.v1` | `events` | `item.written` | person id |
//! | [`ItemFailed`] | `item-failed.v1` | `events` | `item.failed` | person id |
//! | [`RecordChanged`] | `record-changed.v1` | `events` | `record.changed` | ORCID iD |
//! | [`RecordUpdated`] | `record-updated.v1` | `events` | `record.updated` | ORCID iD |
//!
//! Partition keys: everything that leads to an ORCID write is keyed by the institution's
//! person id. The token vault keeps one iD per person id and one person id per iD, so one
//! key means one ORCID record and "one message in flight per key" is "one write in flight
//! per record".
//!
//! iD fields are [`OrcidId`]s (re-exported from the `orcid` crate): what the code sends
//! carries a valid check digit, and a payload with an invalid iD does not decode.

mod common;
mod connection;
mod hr;
mod items;
mod record;
mod work;

pub use common::{
    AffiliationSection, ExternalId, Organization, PartialDate, Relationship, Section,
};
pub use connection::{ConnectionLost, ConnectionReady, IdConnected, LostReason, SealedToken};
pub use hr::{HrEvent, HrEventType, Person, PersonNames, Position};
pub use items::{ItemAction, ItemError, ItemFailed, ItemWritten};
pub use orcid::OrcidId;
pub use record::{DeletedItem, ItemRef, RecordChanged, RecordStatus, RecordUpdated};
pub use work::{Contributor, Work, WorkEvent, WorkEventType};

use serde::{Serialize, de::DeserializeOwned};

/// Message types that only *notify* whoever cares: "item written", "item failed",
/// "record updated" and "connection lost". A deployment may run without any consumer of
/// them (no downstream system subscribed, no webhook receiver for a client without the
/// webhook feature), so the outbox relay publishes them without the *mandatory* flag: a
/// broker with no queue bound drops them instead of holding the row back. Every other
/// type leads to work a service must do, and an unroutable one stays pending and is
/// reported.
pub const NOTIFICATIONS: [&str; 4] = [
    "item-written",
    "item-failed",
    "record-updated",
    "connection-lost",
];

/// Whether a message of `message_type` may go unconsumed (see [`NOTIFICATIONS`]).
#[must_use]
pub fn is_notification(message_type: &str) -> bool {
    NOTIFICATIONS.contains(&message_type)
}

/// Domain exchanges, by name relative to the bus prefix (`idbridge.hr` in production).
pub mod exchanges {
    /// HR systems publish hire/leave/change here.
    pub const HR: &str = "hr";
    /// Research repositories publish works here.
    pub const WORKS: &str = "works";
    /// idbridge's own events.
    pub const EVENTS: &str = "events";
}

/// A message type with a schema and a place on the bus.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    /// The envelope's `type`.
    const TYPE: &'static str;
    /// The envelope's `schema_version`.
    const VERSION: u32;
    /// Exchange it is published to (relative name).
    const EXCHANGE: &'static str;
    /// Routing key of this instance.
    fn routing_key(&self) -> String;
    /// Partition key of this instance (see the module docs).
    fn partition_key(&self) -> Option<String>;
}
