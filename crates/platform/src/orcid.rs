//! The `[orcid]` section every service that talks to ORCID reads, its validation, and the one
//! way to turn it into an `orcid` client configuration — or, with [`OrcidConfig::client`], a
//! client whose rate limit (`[orcid.rate_limit]`) every replica shares through the database.
//! A service that only reads asks for [`OrcidConfig::client_with_priority`] with
//! [`OrcidConfig::read_priority`]: its requests yield to the writers' on the same bucket.

use std::sync::Arc;

use orcid::client::{OrcidClient, RateLimit};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{Problems, Validate, env_var_name};
use crate::ratelimit::{self, Priority, RateLimitConfig, RateLimitError, ReadYieldConfig};

/// The bucket name used when `orcid.rate_limit.bucket` is empty: `orcid:` + the client id.
pub const BUCKET_PREFIX: &str = "orcid:";

/// `[orcid]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "RawOrcidConfig")]
pub struct OrcidConfig {
    /// `production`, `sandbox`, or a base URL serving everything (a simulator).
    pub registry: String,
    /// The member API client id (`APP-…`): items whose source is this client are ours.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
    /// `[orcid.rate_limit]`: the client's rate limit, shared by every replica through the
    /// database by default. Every key is optional; see [`OrcidConfig::default_rate_limit`].
    /// An empty `bucket` means `orcid:<client_id>` ([`OrcidConfig::rate_limit`]).
    pub rate_limit: RateLimitConfig,
    /// `[orcid.rate_limit]`'s `read_reserve` and `read_max_yield_ms`: how a reader's requests
    /// yield to the writers' ([`OrcidConfig::read_priority`]). Both optional.
    pub read_yield: ReadYieldConfig,
}

/// `[orcid]` as written: unknown keys refused, every `[orcid.rate_limit]` key optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrcidConfig {
    registry: String,
    client_id: String,
    client_secret: SecretString,
    #[serde(default)]
    rate_limit: PartialRateLimit,
}

impl From<RawOrcidConfig> for OrcidConfig {
    fn from(raw: RawOrcidConfig) -> Self {
        let (rate_limit, read_yield) = raw.rate_limit.fill();
        OrcidConfig {
            registry: raw.registry,
            client_id: raw.client_id,
            client_secret: raw.client_secret,
            rate_limit,
            read_yield,
        }
    }
}

