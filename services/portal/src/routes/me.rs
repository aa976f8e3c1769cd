//! The researcher's page (the iD in ORCID's display format, status and scopes from the
//! vault, items from the writer) and disconnect (confirm, then the vault revokes at ORCID
//! and deletes the tokens). The iD is always the one the vault holds for the signed-in
//! person id: no form carries an iD.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use orcid::OrcidId;
use serde::Deserialize;
use token_vault::client::{Connection, ConnectionState};

use crate::csrf;
use crate::items::ItemFilter;
use crate::pages::{
    ConnectionView, DisconnectPage, ItemRow, MePage, PageError, render, scope_words,
};
use crate::session::{self, RECENT, RecentConnect};
use crate::signin::{CsrfForm, csrf_error};
use crate::state::{AppState, see_other};

/// How long a connection made in this session is shown as "being set up" while the vault
/// does not list it yet.
const RECENT_SECS: i64 = 600;

/// The person's connections, the active one first, then the latest.
async fn connection_of(state: &AppState, person_id: &str) -> Result<Option<Connection>, String> {
    let page = state
        .vault
        .connections(Some(person_id), None, None, Some(50))
        .await
        .map_err(|e| e.to_string())?;
    let mut all = page.connections;
    all.sort_by_key(|c| (c.state == ConnectionState::Active, c.granted_at));
    Ok(all.pop())
}

pub(crate) fn status_of(state: ConnectionState) -> (&'static str, &'static str) {
    match state {
        ConnectionState::Active => ("Connected", "active"),
        ConnectionState::Revoked => ("Permission revoked at ORCID", "ended"),
        ConnectionState::Expired => ("Permission expired", "ended"),
        ConnectionState::Disconnected => ("Disconnected", "ended"),
    }
}

pub(crate) fn item_class(state: &str) -> &'static str {
    match state {
        "in_orcid" => "active",
        "error" | "denied" => "failed",
        "revoked" | "deleted_by_user" | "deleted" => "ended",
        _ => "pending",
    }
}

/// The writer's item states in the researcher's words.
pub(crate) fn item_label(state: &str) -> String {
    match state {
        "pending" => "Waiting to be added",
        "in_orcid" => "On your ORCID record",
        "error" => "Could not be added (we are looking into it)",
        "revoked" => "Waiting for your permission",
        "denied" => "Refused by ORCID",
        "deleted_by_user" => "You removed it from your record",
        "deleted" => "Removed",
        other => other,
    }
    .to_owned()
}

fn view_of(state: &AppState, c: &Connection) -> Option<ConnectionView> {
    let orcid = OrcidId::parse(&c.orcid).ok()?;
    let (label, class) = status_of(c.state);
    Some(ConnectionView {
        uri: state.orcid_uri(&orcid),
        state: c.state.as_str().to_owned(),
        status_label: label.to_owned(),
        status_class: class,
        active: c.state == ConnectionState::Active,
        name: c.name.clone(),
        scopes: c
            .scopes
            .iter()
            .map(|s| (s.clone(), scope_words(s)))
            .collect(),
        granted_at: Some(c.granted_at.format("%-d %B %Y").to_string()),
    })
}

#[derive(Deserialize)]
pub(crate) struct MeQuery {
    connected: Option<String>,
    disconnected: Option<String>,
}

