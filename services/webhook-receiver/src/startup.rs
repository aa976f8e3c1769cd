//! Building and running the receiver: database (and migrations), ORCID client, `/webhook`
//! token source, bus topology, the consumer of "connection ready" / "connection lost", the
//! outbox relay, the debouncer and the callback endpoint.

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use bus::events::exchanges;
use bus::outbox::{Outbox, OutboxRelay, RelayConfig};
use bus::{Bus, BusError, ConsumerHandle, ConsumerOptions, ServiceSpec, Topology};
use idbridge_platform::bus as platform_bus;
use idbridge_platform::database;
use idbridge_platform::telemetry::{self, TelemetryError};
use orcid::client::OrcidClient;
use sea_orm::{DatabaseConnection, DbErr};
use secrecy::ExposeSecret;
use token_vault::client::{ClientError, VaultClient};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::callback::CallbackKey;
use crate::config::ReceiverConfig;
use crate::debounce::{Debouncer, Marks};
use crate::migration::{bus_tables, migrate};
use crate::registry::{Registry, RegistryError, ReregisterReport};
use crate::routes::{CallbackState, IpLimiter};
use crate::tokens::{ClientTokens, VaultClientTokens};

/// The service's name on the bus (its queues are `<prefix>.webhook-receiver.p000…`).
pub const SERVICE_NAME: &str = "webhook-receiver";

/// What the receiver consumes: `connection.ready` and `connection.lost` from the events
/// exchange, partitioned by person id, with the configured retry tiers; it publishes
/// `record.changed` there.
pub fn service_spec(config: &ReceiverConfig) -> ServiceSpec {
    ServiceSpec::new(SERVICE_NAME)
        .bind(exchanges::EVENTS, "connection.ready")
        .bind(exchanges::EVENTS, "connection.lost")
        .publishes(exchanges::EVENTS)
        .partitioned(config.webhooks.partitions)
        .retry(config.retry_policy())
}

/// The topology the receiver declares at every start.
pub fn topology(spec: &ServiceSpec) -> Topology {
    Topology::new()
        .exchange(exchanges::EVENTS)
        .service(spec.clone())
}

