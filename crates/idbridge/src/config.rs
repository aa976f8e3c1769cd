//! The command's own configuration (`[admin]`, `[bus]`, `[telemetry]`) and the slices of the
//! services' configurations the operator commands need (`[database]` alone for `migrate`).
//! Loaded like every service's: embedded defaults, then `--config FILE`, then
//! `IDBRIDGE__…` environment variables; unknown sections are ignored, so one file
//! configures every service and the command.

use std::net::SocketAddr;
use std::path::Path;

pub use idbridge_platform::bus::BusConfig;
use idbridge_platform::config::{ConfigError, Problems, Sources, Validate};
pub use idbridge_platform::database::DatabaseConfig;
use idbridge_platform::telemetry::TelemetryConfig;
use serde::Deserialize;

/// The embedded defaults of the command's own sections.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// What the command itself reads.
#[derive(Clone, Debug, Deserialize)]
pub struct IdbridgeConfig {
    /// `[admin]`: the admin HTTP server of `idbridge serve`.
    pub admin: AdminSection,
    /// `[bus]`: where `hr import`, `hr send` and `dlq` publish and look.
    pub bus: BusConfig,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[admin]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// `host:port` of `/healthz`, `/readyz`, `/metrics` (port 0: any free port).
    pub listen: String,
    /// Seconds between two samples of the gauges `/metrics` shows (queue depths, outboxes,
    /// connections and items by state): 1 to 3600.
    #[serde(default = "default_sample_seconds")]
    pub sample_seconds: u64,
}

fn default_sample_seconds() -> u64 {
    15
}

impl IdbridgeConfig {
    /// Loads defaults, then `file` when given, then the process environment.
    ///
    /// # Errors
    /// Every problem found, each with its key and fix.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Sources::new(DEFAULTS).file_opt(file).process_env().load()
    }

    /// The admin listen address, parsed (validation checked it parses).
    ///
    /// # Errors
    /// When it is not `host:port` with an IP host.
    pub fn admin_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.admin.listen.trim().parse()
    }
}

impl Validate for IdbridgeConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.admin_addr().is_err() {
            problems.add(
                "admin.listen",
                "is not an IP address and port",
                "write it as 0.0.0.0:9000 (port 0 picks a free port)",
            );
        }
        if !(1..=3600).contains(&self.admin.sample_seconds) {
            problems.add(
                "admin.sample_seconds",
                "is out of range",
                "use 1 to 3600 seconds (default 15)",
            );
        }
        self.bus.validate(problems);
        self.telemetry.validate(problems);
    }
}

/// Only the `[database]` section of one service's configuration (for `migrate`, which must
/// not need the service's keys or ORCID credentials).
#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseOnly {
    /// `[database]`.
    pub database: DatabaseConfig,
}

impl Validate for DatabaseOnly {
    fn validate(&self, problems: &mut Problems) {
        self.database.validate(problems);
    }
}

impl DatabaseOnly {
    /// Loads `[database]` over the service's embedded `defaults`, the file and the
    /// environment.
    ///
    /// # Errors
    /// Every problem found, each with its key and fix.
    pub fn load(defaults: &'static str, file: Option<&Path>) -> Result<Self, ConfigError> {
        Sources::new(defaults).file_opt(file).process_env().load()
    }
}
