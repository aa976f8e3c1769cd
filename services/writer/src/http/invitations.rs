//! Invitations for the portal's admin page and the CLI: the list with counts per state, and
//! resend. Answered `404 invitations_disabled` when `writer.invitations.enabled` is false.

use actix_web::{HttpResponse, web};
use invitations::{InvitationError, InvitationState, Invitations, ListFilter};
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use crate::api::{InvitationList, InvitationView, Right};

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

/// The writer's invitations, when enabled.
#[derive(Clone, Default)]
pub(crate) struct InvitationsApi(pub(crate) Option<Invitations>);

impl InvitationsApi {
    fn get(&self) -> Result<&Invitations, ApiError> {
        self.0.as_ref().ok_or(ApiError::InvitationsDisabled)
    }
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    person_id: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

/// `GET /api/v1/invitations?state=&person_id=&limit=&offset=`.
pub(super) async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    api: web::Data<InvitationsApi>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::InvitationsRead)?;
    let invitations = api.get()?;
    let query = query.into_inner();
    let state = match query
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => Some(text.parse::<InvitationState>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`state` {text:?} is not one of {}",
                InvitationState::ALL.map(InvitationState::as_str).join(", ")
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be 1 to {MAX_PAGE}"
        )));
    }
    let offset = query.offset.unwrap_or(0);
    let filter = ListFilter {
        state,
        person_id: query
            .person_id
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty()),
        limit: Some(limit + 1),
        offset,
    };
    let mut page = invitations.list(&filter).await.map_err(map_error)?;
    let more = page.len() as u64 > limit;
    page.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let counts = invitations.counts().await.map_err(map_error)?;
    Ok(HttpResponse::Ok().json(InvitationList {
        invitations: page.iter().map(InvitationView::from).collect(),
        counts: InvitationState::ALL
            .iter()
            .map(|state| {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                (state.as_str().to_owned(), n)
            })
            .collect(),
        next_offset: more.then(|| offset + limit),
    }))
}

/// `POST /api/v1/invitations/{person_id}/resend`.
pub(super) async fn resend(
    caller: Caller,
    path: web::Path<String>,
    api: web::Data<InvitationsApi>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::InvitationsManage)?;
    let invitations = api.get()?;
    let person_id = path.into_inner();
    let person_id = person_id.trim();
    if person_id.is_empty() {
        return Err(ApiError::BadRequest(
            "the person id in the path is empty; use POST /api/v1/invitations/{person_id}/resend"
                .to_owned(),
        ));
    }
    let invitation = invitations.resend(person_id).await.map_err(map_error)?;
    tracing::info!(caller = %caller.name, person_id, "invitation resent");
    Ok(HttpResponse::Ok().json(InvitationView::from(&invitation)))
}

fn map_error(error: InvitationError) -> ApiError {
    match error {
        InvitationError::UnknownPerson { person_id } => ApiError::NotFound(format!(
            "no invitation for person {person_id:?}; a person is invited when a hire for them waits as pending with person.email (list them with GET /api/v1/invitations)"
        )),
        InvitationError::AlreadyConnected { person_id } => ApiError::Conflict {
            error: "already_connected",
            message: format!(
                "person {person_id:?} has already connected their ORCID iD; no invitation is needed"
            ),
        },
        InvitationError::Busy { person_id } => ApiError::Conflict {
            error: "busy",
            message: format!(
                "an e-mail to person {person_id:?} is being sent right now; try again in a minute"
            ),
        },
        InvitationError::SendFailed { person_id, reason } => {
            tracing::warn!(person_id, reason, "invitation resend failed");
            ApiError::MailFailed(format!(
                "the mail transport failed sending to person {person_id:?} ({reason}); the invitation is recorded as failed (see last_error): check the writer's [invitations] mail settings and the mail server, then resend"
            ))
        }
        InvitationError::InvalidInput(message) => ApiError::BadRequest(message),
        other => ApiError::internal(&other),
    }
}
