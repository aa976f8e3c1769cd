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

/// `GET /v1/people/{person_id}/token`: the token of the person's active connection (the
/// latest granted), in one request. Needs `token:read` and, because the answer also tells
/// which iD the person connected, `connections:list`.
pub(super) async fn person_token(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PurposeQuery>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::TokenRead)?;
    caller.require(Right::ConnectionsList)?;
    let person_id = parse_person_id(&path)?;
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

/// A person id as HR sends it: 1 to 255 characters, none of them a control character.
fn parse_person_id(text: &str) -> Result<&str, ApiError> {
    if text.is_empty() || text.chars().count() > 255 || text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the person id must be 1 to 255 printable characters",
        ));
    }
    Ok(text)
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
