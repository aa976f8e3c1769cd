//! Where the client-credentials `/webhook` token comes from.
//!
//! [`ClientTokens`] is the seam; [`VaultClientTokens`] (production) asks the token vault
//! (`GET /v1/client-tokens/webhook?purpose=…`, caller right `client-token:read`);
//! [`OrcidClientTokens`] asks ORCID directly and keeps the token (a single-process
//! deployment without a vault, and tests against orcid-sim).

use futures_util::future::BoxFuture;
use orcid::client::{AccessToken, OrcidClient, Scope};
use token_vault::client::{ClientScope, VaultClient};
use tokio::sync::Mutex;

/// Why no `/webhook` token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Trying again later may work (vault or ORCID unavailable).
    #[error("the /webhook token is unavailable for now: {0}")]
    Unavailable(String),
    /// It will not work until someone changes something (caller right, ORCID client scope).
    #[error("no /webhook token can be had: {0}")]
    Refused(String),
}

impl TokenError {
    /// Whether a later attempt can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TokenError::Unavailable(_))
    }
}

/// A source of the client-credentials `/webhook` token.
pub trait ClientTokens: Send + Sync + 'static {
    /// The token; `purpose` is audited where the source keeps an audit.
    fn webhook_token<'a>(
        &'a self,
        purpose: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, TokenError>>;

    /// ORCID refused `token` (401): forget it so the next call gets a fresh one.
    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The token from the token vault.
#[derive(Clone, Debug)]
pub struct VaultClientTokens {
    client: VaultClient,
}

impl VaultClientTokens {
    /// Over a vault client authenticated as the receiver (right `client-token:read`).
    pub fn new(client: VaultClient) -> Self {
        Self { client }
    }
}

impl ClientTokens for VaultClientTokens {
    fn webhook_token<'a>(
        &'a self,
        purpose: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            match self
                .client
                .client_token(ClientScope::Webhook, purpose)
                .await
            {
                Ok(token) => Ok(token.access_token),
                Err(e) if e.is_retryable() => Err(TokenError::Unavailable(e.to_string())),
                Err(e) => Err(TokenError::Refused(e.to_string())),
            }
        })
    }
}

/// The token from ORCID's token endpoint (client credentials), kept until ORCID refuses it.
pub struct OrcidClientTokens {
    orcid: OrcidClient,
    cached: Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for OrcidClientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrcidClientTokens")
            .field("orcid", &self.orcid)
            .finish_non_exhaustive()
    }
}

impl OrcidClientTokens {
    /// Tokens of `orcid`'s client.
    pub fn new(orcid: OrcidClient) -> Self {
        Self {
            orcid,
            cached: Mutex::new(None),
        }
    }
}

impl ClientTokens for OrcidClientTokens {
    fn webhook_token<'a>(
        &'a self,
        _purpose: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some(token) = cached.as_ref() {
                return Ok(token.clone());
            }
            match self.orcid.client_credentials(Scope::Webhook).await {
                Ok(token) => {
                    *cached = Some(token.access_token.clone());
                    Ok(token.access_token)
                }
                Err(e) if e.is_retryable() => Err(TokenError::Unavailable(e.to_string())),
                Err(e) => Err(TokenError::Refused(e.to_string())),
            }
        })
    }

    fn invalidate(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            *self.cached.lock().await = None;
        })
    }
}
