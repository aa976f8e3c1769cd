//! The end-to-end suite: every service as its own `idbridge serve` process against the
//! machine's PostgreSQL and RabbitMQ and an `orcid-sim` process, driven as its users would
//! (a researcher in the portal and at ORCID, an HR system at the writer's intake).
//! The harness is the crate's library (`idbridge_e2e`).

mod connect;
mod crash;
mod employment;
mod record_edit;

use std::time::Duration;

/// Generous: the suite shares two cores with the rest of the workspace's tests.
pub const DEADLINE: Duration = Duration::from_secs(60);
