//! Integration tests of the `orcid` crate: one binary (see the workspace README).
#![allow(clippy::unwrap_used)]

mod client_config;
mod client_errors;
mod client_flow;
mod client_helpers;
mod client_rate_limit;
mod client_retry;
mod client_tracing;
mod model_lenient;
mod reference;
mod samples;
