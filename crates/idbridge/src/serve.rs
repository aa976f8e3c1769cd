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

use idbridge_platform::metrics::names;
use idbridge_platform::{bus as platform_bus, database, metrics as platform_metrics, telemetry};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    let db = database::connect(database)
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

/// Builds and starts one service from its configuration (`file` over its defaults).
///
/// # Errors
/// Its configuration, database, broker or start failed.
pub async fn start(
    name: ServiceName,
    file: Option<&Path>,
    shutdown: &CancellationToken,
) -> Result<Started, Error> {
    let service = name.as_str();
    let service_error = |e: &(dyn std::error::Error + 'static)| Error::Service {
        service,
        message: chain(e),
    };
    let running = Arc::new(AtomicBool::new(true));
    match name {
        ServiceName::TokenVault => {
            let config =
                token_vault::config::VaultConfig::load(file).map_err(|source| Error::Config {
                    what: "token-vault",
                    source,
                })?;
            let (db, bus) = connect(service, &config.database, &config.bus).await?;
            let bus_config = config.bus.clone();
            let app = token_vault::Application::build_with(
                config,
                token_vault::Dependencies {
                    bus: Some(bus.clone()),
                    database: Some(db.clone()),
                    shutdown: Some(shutdown.clone()),
                },
            )
            .await
            .map_err(|e| service_error(&e))?;
            let note = format!("token-vault API on port {}", app.port());
            let task = watch(service, running.clone(), shutdown.clone(), async move {
                app.run_until_stopped().await.map_err(|e| chain(&e))
            });
            let states = [
                token_vault::api::ConnectionState::Active,
                token_vault::api::ConnectionState::Revoked,
                token_vault::api::ConnectionState::Expired,
                token_vault::api::ConnectionState::Disconnected,
            ]
            .map(token_vault::api::ConnectionState::as_str)
            .to_vec();
            Ok(
                Started::new(service, db, bus, running, task, note).sampling(
                    &bus_config,
                    Some(&token_vault::service_spec()),
                    // token_vault's `bus_tables()` (crate-private).
                    "token_vault_outbox",
                    Some(StateGauge {
                        collector: "connections",
                        gauge: names::CONNECTIONS,
                        table: "token_vault_connections",
                        known: states,
                    }),
                ),
            )
        }
        ServiceName::Writer => {
            let config =
                writer::config::WriterConfig::load(file).map_err(|source| Error::Config {
                    what: "writer",
                    source,
                })?;
            let (db, bus) = connect(service, &config.database, &config.bus).await?;
            let bus_config = config.bus.clone();
            let spec = writer::service_spec(&config);
            let app = writer::Application::build_with(
                config,
                writer::Dependencies {
                    bus: Some(bus.clone()),
                    database: Some(db.clone()),
                    shutdown: Some(shutdown.clone()),
                    ..writer::Dependencies::default()
                },
            )
            .await
            .map_err(|e| service_error(&e))?;
            let task = watch(service, running.clone(), shutdown.clone(), async move {
                app.run_until_stopped().await;
                Ok(())
            });
            let states = writer::ledger::ItemState::ALL
                .map(writer::ledger::ItemState::as_str)
                .to_vec();
            Ok(Started::new(
                service,
                db,
                bus,
                running,
                task,
                "writer consuming".to_owned(),
            )
            .sampling(
                &bus_config,
                Some(&spec),
                static_table(writer::bus_tables().outbox, "writer_outbox"),
                Some(StateGauge {
                    collector: "items",
                    gauge: names::ITEMS,
                    table: "writer_items",
                    known: states,
                }),
            ))
        }
        ServiceName::Reader => {
            let config =
                reader::config::ReaderConfig::load(file).map_err(|source| Error::Config {
                    what: "reader",
                    source,
                })?;
            let (db, bus) = connect(service, &config.database, &config.bus).await?;
            let bus_config = config.bus.clone();
            let spec = reader::service_spec(&config);
            let app = reader::Application::build_with(
                config,
                reader::Dependencies {
                    bus: Some(bus.clone()),
                    database: Some(db.clone()),
                    shutdown: Some(shutdown.clone()),
                    ..reader::Dependencies::default()
                },
            )
            .await
            .map_err(|e| service_error(&e))?;
            let task = watch(service, running.clone(), shutdown.clone(), async move {
                app.run_until_stopped().await;
                Ok(())
            });
            Ok(Started::new(
                service,
                db,
                bus,
                running,
                task,
                "reader consuming".to_owned(),
            )
            .sampling(
                &bus_config,
                Some(&spec),
                static_table(reader::bus_tables().outbox, "reader_outbox"),
                None,
            ))
        }
        ServiceName::WebhookReceiver => {
            let config =
                webhook_receiver::config::ReceiverConfig::load(file).map_err(|source| {
                    Error::Config {
                        what: "webhook-receiver",
                        source,
                    }
                })?;
            if config
                .database
                .url
                .expose_secret()
                .trim_start()
                .starts_with("sqlite:")
            {
                return Err(Error::NeedsPostgres { service });
            }
            let (db, bus) = connect(service, &config.database, &config.bus).await?;
            let bus_config = config.bus.clone();
            let spec = webhook_receiver::service_spec(&config);
            let app = webhook_receiver::Application::build_with(
                config,
                webhook_receiver::Dependencies {
                    bus: Some(bus.clone()),
                    database: Some(db.clone()),
                    shutdown: Some(shutdown.clone()),
                    ..webhook_receiver::Dependencies::default()
                },
            )
            .await
            .map_err(|e| service_error(&e))?;
            let note = format!("webhook-receiver callbacks on port {}", app.port());
            let task = watch(service, running.clone(), shutdown.clone(), async move {
                app.run_until_stopped().await;
                Ok(())
            });
            Ok(
                Started::new(service, db, bus, running, task, note).sampling(
                    &bus_config,
                    Some(&spec),
                    // webhook_receiver's `bus_tables()` (not exported).
                    "webhook_outbox",
                    None,
                ),
            )
        }
        ServiceName::Portal => {
            let config =
                portal::config::PortalConfig::load(file).map_err(|source| Error::Config {
                    what: "portal",
                    source,
                })?;
            let (db, bus) = connect(service, &config.database, &config.bus).await?;
            let bus_config = config.bus.clone();
            let app = portal::Application::build_with(
                config,
                portal::Dependencies {
                    bus: Some(bus.clone()),
                    database: Some(db.clone()),
                    shutdown: Some(shutdown.clone()),
                    ..portal::Dependencies::default()
                },
            )
            .await
            .map_err(|e| service_error(&e))?;
            let note = format!("portal on port {}", app.port());
            let task = watch(service, running.clone(), shutdown.clone(), async move {
                app.run_until_stopped().await.map_err(|e| chain(&e))
            });
            Ok(
                Started::new(service, db, bus, running, task, note).sampling(
                    &bus_config,
                    None,
                    static_table(portal::bus_tables().outbox, "portal_outbox"),
                    None,
                ),
            )
        }
    }
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
    for name in &names {
        if shutdown.is_cancelled() {
            break;
        }
        match start(*name, file, &shutdown).await {
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
    if failure.is_none() {
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