/// `GET /me`.
pub(crate) async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<MeQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(user) = state.current_user(&req, &session)? else {
        return Ok(see_other("/signin"));
    };
    let mut status_note = None;
    let found = match connection_of(&state, &user.person_id).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "the vault did not answer the researcher page's listing");
            status_note = Some(
                "The connection status cannot be shown right now. Please try again later."
                    .to_owned(),
            );
            None
        }
    };
    let recent: Option<RecentConnect> = session
        .get(RECENT)
        .ok()
        .flatten()
        .filter(|r: &RecentConnect| session::now() - r.at < RECENT_SECS);
    let connection = match (found, recent) {
        (Some(c), _) if c.state == ConnectionState::Active => view_of(&state, &c),
        // Connected in this session, not listed by the vault yet (or only an older, ended
        // connection is).
        (found, Some(r))
            if found
                .as_ref()
                .is_none_or(|c| c.granted_at.timestamp() < r.at - 5) =>
        {
            OrcidId::parse(&r.orcid).ok().map(|orcid| ConnectionView {
                uri: state.orcid_uri(&orcid),
                state: "pending".to_owned(),
                status_label: "Being set up: this takes a few seconds".to_owned(),
                status_class: "pending",
                active: false,
                name: r.name.clone(),
                scopes: r
                    .scopes
                    .iter()
                    .map(|s| (s.clone(), scope_words(s)))
                    .collect(),
                granted_at: None,
            })
        }
        (Some(c), _) => view_of(&state, &c),
        (None, _) => None,
    };
    let (items, items_note) = match &state.items {
        None => (
            Vec::new(),
            Some("The list of items is not available here yet.".to_owned()),
        ),
        Some(source) => match source
            .items(ItemFilter {
                person_id: Some(&user.person_id),
                limit: 200,
                ..ItemFilter::default()
            })
            .await
        {
            Ok(page) => (
                page.items
                    .into_iter()
                    .map(|i| ItemRow {
                        status_class: item_class(&i.state),
                        id: i.id,
                        section: i.section,
                        label: if i.state == "in_orcid" && !i.current {
                            "On your ORCID record; an update is on its way".to_owned()
                        } else {
                            item_label(&i.state)
                        },
                        state: i.state,
                        updated: i.updated_at.format("%-d %B %Y").to_string(),
                    })
                    .collect(),
                None,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the writer did not answer the researcher page's items");
                (
                    Vec::new(),
                    Some("The list of items cannot be shown right now.".to_owned()),
                )
            }
        },
    };
    Ok(render(
        StatusCode::OK,
        &MePage {
            layout: state.layout("Your ORCID iD", &session, Some(&user)),
            connection,
            just_connected: query.connected.is_some(),
            just_disconnected: query.disconnected.is_some(),
            status_note,
            items,
            items_note,
        },
    ))
}

/// `GET /disconnect`: the confirmation.
pub(crate) async fn confirm(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let Some(user) = state.current_user(&req, &session)? else {
        return Ok(see_other("/signin"));
    };
    let active = connection_of(&state, &user.person_id)
        .await
        .ok()
        .flatten()
        .filter(|c| c.state == ConnectionState::Active);
    let Some(orcid) = active.and_then(|c| OrcidId::parse(&c.orcid).ok()) else {
        return Ok(see_other("/me"));
    };
    Ok(render(
        StatusCode::OK,
        &DisconnectPage {
            layout: state.layout("Disconnect your ORCID iD", &session, Some(&user)),
            uri: state.orcid_uri(&orcid),
        },
    ))
}

/// `POST /disconnect`.
pub(crate) async fn disconnect(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let Some(user) = state.current_user(&req, &session)? else {
        return Ok(see_other("/signin"));
    };
    if !csrf::verify(&session, form.csrf.as_deref()) {
        return Err(csrf_error(&state, &session));
    }
    let unavailable = |state: &AppState| {
        state.error_with_retry(
            &session,
            Some(&user),
            StatusCode::SERVICE_UNAVAILABLE,
            "disconnect_failed",
            "Your iD could not be disconnected",
            "The disconnection did not go through (ORCID or the portal's services are unavailable). Your iD is still connected; please try again in a few minutes.",
            Some(("/me", "Back to your ORCID iD")),
        )
    };
    let active = match connection_of(&state, &user.person_id).await {
        Ok(found) => found.filter(|c| c.state == ConnectionState::Active),
        Err(e) => {
            tracing::warn!(error = %e, "the vault did not answer before a disconnect");
            return Err(unavailable(&state));
        }
    };
    let Some(orcid) = active.and_then(|c| OrcidId::parse(&c.orcid).ok()) else {
        return Ok(see_other("/me"));
    };
    if let Err(e) = state
        .vault
        .disconnect(&orcid, "disconnected by the researcher in the portal")
        .await
    {
        tracing::warn!(error = %e, "the vault could not disconnect");
        return Err(unavailable(&state));
    }
    let _ = session.remove(RECENT);
    tracing::info!(orcid = %orcid, "disconnected by the researcher");
    Ok(see_other("/me?disconnected=1"))
}
