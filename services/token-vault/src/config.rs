//! The vault's configuration: embedded defaults (`config.default.toml`), an optional TOML
//! file, then `IDBRIDGE__…` environment variables; validated at load, so a bad key ring, a
//! malformed caller hash or a missing ORCID credential stops the start with the key and
//! the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use idbridge_crypto::{HandoffKeys, KeyLoadError, KeyRing};
pub use idbridge_platform::bus::BusConfig;
use idbridge_platform::config::{ConfigError, Problems, Sources, Validate, env_var_name};
pub use idbridge_platform::database::DatabaseConfig;
/// `[orcid]` (shared with every service that talks to ORCID).
pub use idbridge_platform::orcid::OrcidConfig;
use idbridge_platform::telemetry::TelemetryConfig;
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::Right;

/// The embedded defaults.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Everything the vault reads. Sections other services share (`database`, `bus`, `orcid`,
/// `telemetry`) have the same shape everywhere; unknown top-level sections are ignored so one
/// file can configure every service.
#[derive(Clone, Debug, Deserialize)]
pub struct VaultConfig {
    /// `[vault]`: the service itself.
    pub vault: VaultSection,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[bus]`.
    pub bus: BusConfig,
    /// `[orcid]`: the member API client used to refresh, revoke and get client tokens.
    pub orcid: OrcidConfig,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[vault]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Address to listen on.
    pub host: String,
    /// Port (0: any free port).
    pub port: u16,
    /// HTTP worker threads.
    pub workers: usize,
    /// Refresh a user's access token when it expires within this many seconds.
    pub refresh_before_expiry_secs: u64,
    /// Rows re-wrapped per transaction by [`crate::rotate`].
    pub rotation_batch_size: u64,
    /// Key-encryption keys as a mounted directory (Kubernetes Secret).
    #[serde(default)]
    pub key_dir: Option<PathBuf>,
    /// Key-encryption keys as `id:BASE64,id:BASE64` (instead of `key_dir`).
    #[serde(default)]
    pub keys: Option<SecretString>,
    /// The key id new seals use (with `keys`).
    #[serde(default)]
    pub active_key: Option<String>,
    /// The hand-off private keys, `id:BASE64,id:BASE64`.
    #[serde(default)]
    pub handoff_keys: Option<SecretString>,
    /// The hand-off key the portal should seal to (its public half is served at
    /// `/v1/handoff-key`); defaults to the only key when there is one.
    #[serde(default)]
    pub handoff_active_key: Option<String>,
    /// Callers of the API by service name.
    #[serde(default)]
    pub callers: BTreeMap<String, CallerConfig>,
}

/// One caller of the API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Lower-case hex SHA-256 of the caller's bearer token (`printf %s "$TOKEN" | sha256sum`).
    pub token_sha256: String,
    /// What the caller may do.
    #[serde(default)]
    pub rights: Vec<Right>,
}

impl VaultConfig {
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
    /// As [`VaultConfig::load`].
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        sources.load()
    }

    /// The key ring this configuration names.
    ///
    /// # Errors
    /// When the keys cannot be loaded (validation already checked they could).
    pub fn key_ring(&self) -> Result<KeyRing, KeyLoadError> {
        match (&self.vault.key_dir, &self.vault.keys) {
            (Some(dir), _) => KeyRing::from_dir(dir),
            (None, Some(keys)) => {
                KeyRing::from_config(keys, self.vault.active_key.as_deref().unwrap_or(""))
            }
            (None, None) => Err(KeyLoadError::NoKeys {
                origin: "vault.keys / vault.key_dir".to_owned(),
            }),
        }
    }

    /// The hand-off keys this configuration names.
    ///
    /// # Errors
    /// When the keys cannot be loaded (validation already checked they could).
    pub(crate) fn handoff_keys(&self) -> Result<HandoffKeys, String> {
        match &self.vault.handoff_keys {
            Some(list) => HandoffKeys::from_config(list, self.vault.handoff_active_key.as_deref())
                .map_err(|e| e.to_string()),
            None => Err("no hand-off keys".to_owned()),
        }
    }

    /// The ORCID client configuration.
    ///
    /// # Errors
    /// An unusable `orcid.registry` (validation already checked it).
    pub(crate) fn orcid_client_config(&self) -> Result<orcid::client::ClientConfig, orcid::Error> {
        self.orcid.client_config()
    }
}

impl Validate for VaultConfig {
    fn validate(&self, problems: &mut Problems) {
        let vault = &self.vault;
        if vault.host.trim().is_empty() {
            problems.add(
                "vault.host",
                "is empty",
                "set it to the address to listen on (0.0.0.0 in a container)",
            );
        }
        if vault.workers == 0 {
            problems.add("vault.workers", "is 0", "use at least 1");
        }
        if vault.rotation_batch_size == 0 {
            problems.add(
                "vault.rotation_batch_size",
                "is 0",
                "use at least 1 (500 is a good size)",
            );
        }
        // ORCID tokens last about 20 years; a threshold longer than that would refresh on
        // every read.
        if vault.refresh_before_expiry_secs > 10 * 365 * 24 * 3600 {
            problems.add(
                "vault.refresh_before_expiry_secs",
                "is longer than ten years, so every read would refresh the token",
                "use a day (86400) or a week (604800)",
            );
        }
        self.validate_keys(problems);
        self.validate_callers(problems);
        self.database.validate(problems);
        self.bus.validate(problems);
        self.orcid.validate(problems);
        self.telemetry.validate(problems);
    }
}

impl VaultConfig {
    fn validate_keys(&self, problems: &mut Problems) {
        let vault = &self.vault;
        match (&vault.key_dir, &vault.keys) {
            (Some(_), Some(_)) => problems.add(
                "vault.keys",
                "is set together with vault.key_dir",
                "keep one of them: the mounted directory or the key list",
            ),
            (None, None) => problems.add(
                "vault.keys",
                "no key-encryption keys are configured",
                format!(
                    "set vault.key_dir to a mounted key directory, or {} to `k2026a:BASE64` (generate a key with `openssl rand -base64 32`) and {} to its id",
                    env_var_name("vault.keys"),
                    env_var_name("vault.active_key")
                ),
            ),
            (dir, _) => {
                if let Err(e) = self.key_ring() {
                    let key = if dir.is_some() { "vault.key_dir" } else { "vault.keys" };
                    problems.add(key, "cannot be loaded", e.to_string());
                }
            }
        }
        match &vault.handoff_keys {
            None => problems.add(
                "vault.handoff_keys",
                "no hand-off keys are configured, so no connection can be received from the portal",
                format!(
                    "set {} to `hk2026a:BASE64` (32 random bytes, the X25519 private key) and give the portal the public half",
                    env_var_name("vault.handoff_keys")
                ),
            ),
            Some(_) => {
                if let Err(e) = self.handoff_keys() {
                    problems.add("vault.handoff_keys", "cannot be loaded", e);
                }
            }
        }
    }

    fn validate_callers(&self, problems: &mut Problems) {
        let mut seen = std::collections::HashSet::new();
        for (position, (name, caller)) in self.vault.callers.iter().enumerate() {
            // The name is written to the audit (a 64-character column) and into config keys.
            let valid_name = (1..=64).contains(&name.len())
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_name {
                problems.add(
                    "vault.callers",
                    format!(
                        "caller {} (in name order) has a name that is not 1 to 64 characters of a-z, 0-9, '_' or '-'",
                        position + 1
                    ),
                    "rename it, e.g. `writer` or `orcid-reader`",
                );
                continue;
            }
            let key = format!("vault.callers.{name}.token_sha256");
            let hash = caller.token_sha256.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.add(
                    key,
                    "is not 64 hexadecimal characters",
                    "store the SHA-256 of the caller's token, e.g. `printf %s \"$TOKEN\" | sha256sum`, never the token itself",
                );
            } else if !seen.insert(hash.to_ascii_lowercase()) {
                problems.add(
                    key,
                    "is the same hash as another caller's",
                    "give every service its own token",
                );
            }
            if caller.rights.is_empty() {
                problems.add(
                    format!("vault.callers.{name}.rights"),
                    "is empty, so the caller can do nothing",
                    "list its rights, e.g. [\"token:read\"], or remove the caller",
                );
            }
        }
    }
}
