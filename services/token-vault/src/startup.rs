//! Building and running the vault: database (and migrations), key ring, hand-off keys, ORCID
//! client, bus consumer of "iD connected", outbox relay, audit writer (group commit of the
//! token reads' audit rows), HTTP API on an injected listener.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service};
use actix_web::{App, HttpServer, web};
use bus::events::exchanges;
use bus::inbox::{Inbox, Transactional};
use bus::outbox::{Outbox, OutboxRelay, RelayConfig};
use bus::{Bus, BusError, ConsumerHandle, ConsumerOptions, ServiceSpec, Topology};
use idbridge_crypto::KeyLoadError;
use idbridge_platform::bus as platform_bus;
use idbridge_platform::database;
use idbridge_platform::telemetry::http::{RequestSpan, TracingLogger};
use idbridge_platform::telemetry::{self, TelemetryError};
use orcid::client::OrcidClient;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit_writer::{AuditStats, AuditWriter, AuditWriterTask};
use crate::auth::Callers;
use crate::config::VaultConfig;
use crate::connect::{ConnectHandler, ReplacedTokens, RevokeReplaced};
use crate::error::error_chain;
use crate::keys::KeyRingHandle;
use crate::migration::{bus_tables, migrate};
use crate::routes;
use crate::vault::Vault;

/// The service's name on the bus (its queue is `<prefix>.token-vault`).
pub const SERVICE_NAME: &str = "token-vault";

/// What the vault consumes: "iD connected" from the events exchange.
pub fn service_spec() -> ServiceSpec {
    ServiceSpec::new(SERVICE_NAME).bind(exchanges::EVENTS, "id.connected")
}

