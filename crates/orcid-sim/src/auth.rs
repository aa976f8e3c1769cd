//! Bearer-token checks for the member API and webhooks (platform side).
//!
//! Contract used by the records side (`api`): call [`authenticate`] first in every handler,
//! then filter what you return with the [`Caller`] (`read_limited_*`, `orcid`).
//!
//! Rules (reference §4.2, §4.3, §7, §11.5):
//! - no `Authorization: Bearer …` → 403 `{"error":"forbidden",…}` ([`AuthFailure::Missing`]);
//! - unknown, expired or revoked token → 401 `{"error":"invalid_token",…}`;
//! - a token the *user* revoked still passes for [`Need::DeleteActivities`] and
//!   [`Need::DeletePerson`] ([`Caller::user_revoked`] is then set);
//! - a user token for another record → 401, v3 body, code 9017;
//! - a token without the scope → 403, v3 body, code 9038;
//! - a client-credentials token with `/read-public` may [`Need::Read`] any record (public
//!   items only: `read_limited_*` are false and `orcid` is `None`).

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use orcid::OrcidId;
use serde_json::json;

use crate::errors::v3_error_as;
use crate::negotiate::JsonType;
use crate::state::SimState;
use crate::tokens::{Revocation, now_ms};

/// What the handler is about to do, which decides the scope needed and whether a token the
/// user revoked still works (ORCID lets it DELETE the client's own items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// GET: any token for the record (user tokens), or `/read-public` (client credentials).
    /// What may be shown is in [`Caller`].
    Read,
    /// POST or PUT of an activity: `/activities/update`.
    WriteActivities,
    /// DELETE of an activity: `/activities/update`; a user-revoked token still passes.
    DeleteActivities,
    /// POST/PUT of a person item: `/person/update`.
    WritePerson,
    /// DELETE of a person item: `/person/update`; a user-revoked token still passes.
    DeletePerson,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client the token was issued to.
    pub client_id: String,
    /// That client's display name (for `source-name`).
    pub client_name: String,
    /// The record the token is for; `None` for client-credentials tokens.
    pub orcid: Option<OrcidId>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// May read `limited` activities (`/read-limited`, `/activities/read-limited` or
    /// `/activities/update` on this record). Otherwise show public items, plus the caller's own.
    pub read_limited_activities: bool,
    /// May read `limited` person items (`/read-limited`, `/person/read-limited` or
    /// `/person/update` on this record).
    pub read_limited_person: bool,
    /// The user revoked this client; only deletes get this far.
    pub user_revoked: bool,
}

impl Caller {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// A client-credentials token (no record attached).
    pub fn is_client_credentials(&self) -> bool {
        self.orcid.is_none()
    }
}

/// Why a request was refused before reaching the handler.
///
/// `Debug` does not print the token.
#[derive(Clone)]
pub enum AuthFailure {
    /// No `Authorization` header: 403 `{"error":"forbidden",…}`.
    Missing,
    /// Unknown, expired or revoked token: 401 `{"error":"invalid_token",…}`. Carries the token
    /// as sent, because ORCID echoes it in the description.
    InvalidToken(String),
    /// The token is for another record: 401, v3 body, code 9017.
    WrongRecord,
    /// The token lacks the scope: 403, v3 body, code 9038.
    MissingScope,
}

impl fmt::Debug for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Missing => f.write_str("Missing"),
            AuthFailure::InvalidToken(_) => f.write_str("InvalidToken([redacted])"),
            AuthFailure::WrongRecord => f.write_str("WrongRecord"),
            AuthFailure::MissingScope => f.write_str("MissingScope"),
        }
    }
}

/// 9017 developer message (ORCID `api_en.properties`).
pub const MSG_9017: &str = "401 Unauthorized: The client application is not authorized for this ORCID record. Full validation error: Access token is for a different record";
/// 9038 developer message; ORCID's text says 409 while the status is 403.
pub const MSG_9038: &str = "409 Conflict: The client application doesn't have the required scope to perform this operation. Full validation error: Insufficient or wrong scope";

