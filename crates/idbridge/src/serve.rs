//! `idbridge serve <service…>`: the named services in one process, sharing nothing but the
//! shutdown token, plus the admin server. SIGTERM or SIGINT cancels the token; each service
//! stops consuming, finishes what is in flight and flushes its outbox; then the process
//! exits 0. A service that stops on its own stops the others and the process exits 1.
//!
//! The process installs the Prometheus recorder once; the admin server's `/metrics` renders
//! it, with the gauges sampled by [`crate::admin::collectors`] for each service started here.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use idbridge_platform::config::ConfigError;
use idbridge_platform::metrics::names;
use idbridge_platform::{bus as platform_bus, database, metrics as platform_metrics, telemetry};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::admin::collectors::Source;
use crate::admin::{AdminServer, AdminState, Probe};
use crate::cli::ServiceName;
use crate::config::IdbridgeConfig;
use crate::error::{Error, chain, exit};

/// A service started by `serve`.
pub struct Started {
    /// What `/readyz` checks.
    pub probe: Probe,
    /// Its run; `Err` carries the error chain.
    pub task: JoinHandle<Result<(), String>>,
    /// A line for the operator (where it listens).
    pub note: String,
    /// What `/metrics` samples for it (queues, outbox, states).
    pub sources: Vec<Source>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("service", &self.probe.service)
            .finish_non_exhaustive()
    }
}

impl Started {
    fn new(
        service: &'static str,
        database: sea_orm::DatabaseConnection,
        bus: bus::Bus,
        running: Arc<AtomicBool>,
        task: JoinHandle<Result<(), String>>,
        note: String,
    ) -> Self {
        Self {
            probe: Probe {
                service,
                database,
                bus,
                running,
            },
            task,
            note,
            sources: Vec::new(),
        }
    }

    /// Adds what `/metrics` samples for the service: the queues of `spec` (when on
    /// RabbitMQ), its outbox `outbox_table`, and `states` (a gauge over a table's `state`).
    fn sampling(
        mut self,
        bus: &platform_bus::BusConfig,
        spec: Option<&bus::ServiceSpec>,
        outbox_table: &'static str,
        states: Option<StateGauge>,
    ) -> Self {
        let db = self.probe.database.clone();
        if let (Some(url), Some(spec)) = (&bus.amqp_url, spec) {
            match queue_names(&bus.prefix, spec) {
                Ok(queues) => self.sources.push(Source::Queues {
                    url: url.clone(),
                    queues,
                }),
                Err(e) => {
                    tracing::warn!(service = self.probe.service, error = %e, "no queue metrics");
                }
            }
        }
        self.sources.push(Source::Outbox {
            service: self.probe.service,
            db: db.clone(),
            table: outbox_table,
        });
        if let Some(states) = states {
            self.sources.push(Source::States {
                collector: states.collector,
                gauge: states.gauge,
                db,
                table: states.table,
                known: states.known,
            });
        }
        self
    }
}

/// A gauge over the `state` column of a service's table (see [`Source::States`]).
struct StateGauge {
    collector: &'static str,
    gauge: &'static str,
    table: &'static str,
    known: Vec<&'static str>,
}

/// A consuming service's queues: its work queue(s), retry tiers and parking queue.
///
/// # Errors
/// The prefix is not a valid bus prefix.
pub fn queue_names(prefix: &str, spec: &bus::ServiceSpec) -> Result<Vec<String>, bus::BusError> {
    let names = bus::topology::Names::new(prefix)?;
    let mut queues = names.work_queues(spec);
    for delay in &spec.retry.tiers {
        let tier = names.retry_tier(&spec.name, *delay);
        if !queues.contains(&tier) {
            queues.push(tier);
        }
    }
    queues.push(names.parked(&spec.name));
    Ok(queues)
}

