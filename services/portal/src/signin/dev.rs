//! The development sign-in: a form that accepts any person id. It exists only while the
//! portal runs on loopback (the embedded defaults); configuration validation refuses it
//! anywhere else, and the route answers 404 when another method is configured.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::config::SigninMethod;
use crate::csrf;
use crate::pages::PageError;
use crate::session::{self, SessionUser};
use crate::state::{AppState, see_other};

#[derive(Deserialize)]
pub(crate) struct DevForm {
    csrf: Option<String>,
    person_id: Option<String>,
    name: Option<String>,
    email: Option<String>,
    admin: Option<String>,
}

/// Whether the TCP peer is on this machine (a loopback address). No forwarding header
/// is believed: a proxy in front makes every caller remote, which is the point.
fn caller_is_local(req: &HttpRequest) -> bool {
    req.peer_addr().is_some_and(|a| {
        let ip = a.ip();
        ip.is_loopback() || ip.to_canonical().is_loopback()
    })
}

/// `POST /signin/dev`.
pub(crate) async fn sign_in(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<DevForm>,
) -> Result<HttpResponse, PageError> {
    if state.config.portal.signin.method != SigninMethod::Dev || !state.config.is_loopback() {
        return Err(state.error(
            &session,
            None,
            StatusCode::NOT_FOUND,
            "not_found",
            "Page not found",
            "There is no such page.",
        ));
    }
    // Defence in depth beside configuration validation: only a caller on this machine.
    if !caller_is_local(&req) {
        tracing::warn!(
            method = "dev",
            "dev sign-in refused to a non-loopback caller"
        );
        return Err(state.error(
            &session,
            None,
            StatusCode::FORBIDDEN,
            "dev_signin_remote",
            "Sign-in refused",
            "The development sign-in only accepts requests from this machine.",
        ));
    }
    if !csrf::verify(&session, form.csrf.as_deref()) {
        return Err(super::csrf_error(&state, &session));
    }
    let person_id = form.person_id.as_deref().unwrap_or("").trim().to_owned();
    if person_id.is_empty() || person_id.len() > 255 {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::BAD_REQUEST,
            "person_id_missing",
            "Person id needed",
            "Enter a person id of 1 to 255 characters.",
            Some(("/signin", "Back to sign-in")),
        ));
    }
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = clean(&form.name);
    let (given_name, family_name) = match name.as_deref().and_then(|n| n.rsplit_once(' ')) {
        Some((g, f)) => (Some(g.to_owned()), Some(f.to_owned())),
        None => (name.clone(), None),
    };
    let user = SessionUser {
        admin: form.admin.is_some() || state.configured_admin(&person_id),
        person_id,
        name,
        given_name,
        family_name,
        email: clean(&form.email),
        signed_in_at: session::now(),
    }
    .capped();
    session::sign_in(&session, &user).map_err(|e| {
        state.error(
            &session,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "session",
            "Sign-in failed",
            &e,
        )
    })?;
    tracing::info!(method = "dev", "signed in");
    Ok(see_other("/me"))
}

#[cfg(test)]
mod tests {
    use super::caller_is_local;
    use actix_web::test::TestRequest;

    #[test]
    fn only_loopback_callers_are_local() {
        let at = |addr: &str| {
            caller_is_local(
                &TestRequest::default()
                    .peer_addr(addr.parse().unwrap())
                    .to_http_request(),
            )
        };
        assert!(at("127.0.0.1:5000"));
        assert!(at("[::1]:5000"));
        assert!(at("[::ffff:127.0.0.1]:5000"));
        assert!(!at("10.0.0.7:5000"));
        assert!(!at("192.168.1.20:5000"));
        assert!(!at("[2001:db8::1]:5000"));
        assert!(!caller_is_local(&TestRequest::default().to_http_request()));
    }
}
