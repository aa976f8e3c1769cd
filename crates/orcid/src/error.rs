//! Errors of the ORCID client: one enum, [`Error`], mapped from what ORCID answers.
//!
//! ORCID answers a refused call in one of two shapes (reference §4): the v3.0 error body
//! (`response-code`, `developer-message`, `error-code`, …) or, from the OAuth layer, the OAuth
//! body (`error`, `error_description`). [`Error`] gives each case a variant of its own, keeps
//! ORCID's numeric error code where ORCID sent one ([`Error::error_code`]) and says whether a
//! retry can help ([`Error::is_retryable`]).
//!
//! No variant ever holds a token: ORCID echoes the token in its `invalid_token` description
//! (`Invalid access token: <token>`), so that description is dropped, and every text kept from
//! a response passes through a redaction that removes the secrets of the call and anything
//! shaped like an ORCID token (a UUID).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};

use crate::id::OrcidId;
use crate::model::PutCode;

/// An error talking to ORCID, or a request this client refused to send.
///
/// Match on the variant for the cases you handle; use [`Error::is_retryable`] to decide about
/// the rest. Variants that come from an ORCID answer carry ORCID's error code where it sent one
/// (`code`) and its developer message (`message`, with secrets removed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- configuration and requests refused before sending -----
    /// A base URL uses plain `http://` on a host that is not loopback. ORCID must be reached
    /// over HTTPS; only a local simulator (127.0.0.0/8, `::1`, `localhost`) may use `http://`.
    #[error(
        "ORCID URL `{url}` is not allowed: plain http is only accepted on loopback \
         (127.0.0.0/8, ::1, localhost); use `{suggestion}` or point it at a local simulator"
    )]
    InsecureUrl {
        /// The URL as configured.
        url: String,
        /// The same URL with `https://`.
        suggestion: String,
    },
    /// The client configuration is unusable (bad URL, zero rate, TLS set-up failure, …).
    #[error("invalid ORCID client configuration: {0}")]
    Config(String),
    /// The call was refused before sending: it could not succeed as asked (empty or oversized
    /// bulk, a body that does not serialize, a callback URL that is not absolute, …).
    #[error("invalid ORCID request: {0}")]
    InvalidRequest(String),
    /// An update's body names a different put code than the path. ORCID would answer 400
    /// (code 9019); the client refuses before sending.
    #[error("the body's put-code {body} differs from the put code {path} being updated")]
    PutCodeMismatch {
        /// The put code in the path (the item being updated).
        path: PutCode,
        /// The put code found in the body.
        body: PutCode,
    },

    // ----- tokens and permissions -----
    /// The access token is unknown, expired or revoked (401 `invalid_token`; also a v3 body
    /// with code 9002, "client not authorized"). The user may have removed the client from
    /// their trusted organizations: ask them to connect again. (ORCID's description repeats
    /// the token, so it is not kept.)
    #[error("ORCID rejected the access token: invalid, expired or revoked (401 invalid_token)")]
    InvalidToken,
    /// The token was issued for another ORCID record (401, code 9017).
    #[error("the access token is for another ORCID record (401, ORCID error {code:?}): {message}")]
    TokenForOtherRecord {
        /// ORCID's error code (9017).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// The token lacks the scope the call needs (403, code 9038; also 403 9004 and 401
    /// 9015 "invalid scope").
    #[error(
        "the access token lacks the scope this call needs ({status}, ORCID error {code:?}): \
         {message}"
    )]
    MissingScope {
        /// The HTTP status (403, or 401 for code 9015).
        status: u16,
        /// ORCID's error code (9038, 9004 or 9015).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// Only the client that created an item may change or delete it (403, code 9010).
    #[error("this client is not the source of the item (403, ORCID error {code:?}): {message}")]
    NotSource {
        /// ORCID's error code (9010).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// ORCID refused a request that carried no usable credentials (403 `forbidden`).
    #[error("ORCID refused the request as unauthenticated (403 forbidden): {message}")]
    Forbidden {
        /// ORCID's error code, if the body was a v3 error (usually absent).
        code: Option<u32>,
        /// ORCID's description.
        message: String,
    },

    // ----- the record and its items -----
    /// The record or item does not exist (404, code 9016 or 9011; also 9028 for a webhook).
    #[error("not found at ORCID (404, ORCID error {code:?}): {message}")]
    NotFound {
        /// ORCID's error code (9016, 9011, 9028, …), if sent.
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// The item duplicates one this client already wrote (409, code 9021; 9030 for person
    /// items). `put_code` is the existing item ORCID names in its message, when it does.
    #[error("duplicate of an existing item{} (409, ORCID error {code:?}): {message}",
        put_code.map(|p| format!(" with put code {p}")).unwrap_or_default())]
    Duplicate {
        /// ORCID's error code (9021 or 9030).
        code: Option<u32>,
        /// The put code of the existing item, parsed from the developer message.
        put_code: Option<PutCode>,
        /// ORCID's developer message.
        message: String,
    },
    /// The record already holds the maximum number of works (409, code 9048).
    #[error("the record is at ORCID's works limit (409, ORCID error {code:?}): {message}")]
    WorksLimit {
        /// ORCID's error code (9048).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// ORCID rejected the request as invalid (400): a validation failure of the body, a bad
    /// put code, too many put codes, … The code says which (reference §4.3).
    #[error("ORCID rejected the request ({status}, ORCID error {code:?}): {message}")]
    Validation {
        /// The HTTP status (400).
        status: u16,
        /// ORCID's error code (9022 title missing, 9023 external id, 9037 type, …).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// The record was deprecated in favour of another (301 on GET, 409 otherwise; code 9007).
    #[error("the ORCID record is deprecated{} ({status}, ORCID error {code:?})",
        primary.map(|p| format!("; its primary record is {p}")).unwrap_or_default())]
    RecordDeprecated {
        /// The HTTP status (301 or 409).
        status: u16,
        /// ORCID's error code (9007).
        code: Option<u32>,
        /// The primary record, from `Location` or the developer message.
        primary: Option<OrcidId>,
        /// ORCID's developer message.
        message: String,
    },
    /// The record is deactivated (409, code 9044).
    #[error("the ORCID record is deactivated (409, ORCID error {code:?}): {message}")]
    RecordDeactivated {
        /// ORCID's error code (9044).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// The record is locked (409, code 9018).
    #[error("the ORCID record is locked (409, ORCID error {code:?}): {message}")]
    RecordLocked {
        /// ORCID's error code (9018).
        code: Option<u32>,
        /// ORCID's developer message.
        message: String,
    },
    /// Another refusal with no variant of its own (e.g. 403 9013 private item, 403 9014
    /// another client's webhook, 403 9035 visibility change, 409 9036 unclaimed record, 406,
    /// 415, 405).
    #[error("ORCID refused the request ({status}, ORCID error {code:?}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// ORCID's error code, if sent.
        code: Option<u32>,
        /// ORCID's developer message or description.
        message: String,
    },

    // ----- load, servers, the network -----
    /// ORCID is refusing requests for load (503 over the burst, or 429). Retry later.
    #[error("ORCID is rate limiting ({status}){}",
        retry_after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// 503 or 429.
        status: u16,
        /// ORCID's error code, if sent.
        code: Option<u32>,
        /// The `Retry-After` delay, if ORCID sent one (it is not documented to).
        retry_after: Option<Duration>,
    },
    /// ORCID failed (5xx other than 503; code 9008 "Something went wrong in ORCID").
    #[error("ORCID server error ({status}, ORCID error {code:?}): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// ORCID's error code (9008), if sent.
        code: Option<u32>,
        /// ORCID's developer message, or an excerpt of the body.
        message: String,
    },
    /// No complete answer arrived in time.
    #[error("timed out talking to ORCID: {message}")]
    Timeout {
        /// What timed out.
        message: String,
    },
    /// The connection failed. `connected` is false when ORCID was never reached (DNS,
    /// refused, TLS handshake): the request was certainly not processed.
    #[error("could not talk to ORCID ({}): {message}",
        if *connected { "connection lost" } else { "not connected" })]
    Transport {
        /// Whether a connection had been made (so the request may have been sent).
        connected: bool,
        /// What failed.
        message: String,
    },
    /// A request that is not safe to repeat (a POST: create, bulk create, token exchange,
    /// refresh) may or may not have taken effect: it timed out or lost its connection after
    /// sending, ORCID answered 500/502/504, or it answered success without what the client
    /// needs to know what was done. It was not retried. Read back (e.g. list the section)
    /// before trying again.
    #[error("the outcome of {operation} is unknown ({cause}); read back before trying again")]
    OutcomeUnknown {
        /// What was being done, e.g. `create employment`.
        operation: String,
        /// What went wrong.
        #[source]
        cause: Box<Error>,
    },

    // ----- the OAuth token endpoint -----
    /// The token endpoint refused (400/401 with an OAuth error body: `invalid_grant`,
    /// `invalid_client`, `invalid_scope`, `invalid_request`, `unauthorized_client`, …).
    #[error("ORCID OAuth error {kind} ({status}){}",
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error`.
        kind: OAuthErrorKind,
        /// The OAuth `error_description`, with secrets removed.
        description: Option<String>,
    },

    // ----- everything else -----
    /// ORCID answered something this client cannot understand: an unexpected status, or a
    /// body that does not parse. `excerpt` is a short start of the body with the call's
    /// secrets and anything shaped like a token removed; it is empty for a successful (2xx)
    /// token-endpoint answer, whose body holds the new tokens, and for a redirect.
    #[error("unexpected answer from ORCID ({status}): {reason}{}",
        if excerpt.is_empty() { String::new() } else { format!("; body starts: {excerpt}") })]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// Why it is unexpected.
        reason: String,
        /// The start of the body, redacted.
        excerpt: String,
    },
}

/// The `error` of an OAuth error body (RFC 6749 §5.2, as ORCID uses it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorKind {
    /// `invalid_grant`: the code or refresh token is unknown, used, expired or not this
    /// client's.
    InvalidGrant,
    /// `invalid_client`: wrong client id or secret.
    InvalidClient,
    /// `invalid_scope`: a scope the client may not have.
    InvalidScope,
    /// `invalid_request`: a missing or malformed parameter.
    InvalidRequest,
    /// `unauthorized_client`: the client is locked, deactivated or may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `access_denied`.
    AccessDenied,
    /// `server_error`.
    ServerError,
    /// Any other value, as sent.
    Other(String),
}

impl OAuthErrorKind {
    /// Reads the `error` value.
    pub fn parse(error: &str) -> Self {
        match error {
            "invalid_grant" => OAuthErrorKind::InvalidGrant,
            "invalid_client" => OAuthErrorKind::InvalidClient,
            "invalid_scope" => OAuthErrorKind::InvalidScope,
            "invalid_request" => OAuthErrorKind::InvalidRequest,
            "unauthorized_client" => OAuthErrorKind::UnauthorizedClient,
            "unsupported_grant_type" => OAuthErrorKind::UnsupportedGrantType,
            "access_denied" => OAuthErrorKind::AccessDenied,
            "server_error" => OAuthErrorKind::ServerError,
            other => OAuthErrorKind::Other(other.to_owned()),
        }
    }

    /// The `error` value as ORCID spells it.
    pub fn as_str(&self) -> &str {
        match self {
            OAuthErrorKind::InvalidGrant => "invalid_grant",
            OAuthErrorKind::InvalidClient => "invalid_client",
            OAuthErrorKind::InvalidScope => "invalid_scope",
            OAuthErrorKind::InvalidRequest => "invalid_request",
            OAuthErrorKind::UnauthorizedClient => "unauthorized_client",
            OAuthErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorKind::AccessDenied => "access_denied",
            OAuthErrorKind::ServerError => "server_error",
            OAuthErrorKind::Other(s) => s,
        }
    }
}

impl std::fmt::Display for OAuthErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// Whether sending the same request again, later, can succeed: true for rate limiting,
    /// server errors, timeouts and connection failures. False for
    /// [`Error::OutcomeUnknown`] (read back first: a blind repeat may duplicate) and for
    /// everything ORCID refused on the merits (tokens, scopes, validation, not found, …).
    ///
    /// The client already retried idempotent requests as its retry policy allows; this says
    /// whether a later attempt (e.g. a redelivered job) is worth it.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. }
            | Error::Server { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. } => true,
            Error::OAuth { status, .. } | Error::UnexpectedResponse { status, .. } => {
                *status >= 500
            }
            _ => false,
        }
    }

    /// Whether the token or grant can no longer be used and the user has to connect again
    /// (or, for a client-credentials token, a new one has to be requested):
    /// [`Error::InvalidToken`] (also what the token endpoint answers for the refresh token of
    /// a revoked pair), [`Error::TokenForOtherRecord`], and an OAuth `invalid_grant` (a used,
    /// expired or unknown code or refresh token).
    pub fn needs_new_token(&self) -> bool {
        matches!(
            self,
            Error::InvalidToken
                | Error::TokenForOtherRecord { .. }
                | Error::OAuth {
                    kind: OAuthErrorKind::InvalidGrant,
                    ..
                }
        )
    }

    /// ORCID's numeric error code (reference §4.3), where ORCID sent one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            Error::TokenForOtherRecord { code, .. }
            | Error::MissingScope { code, .. }
            | Error::NotSource { code, .. }
            | Error::Forbidden { code, .. }
            | Error::NotFound { code, .. }
            | Error::Duplicate { code, .. }
            | Error::WorksLimit { code, .. }
            | Error::Validation { code, .. }
            | Error::RecordDeprecated { code, .. }
            | Error::RecordDeactivated { code, .. }
            | Error::RecordLocked { code, .. }
            | Error::Api { code, .. }
            | Error::RateLimited { code, .. }
            | Error::Server { code, .. } => *code,
            Error::OutcomeUnknown { cause, .. } => cause.error_code(),
            _ => None,
        }
    }

    /// The HTTP status ORCID answered with, where there was an answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::InvalidToken => Some(401),
            Error::TokenForOtherRecord { .. } => Some(401),
            Error::NotSource { .. } | Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::Duplicate { .. }
            | Error::WorksLimit { .. }
            | Error::RecordDeactivated { .. }
            | Error::RecordLocked { .. } => Some(409),
            Error::MissingScope { status, .. }
            | Error::Validation { status, .. }
            | Error::RecordDeprecated { status, .. }
            | Error::Api { status, .. }
            | Error::RateLimited { status, .. }
            | Error::Server { status, .. }
            | Error::OAuth { status, .. }
            | Error::UnexpectedResponse { status, .. } => Some(*status),
            Error::OutcomeUnknown { cause, .. } => cause.http_status(),
            _ => None,
        }
    }

    /// ORCID's developer message (or OAuth description), with secrets removed, where ORCID
    /// sent one.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::TokenForOtherRecord { message, .. }
            | Error::MissingScope { message, .. }
            | Error::NotSource { message, .. }
            | Error::Forbidden { message, .. }
            | Error::NotFound { message, .. }
            | Error::Duplicate { message, .. }
            | Error::WorksLimit { message, .. }
            | Error::Validation { message, .. }
            | Error::RecordDeprecated { message, .. }
            | Error::RecordDeactivated { message, .. }
            | Error::RecordLocked { message, .. }
            | Error::Api { message, .. }
            | Error::Server { message, .. } => Some(message),
            Error::OAuth { description, .. } => description.as_deref(),
            Error::OutcomeUnknown { cause, .. } => cause.message(),
            _ => None,
        }
    }

    /// Wraps `self` as the cause of an [`Error::OutcomeUnknown`].
    pub(crate) fn outcome_unknown(self, operation: impl Into<String>) -> Error {
        Error::OutcomeUnknown {
            operation: operation.into(),
            cause: Box::new(self),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Mapping an answer to an error
// ------------------------------------------------------------------------------------------

/// How long an excerpt of an unexpected body may be, in characters.
const EXCERPT_CHARS: usize = 200;
/// How long a kept developer message may be, in characters (ORCID's 9037 lists every type).
const MESSAGE_CHARS: usize = 2000;

/// The v3.0 error body, read leniently: every field optional, codes as numbers or strings.
#[derive(Debug, Default)]
struct V3Body {
    code: Option<u32>,
    developer_message: Option<String>,
}

/// The OAuth error body. ORCID's userinfo spells the description `error-description`.
#[derive(Debug)]
struct OAuthBody {
    error: String,
    description: Option<String>,
}

fn parse_bodies(body: &[u8]) -> (Option<V3Body>, Option<OAuthBody>) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return (None, None);
    };
    let as_code = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let as_text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let v3 = if map.contains_key("developer-message")
        || map.contains_key("error-code")
        || map.contains_key("response-code")
    {
        Some(V3Body {
            code: map.get("error-code").and_then(as_code),
            developer_message: map.get("developer-message").and_then(as_text),
        })
    } else {
        None
    };
    let oauth = map
        .get("error")
        .and_then(|e| e.as_str())
        .map(|error| OAuthBody {
            error: error.to_owned(),
            description: map
                .get("error_description")
                .or_else(|| map.get("error-description"))
                .and_then(as_text),
        });
    (v3, oauth)
}

/// Maps a non-success answer (any status outside 2xx) to an [`Error`]. `secrets` are the
/// secrets sent with the request (token, code, client secret): they are removed from every
/// text kept.
pub(crate) fn from_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&str],
) -> Error {
    let code16 = status.as_u16();
    let (v3, oauth) = parse_bodies(body);
    let body_excerpt = || excerpt(body, secrets);

    if v3.is_none()
        && let Some(oauth) = oauth
    {
        let description = oauth
            .description
            .map(|d| clip(&redact(&d, secrets), MESSAGE_CHARS));
        return match oauth.error.as_str() {
            // The description ends with the token itself: never keep it.
            "invalid_token" => Error::InvalidToken,
            "forbidden" | "access_denied" if code16 == 403 => Error::Forbidden {
                code: None,
                message: description.unwrap_or_default(),
            },
            _ if code16 == 429 || code16 == 503 => rate_limited(code16, None, headers),
            other => Error::OAuth {
                status: code16,
                kind: OAuthErrorKind::parse(other),
                description,
            },
        };
    }

    let (code, message) = match v3 {
        Some(v3) => (
            v3.code,
            v3.developer_message
                .map(|m| clip(&redact(&m, secrets), MESSAGE_CHARS))
                .unwrap_or_default(),
        ),
        None => (None, body_excerpt()),
    };

    // The code decides where ORCID sent one; the status otherwise.
    match code {
        Some(9007) => return deprecated(code16, code, headers, message),
        Some(9017) => return Error::TokenForOtherRecord { code, message },
        // "Client not authorized": the credentials were refused, as for `invalid_token`.
        Some(9002) if code16 == 401 => return Error::InvalidToken,
        Some(9038 | 9004 | 9015) => {
            return Error::MissingScope {
                status: code16,
                code,
                message,
            };
        }
        Some(9010) => return Error::NotSource { code, message },
        Some(9016 | 9011) => return Error::NotFound { code, message },
        Some(9021 | 9030) => {
            let put_code = duplicate_put_code(&message);
            return Error::Duplicate {
                code,
                put_code,
                message,
            };
        }
        Some(9048) => return Error::WorksLimit { code, message },
        Some(9044) => return Error::RecordDeactivated { code, message },
        Some(9018) => return Error::RecordLocked { code, message },
        Some(9008) if status.is_server_error() && code16 != 503 => {
            return Error::Server {
                status: code16,
                code,
                message,
            };
        }
        _ => {}
    }

    match code16 {
        301 => deprecated(code16, code, headers, message),
        400 => Error::Validation {
            status: code16,
            code,
            message,
        },
        // A 401 that is neither OAuth-shaped nor a known code still means the credentials
        // were refused.
        401 if code.is_none() => Error::InvalidToken,
        403 if code.is_none() && body.iter().all(u8::is_ascii_whitespace) => Error::Forbidden {
            code: None,
            message,
        },
        404 => Error::NotFound { code, message },
        429 | 503 => rate_limited(code16, code, headers),
        s if status.is_server_error() => Error::Server {
            status: s,
            code,
            message,
        },
        s if status.is_redirection() => Error::UnexpectedResponse {
            status: s,
            reason: format!(
                "redirect to `{}` (redirects are not followed)",
                headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(|l| redact(l, secrets))
                    .unwrap_or_default()
            ),
            excerpt: String::new(),
        },
        s if status.is_client_error() => Error::Api {
            status: s,
            code,
            message,
        },
        s => Error::UnexpectedResponse {
            status: s,
            reason: "unexpected status".to_owned(),
            excerpt: body_excerpt(),
        },
    }
}

fn rate_limited(status: u16, code: Option<u32>, headers: &HeaderMap) -> Error {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Error::RateLimited {
        status,
        code,
        retry_after,
    }
}

fn deprecated(status: u16, code: Option<u32>, headers: &HeaderMap, message: String) -> Error {
    let from_location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(find_orcid_id);
    let primary = from_location.or_else(|| find_orcid_id(&message));
    Error::RecordDeprecated {
        status,
        code,
        primary,
        message,
    }
}

/// The last well-formed iD in `text` (a `Location` URL or "Please refer to account: …").
fn find_orcid_id(text: &str) -> Option<OrcidId> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '-' || c == 'X'))
        .filter(|t| t.len() == 19)
        .rev()
        .find_map(|t| OrcidId::parse(t).ok())
}

/// The put code in ORCID's 9021 message "… please see element with put-code 1234. …".
fn duplicate_put_code(message: &str) -> Option<PutCode> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("put-code")? + "put-code".len();
    let digits: String = message[at..]
        .trim_start_matches([' ', ':', '='])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<u64>().ok().map(PutCode::from)
}

// ------------------------------------------------------------------------------------------
// Redaction
// ------------------------------------------------------------------------------------------

const REDACTED: &str = "[REDACTED]";

/// Removes `secrets` and anything shaped like a UUID (ORCID's tokens are UUIDs) from `text`.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    redact_uuids(&out)
}

fn redact_uuids(text: &str) -> String {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    const LEN: usize = 36;
    let bytes = text.as_bytes();
    let is_uuid_at = |i: usize| -> bool {
        if i + LEN > bytes.len() {
            return false;
        }
        let mut pos = i;
        for (g, &n) in GROUPS.iter().enumerate() {
            if g > 0 {
                if bytes[pos] != b'-' {
                    return false;
                }
                pos += 1;
            }
            if !bytes[pos..pos + n].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            pos += n;
        }
        true
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if is_uuid_at(i) {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            i += LEN;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The start of `body` as text, redacted and clipped to [`EXCERPT_CHARS`].
pub(crate) fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    // Redact the whole body first: a clip could cut a secret in half and let its start
    // through.
    let redacted = redact(text.trim(), secrets);
    clip(&redacted, EXCERPT_CHARS)
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_secrets_and_uuids() {
        let text = "Invalid access token: f5af9f51-07e6-4332-8f1a-c0c11c1e3728 and s3cr3t-value";
        let out = redact(text, &["s3cr3t-value"]);
        assert_eq!(out, "Invalid access token: [REDACTED] and [REDACTED]");
    }

    #[test]
    fn duplicate_put_code_is_read_from_the_message() {
        let m = "409 Conflict: You have already added this activity (matched by external \
                 identifiers), please see element with put-code 1234. If you are trying to \
                 edit the item, please use PUT instead of POST.";
        assert_eq!(duplicate_put_code(m), Some(PutCode::from(1234)));
        assert_eq!(duplicate_put_code("no code here"), None);
    }

    #[test]
    fn clip_is_char_safe() {
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("ab", 2), "ab");
    }
}
