//! Failures for administrators: parked (dead-lettered) messages of the configured services
//! with replay, items the writer could not write, and one item's attempt history.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bus::parking::Selection;
use serde::{Deserialize, Serialize};

use crate::csrf;
use crate::items::{Item, ItemFilter};
use crate::pages::{
    FailedItemRow, FailuresPage, ItemPageView, PageError, ParkedRow, ParkedService, render,
};
use crate::routes::admin::require_admin;
use crate::signin::csrf_error;
use crate::state::{AppState, see_other};

/// The writer's item states that are failures.
const FAILED_STATES: [&str; 2] = ["error", "denied"];

/// Parked messages listed per service.
const PARKED_LIMIT: usize = 200;

/// One failure in the report: a parked message or a failed item.
#[derive(Serialize)]
pub(crate) struct FailureRow {
    kind: &'static str,
    service: String,
    id: String,
    message_type: String,
    person_id: String,
    reason: String,
    at: String,
    attempts: u64,
}

async fn parked(state: &AppState) -> Vec<ParkedService> {
    let mut out = Vec::new();
    for name in &state.config.portal.parked_services {
        match state.bus.parked(name, PARKED_LIMIT).await {
            Ok(messages) => out.push(ParkedService {
                name: name.clone(),
                error: None,
                messages: messages
                    .into_iter()
                    .map(|m| ParkedRow {
                        id: m.message_id.unwrap_or_default(),
                        message_type: m.message_type.unwrap_or_default(),
                        // The reason, never the body (it may hold personal data).
                        reason: m.reason.chars().take(500).collect(),
                        parked_at: m
                            .parked_at
                            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default(),
                        attempts: m.attempts,
                    })
                    .collect(),
            }),
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "cannot list parked messages");
                out.push(ParkedService {
                    name: name.clone(),
                    error: Some("The parked messages cannot be read right now.".to_owned()),
                    messages: Vec::new(),
                });
            }
        }
    }
    out
}

async fn failed_items(state: &AppState) -> Result<Vec<Item>, String> {
    let Some(source) = &state.items else {
        return Err("Items are not available: portal.writer.url is not configured.".to_owned());
    };
    // The writer's failed states: `error` (gave up) and `denied` (ORCID refused the item).
    let mut all = Vec::new();
    for state in FAILED_STATES {
        let page = source
            .items(ItemFilter {
                state: Some(state),
                limit: 1000,
                ..ItemFilter::default()
            })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the writer did not list failed items");
                "The failed items cannot be read right now.".to_owned()
            })?;
        all.extend(page.items);
    }
    Ok(all)
}

#[derive(Deserialize)]
pub(crate) struct FailuresQuery {
    replayed: Option<usize>,
}

