//! Building and running the reader: database (and migrations), ORCID client, token source,
//! the bus topology, the consumer of "connection ready" and "record changed", the outbox
//! relay, the reconciliation sweep.

use std::sync::Arc;

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

use crate::config::ReaderConfig;
use crate::migration::{bus_tables, migrate};
use crate::reader::{Reader, ReaderParts};
use crate::reconcile::Reconciler;
use crate::tokens::{TokenSource, VaultTokens};

/// The service's name on the bus (its queues are `<prefix>.reader.p000…`).
pub const SERVICE_NAME: &str = "reader";

/// What the reader consumes: `connection.ready` and `record.changed` from the events
/// exchange, partitioned, with the configured retry tiers.
pub fn service_spec(config: &ReaderConfig) -> ServiceSpec {
    ServiceSpec::new(SERVICE_NAME)
        .bind(exchanges::EVENTS, "connection.ready")
        .bind(exchanges::EVENTS, "record.changed")
        .publishes(exchanges::EVENTS)
        .partitioned(config.reader.partitions)
        .retry(config.retry_policy())
}

/// The topology the reader declares at every start.
pub fn topology(spec: &ServiceSpec) -> Topology {
    Topology::new()
        .exchange(exchanges::EVENTS)
        .service(spec.clone())
}

/// The reader could not start.
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
    #[error("applying the reader's migrations failed")]
    Migrate(#[source] DbErr),
    /// The ORCID client configuration is unusable.
    #[error("the ORCID client cannot be built")]
    Orcid(#[source] orcid::Error),
    /// The ORCID rate limiter (`[orcid.rate_limit]`) cannot be built: invalid, or its table
    /// (`idbridge_rate_buckets`) cannot be created in the reader's database.
    #[error("the ORCID rate limiter cannot be built (orcid.rate_limit)")]
    RateLimit(#[source] RateLimitError),
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
    /// Telemetry could not be set up.
    #[error("telemetry")]
    Telemetry(#[source] TelemetryError),
}

/// Things the composing process (or a test) may share with the reader.
#[derive(Default)]
pub struct Dependencies {
    /// The bus. Default: from `bus.amqp_url`, or in-process.
    pub bus: Option<Bus>,
    /// A database connection. Default: from `database.url`.
    pub database: Option<DatabaseConnection>,
    /// Cancelled to stop the reader. Default: a fresh token.
    pub shutdown: Option<CancellationToken>,
    /// Where tokens come from. Default: the vault at `reader.vault.url`.
    pub tokens: Option<Arc<dyn TokenSource>>,
    /// The ORCID client. Default: from `[orcid]` with `OrcidConfig::client_with_priority`
    /// and `OrcidConfig::read_priority`: its rate limit (`[orcid.rate_limit]`) is the bucket
    /// in the database shared by every replica and service of the client, and the reader's
    /// permits yield to the writer's (`read_reserve`, `read_max_yield_ms`). Do not pass the
    /// writer's client here: its permits would not yield.
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

/// A built reader, consuming (and sweeping when `reader.reconcile.enabled`).
pub struct Application {
    reader: Reader,
    consumer: ConsumerHandle,
    relay: JoinHandle<()>,
    reconcile: Option<JoinHandle<()>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("reader", &self.reader)
            .field("reconciling", &self.reconcile.is_some())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds everything from `config` (see [`Application::build_with`]).
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build(config: ReaderConfig) -> Result<Self, StartupError> {
        Self::build_with(config, Dependencies::default()).await
    }

    /// Connects (or takes `deps`), migrates when `database.migrate`, declares the topology,
    /// starts the outbox relay, the consumer and the sweep.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build_with(
        config: ReaderConfig,
        deps: Dependencies,
    ) -> Result<Self, StartupError> {
        let shutdown = deps.shutdown.unwrap_or_default();
        let tokens: Arc<dyn TokenSource> = match deps.tokens {
            Some(tokens) => tokens,
            None => {
                let Some(caller_token) = config.reader.vault.caller_token.clone() else {
                    return Err(StartupError::Config {
                        key: "reader.vault.caller_token",
                        problem: "is not set, so the reader cannot get tokens from the vault",
                        fix: format!(
                            "set {} to the reader's caller token (the vault stores its SHA-256)",
                            idbridge_platform::config::env_var_name("reader.vault.caller_token")
                        ),
                    });
                };
                let client = VaultClient::new(&config.reader.vault.url, caller_token)
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
        // After the database: the rate limit's bucket lives there, shared by every replica
        // and every service of the same ORCID client. The reader's reads are low priority:
        // they yield to the writer's requests while those queue (bounded by
        // `orcid.rate_limit.read_max_yield_ms`).
        let orcid = match deps.orcid {
            Some(orcid) => orcid,
            None => config
                .orcid
                .client_with_priority(&db, config.orcid.read_priority())
                .await
                .map_err(|e| match e {
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
        let reader = Reader::new(ReaderParts {
            db,
            orcid,
            tokens,
            relay_waker: Some(waker),
        });
        let consumer = match bus
            .consume(
                &spec,
                ConsumerOptions::default().shutdown(shutdown.clone()),
                reader.clone(),
            )
            .await
        {
            Ok(consumer) => consumer,
            Err(e) => {
                shutdown.cancel();
                let _ = relay.await;
                return Err(StartupError::Bus(e));
            }
        };
        let reconcile = config.reader.reconcile.enabled.then(|| {
            Reconciler::new(reader.clone(), config.reconcile_settings()).spawn(shutdown.clone())
        });
        tracing::info!(
            partitions = config.reader.partitions,
            reconcile = config.reader.reconcile.enabled,
            period_secs = config.reader.reconcile.period_secs,
            "reader consuming"
        );
        Ok(Self {
            reader,
            consumer,
            relay,
            reconcile,
            shutdown,
        })
    }

    /// The reader's decisions (tests, tools).
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// Cancelling it stops the reader.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until the shutdown token is cancelled, then lets reads in flight finish.
    pub async fn run_until_stopped(self) {
        self.shutdown.cancelled().await;
        self.consumer.stop().await;
        if let Some(task) = self.reconcile
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "reconciliation task failed");
        }
        if let Err(e) = self.relay.await {
            tracing::error!(error = %e, "outbox relay task failed");
        }
        tracing::info!("reader stopped");
    }

    /// Stops at once, as a crash would. For tests.
    pub async fn kill(self) {
        self.consumer.kill().await;
        self.shutdown.cancel();
        if let Some(task) = self.reconcile {
            task.abort();
            let _ = task.await;
        }
        let _ = self.relay.await;
    }
}

/// Runs the reader with `config` until `shutdown` is cancelled.
///
/// # Errors
/// [`StartupError`].
pub async fn run(config: ReaderConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
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
