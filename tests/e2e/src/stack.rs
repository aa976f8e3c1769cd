//! [`Stack`]: a fresh PostgreSQL database, a fresh bus prefix on RabbitMQ, orcid-sim as its
//! own process, one configuration file, and each requested service as a separate
//! `idbridge serve <service>` process with its own admin port.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::ExposeSecret;

use crate::binaries::{Binaries, Profile, binaries, target_dir};
use crate::env;
use crate::process::{ManagedProcess, Memory, Signal, Spawn};

/// The member client registered at the simulator (test data, not a credential).
pub const CLIENT_ID: &str = "APP-E2ETEST000000001";
/// Its secret (test data).
pub const CLIENT_SECRET: &str = "e2e-client-secret";
/// How long a service may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service may take to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(20);

/// A service `idbridge serve` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// `token-vault`.
    TokenVault,
    /// `writer`.
    Writer,
    /// `reader`.
    Reader,
    /// `webhook-receiver`.
    WebhookReceiver,
    /// `portal`.
    Portal,
}

impl Service {
    /// Every service, in start order.
    pub const ALL: [Service; 5] = [
        Service::TokenVault,
        Service::Writer,
        Service::Reader,
        Service::WebhookReceiver,
        Service::Portal,
    ];

    /// The name `idbridge serve` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::TokenVault => "token-vault",
            Service::Writer => "writer",
            Service::Reader => "reader",
            Service::WebhookReceiver => "webhook-receiver",
            Service::Portal => "portal",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rate limit: sustained requests per second and burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second.
    pub per_second: u32,
    /// Burst.
    pub burst: u32,
}

impl RateLimit {
    /// ORCID's member API limit: 24/s, burst 40.
    pub const ORCID: RateLimit = RateLimit {
        per_second: 24,
        burst: 40,
    };
    /// High enough never to wait (the client's limit "lifted").
    pub const LIFTED: RateLimit = RateLimit {
        per_second: 1_000_000,
        burst: 1_000_000,
    };
}

/// What to start. [`StackOptions::new`] gives every service, one writer, ORCID's rate limit
/// at the services and none at the simulator.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Names the artifacts directory `target/test-artifacts/e2e/<name>/` (use the test's name).
    pub name: String,
    /// The services to run (each as its own process).
    pub services: Vec<Service>,
    /// Writer processes (replicas), when the writer runs.
    pub writer_replicas: usize,
    /// Partitions of the writer's queue.
    pub writer_partitions: u16,
    /// Whether the simulator enforces ORCID's limit (24/s, burst 40, then `503`).
    pub sim_rate_limit: bool,
    /// The services' own shared ORCID budget (`[orcid.rate_limit]`); [`RateLimit::LIFTED`]
    /// lifts it.
    pub client_rate_limit: RateLimit,
    /// Debug or release executables.
    pub profile: Profile,
    /// `database.max_connections` of each service process.
    pub db_max_connections: u32,
    /// `telemetry.filter` of each service process.
    pub log_filter: String,
    /// The webhook receiver's debounce window.
    pub webhook_debounce_ms: u64,
    /// The simulator's webhook delivery interval.
    pub sim_webhook_interval_ms: u64,
    /// Extra `IDBRIDGE__…` variables for every service process (they override the file).
    pub env: Vec<(String, String)>,
}

impl StackOptions {
    /// Defaults for the test or benchmark `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            services: Service::ALL.to_vec(),
            writer_replicas: 1,
            writer_partitions: 4,
            sim_rate_limit: false,
            client_rate_limit: RateLimit::ORCID,
            profile: Profile::Debug,
            db_max_connections: 4,
            log_filter: "info,lapin=error".to_owned(),
            webhook_debounce_ms: 300,
            sim_webhook_interval_ms: 200,
            env: Vec::new(),
        }
    }

    /// Only these services.
    pub fn services(mut self, services: &[Service]) -> Self {
        self.services = services.to_vec();
        self
    }

    /// `n` writer processes.
    pub fn writer_replicas(mut self, n: usize) -> Self {
        self.writer_replicas = n.max(1);
        self
    }

    /// The simulator's rate limit on or off.
    pub fn sim_rate_limit(mut self, on: bool) -> Self {
        self.sim_rate_limit = on;
        self
    }

    /// The services' own budget.
    pub fn client_rate_limit(mut self, limit: RateLimit) -> Self {
        self.client_rate_limit = limit;
        self
    }

    /// Debug or release executables.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// An extra `IDBRIDGE__…` variable for every service process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    fn runs(&self, service: Service) -> bool {
        self.services.contains(&service)
    }
}

