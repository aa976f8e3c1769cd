//! The receiver's configuration: embedded defaults (`config.default.toml`), an optional TOML
//! file, then `IDBRIDGE__…` environment variables; validated at load, so a missing public URL
//! or callback key stops the start with the key and the fix.

use std::path::Path;
use std::time::Duration;

pub use idbridge_platform::bus::BusConfig;
use idbridge_platform::config::{ConfigError, Problems, Sources, Validate, env_var_name};
pub use idbridge_platform::database::DatabaseConfig;
/// `[orcid]` (shared with every service that talks to ORCID).
pub use idbridge_platform::orcid::OrcidConfig;
use idbridge_platform::telemetry::TelemetryConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Shortest accepted `webhooks.callback_key`, in bytes.
pub const MIN_CALLBACK_KEY_LEN: usize = 32;

/// Everything the receiver reads. Sections other services share (`database`, `bus`,
/// `orcid`, `telemetry`) have the same shape everywhere; unknown top-level sections are
/// ignored so one file can configure every service.
#[derive(Clone, Debug, Deserialize)]
pub struct ReceiverConfig {
    /// `[webhooks]`: the service itself.
    pub webhooks: WebhooksSection,
    /// `[database]` (PostgreSQL).
    pub database: DatabaseConfig,
    /// `[bus]`.
    pub bus: BusConfig,
    /// `[orcid]`: the member API client that registers the webhooks.
    pub orcid: OrcidConfig,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[webhooks]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSection {
    /// Where ORCID reaches this service (`https://idbridge.example.org`, optionally with a
    /// path prefix).
    pub public_url: String,
    /// The key every callback secret is derived from (HMAC-SHA256 of the hook id). Changing
    /// it invalidates every registered callback: run `reregister_all` afterwards.
    #[serde(default)]
    pub callback_key: Option<SecretString>,
    /// Callbacks for one iD within this many milliseconds become one "record changed".
    pub debounce_ms: u64,
    /// How often due changes are looked for, in milliseconds.
    pub flush_interval_ms: u64,
    /// Partitions of the receiver's queue.
    pub partitions: u16,
    /// Retry tiers in milliseconds, strictly increasing.
    pub retry_tiers_ms: Vec<u64>,
    /// Deliveries before a message is parked.
    pub max_attempts: u32,
    /// `[webhooks.http]`.
    pub http: HttpConfig,
    /// `[webhooks.rate_limit]`.
    pub rate_limit: RateLimitConfig,
    /// `[webhooks.vault]`.
    pub vault: VaultAccess,
}

/// `[webhooks.http]`: the callback endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `host:port`; port 0 picks a free port ([`crate::Application::port`]).
    pub listen: String,
    /// HTTP worker threads.
    pub workers: usize,
}

/// `[webhooks.rate_limit]`: unknown or malformed callbacks per source IP address.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Refill rate of each address's bucket.
    pub per_minute: u32,
    /// Bucket size: bad callbacks accepted at once before 429.
    pub burst: u32,
}

/// `[webhooks.vault]`: the token vault's API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAccess {
    /// Base URL (`http://token-vault:8081`).
    pub url: String,
    /// The receiver's bearer token for the vault (right `client-token:read`).
    #[serde(default)]
    pub caller_token: Option<SecretString>,
}

impl ReceiverConfig {
    /// Loads defaults, then `file` when given, then the process environment.
    ///
    /// # Errors
    /// Every problem found, each with its key and fix.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Sources::new(DEFAULTS).file_opt(file).process_env().load()
    }

    /// Loads from explicit [`Sources`] (start from [`DEFAULTS`]).
    ///
    /// # Errors
    /// As [`ReceiverConfig::load`].
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        sources.load()
    }

    /// The bus's retry policy for the receiver's queue.
    pub fn retry_policy(&self) -> bus::RetryPolicy {
        bus::RetryPolicy {
            tiers: self
                .webhooks
                .retry_tiers_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            max_attempts: self.webhooks.max_attempts,
        }
    }

    /// The debounce window.
    pub fn debounce(&self) -> Duration {
        Duration::from_millis(self.webhooks.debounce_ms)
    }

    /// How often due changes are looked for.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.webhooks.flush_interval_ms)
    }

    /// The public URL without a trailing `/`.
    pub fn public_url(&self) -> String {
        self.webhooks
            .public_url
            .trim()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The ORCID client configuration.
    ///
    /// # Errors
    /// An unusable `orcid.registry` (validation already checked it).
    pub fn orcid_client_config(&self) -> Result<orcid::client::ClientConfig, orcid::Error> {
        self.orcid.client_config()
    }
}

