//! The portal's routes.
//!
//! | Route | What |
//! |---|---|
//! | `GET /` | to `/me` when signed in, else `/signin` |
//! | `GET /signin`, `POST /signin/dev`, `GET /signin/oidc`, `GET /signin/oidc/callback`, `POST /signout` | sign-in |
//! | `GET /connect`, `GET /connect/orcid`, `GET /orcid/callback` | connecting an iD |
//! | `GET /me`, `GET /disconnect`, `POST /disconnect` | the researcher's page |
//! | `GET /admin`, `GET /admin/reports/{name}.{csv,json}`, `GET /admin/failures`, `POST /admin/failures/replay`, `GET /admin/items`, `GET /admin/items/{id}`, `GET /admin/invitations`, `POST /admin/invitations/{person_id}/resend` | administrators |
//! | `GET /static/portal.css`, `GET /static/orcid-id.svg`, `GET /health` | assets |

pub(crate) mod admin;
pub(crate) mod connect;
pub(crate) mod failures;
pub(crate) mod invitations;
pub(crate) mod me;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::pages::PageError;
use crate::signin;
use crate::state::{AppState, see_other};

const CSS: &str = include_str!("../../static/portal.css");
const ICON: &str = include_str!("../../static/orcid-id.svg");

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/health", web::get().to(health))
        .route("/static/portal.css", web::get().to(css))
        .route("/static/orcid-id.svg", web::get().to(icon))
        .route("/signin", web::get().to(signin::page))
        .route("/signin/dev", web::post().to(signin::dev::sign_in))
        .route("/signin/oidc", web::get().to(signin::oidc::start))
        .route(
            "/signin/oidc/callback",
            web::get().to(signin::oidc::callback),
        )
        .route("/signout", web::post().to(signin::sign_out))
        .route("/connect", web::get().to(connect::page))
        .route("/connect/orcid", web::get().to(connect::start))
        .route("/orcid/callback", web::get().to(connect::callback))
        .route("/me", web::get().to(me::page))
        .route("/disconnect", web::get().to(me::confirm))
        .route("/disconnect", web::post().to(me::disconnect))
        .route("/admin", web::get().to(admin::page))
        .route("/admin/reports/{name}.{ext}", web::get().to(admin::report))
        .route("/admin/failures", web::get().to(failures::page))
        .route("/admin/failures/replay", web::post().to(failures::replay))
        .route("/admin/items", web::get().to(failures::items))
        .route("/admin/items/{id}", web::get().to(failures::item))
        .route("/admin/invitations", web::get().to(invitations::page))
        .route(
            "/admin/invitations/{person_id}/resend",
            web::post().to(invitations::resend),
        )
        .default_service(web::to(not_found));
}

async fn home(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    Ok(match state.current_user(&req, &session)? {
        Some(_) => see_other("/me"),
        None => see_other("/signin"),
    })
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(CSS)
}

async fn icon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(ICON)
}

async fn not_found(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    Err(state.error(
        &session,
        None,
        StatusCode::NOT_FOUND,
        "not_found",
        "Page not found",
        "There is no such page.",
    ))
}
