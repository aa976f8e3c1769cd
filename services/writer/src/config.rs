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
/// `[invitations]` (the `invitations` crate's section).
pub use invitations::InvitationsConfig;
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
    /// `[invitations]`: the e-mails asking people who have not connected an iD to do so
    /// (crate `invitations`). Used only when `writer.invitations.enabled`; optional, so a
    /// configuration without the section still loads (the embedded defaults have it).
    #[serde(default)]
    pub invitations: Option<InvitationsConfig>,
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
    /// `[writer.http]`: the HTTP API (HR event intake, ledger reads).
    pub http: HttpConfig,
    /// `[writer.invitations]`: whether the writer invites people it cannot write for yet.
    #[serde(default)]
    pub invitations: WriterInvitations,
}

/// `[writer.invitations]`: the switch for invitation e-mails (the e-mails themselves are
/// configured in `[invitations]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterInvitations {
    /// Invite a person (by the HR event's `person.email`) when a hire for them waits as
    /// `pending`, send reminders, and stop on "connection ready". Default `false`, so an
    /// existing deployment sends no e-mail until this is turned on.
    #[serde(default)]
    pub enabled: bool,
}

/// `[writer.http]`: the writer's HTTP API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the API at all (a consumer-only replica may turn it off).
    pub enabled: bool,
    /// `host:port` to listen on; port 0 picks a free port ([`crate::Application::http_port`]).
    pub listen: String,
    /// HTTP worker threads.
    pub workers: usize,
    /// Most events in one `POST /api/v1/hr-events`.
    pub max_batch: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// `[[writer.http.callers]]`: who may call, by the SHA-256 of their bearer token. None
    /// configured: every call but `/health` is refused (401).
    #[serde(default)]
    pub callers: Vec<HttpCaller>,
}

/// The largest `writer.http.max_body_bytes` accepted (64 MiB): every request body up to it
/// is held in memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One caller of the writer's API (`[[writer.http.callers]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCaller {
    /// A name for logs and error messages (1 to 64 of `a-z`, `0-9`, `_`, `-`).
    pub name: String,
    /// Lower-case hex SHA-256 of the caller's bearer token (`printf %s "$TOKEN" | sha256sum`).
    pub token_sha256: String,
    /// What the caller may do: `hr-events:write`, `items:read`, `invitations:read`,
    /// `invitations:manage`.
    pub rights: Vec<crate::api::Right>,
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

    /// `[invitations]` when `writer.invitations.enabled`, else `None`.
    pub fn invitations_config(&self) -> Option<&InvitationsConfig> {
        if self.writer.invitations.enabled {
            self.invitations.as_ref()
        } else {
            None
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
        self.validate_http(problems);
        self.validate_institution(problems);
        self.database.validate(problems);
        self.bus.validate(problems);
        self.orcid.validate(problems);
        self.telemetry.validate(problems);
        if self.writer.invitations.enabled {
            match &self.invitations {
                Some(invitations) => invitations.validate(problems),
                None => problems.add(
                    "invitations",
                    "is missing while writer.invitations.enabled is true",
                    "add the [invitations] section (transport, from, portal_url, …) or set writer.invitations.enabled = false",
                ),
            }
        }
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

    fn validate_http(&self, problems: &mut Problems) {
        let http = &self.writer.http;
        if http.listen.trim().parse::<std::net::SocketAddr>().is_err() {
            problems.add(
                "writer.http.listen",
                format!("{:?} is not an address and port", http.listen),
                "write host:port with an IP address, e.g. 127.0.0.1:8082 or 0.0.0.0:8082 (port 0: any free port)",
            );
        }
        if http.workers == 0 {
            problems.add(
                "writer.http.workers",
                "is 0",
                "use at least 1 (2 by default)",
            );
        }
        if !(1..=10_000).contains(&http.max_batch) {
            problems.add(
                "writer.http.max_batch",
                format!("is {}", http.max_batch),
                "use 1 to 10000 events per request (500 by default)",
            );
        }
        if !(1024..=MAX_BODY_BYTES).contains(&http.max_body_bytes) {
            problems.add(
                "writer.http.max_body_bytes",
                format!("is {}", http.max_body_bytes),
                "use 1024 to 67108864 bytes (64 MiB; 4194304 by default): a larger batch belongs in several requests",
            );
        }
        let mut names = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for (index, caller) in http.callers.iter().enumerate() {
            let key = |field: &str| format!("writer.http.callers[{index}].{field}");
            let name = caller.name.as_str();
            let valid_name = (1..=64).contains(&name.len())
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_name {
                problems.add(
                    key("name"),
                    "is not 1 to 64 characters of a-z, 0-9, '_' or '-'",
                    "name the calling system, e.g. \"hr-system\" or \"portal\"",
                );
            } else if !names.insert(name) {
                problems.add(
                    key("name"),
                    format!("{name:?} is used by another caller"),
                    "give every caller its own name",
                );
            }
            let hash = caller.token_sha256.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.add(
                    key("token_sha256"),
                    "is not 64 hex digits",
                    "put the SHA-256 of the caller's token here (printf %s \"$TOKEN\" | sha256sum), never the token itself",
                );
            } else if !hashes.insert(hash.to_ascii_lowercase()) {
                problems.add(
                    key("token_sha256"),
                    "is the same as another caller's",
                    "give every caller a token of its own",
                );
            }
            if caller.rights.is_empty() {
                problems.add(
                    key("rights"),
                    "is empty, so the caller can do nothing",
                    "list its rights, e.g. [\"hr-events:write\"] or [\"items:read\", \"invitations:read\"], or remove the caller",
                );
            }
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
