//! Where the reader gets a record's token (read only: `/read-limited`), where it reports a
//! token ORCID refused, and where the sweep lists the connections.
//!
//! [`TokenSource`] is the seam; [`VaultTokens`] is the production implementation over the
//! token vault's typed client. Tests implement it with tokens from orcid-sim's OAuth flow.

use futures_util::future::BoxFuture;
use orcid::OrcidId;
use orcid::client::AccessToken;
use token_vault::client::{ClientError, ConnectionState, VaultClient};

/// A usable token for one connected iD. `Debug` shows no token.
#[derive(Clone, Debug)]
pub struct RecordToken {
    /// The connected iD.
    pub orcid: OrcidId,
    /// The institution's person id of the connection, when known.
    pub person_id: Option<String>,
    /// The bearer token for ORCID's member API.
    pub access_token: AccessToken,
    /// The vault's token generation, sent back when reporting the token revoked.
    pub generation: Option<i64>,
}

/// One active connection, as the sweep sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRef {
    /// The iD.
    pub orcid: OrcidId,
    /// The institution's person id.
    pub person_id: String,
}

/// One page of active connections.
#[derive(Clone, Debug, Default)]
pub struct ConnectionsPage {
    /// Connections, ordered by iD.
    pub connections: Vec<ConnectionRef>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next_after: Option<String>,
}

/// Why no token could be had, or a report was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The iD has no connection (never connected, disconnected, expired): nothing to read.
    #[error("the iD is not connected")]
    NotConnected,
    /// The researcher revoked the institution's access.
    #[error("the researcher revoked access")]
    Revoked,
    /// The source already holds a newer token than the one reported: fetch it again.
    #[error("the token was already replaced: {0}")]
    Superseded(String),
    /// The source could not answer now (vault down, misconfiguration): retry.
    #[error("the token source is unavailable: {0}")]
    Unavailable(String),
}

/// A record's token, the report that ORCID refused it, and the list of connections.
///
/// Boxed futures keep the trait object-safe.
pub trait TokenSource: Send + Sync + 'static {
    /// A usable token for `orcid`.
    fn token<'a>(&'a self, orcid: &'a OrcidId) -> BoxFuture<'a, Result<RecordToken, TokenError>>;

    /// ORCID answered 401 for `token`: the vault ends the connection and publishes
    /// "connection lost" (revoked).
    fn mark_revoked<'a>(
        &'a self,
        token: &'a RecordToken,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>>;

    /// A page of active connections after `after` (by iD), at most `limit`.
    fn connections<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<ConnectionsPage, TokenError>>;
}

/// Tokens from the token vault's internal API.
#[derive(Clone, Debug)]
pub struct VaultTokens {
    client: VaultClient,
}

impl VaultTokens {
    /// Over a vault client authenticated as the reader (rights `token:read`,
    /// `connections:list` and `connections:revoke`).
    pub fn new(client: VaultClient) -> Self {
        Self { client }
    }
}

fn unavailable(e: &ClientError) -> TokenError {
    TokenError::Unavailable(e.to_string())
}

fn ended(state: ConnectionState) -> TokenError {
    if state == ConnectionState::Revoked {
        TokenError::Revoked
    } else {
        TokenError::NotConnected
    }
}

impl TokenSource for VaultTokens {
    fn token<'a>(&'a self, orcid: &'a OrcidId) -> BoxFuture<'a, Result<RecordToken, TokenError>> {
        Box::pin(async move {
            let connection = match self.client.connection(orcid).await {
                Ok(c) => c,
                Err(ClientError::NotConnected) => return Err(TokenError::NotConnected),
                Err(ClientError::ConnectionEnded { state }) => return Err(ended(state)),
                Err(e) => return Err(unavailable(&e)),
            };
            if connection.state != ConnectionState::Active {
                return Err(ended(connection.state));
            }
            match self
                .client
                .access_token(orcid, "reader: read the record (/read-limited)")
                .await
            {
                Ok(token) => Ok(RecordToken {
                    orcid: *orcid,
                    person_id: Some(connection.person_id),
                    access_token: token.access_token,
                    generation: Some(token.generation),
                }),
                Err(ClientError::NotConnected) => Err(TokenError::NotConnected),
                Err(ClientError::ConnectionEnded { state }) => Err(ended(state)),
                Err(e) => Err(unavailable(&e)),
            }
        })
    }

    fn mark_revoked<'a>(
        &'a self,
        token: &'a RecordToken,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async move {
            match self
                .client
                .mark_revoked(&token.orcid, token.generation, reason)
                .await
            {
                Ok(_) => Ok(()),
                Err(ClientError::StaleGeneration { message }) => {
                    Err(TokenError::Superseded(message))
                }
                Err(e) => Err(unavailable(&e)),
            }
        })
    }

    fn connections<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: u64,
    ) -> BoxFuture<'a, Result<ConnectionsPage, TokenError>> {
        Box::pin(async move {
            let page = self
                .client
                .connections(None, Some(ConnectionState::Active), after, Some(limit))
                .await
                .map_err(|e| unavailable(&e))?;
            let connections = page
                .connections
                .into_iter()
                .filter_map(|c| match OrcidId::parse(&c.orcid) {
                    Ok(orcid) => Some(ConnectionRef {
                        orcid,
                        person_id: c.person_id,
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, "the vault listed an invalid iD; skipping it");
                        None
                    }
                })
                .collect();
            Ok(ConnectionsPage {
                connections,
                next_after: page.next_after,
            })
        })
    }
}
