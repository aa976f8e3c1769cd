//! Test hooks on records, under `/_sim/records` (JSON in and out; no authentication). Errors
//! are `{"error": "…"}` like the platform's hooks. Every hook that changes a record calls
//! [`SimState::record_changed`], as a change made on ORCID's site would.
//!
//! | Hook | Effect |
//! |---|---|
//! | `GET /_sim/records/{orcid}` | the whole record: user info, settings, every item (private too) |
//! | `POST /_sim/records/{orcid}/settings` | default visibility, name, biography, email and their visibility |
//! | `POST /_sim/records/{orcid}/limits` | `{"max-works": n}` |
//! | `POST /_sim/records/{orcid}/deprecate` | `{"primary": "iD"}` |
//! | `POST /_sim/records/{orcid}/deactivate`, `/reactivate` | |
//! | `POST /_sim/records/{orcid}/{section}` | the user adds an item (source = the user) |
//! | `PUT /_sim/records/{orcid}/{section}/{pc}` | the user edits an item (JSON merge patch) |
//! | `DELETE /_sim/records/{orcid}/{section}/{pc}` | the user deletes an item |
//! | `POST /_sim/records/orgs` | ORCID's org database learns `{disambiguation-source, disambiguated-organization-identifier}` |

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use orcid::OrcidId;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Reply;
use crate::records::render::{self, Ctx, Origin, Viewer};
use crate::records::{RecordError, RecordStatus, Section, SettingsPatch, Writer};
use crate::state::SimState;

/// Mounts the hooks (inside the `/_sim/records` scope).
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/orgs", web::post().to(add_org))
        .route("/{orcid}", web::get().to(export))
        .route("/{orcid}/settings", web::post().to(settings))
        .route("/{orcid}/limits", web::post().to(limits))
        .route("/{orcid}/deprecate", web::post().to(deprecate))
        .route("/{orcid}/deactivate", web::post().to(deactivate))
        .route("/{orcid}/reactivate", web::post().to(reactivate))
        .route("/{orcid}/{section}", web::post().to(user_add))
        .route("/{orcid}/{section}/{put_code}", web::put().to(user_edit))
        .route(
            "/{orcid}/{section}/{put_code}",
            web::delete().to(user_delete),
        );
}

fn hook_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// [`hook_error`] as an early answer.
fn reject(status: StatusCode, message: &str) -> Reply {
    Box::new(hook_error(status, message))
}

fn record_error(err: &RecordError) -> HttpResponse {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let status = if status == StatusCode::MOVED_PERMANENTLY {
        StatusCode::CONFLICT
    } else {
        status
    };
    HttpResponse::build(status).json(json!({
        "error": err.developer_message(),
        "error-code": err.code(),
    }))
}

fn parse_orcid(raw: &str) -> Result<OrcidId, Reply> {
    OrcidId::parse(raw)
        .map_err(|e| reject(StatusCode::BAD_REQUEST, &format!("not an ORCID iD: {e}")))
}

fn existing(state: &SimState, raw: &str) -> Result<OrcidId, Reply> {
    let orcid = parse_orcid(raw)?;
    if state.records.exists(&orcid) {
        Ok(orcid)
    } else {
        Err(reject(StatusCode::NOT_FOUND, &format!("no record {orcid}")))
    }
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8], expected: &str) -> Result<T, Reply> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        reject(
            StatusCode::BAD_REQUEST,
            &format!("expected {expected}: {e}"),
        )
    })
}

fn section(raw: &str) -> Result<Section, Reply> {
    Section::from_item_path(raw).ok_or_else(|| {
        let known: Vec<&str> = Section::ALL.iter().map(|s| s.item_path()).collect();
        reject(
            StatusCode::NOT_FOUND,
            &format!("unknown section {raw}; known: {}", known.join(", ")),
        )
    })
}

fn visibility_name(v: crate::records::Visibility) -> &'static str {
    v.as_str()
}

