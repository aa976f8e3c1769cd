//! Unauthenticated routes: health, the OpenAPI document, the hand-off public key.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::api::HandoffKey;
use crate::error::ApiError;
use idbridge_crypto::HandoffKeys;

/// The OpenAPI 3.1 document of the API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /health`: the process serves.
pub(super) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /openapi.json`.
pub(super) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(OPENAPI)
}

/// `GET /v1/handoff-key`: what the portal seals token responses to. Public keys are public.
pub(super) async fn handoff_key(
    keys: web::Data<std::sync::Arc<HandoffKeys>>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(HandoffKey {
        key_id: keys.active_key_id().as_str().to_owned(),
        public_key: keys.active_public_key().to_string(),
    }))
}
