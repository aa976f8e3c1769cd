//! idbridge's webhook receiver: one ORCID webhook per connected iD, and every verified,
//! debounced callback becomes "record changed" on the bus.
//!
//! - [`registry::Registry`]: "connection ready" registers the webhook (with the vault's
//!   client-credentials `/webhook` token), "connection lost" unregisters it,
//!   [`registry::Registry::reregister_all`] registers every connection again; it is also the
//!   bus [`bus::Handler`] of those events.
//! - [`callback`]: callback URLs `{public_url}/orcid/webhook/{hook id}/{secret}`, the secret
//!   HMAC-derived from `webhooks.callback_key` (nothing secret is stored).
//! - [`routes`]: the endpoint ORCID posts to: verify in constant time, answer 204 at once;
//!   anything else 404 with a per-address rate limit (429).
//! - [`debounce`]: callbacks per iD within `webhooks.debounce_ms` become one
//!   `RecordChanged`, published through the outbox.
//! - [`Application`] / [`run`] wire it all; [`reregister_all`] is the operator command.
//!
//! The README explains the flow, the security choices and the configuration.

#![warn(missing_docs)]

pub mod callback;
pub mod config;
pub mod debounce;
pub mod migration;
pub mod registry;
pub mod routes;
pub mod startup;
pub mod tokens;

pub use migration::migrate;
pub use startup::{
    Application, Dependencies, SERVICE_NAME, StartupError, reregister_all, run, service_spec,
    topology,
};
