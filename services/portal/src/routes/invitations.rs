//! Invitations for administrators: who was invited by e-mail to connect their iD (the
//! writer's `GET /api/v1/invitations`), counts by state, and "Resend" (`POST
//! /api/v1/invitations/{person_id}/resend`) with a notice saying what happened.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::csrf;
use crate::items::{Invitation, InvitationFilter, InvitationsError};
use crate::pages::{InvitationRow, InvitationsPage, PageError, render};
use crate::routes::admin::require_admin;
use crate::signin::csrf_error;
use crate::state::{AppState, see_other};

/// Invitations per page.
const PAGE_SIZE: u64 = 100;
/// At most this many invitations are read for a report.
const MAX_REPORT: usize = 100_000;
/// The states the writer knows, in the order the counts are shown.
pub(crate) const STATES: [&str; 5] = ["pending", "sent", "connected", "stopped", "failed"];
/// Where the outcome of the last resend waits for the next page (the session is a private
/// cookie).
const NOTICE_KEY: &str = "invitation_notice";

/// The outcome of a resend, shown once on the next page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Notice {
    /// `sent`, `already_connected`, `busy`, `mail_failed`, `not_found`, `disabled`, `unavailable`.
    pub outcome: String,
    /// What to tell the administrator.
    pub message: String,
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn clean(v: Option<&String>) -> String {
    v.map(|s| s.trim().to_owned()).unwrap_or_default()
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    person_id: Option<String>,
    offset: Option<u64>,
}

fn list_href(state: &str, person_id: &str, offset: u64) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !state.is_empty() {
        query.append_pair("state", state);
    }
    if !person_id.is_empty() {
        query.append_pair("person_id", person_id);
    }
    if offset > 0 {
        query.append_pair("offset", &offset.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        "/admin/invitations".to_owned()
    } else {
        format!("/admin/invitations?{query}")
    }
}

/// `GET /admin/invitations?state=&person_id=&offset=`.
pub(crate) async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let wanted = clean(query.state.as_ref());
    let person_id = clean(query.person_id.as_ref());
    let offset = query.offset.unwrap_or(0);
    let notice = session.remove_as::<Notice>(NOTICE_KEY).and_then(Result::ok);
    let mut view = InvitationsPage {
        layout: state.layout("Invitations", &session, Some(&user)),
        state: wanted.clone(),
        person_id: person_id.clone(),
        states: STATES.iter().map(|s| (*s).to_owned()).collect(),
        counts: Vec::new(),
        rows: Vec::new(),
        disabled: false,
        note: None,
        notice,
        next_href: None,
        previous_href: None,
    };
    match &state.invitations {
        None => {
            view.note = Some(
                "Invitations are not available: portal.writer.url is not configured.".to_owned(),
            );
        }
        Some(source) => match source
            .invitations(InvitationFilter {
                state: Some(wanted.as_str()).filter(|s| !s.is_empty()),
                person_id: Some(person_id.as_str()).filter(|p| !p.is_empty()),
                limit: PAGE_SIZE,
                offset,
            })
            .await
        {
            Ok(list) => {
                view.counts = STATES
                    .iter()
                    .map(|s| ((*s).to_owned(), list.counts.get(*s).copied().unwrap_or(0)))
                    .collect();
                view.rows = list.invitations.into_iter().map(row).collect();
                view.next_href = list
                    .next_offset
                    .map(|next| list_href(&wanted, &person_id, next));
                if offset > 0 {
                    view.previous_href = Some(list_href(
                        &wanted,
                        &person_id,
                        offset.saturating_sub(PAGE_SIZE),
                    ));
                }
            }
            Err(InvitationsError::Disabled) => view.disabled = true,
            Err(InvitationsError::Refused {
                status: 401 | 403, ..
            }) => {
                view.note = Some(
                    "The writer refused the portal's caller: give it the rights invitations:read and invitations:manage (portal.writer.caller_token)."
                        .to_owned(),
                );
            }
            Err(InvitationsError::Refused { status: 400, .. }) => {
                view.note = Some(
                    "The writer did not accept this search (is the state one it knows?)."
                        .to_owned(),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the writer did not list invitations");
                view.note = Some("The invitations cannot be read right now.".to_owned());
            }
        },
    }
    Ok(render(StatusCode::OK, &view))
}

