//! Tokens and what the token endpoint answers (reference §1.3).
//!
//! Every token is a [`SecretString`] inside a newtype whose `Debug` prints `[REDACTED]`; the
//! only way to the text is an explicit `expose_secret()`.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::scope::Scopes;
use crate::error::{Error, redact};
use crate::id::OrcidId;

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a token, e.g. one read back from storage.
            pub fn new(token: impl Into<String>) -> Self {
                $name(SecretString::from(token.into()))
            }

            /// The token text. Keep it out of logs, errors and spans.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl From<SecretString> for $name {
            fn from(secret: SecretString) -> Self {
                $name(secret)
            }
        }
    };
}

secret_newtype!(
    /// An OAuth access token, sent as `Authorization: Bearer`.
    AccessToken
);
secret_newtype!(
    /// An OAuth refresh token.
    RefreshToken
);
secret_newtype!(
    /// An OpenID Connect `id_token` (a signed JWT), returned when `openid` was granted.
    IdToken
);

pub(crate) mod sealed {
    /// Seals [`Revocable`](super::Revocable).
    pub trait Sealed {
        /// The token text. The [`Key`] argument, which only this crate can make, keeps the
        /// method out of reach of other crates (a bound `T: Revocable` would otherwise let
        /// them call it).
        fn secret(&self, key: Key) -> &str;
    }

    /// Proof that the caller is this crate.
    pub struct Key(pub(super) ());

    impl Sealed for super::AccessToken {
        fn secret(&self, _: Key) -> &str {
            self.expose_secret()
        }
    }

    impl Sealed for super::RefreshToken {
        fn secret(&self, _: Key) -> &str {
            self.expose_secret()
        }
    }
}

/// The text of a token to revoke.
pub(crate) fn revocable_secret<T: Revocable + ?Sized>(token: &T) -> &str {
    token.secret(sealed::Key(()))
}

/// A token `POST /oauth/revoke` accepts: an [`AccessToken`] or a [`RefreshToken`]. Revoking
/// either one kills the pair.
pub trait Revocable: sealed::Sealed {}

impl Revocable for AccessToken {}

impl Revocable for RefreshToken {}

/// The tokens a user granted: the answer to a code exchange or a refresh.
#[derive(Debug, Clone)]
pub struct UserTokens {
    /// The user's iD.
    pub orcid: OrcidId,
    /// The record's public display name, when public.
    pub name: Option<String>,
    /// The scopes granted (may differ from those asked).
    pub scopes: Scopes,
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token (ORCID issues one with every code exchange and refresh).
    pub refresh_token: Option<RefreshToken>,
    /// The access token's lifetime as ORCID stated it (usually about 20 years); `None` when
    /// the answer stated none (then the lifetime is unknown, not zero).
    pub expires_in: Option<Duration>,
    /// When this answer was received; with `expires_in`, when the token expires.
    pub received_at: SystemTime,
    /// The OpenID Connect `id_token`, when `openid` was granted.
    pub id_token: Option<IdToken>,
}

impl UserTokens {
    /// When the access token expires; `None` when ORCID stated no lifetime (or one too
    /// large to represent).
    pub fn expires_at(&self) -> Option<SystemTime> {
        expiry(self.received_at, self.expires_in)
    }
}

/// A client-credentials token (`/read-public`, `/webhook`, …): one token for every record;
/// ORCID asks integrators to keep it rather than ask for one per call.
#[derive(Debug, Clone)]
pub struct ClientToken {
    /// The scopes granted.
    pub scopes: Scopes,
    /// The access token.
    pub access_token: AccessToken,
    /// The token's lifetime as ORCID stated it; `None` when the answer stated none (then
    /// the lifetime is unknown, not zero).
    pub expires_in: Option<Duration>,
    /// When this answer was received.
    pub received_at: SystemTime,
}

impl ClientToken {
    /// When the token expires; `None` when ORCID stated no lifetime (or one too large to
    /// represent).
    pub fn expires_at(&self) -> Option<SystemTime> {
        expiry(self.received_at, self.expires_in)
    }
}

fn expiry(received_at: SystemTime, expires_in: Option<Duration>) -> Option<SystemTime> {
    received_at.checked_add(expires_in?)
}

/// The token endpoint's JSON. Not `Debug`: it holds the tokens in the clear.
#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    orcid: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A parsed token answer, before deciding whether it is a user's or a client's.
pub(crate) struct TokenAnswer {
    orcid: Option<OrcidId>,
    name: Option<String>,
    scopes: Scopes,
    access_token: AccessToken,
    refresh_token: Option<RefreshToken>,
    expires_in: Option<Duration>,
    id_token: Option<IdToken>,
    received_at: SystemTime,
}

