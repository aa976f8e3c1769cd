//! The portal → vault token hand-off: ORCID's token response sealed to the vault's hand-off
//! key ([`crate::hpke`]), bound to the "iD connected" event it travels in.
//!
//! Format, version 1 (the event's `sealed_token` is the standard base64 of `bytes`):
//!
//! ```text
//! bytes      = SealedBox::to_bytes = 0x01 ‖ enc (32 bytes) ‖ ciphertext (with its 16-byte tag)
//! HPKE       = RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
//! info       = "idbridge token hand-off v1"
//! aad        = lp("idbridge/id-connected/v1") ‖ lp(orcid) ‖ lp(person_id)
//! lp(x)      = u32 big-endian length of x ‖ x
//! plaintext  = ORCID's token response JSON:
//!              {"access_token","token_type":"bearer","refresh_token","expires_in","scope","name","orcid"}
//! ```
//!
//! The iD (`0000-0002-1825-0097` form) and the person id in the AAD mean a box lifted from one
//! event and replayed in another (for another iD or person) does not open.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::hpke::{HandoffKeys, SealedBox, VaultPublicKey, seal_to};

/// HPKE `info` of the hand-off.
pub const INFO: &[u8] = b"idbridge token hand-off v1";
/// First field of the AAD: names the event the box belongs to.
const AAD_LABEL: &[u8] = b"idbridge/id-connected/v1";

/// Sealing or opening a hand-off failed. Never carries token text.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The event names a hand-off key the vault does not hold.
    #[error(
        "the token was sealed to hand-off key '{key_id}', which this vault does not hold; add its private key to vault.handoff_keys, then replay the message"
    )]
    UnknownKey {
        /// The key id from the event.
        key_id: String,
    },
    /// HPKE refused the box (tampered, sealed to another key, moved to another event), or
    /// the bytes are not a sealed box.
    #[error("the hand-off could not be opened: {0}")]
    Crypto(#[from] CryptoError),
    /// The plaintext is not a token response (or could not be written as one).
    #[error("the hand-off does not hold a token response ({0})")]
    NotATokenResponse(String),
}

/// The AAD binding a box to its event: `lp(label) ‖ lp(orcid) ‖ lp(person_id)`.
#[must_use]
pub fn aad(orcid: &str, person_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + orcid.len() + person_id.len());
    for field in [AAD_LABEL, orcid.as_bytes(), person_id.as_bytes()] {
        // Fields are short (an iD, a person id of at most 255 characters); saturating keeps a
        // pathological field from wrapping, and such a box simply fails to open.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// ORCID's token response, as it travels inside the box. `Debug` shows no token.
#[derive(Deserialize)]
pub struct HandoffTokens {
    /// The access token.
    pub access_token: SecretString,
    /// `bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The refresh token, when ORCID gave one.
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// Seconds the access token lives, as ORCID stated it.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Granted scopes, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// The researcher's public name.
    #[serde(default)]
    pub name: Option<String>,
    /// The researcher's iD.
    #[serde(default)]
    pub orcid: Option<String>,
}

impl fmt::Debug for HandoffTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandoffTokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("orcid", &self.orcid)
            .finish_non_exhaustive()
    }
}

/// [`HandoffTokens`] with the secrets exposed, serialized only into a zeroized buffer that
/// is sealed at once.
#[derive(Serialize)]
struct Exposed<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    orcid: Option<&'a str>,
}

/// Portal side: seals `tokens` to the vault key `recipient`, bound to the event's `orcid`
/// and `person_id`. Returns [`SealedBox::to_bytes`] (base64 it into the event).
///
/// # Errors
/// [`HandoffError::Crypto`] when the crypto library fails.
pub fn seal_tokens(
    recipient: &VaultPublicKey,
    orcid: &str,
    person_id: &str,
    tokens: &HandoffTokens,
) -> Result<Vec<u8>, HandoffError> {
    let exposed = Exposed {
        access_token: tokens.access_token.expose_secret(),
        token_type: tokens.token_type.as_deref(),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(ExposeSecret::expose_secret),
        expires_in: tokens.expires_in,
        scope: tokens.scope.as_deref(),
        name: tokens.name.as_deref(),
        orcid: tokens.orcid.as_deref(),
    };
    let plaintext = Zeroizing::new(
        serde_json::to_vec(&exposed).map_err(|e| HandoffError::NotATokenResponse(e.to_string()))?,
    );
    let sealed = seal_to(recipient, INFO, &aad(orcid, person_id), &plaintext)?;
    Ok(sealed.to_bytes())
}

/// Vault side: opens `sealed` (the bytes of [`seal_tokens`]) with the hand-off key `key_id`,
/// for the event's `orcid` and `person_id`.
///
/// # Errors
/// [`HandoffError::UnknownKey`], [`HandoffError::Crypto`] (malformed, tampered, another
/// event's box), [`HandoffError::NotATokenResponse`] (the position of a JSON error only,
/// never the text around it).
pub fn open_tokens(
    keys: &HandoffKeys,
    key_id: &str,
    orcid: &str,
    person_id: &str,
    sealed: &[u8],
) -> Result<HandoffTokens, HandoffError> {
    let pair = keys.get(key_id).ok_or_else(|| HandoffError::UnknownKey {
        key_id: key_id.to_owned(),
    })?;
    let sealed = SealedBox::from_bytes(sealed)?;
    let plaintext = pair.open(&sealed, INFO, &aad(orcid, person_id))?;
    serde_json::from_slice(plaintext.expose_secret()).map_err(|e| {
        HandoffError::NotATokenResponse(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}
