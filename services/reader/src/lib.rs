//! idbridge's reader: reads connected ORCID records, keeps a snapshot per iD and tells
//! downstream systems (and the writer's ledger) what changed.
//!
//! - [`Reader`] is the decision: [`Reader::read_record`] reads a record's activities
//!   summary, compares it with the stored snapshot ([`diff`]), stores the new one
//!   ([`snapshot`]) and records "record updated" in the outbox in the same transaction.
//! - [`reconcile`] re-reads every connection once per period, for clients without webhooks.
//! - [`tokens`] is the token source seam and its token-vault implementation.
//! - [`Application`] / [`run`] wire it to the bus (topology, consumer, outbox relay, sweep).
//!
//! The README explains the flow, the event fields and the configuration.
#![warn(missing_docs)]

pub mod config;
pub mod diff;
pub mod reconcile;
pub mod snapshot;
pub mod tokens;

mod migration;
mod reader;
mod startup;

pub use migration::{Migrator, bus_tables, migrate};
pub use reader::{ReadError, ReadOutcome, Reader, ReaderParts, SNAPSHOT_LOCK_PREFIX};
pub use startup::{
    Application, Dependencies, SERVICE_NAME, StartupError, run, service_spec, topology,
};