impl Validate for ReceiverConfig {
    fn validate(&self, problems: &mut Problems) {
        self.validate_webhooks(problems);
        self.database.validate(problems);
        if !self.database.url.expose_secret().starts_with("postgres") {
            problems.add(
                "database.url",
                "is not a PostgreSQL URL",
                "the webhook receiver needs PostgreSQL: postgres://user@host:5432/db",
            );
        }
        self.bus.validate(problems);
        self.orcid.validate(problems);
        self.telemetry.validate(problems);
    }
}

impl ReceiverConfig {
    fn validate_webhooks(&self, problems: &mut Problems) {
        let w = &self.webhooks;
        match url::Url::parse(w.public_url.trim()) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none() => {}
            _ => problems.add(
                "webhooks.public_url",
                "is not an http(s) URL without a query",
                format!(
                    "set {} to where ORCID reaches this service, e.g. https://idbridge.example.org",
                    env_var_name("webhooks.public_url")
                ),
            ),
        }
        match &w.callback_key {
            None => problems.add(
                "webhooks.callback_key",
                "is not set",
                format!(
                    "set {} to a random secret of at least {MIN_CALLBACK_KEY_LEN} characters (openssl rand -hex 32)",
                    env_var_name("webhooks.callback_key")
                ),
            ),
            Some(key) if key.expose_secret().trim().len() < MIN_CALLBACK_KEY_LEN => problems.add(
                "webhooks.callback_key",
                format!("is shorter than {MIN_CALLBACK_KEY_LEN} characters"),
                "use a random secret of at least 32 characters (openssl rand -hex 32)",
            ),
            Some(_) => {}
        }
        if w.debounce_ms > 3_600_000 {
            problems.add(
                "webhooks.debounce_ms",
                format!("is {}", w.debounce_ms),
                "use at most 3600000 (one hour); 5000 by default",
            );
        }
        if !(10..=60_000).contains(&w.flush_interval_ms) {
            problems.add(
                "webhooks.flush_interval_ms",
                format!("is {}", w.flush_interval_ms),
                "use 10 to 60000 milliseconds (500 by default)",
            );
        }
        if w.partitions == 0 {
            problems.add(
                "webhooks.partitions",
                "is 0",
                "use at least 1 (4 by default)",
            );
        }
        if w.max_attempts == 0 {
            problems.add(
                "webhooks.max_attempts",
                "is 0",
                "use at least 1 (8 by default)",
            );
        }
        if let Err(e) = self.retry_policy().validate() {
            problems.add(
                "webhooks.retry_tiers_ms",
                e.to_string(),
                "list delays in milliseconds, strictly increasing, e.g. [5000, 30000, 120000]",
            );
        }
        if w.http
            .listen
            .trim()
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            problems.add(
                "webhooks.http.listen",
                format!("{:?} is not an address and port", w.http.listen),
                "write host:port with an IP address, e.g. 0.0.0.0:8083 (port 0: any free port)",
            );
        }
        if w.http.workers == 0 {
            problems.add(
                "webhooks.http.workers",
                "is 0",
                "use at least 1 (2 by default)",
            );
        }
        if w.rate_limit.per_minute == 0 || w.rate_limit.burst == 0 {
            problems.add(
                "webhooks.rate_limit",
                "per_minute and burst must both be at least 1",
                "e.g. per_minute = 60, burst = 20",
            );
        }
        match url::Url::parse(w.vault.url.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => problems.add(
                "webhooks.vault.url",
                "is not an http(s) URL",
                "set it to the token vault's API, e.g. http://token-vault:8081",
            ),
        }
        if w.vault
            .caller_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            problems.add(
                "webhooks.vault.caller_token",
                "is empty",
                format!(
                    "set {} to the receiver's token for the vault (right client-token:read)",
                    env_var_name("webhooks.vault.caller_token")
                ),
            );
        }
    }
}
