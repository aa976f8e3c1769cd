//! A small typed client of the vault's API, for the workers and the portal.
//!
//! ```no_run
//! # async fn demo() -> Result<(), token_vault::client::ClientError> {
//! use token_vault::client::VaultClient;
//!
//! let vault = VaultClient::new("http://token-vault:8081", "WRITER_CALLER_TOKEN".into())?;
//! let orcid = orcid::OrcidId::parse("0000-0002-1825-0097").expect("valid iD");
//! let token = vault.access_token(&orcid, "hr.hire P-004711").await?;
//! // … call ORCID with token.access_token; on a 401:
//! vault.mark_revoked(&orcid, Some(token.generation), "401 on POST /employment").await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use orcid::OrcidId;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

pub use crate::api::{
    ClientScope, ClientToken, Connection, ConnectionPage, ConnectionState, ErrorBody, HandoffKey,
    RevokedReport, UserToken,
};

/// A call to the vault failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client could not be built (bad base URL).
    #[error("invalid vault client configuration: {0}")]
    Config(String),
    /// 401: the caller token is missing or unknown.
    #[error("the vault did not recognise this service's token: {message}")]
    Unauthenticated {
        /// The vault's message.
        message: String,
    },
    /// 403: the caller lacks a right.
    #[error("the vault refused: {message}")]
    Forbidden {
        /// The right the caller lacks.
        missing_right: Option<String>,
        /// The vault's message.
        message: String,
    },
    /// 404: no connection for the iD.
    #[error("no connection for this iD")]
    NotConnected,
    /// 410: the connection ended (revoked, expired, disconnected).
    #[error("the connection is {state}")]
    ConnectionEnded {
        /// Its state.
        state: ConnectionState,
    },
    /// 409: the reported token generation was already replaced; fetch the token again.
    #[error("stale token generation: {message}")]
    StaleGeneration {
        /// The vault's message.
        message: String,
    },
    /// 503: ORCID failed while the vault needed it; retry later.
    #[error("ORCID is unavailable to the vault: {message}")]
    OrcidUnavailable {
        /// The vault's message.
        message: String,
    },
    /// Any other non-2xx answer (400, 500, …).
    #[error("the vault answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `error` code of the body, when it had one.
        error: Option<String>,
        /// The vault's message.
        message: String,
    },
    /// The vault could not be reached, or its answer could not be read.
    #[error("calling the vault failed")]
    Transport(#[source] reqwest::Error),
}

