//! The sealed hand-off of a token response from the portal to the vault (the `sealed_token`
//! of the "iD connected" event). The format, the AAD and the sealing live in
//! [`idbridge_crypto::handoff`], so the portal needs only `idbridge-crypto`; [`seal_tokens`]
//! here is the same sealing over the `orcid` and `bus` types, kept for existing callers.
//!
//! The event's `key_id` names the vault key pair it was sealed to, so the vault can hold
//! several during a hand-off key rotation ([`idbridge_crypto::HandoffKeys`]).

use std::time::Duration;

use bus::events::{IdConnected, SealedToken};
pub use idbridge_crypto::handoff::{HandoffError, HandoffTokens, INFO as HANDOFF_INFO};
use idbridge_crypto::{HandoffKeys, VaultKeyPair, VaultPublicKey};
use orcid::OrcidId;
use orcid::client::{AccessToken, RefreshToken, UserTokens};
use secrecy::SecretString;

/// What ORCID states for a fresh token (about 20 years), used when a response has no expiry.
pub(crate) const ORCID_DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(631_138_518);

/// Portal side: seals `tokens` (the answer of the code exchange) for the vault key
/// `recipient`, bound to the event's `orcid` and `person_id`
/// ([`idbridge_crypto::handoff::seal_tokens`] over the `orcid` and `bus` types).
///
/// # Errors
/// [`HandoffError::Crypto`] when the crypto library fails.
pub fn seal_tokens(
    recipient: &VaultPublicKey,
    orcid: &OrcidId,
    person_id: &str,
    tokens: &UserTokens,
) -> Result<SealedToken, HandoffError> {
    let wire = HandoffTokens {
        access_token: SecretString::from(tokens.access_token.expose_secret()),
        token_type: Some("bearer".to_owned()),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|r| SecretString::from(r.expose_secret())),
        expires_in: tokens.expires_in.map(|d| d.as_secs()),
        scope: Some(tokens.scopes.to_string()),
        name: tokens.name.clone(),
        orcid: Some(tokens.orcid.to_string()),
    };
    let bytes =
        idbridge_crypto::handoff::seal_tokens(recipient, &orcid.to_string(), person_id, &wire)?;
    Ok(SealedToken::from_sealed_bytes(&bytes))
}

/// A new hand-off key pair: the private key as `vault.handoff_keys` wants it (standard
/// base64; store it as a secret) and the public key to give the portal.
///
/// # Errors
/// [`HandoffError::Crypto`] when the crypto library fails.
pub fn generate_handoff_key() -> Result<(SecretString, VaultPublicKey), HandoffError> {
    let pair = VaultKeyPair::generate()?;
    Ok((pair.to_secret_base64()?, *pair.public_key()))
}

/// What the vault reads out of a hand-off.
pub(crate) struct OpenedTokens {
    pub(crate) access_token: AccessToken,
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) expires_in: Duration,
    pub(crate) scope: Option<String>,
    pub(crate) orcid: Option<String>,
    pub(crate) name: Option<String>,
}

/// Opens the event's sealed token with the vault's hand-off keys.
pub(crate) fn open(keys: &HandoffKeys, event: &IdConnected) -> Result<OpenedTokens, HandoffError> {
    let bytes = event.sealed_token.sealed_bytes().map_err(|_| {
        HandoffError::Crypto(idbridge_crypto::CryptoError::Malformed(
            "sealed_token is not base64",
        ))
    })?;
    let wire = idbridge_crypto::handoff::open_tokens(
        keys,
        &event.key_id,
        &event.orcid.to_string(),
        &event.person_id,
        &bytes,
    )?;
    if let Some(kind) = &wire.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(HandoffError::NotATokenResponse(
            "token_type is not bearer".to_owned(),
        ));
    }
    Ok(OpenedTokens {
        access_token: AccessToken::from(wire.access_token),
        refresh_token: wire.refresh_token.map(RefreshToken::from),
        expires_in: wire
            .expires_in
            .filter(|s| *s > 0)
            .map_or(ORCID_DEFAULT_EXPIRES_IN, Duration::from_secs),
        scope: wire.scope,
        orcid: wire.orcid,
        name: wire.name,
    })
}
