//! The `[orcid]` section every service that talks to ORCID reads, its validation, and the one
//! way to turn it into an `orcid` client configuration.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{Problems, Validate, env_var_name};

/// `[orcid]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrcidConfig {
    /// `production`, `sandbox`, or a base URL serving everything (a simulator).
    pub registry: String,
    /// The member API client id (`APP-…`): items whose source is this client are ours.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
}

impl OrcidConfig {
    /// The `orcid` crate's client configuration for this registry and client.
    ///
    /// # Errors
    /// A custom registry URL the client refuses (not https outside loopback, not a URL).
    pub fn client_config(&self) -> Result<orcid::client::ClientConfig, orcid::Error> {
        let id = self.client_id.trim().to_owned();
        let secret = self.client_secret.clone();
        Ok(match self.registry.trim() {
            "production" => orcid::client::ClientConfig::production(id, secret),
            "sandbox" => orcid::client::ClientConfig::sandbox(id, secret),
            url => orcid::client::ClientConfig::custom(url, id, secret)?,
        })
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
    }
}
