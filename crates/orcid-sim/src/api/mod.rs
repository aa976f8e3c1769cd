//! The member API v3.0 routes, `/v3.0/{orcid}/…` (records side), and the records' test hooks
//! under `/_sim/records` ([`hooks`]).
//!
//! Every handler first authenticates ([`crate::auth::authenticate`]; the OAuth-style refusals
//! answer at once), then negotiates the response type ([`crate::negotiate`]: 406 where ORCID
//! would answer XML), then answers the v3 refusals (9017, 9038) in that type, then checks the
//! record exists and is usable (deprecated: 301 on reads, 409 on writes; deactivated: 409),
//! then does its work through [`crate::records::Records`] and renders with
//! [`crate::records::render`]. Request bodies are JSON or ORCID XML ([`crate::xml`]). Every v3
//! error body, unroutable paths included, is written in the negotiated type.

mod hooks;
mod read;
mod write;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use orcid::OrcidId;
use serde_json::{Value, json};

use crate::auth::{Caller, Need, authenticate};
use crate::errors::MORE_INFO;
use crate::negotiate::{self, BodyFormat, JsonType, NegotiationError};
use crate::records::render::{Ctx, Origin, Viewer};
use crate::records::{RecordError, RecordStatus};
use crate::state::SimState;
use crate::xml;

/// An early answer (an error response) from a helper; boxed because responses are large.
type Reply = Box<HttpResponse>;

/// Largest request body read (a bulk of 100 works with many contributors runs to megabytes).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Mounts the `/v3.0` routes and the `/_sim/records` hooks.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_sim/records")
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .configure(hooks::configure),
    );
    cfg.service(
        web::scope("/v3.0")
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .service(
                web::resource(["/{orcid}", "/{orcid}/record"])
                    .route(web::get().to(read::record))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{orcid}/{name}")
                    .route(web::get().to(read::named))
                    .route(web::post().to(write::create))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{orcid}/{name}/summary/{put_code}")
                    .route(web::get().to(read::summary))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{orcid}/{name}/{put_code}")
                    .route(web::get().to(read::item))
                    .route(web::put().to(write::update))
                    .route(web::delete().to(write::delete))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(unrouted)),
    );
}

/// A v3 error body in `json`.
fn v3_response(
    status: u16,
    code: u32,
    developer: &str,
    user: &str,
    json: JsonType,
) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    HttpResponse::build(status)
        .content_type(json.content_type())
        .body(
            json!({
                "response-code": status.as_u16(),
                "developer-message": developer,
                "user-message": user,
                "error-code": code,
                "more-info": MORE_INFO,
            })
            .to_string(),
        )
}

/// The 406 or 415 answer for a negotiation failure, in `json` (a 406 has nothing better to
/// answer in than `application/vnd.orcid+json`).
fn negotiation_response(err: &NegotiationError, json: JsonType) -> HttpResponse {
    v3_response(
        err.status(),
        9001,
        &err.message(),
        "ORCID could not process the data, because they were invalid.",
        json,
    )
}

/// The JSON type to answer `req` in, or the 406 to send: every v3 body the API writes, errors
/// included, goes through here, so a client that would get XML from ORCID never silently gets
/// JSON.
fn negotiated(req: &HttpRequest) -> Result<JsonType, Reply> {
    negotiate::response_type(req)
        .map_err(|e| Box::new(negotiation_response(&e, JsonType::VndOrcid)))
}

/// ORCID's answer to anything it cannot route: 404 with code 9001 (or the 406 of
/// [`negotiated`]).
fn unrouted_response(req: &HttpRequest, detail: &str) -> HttpResponse {
    match negotiated(req) {
        Ok(json) => v3_response(
            404,
            9001,
            &format!(
                "400 Bad Request: There is an issue with your data or the API endpoint. 405 Method Not Allowed: Endpoint and method mismatch. 415 Unsupported Media Type: data must be in XML or JSON format. Full validation error: {detail}"
            ),
            "ORCID could not process the data, because they were invalid.",
            json,
        ),
        Err(response) => *response,
    }
}

async fn unrouted(req: HttpRequest) -> HttpResponse {
    unrouted_response(&req, "HTTP 404 Not Found")
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    match negotiated(&req) {
        Ok(json) => v3_response(
            405,
            9001,
            "400 Bad Request: There is an issue with your data or the API endpoint. 405 Method Not Allowed: Endpoint and method mismatch. 415 Unsupported Media Type: data must be in XML or JSON format. Full validation error: HTTP 405 Method Not Allowed",
            "ORCID could not process the data, because they were invalid.",
            json,
        ),
        Err(response) => *response,
    }
}

/// A records error in ORCID's v3 format.
fn error_response(
    err: &RecordError,
    json: JsonType,
    client_name: Option<&str>,
    location: Option<String>,
) -> HttpResponse {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut builder = HttpResponse::build(status);
    builder.content_type(json.content_type());
    if let Some(location) = location {
        builder.insert_header((actix_web::http::header::LOCATION, location));
    }
    builder.body(err.body(client_name).to_string())
}

/// A 200 (or other) JSON answer.
fn json_response(status: StatusCode, json: JsonType, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(json.content_type())
        .body(body.to_string())
}

