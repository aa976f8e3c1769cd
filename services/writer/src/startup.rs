//! Building and running the writer: database (and migrations), ORCID client, token source,
//! the bus topology, the consumer of HR events and "connection ready", the outbox relay, the
//! HTTP API.

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use bus::events::exchanges;
use bus::outbox::{Outbox, OutboxRelay, RelayConfig};
use bus::{Bus, BusError, ConsumerHandle, ConsumerOptions, ServiceSpec, Topology};
use idbridge_platform::bus as platform_bus;
use idbridge_platform::database;
use idbridge_platform::orcid::OrcidClientError;
use idbridge_platform::ratelimit::RateLimitError;
use idbridge_platform::telemetry::{self, TelemetryError};
use orcid::client::OrcidClient;
use sea_orm::{DatabaseConnection, DbErr};
use token_vault::client::{ClientError, VaultClient};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use invitations::Invitations;

use crate::config::WriterConfig;
use crate::http::auth::Callers;
use crate::http::intake::Intake;
use crate::ledger::Ledger;
use crate::migration::{bus_tables, migrate};
use crate::tokens::{TokenSource, VaultTokens};
use crate::writer::{Writer, WriterParts};

/// The service's name on the bus (its queues are `<prefix>.writer.p0…`).
pub const SERVICE_NAME: &str = "writer";

/// What the writer consumes: `hr.hire`, `hr.leave`, `hr.change` from the HR exchange,
/// `work.upsert`, `work.delete` from the works exchange and `connection.ready` and
/// `record.updated` (the reader: items the researcher deleted) from the events exchange,
/// partitioned by the messages' `x-partition-key` (person id; the iD for `record.updated`,
/// whose handling takes the person's lock), with the configured retry tiers.
pub fn service_spec(config: &WriterConfig) -> ServiceSpec {
    ServiceSpec::new(SERVICE_NAME)
        .bind(exchanges::HR, "hr.hire")
        .bind(exchanges::HR, "hr.leave")
        .bind(exchanges::HR, "hr.change")
        .bind(exchanges::WORKS, "work.upsert")
        .bind(exchanges::WORKS, "work.delete")
        .bind(exchanges::EVENTS, "connection.ready")
        .bind(exchanges::EVENTS, "record.updated")
        .partitioned(config.writer.partitions)
        .retry(config.retry_policy())
}

/// The topology the writer declares at every start: its queues, the HR and works exchanges
/// it reads and the events exchange it reads and publishes "item written" / "item failed" to.
pub fn topology(spec: &ServiceSpec) -> Topology {
    Topology::new()
        .exchange(exchanges::HR)
        .exchange(exchanges::WORKS)
        .exchange(exchanges::EVENTS)
        .service(spec.clone())
}

