//! Connecting an iD: the connect page, the start of ORCID's OAuth (a `state` bound to the
//! session, single-use, expiring), and the callback (code exchange, sealed hand-off,
//! "iD connected" in the outbox), with the deny and error pages.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bus::OutgoingMessage;
use bus::events::IdConnected;
use chrono::Utc;
use idbridge_crypto::VaultPublicKey;
use orcid::client::UserTokens;
use sea_orm::TransactionTrait;
use serde::Deserialize;
use token_vault::client::ConnectionState;

use crate::pages::{ConnectPage, DenyPage, PageError, render, scope_words};
use crate::session::{self, ORCID_STATE, PendingState, RECENT, RecentConnect, SessionUser, same};
use crate::state::{AppState, see_other};

/// `GET /connect`.
pub(crate) async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some(user) = state.current_user(&req, &session)? else {
        return Ok(see_other("/signin"));
    };
    let already_connected = state
        .vault
        .connections(
            Some(&user.person_id),
            Some(ConnectionState::Active),
            None,
            Some(1),
        )
        .await
        .map(|page| !page.connections.is_empty())
        .unwrap_or(false);
    let institution = &state.config.portal.institution;
    Ok(render(
        StatusCode::OK,
        &ConnectPage {
            layout: state.layout("Connect your ORCID iD", &session, Some(&user)),
            what: institution.what.clone(),
            why: institution.why.clone(),
            how: institution.how.clone(),
            scopes: state
                .scopes
                .iter()
                .map(|s| (s.as_str().to_owned(), scope_words(s.as_str())))
                .collect(),
            already_connected,
        },
    ))
}

/// `GET /connect/orcid`: a fresh `state` in the session, then off to ORCID.
pub(crate) async fn start(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some(user) = state.current_user(&req, &session)? else {
        return Ok(see_other("/signin"));
    };
    let pending = PendingState {
        state: session::random_token(),
        expires_at: session::now()
            + i64::try_from(state.config.portal.state_ttl_secs).unwrap_or(600),
    };
    session.insert(ORCID_STATE, &pending).map_err(|_| {
        state.error(
            &session,
            Some(&user),
            StatusCode::INTERNAL_SERVER_ERROR,
            "session",
            "Something went wrong",
            "Your session could not be updated. Please try again.",
        )
    })?;
    let mut request = state
        .orcid
        .authorize_url(state.redirect_uri.clone(), state.scopes.clone())
        .state(pending.state);
    if state.config.portal.prefill {
        if let Some(given) = &user.given_name {
            request = request.given_names(given.clone());
        }
        if let Some(family) = &user.family_name {
            request = request.family_names(family.clone());
        }
        if let Some(email) = &user.email {
            request = request.email(email.clone());
        }
    }
    Ok(see_other(&request.to_url()))
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

const TRY_AGAIN: Option<(&str, &str)> = Some(("/connect", "Try again"));

/// `GET /orcid/callback`.
pub(crate) async fn callback(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(user) = state.current_user(&req, &session)? else {
        return Err(state.error_with_retry(
            &session,
            None,
            StatusCode::UNAUTHORIZED,
            "session_missing",
            "Your session has ended",
            "ORCID sent you back, but this browser is no longer signed in to the portal, so the connection was not made. Sign in and connect again.",
            Some(("/signin", "Sign in")),
        ));
    };
    let u = Some(&user);
    // Single use: whatever happens next, this state is spent.
    let pending: Option<PendingState> = session.remove_as(ORCID_STATE).and_then(Result::ok);
    let Some(pending) = pending else {
        return Err(state.error_with_retry(
            &session,
            u,
            StatusCode::BAD_REQUEST,
            "state_missing",
            "This link has already been used",
            "This answer from ORCID does not belong to a connection in progress in this browser: it was used already, or it was started elsewhere. Nothing was connected.",
            TRY_AGAIN,
        ));
    };
    if !query
        .state
        .as_deref()
        .is_some_and(|s| same(s, &pending.state))
    {
        tracing::warn!("ORCID callback with a state that does not match the session's");
        return Err(state.error_with_retry(
            &session,
            u,
            StatusCode::BAD_REQUEST,
            "state_mismatch",
            "Connection not accepted",
            "This answer from ORCID does not match the connection this browser started, so it was refused for your security. Nothing was connected.",
            TRY_AGAIN,
        ));
    }
    if pending.expires_at < session::now() {
        return Err(state.error_with_retry(
            &session,
            u,
            StatusCode::BAD_REQUEST,
            "state_expired",
            "The connection took too long",
            "The connection was started too long ago and has expired. Nothing was connected.",
            TRY_AGAIN,
        ));
    }
    if let Some(error) = query.error.as_deref() {
        if error == "access_denied" {
            return Ok(render(
                StatusCode::OK,
                &DenyPage {
                    layout: state.layout("ORCID iD not connected", &session, u),
                },
            ));
        }
        let description = query
            .error_description
            .as_deref()
            .unwrap_or("no description")
            .chars()
            .take(300)
            .collect::<String>();
        tracing::warn!(error = %error.chars().take(64).collect::<String>(), "ORCID answered the authorization with an error");
        return Err(state.error_with_retry(
            &session,
            u,
            StatusCode::BAD_REQUEST,
            "orcid_error",
            "ORCID could not connect your iD",
            &format!("ORCID reported a problem: {description}. Nothing was connected."),
            TRY_AGAIN,
        ));
    }
    let Some(code) = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 512)
    else {
        return Err(state.error_with_retry(
            &session,
            u,
            StatusCode::BAD_REQUEST,
            "code_missing",
            "ORCID could not connect your iD",
            "ORCID's answer has no authorization code. Nothing was connected.",
            TRY_AGAIN,
        ));
    };
    let tokens = match state.orcid.exchange_code(code, &state.redirect_uri).await {
        Ok(tokens) => tokens,
        Err(e) => {
            // Kind and status only: ORCID's description may quote the code.
            tracing::warn!(
                status = ?e.http_status(),
                retryable = e.is_retryable(),
                "ORCID refused or failed the code exchange"
            );
            return Err(state.error_with_retry(
                &session,
                u,
                StatusCode::BAD_GATEWAY,
                "exchange_failed",
                "ORCID could not connect your iD",
                "ORCID did not complete the connection (the authorization may have been used already or expired). Nothing was connected; please try again.",
                TRY_AGAIN,
            ));
        }
    };
    if let Err(e) = publish_connected(&state, &user, &tokens).await {
        tracing::error!(error = %e, "the connection could not be handed to the vault");
        return Err(state.error_with_retry(
            &session,
            u,
            StatusCode::SERVICE_UNAVAILABLE,
            "handoff_failed",
            "Your iD could not be saved",
            "ORCID accepted, but the portal could not save the connection. Please try again in a few minutes.",
            TRY_AGAIN,
        ));
    }
    let recent = RecentConnect {
        orcid: tokens.orcid.to_string(),
        name: tokens.name.clone(),
        scopes: tokens
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        at: session::now(),
    };
    let _ = session.insert(RECENT, &recent);
    tracing::info!(orcid = %tokens.orcid, "iD connected; hand-off recorded in the outbox");
    Ok(see_other("/me?connected=1"))
}