/// Credentials the harness made for this stack (test data, random per stack).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The writer API caller (rights `hr-events:write`, `items:read`).
    pub writer_api_token: String,
    /// The vault API caller `e2e` (rights `token:read`, `connections:list`).
    pub vault_token: String,
}

struct ServiceProcess {
    service: Service,
    replica: usize,
    admin_url: String,
    process: ManagedProcess,
}

/// Everything running for one test; stopped (SIGKILL) and cleaned up on drop if
/// [`Stack::stop`] was not called. On a panic the log files' paths and tails are printed.
pub struct Stack {
    options: StackOptions,
    binaries: Binaries,
    artifacts: PathBuf,
    config_path: PathBuf,
    database: env::TestDatabase,
    prefix: String,
    credentials: Credentials,
    sim_url: String,
    sim: Mutex<ManagedProcess>,
    processes: Mutex<Vec<ServiceProcess>>,
    vault_url: String,
    portal_url: String,
    receiver_url: String,
    writer_urls: Vec<String>,
    http: reqwest::Client,
    finished: bool,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("name", &self.options.name)
            .field("artifacts", &self.artifacts)
            .finish_non_exhaustive()
    }
}

fn free_port(taken: &mut HashSet<u16>) -> anyhow::Result<u16> {
    for _ in 0..50 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free loopback port")?
            .port();
        if taken.insert(port) {
            return Ok(port);
        }
    }
    bail!("no free loopback port found")
}