/// `table` as the `&'static str` the collectors take: `known` when it is that name (the
/// usual case), otherwise leaked once (one short string per service and process).
fn static_table(table: String, known: &'static str) -> &'static str {
    if table == known {
        known
    } else {
        Box::leak(table.into_boxed_str())
    }
}

/// The database and bus connections a service gets from `serve` (and `/readyz` probes).
async fn connect(
    service: &'static str,
    database: &database::DatabaseConfig,
    bus: &platform_bus::BusConfig,
) -> Result<(sea_orm::DatabaseConnection, bus::Bus), Error> {
    let db = database::connect(database, &telemetry::service_name([service]))
        .await
        .map_err(|source| Error::Database { service, source })?;
    let bus = platform_bus::connect(bus).await?;
    Ok((db, bus))
}

/// Cancels `shutdown` on SIGTERM or SIGINT; the flag says a signal (not a failure) did it.
///
/// # Errors
/// [`Error::Signals`].
pub fn cancel_on_signal(shutdown: CancellationToken) -> Result<Arc<AtomicBool>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let requested = Arc::new(AtomicBool::new(false));
    let flag = requested.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            () = shutdown.cancelled() => return,
        };
        tracing::info!(signal = name, "stopping: finishing work in flight");
        flag.store(true, Ordering::SeqCst);
        shutdown.cancel();
    });
    Ok(requested)
}

fn watch(
    service: &'static str,
    running: Arc<AtomicBool>,
    shutdown: CancellationToken,
    run: impl Future<Output = Result<(), String>> + Send + 'static,
) -> JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        let result = run.await;
        running.store(false, Ordering::SeqCst);
        if !shutdown.is_cancelled() {
            tracing::error!(service, "stopped on its own; stopping the others");
            shutdown.cancel();
        }
        result
    })
}

/// What [`start`] hands a service it builds: the connections it made (and `/readyz` probes)
/// and the process's shutdown token.
struct Shared {
    database: sea_orm::DatabaseConnection,
    bus: bus::Bus,
    shutdown: CancellationToken,
}

/// A service `serve` runs, declared once: what differs between services. [`start`] does
/// the rest the same way for each (connections, the watched task, the readiness probe and
/// what `/metrics` samples).
trait Service {
    const NAME: ServiceName;
    type Config;
    type App;
    type BuildError: std::error::Error + 'static;

    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError>;
    /// Refuses, before connecting, a configuration `serve` cannot run.
    fn check(_config: &Self::Config) -> Result<(), Error> {
        Ok(())
    }
    fn connections(config: &Self::Config) -> (&database::DatabaseConfig, &platform_bus::BusConfig);
    /// The queues it consumes (`None`: it consumes none).
    fn spec(config: &Self::Config) -> Option<bus::ServiceSpec>;
    fn build(
        config: Self::Config,
        shared: Shared,
    ) -> impl Future<Output = Result<Self::App, Self::BuildError>> + Send;
    /// A line for the operator (where it listens).
    fn note(app: &Self::App) -> String;
    fn run(app: Self::App) -> impl Future<Output = Result<(), String>> + Send + 'static;
    /// Its outbox table.
    fn outbox_table() -> &'static str;
    /// A gauge over its table's `state` column, if it has one.
    fn states() -> Option<StateGauge> {
        None
    }
}

struct TokenVault;

impl Service for TokenVault {
    const NAME: ServiceName = ServiceName::TokenVault;
    type Config = token_vault::config::VaultConfig;
    type App = token_vault::Application;
    type BuildError = token_vault::StartupError;

    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError> {
        Self::Config::load(file)
    }
    fn connections(config: &Self::Config) -> (&database::DatabaseConfig, &platform_bus::BusConfig) {
        (&config.database, &config.bus)
    }
    fn spec(_config: &Self::Config) -> Option<bus::ServiceSpec> {
        Some(token_vault::service_spec())
    }
    fn build(
        config: Self::Config,
        shared: Shared,
    ) -> impl Future<Output = Result<Self::App, Self::BuildError>> + Send {
        let dependencies = token_vault::Dependencies {
            bus: Some(shared.bus),
            database: Some(shared.database),
            shutdown: Some(shared.shutdown),
        };
        token_vault::Application::build_with(config, dependencies)
    }
    fn note(app: &Self::App) -> String {
        format!("token-vault API on port {}", app.port())
    }
    async fn run(app: Self::App) -> Result<(), String> {
        app.run_until_stopped().await.map_err(|e| chain(&e))
    }
    fn outbox_table() -> &'static str {
        // token_vault's `bus_tables()` (crate-private).
        "token_vault_outbox"
    }
    fn states() -> Option<StateGauge> {
        use token_vault::api::ConnectionState;
        Some(StateGauge {
            collector: "connections",
            gauge: names::CONNECTIONS,
            table: "token_vault_connections",
            known: [
                ConnectionState::Active,
                ConnectionState::Revoked,
                ConnectionState::Expired,
                ConnectionState::Disconnected,
            ]
            .map(ConnectionState::as_str)
            .to_vec(),
        })
    }
}

