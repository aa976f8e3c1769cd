//! idbridge's token vault: the only holder of ORCID tokens.
//!
//! - Consumes "iD connected" from the bus, opens the token response the portal sealed to it
//!   ([`handoff`]), stores the connection envelope-encrypted under the key ring, and publishes
//!   "connection ready" through its outbox in the same transaction (`connect.rs`).
//! - Serves an authenticated, audited internal API to the workers (`routes/`): a usable
//!   access token per iD (refreshed near expiry), client-credentials tokens, revoked reports,
//!   disconnects, listings without tokens. [`client::VaultClient`] is its typed client.
//! - Commits every token read's audit row before the token leaves, concurrent reads' rows in
//!   one `INSERT` (`audit_writer.rs`; [`Application::audit_stats`] counts the inserts).
//! - Rotates key-encryption keys online ([`rotate`]).
//!
//! Entry points: [`Application::build`] (tests bind port 0) and [`run`]; [`migrate`] applies
//! the vault's migrations on their own. The README documents routes, rights, error bodies,
//! configuration keys, key files, rotation and the audit.
#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod config;
pub mod handoff;

mod audit_writer;
mod auth;
mod connect;
mod error;
mod keys;
mod migration;
mod rotation;
mod routes;
mod sealing;
mod startup;
mod store;
mod vault;

pub use audit_writer::AuditStats;
pub use auth::{Right, token_sha256_hex};
pub use keys::KeyRingHandle;
pub use migration::{Migrator, migrate};
pub use rotation::{RotationError, RotationFailure, RotationReport, rotate, rotate_paced};
pub use routes::PURPOSE_HEADER;
pub use startup::{Application, Dependencies, SERVICE_NAME, StartupError, run, service_spec};