/// The vault could not start (or its server failed).
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
    #[error("applying the vault's migrations failed")]
    Migrate(#[source] DbErr),
    /// The key ring did not load.
    #[error("cannot load the key ring")]
    Keys(#[source] KeyLoadError),
    /// The hand-off keys did not load.
    #[error("cannot load the hand-off keys: {0}")]
    HandoffKeys(String),
    /// The ORCID client configuration is unusable.
    #[error("the ORCID client cannot be built")]
    Orcid(#[source] orcid::Error),
    /// The bus is unreachable or refused the topology.
    #[error("the bus failed")]
    Bus(#[source] BusError),
    /// The API's address cannot be bound.
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
    /// The audit writer ended while the vault was serving: no token read could be audited,
    /// so none could be served. The vault stopped (its process exits and is restarted).
    #[error(
        "the audit writer ended unexpectedly; the vault stopped because no token read could be audited"
    )]
    AuditWriterEnded,
    /// Telemetry could not be set up.
    #[error("telemetry")]
    Telemetry(#[source] TelemetryError),
}

/// Things the composing process may share with the vault instead of letting it make its own.
#[derive(Debug, Default)]
pub struct Dependencies {
    /// The bus (monolithic mode shares one in-process bus; tests too). Default: from
    /// `bus.amqp_url`, or in-process.
    pub bus: Option<Bus>,
    /// A database connection. Default: from `database.url`.
    pub database: Option<DatabaseConnection>,
    /// Cancelled to stop the vault. Default: a fresh token ([`Application::shutdown_token`]).
    pub shutdown: Option<CancellationToken>,
}

/// A built vault, listening, not yet serving until [`run_until_stopped`](Self::run_until_stopped).
pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    consumer: ConsumerHandle,
    relay: JoinHandle<()>,
    /// Writes the token reads' audit rows; stopped after the HTTP server.
    audit: AuditWriterTask,
    keys: KeyRingHandle,
    key_dir: Option<PathBuf>,
    /// For the SIGHUP check of which key ids rows still use.
    db: DatabaseConnection,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds everything from `config` (see [`Application::build_with`]).
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build(config: VaultConfig) -> Result<Self, StartupError> {
        Self::build_with(config, Dependencies::default()).await
    }

    /// Connects (or takes `deps`), migrates when `database.migrate`, starts consuming "iD
    /// connected", relaying the outbox and writing audit rows, and binds the API on
    /// `vault.host:vault.port`.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build_with(config: VaultConfig, deps: Dependencies) -> Result<Self, StartupError> {
        let shutdown = deps.shutdown.unwrap_or_default();
        // Bound first, so nothing is started when the port is taken.
        let address = format!("{}:{}", config.vault.host, config.vault.port);
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let keys = KeyRingHandle::new(config.key_ring().map_err(StartupError::Keys)?);
        let handoff = Arc::new(config.handoff_keys().map_err(StartupError::HandoffKeys)?);
        let orcid = OrcidClient::new(config.orcid_client_config().map_err(StartupError::Orcid)?)
            .map_err(StartupError::Orcid)?;

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
        let spec = service_spec();
        bus.declare(
            &Topology::new()
                .exchange(exchanges::EVENTS)
                .service(spec.clone()),
        )
        .await
        .map_err(StartupError::Bus)?;

        let tables = bus_tables();
        let outbox = Outbox::new(&tables);
        let relay = OutboxRelay::new(
            db.clone(),
            bus.clone(),
            outbox.clone(),
            RelayConfig::default(),
        );
        let waker = relay.waker();
        let replaced = ReplacedTokens::default();
        let handler = RevokeReplaced {
            inner: Transactional::new(
                db.clone(),
                Inbox::new(&tables),
                ConnectHandler {
                    keys: keys.clone(),
                    handoff: handoff.clone(),
                    outbox: outbox.clone(),
                    replaced: replaced.clone(),
                },
            )
            .wake_relay(waker.clone()),
            orcid: orcid.clone(),
            replaced,
        };
        let consumer = bus
            .consume(
                &spec,
                ConsumerOptions::default().shutdown(shutdown.clone()),
                handler,
            )
            .await
            .map_err(StartupError::Bus)?;
        let relay = relay.spawn(shutdown.clone());

        let (audit_writer, audit) = AuditWriter::spawn(db.clone());
        let vault = web::Data::new(Vault::new(
            db.clone(),
            keys.clone(),
            orcid,
            outbox,
            waker,
            Duration::from_secs(config.vault.refresh_before_expiry_secs),
            audit_writer,
        ));
        let callers = web::Data::new(Callers::from_config(&config.vault.callers));
        if config.vault.callers.is_empty() {
            tracing::warn!(
                "no callers are configured (vault.callers): every API call will be refused"
            );
        }
        let handoff = web::Data::new(handoff);

        let server = HttpServer::new(move || {
            App::new()
                .wrap_fn(|req, srv| {
                    // Method, path (the iD is not secret), status, time; never headers.
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
                .app_data(vault.clone())
                .app_data(callers.clone())
                .app_data(handoff.clone())
                .configure(routes::configure)
        })
        .workers(config.vault.workers)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(bind_error)?
        .run();
        tracing::info!(
            port,
            active_key = %keys.current().active_key_id(),
            "token vault listening"
        );
        Ok(Self {
            port,
            server,
            shutdown,
            consumer,
            relay,
            audit,
            keys,
            key_dir: config.vault.key_dir.clone(),
            db,
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The key ring in use; [`KeyRingHandle::replace`] swaps it while the vault serves.
    pub fn key_ring(&self) -> KeyRingHandle {
        self.keys.clone()
    }

    /// Counters of the audit writer, which commits the audit rows of concurrent token reads
    /// together (batches and rows so far).
    pub fn audit_stats(&self) -> AuditStats {
        self.audit.stats()
    }

    /// Cancelling it stops the vault.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then finishes in-flight requests (and
    /// their audit rows) and messages. With `vault.key_dir`, SIGHUP reloads the key ring from
    /// the directory.
    ///
    /// # Errors
    /// [`StartupError::Server`]; [`StartupError::AuditWriterEnded`] when the audit writer
    /// ended while serving (the vault then stopped).
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        if let Some(dir) = self.key_dir.clone() {
            spawn_key_reload(
                dir,
                self.keys.clone(),
                self.db.clone(),
                self.shutdown.clone(),
            );
        }
        let audit_watch = watch_audit_writer(self.audit.ended(), self.shutdown.clone());
        let result = self.server.await;
        // The server may also end on its own (a fatal error): stop the rest with it.
        self.shutdown.cancel();
        let _ = stopper.await;
        let audit_failed = audit_watch.await.unwrap_or(false);
        // No request is left to read a token: write the queued audit rows, then stop.
        self.audit.finish().await;
        self.consumer.stop().await;
        let _ = self.relay.await;
        tracing::info!("token vault stopped");
        result.map_err(StartupError::Server)?;
        if audit_failed {
            return Err(StartupError::AuditWriterEnded);
        }
        Ok(())
    }
}

/// Stops the vault (cancels `shutdown`) when the audit writer ends before a stop was asked
/// for; answers whether it did. Without the writer every token read would fail with a 500
/// while `/readyz` stayed green; stopped, the process exits with an error and is restarted.
fn watch_audit_writer(ended: CancellationToken, shutdown: CancellationToken) -> JoinHandle<bool> {
    tokio::spawn(async move {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => false,
            () = ended.cancelled() => {
                tracing::error!("the audit writer ended unexpectedly; stopping the vault, whose token reads can no longer be audited");
                shutdown.cancel();
                true
            }
        }
    })
}

#[cfg(unix)]
fn spawn_key_reload(
    dir: PathBuf,
    keys: KeyRingHandle,
    db: DatabaseConnection,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; key ring reload disabled");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = hangups.recv() => {
                    if received.is_none() {
                        return;
                    }
                    match idbridge_crypto::KeyRing::from_dir(&dir) {
                        Ok(ring) => reload_ring(&keys, &db, ring).await,
                        Err(e) => tracing::error!(error = %error_chain(&e), "SIGHUP: key ring not reloaded; keeping the current one"),
                    }
                }
            }
        }
    });
}