struct Writer;

impl Service for Writer {
    const NAME: ServiceName = ServiceName::Writer;
    type Config = writer::config::WriterConfig;
    type App = writer::Application;
    type BuildError = writer::StartupError;

    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError> {
        Self::Config::load(file)
    }
    fn connections(config: &Self::Config) -> (&database::DatabaseConfig, &platform_bus::BusConfig) {
        (&config.database, &config.bus)
    }
    fn spec(config: &Self::Config) -> Option<bus::ServiceSpec> {
        Some(writer::service_spec(config))
    }
    fn build(
        config: Self::Config,
        shared: Shared,
    ) -> impl Future<Output = Result<Self::App, Self::BuildError>> + Send {
        let dependencies = writer::Dependencies {
            bus: Some(shared.bus),
            database: Some(shared.database),
            shutdown: Some(shared.shutdown),
            ..writer::Dependencies::default()
        };
        writer::Application::build_with(config, dependencies)
    }
    fn note(_app: &Self::App) -> String {
        "writer consuming".to_owned()
    }
    async fn run(app: Self::App) -> Result<(), String> {
        app.run_until_stopped().await;
        Ok(())
    }
    fn outbox_table() -> &'static str {
        static_table(writer::bus_tables().outbox, "writer_outbox")
    }
    fn states() -> Option<StateGauge> {
        Some(StateGauge {
            collector: "items",
            gauge: names::ITEMS,
            table: "writer_items",
            known: writer::ledger::ItemState::ALL
                .map(writer::ledger::ItemState::as_str)
                .to_vec(),
        })
    }
}

struct Reader;

impl Service for Reader {
    const NAME: ServiceName = ServiceName::Reader;
    type Config = reader::config::ReaderConfig;
    type App = reader::Application;
    type BuildError = reader::StartupError;

    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError> {
        Self::Config::load(file)
    }
    fn connections(config: &Self::Config) -> (&database::DatabaseConfig, &platform_bus::BusConfig) {
        (&config.database, &config.bus)
    }
    fn spec(config: &Self::Config) -> Option<bus::ServiceSpec> {
        Some(reader::service_spec(config))
    }
    fn build(
        config: Self::Config,
        shared: Shared,
    ) -> impl Future<Output = Result<Self::App, Self::BuildError>> + Send {
        let dependencies = reader::Dependencies {
            bus: Some(shared.bus),
            database: Some(shared.database),
            shutdown: Some(shared.shutdown),
            ..reader::Dependencies::default()
        };
        reader::Application::build_with(config, dependencies)
    }
    fn note(_app: &Self::App) -> String {
        "reader consuming".to_owned()
    }
    async fn run(app: Self::App) -> Result<(), String> {
        app.run_until_stopped().await;
        Ok(())
    }
    fn outbox_table() -> &'static str {
        static_table(reader::bus_tables().outbox, "reader_outbox")
    }
}

struct WebhookReceiver;

