//! Connections: listings without tokens, revoked reports, disconnects.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{optional_purpose, parse_orcid};
use crate::api::{ConnectionState, RevokedReport};
use crate::auth::{Caller, Right};
use crate::error::ApiError;
use crate::vault::{ListFilter, Requester, Vault};

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    person_id: Option<String>,
    orcid: Option<String>,
    state: Option<ConnectionState>,
    after: Option<String>,
    limit: Option<u64>,
}

/// `GET /v1/connections`.
pub(super) async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ConnectionsList)?;
    let query = query.into_inner();
    let orcid = match query.orcid.as_deref() {
        Some(text) => Some(parse_orcid(text)?.to_string()),
        None => None,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "`limit` must be 1 to {MAX_PAGE}"
        )));
    }
    let filter = ListFilter {
        person_id: query.person_id,
        orcid,
        state: query.state,
        after: query.after,
        limit,
    };
    Ok(HttpResponse::Ok().json(vault.connections(&filter).await?))
}

/// `GET /v1/connections/{orcid}`.
pub(super) async fn get(
    caller: Caller,
    path: web::Path<String>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ConnectionsList)?;
    let orcid = parse_orcid(&path)?;
    Ok(HttpResponse::Ok().json(vault.connection(&orcid).await?))
}

/// `POST /v1/connections/{orcid}/revoked`: a worker saw ORCID answer 401.
pub(super) async fn mark_revoked(
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ConnectionsRevoke)?;
    let orcid = parse_orcid(&path)?;
    // The body is optional; when present it must be a valid report.
    let report: RevokedReport = if body.iter().all(u8::is_ascii_whitespace) {
        RevokedReport::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the JSON body is invalid: {e}")))?
    };
    let reason = report
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(255).collect::<String>())
        .unwrap_or_else(|| "ORCID answered 401 for the token".to_owned());
    let connection = vault
        .mark_revoked(
            &orcid,
            report.generation,
            Requester {
                caller: &caller.name,
                purpose: &reason,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(connection))
}

#[derive(Deserialize)]
pub(super) struct DisconnectQuery {
    purpose: Option<String>,
}

/// `DELETE /v1/connections/{orcid}`: the researcher disconnects.
pub(super) async fn disconnect(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<DisconnectQuery>,
    vault: web::Data<Vault>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ConnectionsDisconnect)?;
    let orcid = parse_orcid(&path)?;
    // A disconnect is audited too; "disconnected by the researcher" when no purpose is given.
    let purpose = optional_purpose(&req, query.purpose.as_deref())?
        .unwrap_or_else(|| "disconnected by the researcher".to_owned());
    let connection = vault
        .disconnect(
            &orcid,
            Requester {
                caller: &caller.name,
                purpose: &purpose,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(connection))
}
