//! GET handlers: the record, its sections, listings, single items, summaries and bulk reads.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{Call, parse_put_code, unrouted_response};
use crate::auth::Need;
use crate::records::render::{self, Viewer};
use crate::records::{MAX_BULK_READ, RecordError, Section};
use crate::state::SimState;

/// `GET /v3.0/{orcid}` and `/v3.0/{orcid}/record`.
pub(super) async fn record(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let call = match Call::begin(&state, &req, &path, Need::Read) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    let Some(snapshot) = state.records.snapshot(&call.orcid, |_| true) else {
        return call.fail(&RecordError::NotFound);
    };
    let viewer = call.viewer();
    let owner = snapshot.person.display_name();
    call.ok(&render::record(&snapshot, &call.ctx(&owner, &viewer)))
}

/// `GET /v3.0/{orcid}/{name}`: a section of the record or a listing.
pub(super) async fn named(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (orcid, name) = path.into_inner();
    let listed = Section::from_list_path(&name);
    let known = listed.is_some()
        || matches!(
            name.as_str(),
            "activities"
                | "person"
                | "personal-details"
                | "biography"
                | "email"
                | "peer-reviews"
                | "research-resources"
        );
    if !known {
        return unrouted_response(&req, "HTTP 404 Not Found");
    }
    let call = match Call::begin(&state, &req, &orcid, Need::Read) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    let wanted = |section: Section| match name.as_str() {
        "activities" => !section.is_person(),
        "person" => section.is_person(),
        "personal-details" => section == Section::OtherName,
        _ => Some(section) == listed,
    };
    let Some(snapshot) = state.records.snapshot(&call.orcid, wanted) else {
        return call.fail(&RecordError::NotFound);
    };
    let viewer = call.viewer();
    let owner = snapshot.person.display_name();
    let ctx = call.ctx(&owner, &viewer);
    let body = match (name.as_str(), listed) {
        (_, Some(section)) => render::listing(&snapshot, section, &ctx),
        ("activities", _) => render::activities(&snapshot, &ctx),
        ("person", _) => render::person(&snapshot, &ctx),
        ("personal-details", _) => render::personal_details(&snapshot, &ctx),
        ("email", _) => render::emails(&snapshot, &ctx),
        ("biography", _) => match render::biography(&snapshot, &ctx) {
            Ok(Some(body)) => body,
            Ok(None) => return call.fail(&RecordError::NoBiography),
            Err(err) => return call.fail(&err),
        },
        (other, _) => render::empty_listing(other, &ctx),
    };
    call.ok(&body)
}

/// `GET /v3.0/{orcid}/{section}/{put-code}`, and the bulk read `GET /v3.0/{orcid}/works/{a,b,…}`.
pub(super) async fn item(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (orcid, name, put_code) = path.into_inner();
    if name == "works" {
        return bulk_read(&state, &req, &orcid, &put_code);
    }
    let Some(section) = Section::from_item_path(&name) else {
        return unrouted_response(&req, "HTTP 404 Not Found");
    };
    one(&state, &req, &orcid, section, &put_code, render::full)
}

/// `GET /v3.0/{orcid}/{section}/summary/{put-code}` (activities only).
pub(super) async fn summary(
    state: web::Data<SimState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (orcid, name, put_code) = path.into_inner();
    let Some(section) = Section::from_item_path(&name).filter(|s| !s.is_person()) else {
        return unrouted_response(&req, "HTTP 404 Not Found");
    };
    one(&state, &req, &orcid, section, &put_code, render::summary)
}

fn one(
    state: &SimState,
    req: &HttpRequest,
    orcid: &str,
    section: Section,
    put_code: &str,
    shape: fn(&crate::records::Item, &render::Ctx<'_>) -> Value,
) -> HttpResponse {
    let put_code = match parse_put_code(req, put_code) {
        Ok(pc) => pc,
        Err(response) => return *response,
    };
    let call = match Call::begin(state, req, orcid, Need::Read) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    let viewer = call.viewer();
    let (item, owner) = match state.records.item(&call.orcid, section, put_code) {
        Ok(found) => found,
        Err(err) => return call.fail(&err),
    };
    if let Err(err) = viewer.check(&item) {
        return call.fail(&err);
    }
    call.ok(&shape(&item, &call.ctx(&owner, &viewer)))
}

/// Up to [`MAX_BULK_READ`] works; each entry is the work or an error in place (§2.2, §3.6).
fn bulk_read(state: &SimState, req: &HttpRequest, orcid: &str, list: &str) -> HttpResponse {
    let call = match Call::begin(state, req, orcid, Need::Read) {
        Ok(call) => call,
        Err(response) => return *response,
    };
    let raw: Vec<&str> = list.split(',').collect();
    if raw.len() > MAX_BULK_READ {
        return call.fail(&RecordError::TooManyPutCodes);
    }
    let mut put_codes = Vec::with_capacity(raw.len());
    for text in &raw {
        match text.trim().parse::<u64>() {
            Ok(pc) => put_codes.push(pc),
            Err(_) => {
                return call.fail(&RecordError::BadRequest(format!(
                    "For input string: \"{text}\""
                )));
            }
        }
    }
    let viewer: Viewer = call.viewer();
    let client_name = call.caller.client_name.clone();
    let entries: Vec<Value> = put_codes
        .into_iter()
        .map(|pc| {
            let found = state
                .records
                .item(&call.orcid, Section::Work, pc)
                .map_err(|_| RecordError::InvalidPutCode(pc.to_string()))
                .and_then(|(item, owner)| viewer.check(&item).map(|()| (item, owner)));
            match found {
                Ok((item, owner)) => {
                    json!({ "work": render::full(&item, &call.ctx(&owner, &viewer)) })
                }
                Err(err) => json!({ "error": err.body(Some(&client_name)) }),
            }
        })
        .collect();
    call.ok(&json!({ "bulk": entries }))
}
