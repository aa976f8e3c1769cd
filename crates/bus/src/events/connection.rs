//! Connection lifecycle: iD connected (portal → vault), connection ready, connection lost.

use base64::Engine;
use chrono::{DateTime, Utc};
use orcid::OrcidId;
use serde::{Deserialize, Serialize};

use super::{Event, exchanges};

/// A token response sealed to the vault's public key, base64 (standard alphabet, padded).
/// Opaque to everyone but the vault; never a plaintext token. Debug output shows only its
/// length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SealedToken(String);

impl SealedToken {
    /// Encodes sealed bytes.
    #[must_use]
    pub fn from_sealed_bytes(bytes: &[u8]) -> Self {
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The sealed bytes.
    ///
    /// # Errors
    /// Never for a value built by this type; kept fallible for values from elsewhere.
    pub fn sealed_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.0)
    }

    /// The base64 text.
    #[must_use]
    pub fn as_base64(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SealedToken {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match base64::engine::general_purpose::STANDARD.decode(&value) {
            Ok(bytes) if !bytes.is_empty() => Ok(Self(value)),
            Ok(_) => Err("sealed_token is empty".into()),
            Err(e) => Err(format!("sealed_token is not base64: {e}")),
        }
    }
}

impl From<SealedToken> for String {
    fn from(value: SealedToken) -> Self {
        value.0
    }
}

impl std::fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedToken(<{} base64 chars>)", self.0.len())
    }
}

/// A researcher connected their iD at the portal. Only the vault can open the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdConnected {
    /// The authenticated ORCID iD (`0000-0002-1825-0097`).
    pub orcid: OrcidId,
    /// The institution's stable id of the person who signed in.
    pub person_id: String,
    /// Name ORCID returned with the token, if public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scopes granted (`/read-limited`, `/activities/update`, …).
    pub scopes: Vec<String>,
    /// ORCID's token response (access and refresh token, expiry) sealed to the vault.
    pub sealed_token: SealedToken,
    /// Which vault public key sealed it.
    pub key_id: String,
    /// When the researcher granted access.
    pub granted_at: DateTime<Utc>,
}

impl Event for IdConnected {
    const TYPE: &'static str = "id-connected";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "id.connected".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person_id.clone())
    }
}

/// The vault stored a connection; workers may now act for this iD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReady {
    /// The ORCID iD.
    pub orcid: OrcidId,
    /// The institution's person id.
    pub person_id: String,
    /// Scopes the stored token carries.
    pub scopes: Vec<String>,
    /// When the connection was stored.
    pub connected_at: DateTime<Utc>,
}

impl Event for ConnectionReady {
    const TYPE: &'static str = "connection-ready";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "connection.ready".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person_id.clone())
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LostReason {
    /// The researcher revoked access on ORCID.
    Revoked,
    /// The researcher disconnected at the portal.
    Disconnected,
    /// The token expired.
    Expired,
    /// ORCID deprecated (merged) the record.
    Deprecated,
}

/// A connection can no longer be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionLost {
    /// The ORCID iD.
    pub orcid: OrcidId,
    /// The institution's person id.
    pub person_id: String,
    /// Why.
    pub reason: LostReason,
    /// When it was noticed.
    pub detected_at: DateTime<Utc>,
    /// For a deprecated record, the iD it was merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_orcid: Option<OrcidId>,
}

impl Event for ConnectionLost {
    const TYPE: &'static str = "connection-lost";
    const VERSION: u32 = 1;
    const EXCHANGE: &'static str = exchanges::EVENTS;
    fn routing_key(&self) -> String {
        "connection.lost".into()
    }
    fn partition_key(&self) -> Option<String> {
        Some(self.person_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_token_is_redacted_and_checked() {
        let token = SealedToken::from_sealed_bytes(b"TEST_SEALED_TOKEN_BYTES");
        assert!(!format!("{token:?}").contains(token.as_base64()));
        assert_eq!(token.sealed_bytes().unwrap(), b"TEST_SEALED_TOKEN_BYTES");
        assert!(SealedToken::try_from("not base64!".to_owned()).is_err());
        assert!(SealedToken::try_from(String::new()).is_err());
    }
}
