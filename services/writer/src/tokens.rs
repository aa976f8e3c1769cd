//! Where the writer gets a person's ORCID token, and where it reports a token ORCID refused.
//!
//! [`TokenSource`] is the seam; [`VaultTokens`] is the production implementation over the
//! token vault's typed client. Tests may implement it with tokens obtained from orcid-sim's
//! OAuth flow (real ORCID behaviour, no mock of ORCID).

use futures_util::future::BoxFuture;
use orcid::OrcidId;
use orcid::client::AccessToken;
use token_vault::client::{ClientError, ConnectionState, VaultClient};

/// A usable token for one person's connected iD. `Debug` shows no token.
#[derive(Clone, Debug)]
pub struct PersonToken {
    /// The connected iD.
    pub orcid: OrcidId,
    /// The bearer token for ORCID's member API.
    pub access_token: AccessToken,
    /// The vault's token generation, sent back when reporting the token revoked.
    pub generation: Option<i64>,
}

/// Why no token could be had, or a report was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The person has no connection (never connected, disconnected, expired): items wait,
    /// `pending`, for "connection ready".
    #[error("the person has not connected an ORCID iD")]
    NotConnected,
    /// The researcher revoked the institution's access: items are `revoked` until they
    /// connect again.
    #[error("the researcher revoked access")]
    Revoked,
    /// The source already holds a newer token than the one reported: fetch it again.
    #[error("the token was already replaced: {0}")]
    Superseded(String),
    /// The source could not answer now (vault or ORCID down, misconfiguration): retry.
    #[error("the token source is unavailable: {0}")]
    Unavailable(String),
}

/// A person's token, and the report that ORCID refused it.
///
/// Boxed futures keep the trait object-safe, so one writer takes any source.
pub trait TokenSource: Send + Sync + 'static {
    /// A usable token for the iD `person_id` connected.
    fn token<'a>(&'a self, person_id: &'a str) -> BoxFuture<'a, Result<PersonToken, TokenError>>;

    /// ORCID answered 401 for `token`: stop using it. The vault ends the connection and
    /// publishes "connection lost".
    fn mark_revoked<'a>(
        &'a self,
        person_id: &'a str,
        token: &'a PersonToken,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>>;
}

/// Tokens from the token vault's internal API.
#[derive(Clone, Debug)]
pub struct VaultTokens {
    client: VaultClient,
}

impl VaultTokens {
    /// Over a vault client authenticated as the writer (right `token:read`,
    /// `connections:list` and `connections:revoke`).
    pub fn new(client: VaultClient) -> Self {
        Self { client }
    }
}

fn unavailable(e: &ClientError) -> TokenError {
    TokenError::Unavailable(e.to_string())
}

impl TokenSource for VaultTokens {
    fn token<'a>(&'a self, person_id: &'a str) -> BoxFuture<'a, Result<PersonToken, TokenError>> {
        Box::pin(async move {
            // One request: the vault picks the person's active connection (the latest
            // granted when they connected two iDs) and returns its token.
            let token = match self
                .client
                .person_token(
                    person_id,
                    &format!("writer: ORCID write for person {person_id}"),
                )
                .await
            {
                Ok(token) => token,
                Err(ClientError::NotConnected) => return Err(TokenError::NotConnected),
                Err(ClientError::ConnectionEnded {
                    state: ConnectionState::Revoked,
                }) => return Err(TokenError::Revoked),
                Err(ClientError::ConnectionEnded { .. }) => return Err(TokenError::NotConnected),
                Err(e) => return Err(unavailable(&e)),
            };
            let orcid = OrcidId::parse(&token.orcid).map_err(|e| {
                TokenError::Unavailable(format!("the vault returned an invalid iD: {e}"))
            })?;
            Ok(PersonToken {
                orcid,
                access_token: token.access_token,
                generation: Some(token.generation),
            })
        })
    }

    fn mark_revoked<'a>(
        &'a self,
        _person_id: &'a str,
        token: &'a PersonToken,
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
}
