//! Token reads: a user's access token, a client-credentials token.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{parse_orcid, purpose};
use crate::api::ClientScope;
use crate::auth::{Caller, Right};
use crate::error::ApiError;
use crate::vault::{Requester, Vault};

#[derive(Deserialize)]
pub(super) struct PurposeQuery {
    purpose: Option<String>,
}

/// `GET /v1/tokens/{orcid}`.
pub(super) async fn user_token(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PurposeQuery>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::TokenRead)?;
    let orcid = parse_orcid(&path)?;
    let purpose = purpose(&req, query.purpose.as_deref())?;
    let token = vault
        .user_token(
            &orcid,
            Requester {
                caller: &caller.name,
                purpose: &purpose,
            },
        )
        .await?;
    Ok(no_store(&token))
}

#[derive(Deserialize)]
pub(super) struct PersonTokenQuery {
    person_id: Option<String>,
    purpose: Option<String>,
}

/// `GET /v1/tokens?person_id=…`: the token of the person's active connection (the latest
/// granted), in one request. Needs `token:read` and, because the answer also tells which iD
/// the person connected, `connections:list`. The person id travels as a query parameter:
/// HR's ids are free text, and a path segment such as `..` would not survive URL handling.
pub(super) async fn person_token(
    caller: Caller,
    req: HttpRequest,
    query: web::Query<PersonTokenQuery>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::TokenRead)?;
    caller.require(Right::ConnectionsList)?;
    let query = query.into_inner();
    let person_id = parse_person_id(query.person_id.as_deref())?;
    let purpose = purpose(&req, query.purpose.as_deref())?;
    let token = vault
        .person_token(
            person_id,
            Requester {
                caller: &caller.name,
                purpose: &purpose,
            },
        )
        .await?;
    Ok(no_store(&token))
}

/// A token answer: JSON that no cache may keep.
fn no_store(token: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(token)
}

/// A person id as HR sends it: required. One the vault could never have stored (blank, longer
/// than 255 bytes: `connect.rs` refuses those) has no connection: 404 `not_connected`, as a
/// listing by it found nothing, so the writer keeps the item pending for an invitation.
fn parse_person_id(text: Option<&str>) -> Result<&str, ApiError> {
    let Some(text) = text else {
        return Err(ApiError::bad_request(
            "say whose token: add `?person_id=…` (or use /v1/tokens/{orcid})",
        ));
    };
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.len() > 255 {
        return Err(ApiError::PersonNotConnected(
            "(an id the vault cannot hold: blank or longer than 255 bytes)".to_owned(),
        ));
    }
    Ok(trimmed)
}

/// `GET /v1/client-tokens/{scope}`.
pub(super) async fn client_token(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PurposeQuery>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ClientTokenRead)?;
    let scope = ClientScope::from_path_name(&path).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown client-credentials scope `{}`; use webhook or read-public",
            path.as_str()
        ))
    })?;
    let purpose = purpose(&req, query.purpose.as_deref())?;
    let token = vault
        .client_token(
            scope,
            Requester {
                caller: &caller.name,
                purpose: &purpose,
            },
        )
        .await?;
    Ok(no_store(&token))
}
