//! POST, PUT and DELETE handlers: create (single and bulk works), update, delete.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{Call, Reply, negotiation_response, parse_body, parse_put_code, unrouted_response};
use crate::auth::Need;
use crate::negotiate;
use crate::records::render::{self, Viewer};
use crate::records::{RecordError, Section, Writer};
use crate::state::SimState;

fn write_need(section: Section) -> Need {
    if section.is_person() {
        Need::WritePerson
    } else {
        Need::WriteActivities
    }
}

fn delete_need(section: Section) -> Need {
    if section.is_person() {
        Need::DeletePerson
    } else {
        Need::DeleteActivities
    }
}

/// Authenticates, negotiates, then checks and parses the body (JSON, or XML whose root element
/// must be `root`).
fn begin_with_body(
    state: &SimState,
    req: &HttpRequest,
    orcid: &str,
    need: Need,
    body: &[u8],
    root: &str,
) -> Result<(Call, Value), Reply> {
    let call = Call::begin(state, req, orcid, need)?;
    let format = negotiate::request_format(req)
        .map_err(|e| Box::new(negotiation_response(&e, call.json)))?;
    let value = parse_body(format, body, root).map_err(|e| Box::new(call.fail(&e)))?;
    Ok((call, value))
}

impl Call {
    fn writer(&self) -> Writer<'_> {
        Writer::Client {
            id: &self.caller.client_id,
            name: &self.caller.client_name,
        }
    }
}

/// `POST /v3.0/{orcid}/{section}`: 201 with `Location` and an empty body; and the bulk
/// `POST /v3.0/{orcid}/works`: 200 with each work or its error in place.
pub(super) async fn create(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (orcid, name) = path.into_inner();
    if name == "works" {
        return bulk_create(&state, &req, &orcid, &body);
    }
    let Some(section) = Section::from_item_path(&name) else {
        return unrouted_response(&req, "HTTP 404 Not Found");
    };
    let (call, value) = match begin_with_body(
        &state,
        &req,
        &orcid,
        write_need(section),
        &body,
        section.xml_root(),
    ) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    match state.records.create(
        &call.orcid,
        section,
        call.writer(),
        &value,
        &state.public_url,
    ) {
        Ok(item) => {
            state.record_changed(&call.orcid);
            HttpResponse::Created()
                .insert_header((
                    LOCATION,
                    format!(
                        "{}/v3.0/{}/{}/{}",
                        call.origin.public_url, call.orcid, name, item.put_code
                    ),
                ))
                .finish()
        }
        Err(err) => call.fail(&err),
    }
}

fn bulk_create(state: &SimState, req: &HttpRequest, orcid: &str, body: &[u8]) -> HttpResponse {
    let (call, value) =
        match begin_with_body(state, req, orcid, Need::WriteActivities, body, "bulk") {
            Ok(started) => started,
            Err(response) => return *response,
        };
    let Some(entries) = value.get("bulk").and_then(Value::as_array) else {
        return call.fail(&RecordError::InvalidJson(
            "expected {\"bulk\": [{\"work\": {…}}, …]}".to_owned(),
        ));
    };
    let results =
        match state
            .records
            .create_works(&call.orcid, call.writer(), entries, &state.public_url)
        {
            Ok(results) => results,
            Err(err) => return call.fail(&err),
        };
    if results.iter().any(Result::is_ok) {
        state.record_changed(&call.orcid);
    }
    let viewer = Viewer::everything();
    let owner = state.records.display_name(&call.orcid).unwrap_or_default();
    let ctx = call.ctx(&owner, &viewer);
    let bulk: Vec<Value> = results
        .iter()
        .map(|result| match result {
            Ok(item) => json!({ "work": render::full(item, &ctx) }),
            Err(err) => json!({ "error": err.body(Some(&call.caller.client_name)) }),
        })
        .collect();
    call.ok(&json!({ "bulk": bulk }))
}

/// `PUT /v3.0/{orcid}/{section}/{put-code}`: 200 with the stored item.
pub(super) async fn update(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (orcid, name, put_code) = path.into_inner();
    let Some(section) = Section::from_item_path(&name) else {
        return unrouted_response(&req, "HTTP 404 Not Found");
    };
    let put_code = match parse_put_code(&req, &put_code) {
        Ok(pc) => pc,
        Err(response) => return *response,
    };
    let (call, value) = match begin_with_body(
        &state,
        &req,
        &orcid,
        write_need(section),
        &body,
        section.xml_root(),
    ) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    match state.records.update(
        &call.orcid,
        section,
        put_code,
        call.writer(),
        &value,
        &state.public_url,
    ) {
        Ok((item, changed)) => {
            if changed {
                state.record_changed(&call.orcid);
            }
            let viewer = Viewer::everything();
            let owner = state.records.display_name(&call.orcid).unwrap_or_default();
            call.ok(&render::full(&item, &call.ctx(&owner, &viewer)))
        }
        Err(err) => call.fail(&err),
    }
}

/// `DELETE /v3.0/{orcid}/{section}/{put-code}`: 204.
pub(super) async fn delete(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (orcid, name, put_code) = path.into_inner();
    let Some(section) = Section::from_item_path(&name) else {
        return unrouted_response(&req, "HTTP 404 Not Found");
    };
    let put_code = match parse_put_code(&req, &put_code) {
        Ok(pc) => pc,
        Err(response) => return *response,
    };
    let call = match Call::begin(&state, &req, &orcid, delete_need(section)) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    match state
        .records
        .delete(&call.orcid, section, put_code, call.writer())
    {
        Ok(()) => {
            state.record_changed(&call.orcid);
            HttpResponse::build(StatusCode::NO_CONTENT).finish()
        }
        Err(err) => call.fail(&err),
    }
}
