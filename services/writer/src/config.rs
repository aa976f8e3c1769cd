//! The writer's configuration: embedded defaults (`config.default.toml`), an optional TOML
//! file, then `IDBRIDGE__…` environment variables; validated at load, so a missing
//! institution identifier or ORCID credential stops the start with the key and the fix.

use std::path::Path;
use std::time::Duration;

pub use idbridge_platform::bus::BusConfig;
use idbridge_platform::config::{ConfigError, Problems, Sources, Validate, env_var_name};
pub use idbridge_platform::database::DatabaseConfig;
/// `[orcid]` (shared with every service that talks to ORCID).
pub use idbridge_platform::orcid::OrcidConfig;
use idbridge_platform::telemetry::TelemetryConfig;
use orcid::model::{DisambiguationSource, Organization};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::writer::WritePolicy;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Everything the writer reads. Sections other services share (`database`, `bus`, `orcid`,
/// `telemetry`) have the same shape everywhere; unknown top-level sections are ignored so
/// one file can configure every service.
#[derive(Clone, Debug, Deserialize)]
pub struct WriterConfig {
    /// `[writer]`: the service itself.
    pub writer: WriterSection,
    /// `[institution]`: the organization affiliations name.
    pub institution: InstitutionConfig,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[bus]`.
    pub bus: BusConfig,
    /// `[orcid]`: the member API client.
    pub orcid: OrcidConfig,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[writer]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterSection {
    /// Partitions of the writer's queue (one message in flight per person).
    pub partitions: u16,
    /// Write an item again after the researcher deleted it on ORCID.
    pub recreate_deleted: bool,
    /// Retry tiers in milliseconds, strictly increasing.
    pub retry_tiers_ms: Vec<u64>,
    /// Deliveries before a message is parked.
    pub max_attempts: u32,
    /// `[writer.vault]`.
    pub vault: VaultAccess,
}

/// `[writer.vault]`: the token vault's API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAccess {
    /// Base URL (`http://token-vault:8081`).
    pub url: String,
    /// The writer's bearer token for the vault.
    #[serde(default)]
    pub caller_token: Option<SecretString>,
}

/// `[institution]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstitutionConfig {
    /// Name as ORCID should show it.
    pub name: String,
    /// City.
    pub city: String,
    /// Region or state.
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Identifier in `disambiguation_source` (a ROR URL, a Ringgold number, a GRID id).
    pub disambiguated_id: String,
    /// `ROR`, `RINGGOLD`, `GRID`, `FUNDREF` or `LEI`.
    pub disambiguation_source: String,
}

const SOURCES: &str = "ROR, RINGGOLD, GRID, FUNDREF or LEI";

impl WriterConfig {
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
    /// As [`WriterConfig::load`].
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        sources.load()
    }

    /// The institution as ORCID's organization block.
    pub fn institution(&self) -> Organization {
        let i = &self.institution;
        Organization::new(
            i.name.trim(),
            i.city.trim(),
            i.region
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            i.country.trim(),
            DisambiguationSource::parse(i.disambiguation_source.trim()),
            i.disambiguated_id.trim(),
        )
    }

    /// The bus's retry policy for the writer's queue.
    pub fn retry_policy(&self) -> bus::RetryPolicy {
        bus::RetryPolicy {
            tiers: self
                .writer
                .retry_tiers_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            max_attempts: self.writer.max_attempts,
        }
    }

    /// The write policy.
    pub fn write_policy(&self) -> WritePolicy {
        WritePolicy {
            recreate_deleted: self.writer.recreate_deleted,
            max_attempts: self.writer.max_attempts,
        }
    }

    /// The ORCID client configuration.
    ///
    /// # Errors
    /// An unusable `orcid.registry` (validation already checked it).
    pub fn orcid_client_config(&self) -> Result<orcid::client::ClientConfig, orcid::Error> {
        self.orcid.client_config()
    }
}

impl Validate for WriterConfig {
    fn validate(&self, problems: &mut Problems) {
        self.validate_writer(problems);
        self.validate_institution(problems);
        self.database.validate(problems);
        self.bus.validate(problems);
        self.orcid.validate(problems);
        self.telemetry.validate(problems);
    }
}

impl WriterConfig {
    fn validate_writer(&self, problems: &mut Problems) {
        let writer = &self.writer;
        if writer.partitions == 0 {
            problems.add(
                "writer.partitions",
                "is 0",
                "use at least 1 (8 is a good start)",
            );
        }
        if writer.max_attempts == 0 {
            problems.add(
                "writer.max_attempts",
                "is 0",
                "use at least 1 (8 by default)",
            );
        }
        if let Err(e) = self.retry_policy().validate() {
            problems.add(
                "writer.retry_tiers_ms",
                e.to_string(),
                "list delays in milliseconds, strictly increasing, e.g. [5000, 30000, 120000]",
            );
        }
        match url::Url::parse(writer.vault.url.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => problems.add(
                "writer.vault.url",
                "is not an http(s) URL",
                "set it to the token vault's API, e.g. http://token-vault:8081",
            ),
        }
        if writer
            .vault
            .caller_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            problems.add(
                "writer.vault.caller_token",
                "is empty",
                format!(
                    "set {} to the writer's token for the vault (the vault stores its SHA-256)",
                    env_var_name("writer.vault.caller_token")
                ),
            );
        }
    }

    fn validate_institution(&self, problems: &mut Problems) {
        let i = &self.institution;
        if i.name.trim().is_empty() {
            problems.add(
                "institution.name",
                "is empty",
                format!(
                    "set {} to the institution's name as ORCID shows it",
                    env_var_name("institution.name")
                ),
            );
        }
        if i.city.trim().is_empty() {
            problems.add(
                "institution.city",
                "is empty (ORCID requires a city for employment and education, error 9060)",
                format!("set {}", env_var_name("institution.city")),
            );
        }
        let country = i.country.trim();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.add(
                "institution.country",
                "is not an ISO 3166-1 alpha-2 code",
                "use two capital letters, e.g. US, DE, GB",
            );
        }
        let source = DisambiguationSource::parse(i.disambiguation_source.trim());
        if !source.is_known() {
            problems.add(
                "institution.disambiguation_source",
                format!("is not one of {SOURCES}"),
                "use ROR (preferred by ORCID), RINGGOLD or GRID",
            );
        }
        let id = i.disambiguated_id.trim();
        if id.is_empty() {
            problems.add(
                "institution.disambiguated_id",
                "is empty (ORCID requires a disambiguated organization for employment and education, error 9045)",
                "set it to the institution's ROR id, e.g. https://ror.org/05qwgg493 (look it up at https://ror.org)",
            );
        } else if source == DisambiguationSource::Ror && !id.starts_with("https://ror.org/0") {
            problems.add(
                "institution.disambiguated_id",
                "is not a ROR id as ORCID stores them",
                "write the full URL, e.g. https://ror.org/05qwgg493",
            );
        }
    }
}
