//! What is sealed at rest, and to which row it is bound.
//!
//! - A user connection: one blob holding the access and the refresh token as JSON
//!   (`{"access_token":…,"refresh_token":…}`), sealed under the key ring and bound to the
//!   connection's id and iD ([`RowBinding`]). One blob per row keeps rotation to one re-wrap
//!   per row, and the pair always changes together (a refresh replaces both).
//! - A client-credentials token: the token alone, bound to the row id and the pseudo-iD
//!   `client-credentials:<scope>` (`client-credentials:/webhook`), so it cannot be moved into
//!   a connection row or another scope's row.

use idbridge_crypto::{CryptoError, KeyRing, RowBinding, Sealed};
use orcid::client::{AccessToken, RefreshToken};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Opening a stored blob failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The key ring refused it (unknown key id, tampered, moved, wrong key).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// It opened but does not hold what it should.
    #[error("the sealed tokens are not in the expected layout")]
    Layout,
}

/// A user's access and refresh token.
#[derive(Clone, Debug)]
pub(crate) struct TokenPair {
    pub(crate) access: AccessToken,
    pub(crate) refresh: Option<RefreshToken>,
}

/// The pair as sealed, borrowing the tokens (no owned copy outside zeroized memory).
#[derive(Serialize)]
struct StoredPairRef<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct StoredPair {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

impl TokenPair {
    pub(crate) fn seal(
        &self,
        ring: &KeyRing,
        connection_id: Uuid,
        orcid: &str,
    ) -> Result<Sealed, CryptoError> {
        let stored = StoredPairRef {
            access_token: self.access.expose_secret(),
            refresh_token: self.refresh.as_ref().map(|r| r.expose_secret()),
        };
        // Sized up front so the buffer is not reallocated (which would leave unzeroized copies).
        let capacity = stored.access_token.len() + stored.refresh_token.map_or(0, str::len) + 64;
        let mut json = Zeroizing::new(Vec::with_capacity(capacity));
        serde_json::to_writer(&mut *json, &stored)
            .map_err(|_| CryptoError::Internal("writing the token pair"))?;
        let json = std::str::from_utf8(&json)
            .map_err(|_| CryptoError::Internal("writing the token pair"))?;
        ring.seal(
            &SecretString::from(json),
            &RowBinding::new(connection_id, orcid),
        )
    }

    pub(crate) fn open(
        ring: &KeyRing,
        bytes: &[u8],
        connection_id: Uuid,
        orcid: &str,
    ) -> Result<Self, OpenError> {
        let sealed = Sealed::from_bytes(bytes)?;
        let json = ring.open(&sealed, &RowBinding::new(connection_id, orcid))?;
        let stored: StoredPair =
            serde_json::from_str(json.expose_secret()).map_err(|_| OpenError::Layout)?;
        Ok(Self {
            access: AccessToken::from(stored.access_token),
            refresh: stored.refresh_token.map(RefreshToken::from),
        })
    }
}

/// The pseudo-iD a client token row is bound to.
pub(crate) fn client_binding_name(scope: &str) -> String {
    format!("client-credentials:{scope}")
}

pub(crate) fn seal_client_token(
    ring: &KeyRing,
    token: &AccessToken,
    row_id: Uuid,
    scope: &str,
) -> Result<Sealed, CryptoError> {
    ring.seal(
        &SecretString::from(token.expose_secret()),
        &RowBinding::new(row_id, &client_binding_name(scope)),
    )
}

pub(crate) fn open_client_token(
    ring: &KeyRing,
    bytes: &[u8],
    row_id: Uuid,
    scope: &str,
) -> Result<AccessToken, OpenError> {
    let sealed = Sealed::from_bytes(bytes)?;
    let token = ring.open(
        &sealed,
        &RowBinding::new(row_id, &client_binding_name(scope)),
    )?;
    Ok(AccessToken::from(token))
}
