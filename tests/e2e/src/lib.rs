//! The end-to-end harness: idbridge's services as separate `idbridge serve` processes
//! against the machine's PostgreSQL and RabbitMQ and an `orcid-sim` process, driven as
//! their users would drive them. Used by the suite in `tests/e2e/` and by the pipeline
//! benchmark.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use idbridge_e2e::{Stack, StackOptions, hr};
//! use std::time::Duration;
//!
//! let stack = Stack::start(StackOptions::new("my_test")).await?;
//! let user = stack.connect_researcher("p-1", "Josiah", "Carberry").await?;
//! let hire = hr::hire(&user.researcher, "pos-1", "Professor", "2024-09-01")?;
//! stack.writer_api()?.send(std::slice::from_ref(&hire)).await?;
//! let item = stack
//!     .wait_item_written("p-1", "pos-1", &hire.event_id, Duration::from_secs(30))
//!     .await?;
//! assert!(item.put_code.is_some());
//! stack.stop().await?;
//! # Ok(()) }
//! ```
//!
//! - [`binaries`]: builds `idbridge` and `orcid-sim` once per process
//!   (`cargo build -p idbridge -p orcid-sim --bins`, `--release` for [`Profile::Release`]).
//! - [`Stack`]: database, bus prefix, simulator, configuration, one process per service
//!   (per writer replica), readiness, kill/restart, graceful stop, cleanup; logs under
//!   `target/test-artifacts/e2e/<name>/`.
//! - [`drivers`]: the researcher (portal + ORCID's pages), the HR system (writer intake),
//!   the simulator's hooks, [`wait_for`].

pub mod binaries;
pub mod browser;
pub mod drivers;
pub mod env;
pub mod process;
pub mod stack;

pub use binaries::{Binaries, Profile};
pub use drivers::{PortalUser, Researcher, Sim, WriterApi, hr, wait_for};
pub use process::{Memory, Signal};
pub use stack::{Credentials, RateLimit, Service, Stack, StackOptions};