/// `GET /_sim/records/{orcid}`.
async fn export(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    let orcid = match existing(&state, &path) {
        Ok(o) => o,
        Err(response) => return *response,
    };
    let Some(snapshot) = state.records.snapshot(&orcid, |_| true) else {
        return hook_error(StatusCode::NOT_FOUND, &format!("no record {orcid}"));
    };
    let origin = Origin::new(&state.public_url);
    let viewer = Viewer::everything();
    let owner = snapshot.person.display_name();
    let ctx = Ctx {
        origin: &origin,
        orcid,
        owner_name: &owner,
        viewer: &viewer,
    };
    let mut items = Map::new();
    for section in Section::ALL {
        let list: Vec<Value> = snapshot
            .items
            .iter()
            .filter(|i| i.section == section)
            .map(|i| render::full(i, &ctx))
            .collect();
        items.insert(section.list_path().to_owned(), Value::Array(list));
    }
    let p = &snapshot.person;
    let (status, primary) = match &snapshot.status {
        RecordStatus::Active => ("active", None),
        RecordStatus::Deprecated { primary } => ("deprecated", Some(primary.to_string())),
        RecordStatus::Deactivated => ("deactivated", None),
    };
    HttpResponse::Ok().json(json!({
        "orcid": orcid.to_string(),
        "given-names": p.given_names,
        "family-name": p.family_name,
        "credit-name": p.credit_name,
        "name-visibility": visibility_name(p.name_visibility),
        "biography": p.biography,
        "biography-visibility": visibility_name(p.biography_visibility),
        "email": p.email,
        "email-visibility": visibility_name(p.email_visibility),
        "default-visibility": visibility_name(snapshot.default_visibility),
        "status": status,
        "primary": primary,
        "max-works": snapshot.max_works,
        "created-date": { "value": snapshot.created_ms },
        "last-modified-date": { "value": snapshot.last_modified_ms },
        "items": items,
    }))
}