/// [`OrcidConfig::client`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OrcidClientError {
    /// The client configuration is unusable (e.g. a registry URL that is not https).
    #[error("the ORCID client cannot be built from [orcid]")]
    Orcid(#[source] orcid::Error),
    /// The rate limiter cannot be built (invalid `[orcid.rate_limit]`, or its table cannot
    /// be created in the database).
    #[error("the ORCID rate limiter ([orcid.rate_limit]) cannot be built")]
    RateLimit(#[source] RateLimitError),
}

impl OrcidConfig {
    /// The defaults of `[orcid.rate_limit]`: ORCID's member API limit (24 requests/s, burst
    /// 40) shared through the database (`shared = true`), bucket empty (meaning
    /// `orcid:<client_id>`), `replicas_hint = 1`, `batch = 1`.
    pub fn default_rate_limit() -> RateLimitConfig {
        RateLimitConfig::orcid_member(String::new())
    }

    /// `[orcid.rate_limit]` as the limiter uses it: an empty `bucket` becomes
    /// `orcid:<client_id>` (the client id is not a secret), so every replica of one client
    /// shares one bucket without naming it.
    pub fn rate_limit(&self) -> RateLimitConfig {
        let mut config = self.rate_limit.clone();
        if config.bucket.trim().is_empty() {
            config.bucket = format!("{BUCKET_PREFIX}{}", self.client_id.trim());
        }
        config
    }

    /// The `orcid` crate's client configuration for this registry and client. Its own
    /// `rate_limit` is `[orcid.rate_limit]`'s `per_second` and `burst` (used by
    /// `OrcidClient::new`; [`OrcidConfig::client`] shares the bucket instead).
    ///
    /// # Errors
    /// A custom registry URL the client refuses (not https outside loopback, not a URL).
    pub fn client_config(&self) -> Result<orcid::client::ClientConfig, orcid::Error> {
        let id = self.client_id.trim().to_owned();
        let secret = self.client_secret.clone();
        let config = match self.registry.trim() {
            "production" => orcid::client::ClientConfig::production(id, secret),
            "sandbox" => orcid::client::ClientConfig::sandbox(id, secret),
            url => orcid::client::ClientConfig::custom(url, id, secret)?,
        };
        let limit = self.rate_limit.limit();
        Ok(if limit.per_second > 0 && limit.burst > 0 {
            config.with_rate_limit(limit)
        } else {
            config.with_rate_limit(RateLimit::ORCID_MEMBER)
        })
    }

    /// The priority of a reader's permits: [`Priority::Yield`] with `read_reserve` (default
    /// half of `burst`) and `read_max_yield_ms` (default 30 s).
    pub fn read_priority(&self) -> Priority {
        Priority::Yield(self.read_yield.policy(self.rate_limit.burst))
    }

    /// The ORCID client with its rate limiter from [`ratelimit::limiter_for`]: with
    /// `orcid.rate_limit.shared` (the default) a token bucket in `db` (table
    /// `idbridge_rate_buckets`, created if missing) that every replica on that database
    /// shares, otherwise an in-process one. Its permits are [`Priority::Normal`].
    ///
    /// # Errors
    /// [`OrcidClientError`]: an unusable registry, an invalid rate limit, or a database
    /// where the bucket table cannot be created.
    pub async fn client(&self, db: &DatabaseConnection) -> Result<OrcidClient, OrcidClientError> {
        self.client_with_priority(db, Priority::Normal).await
    }

    /// [`OrcidConfig::client`] whose permits have `priority` (a reader passes
    /// [`OrcidConfig::read_priority`]); it shares the same bucket as the clients of other
    /// priorities. Build one client per priority: a reader and a writer in one process must
    /// not share one client.
    ///
    /// # Errors
    /// As [`OrcidConfig::client`], and a yielding reserve not below the burst.
    pub async fn client_with_priority(
        &self,
        db: &DatabaseConnection,
        priority: Priority,
    ) -> Result<OrcidClient, OrcidClientError> {
        let config = self.client_config().map_err(OrcidClientError::Orcid)?;
        let limiter: Arc<dyn orcid::client::RateLimiter> =
            ratelimit::limiter_for_priority(&self.rate_limit(), db, priority)
                .await
                .map_err(OrcidClientError::RateLimit)?;
        OrcidClient::with_rate_limiter(config, limiter).map_err(OrcidClientError::Orcid)
    }
}

/// `[orcid.rate_limit]` with every key optional (unknown keys refused).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialRateLimit {
    shared: Option<bool>,
    bucket: Option<String>,
    per_second: Option<u32>,
    burst: Option<u32>,
    replicas_hint: Option<u32>,
    batch: Option<u32>,
    read_reserve: Option<u32>,
    read_max_yield_ms: Option<u64>,
}

impl PartialRateLimit {
    /// Fills the keys `[orcid.rate_limit]` leaves out from
    /// [`OrcidConfig::default_rate_limit`] and [`ReadYieldConfig::default`].
    fn fill(self) -> (RateLimitConfig, ReadYieldConfig) {
        let default = OrcidConfig::default_rate_limit();
        let read_default = ReadYieldConfig::default();
        (
            RateLimitConfig {
                shared: self.shared.unwrap_or(default.shared),
                bucket: self.bucket.unwrap_or(default.bucket),
                per_second: self.per_second.unwrap_or(default.per_second),
                burst: self.burst.unwrap_or(default.burst),
                replicas_hint: self.replicas_hint.unwrap_or(default.replicas_hint),
                batch: self.batch.unwrap_or(default.batch),
            },
            ReadYieldConfig {
                read_reserve: self.read_reserve,
                read_max_yield_ms: self
                    .read_max_yield_ms
                    .unwrap_or(read_default.read_max_yield_ms),
            },
        )
    }
}

impl Validate for OrcidConfig {
    fn validate(&self, problems: &mut Problems) {
        if !self.client_id.trim().starts_with("APP-") {
            problems.add(
                "orcid.client_id",
                "is not an ORCID member client id",
                format!(
                    "set {} to the client id ORCID issued (APP-…)",
                    env_var_name("orcid.client_id")
                ),
            );
        }
        if self.client_secret.expose_secret().trim().is_empty() {
            problems.add(
                "orcid.client_secret",
                "is empty",
                format!(
                    "set {} to the client secret",
                    env_var_name("orcid.client_secret")
                ),
            );
        }
        if let Err(e) = self.client_config() {
            problems.add(
                "orcid.registry",
                "is not usable",
                format!("{e}; use production, sandbox or an https:// base URL"),
            );
        }
        self.rate_limit().validate_at("orcid.rate_limit", problems);
        self.read_yield
            .validate_at("orcid.rate_limit", self.rate_limit.burst, problems);
    }
}
