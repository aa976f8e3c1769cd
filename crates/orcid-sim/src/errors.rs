//! The two error shapes ORCID answers with: the v3 error body (`response-code`,
//! `developer-message`, …) and the OAuth one (`error`, `error_description`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

use crate::negotiate::JsonType;

/// ORCID's `more-info` link.
pub const MORE_INFO: &str = "https://members.orcid.org/api/resources/troubleshooting";

/// A v3.0 error body in `application/vnd.orcid+json`:
/// `{"response-code","developer-message","user-message","error-code","more-info"}`.
pub fn v3_error(status: StatusCode, code: u32, developer_message: &str) -> HttpResponse {
    v3_error_as(status, code, developer_message, JsonType::VndOrcid)
}

/// [`v3_error`] in the negotiated JSON type.
pub fn v3_error_as(
    status: StatusCode,
    code: u32,
    developer_message: &str,
    json: JsonType,
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(json.content_type())
        .json(json!({
            "response-code": status.as_u16(),
            "developer-message": developer_message,
            "user-message": "There was an error when updating the record. Please try again. If the error persists, please contact the integration for assistance.",
            "error-code": code,
            "more-info": MORE_INFO,
        }))
}

/// An OAuth-style error body: `{"error","error_description"}`.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json;charset=UTF-8")
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}