/// Parses a 2xx token answer. Errors never quote the body: it holds tokens.
pub(crate) fn parse_token_answer(status: u16, body: &[u8]) -> Result<TokenAnswer, Error> {
    let raw: RawTokenResponse =
        serde_json::from_slice(body).map_err(|e| Error::UnexpectedResponse {
            status,
            reason: format!(
                "the token answer is not ORCID's token JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
            excerpt: String::new(),
        })?;
    if let Some(kind) = raw.token_type.as_deref()
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(Error::UnexpectedResponse {
            status,
            reason: format!(
                "token_type is `{}`, not bearer",
                redact(kind, &[&raw.access_token])
            ),
            excerpt: String::new(),
        });
    }
    let orcid = match raw
        .orcid
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => Some(OrcidId::parse(text).map_err(|e| Error::UnexpectedResponse {
            status,
            reason: format!("the token answer's orcid is not an iD: {e}"),
            excerpt: String::new(),
        })?),
    };
    Ok(TokenAnswer {
        orcid,
        name: raw.name.filter(|n| !n.trim().is_empty()),
        scopes: raw.scope.as_deref().map(Scopes::parse).unwrap_or_default(),
        access_token: AccessToken::new(raw.access_token),
        refresh_token: raw.refresh_token.map(RefreshToken::new),
        expires_in: raw.expires_in.map(Duration::from_secs),
        id_token: raw.id_token.map(IdToken::new),
        received_at: SystemTime::now(),
    })
}

impl TokenAnswer {
    /// A user's tokens: the answer must name the record.
    pub(crate) fn into_user_tokens(self, status: u16) -> Result<UserTokens, Error> {
        let Some(orcid) = self.orcid else {
            return Err(Error::UnexpectedResponse {
                status,
                reason: "the token answer names no ORCID iD (`orcid` is null or absent)".to_owned(),
                excerpt: String::new(),
            });
        };
        Ok(UserTokens {
            orcid,
            name: self.name,
            scopes: self.scopes,
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_in: self.expires_in,
            received_at: self.received_at,
            id_token: self.id_token,
        })
    }

    /// A client-credentials token (`orcid` null or absent; ignored if present).
    pub(crate) fn into_client_token(self) -> ClientToken {
        ClientToken {
            scopes: self.scopes,
            access_token: self.access_token,
            expires_in: self.expires_in,
            received_at: self.received_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("f5af9f51-07e6-4332-8f1a-c0c11c1e3728");
        assert_eq!(format!("{t:?}"), "AccessToken([REDACTED])");
        let r = RefreshToken::new("secret");
        assert_eq!(format!("{r:?}"), "RefreshToken([REDACTED])");
    }

    #[test]
    fn parses_orcid_token_json() {
        let body = br#"{"access_token":"f5af9f51-07e6-4332-8f1a-c0c11c1e3728",
            "token_type":"bearer","refresh_token":"f725f747-3a65-49f6-a231-3e8944ce464d",
            "expires_in":631138518,"scope":"/activities/update /read-limited",
            "name":"Sofia Garcia","orcid":"0000-0001-2345-6789"}"#;
        let t = parse_token_answer(200, body)
            .unwrap()
            .into_user_tokens(200)
            .unwrap();
        assert_eq!(t.orcid.to_string(), "0000-0001-2345-6789");
        assert_eq!(t.name.as_deref(), Some("Sofia Garcia"));
        assert_eq!(t.expires_in, Some(Duration::from_secs(631_138_518)));
        assert_eq!(
            t.expires_at(),
            Some(t.received_at + Duration::from_secs(631_138_518))
        );
        assert_eq!(t.scopes.len(), 2);
        let debug = format!("{t:?}");
        assert!(!debug.contains("f5af9f51"), "{debug}");
    }

    #[test]
    fn client_credentials_answer_has_no_orcid() {
        let body =
            br#"{"access_token":"1cecf036-0000-0000-0000-000000000000","token_type":"bearer",
            "refresh_token":"x","expires_in":631138518,"scope":"/read-public","orcid":null}"#;
        let answer = parse_token_answer(200, body).unwrap();
        assert!(answer.orcid.is_none());
        let t = answer.into_client_token();
        assert_eq!(t.scopes.to_string(), "/read-public");
    }

    #[test]
    fn a_missing_lifetime_is_unknown_not_zero() {
        let body =
            br#"{"access_token":"1cecf036-0000-0000-0000-000000000000","token_type":"bearer",
            "scope":"/read-public"}"#;
        let t = parse_token_answer(200, body).unwrap().into_client_token();
        assert_eq!(t.expires_in, None);
        assert_eq!(t.expires_at(), None);
    }

    #[test]
    fn broken_answer_does_not_quote_the_body() {
        let err = parse_token_answer(200, br#"{"access_token": 12, "x":"secret-ish"}"#)
            .err()
            .unwrap();
        assert!(!err.to_string().contains("secret-ish"));
    }
}