/// `POST /_sim/records/{orcid}/settings`.
async fn settings(
    state: web::Data<SimState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let orcid = match existing(&state, &path) {
        Ok(o) => o,
        Err(response) => return *response,
    };
    let patch: SettingsPatch = match json_body(
        &body,
        "{\"default-visibility\", \"given-names\", \"family-name\", \"credit-name\", \"name-visibility\", \"biography\", \"biography-visibility\", \"email\", \"email-visibility\"}",
    ) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    match state.records.apply_settings(&orcid, &patch) {
        Ok(changed) => {
            if changed {
                state.record_changed(&orcid);
            }
            export(state, web::Path::from(orcid.to_string())).await
        }
        Err(err) => record_error(&err),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Limits {
    max_works: usize,
}

/// `POST /_sim/records/{orcid}/limits`.
async fn limits(
    state: web::Data<SimState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let orcid = match existing(&state, &path) {
        Ok(o) => o,
        Err(response) => return *response,
    };
    let limits: Limits = match json_body(&body, "{\"max-works\": n}") {
        Ok(l) => l,
        Err(response) => return *response,
    };
    match state.records.set_max_works(&orcid, limits.max_works) {
        Ok(()) => HttpResponse::Ok().json(json!({ "max-works": limits.max_works })),
        Err(err) => record_error(&err),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deprecation {
    primary: String,
}

async fn set_status(
    state: &SimState,
    raw: &str,
    status: impl FnOnce(OrcidId) -> Result<RecordStatus, Reply>,
) -> HttpResponse {
    let orcid = match existing(state, raw) {
        Ok(o) => o,
        Err(response) => return *response,
    };
    let status = match status(orcid) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    match state.records.set_status(&orcid, status) {
        Ok(()) => {
            state.record_changed(&orcid);
            HttpResponse::NoContent().finish()
        }
        Err(err) => record_error(&err),
    }
}

/// `POST /_sim/records/{orcid}/deprecate` with `{"primary": "iD"}`.
async fn deprecate(
    state: web::Data<SimState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    set_status(&state, &path, |orcid| {
        let request: Deprecation = json_body(&body, "{\"primary\": \"0000-…\"}")?;
        let primary = parse_orcid(&request.primary)?;
        if primary == orcid {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "a record cannot be deprecated in favour of itself",
            ));
        }
        Ok(RecordStatus::Deprecated { primary })
    })
    .await
}

/// `POST /_sim/records/{orcid}/deactivate`.
async fn deactivate(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    set_status(&state, &path, |_| Ok(RecordStatus::Deactivated)).await
}

/// `POST /_sim/records/{orcid}/reactivate`.
async fn reactivate(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    set_status(&state, &path, |_| Ok(RecordStatus::Active)).await
}

/// `POST /_sim/records/{orcid}/{section}`: the user adds an item; 201 with `Location` and
/// `{"put-code": n}`.
async fn user_add(
    state: web::Data<SimState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (raw, name) = path.into_inner();
    let orcid = match existing(&state, &raw) {
        Ok(o) => o,
        Err(response) => return *response,
    };
    let section = match section(&name) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let value: Value = match json_body(&body, "an item as JSON") {
        Ok(v) => v,
        Err(response) => return *response,
    };
    match state
        .records
        .create(&orcid, section, Writer::User, &value, &state.public_url)
    {
        Ok(item) => {
            state.record_changed(&orcid);
            HttpResponse::Created()
                .insert_header((
                    LOCATION,
                    format!(
                        "{}/v3.0/{}/{}/{}",
                        state.public_url,
                        orcid,
                        section.item_path(),
                        item.put_code
                    ),
                ))
                .json(json!({ "put-code": item.put_code }))
        }
        Err(err) => record_error(&err),
    }
}

fn item_target(
    state: &SimState,
    raw: &str,
    name: &str,
    put_code: &str,
) -> Result<(OrcidId, Section, u64), Reply> {
    let orcid = existing(state, raw)?;
    let section = section(name)?;
    let put_code = put_code.parse::<u64>().map_err(|_| {
        reject(
            StatusCode::NOT_FOUND,
            &format!("not a put code: {put_code}"),
        )
    })?;
    Ok((orcid, section, put_code))
}

/// `PUT /_sim/records/{orcid}/{section}/{put-code}`: the user edits the item; `200` with the
/// item as its source would read it.
async fn user_edit(
    state: web::Data<SimState>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (raw, name, put_code) = path.into_inner();
    let (orcid, section, put_code) = match item_target(&state, &raw, &name, &put_code) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let patch: Value = match json_body(&body, "a JSON merge patch") {
        Ok(v) => v,
        Err(response) => return *response,
    };
    match state.records.user_edit(&orcid, section, put_code, &patch) {
        Ok(item) => {
            state.record_changed(&orcid);
            let origin = Origin::new(&state.public_url);
            let viewer = Viewer::everything();
            let owner = state.records.display_name(&orcid).unwrap_or_default();
            let ctx = Ctx {
                origin: &origin,
                orcid,
                owner_name: &owner,
                viewer: &viewer,
            };
            HttpResponse::Ok().json(render::full(&item, &ctx))
        }
        Err(err) => record_error(&err),
    }
}

/// `DELETE /_sim/records/{orcid}/{section}/{put-code}`: the user deletes the item; 204.
async fn user_delete(
    state: web::Data<SimState>,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (raw, name, put_code) = path.into_inner();
    let (orcid, section, put_code) = match item_target(&state, &raw, &name, &put_code) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    match state
        .records
        .delete(&orcid, section, put_code, Writer::User)
    {
        Ok(()) => {
            state.record_changed(&orcid);
            HttpResponse::NoContent().finish()
        }
        Err(err) => record_error(&err),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct NewOrg {
    disambiguation_source: String,
    disambiguated_organization_identifier: String,
}

/// `POST /_sim/records/orgs`: 204.
async fn add_org(state: web::Data<SimState>, body: web::Bytes) -> HttpResponse {
    let org: NewOrg = match json_body(
        &body,
        "{\"disambiguation-source\", \"disambiguated-organization-identifier\"}",
    ) {
        Ok(o) => o,
        Err(response) => return *response,
    };
    if !crate::records::orgs::SOURCES.contains(&org.disambiguation_source.as_str()) {
        return hook_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "disambiguation-source must be one of {}",
                crate::records::orgs::SOURCES.join(", ")
            ),
        );
    }
    state.records.add_known_org(
        &org.disambiguation_source,
        &org.disambiguated_organization_identifier,
    );
    HttpResponse::NoContent().finish()
}
