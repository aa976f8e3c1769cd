//! The admin HTTP server of `idbridge serve`: `/healthz` (the process answers), `/readyz`
//! (every service built, its database answers `SELECT 1` and its broker accepts a
//! connection), `/metrics` (Prometheus text: everything the process's services record
//! through the `metrics` facade, the gauges [`collectors`] samples, and a few process-level
//! facts; the list is in `docs/metrics.md`).

pub mod collectors;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use bus::{Bus, Topology};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use tokio::sync::RwLock;

use self::collectors::Collector;
use crate::error::Error;

/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What `/readyz` checks for one service.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The service's name.
    pub service: &'static str,
    /// Its database.
    pub database: DatabaseConnection,
    /// Its bus.
    pub bus: Bus,
    /// False once its run returned.
    pub running: Arc<AtomicBool>,
}

/// What the admin server knows: the services expected and those built so far.
#[derive(Debug)]
pub struct AdminState {
    expected: Vec<&'static str>,
    probes: RwLock<Vec<Probe>>,
    started_at: f64,
    collector: Arc<Collector>,
}

impl AdminState {
    /// Expects these services.
    pub fn new(expected: Vec<&'static str>) -> Arc<Self> {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Arc::new(Self {
            expected,
            probes: RwLock::new(Vec::new()),
            started_at,
            collector: Arc::new(Collector::default()),
        })
    }

    /// The sampler of the gauges `/metrics` shows (queues, outboxes, states).
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// A service was built.
    pub async fn add(&self, probe: Probe) {
        self.probes.write().await.push(probe);
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "up"}))
}

async fn check_database(db: &DatabaseConnection) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, db.execute_unprepared("SELECT 1")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// The broker accepts a connection and a channel (an empty topology declares nothing; on the
/// in-process bus it is always up).
async fn check_broker(bus: &Bus) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, bus.declare(&Topology::new())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    let probes = state.probes.read().await.clone();
    let mut down = Vec::new();
    let mut services = serde_json::Map::new();
    for name in &state.expected {
        let Some(probe) = probes.iter().find(|p| p.service == *name) else {
            down.push(format!("{name}: starting"));
            services.insert((*name).to_owned(), json!({"state": "starting"}));
            continue;
        };
        let (database, broker) =
            tokio::join!(check_database(&probe.database), check_broker(&probe.bus));
        let running = probe.running.load(Ordering::Relaxed);
        if !running {
            down.push(format!("{name}: stopped"));
        }
        if let Err(e) = &database {
            down.push(format!("{name}: database: {e}"));
        }
        if let Err(e) = &broker {
            down.push(format!("{name}: broker: {e}"));
        }
        services.insert(
            (*name).to_owned(),
            json!({
                "state": if running { "running" } else { "stopped" },
                "database": database.err().unwrap_or_else(|| "ok".to_owned()),
                "broker": broker.err().unwrap_or_else(|| "ok".to_owned()),
            }),
        );
    }
    let body = json!({"ready": down.is_empty(), "down": down, "services": services});
    if down.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The recorder's output (when installed) followed by the process-level facts.
async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    use std::fmt::Write as _;
    state.collector.scraped();
    let probes = state.probes.read().await.clone();
    let mut text = idbridge_platform::metrics::handle()
        .map(|h| h.render())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let _ = writeln!(text, "# HELP idbridge_up 1 while the process serves.");
    let _ = writeln!(text, "# TYPE idbridge_up gauge");
    let _ = writeln!(text, "idbridge_up 1");
    let _ = writeln!(
        text,
        "# HELP idbridge_service_running 1 while the named service runs in this process, 0 before it started or after it stopped."
    );
    let _ = writeln!(text, "# TYPE idbridge_service_running gauge");
    for name in &state.expected {
        let running = probes
            .iter()
            .find(|p| p.service == *name)
            .is_some_and(|p| p.running.load(Ordering::Relaxed));
        let _ = writeln!(
            text,
            "idbridge_service_running{{service=\"{name}\"}} {}",
            u8::from(running)
        );
    }
    let _ = writeln!(
        text,
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds."
    );
    let _ = writeln!(text, "# TYPE process_start_time_seconds gauge");
    let _ = writeln!(text, "process_start_time_seconds {:.3}", state.started_at);
    HttpResponse::Ok()
        .content_type(idbridge_platform::metrics::CONTENT_TYPE)
        .body(text)
}

/// A running admin server.
pub struct AdminServer {
    /// The bound port.
    pub port: u16,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl AdminServer {
    /// Binds `address` and serves.
    ///
    /// # Errors
    /// [`Error::AdminBind`].
    pub fn start(address: &str, state: Arc<AdminState>) -> Result<Self, Error> {
        let bind_error = |source| Error::AdminBind {
            address: address.to_owned(),
            source,
        };
        let listener = TcpListener::bind(address).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let data = web::Data::from(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)
        .map_err(bind_error)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Self { port, handle, task })
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}
