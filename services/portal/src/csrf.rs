//! CSRF tokens: one random token per session, in a hidden field of every form, compared in
//! constant time on every POST.

use actix_session::Session;

use crate::session::{CSRF, random_token, same};

/// The session's CSRF token (made on first use).
pub(crate) fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF) {
        return token;
    }
    let token = random_token();
    // A session that cannot be written gets a token that will not verify: the form fails
    // closed.
    let _ = session.insert(CSRF, &token);
    token
}

/// Whether `submitted` is the session's token.
pub(crate) fn verify(session: &Session, submitted: Option<&str>) -> bool {
    match (session.get::<String>(CSRF).ok().flatten(), submitted) {
        (Some(expected), Some(given)) => !given.is_empty() && same(&expected, given),
        _ => false,
    }
}