fn random_token() -> String {
    format!(
        "e2e-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The artifacts directory of `name` (emptied).
fn artifacts_dir(name: &str) -> anyhow::Result<PathBuf> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = target_dir().join("test-artifacts").join("e2e").join(safe);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

struct Ports {
    vault: u16,
    portal: u16,
    receiver: u16,
    writers: Vec<u16>,
}

#[allow(clippy::too_many_arguments)]
fn config_text(
    options: &StackOptions,
    db_url: &str,
    prefix: &str,
    sim_url: &str,
    ports: &Ports,
    credentials: &Credentials,
    caller_tokens: &[(&str, String)],
) -> anyhow::Result<String> {
    let kek = idbridge_crypto::KeyRing::generate_key().context("generating a key")?;
    let (handoff_private, handoff_public) =
        token_vault::handoff::generate_handoff_key().context("generating a hand-off key")?;
    let callback_key = idbridge_crypto::KeyRing::generate_key().context("generating a key")?;
    let token = |name: &str| {
        caller_tokens
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    let hash = |t: &str| token_vault::token_sha256_hex(t);
    let vault_url = format!("http://127.0.0.1:{}", ports.vault);
    let writer_url = ports
        .writers
        .first()
        .map(|p| format!("http://127.0.0.1:{p}"));
    let limit = options.client_rate_limit;
    let mut text = format!(
        r#"# Written by the idbridge-e2e harness for the stack "{name}".
[admin]
listen = "127.0.0.1:0"

[database]
url = "{db_url}"
max_connections = {max_connections}
migrate = true

[bus]
amqp_url = "{amqp}"
prefix = "{prefix}"

[orcid]
registry = "{sim_url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"

[orcid.rate_limit]
shared = true
per_second = {per_second}
burst = {burst}

[telemetry]
format = "compact"
filter = "{filter}"

[vault]
host = "127.0.0.1"
port = {vault_port}
keys = "k1:{kek}"
active_key = "k1"
handoff_keys = "hk1:{handoff_private}"
handoff_active_key = "hk1"

[vault.callers.writer]
token_sha256 = "{writer_hash}"
rights = ["token:read", "connections:list", "connections:revoke"]

[vault.callers.reader]
token_sha256 = "{reader_hash}"
rights = ["token:read", "connections:list", "connections:revoke"]

[vault.callers.webhook-receiver]
token_sha256 = "{receiver_hash}"
rights = ["client-token:read"]

[vault.callers.portal]
token_sha256 = "{portal_hash}"
rights = ["connections:list", "connections:disconnect"]

[vault.callers.e2e]
token_sha256 = "{e2e_hash}"
rights = ["token:read", "connections:list"]

[writer]
partitions = {partitions}
retry_tiers_ms = [500, 1000, 2000, 5000]
max_attempts = 20

[writer.vault]
url = "{vault_url}"
caller_token = "{writer_token}"

[writer.http]
enabled = true
listen = "127.0.0.1:0"

[[writer.http.callers]]
name = "e2e"
token_sha256 = "{api_hash}"
rights = ["hr-events:write", "items:read"]

[[writer.http.callers]]
name = "portal"
token_sha256 = "{portal_writer_hash}"
rights = ["items:read", "invitations:read", "invitations:manage"]

[institution]
name = "Boston University"
city = "Boston"
region = "Massachusetts"
country = "US"
disambiguated_id = "https://ror.org/05qwgg493"

[reader]
partitions = 2
retry_tiers_ms = [500, 1000, 2000, 5000]

[reader.vault]
url = "{vault_url}"
caller_token = "{reader_token}"

[webhooks]
public_url = "http://127.0.0.1:{receiver_port}"
callback_key = "{callback_key}"
debounce_ms = {debounce}
flush_interval_ms = 100
partitions = 2
retry_tiers_ms = [500, 1000, 2000, 5000]

[webhooks.http]
listen = "127.0.0.1:{receiver_port}"

[webhooks.vault]
url = "{vault_url}"
caller_token = "{receiver_token}"

[portal]
host = "127.0.0.1"
port = {portal_port}
public_url = "http://127.0.0.1:{portal_port}"

[portal.vault]
url = "{vault_url}"
caller_token = "{portal_token}"
handoff_key = "hk1:{handoff_public}"
"#,
        name = options.name,
        max_connections = options.db_max_connections,
        amqp = env::amqp_url(),
        per_second = limit.per_second,
        burst = limit.burst,
        filter = options.log_filter,
        vault_port = ports.vault,
        kek = kek.expose_secret(),
        handoff_private = handoff_private.expose_secret(),
        writer_hash = hash(&token("writer")),
        reader_hash = hash(&token("reader")),
        receiver_hash = hash(&token("webhook-receiver")),
        portal_hash = hash(&token("portal")),
        e2e_hash = hash(&credentials.vault_token),
        partitions = options.writer_partitions,
        writer_token = token("writer"),
        api_hash = hash(&credentials.writer_api_token),
        portal_writer_hash = hash(&token("portal-writer")),
        reader_token = token("reader"),
        receiver_port = ports.receiver,
        callback_key = callback_key.expose_secret(),
        debounce = options.webhook_debounce_ms,
        receiver_token = token("webhook-receiver"),
        portal_port = ports.portal,
        portal_token = token("portal"),
    );
    if let Some(url) = writer_url.filter(|_| options.runs(Service::Writer)) {
        text.push_str(&format!(
            "\n[portal.writer]\nurl = \"{url}\"\ncaller_token = \"{}\"\n",
            token("portal-writer")
        ));
    }
    Ok(text)
}

impl Stack {
    /// Builds the executables (once per process), creates the database and the bus prefix,
    /// starts the simulator and every requested service, and waits until each answers
    /// `/readyz` with 200.
    ///
    /// # Errors
    /// PostgreSQL or RabbitMQ unreachable, a build or start failure, or a service not ready
    /// within [`READY_TIMEOUT`] (its log tail is in the error).
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let profile = options.profile;
        let binaries = tokio::task::spawn_blocking(move || binaries(profile))
            .await
            .context("the build task")??;
        env::require_rabbitmq().await?;
        let artifacts = artifacts_dir(&options.name)?;
        let prefix = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);

        // The simulator first: its URL goes into the configuration (and it dies with its
        // handle if anything below fails).
        let (sim, sim_url) = start_sim(&binaries, &options, &artifacts).await?;
        let database = env::TestDatabase::create("e2e").await?;
        // From here on the database is dropped by the stack's Drop; until the stack exists,
        // by this guard.
        let guard = DropDatabase(Some(database.clone()));

        let mut taken = HashSet::new();
        let ports = Ports {
            vault: free_port(&mut taken)?,
            portal: free_port(&mut taken)?,
            receiver: free_port(&mut taken)?,
            writers: (0..options.writer_replicas)
                .map(|_| free_port(&mut taken))
                .collect::<anyhow::Result<_>>()?,
        };
        let credentials = Credentials {
            writer_api_token: random_token(),
            vault_token: random_token(),
        };
        let caller_tokens: Vec<(&str, String)> = [
            "writer",
            "reader",
            "webhook-receiver",
            "portal",
            "portal-writer",
        ]
        .into_iter()
        .map(|n| (n, random_token()))
        .collect();
        let text = config_text(
            &options,
            &database.url,
            &prefix,
            &sim_url,
            &ports,
            &credentials,
            &caller_tokens,
        )?;
        let config_path = artifacts.join("idbridge.toml");
        std::fs::write(&config_path, text)
            .with_context(|| format!("writing {}", config_path.display()))?;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("an HTTP client")?;
        let mut guard = guard;
        guard.0 = None;
        let stack = Stack {
            binaries,
            artifacts,
            config_path,
            database,
            prefix,
            credentials,
            sim_url,
            sim: Mutex::new(sim),
            processes: Mutex::new(Vec::new()),
            vault_url: format!("http://127.0.0.1:{}", ports.vault),
            portal_url: format!("http://127.0.0.1:{}", ports.portal),
            receiver_url: format!("http://127.0.0.1:{}", ports.receiver),
            writer_urls: ports
                .writers
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            http,
            finished: false,
            options,
        };
        stack.migrate().await?;

        let mut taken_admin = taken;
        let mut planned = Vec::new();
        for service in Service::ALL {
            if !stack.options.runs(service) {
                continue;
            }
            let replicas = if service == Service::Writer {
                stack.options.writer_replicas
            } else {
                1
            };
            for replica in 0..replicas {
                let admin_port = free_port(&mut taken_admin)?;
                let mut env = vec![(
                    "IDBRIDGE__ADMIN__LISTEN".to_owned(),
                    format!("127.0.0.1:{admin_port}"),
                )];
                if service == Service::Writer {
                    env.push((
                        "IDBRIDGE__WRITER__HTTP__LISTEN".to_owned(),
                        format!("127.0.0.1:{}", ports.writers[replica]),
                    ));
                }
                env.extend(stack.options.env.iter().cloned());
                let label = if service == Service::Writer {
                    format!("writer-{replica}")
                } else {
                    service.as_str().to_owned()
                };
                let spec = Spawn {
                    program: stack.binaries.idbridge.clone(),
                    args: vec![
                        "serve".to_owned(),
                        service.as_str().to_owned(),
                        "--config".to_owned(),
                        stack.config_path.display().to_string(),
                    ],
                    env,
                    log_dir: stack.artifacts.clone(),
                    label,
                };
                planned.push(ServiceProcess {
                    service,
                    replica,
                    admin_url: format!("http://127.0.0.1:{admin_port}"),
                    process: ManagedProcess::spawn(spec)?,
                });
            }
        }
        let targets: Vec<(Service, usize)> =
            planned.iter().map(|p| (p.service, p.replica)).collect();
        *lock(&stack.processes) = planned;
        for (service, replica) in targets {
            stack.wait_started(service, replica).await?;
        }
        Ok(stack)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let spec = Spawn {
            program: self.binaries.idbridge.clone(),
            args: vec![
                "migrate".to_owned(),
                "--config".to_owned(),
                self.config_path.display().to_string(),
            ],
            env: Vec::new(),
            log_dir: self.artifacts.clone(),
            label: "migrate".to_owned(),
        };
        let status = tokio::task::spawn_blocking(move || -> anyhow::Result<ExitStatus> {
            let mut process = ManagedProcess::spawn(spec)?;
            let status = process.wait_exit(Duration::from_secs(120));
            if status.is_err() {
                let _ = process.signal(Signal::Kill);
            }
            status.map_err(|e| anyhow::anyhow!("{e}\n{}", process.tail(30)))
        })
        .await
        .context("the migrate task")??;
        if !status.success() {
            bail!(
                "`idbridge migrate` failed ({status}); see {}",
                self.artifacts.join("migrate.stderr.log").display()
            );
        }
        Ok(())
    }

    /// [`Stack::wait_ready`] at the first start: a process that exits before it is ready
    /// (the broker or the database did not answer in time on a busy machine) is started
    /// again, twice at most, saying so on stderr.
    async fn wait_started(&self, service: Service, replica: usize) -> anyhow::Result<()> {
        let mut attempts = 1;
        loop {
            match self.wait_ready(service, replica).await {
                Ok(()) => return Ok(()),
                Err(e) if attempts < 3 => {
                    let mut processes = lock(&self.processes);
                    let p = find(&mut processes, service, replica)?;
                    if p.process.running() {
                        return Err(e);
                    }
                    eprintln!(
                        "e2e: {} did not start ({}); starting it again",
                        p.process.label(),
                        format!("{e:#}")
                            .lines()
                            .rfind(|l| !l.trim().is_empty())
                            .unwrap_or_default()
                    );
                    p.process.restart()?;
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the process answers `/readyz` with 200.
    ///
    /// # Errors
    /// It exited, or is not ready within [`READY_TIMEOUT`]; the error holds its log tail.
    pub async fn wait_ready(&self, service: Service, replica: usize) -> anyhow::Result<()> {
        let admin = self.admin_url(service, replica)?;
        let end = Instant::now() + READY_TIMEOUT;
        let mut last: String;
        loop {
            {
                let mut processes = lock(&self.processes);
                let p = find(&mut processes, service, replica)?;
                if let Some(status) = p.process.try_exit() {
                    bail!(
                        "{} exited ({status}) before it was ready:\n{}",
                        p.process.label(),
                        p.process.tail(40)
                    );
                }
            }
            match self.http.get(format!("{admin}/readyz")).send().await {
                Ok(res) if res.status().as_u16() == 200 => {
                    // The port was free when it was picked, not reserved: make sure the 200
                    // came from this process and not from one that took the port meanwhile.
                    let pid = self.pid(service, replica)?;
                    match admin_port(&admin).map(|port| listens_on(pid, port)) {
                        Some(true) => return Ok(()),
                        _ => {
                            last = format!(
                                "200 from {admin}, but pid {pid} does not hold that port (another process took it)"
                            );
                        }
                    }
                }
                Ok(res) => {
                    last = format!("{}: {}", res.status(), res.text().await.unwrap_or_default());
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= end {
                let mut processes = lock(&self.processes);
                let p = find(&mut processes, service, replica)?;
                bail!(
                    "{} not ready within {READY_TIMEOUT:?} (last /readyz: {last}):\n{}",
                    p.process.label(),
                    p.process.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The options it was started with.
    pub fn options(&self) -> &StackOptions {
        &self.options
    }

    /// The simulator's base URL.
    pub fn sim_url(&self) -> &str {
        &self.sim_url
    }

    /// The portal's base URL.
    pub fn portal_url(&self) -> &str {
        &self.portal_url
    }

    /// The vault API's base URL.
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// The webhook receiver's public URL.
    pub fn receiver_url(&self) -> &str {
        &self.receiver_url
    }

    /// The HTTP API of writer replica `replica`.
    ///
    /// # Errors
    /// No such replica.
    pub fn writer_url(&self, replica: usize) -> anyhow::Result<&str> {
        self.writer_urls
            .get(replica)
            .map(String::as_str)
            .with_context(|| format!("no writer replica {replica}"))
    }

    /// The PostgreSQL URL every service uses (one database, each service's own tables).
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// The bus prefix of this stack.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The configuration file every process reads.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Where logs and the configuration file are kept.
    pub fn artifacts_dir(&self) -> &Path {
        &self.artifacts
    }

    /// The executables in use.
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// Callers the harness configured.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The admin base URL (`/healthz`, `/readyz`, `/metrics`) of a process.
    ///
    /// # Errors
    /// No such process.
    pub fn admin_url(&self, service: Service, replica: usize) -> anyhow::Result<String> {
        let mut processes = lock(&self.processes);
        Ok(find(&mut processes, service, replica)?.admin_url.clone())
    }

    /// The pid of a process (of its current incarnation).
    ///
    /// # Errors
    /// No such process.
    pub fn pid(&self, service: Service, replica: usize) -> anyhow::Result<u32> {
        let mut processes = lock(&self.processes);
        Ok(find(&mut processes, service, replica)?.process.pid())
    }

    /// Every service process: (service, replica, label, pid).
    pub fn processes(&self) -> Vec<(Service, usize, String, u32)> {
        lock(&self.processes)
            .iter()
            .map(|p| {
                (
                    p.service,
                    p.replica,
                    p.process.label().to_owned(),
                    p.process.pid(),
                )
            })
            .collect()
    }

    /// The simulator's pid.
    pub fn sim_pid(&self) -> u32 {
        lock(&self.sim).pid()
    }

    /// Resident memory of a running process.
    ///
    /// # Errors
    /// No such process.
    pub fn memory(&self, service: Service, replica: usize) -> anyhow::Result<Option<Memory>> {
        let mut processes = lock(&self.processes);
        Ok(find(&mut processes, service, replica)?.process.memory())
    }

    /// Sends `signal` to a process; for [`Signal::Kill`] also waits for it to die.
    ///
    /// This blocks the calling thread while it waits: async code should prefer
    /// [`Stack::signal`] and [`Stack::kill_and_reap`].
    ///
    /// # Errors
    /// No such process, it already exited, or it did not die.
    pub fn kill(&self, service: Service, replica: usize, signal: Signal) -> anyhow::Result<()> {
        self.signal(service, replica, signal)?;
        if signal == Signal::Kill {
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                {
                    // The lock is held only for each look, not for the whole wait.
                    let mut processes = lock(&self.processes);
                    let p = find(&mut processes, service, replica)?;
                    if p.process.try_exit().is_some() {
                        return Ok(());
                    }
                    if Instant::now() >= end {
                        bail!("{} did not die within 10 s", p.process.label());
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Sends `signal` to a process and returns at once (for [`Signal::Kill`] see
    /// [`Stack::kill_and_reap`]).
    ///
    /// # Errors
    /// No such process, or it already exited.
    pub fn signal(&self, service: Service, replica: usize, signal: Signal) -> anyhow::Result<()> {
        let mut processes = lock(&self.processes);
        find(&mut processes, service, replica)?
            .process
            .signal(signal)
    }

    /// Sends SIGKILL to a process and waits (without blocking the runtime) until it is gone.
    ///
    /// # Errors
    /// No such process, it already exited, or it did not die within 10 s.
    pub async fn kill_and_reap(&self, service: Service, replica: usize) -> anyhow::Result<()> {
        self.signal(service, replica, Signal::Kill)?;
        self.wait_exit(service, replica, Duration::from_secs(10))
            .await
            .map(|_| ())
    }

    /// Waits for a process to exit (after [`Signal::Term`]) and returns its status.
    ///
    /// # Errors
    /// No such process, or it still runs after `timeout`.
    pub async fn wait_exit(
        &self,
        service: Service,
        replica: usize,
        timeout: Duration,
    ) -> anyhow::Result<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            {
                let mut processes = lock(&self.processes);
                let p = find(&mut processes, service, replica)?;
                if let Some(status) = p.process.try_exit() {
                    return Ok(status);
                }
                if Instant::now() >= end {
                    bail!("{} did not exit within {timeout:?}", p.process.label());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts an exited process again (same command, ports and configuration) and waits
    /// until it is ready.
    ///
    /// # Errors
    /// It still runs, it cannot start, or it does not become ready.
    pub async fn restart(&self, service: Service, replica: usize) -> anyhow::Result<()> {
        {
            let mut processes = lock(&self.processes);
            find(&mut processes, service, replica)?.process.restart()?;
        }
        self.wait_ready(service, replica).await
    }

    /// The paths of every log file.
    pub fn log_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        {
            let sim = lock(&self.sim);
            files.push(sim.spec().stdout_path());
            files.push(sim.spec().stderr_path());
        }
        for p in lock(&self.processes).iter() {
            files.push(p.process.spec().stdout_path());
            files.push(p.process.spec().stderr_path());
        }
        files
    }

    /// The log tails of every process (for assertion messages).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = lock(&self.sim).tail(lines);
        for p in lock(&self.processes).iter() {
            out.push_str(&p.process.tail(lines));
        }
        out
    }

    /// Stops every service with SIGTERM (in reverse start order), then the simulator, and
    /// removes the database and the bus objects.
    ///
    /// # Errors
    /// A service did not exit 0 after SIGTERM (it was then killed); cleanup still ran.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.finished = true;
        let mut processes = std::mem::take(&mut *lock(&self.processes));
        let failures = tokio::task::spawn_blocking(move || {
            let mut failures = Vec::new();
            // Signal every process first, then wait: they stop in parallel.
            for p in processes.iter_mut() {
                if p.process.running() {
                    let _ = p.process.signal(Signal::Term);
                }
            }
            for p in processes.iter_mut().rev() {
                let status = p.process.stop(STOP_GRACE);
                if !status.is_some_and(|s| s.success()) {
                    failures.push(format!(
                        "{} did not stop cleanly on SIGTERM ({status:?}):\n{}",
                        p.process.label(),
                        p.process.tail(20)
                    ));
                }
            }
            failures
        })
        .await
        .context("the stop task")?;
        let _ = lock(&self.sim).stop(STOP_GRACE);
        self.cleanup().await;
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("{}", failures.join("\n"))
        }
    }

    async fn cleanup(&self) {
        if std::env::var_os("IDBRIDGE_E2E_KEEP").is_some() {
            eprintln!(
                "IDBRIDGE_E2E_KEEP: kept database {} and bus prefix {}",
                self.database.name, self.prefix
            );
            return;
        }
        delete_topology(&self.config_path, &self.prefix).await;
        self.database.drop().await;
    }
}

/// Deletes every queue and exchange the services declared under this prefix.
async fn delete_topology(config: &Path, prefix: &str) {
    let Ok(bus) = bus::Bus::amqp(bus::AmqpConfig::new(&env::amqp_url()), prefix).await else {
        return;
    };
    let mut topologies = vec![
        bus::Topology::new()
            .exchange(bus::events::exchanges::EVENTS)
            .service(token_vault::service_spec()),
    ];
    if let Ok(c) = writer::config::WriterConfig::load(Some(config)) {
        topologies.push(writer::topology(&writer::service_spec(&c)));
    }
    if let Ok(c) = reader::config::ReaderConfig::load(Some(config)) {
        topologies.push(reader::topology(&reader::service_spec(&c)));
    }
    if let Ok(c) = webhook_receiver::config::ReceiverConfig::load(Some(config)) {
        topologies.push(webhook_receiver::topology(&webhook_receiver::service_spec(
            &c,
        )));
    }
    for topology in &topologies {
        let _ = bus.delete(topology).await;
    }
    bus.close().await;
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "e2e stack `{}` failed; configuration and logs in {}:",
                self.options.name,
                self.artifacts.display()
            );
            for file in self.log_files() {
                eprintln!("  {}", file.display());
            }
            eprintln!("{}", self.log_tails(25));
        }
        for p in lock(&self.processes).iter_mut() {
            if p.process.running() {
                let _ = p.process.signal(Signal::Kill);
                let _ = p.process.wait_exit(Duration::from_secs(5));
            }
        }
        let _ = lock(&self.sim).stop(Duration::from_secs(2));
        // The cleanup is async: run it on a runtime of its own, off this (maybe async) thread.
        let config = self.config_path.clone();
        let prefix = self.prefix.clone();
        let database = self.database.clone();
        let keep = std::env::var_os("IDBRIDGE_E2E_KEEP").is_some();
        let cleanup = std::thread::spawn(move || {
            if keep {
                return;
            }
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(async {
                    delete_topology(&config, &prefix).await;
                    database.drop().await;
                });
            }
        });
        let _ = cleanup.join();
    }
}

/// Drops the database unless disarmed (errors before the [`Stack`] exists).
struct DropDatabase(Option<env::TestDatabase>);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Some(database) = self.0.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(database.drop());
                }
            })
            .join();
        }
    }
}

/// The port of an admin URL `http://127.0.0.1:PORT`.
fn admin_port(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// Whether process `pid` owns the TCP socket listening on `port` (Linux: the socket's inode
/// in `/proc/net/tcp{,6}` among the links in `/proc/<pid>/fd`).
fn listens_on(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let listening = *state == "0A";
            let on_port = local
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                == Some(port);
            if listening && on_port {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|link| inodes.iter().any(|i| link.as_os_str() == i.as_str()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn find(
    processes: &mut [ServiceProcess],
    service: Service,
    replica: usize,
) -> anyhow::Result<&mut ServiceProcess> {
    processes
        .iter_mut()
        .find(|p| p.service == service && p.replica == replica)
        .with_context(|| format!("{service} replica {replica} is not part of this stack"))
}

async fn start_sim(
    binaries: &Binaries,
    options: &StackOptions,
    artifacts: &Path,
) -> anyhow::Result<(ManagedProcess, String)> {
    let mut args = vec![
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        // Scheme and host only: every portal port and path is accepted, as ORCID matches.
        "--client".to_owned(),
        format!("{CLIENT_ID}:{CLIENT_SECRET}:http://127.0.0.1"),
        "--webhook-interval-ms".to_owned(),
        options.sim_webhook_interval_ms.to_string(),
        "--webhook-retry-delay-ms".to_owned(),
        "200".to_owned(),
        "--webhook-timeout-ms".to_owned(),
        "5000".to_owned(),
    ];
    if options.sim_rate_limit {
        args.push("--rate-limit".to_owned());
    }
    let spec = Spawn {
        program: binaries.orcid_sim.clone(),
        args,
        env: vec![("RUST_LOG".to_owned(), "info".to_owned())],
        log_dir: artifacts.to_path_buf(),
        label: "orcid-sim".to_owned(),
    };
    let stdout_path = spec.stdout_path();
    let (mut process, stdout) = ManagedProcess::spawn_piped(spec)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let mut file = std::fs::File::create(&stdout_path).ok();
        let mut sent = false;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if !sent && let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_owned());
                sent = true;
            }
        }
    });
    let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .context("the simulator task")?;
    match url {
        Ok(url) => Ok((process, url)),
        Err(_) => {
            let _ = process.stop(Duration::from_secs(2));
            bail!(
                "orcid-sim did not say where it listens within 30 s:\n{}",
                process.tail(30)
            )
        }
    }
}

/// Users of the running stack.
impl Stack {
    /// The simulator's API and test hooks.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn sim(&self) -> anyhow::Result<crate::drivers::Sim> {
        crate::drivers::Sim::new(&self.sim_url)
    }

    /// The writer's HTTP API (replica 0) as the harness's caller (`hr-events:write`,
    /// `items:read`).
    ///
    /// # Errors
    /// No writer runs.
    pub fn writer_api(&self) -> anyhow::Result<crate::drivers::WriterApi> {
        crate::drivers::WriterApi::new(self.writer_url(0)?, &self.credentials.writer_api_token)
    }

    /// The vault's API as the harness's caller `e2e` (`token:read`, `connections:list`).
    ///
    /// # Errors
    /// The client cannot be built.
    pub fn vault(&self) -> anyhow::Result<token_vault::client::VaultClient> {
        token_vault::client::VaultClient::new(
            &self.vault_url,
            self.credentials.vault_token.clone().into(),
        )
        .map_err(|e| anyhow::anyhow!("a vault client: {e}"))
    }

    /// A connection to the stack's database (every service's tables).
    ///
    /// # Errors
    /// PostgreSQL is unreachable.
    pub async fn db(&self) -> anyhow::Result<sea_orm::DatabaseConnection> {
        self.database.connect().await
    }

    /// A new researcher at the simulator, signed in to the portal (no connection yet).
    ///
    /// # Errors
    /// The simulator or the portal refused.
    pub async fn sign_in(
        &self,
        person_id: &str,
        given: &str,
        family: &str,
    ) -> anyhow::Result<crate::drivers::PortalUser> {
        let researcher = self
            .sim()?
            .create_researcher(person_id, given, family)
            .await?;
        crate::drivers::PortalUser::sign_in(&self.portal_url, &researcher).await
    }

    /// A new researcher who signs in to the portal, connects their iD (through ORCID's
    /// authorize page) and whose connection the vault then lists as active.
    ///
    /// # Errors
    /// A step failed, or the vault did not list the connection within 30 s.
    pub async fn connect_researcher(
        &self,
        person_id: &str,
        given: &str,
        family: &str,
    ) -> anyhow::Result<crate::drivers::PortalUser> {
        let mut user = self.sign_in(person_id, given, family).await?;
        user.connect().await?;
        self.wait_connected(person_id).await?;
        Ok(user)
    }

    /// Waits until the vault lists an active connection for `person_id`.
    ///
    /// # Errors
    /// Not within 30 s.
    pub async fn wait_connected(
        &self,
        person_id: &str,
    ) -> anyhow::Result<token_vault::client::Connection> {
        let vault = self.vault()?;
        crate::drivers::wait_for(
            &format!("the vault to hold {person_id}'s connection"),
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                let vault = vault.clone();
                async move {
                    let page = vault
                        .connections(Some(person_id), None, None, None)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(page
                        .connections
                        .into_iter()
                        .find(|c| c.state == token_vault::client::ConnectionState::Active))
                }
            },
        )
        .await
    }

    /// Waits until the writer's item `person_id`/`key` is on ORCID (`in_orcid`, put code
    /// stored) with the content of `event_id`, its last source event, confirmed by ORCID
    /// (its history has a `written`/`adopted`/`unchanged` attempt for the event).
    ///
    /// # Errors
    /// Not within `timeout`.
    pub async fn wait_item_written(
        &self,
        person_id: &str,
        key: &str,
        event_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<writer::api::ItemView> {
        let api = self.writer_api()?;
        crate::drivers::wait_for(
            &format!("the writer to write {person_id}/{key} (event {event_id})"),
            timeout,
            Duration::from_millis(100),
            || {
                let api = api.clone();
                async move {
                    let Some(item) = api.item(person_id, key).await?.filter(|i| {
                        i.state == writer::ledger::ItemState::InOrcid
                            && i.put_code.is_some()
                            && i.source_event_id.as_deref() == Some(event_id)
                    }) else {
                        return Ok(None);
                    };
                    Ok(api.confirmed(item.id, event_id).await?.then_some(item))
                }
            },
        )
        .await
    }
}
