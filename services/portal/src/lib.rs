//! idbridge's researcher portal: the only part of idbridge most researchers see.
//!
//! - Institutional sign-in, chosen by configuration ([`config::SigninMethod`]): OpenID
//!   Connect (discovery, code flow with PKCE and nonce), a header set by a trusted reverse
//!   proxy, or a development form that exists on loopback only.
//! - The connect page, ORCID's OAuth with a `state` bound to the session (single-use,
//!   expiring), the callback that seals ORCID's token response to the vault's hand-off key
//!   and records "iD connected" in the portal's outbox, the deny and error pages.
//! - The researcher's page (the iD in ORCID's display format, status and scopes from the
//!   vault, items from the writer) and disconnect (the vault revokes at ORCID).
//! - Administrators: connections with search, CSV and JSON exports, a chart.
//!
//! No page lets anyone type, edit or search for an iD; no token reaches a page, a cookie or
//! a log line. Entry points: [`Application::build_with`] and [`run`].
#![warn(missing_docs)]

pub mod config;
pub mod items;

mod csrf;
mod migration;
mod pages;
mod routes;
mod security;
mod session;
mod signin;
mod startup;
mod state;

pub use migration::{Migrator, bus_tables, migrate};
pub use startup::{Application, Dependencies, SERVICE_NAME, SESSION_COOKIE, StartupError, run};
