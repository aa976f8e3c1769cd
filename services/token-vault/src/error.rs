//! The error policy, in one place.
//!
//! - [`VaultError`]: what the vault's operations fail with (typed, with the cause chain).
//! - [`ApiError`]: what a caller sees. Conversion from `VaultError` is the one place that maps
//!   failures to HTTP statuses. Failures that are the vault's own problem (a blob that does
//!   not open, the database) answer 500 with a safe message and a reference; the whole cause
//!   chain, naming the row and the key id but never a token, goes to the log under that
//!   reference.
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 400 | `bad_request`, `purpose_required` | malformed iD, scope or body; no purpose given for a read |
//! | 401 | `unauthenticated` | no or unknown caller token |
//! | 403 | `forbidden` | the caller lacks the right (`missing_right`) |
//! | 404 | `not_connected` | no connection for the iD |
//! | 409 | `stale_generation` | a revocation report about a token the vault already replaced |
//! | 410 | `connection_ended` | revoked, expired or disconnected (`state`) |
//! | 503 | `orcid_unavailable` | ORCID failed while the vault needed it (refresh, revoke, client token) |
//! | 500 | `internal` | the vault's own failure (`reference` points into the log) |

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use bus::BusError;
use idbridge_crypto::CryptoError;
use sea_orm::DbErr;
use uuid::Uuid;

use crate::api::{ConnectionState, ErrorBody};
use crate::audit_writer::AuditError;
use crate::auth::Right;
use crate::sealing::OpenError;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VaultError {
    #[error("no connection for iD {0}")]
    NotConnected(String),
    #[error("person {0} has no active connection")]
    PersonNotConnected(String),
    #[error("the connection of iD {orcid} is {state}")]
    Ended {
        orcid: String,
        state: ConnectionState,
    },
    #[error("generation {reported} is not the current token generation {current}")]
    StaleGeneration { reported: i64, current: i64 },
    #[error("the stored tokens of {what} could not be opened")]
    Open {
        what: String,
        #[source]
        source: OpenError,
    },
    #[error("sealing tokens failed")]
    Seal(#[source] CryptoError),
    #[error("database")]
    Database(#[from] DbErr),
    #[error("the token read could not be audited")]
    Audit(#[from] AuditError),
    #[error("bus")]
    Bus(#[from] BusError),
    #[error("ORCID failed during {operation}")]
    Orcid {
        operation: &'static str,
        #[source]
        source: orcid::Error,
    },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// An answer of the API other than 2xx.
#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthenticated(&'static str),
    Forbidden {
        caller: String,
        right: Right,
    },
    BadRequest {
        code: &'static str,
        message: String,
    },
    NotConnected(String),
    PersonNotConnected(String),
    Ended {
        orcid: String,
        state: ConnectionState,
    },
    StaleGeneration {
        reported: i64,
        current: i64,
    },
    OrcidUnavailable(String),
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

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "bad_request",
            message: message.into(),
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

impl From<VaultError> for ApiError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::NotConnected(orcid) => ApiError::NotConnected(orcid),
            VaultError::PersonNotConnected(person) => ApiError::PersonNotConnected(person),
            VaultError::Ended { orcid, state } => ApiError::Ended { orcid, state },
            VaultError::StaleGeneration { reported, current } => {
                ApiError::StaleGeneration { reported, current }
            }
            VaultError::Orcid { operation, source } => {
                tracing::warn!(operation, error = %error_chain(&source), "ORCID failed");
                ApiError::OrcidUnavailable(format!("ORCID failed during {operation}: {source}"))
            }
            other => {
                let reference = Uuid::new_v4();
                tracing::error!(%reference, error = %error_chain(&other), "internal error");
                ApiError::Internal { reference }
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body().message)
    }
}

impl ApiError {
    fn body(&self) -> ErrorBody {
        let plain = |error: &str, message: String| ErrorBody {
            error: error.to_owned(),
            message,
            missing_right: None,
            state: None,
            reference: None,
        };
        match self {
            ApiError::Unauthenticated(why) => plain(
                "unauthenticated",
                format!(
                    "{why}; send `Authorization: Bearer <caller token>` with the token configured for your service"
                ),
            ),
            ApiError::Forbidden { caller, right } => ErrorBody {
                missing_right: Some(right.as_str().to_owned()),
                ..plain(
                    "forbidden",
                    format!(
                        "caller '{caller}' lacks the right '{right}'; add it to vault.callers.{caller}.rights if it should have it"
                    ),
                )
            },
            ApiError::BadRequest { code, message } => plain(code, message.clone()),
            ApiError::NotConnected(orcid) => plain(
                "not_connected",
                format!(
                    "no connection for iD {orcid}; the researcher has to connect at the portal"
                ),
            ),
            ApiError::PersonNotConnected(person) => plain(
                "not_connected",
                format!(
                    "person {person} has no active connection; the researcher has to connect at the portal"
                ),
            ),
            ApiError::Ended { orcid, state } => ErrorBody {
                state: Some(*state),
                ..plain(
                    "connection_ended",
                    format!(
                        "the connection of iD {orcid} is {state}; the researcher has to connect again at the portal"
                    ),
                )
            },
            ApiError::StaleGeneration { reported, current } => plain(
                "stale_generation",
                format!(
                    "token generation {reported} was already replaced by generation {current}; fetch the token again and retry"
                ),
            ),
            ApiError::OrcidUnavailable(message) => {
                plain("orcid_unavailable", format!("{message}; try again later"))
            }
            ApiError::Internal { reference } => ErrorBody {
                reference: Some(reference.to_string()),
                ..plain(
                    "internal",
                    format!(
                        "the vault failed internally; its log has the details under reference {reference}"
                    ),
                )
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotConnected(_) | ApiError::PersonNotConnected(_) => StatusCode::NOT_FOUND,
            ApiError::Ended { .. } => StatusCode::GONE,
            ApiError::StaleGeneration { .. } => StatusCode::CONFLICT,
            ApiError::OrcidUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(self.body())
    }
}
