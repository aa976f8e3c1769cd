//! The JSON the internal API speaks, shared by the routes and [`crate::client::VaultClient`].
//! `openapi.json` describes the same shapes.

use std::fmt;

use chrono::{DateTime, Utc};
use orcid::client::AccessToken;
use serde::{Deserialize, Serialize};

/// The life of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionState {
    /// Tokens held and usable.
    Active,
    /// ORCID refused the token (the researcher revoked access); tokens deleted.
    Revoked,
    /// The token expired and could not be refreshed; tokens deleted.
    Expired,
    /// The researcher disconnected; revoked at ORCID, tokens deleted.
    Disconnected,
}

impl ConnectionState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Active => "active",
            ConnectionState::Revoked => "revoked",
            ConnectionState::Expired => "expired",
            ConnectionState::Disconnected => "disconnected",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => ConnectionState::Active,
            "revoked" => ConnectionState::Revoked,
            "expired" => ConnectionState::Expired,
            "disconnected" => ConnectionState::Disconnected,
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection as listings show it: never a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The institution's person id.
    pub person_id: String,
    /// The ORCID iD (`0000-0002-1825-0097`).
    pub orcid: String,
    /// The name ORCID returned with the grant.
    pub name: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// State.
    pub state: ConnectionState,
    /// When the researcher granted access (the latest grant).
    pub granted_at: DateTime<Utc>,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// When the vault last refreshed the token.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// When the connection ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// One page of `GET /v1/connections`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionPage {
    /// Connections ordered by iD.
    pub connections: Vec<Connection>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// A user's access token (`GET /v1/tokens/{orcid}`). `Debug` redacts the token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserToken {
    /// The iD the token is for.
    pub orcid: String,
    /// The bearer token for ORCID's member API.
    #[serde(with = "token_text")]
    pub access_token: AccessToken,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Which token of the connection this is (bumped at every connect and refresh). Send it
    /// back when reporting the token revoked, so a report about a token the vault already
    /// replaced does not end the connection.
    pub generation: i64,
}

/// A client-credentials token (`GET /v1/client-tokens/{scope}`). `Debug` redacts the token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientToken {
    /// The ORCID scope (`/webhook`, `/read-public`).
    pub scope: String,
    /// The bearer token.
    #[serde(with = "token_text")]
    pub access_token: AccessToken,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// The client-credentials scopes the vault keeps a token for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientScope {
    /// `/webhook`: register webhooks (the webhook receiver).
    Webhook,
    /// `/read-public`: read public data of any record.
    ReadPublic,
}

impl ClientScope {
    /// The name in the API path (`webhook`, `read-public`).
    pub fn path_name(self) -> &'static str {
        match self {
            ClientScope::Webhook => "webhook",
            ClientScope::ReadPublic => "read-public",
        }
    }

    /// The ORCID scope (`/webhook`, `/read-public`).
    pub fn orcid_scope(self) -> &'static str {
        match self {
            ClientScope::Webhook => "/webhook",
            ClientScope::ReadPublic => "/read-public",
        }
    }

    /// Reads a path name.
    pub fn from_path_name(name: &str) -> Option<Self> {
        match name {
            "webhook" => Some(ClientScope::Webhook),
            "read-public" => Some(ClientScope::ReadPublic),
            _ => None,
        }
    }

    /// Every scope.
    pub const ALL: [ClientScope; 2] = [ClientScope::Webhook, ClientScope::ReadPublic];
}

/// Body of `POST /v1/connections/{orcid}/revoked`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedReport {
    /// The [`UserToken::generation`] that ORCID refused; when it is not the current one the
    /// vault answers 409 and keeps the connection.
    #[serde(default)]
    pub generation: Option<i64>,
    /// What the caller saw (kept in the audit as the purpose), e.g. "401 on GET /record".
    #[serde(default)]
    pub reason: Option<String>,
}

/// The hand-off public key the portal seals token responses to (`GET /v1/handoff-key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffKey {
    /// Put this in the event's `key_id`.
    pub key_id: String,
    /// X25519 public key, standard base64.
    pub public_key: String,
}

/// Every error answer: a machine-readable `error` code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `unauthenticated`, `forbidden`, `bad_request`, `purpose_required`, `not_connected`,
    /// `connection_ended`, `stale_generation`, `orcid_unavailable`, `internal`.
    pub error: String,
    /// What happened and what to do.
    pub message: String,
    /// For `forbidden`: the right the caller lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_right: Option<String>,
    /// For `connection_ended`: the connection's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ConnectionState>,
    /// For `internal`: quote it when asking the operator; the vault's log has the details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Serde for a token as plain text on the wire (the API is the one place a token leaves the
/// vault).
mod token_text {
    use orcid::client::AccessToken;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        token: &AccessToken,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(token.expose_secret())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<AccessToken, D::Error> {
        secrecy::SecretString::deserialize(deserializer).map(AccessToken::from)
    }
}