impl Service for WebhookReceiver {
    const NAME: ServiceName = ServiceName::WebhookReceiver;
    type Config = webhook_receiver::config::ReceiverConfig;
    type App = webhook_receiver::Application;
    type BuildError = webhook_receiver::StartupError;

    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError> {
        Self::Config::load(file)
    }
    fn check(config: &Self::Config) -> Result<(), Error> {
        let url = config.database.url.expose_secret();
        if url.trim_start().starts_with("sqlite:") {
            return Err(Error::NeedsPostgres {
                service: Self::NAME.as_str(),
            });
        }
        Ok(())
    }
    fn connections(config: &Self::Config) -> (&database::DatabaseConfig, &platform_bus::BusConfig) {
        (&config.database, &config.bus)
    }
    fn spec(config: &Self::Config) -> Option<bus::ServiceSpec> {
        Some(webhook_receiver::service_spec(config))
    }
    fn build(
        config: Self::Config,
        shared: Shared,
    ) -> impl Future<Output = Result<Self::App, Self::BuildError>> + Send {
        let dependencies = webhook_receiver::Dependencies {
            bus: Some(shared.bus),
            database: Some(shared.database),
            shutdown: Some(shared.shutdown),
            ..webhook_receiver::Dependencies::default()
        };
        webhook_receiver::Application::build_with(config, dependencies)
    }
    fn note(app: &Self::App) -> String {
        format!("webhook-receiver callbacks on port {}", app.port())
    }
    async fn run(app: Self::App) -> Result<(), String> {
        app.run_until_stopped().await;
        Ok(())
    }
    fn outbox_table() -> &'static str {
        // webhook_receiver's `bus_tables()` (not exported).
        "webhook_outbox"
    }
}

struct Portal;

impl Service for Portal {
    const NAME: ServiceName = ServiceName::Portal;
    type Config = portal::config::PortalConfig;
    type App = portal::Application;
    type BuildError = portal::StartupError;

    fn load(file: Option<&Path>) -> Result<Self::Config, ConfigError> {
        Self::Config::load(file)
    }
    fn connections(config: &Self::Config) -> (&database::DatabaseConfig, &platform_bus::BusConfig) {
        (&config.database, &config.bus)
    }
    fn spec(_config: &Self::Config) -> Option<bus::ServiceSpec> {
        None
    }
    fn build(
        config: Self::Config,
        shared: Shared,
    ) -> impl Future<Output = Result<Self::App, Self::BuildError>> + Send {
        let dependencies = portal::Dependencies {
            bus: Some(shared.bus),
            database: Some(shared.database),
            shutdown: Some(shared.shutdown),
            ..portal::Dependencies::default()
        };
        portal::Application::build_with(config, dependencies)
    }
    fn note(app: &Self::App) -> String {
        format!("portal on port {}", app.port())
    }
    async fn run(app: Self::App) -> Result<(), String> {
        app.run_until_stopped().await.map_err(|e| chain(&e))
    }
    fn outbox_table() -> &'static str {
        static_table(portal::bus_tables().outbox, "portal_outbox")
    }
}

/// Builds and starts one service from its configuration (`file` over its defaults).
///
/// # Errors
/// Its configuration, database, broker or start failed.
pub async fn start(
    name: ServiceName,
    file: Option<&Path>,
    shutdown: &CancellationToken,
) -> Result<Started, Error> {
    // The span names the service in what its start logs (a wait for the migration lock,
    // a database that does not answer).
    let span = tracing::info_span!("start", service = name.as_str());
    async {
        match name {
            ServiceName::TokenVault => start_service::<TokenVault>(file, shutdown).await,
            ServiceName::Writer => start_service::<Writer>(file, shutdown).await,
            ServiceName::Reader => start_service::<Reader>(file, shutdown).await,
            ServiceName::WebhookReceiver => start_service::<WebhookReceiver>(file, shutdown).await,
            ServiceName::Portal => start_service::<Portal>(file, shutdown).await,
        }
    }
    .instrument(span)
    .await
}

/// [`start`] for the service `S`: its configuration, the connections, the built service
/// running in a watched task, its probe and metrics sources.
async fn start_service<S: Service>(
    file: Option<&Path>,
    shutdown: &CancellationToken,
) -> Result<Started, Error> {
    let service = S::NAME.as_str();
    let config = S::load(file).map_err(|source| Error::Config {
        what: service,
        source,
    })?;
    S::check(&config)?;
    let (database_config, bus_config) = S::connections(&config);
    let (db, bus) = connect(service, database_config, bus_config).await?;
    let bus_config = bus_config.clone();
    let spec = S::spec(&config);
    let shared = Shared {
        database: db.clone(),
        bus: bus.clone(),
        shutdown: shutdown.clone(),
    };
    let app = S::build(config, shared).await.map_err(|e| Error::Service {
        service,
        message: chain(&e),
    })?;
    let note = S::note(&app);
    let running = Arc::new(AtomicBool::new(true));
    let task = watch(service, running.clone(), shutdown.clone(), S::run(app));
    Ok(
        Started::new(service, db, bus, running, task, note).sampling(
            &bus_config,
            spec.as_ref(),
            S::outbox_table(),
            S::states(),
        ),
    )
}

