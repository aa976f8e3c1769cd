//! The portal's HTTP tests: every route, good and bad paths, against the real PostgreSQL,
//! orcid-sim (ORCID and the identity provider) and the token vault.

// Shared async test helpers are not `#[test]` functions, so clippy's test exemption misses them.
#![allow(clippy::unwrap_used)]

mod admin;
mod browser;
mod config;
mod connect;
mod failures;
mod helpers;
mod invitations;
mod items;
mod real_writer;
mod security;
mod signin;
