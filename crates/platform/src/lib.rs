//! Glue every idbridge service shares, kept small on purpose:
//!
//! - [`config`]: typed, layered configuration — embedded defaults (a TOML string), then an
//!   optional TOML file, then environment variables `IDBRIDGE__SECTION__KEY` — deserialized
//!   into the service's own structs, then validated ([`config::Validate`]) so that a bad value
//!   fails at start with the key and the fix, never later.
//! - [`database`]: the `[database]` section, the connection pool every service opens
//!   from it (SQLite in WAL mode), and the lock migrations hold on PostgreSQL.
//! - [`bus`]: the `[bus]` section and the bus (RabbitMQ or in-process) opened from it.
//! - [`ratelimit`]: a token bucket in the database, so that every replica of one ORCID
//!   client shares that client's rate limit (with an in-process fallback during outages).
//! - [`metrics`]: the Prometheus recorder (installed once per process), every metric's name,
//!   help text and histogram buckets.
//! - [`telemetry`]: one `tracing` bootstrap — JSON in production, pretty in a terminal, the
//!   test writer in tests — that can be called more than once.
//!
//! Nothing here is global except the tracing subscriber and the metrics recorder, which
//! `tracing` and `metrics` make global.
#![warn(missing_docs)]

pub mod bus;
pub mod config;
pub mod database;
pub mod metrics;
pub mod orcid;
pub mod ratelimit;
pub mod telemetry;

pub use config::{ConfigError, Problem, Problems, Sources, Validate};
pub use telemetry::{LogFormat, TelemetryConfig, TelemetryError, TelemetryGuard};
