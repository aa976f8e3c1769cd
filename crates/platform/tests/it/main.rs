//! Integration tests of idbridge-platform.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption.
#![allow(clippy::unwrap_used)]

mod bus;
mod config;
mod database;
mod orcid;
mod ratelimit;
mod ratelimit_priority;
mod telemetry;
