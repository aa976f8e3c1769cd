//! Test hooks under `/_sim/` (platform side). Each is documented, with examples, in the crate
//! README. Faults, stats and the rate limit do not apply here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use orcid::OrcidId;
use serde::Deserialize;
use serde_json::json;

use crate::faults::FaultSpec;
use crate::state::SimState;
use crate::users::CreateUserError;

/// Mounts the platform's `/_sim/` hooks.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sim/users", web::post().to(create_user))
        .route("/_sim/users/{orcid}", web::get().to(get_user))
        .route("/_sim/users/{orcid}/revoke", web::post().to(revoke_client))
        .route("/_sim/webhooks/flush", web::post().to(flush_webhooks))
        .route("/_sim/faults", web::post().to(add_fault))
        .route("/_sim/faults", web::get().to(list_faults))
        .route("/_sim/faults", web::delete().to(clear_faults))
        .route("/_sim/stats", web::get().to(stats))
        .route("/_sim/stats", web::delete().to(clear_stats))
        .route("/_sim/reset", web::post().to(reset));
}

fn hook_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// Body of `POST /_sim/users`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct NewUser {
    given_names: String,
    #[serde(default)]
    family_name: String,
    email: String,
    password: String,
}

async fn create_user(state: web::Data<SimState>, body: web::Bytes) -> HttpResponse {
    let user: NewUser = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return hook_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected {{\"given-names\",\"family-name\",\"email\",\"password\"}}: {e}"
                ),
            );
        }
    };
    if user.given_names.trim().is_empty() || !user.email.contains('@') || user.password.is_empty() {
        return hook_error(
            StatusCode::BAD_REQUEST,
            "given-names, a valid email and a password are required",
        );
    }
    match state.users.create(&user.email, &user.password) {
        Ok(created) => {
            state.records.create_record(
                created.orcid,
                user.given_names.trim(),
                user.family_name.trim(),
                &created.email,
            );
            HttpResponse::Created().json(json!({ "orcid": created.orcid }))
        }
        Err(CreateUserError::EmailTaken) => {
            hook_error(StatusCode::CONFLICT, "that email is already registered")
        }
        Err(e @ CreateUserError::OutOfIds) => {
            hook_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

fn bad_orcid(e: &orcid::OrcidIdError) -> HttpResponse {
    hook_error(StatusCode::BAD_REQUEST, &e.to_string())
}

async fn get_user(state: web::Data<SimState>, path: web::Path<String>) -> HttpResponse {
    let orcid = match OrcidId::parse(&path) {
        Ok(o) => o,
        Err(e) => return bad_orcid(&e),
    };
    // The name as the record holds it now (the settings hook may have changed it).
    match (state.users.get(&orcid), state.records.person(&orcid)) {
        (Some(u), Some(person)) => HttpResponse::Ok().json(json!({
            "orcid": u.orcid,
            "given-names": person.given_names,
            "family-name": person.family_name,
            "email": u.email,
        })),
        _ => hook_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

#[derive(Debug, Deserialize)]
struct RevokeBody {
    client_id: String,
}

async fn revoke_client(
    state: web::Data<SimState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let orcid = match OrcidId::parse(&path) {
        Ok(o) => o,
        Err(e) => return bad_orcid(&e),
    };
    let Ok(RevokeBody { client_id }) = serde_json::from_slice(&body) else {
        return hook_error(StatusCode::BAD_REQUEST, "expected {\"client_id\": \"…\"}");
    };
    if !state.users.exists(&orcid) {
        return hook_error(StatusCode::NOT_FOUND, "no such user");
    }
    let revoked = state.tokens.revoke_by_user(&orcid, &client_id);
    HttpResponse::Ok().json(json!({ "revoked": revoked }))
}

async fn flush_webhooks(state: web::Data<SimState>) -> HttpResponse {
    match state.flush_webhooks().await {
        Some(summary) => HttpResponse::Ok().json(summary),
        None => hook_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook delivery has stopped",
        ),
    }
}

async fn add_fault(state: web::Data<SimState>, body: web::Bytes) -> HttpResponse {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return hook_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match state.faults.add(spec) {
        Ok(id) => HttpResponse::Created().json(json!({ "id": id, "rules": state.faults.list() })),
        Err(e) => hook_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn list_faults(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "rules": state.faults.list() }))
}

async fn clear_faults(state: web::Data<SimState>) -> HttpResponse {
    state.faults.clear();
    HttpResponse::NoContent().finish()
}

async fn stats(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.stats.snapshot())
}

async fn clear_stats(state: web::Data<SimState>) -> HttpResponse {
    state.stats.clear();
    HttpResponse::NoContent().finish()
}

async fn reset(state: web::Data<SimState>) -> HttpResponse {
    state.users.clear();
    state.tokens.clear();
    state.codes.clear();
    state.webhooks.clear();
    state.faults.clear();
    state.stats.clear();
    if let Some(limiter) = &state.rate_limiter {
        limiter.clear();
    }
    state.records.reset();
    HttpResponse::NoContent().finish()
}
