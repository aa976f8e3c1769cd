//! Sign-in by a header a trusted reverse proxy sets (a Shibboleth/SAML service provider,
//! oauth2-proxy): believed only from the configured proxy addresses.

use actix_session::Session;
use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use crate::pages::PageError;
use crate::session::{self, SessionUser};
use crate::state::AppState;

/// The person id the proxy's header names, when a header is present (trusted or not: the
/// caller then goes through [`sign_in_from_headers`], which refuses untrusted peers).
pub(crate) fn asserted_person_id(state: &AppState, req: &HttpRequest) -> Option<String> {
    let config = state.config.portal.signin.header.as_ref()?;
    req.headers()
        .get(config.person_id.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Signs in from the proxy's headers. `Ok(None)`: no header (the proxy did not
/// authenticate). An untrusted peer sending the header gets an error page.
pub(crate) fn sign_in_from_headers(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
) -> Result<Option<SessionUser>, PageError> {
    let Some(config) = &state.config.portal.signin.header else {
        return Ok(None);
    };
    let value = |name: &Option<String>| {
        name.as_deref().and_then(|n| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
    };
    let Some(person_id) = value(&Some(config.person_id.clone())) else {
        return Ok(None);
    };
    let trusted = req
        .peer_addr()
        .is_some_and(|peer| config.trusted_proxies.contains(&peer.ip()));
    if !trusted {
        tracing::warn!(
            peer = ?req.peer_addr().map(|p| p.ip()),
            "a sign-in header arrived from an address that is not a trusted proxy; ignored"
        );
        return Err(state.error(
            session,
            None,
            StatusCode::FORBIDDEN,
            "untrusted_proxy",
            "Sign-in not accepted",
            "Your sign-in did not come through the institution's sign-in service. Open the portal through its usual address.",
        ));
    }
    if person_id.len() > 255 {
        return Ok(None);
    }
    let groups = value(&config.groups).unwrap_or_default();
    let in_admin_group = config
        .admin_group
        .as_deref()
        .is_some_and(|g| groups.split([',', ';']).map(str::trim).any(|x| x == g));
    let name = value(&config.name);
    let (given_name, family_name) = match name.as_deref().and_then(|n| n.rsplit_once(' ')) {
        Some((g, f)) => (Some(g.to_owned()), Some(f.to_owned())),
        None => (name.clone(), None),
    };
    let user = SessionUser {
        admin: in_admin_group || state.configured_admin(&person_id),
        person_id,
        name,
        given_name,
        family_name,
        email: value(&config.email),
        signed_in_at: session::now(),
    }
    .capped();
    session::sign_in(session, &user).map_err(|e| {
        state.error(
            session,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "session",
            "Sign-in failed",
            &e,
        )
    })?;
    tracing::info!(method = "header", "signed in");
    Ok(Some(user))
}
