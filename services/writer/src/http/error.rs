//! The API's error policy, in one place: what a caller sees for each failure. Failures that
//! are the writer's own (the database) answer 500 with a reference; the cause chain goes to
//! the log under it.
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 400 | `bad_request` | malformed JSON, query or path; an empty batch |
//! | 401 | `unauthenticated` | no or unknown bearer token |
//! | 403 | `forbidden` | the caller lacks the right (`missing_right`) |
//! | 404 | `not_found` | no such item, route or invitation |
//! | 404 | `invitations_disabled` | an invitations route while `writer.invitations.enabled = false` |
//! | 405 | `method_not_allowed` | a known route with another method (`Allow` names the right one) |
//! | 409 | `already_connected` / `busy` | resend to a person who connected / who is being sent to right now |
//! | 413 | `payload_too_large` | body larger than `writer.http.max_body_bytes`, or more events than `writer.http.max_batch` |
//! | 415 | `unsupported_media_type` | not `Content-Type: application/json` |
//! | 502 | `mail_failed` | resend: the mail transport failed (recorded on the invitation) |
//! | 500 | `internal` | the writer's own failure (`reference` points into the log) |

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use uuid::Uuid;

use crate::api::{ErrorBody, Right};

/// An answer of the API other than 2xx (and other than the per-event 422).
#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthenticated(&'static str),
    Forbidden {
        caller: String,
        right: Right,
    },
    BadRequest(String),
    NotFound(String),
    TooLarge(String),
    UnsupportedMediaType(String),
    MethodNotAllowed {
        allow: &'static str,
    },
    InvitationsDisabled,
    Conflict {
        error: &'static str,
        message: String,
    },
    MailFailed(String),
    Internal {
        reference: Uuid,
    },
}

impl ApiError {
    /// A 500 for a condition that is not an error value (already explained by `what`).
    pub(crate) fn internal_message(what: &str) -> Self {
        let reference = Uuid::new_v4();
        tracing::error!(%reference, error = what, "internal error");
        ApiError::Internal { reference }
    }

    /// A 500 for `error`, logged with its cause chain.
    pub(crate) fn internal(error: &dyn std::error::Error) -> Self {
        let reference = Uuid::new_v4();
        tracing::error!(%reference, error = %error_chain(error), "internal error");
        ApiError::Internal { reference }
    }

    fn body(&self) -> ErrorBody {
        let plain = |error: &str, message: String| ErrorBody {
            error: error.to_owned(),
            message,
            missing_right: None,
            reference: None,
        };
        match self {
            ApiError::Unauthenticated(why) => plain(
                "unauthenticated",
                format!(
                    "{why}; send `Authorization: Bearer <token>` with the token whose SHA-256 is configured in writer.http.callers"
                ),
            ),
            ApiError::Forbidden { caller, right } => ErrorBody {
                missing_right: Some(right.as_str().to_owned()),
                ..plain(
                    "forbidden",
                    format!(
                        "caller '{caller}' lacks the right '{right}'; add it to the rights of caller '{caller}' in writer.http.callers if it should have it"
                    ),
                )
            },
            ApiError::BadRequest(message) => plain("bad_request", message.clone()),
            ApiError::NotFound(message) => plain("not_found", message.clone()),
            ApiError::TooLarge(message) => plain("payload_too_large", message.clone()),
            ApiError::UnsupportedMediaType(message) => {
                plain("unsupported_media_type", message.clone())
            }
            ApiError::MethodNotAllowed { allow } => {
                plain("method_not_allowed", format!("use {allow}"))
            }
            ApiError::InvitationsDisabled => plain(
                "invitations_disabled",
                "invitations are disabled in this writer; set writer.invitations.enabled = true (and configure [invitations]) and restart it".to_owned(),
            ),
            ApiError::Conflict { error, message } => plain(error, message.clone()),
            ApiError::MailFailed(message) => plain("mail_failed", message.clone()),
            ApiError::Internal { reference } => ErrorBody {
                reference: Some(reference.to_string()),
                ..plain(
                    "internal",
                    format!(
                        "the writer failed internally; nothing was stored, so send the request again later; its log has the details under reference {reference}"
                    ),
                )
            },
        }
    }
}

/// `error: cause: cause…`, for the log.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body().message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvitationsDisabled => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MailFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, *allow));
        }
        response.json(self.body())
    }
}