/// Why the hand-off failed (never quotes a token).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandoffFailure {
    #[error("the vault's hand-off key is unavailable: {0}")]
    Key(String),
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error("recording the event failed: {0}")]
    Outbox(String),
}

async fn handoff_key(state: &AppState) -> Result<(String, VaultPublicKey), HandoffFailure> {
    let mut cached = state.handoff.lock().await;
    if let Some((id, key, fetched)) = cached.as_ref()
        && fetched.is_none_or(|at| at.elapsed() < crate::state::HANDOFF_KEY_TTL)
    {
        return Ok((id.clone(), *key));
    }
    let answer = state
        .vault
        .handoff_key()
        .await
        .map_err(|e| HandoffFailure::Key(e.to_string()))?;
    let key: VaultPublicKey = answer
        .public_key
        .parse()
        .map_err(|e: idbridge_crypto::KeyLoadError| HandoffFailure::Key(e.to_string()))?;
    *cached = Some((answer.key_id.clone(), key, Some(std::time::Instant::now())));
    Ok((answer.key_id, key))
}

async fn publish_connected(
    state: &AppState,
    user: &SessionUser,
    tokens: &UserTokens,
) -> Result<(), HandoffFailure> {
    let (key_id, key) = handoff_key(state).await?;
    let sealed = token_vault::handoff::seal_tokens(&key, &tokens.orcid, &user.person_id, tokens)
        .map_err(|e| HandoffFailure::Seal(e.to_string()))?;
    let event = IdConnected {
        orcid: tokens.orcid,
        person_id: user.person_id.clone(),
        name: tokens.name.clone(),
        scopes: tokens
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        sealed_token: sealed,
        key_id,
        granted_at: Utc::now(),
    };
    let message =
        OutgoingMessage::event(&event).map_err(|e| HandoffFailure::Outbox(e.to_string()))?;
    let txn = state
        .db
        .begin()
        .await
        .map_err(|e| HandoffFailure::Outbox(e.to_string()))?;
    state
        .outbox
        .record(&txn, &message)
        .await
        .map_err(|e| HandoffFailure::Outbox(e.to_string()))?;
    txn.commit()
        .await
        .map_err(|e| HandoffFailure::Outbox(e.to_string()))?;
    state.waker.notify_one();
    Ok(())
}
