//! Integration tests of the token vault: the real service on port 0, against PostgreSQL
//! (`TEST_DATABASE_URL`) and SQLite, orcid-sim in-process, the in-process bus.

// Shared async test helpers are not `#[test]` functions, so clippy's test exemption misses them.
#![allow(clippy::unwrap_used)]

mod api_auth;
mod audit_batching;
mod config;
mod connect;
mod helpers;
mod integrity;
mod leaks;
mod migrations;
mod openapi;
mod person_token;
mod refresh_revoke;
mod rotation;