fn row(i: Invitation) -> InvitationRow {
    // Only the path of this URL is used; an id that cannot be a segment gets no form.
    let resend_href = crate::items::url_with_id(
        "http://portal.invalid/",
        &["admin", "invitations"],
        &i.person_id,
        &["resend"],
    )
    .map(|u| u.path().to_owned())
    .unwrap_or_default();
    InvitationRow {
        resendable: i.state != "connected" && !resend_href.is_empty(),
        resend_href,
        person_id: i.person_id,
        name: i.display_name,
        email: i.email,
        state: i.state,
        sent: i.sent_count,
        reminders: i.reminders_sent,
        last_sent: when(i.last_sent_at),
        next_reminder: when(i.next_reminder_at),
        last_error: i.last_error.unwrap_or_default(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ResendForm {
    csrf: Option<String>,
    /// The list's filters, to go back to the same view.
    state: Option<String>,
    filter_person_id: Option<String>,
}

/// `POST /admin/invitations/{person_id}/resend` (CSRF): sends the invitation again, then back
/// to the list with a notice.
pub(crate) async fn resend(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ResendForm>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    if !csrf::verify(&session, form.csrf.as_deref()) {
        return Err(csrf_error(&state, &session));
    }
    let person_id = path.into_inner();
    let notice = match &state.invitations {
        None => Notice {
            outcome: "unavailable".to_owned(),
            message: "Invitations are not available: portal.writer.url is not configured."
                .to_owned(),
        },
        Some(source) => match source.resend(&person_id).await {
            Ok(invitation) => {
                tracing::info!(
                    admin = %user.person_id,
                    person_id = %person_id,
                    "invitation resent by an administrator"
                );
                Notice {
                    outcome: "sent".to_owned(),
                    message: format!(
                        "Invitation sent again to {} ({}).",
                        person_id, invitation.email
                    ),
                }
            }
            Err(e) => refused(&person_id, e),
        },
    };
    if session.insert(NOTICE_KEY, &notice).is_err() {
        tracing::warn!("the resend notice could not be kept in the session");
    }
    Ok(see_other(&list_href(
        &clean(form.state.as_ref()),
        &clean(form.filter_person_id.as_ref()),
        0,
    )))
}

fn refused(person_id: &str, e: InvitationsError) -> Notice {
    let (outcome, message) = match e {
        InvitationsError::Disabled => (
            "disabled",
            "Invitations are disabled at the writer (writer.invitations.enabled = false): nothing was sent."
                .to_owned(),
        ),
        InvitationsError::Refused { code, message, .. } => match code.as_str() {
            "already_connected" => (
                "already_connected",
                format!("{person_id} has already connected their ORCID iD: nothing was sent."),
            ),
            "busy" => (
                "busy",
                format!(
                    "An e-mail to {person_id} is being sent right now: nothing more was sent. Try again in a moment."
                ),
            ),
            "mail_failed" => (
                "mail_failed",
                format!("The e-mail to {person_id} could not be sent: {message}"),
            ),
            "not_found" => (
                "not_found",
                format!("Nobody was invited with the person id {person_id}."),
            ),
            _ => {
                tracing::warn!(%code, "the writer refused a resend");
                (
                    "unavailable",
                    format!("The writer refused to resend ({code}): {message}"),
                )
            }
        },
        InvitationsError::Transport(e) => {
            tracing::warn!(error = %e, "the writer did not answer a resend");
            (
                "unavailable",
                "The writer cannot be reached right now: nothing was sent. Please try again later."
                    .to_owned(),
            )
        }
    };
    Notice {
        outcome: outcome.to_owned(),
        message,
    }
}

/// One row of the invitations report.
#[derive(Serialize)]
pub(crate) struct InvitationReportRow {
    person_id: String,
    display_name: String,
    email: String,
    state: String,
    sent_count: u32,
    reminders_sent: u32,
    last_sent_at: String,
    next_reminder_at: String,
    last_error: String,
    created_at: String,
    connected_at: String,
}

/// Every invitation, for the report. `Err`: what to say (disabled, not configured, down).
pub(crate) async fn report_rows(state: &AppState) -> Result<Vec<InvitationReportRow>, String> {
    let Some(source) = &state.invitations else {
        return Err("The invitations (portal.writer.url is not configured)".to_owned());
    };
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let page = source
            .invitations(InvitationFilter {
                limit: 1000,
                offset,
                ..InvitationFilter::default()
            })
            .await
            .map_err(|e| match e {
                InvitationsError::Disabled => "The invitations (disabled at the writer)".to_owned(),
                other => {
                    tracing::warn!(error = %other, "the writer did not list invitations");
                    "The invitations".to_owned()
                }
            })?;
        rows.extend(page.invitations.into_iter().map(|i| {
            InvitationReportRow {
                person_id: i.person_id,
                display_name: i.display_name,
                email: i.email,
                state: i.state,
                sent_count: i.sent_count,
                reminders_sent: i.reminders_sent,
                last_sent_at: i.last_sent_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                next_reminder_at: i
                    .next_reminder_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                last_error: i.last_error.unwrap_or_default(),
                created_at: i.created_at.to_rfc3339(),
                connected_at: i.connected_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            }
        }));
        match page.next_offset {
            Some(next) if rows.len() < MAX_REPORT && next > offset => offset = next,
            _ => return Ok(rows),
        }
    }
}