/// The writer could not start.
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
    #[error("applying the writer's migrations failed")]
    Migrate(#[source] DbErr),
    /// The ORCID client configuration is unusable.
    #[error("the ORCID client cannot be built")]
    Orcid(#[source] orcid::Error),
    /// The ORCID rate limiter (`[orcid.rate_limit]`) cannot be built: invalid, or its
    /// table (`idbridge_rate_buckets`) cannot be created in the writer's database.
    #[error("the ORCID rate limiter cannot be built (orcid.rate_limit)")]
    RateLimit(#[source] RateLimitError),
    /// Invitations (`[invitations]`, with `writer.invitations.enabled`) cannot be set up.
    #[error("invitations cannot be set up")]
    Invitations(#[source] invitations::InvitationError),
    /// The vault client configuration is unusable.
    #[error("the token vault client cannot be built")]
    Vault(#[source] ClientError),
    /// A setting needed at start is missing.
    #[error("{key}: {problem}; {fix}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: &'static str,
        /// How to fix it.
        fix: String,
    },
    /// The bus is unreachable or refused the topology.
    #[error("the bus failed")]
    Bus(#[source] BusError),
    /// The HTTP API's address cannot be bound.
    #[error("cannot listen on {address} (writer.http.listen)")]
    Bind {
        /// `host:port`.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Telemetry could not be set up.
    #[error("telemetry")]
    Telemetry(#[source] TelemetryError),
}

/// Things the composing process (or a test) may share with the writer instead of letting
/// it make its own.
#[derive(Default)]
pub struct Dependencies {
    /// The bus (monolithic mode shares one in-process bus). Default: from `bus.amqp_url`,
    /// or in-process.
    pub bus: Option<Bus>,
    /// A database connection. Default: from `database.url`.
    pub database: Option<DatabaseConnection>,
    /// Cancelled to stop the writer. Default: a fresh token.
    pub shutdown: Option<CancellationToken>,
    /// Where tokens come from. Default: the vault at `writer.vault.url`.
    pub tokens: Option<Arc<dyn TokenSource>>,
    /// The ORCID client (monolithic mode shares one, and with it one rate limiter).
    /// Default: from `[orcid]` with `OrcidConfig::client`, whose rate limit
    /// (`[orcid.rate_limit]`) is a bucket in the writer's database shared by every replica.
    pub orcid: Option<OrcidClient>,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependencies")
            .field("bus", &self.bus)
            .field("database", &self.database.is_some())
            .field("tokens", &self.tokens.is_some())
            .field("orcid", &self.orcid)
            .finish_non_exhaustive()
    }
}

/// A built writer, consuming; [`run_until_stopped`](Self::run_until_stopped) waits for the
/// shutdown token and stops cleanly.
pub struct Application {
    writer: Writer,
    consumer: ConsumerHandle,
    relay: JoinHandle<()>,
    /// The invitation scheduler (reminders, retries), when invitations are enabled.
    scheduler: Option<JoinHandle<()>>,
    http: Option<HttpApi>,
    shutdown: CancellationToken,
}

/// The running HTTP API.
struct HttpApi {
    port: u16,
    handle: ServerHandle,
    task: JoinHandle<()>,
}

impl HttpApi {
    /// Stops the server: `graceful` lets requests in flight finish.
    async fn stop(self, graceful: bool) {
        self.handle.stop(graceful).await;
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "HTTP server task failed");
        }
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("writer", &self.writer)
            .field("http_port", &self.http_port())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds everything from `config` (see [`Application::build_with`]).
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build(config: WriterConfig) -> Result<Self, StartupError> {
        Self::build_with(config, Dependencies::default()).await
    }

    /// Binds the HTTP API's address (when `writer.http.enabled`), connects (or takes `deps`),
    /// migrates when `database.migrate`, declares the topology, starts the outbox relay, the
    /// consumer and the HTTP API.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build_with(
        config: WriterConfig,
        deps: Dependencies,
    ) -> Result<Self, StartupError> {
        let shutdown = deps.shutdown.unwrap_or_default();
        // Bound first, so nothing is started when the port is taken.
        let listener = if config.writer.http.enabled {
            let address = config.writer.http.listen.trim().to_owned();
            let bind_error = |source| StartupError::Bind {
                address: address.clone(),
                source,
            };
            let listener = std::net::TcpListener::bind(&address).map_err(bind_error)?;
            let port = listener.local_addr().map_err(bind_error)?.port();
            Some((listener, port, address))
        } else {
            None
        };
        let tokens: Arc<dyn TokenSource> = match deps.tokens {
            Some(tokens) => tokens,
            None => {
                let Some(caller_token) = config.writer.vault.caller_token.clone() else {
                    return Err(StartupError::Config {
                        key: "writer.vault.caller_token",
                        problem: "is not set, so the writer cannot get tokens from the vault",
                        fix: format!(
                            "set {} to the writer's caller token (the vault stores its SHA-256)",
                            idbridge_platform::config::env_var_name("writer.vault.caller_token")
                        ),
                    });
                };
                let client = VaultClient::new(&config.writer.vault.url, caller_token)
                    .map_err(StartupError::Vault)?;
                Arc::new(VaultTokens::new(client))
            }
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
        // After the database: the rate limit's bucket lives there, shared by every replica.
        let orcid = match deps.orcid {
            Some(orcid) => orcid,
            None => config.orcid.client(&db).await.map_err(|e| match e {
                OrcidClientError::Orcid(e) => StartupError::Orcid(e),
                OrcidClientError::RateLimit(e) => StartupError::RateLimit(e),
            })?,
        };

        let bus = match deps.bus {
            Some(bus) => bus,
            None => platform_bus::connect(&config.bus)
                .await
                .map_err(StartupError::Bus)?,
        };
        let spec = service_spec(&config);
        bus.declare(&topology(&spec))
            .await
            .map_err(StartupError::Bus)?;

        let relay = OutboxRelay::new(
            db.clone(),
            bus.clone(),
            Outbox::new(&bus_tables()),
            RelayConfig::default(),
        );
        let waker = relay.waker();
        let relay = relay.spawn(shutdown.clone());
        let mut writer = Writer::new(WriterParts {
            db: db.clone(),
            orcid,
            tokens,
            institution: config.institution(),
            policy: config.write_policy(),
            relay_waker: Some(waker.clone()),
        });
        let scheduler = match config.invitations_config() {
            None => None,
            Some(invitations_config) => {
                let invitations = match Invitations::new(db.clone(), invitations_config.clone()) {
                    Ok(invitations) => invitations,
                    Err(e) => {
                        shutdown.cancel();
                        let _ = relay.await;
                        return Err(StartupError::Invitations(e));
                    }
                };
                writer = writer.with_invitations(invitations.clone());
                let shutdown = shutdown.clone();
                Some(tokio::spawn(async move {
                    invitations.run_scheduler(shutdown).await;
                }))
            }
        };
        let consumer = bus
            .consume(
                &spec,
                ConsumerOptions::default().shutdown(shutdown.clone()),
                writer.clone(),
            )
            .await
            .map_err(StartupError::Bus)?;
        tracing::info!(
            partitions = config.writer.partitions,
            client_id = %config.orcid.client_id,
            "writer consuming"
        );
        let http = match listener {
            None => None,
            Some((listener, port, address)) => {
                let http = &config.writer.http;
                if http.callers.is_empty() {
                    tracing::warn!(
                        "no callers are configured (writer.http.callers): every API call but /health will be refused"
                    );
                }
                let server = crate::http::server(
                    listener,
                    http.workers,
                    Callers::from_config(&http.callers),
                    Intake {
                        db: db.clone(),
                        outbox: Outbox::new(&bus_tables()),
                        relay: Some(waker),
                        max_batch: http.max_batch,
                        max_body_bytes: http.max_body_bytes,
                    },
                    Ledger::new(db),
                    crate::http::invitations::InvitationsApi(writer.invitations().cloned()),
                );
                let server = match server {
                    Ok(server) => server,
                    Err(source) => {
                        // Stop what already runs before reporting.
                        consumer.kill().await;
                        shutdown.cancel();
                        let _ = relay.await;
                        if let Some(scheduler) = scheduler {
                            let _ = scheduler.await;
                        }
                        return Err(StartupError::Bind { address, source });
                    }
                };
                let handle = server.handle();
                let task = tokio::spawn(async move {
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "the writer's HTTP server failed");
                    }
                });
                tracing::info!(port, "writer API listening");
                Some(HttpApi { port, handle, task })
            }
        };
        Ok(Self {
            writer,
            consumer,
            relay,
            scheduler,
            http,
            shutdown,
        })
    }

    /// The port the HTTP API listens on (`None` when `writer.http.enabled` is false).
    pub fn http_port(&self) -> Option<u16> {
        self.http.as_ref().map(|h| h.port)
    }

    /// The writer's decisions and ledger (reports, tests).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The invitations the writer sends (`writer.invitations.enabled`), for the CLI and the
    /// portal: `resend`, `list`, `counts`. `None` when disabled.
    pub fn invitations(&self) -> Option<&Invitations> {
        self.writer.invitations()
    }

    /// Cancelling it stops the writer.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until the shutdown token is cancelled, then lets the messages in flight finish
    /// and stops the relay.
    pub async fn run_until_stopped(self) {
        self.shutdown.cancelled().await;
        if let Some(http) = self.http {
            http.stop(true).await;
        }
        self.consumer.stop().await;
        if let Err(e) = self.relay.await {
            tracing::error!(error = %e, "outbox relay task failed");
        }
        if let Some(scheduler) = self.scheduler
            && let Err(e) = scheduler.await
        {
            tracing::error!(error = %e, "invitation scheduler task failed");
        }
        tracing::info!("writer stopped");
    }

    /// Stops at once, as a crash would (messages in flight are redelivered). For tests.
    pub async fn kill(self) {
        if let Some(http) = self.http {
            http.stop(false).await;
        }
        self.consumer.kill().await;
        self.shutdown.cancel();
        let _ = self.relay.await;
        if let Some(scheduler) = self.scheduler {
            let _ = scheduler.await;
        }
    }
}

/// Runs the writer with `config` until `shutdown` is cancelled: sets up telemetry (a no-op
/// when the composing process already did), builds, consumes.
///
/// # Errors
/// [`StartupError`].
pub async fn run(config: WriterConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
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
    app.run_until_stopped().await;
    Ok(())
}
