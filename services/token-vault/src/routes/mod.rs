//! The internal HTTP API. Every route but `/health`, `/openapi.json` and `/v1/handoff-key`
//! needs a caller token ([`crate::auth`]) and a right; errors are JSON ([`crate::error`]).
//!
//! | route | right |
//! |---|---|
//! | `GET /v1/tokens/{orcid}?purpose=…` | `token:read` |
//! | `GET /v1/tokens?person_id=…&purpose=…` | `token:read` and `connections:list` |
//! | `GET /v1/client-tokens/{scope}?purpose=…` (`webhook`, `read-public`) | `client-token:read` |
//! | `GET /v1/connections?person_id=&orcid=&state=&after=&limit=` | `connections:list` |
//! | `GET /v1/connections/{orcid}` | `connections:list` |
//! | `POST /v1/connections/{orcid}/revoked` | `connections:revoke` |
//! | `DELETE /v1/connections/{orcid}` | `connections:disconnect` |

mod connections;
mod meta;
mod tokens;

use actix_web::{HttpRequest, web};
use orcid::OrcidId;

use crate::error::ApiError;

/// Header that may carry the purpose of a read instead of the `purpose` query parameter.
pub const PURPOSE_HEADER: &str = "x-vault-purpose";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(16 * 1024)
            .error_handler(|e, _| {
                ApiError::bad_request(format!("the JSON body is invalid: {e}")).into()
            }),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::bad_request(format!("the query string is invalid: {e}")).into()
    }))
    .app_data(
        web::PathConfig::default().error_handler(|e, _| {
            ApiError::bad_request(format!("the path is invalid: {e}")).into()
        }),
    )
    .route("/health", web::get().to(meta::health))
    .route("/openapi.json", web::get().to(meta::openapi))
    .service(
        web::scope("/v1")
            .route("/handoff-key", web::get().to(meta::handoff_key))
            .route("/tokens/{orcid}", web::get().to(tokens::user_token))
            .route("/tokens", web::get().to(tokens::person_token))
            .route(
                "/client-tokens/{scope}",
                web::get().to(tokens::client_token),
            )
            .route("/connections", web::get().to(connections::list))
            .route("/connections/{orcid}", web::get().to(connections::get))
            .route(
                "/connections/{orcid}",
                web::delete().to(connections::disconnect),
            )
            .route(
                "/connections/{orcid}/revoked",
                web::post().to(connections::mark_revoked),
            ),
    );
}

fn parse_orcid(text: &str) -> Result<OrcidId, ApiError> {
    OrcidId::parse(text)
        .map_err(|e| ApiError::bad_request(format!("`{text}` is not an ORCID iD: {e}")))
}

/// The purpose of a read: the `purpose` query parameter or the `X-Vault-Purpose` header;
/// required, 1 to 255 printable characters.
fn purpose(req: &HttpRequest, query: Option<&str>) -> Result<String, ApiError> {
    optional_purpose(req, query)?.ok_or_else(|| ApiError::BadRequest {
        code: "purpose_required",
        message: "say why the token is needed: add `?purpose=…` or an `X-Vault-Purpose` header (it goes to the audit)".to_owned(),
    })
}

/// The purpose when one is given (`None` when absent or blank); a given purpose that is
/// not 1 to 255 printable characters is a 400, never silently replaced.
fn optional_purpose(req: &HttpRequest, query: Option<&str>) -> Result<Option<String>, ApiError> {
    let from_header = req
        .headers()
        .get(PURPOSE_HEADER)
        .and_then(|v| v.to_str().ok());
    let purpose = query.or(from_header).map(str::trim).unwrap_or("");
    if purpose.is_empty() {
        return Ok(None);
    }
    if purpose.chars().count() > 255 || purpose.chars().any(char::is_control) {
        return Err(ApiError::BadRequest {
            code: "bad_request",
            message: "the purpose must be 1 to 255 printable characters".to_owned(),
        });
    }
    Ok(Some(purpose.to_owned()))
}