impl ClientError {
    /// Whether trying again later can help (ORCID or the vault unavailable, transport).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::OrcidUnavailable { .. } | ClientError::Transport(_) => true,
            ClientError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A client of the vault's API, authenticated as one caller. Cheap to clone.
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// A client of the vault at `base_url` (`http://token-vault:8081`), sending
    /// `caller_token` as its bearer token.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a base URL that is not http(s).
    pub fn new(base_url: &str, caller_token: SecretString) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base)
            .map_err(|e| ClientError::Config(format!("base URL `{base}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Config(format!(
                "base URL `{base}` must be http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: caller_token,
        })
    }

    /// A usable access token for `orcid` (refreshed by the vault when near expiry).
    /// `purpose` is recorded in the vault's audit.
    ///
    /// # Errors
    /// [`ClientError`]; `NotConnected` and `ConnectionEnded` mean the researcher has to
    /// connect (again).
    pub async fn access_token(
        &self,
        orcid: &OrcidId,
        purpose: &str,
    ) -> Result<UserToken, ClientError> {
        let request = self
            .http
            .get(format!("{}/v1/tokens/{orcid}", self.base))
            .query(&[("purpose", purpose)]);
        self.send(request).await
    }

    /// The access token of `person_id`'s active connection (the latest granted when the
    /// person connected more than one iD), in one request; `purpose` is audited. The
    /// caller needs `token:read` and `connections:list`.
    ///
    /// # Errors
    /// [`ClientError`]; `NotConnected` when the person has no active connection,
    /// `ConnectionEnded` (revoked) when one of theirs was revoked.
    pub async fn person_token(
        &self,
        person_id: &str,
        purpose: &str,
    ) -> Result<UserToken, ClientError> {
        let request = self
            .http
            .get(format!("{}/v1/tokens", self.base))
            .query(&[("person_id", person_id), ("purpose", purpose)]);
        self.send(request).await
    }

    /// The client-credentials token for `scope`; `purpose` is audited.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn client_token(
        &self,
        scope: ClientScope,
        purpose: &str,
    ) -> Result<ClientToken, ClientError> {
        let request = self
            .http
            .get(format!(
                "{}/v1/client-tokens/{}",
                self.base,
                scope.path_name()
            ))
            .query(&[("purpose", purpose)]);
        self.send(request).await
    }

    /// Reports that ORCID answered 401 for the token of `generation` (from
    /// [`UserToken::generation`]); the vault ends the connection as revoked and publishes
    /// "connection lost". Idempotent.
    ///
    /// # Errors
    /// [`ClientError::StaleGeneration`] when the vault already holds a newer token (fetch it
    /// and retry the ORCID call); others as usual.
    pub async fn mark_revoked(
        &self,
        orcid: &OrcidId,
        generation: Option<i64>,
        reason: &str,
    ) -> Result<Connection, ClientError> {
        let request = self
            .http
            .post(format!("{}/v1/connections/{orcid}/revoked", self.base))
            .json(&RevokedReport {
                generation,
                reason: Some(reason.to_owned()),
            });
        self.send(request).await
    }

    /// Disconnects `orcid`: the vault revokes the token at ORCID, deletes it and publishes
    /// "connection lost" (disconnected). Idempotent.
    ///
    /// # Errors
    /// [`ClientError`]; `OrcidUnavailable` when ORCID could not revoke (nothing was deleted;
    /// retry).
    pub async fn disconnect(
        &self,
        orcid: &OrcidId,
        purpose: &str,
    ) -> Result<Connection, ClientError> {
        let request = self
            .http
            .delete(format!("{}/v1/connections/{orcid}", self.base))
            .query(&[("purpose", purpose)]);
        self.send(request).await
    }

    /// One connection (no token).
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn connection(&self, orcid: &OrcidId) -> Result<Connection, ClientError> {
        let request = self
            .http
            .get(format!("{}/v1/connections/{orcid}", self.base));
        self.send(request).await
    }

    /// A page of connections (no tokens), ordered by iD; pass the page's `next_after` as
    /// `after` for the next one.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn connections(
        &self,
        person_id: Option<&str>,
        state: Option<ConnectionState>,
        after: Option<&str>,
        limit: Option<u64>,
    ) -> Result<ConnectionPage, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(person_id) = person_id {
            query.push(("person_id", person_id.to_owned()));
        }
        if let Some(state) = state {
            query.push(("state", state.as_str().to_owned()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let request = self
            .http
            .get(format!("{}/v1/connections", self.base))
            .query(&query);
        self.send(request).await
    }

    /// The hand-off key the portal seals token responses to.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn handoff_key(&self) -> Result<HandoffKey, ClientError> {
        let request = self.http.get(format!("{}/v1/handoff-key", self.base));
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = traced(request)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| ClientError::Transport(e.without_url()));
        }
        let body: Option<ErrorBody> = response.json().await.ok();
        let message = body
            .as_ref()
            .map(|b| b.message.clone())
            .unwrap_or_else(|| status.to_string());
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthenticated { message },
            StatusCode::FORBIDDEN => ClientError::Forbidden {
                missing_right: body.and_then(|b| b.missing_right),
                message,
            },
            StatusCode::NOT_FOUND if body.as_ref().is_some_and(|b| b.error == "not_connected") => {
                ClientError::NotConnected
            }
            StatusCode::GONE => ClientError::ConnectionEnded {
                state: body
                    .and_then(|b| b.state)
                    .unwrap_or(ConnectionState::Revoked),
            },
            StatusCode::CONFLICT => ClientError::StaleGeneration { message },
            StatusCode::SERVICE_UNAVAILABLE => ClientError::OrcidUnavailable { message },
            other => ClientError::Api {
                status: other.as_u16(),
                error: body.map(|b| b.error),
                message,
            },
        })
    }
}

/// `request` with the current trace context (`traceparent`), so the callee's request span
/// joins the caller's trace.
fn traced(mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    for (name, value) in idbridge_platform::telemetry::trace_headers() {
        request = request.header(name, value);
    }
    request
}
