//! Building and running the portal: database (and the outbox migration), bus and outbox
//! relay, ORCID client, vault and writer clients, sessions, and the HTTP server on an
//! injected listener.

use std::sync::Arc;
use std::time::Instant;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, Service};
use actix_web::{App, HttpServer, web};
use bus::events::exchanges;
use bus::outbox::{Outbox, OutboxRelay, RelayConfig};
use bus::{Bus, BusError, Topology};
use idbridge_platform::bus as platform_bus;
use idbridge_platform::database;
use idbridge_platform::telemetry::http::{PublicRequestSpan, TracingLogger};
use idbridge_platform::telemetry::{self, TelemetryError};
use orcid::client::{OrcidClient, Scopes};
use sea_orm::{DatabaseConnection, DbErr};
use secrecy::SecretString;
use token_vault::client::VaultClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{PortalConfig, SigninMethod};
use crate::items::{HttpItems, InvitationsSource, ItemsSource};
use crate::migration::{bus_tables, migrate};
use crate::signin::oidc::OidcClient;
use crate::state::AppState;
use crate::{routes, security};

/// The service's name.
pub const SERVICE_NAME: &str = "portal";

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "idbridge_portal";

/// The portal could not start (or its server failed).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database is unreachable or refused the connection.
    #[error("cannot connect to the database at {url}")]
    Database {
        /// The URL without its password.
        url: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// Applying migrations failed.
    #[error("applying the portal's migrations failed")]
    Migrate(#[source] DbErr),
    /// A part of the configuration is unusable (validation normally catches it first).
    #[error("configuration: {0}")]
    Config(String),
    /// The ORCID client configuration is unusable.
    #[error("the ORCID client cannot be built")]
    Orcid(#[source] orcid::Error),
    /// The bus is unreachable or refused the topology.
    #[error("the bus failed")]
    Bus(#[source] BusError),
    /// The address cannot be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// `host:port`.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Server(#[source] std::io::Error),
    /// Telemetry could not be set up.
    #[error("telemetry")]
    Telemetry(#[source] TelemetryError),
}

/// Things the composing process may share with the portal.
#[derive(Default)]
pub struct Dependencies {
    /// The bus. Default: from `bus.amqp_url`, or in-process.
    pub bus: Option<Bus>,
    /// A database connection. Default: from `database.url`.
    pub database: Option<DatabaseConnection>,
    /// Cancelled to stop the portal. Default: a fresh token.
    pub shutdown: Option<CancellationToken>,
    /// The ORCID client. Default: from `[orcid]`.
    pub orcid: Option<OrcidClient>,
    /// Where items come from. Default: the writer's HTTP API when `portal.writer.url` is set.
    pub items: Option<Arc<dyn ItemsSource>>,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependencies").finish_non_exhaustive()
    }
}

/// A built portal, listening, serving once [`run_until_stopped`](Self::run_until_stopped) runs.
pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    relay: JoinHandle<()>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds everything from `config`.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build(config: PortalConfig) -> Result<Self, StartupError> {
        Self::build_with(config, Dependencies::default()).await
    }

    /// Connects (or takes `deps`), migrates when `database.migrate`, starts the outbox relay
    /// and binds on `portal.host:portal.port`.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build_with(
        config: PortalConfig,
        deps: Dependencies,
    ) -> Result<Self, StartupError> {
        let shutdown = deps.shutdown.unwrap_or_default();
        let address = format!("{}:{}", config.portal.host, config.portal.port);
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();

        let key = Key::from(&config.session_key().map_err(StartupError::Config)?);
        let configured_handoff = config.handoff_key().map_err(StartupError::Config)?;
        let orcid = match deps.orcid {
            Some(orcid) => orcid,
            None => OrcidClient::new(config.orcid.client_config().map_err(StartupError::Orcid)?)
                .map_err(StartupError::Orcid)?,
        };
        let vault = VaultClient::new(
            &config.portal.vault.url,
            config
                .portal
                .vault
                .caller_token
                .clone()
                .unwrap_or_else(|| SecretString::from("")),
        )
        .map_err(|e| StartupError::Config(e.to_string()))?;
        let items: Option<Arc<dyn ItemsSource>> = match deps.items {
            Some(items) => Some(items),
            None => match (
                &config.portal.writer.url,
                &config.portal.writer.caller_token,
            ) {
                (Some(url), Some(token)) => Some(Arc::new(
                    HttpItems::new(url, token.clone())
                        .map_err(|e| StartupError::Config(e.to_string()))?,
                )),
                _ => None,
            },
        };
        // The writer's invitations API (same URL and caller token; rights
        // `invitations:read` and `invitations:manage`).
        let invitations: Option<Arc<dyn InvitationsSource>> = match (
            &config.portal.writer.url,
            &config.portal.writer.caller_token,
        ) {
            (Some(url), Some(token)) => Some(Arc::new(
                HttpItems::new(url, token.clone())
                    .map_err(|e| StartupError::Config(e.to_string()))?,
            )),
            _ => None,
        };
        let oidc = match (&config.portal.signin.method, &config.portal.signin.oidc) {
            (SigninMethod::Oidc, Some(oidc)) => Some(
                OidcClient::new(oidc.clone(), &config.portal.public_url)
                    .map_err(StartupError::Config)?,
            ),
            _ => None,
        };

        let db = match deps.database {
            Some(db) => db,
            None => database::connect(&config.database, &telemetry::service_name([SERVICE_NAME]))
                .await
                .map_err(
                    |database::ConnectError { url, source }| StartupError::Database { url, source },
                )?,
        };
        if config.database.migrate {
            migrate(&db).await.map_err(StartupError::Migrate)?;
        }
        let bus = match deps.bus {
            Some(bus) => bus,
            None => platform_bus::connect(&config.bus)
                .await
                .map_err(StartupError::Bus)?,
        };
        bus.declare(&Topology::new().exchange(exchanges::EVENTS))
            .await
            .map_err(StartupError::Bus)?;
        let outbox = Outbox::new(&bus_tables());
        let relay = OutboxRelay::new(
            db.clone(),
            bus.clone(),
            outbox.clone(),
            RelayConfig::default(),
        );
        let waker = relay.waker();
        let relay = relay.spawn(shutdown.clone());

        let https = config.is_https();
        let workers = config.portal.workers;
        let session_ttl = config.portal.session_ttl_secs;
        let state = web::Data::new(AppState {
            scopes: Scopes::parse(&config.portal.scopes),
            redirect_uri: config.redirect_uri(),
            registry_origin: registry_origin(&config),
            config,
            orcid,
            vault,
            handoff: tokio::sync::Mutex::new(configured_handoff.map(|(id, key)| (id, key, None))),
            db,
            outbox,
            bus,
            waker,
            items,
            invitations,
            oidc,
        });

        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                .cookie_name(SESSION_COOKIE.to_owned())
                .cookie_secure(true)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_path("/".to_owned())
                .cookie_content_security(CookieContentSecurity::Private)
                .session_lifecycle(PersistentSession::default().session_ttl(
                    actix_web::cookie::time::Duration::seconds(
                        i64::try_from(session_ttl).unwrap_or(28_800),
                    ),
                ))
                .build();
            App::new()
                .wrap(sessions)
                .wrap_fn(move |req, srv| {
                    // Method, path (never the query: the callback's carries a code), status,
                    // time; never headers or cookies.
                    let method = req.method().clone();
                    let path = req.path().to_owned();
                    let started = Instant::now();
                    let call = srv.call(req);
                    async move {
                        let mut response = match call.await {
                            Ok(response) => response,
                            Err(e) => {
                                // An error from an inner middleware (the session cookie)
                                // becomes a response here, carrying the security headers.
                                let mut answer = e.error_response();
                                security::apply(answer.headers_mut(), https, &path);
                                tracing::info!(
                                    %method,
                                    %path,
                                    status = answer.status().as_u16(),
                                    elapsed_ms = started.elapsed().as_millis() as u64,
                                    "request"
                                );
                                return Err(actix_web::error::InternalError::from_response(
                                    e.to_string(),
                                    answer,
                                )
                                .into());
                            }
                        };
                        security::apply(response.headers_mut(), https, &path);
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
                .wrap(TracingLogger::<PublicRequestSpan>::new())
                .app_data(state.clone())
                .app_data(web::FormConfig::default().limit(16 * 1024))
                .configure(routes::configure)
        })
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(bind_error)?
        .run();
        tracing::info!(port, "portal listening");
        Ok(Self {
            port,
            server,
            shutdown,
            relay,
        })
    }

    /// The port the portal listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling it stops the portal.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled.
    ///
    /// # Errors
    /// [`StartupError::Server`].
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.shutdown.cancel();
        let _ = stopper.await;
        let _ = self.relay.await;
        tracing::info!("portal stopped");
        result.map_err(StartupError::Server)
    }
}

/// Where iDs are displayed: ORCID's site for production and sandbox, else the registry URL.
fn registry_origin(config: &PortalConfig) -> String {
    match config.orcid.registry.trim() {
        "production" => orcid::Registry::Production.origin().to_owned(),
        "sandbox" => orcid::Registry::Sandbox.origin().to_owned(),
        other => other.trim_end_matches('/').to_owned(),
    }
}

/// Runs the portal with `config` until `shutdown` is cancelled.
///
/// # Errors
/// [`StartupError`].
pub async fn run(config: PortalConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
    let _telemetry =
        telemetry::init_service(&config.telemetry, &telemetry::service_name([SERVICE_NAME]))
            .map_err(StartupError::Telemetry)?;
    let app = Application::build_with(
        config,
        Dependencies {
            shutdown: Some(shutdown),
            ..Dependencies::default()
        },
    )
    .await?;
    app.run_until_stopped().await
}