/// Installs `ring` unless it lacks a key some row still uses (retiring a key before
/// `rotate` reported `remaining: 0` would make those rows unreadable).
#[cfg(unix)]
async fn reload_ring(
    keys: &KeyRingHandle,
    db: &DatabaseConnection,
    ring: idbridge_crypto::KeyRing,
) {
    match crate::rotation::key_ids_in_use(db).await {
        Ok(in_use) => {
            let missing = crate::rotation::missing_key_ids(&ring, &in_use);
            if missing.is_empty() {
                keys.replace(ring);
            } else {
                tracing::error!(
                    missing_key_ids = %missing.join(", "),
                    "SIGHUP: the new key ring lacks keys that stored rows still use; keeping the current one (add them back, or run `idbridge keys rotate` until `remaining` is 0 before retiring a key)"
                );
            }
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "SIGHUP: cannot list the key ids in use; keeping the current key ring")
        }
    }
}

#[cfg(not(unix))]
fn spawn_key_reload(_: PathBuf, _: KeyRingHandle, _: DatabaseConnection, _: CancellationToken) {}

/// Runs the vault with `config` until `shutdown` is cancelled: sets up telemetry (a no-op when
/// the composing process already did), builds, serves.
///
/// # Errors
/// [`StartupError`].
pub async fn run(config: VaultConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_audit_writer_that_ends_while_serving_stops_the_vault() {
        let (ended, shutdown) = (CancellationToken::new(), CancellationToken::new());
        let watch = watch_audit_writer(ended.clone(), shutdown.clone());
        ended.cancel();
        assert!(watch.await.unwrap(), "reported as a failure");
        assert!(shutdown.is_cancelled(), "the vault is told to stop");
    }

    #[tokio::test]
    async fn an_audit_writer_that_ends_after_a_stop_is_no_failure() {
        let (ended, shutdown) = (CancellationToken::new(), CancellationToken::new());
        let watch = watch_audit_writer(ended.clone(), shutdown.clone());
        shutdown.cancel();
        // The writer is finished after the server, as `run_until_stopped` does.
        tokio::task::yield_now().await;
        ended.cancel();
        assert!(!watch.await.unwrap());
    }
}