/// `GET /admin/failures`.
pub(crate) async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<FailuresQuery>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let services = parked(&state).await;
    let (failed, items_note) = match failed_items(&state).await {
        Ok(items) => (items, None),
        Err(note) => (Vec::new(), Some(note)),
    };
    Ok(render(
        StatusCode::OK,
        &FailuresPage {
            layout: state.layout("Failures", &session, Some(&user)),
            replayed: query.replayed,
            services,
            failed_items: failed
                .into_iter()
                .map(|i| FailedItemRow {
                    id: i.id,
                    person_id: i.person_id,
                    section: i.section,
                    attempts: i.attempts,
                    updated: i.updated_at.format("%Y-%m-%d %H:%M").to_string(),
                })
                .collect(),
            items_note,
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct ReplayForm {
    csrf: Option<String>,
    service: Option<String>,
    message_id: Option<String>,
}

/// `POST /admin/failures/replay`: one message (`message_id`) or all of a service's.
pub(crate) async fn replay(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<ReplayForm>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    if !csrf::verify(&session, form.csrf.as_deref()) {
        return Err(csrf_error(&state, &session));
    }
    let service = form.service.as_deref().unwrap_or("");
    if !state
        .config
        .portal
        .parked_services
        .iter()
        .any(|s| s == service)
    {
        return Err(state.error(
            &session,
            Some(&user),
            StatusCode::BAD_REQUEST,
            "unknown_service",
            "Unknown service",
            "Only the services in portal.parked_services can be replayed.",
        ));
    }
    let selection = match form.message_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => Selection::Ids(vec![id.to_owned()]),
        _ => Selection::All,
    };
    match state.bus.replay_parked(service, &selection).await {
        Ok(n) => {
            tracing::info!(
                service,
                replayed = n,
                "parked messages replayed by an administrator"
            );
            Ok(see_other(&format!("/admin/failures?replayed={n}")))
        }
        Err(e) => {
            tracing::warn!(service, error = %e, "replay failed");
            Err(state.error(
                &session,
                Some(&user),
                StatusCode::SERVICE_UNAVAILABLE,
                "replay_failed",
                "Replay failed",
                "The messages could not be put back right now. Please try again later.",
            ))
        }
    }
}

/// Every failure, for the report.
pub(crate) async fn report_rows(state: &AppState) -> Result<Vec<FailureRow>, String> {
    let mut rows = Vec::new();
    for service in parked(state).await {
        if let Some(e) = service.error {
            // Said in the report rather than left out silently.
            rows.push(FailureRow {
                kind: "unreadable",
                service: service.name.clone(),
                id: String::new(),
                message_type: String::new(),
                person_id: String::new(),
                reason: e,
                at: String::new(),
                attempts: 0,
            });
            continue;
        }
        for m in service.messages {
            rows.push(FailureRow {
                kind: "parked",
                service: service.name.clone(),
                id: m.id,
                message_type: m.message_type,
                person_id: String::new(),
                reason: m.reason,
                at: m.parked_at,
                attempts: u64::from(m.attempts),
            });
        }
    }
    if state.items.is_some() {
        for i in failed_items(state).await? {
            rows.push(FailureRow {
                kind: "item",
                service: "writer".to_owned(),
                id: i.id,
                message_type: i.section,
                person_id: i.person_id,
                reason: i.state.clone(),
                at: i.updated_at.to_rfc3339(),
                attempts: u64::try_from(i.attempts).unwrap_or(0),
            });
        }
    }
    Ok(rows)
}

/// `GET /admin/items/{id}`: an item and its attempts.
pub(crate) async fn item(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let Some(source) = &state.items else {
        return Err(state.error(
            &session,
            Some(&user),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Not available",
            "Items are not available: portal.writer.url is not configured.",
        ));
    };
    let id = path.into_inner();
    match source.history(&id).await {
        Ok(history) => Ok(render(
            StatusCode::OK,
            &ItemPageView {
                layout: state.layout("Item", &session, Some(&user)),
                put_code: history
                    .item
                    .put_code
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "none yet".to_owned()),
                item: history.item,
                attempts: history
                    .attempts
                    .into_iter()
                    .map(|a| {
                        (
                            a.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            a.action,
                            a.outcome,
                            a.http_status.map(|s| s.to_string()).unwrap_or_default(),
                            a.message.unwrap_or_default(),
                        )
                    })
                    .collect(),
            },
        )),
        Err(crate::items::ItemsError::Status { status: 404 | 400 }) => Err(state.error(
            &session,
            Some(&user),
            StatusCode::NOT_FOUND,
            "not_found",
            "No such item",
            "The writer has no item with this id.",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "the writer did not answer an item's history");
            Err(state.error(
                &session,
                Some(&user),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Not available right now",
                "The item's history cannot be read right now.",
            ))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ItemsQuery {
    person_id: Option<String>,
    state: Option<String>,
    after: Option<String>,
}

/// `GET /admin/items?person_id=&state=&after=`: every item's status, a page at a time.
pub(crate) async fn items(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<ItemsQuery>,
) -> Result<HttpResponse, PageError> {
    let user = match require_admin(&req, &session, &state).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let clean = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
    let (person_id, wanted) = (clean(&query.person_id), clean(&query.state));
    let after = clean(&query.after);
    let (items, next_after, note) = match &state.items {
        None => (
            Vec::new(),
            None,
            Some("Items are not available: portal.writer.url is not configured.".to_owned()),
        ),
        Some(source) => match source
            .items(ItemFilter {
                person_id: Some(person_id.as_str()).filter(|p| !p.is_empty()),
                state: Some(wanted.as_str()).filter(|s| !s.is_empty()),
                after: Some(after.as_str()).filter(|a| !a.is_empty()),
                limit: 200,
            })
            .await
        {
            Ok(page) => (page.items, page.next_after, None),
            Err(crate::items::ItemsError::Status { status: 400 }) => (
                Vec::new(),
                None,
                Some(
                    "The writer did not accept this search (is the status one it knows?)."
                        .to_owned(),
                ),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the writer did not list items");
                (
                    Vec::new(),
                    None,
                    Some("The items cannot be read right now.".to_owned()),
                )
            }
        },
    };
    Ok(render(
        StatusCode::OK,
        &crate::pages::AdminItemsPage {
            layout: state.layout("Items", &session, Some(&user)),
            person_id,
            state: wanted,
            items: items
                .into_iter()
                .map(|i| crate::pages::AdminItemRow {
                    put_code: i.put_code.map(|p| p.to_string()).unwrap_or_default(),
                    id: i.id,
                    person_id: i.person_id,
                    section: i.section,
                    state: i.state,
                    updated: i.updated_at.format("%Y-%m-%d %H:%M").to_string(),
                })
                .collect(),
            next_after,
            note,
        },
    ))
}
