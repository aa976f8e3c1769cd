//! Integration tests of orcid-sim: one binary.
#![allow(clippy::unwrap_used)]

mod api_bulk;
mod api_changes;
mod api_crud;
mod api_hooks;
mod api_leniency;
mod api_samples;
mod api_support;
mod api_validation;
mod api_visibility;
mod api_xml;
mod bearer;
mod cli;
mod helpers;
mod oauth;
mod oidc;
mod platform;
mod webhooks;
