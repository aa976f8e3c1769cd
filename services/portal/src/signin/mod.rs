//! Institutional sign-in: the sign-in page, sign-out, and the three methods.

pub(crate) mod dev;
pub(crate) mod header;
pub(crate) mod oidc;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::config::SigninMethod;
use crate::csrf;
use crate::pages::{PageError, SigninPage, render};
use crate::state::{AppState, see_other};

/// `GET /signin`.
pub(crate) async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if state.current_user(&req, &session)?.is_some() {
        return Ok(see_other("/me"));
    }
    let method = match state.config.portal.signin.method {
        SigninMethod::Dev => "dev",
        SigninMethod::Header => "header",
        SigninMethod::Oidc => "oidc",
    };
    let status = if method == "header" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &SigninPage {
            layout: state.layout("Sign in", &session, None),
            method,
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: Option<String>,
}

/// `POST /signout`.
pub(crate) async fn sign_out(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    if !csrf::verify(&session, form.csrf.as_deref()) {
        return Err(csrf_error(&state, &session));
    }
    session.purge();
    Ok(see_other("/signin"))
}

/// The page for a form without a valid CSRF token.
pub(crate) fn csrf_error(state: &AppState, session: &Session) -> PageError {
    tracing::warn!("a form arrived without a valid CSRF token");
    state.error_with_retry(
        session,
        None,
        StatusCode::FORBIDDEN,
        "csrf",
        "This form has expired",
        "For your security the form could not be accepted: it is too old or did not come from this site. Go back, reload the page and try again.",
        Some(("/", "Start again")),
    )
}