impl AuthFailure {
    /// HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthFailure::Missing | AuthFailure::MissingScope => StatusCode::FORBIDDEN,
            AuthFailure::InvalidToken(_) | AuthFailure::WrongRecord => StatusCode::UNAUTHORIZED,
        }
    }

    /// The v3 error code and developer message, for the two failures ORCID answers in the v3
    /// format, after content negotiation. `None` for the OAuth-style ones, which the bearer
    /// filter answers in JSON before any negotiation.
    pub fn v3_code(&self) -> Option<(u32, &'static str)> {
        match self {
            AuthFailure::WrongRecord => Some((9017, MSG_9017)),
            AuthFailure::MissingScope => Some((9038, MSG_9038)),
            _ => None,
        }
    }

    /// The response ORCID sends for this failure (v3 bodies in `application/vnd.orcid+json`).
    pub fn into_response(self) -> HttpResponse {
        self.into_response_as(JsonType::VndOrcid)
    }

    /// The response ORCID sends for this failure, v3 bodies in the negotiated type `json`.
    pub fn into_response_as(self, json: JsonType) -> HttpResponse {
        match self {
            AuthFailure::Missing => HttpResponse::Forbidden()
                .content_type("application/json;charset=UTF-8")
                .insert_header(("Cache-Control", "no-store"))
                .json(json!({
                    "error": "forbidden",
                    "error_description": "Forbidden: The server understood the request but refuses to authorize it.",
                })),
            AuthFailure::InvalidToken(token) => {
                let description = format!("Invalid access token: {token}");
                HttpResponse::Unauthorized()
                    .content_type("application/json;charset=UTF-8")
                    .insert_header(("Cache-Control", "no-store"))
                    .insert_header((
                        "WWW-Authenticate",
                        format!(
                            "Bearer realm=\"orcid\", error=\"invalid_token\", error_description=\"{}\"",
                            description.replace('"', "'")
                        ),
                    ))
                    .json(json!({ "error": "invalid_token", "error_description": description }))
            }
            AuthFailure::WrongRecord => {
                v3_error_as(StatusCode::UNAUTHORIZED, 9017, MSG_9017, json)
            }
            AuthFailure::MissingScope => v3_error_as(StatusCode::FORBIDDEN, 9038, MSG_9038, json),
        }
    }
}

/// The bearer token of a request: `None` without an `Authorization: Bearer` header.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    bearer_from_header(
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?,
    )
}

/// The token in an `Authorization` header value, if it is a bearer one.
pub fn bearer_from_header(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Checks the bearer token of `req` for an operation on `orcid`.
pub fn authenticate(
    state: &SimState,
    req: &HttpRequest,
    orcid: &OrcidId,
    need: Need,
) -> Result<Caller, AuthFailure> {
    let token = bearer_token(req).ok_or(AuthFailure::Missing)?;
    let record = state
        .tokens
        .get(token)
        .ok_or_else(|| AuthFailure::InvalidToken(token.to_owned()))?;
    if record.expired(now_ms()) {
        return Err(AuthFailure::InvalidToken(token.to_owned()));
    }
    let deleting = matches!(need, Need::DeleteActivities | Need::DeletePerson);
    let user_revoked = match record.revoked {
        None => false,
        Some(Revocation::ByUser) if deleting => true,
        Some(_) => return Err(AuthFailure::InvalidToken(token.to_owned())),
    };
    let has = |s: &str| record.has_scope(s);
    match record.orcid {
        Some(owner) => {
            if owner != *orcid {
                return Err(AuthFailure::WrongRecord);
            }
            let allowed = match need {
                Need::Read => true,
                Need::WriteActivities | Need::DeleteActivities => has("/activities/update"),
                Need::WritePerson | Need::DeletePerson => has("/person/update"),
            };
            if !allowed {
                return Err(AuthFailure::MissingScope);
            }
        }
        None => {
            if need != Need::Read || !has("/read-public") {
                return Err(AuthFailure::MissingScope);
            }
        }
    }
    let user_token = record.orcid.is_some();
    let read_limited = user_token && has("/read-limited");
    let caller = Caller {
        client_name: state.client_name(&record.client_id),
        read_limited_activities: read_limited
            || user_token && (has("/activities/read-limited") || has("/activities/update")),
        read_limited_person: read_limited
            || user_token && (has("/person/read-limited") || has("/person/update")),
        client_id: record.client_id,
        orcid: record.orcid,
        scopes: record.scopes,
        user_revoked,
    };
    Ok(caller)
}

/// Checks a client-credentials style call (webhooks): a live token carrying `scope`, whatever
/// record it is for. A token without the scope gets 403 9038.
pub fn authenticate_scope(
    state: &SimState,
    req: &HttpRequest,
    scope: &str,
) -> Result<Caller, AuthFailure> {
    let token = bearer_token(req).ok_or(AuthFailure::Missing)?;
    let record = state
        .tokens
        .get(token)
        .filter(|r| r.revoked.is_none() && !r.expired(now_ms()))
        .ok_or_else(|| AuthFailure::InvalidToken(token.to_owned()))?;
    if !record.has_scope(scope) {
        return Err(AuthFailure::MissingScope);
    }
    Ok(Caller {
        client_name: state.client_name(&record.client_id),
        client_id: record.client_id,
        orcid: record.orcid,
        scopes: record.scopes,
        read_limited_activities: false,
        read_limited_person: false,
        user_revoked: false,
    })
}
