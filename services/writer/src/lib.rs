//! idbridge's writer: HR hire, leave and change events become ORCID affiliations, and
//! repository work events ORCID works, exactly once, with every put code in the writer's
//! ledger.
//!
//! - [`Writer`] holds the decisions, plain async functions tests call directly:
//!   [`Writer::apply_hr_event`], [`Writer::apply_work_event`],
//!   [`Writer::apply_connection_ready`], [`Writer::apply_record_updated`] (items the
//!   researcher deleted, as the reader reports them), and
//!   [`Writer::handle`] for a bus delivery (it is also the bus [`bus::Handler`]).
//! - [`ledger`]: where put codes, states and the history of every attempt are kept.
//! - [`desired`]: what an HR event means as an ORCID affiliation, its hash, our `self` id.
//! - [`tokens`]: the [`tokens::TokenSource`] seam and its token-vault implementation.
//! - [`Application`] / [`run`] wire it to the bus (topology, consumer, outbox relay);
//!   [`migrate`] applies the writer's migrations on their own; with `[writer.http]` it also
//!   serves the HTTP API (HR event intake, ledger reads), whose bodies are [`api`]; its
//!   ORCID client shares `[orcid.rate_limit]` with every replica through the database, and
//!   with `writer.invitations.enabled` it invites people a pending hire waits for
//!   ([`Application::invitations`]).
//!
//! The README explains the flow, the states, the failure policy and the configuration.
#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod csv_import;
pub mod desired;
pub mod ledger;
pub mod tokens;

mod body;
mod http;
mod locks;
mod migration;
mod startup;
mod writer;

pub use migration::{Migrator, bus_tables, migrate};
pub use startup::{
    Application, Dependencies, SERVICE_NAME, StartupError, run, service_spec, topology,
};
pub use writer::{Cause, WritePolicy, Writer, WriterParts};

impl bus::Handler for Writer {
    fn handle(&self, delivery: bus::Delivery) -> impl Future<Output = bus::Outcome> + Send {
        let writer = self.clone();
        async move { Writer::handle(&writer, &delivery).await }
    }
}