/// What every `/v3.0` handler establishes before doing its work.
struct Call {
    orcid: OrcidId,
    caller: Caller,
    json: JsonType,
    origin: Origin,
}

impl Call {
    /// Authenticates, negotiates and checks the record (see the module docs). `Err` is the
    /// response to send.
    ///
    /// Order as at ORCID: the bearer filter's OAuth-style refusals (no token, bad token) come
    /// first and are always JSON; then content negotiation (406); then the v3-format refusals
    /// (9017 wrong record, 9038 missing scope) and everything else, in the negotiated type.
    fn begin(state: &SimState, req: &HttpRequest, orcid: &str, need: Need) -> Result<Call, Reply> {
        let Ok(id) = OrcidId::parse(orcid)
            .map_err(|_| ())
            .and_then(|id| if orcid.len() == 19 { Ok(id) } else { Err(()) })
        else {
            let json = negotiated(req)?;
            return Err(Box::new(error_response(
                &RecordError::NotFound,
                json,
                None,
                None,
            )));
        };
        let authenticated = authenticate(state, req, &id, need);
        let authenticated = match authenticated {
            Err(failure) if failure.v3_code().is_none() => {
                return Err(Box::new(failure.into_response()));
            }
            other => other,
        };
        let json = negotiated(req)?;
        let caller = authenticated.map_err(|f| Box::new(f.into_response_as(json)))?;
        let origin = Origin::new(&state.public_url);
        let client_name = caller.client_name.clone();
        let fail = |err: RecordError, location: Option<String>| {
            Box::new(error_response(&err, json, Some(&client_name), location))
        };
        match state.records.status(&id) {
            None => return Err(fail(RecordError::NotFound, None)),
            Some(RecordStatus::Active) => {}
            Some(RecordStatus::Deprecated { primary }) => {
                let read = need == Need::Read;
                // The same path on the primary record.
                let prefix = format!("/v3.0/{id}");
                let rest = req.path().strip_prefix(&prefix).unwrap_or_default();
                let location = read.then(|| format!("{}/v3.0/{primary}{rest}", origin.public_url));
                let err = RecordError::Deprecated {
                    orcid: id,
                    primary,
                    primary_uri: format!("{}/{primary}", origin.public_url),
                    read,
                };
                return Err(fail(err, location));
            }
            Some(RecordStatus::Deactivated) => {
                return Err(fail(RecordError::Deactivated { orcid: id }, None));
            }
        }
        Ok(Call {
            orcid: id,
            caller,
            json,
            origin,
        })
    }

    fn viewer(&self) -> Viewer {
        Viewer {
            client_id: Some(self.caller.client_id.clone()),
            activities_limited: self.caller.read_limited_activities,
            person_limited: self.caller.read_limited_person,
            everything: false,
        }
    }

    fn ctx<'a>(&'a self, owner_name: &'a str, viewer: &'a Viewer) -> Ctx<'a> {
        Ctx {
            origin: &self.origin,
            orcid: self.orcid,
            owner_name,
            viewer,
        }
    }

    fn fail(&self, err: &RecordError) -> HttpResponse {
        error_response(err, self.json, Some(&self.caller.client_name), None)
    }

    fn ok(&self, body: &Value) -> HttpResponse {
        json_response(StatusCode::OK, self.json, body)
    }
}

/// A put code from the path; ORCID answers a non-numeric one as an unroutable path.
fn parse_put_code(req: &HttpRequest, raw: &str) -> Result<u64, Reply> {
    raw.parse::<u64>().map_err(|_| {
        Box::new(unrouted_response(
            req,
            &format!(
                "HTTP 404 Not Found (java.lang.NumberFormatException: For input string: \"{raw}\")"
            ),
        ))
    })
}

/// Reads a request body in `format` into the JSON value the records side takes: JSON as is,
/// XML through [`crate::xml`] (its root element must be `root`; a bulk becomes
/// `{"bulk": [{"work": …}, …]}`). 400 9001 when it cannot be read.
fn parse_body(format: BodyFormat, body: &[u8], root: &str) -> Result<Value, RecordError> {
    match format {
        BodyFormat::Json => {
            serde_json::from_slice(body).map_err(|e| RecordError::Unparseable(e.to_string()))
        }
        BodyFormat::Xml => {
            let parsed = xml::parse(body).map_err(|e| RecordError::Unparseable(e.to_string()))?;
            if parsed.root != root {
                return Err(RecordError::Unparseable(format!(
                    "expected the root element <{root}>, found <{}>",
                    parsed.root
                )));
            }
            if root != "bulk" {
                return Ok(parsed.value);
            }
            // `<bulk:bulk><work:work>…</work:work>…</bulk:bulk>` is `{"bulk": [{"work": …}]}`.
            let works = match parsed.value {
                Value::Object(mut o) => o.remove("work"),
                _ => None,
            };
            let entries = match works {
                Some(Value::Array(works)) => works
                    .into_iter()
                    .map(|work| json!({ "work": work }))
                    .collect(),
                _ => Vec::new(),
            };
            Ok(json!({ "bulk": entries }))
        }
    }
}
