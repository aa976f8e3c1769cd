//! What the session cookie holds (never a token): who signed in, the CSRF token, the pending
//! ORCID `state` and the pending OpenID Connect sign-in.

use actix_session::Session;
use serde::{Deserialize, Serialize};

/// Session keys.
pub(crate) const USER: &str = "user";
pub(crate) const CSRF: &str = "csrf";
pub(crate) const ORCID_STATE: &str = "orcid_state";
pub(crate) const OIDC_PENDING: &str = "oidc_pending";
pub(crate) const RECENT: &str = "recent_connect";

/// The signed-in person.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SessionUser {
    /// The institution's stable id of the person.
    pub person_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Given names (pre-fill).
    pub given_name: Option<String>,
    /// Family name (pre-fill).
    pub family_name: Option<String>,
    /// E-mail (pre-fill).
    pub email: Option<String>,
    /// Administrator.
    pub admin: bool,
    /// Unix seconds.
    pub signed_in_at: i64,
}

/// The most bytes a free-text field (name, given/family name, e-mail) keeps in the
/// session cookie; longer values from an identity provider, proxy header or the dev
/// form are cut at a character boundary so the cookie stays well under 4 KB.
pub(crate) const MAX_FIELD_BYTES: usize = 256;

/// `value` cut to at most [`MAX_FIELD_BYTES`] bytes, on a character boundary.
pub(crate) fn cap_field(value: &str) -> &str {
    if value.len() <= MAX_FIELD_BYTES {
        return value;
    }
    let mut end = MAX_FIELD_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

impl SessionUser {
    /// This user with every free-text field cut to [`MAX_FIELD_BYTES`].
    pub(crate) fn capped(mut self) -> Self {
        for field in [
            &mut self.name,
            &mut self.given_name,
            &mut self.family_name,
            &mut self.email,
        ] {
            if let Some(v) = field.as_mut() {
                let cut = cap_field(v).len();
                v.truncate(cut);
            }
        }
        self
    }

    /// The name to show.
    pub(crate) fn display_name(&self) -> String {
        self.name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.person_id.clone())
    }
}

/// An ORCID authorization in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PendingState {
    pub state: String,
    pub expires_at: i64,
}

/// An OpenID Connect sign-in in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PendingOidc {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub expires_at: i64,
}

/// A connection made in this session that the vault may not list yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RecentConnect {
    pub orcid: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub at: i64,
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The signed-in user, unless the sign-in is older than `ttl_secs` (then the session is
/// cleared).
pub(crate) fn user(session: &Session, ttl_secs: u64) -> Option<SessionUser> {
    let user: SessionUser = session.get(USER).ok().flatten()?;
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
    if now().saturating_sub(user.signed_in_at) > ttl {
        session.purge();
        return None;
    }
    Some(user)
}

/// Starts a fresh session for `user` (a new cookie; nothing from before the sign-in is kept).
pub(crate) fn sign_in(session: &Session, user: &SessionUser) -> Result<(), String> {
    session.clear();
    session.renew();
    session
        .insert(USER, user.clone().capped())
        .map_err(|_| "the session could not be written".to_owned())
}

/// 32 random bytes, base64url.
pub(crate) fn random_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    // The generator failing is not recoverable; an all-zero token would be guessable, so
    // mix in a v4 UUID (itself from the OS generator) if it ever does.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let a = uuid::Uuid::new_v4();
        let b = uuid::Uuid::new_v4();
        bytes[..16].copy_from_slice(a.as_bytes());
        bytes[16..].copy_from_slice(b.as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time equality of two strings.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_on_a_character_boundary() {
        let long = "é".repeat(300); // 600 bytes
        let user = SessionUser {
            person_id: "P".to_owned(),
            name: Some(long.clone()),
            given_name: Some("x".repeat(1000)),
            family_name: None,
            email: Some("a@b.example".to_owned()),
            admin: false,
            signed_in_at: now(),
        }
        .capped();
        let name = user.name.unwrap();
        assert_eq!(name.len(), MAX_FIELD_BYTES);
        assert!(name.chars().all(|c| c == 'é'));
        assert_eq!(user.given_name.unwrap().len(), MAX_FIELD_BYTES);
        assert_eq!(user.email.as_deref(), Some("a@b.example"));
        assert_eq!(
            cap_field(&"€".repeat(100)).len(),
            255,
            "3-byte chars: 85 fit"
        );
    }
}