/// The receiver could not start.
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
    #[error("applying the webhook receiver's migrations failed")]
    Migrate(#[source] DbErr),
    /// The ORCID client configuration is unusable.
    #[error("the ORCID client cannot be built")]
    Orcid(#[source] orcid::Error),
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
    /// The callback endpoint's address cannot be bound.
    #[error("cannot listen on {address} (webhooks.http.listen)")]
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
    /// Re-registering could not read the registrations.
    #[error("re-registering failed")]
    Registry(#[source] RegistryError),
}

/// Things the composing process (or a test) may share with the receiver.
#[derive(Default)]
pub struct Dependencies {
    /// The bus. Default: from `bus.amqp_url`, or in-process.
    pub bus: Option<Bus>,
    /// A database connection (PostgreSQL). Default: from `database.url`.
    pub database: Option<DatabaseConnection>,
    /// Cancelled to stop the receiver. Default: a fresh token.
    pub shutdown: Option<CancellationToken>,
    /// Where the `/webhook` token comes from. Default: the vault at `webhooks.vault.url`.
    pub tokens: Option<Arc<dyn ClientTokens>>,
    /// The ORCID client. Default: from `[orcid]`.
    pub orcid: Option<OrcidClient>,
    /// An already bound listener for the callback endpoint (tests bind first to know the
    /// public URL; socket activation). Default: bind `webhooks.http.listen`.
    pub listener: Option<std::net::TcpListener>,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependencies")
            .field("bus", &self.bus)
            .field("database", &self.database.is_some())
            .field("tokens", &self.tokens.is_some())
            .field("orcid", &self.orcid)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// A running receiver; [`run_until_stopped`](Self::run_until_stopped) waits for the
/// shutdown token and stops cleanly.
pub struct Application {
    registry: Registry,
    debouncer: Debouncer,
    consumer: ConsumerHandle,
    relay: JoinHandle<()>,
    debounce_task: JoinHandle<()>,
    /// Stops the debouncer: only once the endpoint has answered its last request, so the
    /// marks of callbacks answered during a graceful stop are still stored. Cancelled when
    /// the application is dropped, too.
    debounce_stop: DropGuard,
    port: u16,
    http: ServerHandle,
    http_task: JoinHandle<()>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("registry", &self.registry)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn callback_key(config: &ReceiverConfig) -> Result<CallbackKey, StartupError> {
    match &config.webhooks.callback_key {
        Some(key) if !key.expose_secret().trim().is_empty() => {
            Ok(CallbackKey::new(key.expose_secret().trim().as_bytes()))
        }
        _ => Err(StartupError::Config {
            key: "webhooks.callback_key",
            problem: "is not set",
            fix: format!(
                "set {} to a random secret (openssl rand -hex 32)",
                idbridge_platform::config::env_var_name("webhooks.callback_key")
            ),
        }),
    }
}

fn orcid_client(
    config: &ReceiverConfig,
    given: Option<OrcidClient>,
) -> Result<OrcidClient, StartupError> {
    match given {
        Some(orcid) => Ok(orcid),
        None => OrcidClient::new(config.orcid_client_config().map_err(StartupError::Orcid)?)
            .map_err(StartupError::Orcid),
    }
}

fn client_tokens(
    config: &ReceiverConfig,
    given: Option<Arc<dyn ClientTokens>>,
) -> Result<Arc<dyn ClientTokens>, StartupError> {
    if let Some(tokens) = given {
        return Ok(tokens);
    }
    let Some(caller_token) = config.webhooks.vault.caller_token.clone() else {
        return Err(StartupError::Config {
            key: "webhooks.vault.caller_token",
            problem: "is not set, so the receiver cannot get the /webhook token from the vault",
            fix: format!(
                "set {} to the receiver's caller token (right client-token:read)",
                idbridge_platform::config::env_var_name("webhooks.vault.caller_token")
            ),
        });
    };
    let client =
        VaultClient::new(&config.webhooks.vault.url, caller_token).map_err(StartupError::Vault)?;
    Ok(Arc::new(VaultClientTokens::new(client)))
}

async fn database(
    config: &ReceiverConfig,
    given: Option<DatabaseConnection>,
) -> Result<DatabaseConnection, StartupError> {
    let db = match given {
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
    Ok(db)
}

impl Application {
    /// Builds everything from `config` (see [`Application::build_with`]).
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build(config: ReceiverConfig) -> Result<Self, StartupError> {
        Self::build_with(config, Dependencies::default()).await
    }

    /// Binds `webhooks.http.listen` (or takes `deps.listener`), connects (or takes `deps`), migrates when
    /// `database.migrate`, declares the topology, starts the outbox relay, the consumer, the
    /// debouncer and the callback endpoint.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build_with(
        config: ReceiverConfig,
        deps: Dependencies,
    ) -> Result<Self, StartupError> {
        let shutdown = deps.shutdown.unwrap_or_default();
        let address = config.webhooks.http.listen.trim().to_owned();
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let listener = match deps.listener {
            Some(listener) => listener,
            None => std::net::TcpListener::bind(&address).map_err(bind_error)?,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();

        let key = callback_key(&config)?;
        let orcid = orcid_client(&config, deps.orcid)?;
        let tokens = client_tokens(&config, deps.tokens)?;
        let db = database(&config, deps.database).await?;
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

        let registry = Registry::new(db.clone(), orcid, tokens, key.clone(), &config.public_url());
        let marks = Marks::default();
        let debouncer = Debouncer::new(
            db,
            Outbox::new(&bus_tables()),
            marks.clone(),
            config.debounce(),
            Some(waker),
        );
        // Its own token, not `shutdown`: see `run_until_stopped`.
        let debounce_stop = CancellationToken::new();
        let debounce_task = tokio::spawn(
            debouncer
                .clone()
                .run(config.flush_interval(), debounce_stop.clone()),
        );

        let consumer = bus
            .consume(
                &spec,
                ConsumerOptions::default().shutdown(shutdown.clone()),
                registry.clone(),
            )
            .await
            .map_err(StartupError::Bus)?;

        let state = CallbackState {
            key,
            marks,
            limiter: IpLimiter::new(config.webhooks.rate_limit),
        };
        let server = match crate::routes::server(listener, config.webhooks.http.workers, state) {
            Ok(server) => server,
            Err(source) => {
                consumer.kill().await;
                shutdown.cancel();
                debounce_stop.cancel();
                let _ = relay.await;
                let _ = debounce_task.await;
                return Err(StartupError::Bind { address, source });
            }
        };
        let http = server.handle();
        let http_task = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the webhook receiver's HTTP server failed");
            }
        });
        tracing::info!(
            port,
            partitions = config.webhooks.partitions,
            debounce_ms = config.webhooks.debounce_ms,
            "webhook receiver listening and consuming"
        );
        Ok(Self {
            registry,
            debouncer,
            consumer,
            relay,
            debounce_task,
            debounce_stop: debounce_stop.drop_guard(),
            port,
            http,
            http_task,
            shutdown,
        })
    }

    /// The port the callback endpoint listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registrations (reports, `reregister_all`, tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The debouncer (tests flush it directly).
    pub fn debouncer(&self) -> &Debouncer {
        &self.debouncer
    }

    /// Cancelling it stops the receiver.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until the shutdown token is cancelled, then stops the endpoint (requests in
    /// flight are finished), lets messages in flight finish, and only then stops the
    /// debouncer, which stores the last callbacks (including those answered while the
    /// endpoint was stopping); then the relay stops.
    pub async fn run_until_stopped(self) {
        self.shutdown.cancelled().await;
        self.http.stop(true).await;
        if let Err(e) = self.http_task.await {
            tracing::error!(error = %e, "HTTP server task failed");
        }
        // No callback can be answered any more: the debouncer's last `store_marks` now
        // takes every mark.
        self.debounce_stop.disarm().cancel();
        self.consumer.stop().await;
        if let Err(e) = self.debounce_task.await {
            tracing::error!(error = %e, "debounce task failed");
        }
        if let Err(e) = self.relay.await {
            tracing::error!(error = %e, "outbox relay task failed");
        }
        tracing::info!("webhook receiver stopped");
    }
}

/// Runs the receiver with `config` until `shutdown` is cancelled.
///
/// # Errors
/// [`StartupError`].
pub async fn run(config: ReceiverConfig, shutdown: CancellationToken) -> Result<(), StartupError> {
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

/// Registers every connection's webhook again (`idbridge webhooks reregister`), without
/// starting the service: database (migrated when `database.migrate`), ORCID client and
/// `/webhook` token from `config`, or from `deps` where given (bus and shutdown are unused).
/// Idempotent: ORCID answers 204 for webhooks it has.
///
/// # Errors
/// [`StartupError`]; per-iD failures are in the report.
pub async fn reregister_all(
    config: &ReceiverConfig,
    deps: Dependencies,
) -> Result<ReregisterReport, StartupError> {
    let key = callback_key(config)?;
    let orcid = orcid_client(config, deps.orcid)?;
    let tokens = client_tokens(config, deps.tokens)?;
    let db = database(config, deps.database).await?;
    Registry::new(db, orcid, tokens, key, &config.public_url())
        .reregister_all()
        .await
        .map_err(StartupError::Registry)
}