/// The default filter (`info`) with `lapin=error` added: lapin logs every message the
/// broker returns, body included, at WARN (the outbox's own warning says the same in one
/// line). Any other filter is the operator's and is kept as written.
pub fn quiet_lapin(config: &telemetry::TelemetryConfig) -> telemetry::TelemetryConfig {
    let mut config = config.clone();
    if config.filter.trim() == "info" {
        config.filter = "info,lapin=error".to_owned();
    }
    config
}

/// Waits for every task; `Ok` when each returned `Ok`.
async fn join_all(tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (service, task) in tasks {
        match task.await {
            Ok(Ok(())) => tracing::info!(service, "stopped"),
            Ok(Err(e)) => failures.push(format!("{service}: {e}")),
            Err(e) => failures.push(format!("{service}: task failed: {e}")),
        }
    }
    failures
}

/// `idbridge serve`. Returns the exit code.
///
/// # Errors
/// The command's configuration, the admin port or a service's start failed.
pub async fn serve(
    services: &[ServiceName],
    file: Option<&Path>,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let config = IdbridgeConfig::load(file).map_err(|source| Error::Config {
        what: "idbridge",
        source,
    })?;
    let _telemetry = telemetry::init_service(
        &quiet_lapin(&config.telemetry),
        &telemetry::service_name(services.iter().map(|s| s.as_str())),
    )?;
    if let Err(e) = platform_metrics::install() {
        // /metrics then shows only the process-level facts; the services run regardless.
        tracing::warn!(error = %e, "no Prometheus recorder");
    }
    let mut names: Vec<ServiceName> = Vec::new();
    for s in services {
        if !names.contains(s) {
            names.push(*s);
        }
    }
    let shutdown = CancellationToken::new();
    let requested = cancel_on_signal(shutdown.clone())?;
    let state = AdminState::new(names.iter().map(|s| s.as_str()).collect());
    let admin = AdminServer::start(config.admin.listen.trim(), state.clone())?;
    state
        .collector()
        .set_interval(std::time::Duration::from_secs(config.admin.sample_seconds));
    let collector = state.collector().spawn(shutdown.clone());
    let admin_host = config
        .admin_addr()
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string());
    let _ = writeln!(
        out,
        "idbridge admin listening on http://{admin_host}:{} (/healthz /readyz /metrics)",
        admin.port
    );
    let _ = out.flush();

    let mut tasks = Vec::new();
    let mut failure = None;
    let mut all_started = true;
    for name in &names {
        // A stop asked for while a service starts (waiting for the database, or for another
        // replica's migrations) ends the start: nothing of that service runs yet, and the
        // services already started stop as usual below.
        let started = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                tracing::info!(service = name.as_str(), "stopping before this service started");
                all_started = false;
                break;
            }
            started = start(*name, file, &shutdown) => started,
        };
        match started {
            Ok(started) => {
                let _ = writeln!(out, "{}", started.note);
                let _ = out.flush();
                platform_metrics::build_info(env!("CARGO_PKG_VERSION"), started.probe.service);
                state.collector().add(started.sources);
                tasks.push((started.probe.service, started.task));
                state.add(started.probe).await;
            }
            Err(e) => {
                failure = Some(e);
                shutdown.cancel();
                break;
            }
        }
    }
    if failure.is_none() && all_started {
        let _ = writeln!(
            out,
            "idbridge serving: {}",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = out.flush();
    }
    shutdown.cancelled().await;
    let failures = join_all(tasks).await;
    let _ = collector.await;
    admin.stop().await;
    if let Some(e) = failure {
        return Err(e);
    }
    for f in &failures {
        let _ = writeln!(out, "stopped with an error: {f}");
    }
    if failures.is_empty() && requested.load(Ordering::SeqCst) {
        let _ = writeln!(out, "idbridge stopped cleanly");
        Ok(exit::OK)
    } else {
        let _ = writeln!(out, "idbridge stopped: a service ended on its own");
        Ok(exit::FAILED)
    }
}
