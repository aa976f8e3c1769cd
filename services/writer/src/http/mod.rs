//! The writer's HTTP API (actix-web): HR event intake for HR systems and ledger reads for
//! the portal and reports. Every route but `/health` needs a caller token ([`auth`]) and a
//! right; errors are JSON ([`error`]); the bodies are the types of [`crate::api`].
//!
//! | route | right |
//! |---|---|
//! | `POST /api/v1/hr-events` | `hr-events:write` |
//! | `GET /api/v1/items?person_id=&state=&after=&limit=` | `items:read` |
//! | `GET /api/v1/items/{id}/attempts` | `items:read` |
//! | `GET /api/v1/summary?days=` | `items:read` |
//! | `GET /api/v1/invitations?state=&person_id=&limit=&offset=` | `invitations:read` |
//! | `POST /api/v1/invitations/{person_id}/resend` | `invitations:manage` |
//! | `GET /health` | — |
//!
//! Another method on a known route is answered `405 method_not_allowed` with `Allow`.

pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod intake;
pub(crate) mod invitations;
mod items;

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::{App, HttpResponse, HttpServer, web};
use idbridge_platform::telemetry::http::{RequestSpan, TracingLogger};

use self::auth::Callers;
use self::error::ApiError;
use self::intake::Intake;
use self::invitations::InvitationsApi;
use crate::ledger::Ledger;

/// Builds the server on `listener` (not yet polled: spawn it).
pub(crate) fn server(
    listener: TcpListener,
    workers: usize,
    callers: Callers,
    intake: Intake,
    ledger: Ledger,
    invitations: InvitationsApi,
) -> std::io::Result<Server> {
    let callers = web::Data::new(callers);
    let intake = web::Data::new(intake);
    let ledger = web::Data::new(ledger);
    let invitations = web::Data::new(invitations);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap_fn(|req, srv| {
                // Method, path, status, time; never headers (the bearer token) or bodies.
                let method = req.method().clone();
                let path = req.path().to_owned();
                let started = Instant::now();
                let call = srv.call(req);
                async move {
                    let response = call.await?;
                    tracing::info!(
                        %method,
                        %path,
                        status = response.status().as_u16(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "request"
                    );
                    Ok(response)
                }
            })
            // Outermost: the request span covers everything, the log line included.
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(callers.clone())
            .app_data(intake.clone())
            .app_data(ledger.clone())
            .app_data(invitations.clone())
            .configure(configure)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)?
    .run())
}

fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::BadRequest(format!("the query string is invalid: {e}")).into()
    }))
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("the path is invalid: {e}")).into()),
    )
    .service(only("/health", "GET", web::get().to(health)))
    .service(
        web::scope("/api/v1")
            .service(only(
                "/hr-events",
                "POST",
                web::post().to(intake::post_hr_events),
            ))
            .service(only("/items", "GET", web::get().to(items::list)))
            .service(only(
                "/items/{id}/attempts",
                "GET",
                web::get().to(items::attempts),
            ))
            .service(only("/summary", "GET", web::get().to(items::summary)))
            .service(only(
                "/invitations",
                "GET",
                web::get().to(invitations::list),
            ))
            .service(only(
                "/invitations/{person_id}/resend",
                "POST",
                web::post().to(invitations::resend),
            )),
    )
    .default_service(web::to(not_found));
}

/// A resource answering `route`, and any other method with a JSON 405 naming `allow`
/// (actix's own 405 has no body).
fn only(path: &str, allow: &'static str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move || async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
        }))
}

/// `GET /health`: the process serves.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(
        "no such route; the API has POST /api/v1/hr-events, GET /api/v1/items, GET /api/v1/items/{id}/attempts, GET /api/v1/summary, GET /api/v1/invitations, POST /api/v1/invitations/{person_id}/resend and GET /health".to_owned(),
    ))
}
