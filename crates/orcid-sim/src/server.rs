//! Binding, routing, the platform middleware and the running server handle (platform side).

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, Error, HttpResponse, HttpServer, web};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::bearer_from_header;
use crate::config::SimConfig;
use crate::errors::{oauth_error, v3_error};
use crate::faults::Failure;
use crate::state::SimState;
use crate::{hooks, oauth, oidc, webhooks};

/// A running simulator. Dropping it does not stop the server; call [`SimHandle::stop`].
pub struct SimHandle {
    addr: SocketAddr,
    base_url: String,
    state: web::Data<SimState>,
    server: ServerHandle,
    server_task: JoinHandle<std::io::Result<()>>,
    webhook_task: JoinHandle<()>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR` (or the configured public URL): the base of every endpoint.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// The shared state, for in-process tests (e.g. [`SimState::record_changed`]).
    pub fn state(&self) -> &SimState {
        &self.state
    }
    /// Stops the server gracefully: in-flight requests finish (hung ones are released), the
    /// webhook delivery task ends.
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        self.server.stop(true).await;
        if let Err(e) = self.server_task.await {
            tracing::warn!(error = %e, "server task ended abnormally");
        }
        if let Err(e) = self.webhook_task.await {
            tracing::warn!(error = %e, "webhook task ended abnormally");
        }
    }
}

/// Binds `config.listen` and serves in the background on the current tokio runtime.
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = std::net::TcpListener::bind(config.listen)?;
    let addr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let (flush_tx, flush_rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let workers = config.workers.max(1);
    let state = SimState::new(config, public_url, flush_tx, shutdown.clone())
        .map_err(std::io::Error::other)?;
    let state = web::Data::new(state);
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap(from_fn(platform_layer))
            .configure(routes)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    let webhook_task = tokio::spawn(webhooks::delivery_task(state.clone(), flush_rx, shutdown));
    let base_url = state.public_url.clone();
    tracing::info!(%addr, %base_url, "orcid-sim serving");
    Ok(SimHandle {
        addr,
        base_url,
        state,
        server: handle,
        server_task,
        webhook_task,
    })
}

/// Every route, on one listener as ORCID's hosts would serve them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    hooks::configure(cfg);
    // Each ORCID-facing path answers other methods 405, as ORCID's Spring endpoints do.
    cfg.service(
        web::resource("/oauth/authorize")
            .route(web::get().to(oauth::authorize_get))
            .route(web::post().to(oauth::authorize_post))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/oauth/token")
            .route(web::post().to(oauth::token))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/oauth/revoke")
            .route(web::post().to(oauth::revoke))
            .default_service(not_allowed("POST")),
    )
    .service(
        web::resource("/oauth/jwks")
            .route(web::get().to(oidc::jwks))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/oauth/userinfo")
            .route(web::get().to(oidc::userinfo))
            .route(web::post().to(oidc::userinfo))
            .default_service(not_allowed("GET, POST")),
    )
    .service(
        web::resource("/.well-known/openid-configuration")
            .route(web::get().to(oidc::discovery))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/signout")
            .route(web::get().to(oauth::signout))
            .default_service(not_allowed("GET")),
    )
    .service(
        web::resource("/userStatus.json")
            .route(web::get().to(oauth::user_status))
            .default_service(not_allowed("GET")),
    );
    // Records side: the /v3.0 routes and the records' /_sim/records hooks. Before the webhook
    // routes, so `/v3.0/…` never reaches `/{orcid}/webhook/…`.
    crate::api::configure(cfg);
    cfg.route(
        "/{orcid}/webhook/{callback:.*}",
        web::put().to(webhooks::register),
    )
    .route(
        "/{orcid}/webhook/{callback:.*}",
        web::delete().to(webhooks::unregister),
    );
}

/// 405 with `Allow` and the OAuth-style body Spring's endpoints answer
/// (`{"error":"method_not_allowed","error_description":"Request method 'GET' not supported"}`).
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move |req: actix_web::HttpRequest| async move {
        let mut res = oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("Request method '{}' not supported", req.method()),
        );
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
            res.headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        res
    })
}

/// Whether the rate limit counts this path: the member API and the webhook API.
fn rate_limited_path(path: &str) -> bool {
    path.starts_with("/v3.0/") || path.contains("/webhook/")
}

/// Rate limit, faults and stats for every route but `/_sim/`.
async fn platform_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<SimState>>().cloned();
    let Some(state) = state.filter(|_| !req.path().starts_with("/_sim/")) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // Interned stats key: counting a request of a known route allocates nothing.
    let routed = req.resource_map().has_resource(req.path());
    let key = state.stats.key(req.method().as_str(), req.path(), routed);
    if let Some(limiter) = &state.rate_limiter
        && rate_limited_path(req.path())
    {
        let client = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_from_header)
            .and_then(|t| state.tokens.client_of(t));
        let key_of_bucket = client.unwrap_or_else(|| match req.peer_addr() {
            Some(a) => format!("ip:{}", a.ip()),
            None => "ip:unknown".to_owned(),
        });
        if !limiter.allow(&key_of_bucket) {
            state.stats.record(&key, 503);
            return Ok(req.into_response(gateway_page(StatusCode::SERVICE_UNAVAILABLE)));
        }
    }
    let action = state.faults.decide(req.method().as_str(), req.path());
    if !action.latency.is_zero() {
        tokio::time::sleep(action.latency).await;
    }
    if let Some(failure) = action.failure {
        let res = match failure {
            Failure::Status(code) => fault_response(req.path(), code),
            Failure::Hang(hang) => {
                hang_until(&state, hang).await;
                gateway_page(StatusCode::GATEWAY_TIMEOUT)
            }
        };
        state.stats.record(&key, res.status().as_u16());
        return Ok(req.into_response(res));
    }
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    state.stats.record(&key, status.as_u16());
    result.map(ServiceResponse::map_into_boxed_body)
}

async fn hang_until(state: &SimState, hang: Duration) {
    tokio::select! {
        () = tokio::time::sleep(hang) => {}
        () = state.shutdown.cancelled() => {}
    }
}

/// What the gateway in front of ORCID answers for 502/503/504 (an HTML page, not JSON).
fn gateway_page(status: StatusCode) -> HttpResponse {
    // nginx's own wording for these pages.
    let reason = match status.as_u16() {
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let line = format!("{} {reason}", status.as_u16());
    HttpResponse::build(status)
        .content_type("text/html")
        .body(format!(
            "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ))
}

/// An injected failure with the body ORCID would send from that part of the site.
fn fault_response(path: &str, code: u16) -> HttpResponse {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if matches!(code, 502..=504) || code == 429 {
        return gateway_page(status);
    }
    if path.starts_with("/oauth/") {
        let error = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        return oauth_error(status, error, "Something went wrong in ORCID.");
    }
    v3_error(
        status,
        9008,
        &format!(
            "{} {}: Something went wrong in ORCID.",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
    )
}
