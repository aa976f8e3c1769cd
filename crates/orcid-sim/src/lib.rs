//! orcid-sim: an offline stand-in for the ORCID sandbox.
//!
//! One listener serves what ORCID spreads over several hosts: OAuth and OpenID Connect
//! (`/oauth/*`, `/.well-known/openid-configuration`), the member API v3.0 (`/v3.0/{orcid}/…`),
//! webhooks (`/{orcid}/webhook/{callback}`) and test hooks under `/_sim/`. State lives in
//! memory. See the crate README for every hook.
//!
//! The simulator deliberately does **not** use the `orcid` crate's JSON model: it is the oracle
//! that model is tested against, so it keeps documents as JSON values and applies ORCID's rules
//! to them directly. It only borrows [`orcid::OrcidId`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = orcid_sim::spawn(
//!     orcid_sim::SimConfig::for_tests().with_client("APP-TEST0000000000001", "test-secret", "http://127.0.0.1/cb"),
//! )
//! .await?;
//! println!("ORCID is at {}", sim.base_url());
//! # Ok(()) }
//! ```

// Ownership while the simulator is being built (two engineers in parallel):
// platform — config, server, state, auth, oauth, consent, oidc, tokens, users, ratelimit, faults,
//            stats, webhooks, hooks;
// records — records, api (the /v3.0 routes), negotiate, xml.
pub mod api;
pub mod auth;
pub mod config;
pub mod consent;
pub mod errors;
pub mod faults;
pub mod hooks;
pub mod negotiate;
pub mod oauth;
pub mod oidc;
pub mod ratelimit;
pub mod records;
pub mod server;
pub mod state;
pub mod stats;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod xml;

pub use config::{RateLimit, SimClient, SimConfig};
pub use server::{SimHandle, spawn};
