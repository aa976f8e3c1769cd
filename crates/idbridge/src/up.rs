//! `idbridge up`: every service in one process on embedded defaults (SQLite files under
//! the data directory, the in-process bus, orcid-sim on loopback with a demo client and demo
//! researchers), or on PostgreSQL, RabbitMQ and real ORCID when given their URLs and
//! credentials. Services start in order — simulator, token vault, writer — each from its
//! own configuration loader with the few values `up` decides set over it, all sharing one
//! bus and one shutdown token.
//!
//! The process installs the Prometheus recorder and serves `/metrics` (and `/healthz`) on
//! [`ADMIN_LISTEN`], or a free loopback port when it is taken.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use bus::events::exchanges;
use bus::{AmqpConfig, Bus, ConsumerOptions, Delivery, Outcome, ServiceSpec, Topology, handler_fn};
use idbridge_platform::config::{ConfigError, Sources};
use orcid_sim::{SimConfig, SimHandle};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::UpArgs;
use crate::config::IdbridgeConfig;
use crate::devkeys::{self, DevKeys, HANDOFF_ID, KEK_ID};
use crate::error::{Error, chain, exit};

/// The demo member client registered in the simulator (simulator data, not a credential).
pub const DEMO_CLIENT_ID: &str = "APP-DEMO000000000001";
/// Its secret (simulator data).
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";
/// Where the portal listens when the port is free; its callback
/// `http://127.0.0.1:<port>/orcid/callback` is the demo client's redirect URI.
pub const PORTAL_PORT: u16 = 8080;
/// The password of every demo researcher at the simulator (simulator data).
pub const DEMO_PASSWORD: &str = "demo-password";
/// Where the simulator listens when the port is free.
pub const SIM_ADDR: &str = "127.0.0.1:8090";
/// Where the vault listens when the port is free.
pub const VAULT_PORT: u16 = 8081;
/// Where the writer's HTTP API listens when the port is free.
pub const WRITER_LISTEN: &str = "127.0.0.1:8082";
/// Where the webhook receiver listens when the port is free (PostgreSQL only).
pub const RECEIVER_PORT: u16 = 8083;
/// Where `/metrics` (and `/healthz`) listen when the port is free.
pub const ADMIN_LISTEN: &str = "127.0.0.1:9000";

/// The institution `up` names unless `--config` or `IDBRIDGE__INSTITUTION__NAME` does
/// (a ROR id the simulator knows).
const DEMO_INSTITUTION: [(&str, &str); 5] = [
    ("institution.name", "Boston University"),
    ("institution.city", "Boston"),
    ("institution.region", "Massachusetts"),
    ("institution.country", "US"),
    ("institution.disambiguated_id", "https://ror.org/05qwgg493"),
];

/// The portal's words for the demo institution (the same one the writer names).
const DEMO_PORTAL_TEXT: [(&str, &str); 2] = [
    ("portal.institution.name", "Boston University"),
    (
        "portal.institution.what",
        "Boston University's research information system adds your employment and your \
         publications to your ORCID record, and keeps them up to date.",
    ),
];

/// A demo researcher at the simulator.
#[derive(Clone, Debug)]
pub struct DemoResearcher {
    /// Given names.
    pub given: &'static str,
    /// Family name.
    pub family: &'static str,
    /// Their iD.
    pub orcid: orcid::OrcidId,
    /// Sign-in e-mail at the simulator.
    pub email: String,
}

const DEMO_PEOPLE: [(&str, &str); 3] = [
    ("Josiah", "Carberry"),
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
];

/// Which ORCID `up` talks to.
enum Orcid {
    /// The simulator, started here.
    Sim(SimHandle),
    /// Real ORCID (`registry`, `client_id`, `client_secret`).
    Real {
        registry: String,
        client_id: String,
        client_secret: SecretString,
    },
}

impl Orcid {
    fn registry(&self) -> &str {
        match self {
            Self::Sim(sim) => sim.base_url(),
            Self::Real { registry, .. } => registry,
        }
    }
    fn client_id(&self) -> &str {
        match self {
            Self::Sim(_) => DEMO_CLIENT_ID,
            Self::Real { client_id, .. } => client_id,
        }
    }
    fn client_secret(&self) -> &str {
        match self {
            Self::Sim(_) => DEMO_CLIENT_SECRET,
            Self::Real { client_secret, .. } => client_secret.expose_secret(),
        }
    }
}

/// Everything running under `up`.
pub struct Stack {
    /// The shared bus.
    pub bus: Bus,
    /// Cancelling it stops everything.
    pub shutdown: CancellationToken,
    /// The simulator, when `up` runs it.
    pub sim: Option<SimHandle>,
    /// The vault's API.
    pub vault_url: String,
    /// The hand-off public key (what the portal seals to) and its id.
    pub handoff: (idbridge_crypto::VaultPublicKey, &'static str),
    /// The writer's ledger.
    pub ledger: writer::ledger::Ledger,
    /// The data directory (absolute).
    pub data_dir: PathBuf,
    /// The writer's HTTP API, when enabled.
    pub writer_api: Option<String>,
    /// The file holding the writer API's caller token of this start.
    pub writer_api_token_file: PathBuf,
    /// The demo researchers (simulator only).
    pub researchers: Vec<DemoResearcher>,
    /// The portal.
    pub portal_url: String,
    /// The portal's ORCID callback (the demo client's redirect URI at the simulator).
    pub redirect_uri: String,
    /// The webhook receiver's callback endpoint, when it runs (PostgreSQL only).
    pub webhooks: Option<String>,
    /// The admin server's `/metrics`, when it could bind.
    pub metrics_url: Option<String>,
    admin: Option<crate::admin::AdminServer>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("vault_url", &self.vault_url)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Stops everything and waits; returns the failures.
    pub async fn stop(self) -> Vec<String> {
        self.shutdown.cancel();
        let mut failures = Vec::new();
        for (service, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{service}: {e}")),
                Err(e) => failures.push(format!("{service}: {e}")),
            }
        }
        self.bus.close().await;
        if let Some(sim) = self.sim {
            sim.stop().await;
        }
        if let Some(admin) = self.admin {
            admin.stop().await;
        }
        failures
    }
}

fn config_error(what: &'static str) -> impl FnOnce(ConfigError) -> Error {
    move |source| Error::Config { what, source }
}

fn sqlite_url(data_dir: &Path, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join(name).display())
}

async fn spawn_sim(redirect_uri: &str) -> Result<SimHandle, Error> {
    let config = |listen: SocketAddr| {
        SimConfig {
            listen,
            workers: 1,
            // ORCID delivers webhooks about every five minutes; the demo should not wait.
            webhook_interval: std::time::Duration::from_secs(1),
            ..SimConfig::default()
        }
        .with_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, redirect_uri)
    };
    let fixed: SocketAddr = SIM_ADDR
        .parse()
        .map_err(|_| Error::Demo("bad simulator address".to_owned()))?;
    match orcid_sim::spawn(config(fixed)).await {
        Ok(sim) => Ok(sim),
        Err(_) => orcid_sim::spawn(config(SocketAddr::from(([127, 0, 0, 1], 0))))
            .await
            .map_err(Error::Simulator),
    }
}

async fn create_researchers(sim: &SimHandle) -> Result<Vec<DemoResearcher>, Error> {
    let http = reqwest::Client::new();
    let mut researchers = Vec::new();
    for (given, family) in DEMO_PEOPLE {
        let email = format!(
            "{}.{}@demo.invalid",
            given.to_lowercase(),
            family.to_lowercase()
        );
        let res = http
            .post(format!("{}/_sim/users", sim.base_url()))
            .json(&json!({"given-names": given, "family-name": family, "email": email, "password": DEMO_PASSWORD}))
            .send()
            .await
            .map_err(|e| Error::Demo(format!("creating a demo researcher: {e}")))?;
        if !res.status().is_success() {
            return Err(Error::Demo(format!(
                "the simulator refused a demo researcher: {}",
                res.status()
            )));
        }
        let body: serde_json::Value = res
            .json()
            .await
            .map_err(|e| Error::Demo(format!("creating a demo researcher: {e}")))?;
        let orcid = body["orcid"]
            .as_str()
            .and_then(|s| orcid::OrcidId::parse(s).ok())
            .ok_or_else(|| Error::Demo("the simulator returned no iD".to_owned()))?;
        researchers.push(DemoResearcher {
            given,
            family,
            orcid,
            email,
        });
    }
    Ok(researchers)
}

/// On the in-process bus nothing else listens to what the services announce: log it (so
/// the operator sees items land) instead of letting the outbox relays hold it back.
async fn listen_to_events(bus: &Bus, shutdown: &CancellationToken) -> Result<(), Error> {
    let spec = ServiceSpec::new("up-events")
        .bind(exchanges::EVENTS, "item.written")
        .bind(exchanges::EVENTS, "item.failed")
        .bind(exchanges::EVENTS, "connection.lost")
        .bind(exchanges::EVENTS, "record.updated");
    bus.declare(
        &Topology::new()
            .exchange(exchanges::EVENTS)
            .service(spec.clone()),
    )
    .await?;
    // The consumer stops with the shutdown token; its handle is not needed.
    let _consumer = bus
        .consume(
            &spec,
            ConsumerOptions::default().shutdown(shutdown.clone()),
            handler_fn(|delivery: Delivery| async move {
                tracing::info!(
                    event = %delivery.routing_key,
                    person_id = delivery.partition_key.as_deref().unwrap_or("-"),
                    payload = %delivery.envelope.payload,
                    "event"
                );
                Outcome::Ack
            }),
        )
        .await?;
    Ok(())
}

fn watch(
    service: &'static str,
    shutdown: CancellationToken,
    run: impl Future<Output = Result<(), String>> + Send + 'static,
) -> JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        let result = run.await;
        if !shutdown.is_cancelled() {
            tracing::error!(service, "stopped on its own; stopping the others");
            shutdown.cancel();
        }
        result
    })
}

/// Common sources of every service under `up`: its defaults, `--config`, the environment,
/// then what `up` decides.
fn sources(
    defaults: &'static str,
    file: Option<&Path>,
    database_url: &str,
    prefix: &str,
    orcid: &Orcid,
) -> Result<Sources, ConfigError> {
    let mut sources = Sources::new(defaults).file_opt(file).process_env();
    if database_url.starts_with("sqlite:") {
        // One connection per SQLite file: concurrent writers in WAL mode fail with
        // SQLITE_BUSY_SNAPSHOT ("database is locked") instead of waiting.
        sources = sources.set("database.max_connections", 1)?;
    }
    sources
        .set("database.url", database_url)?
        .set("bus.prefix", prefix)?
        .set("orcid.registry", orcid.registry())?
        .set("orcid.client_id", orcid.client_id())?
        .set("orcid.client_secret", orcid.client_secret())
}

fn port_of(listener: &std::net::TcpListener) -> Result<u16, Error> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| Error::Listen {
            address: "127.0.0.1".to_owned(),
            source,
        })
}

/// A listener on `127.0.0.1:preferred`, or on any free port when that one is taken.
fn bind_loopback(preferred: u16) -> Result<std::net::TcpListener, Error> {
    std::net::TcpListener::bind(("127.0.0.1", preferred))
        .or_else(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .map_err(|source| Error::Listen {
            address: format!("127.0.0.1:{preferred} or any free port"),
            source,
        })
}

/// Starts the webhook receiver on a loopback listener (its public URL), with a callback key
/// kept in `data/keys/webhook-callback-key`.
#[allow(clippy::too_many_arguments)]
async fn start_receiver(
    file: Option<&Path>,
    database_url: &str,
    prefix: &str,
    orcid: &Orcid,
    vault_url: &str,
    caller_token: &SecretString,
    data_dir: &Path,
    bus: &Bus,
    shutdown: &CancellationToken,
) -> Result<(String, JoinHandle<Result<(), String>>), Error> {
    let listener = bind_loopback(RECEIVER_PORT)?;
    let port = port_of(&listener)?;
    let public_url = format!("http://127.0.0.1:{port}");
    let callback_key = devkeys::callback_key(data_dir)?;
    let config = webhook_receiver::config::ReceiverConfig::from_sources(
        &sources(
            webhook_receiver::config::DEFAULTS,
            file,
            database_url,
            prefix,
            orcid,
        )
        .and_then(|s| s.set("webhooks.public_url", public_url.as_str()))
        .and_then(|s| s.set("webhooks.callback_key", callback_key.expose_secret()))
        .and_then(|s| s.set("webhooks.debounce_ms", 1000))
        .and_then(|s| s.set("webhooks.vault.url", vault_url))
        .and_then(|s| s.set("webhooks.vault.caller_token", caller_token.expose_secret()))
        .map_err(config_error("webhook-receiver"))?,
    )
    .map_err(config_error("webhook-receiver"))?;
    let app = webhook_receiver::Application::build_with(
        config,
        webhook_receiver::Dependencies {
            bus: Some(bus.clone()),
            shutdown: Some(shutdown.clone()),
            listener: Some(listener),
            ..webhook_receiver::Dependencies::default()
        },
    )
    .await
    .map_err(|e| Error::Service {
        service: "webhook-receiver",
        message: chain(&e),
    })?;
    let task = watch("webhook-receiver", shutdown.clone(), async move {
        app.run_until_stopped().await;
        Ok(())
    });
    Ok((public_url, task))
}

/// Starts the stack (see the module docs).
///
/// # Errors
/// A configuration, a key file, the simulator or a service failed to start.
pub async fn start(args: &UpArgs, config: &IdbridgeConfig) -> Result<Stack, Error> {
    let file = args.config.config.as_deref();
    let data_dir: PathBuf = args.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| Error::WriteFile {
        path: data_dir.clone(),
        source,
    })?;
    let data_dir = std::fs::canonicalize(&data_dir).map_err(|source| Error::ReadFile {
        path: data_dir.clone(),
        source,
    })?;
    let keys: DevKeys = devkeys::load_or_create(&data_dir)?;
    let shutdown = CancellationToken::new();
    let prefix = config.bus.prefix.trim().to_owned();

    // The portal's port is chosen first: the demo client's redirect URI names it. The port
    // stays bound until the portal binds it, so a second `up` cannot pick it meanwhile.
    let portal_listener = bind_loopback(PORTAL_PORT)?;
    let portal_port = port_of(&portal_listener)?;
    let redirect_uri = format!("http://127.0.0.1:{portal_port}/orcid/callback");
    let postgres = args
        .database_url
        .as_deref()
        .is_some_and(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"));

    let bus = match &args.amqp_url {
        Some(url) => Bus::amqp(AmqpConfig::new(url), &prefix).await?,
        None => Bus::in_memory(&prefix)?,
    };
    if args.amqp_url.is_none() {
        listen_to_events(&bus, &shutdown).await?;
    }
    let orcid = match (&args.orcid_client_id, &args.orcid_client_secret) {
        (Some(id), Some(secret)) => Orcid::Real {
            registry: args.orcid_registry.clone(),
            client_id: id.clone(),
            client_secret: SecretString::from(secret.clone()),
        },
        _ => Orcid::Sim(spawn_sim(&redirect_uri).await?),
    };
    let researchers = match &orcid {
        Orcid::Sim(sim) => create_researchers(sim).await?,
        Orcid::Real { .. } => Vec::new(),
    };
    let db_url = |name: &str| {
        args.database_url
            .clone()
            .unwrap_or_else(|| sqlite_url(&data_dir, name))
    };

    // The token vault, with a caller per service (new tokens at every start).
    let writer_token = devkeys::caller_token()?;
    let reader_token = devkeys::caller_token()?;
    let receiver_token = devkeys::caller_token()?;
    let portal_vault_token = devkeys::caller_token()?;
    let vault_sources = sources(
        token_vault::config::DEFAULTS,
        file,
        &db_url("token-vault.sqlite"),
        &prefix,
        &orcid,
    )
    .and_then(|s| s.set("vault.host", "127.0.0.1"))
    .and_then(|s| {
        s.set(
            "vault.keys",
            format!("{KEK_ID}:{}", keys.kek.expose_secret()),
        )
    })
    .and_then(|s| s.set("vault.active_key", KEK_ID))
    .and_then(|s| {
        s.set(
            "vault.handoff_keys",
            format!("{HANDOFF_ID}:{}", keys.handoff_private.expose_secret()),
        )
    })
    .and_then(|s| s.set("vault.handoff_active_key", HANDOFF_ID))
    .and_then(|s| {
        s.set(
            "vault.callers.writer.token_sha256",
            token_vault::token_sha256_hex(writer_token.expose_secret()),
        )
    })
    .and_then(|s| {
        s.set(
            "vault.callers.writer.rights",
            vec!["token:read", "connections:list", "connections:revoke"],
        )
    })
    .and_then(|s| {
        s.set(
            "vault.callers.reader.token_sha256",
            token_vault::token_sha256_hex(reader_token.expose_secret()),
        )
    })
    .and_then(|s| {
        s.set(
            "vault.callers.reader.rights",
            vec!["token:read", "connections:list", "connections:revoke"],
        )
    })
    .and_then(|s| {
        s.set(
            "vault.callers.portal.token_sha256",
            token_vault::token_sha256_hex(portal_vault_token.expose_secret()),
        )
    })
    .and_then(|s| {
        s.set(
            "vault.callers.portal.rights",
            vec!["connections:list", "connections:disconnect"],
        )
    })
    .map_err(config_error("token-vault"))?;
    let vault_sources = if postgres {
        vault_sources
            .set(
                "vault.callers.webhook-receiver.token_sha256",
                token_vault::token_sha256_hex(receiver_token.expose_secret()),
            )
            .and_then(|s| {
                s.set(
                    "vault.callers.webhook-receiver.rights",
                    vec!["client-token:read"],
                )
            })
            .map_err(config_error("token-vault"))?
    } else {
        vault_sources
    };
    let vault_deps = || token_vault::Dependencies {
        bus: Some(bus.clone()),
        database: None,
        shutdown: Some(shutdown.clone()),
    };
    let vault_config = token_vault::config::VaultConfig::from_sources(
        &vault_sources
            .clone()
            .set("vault.port", VAULT_PORT)
            .map_err(config_error("token-vault"))?,
    )
    .map_err(config_error("token-vault"))?;
    let vault = match token_vault::Application::build_with(vault_config, vault_deps()).await {
        Ok(vault) => vault,
        Err(token_vault::StartupError::Bind { .. }) => {
            let config = token_vault::config::VaultConfig::from_sources(
                &vault_sources
                    .set("vault.port", 0)
                    .map_err(config_error("token-vault"))?,
            )
            .map_err(config_error("token-vault"))?;
            token_vault::Application::build_with(config, vault_deps())
                .await
                .map_err(|e| Error::Service {
                    service: "token-vault",
                    message: chain(&e),
                })?
        }
        Err(e) => {
            return Err(Error::Service {
                service: "token-vault",
                message: chain(&e),
            });
        }
    };
    let vault_url = format!("http://127.0.0.1:{}", vault.port());
    let mut tasks = vec![(
        "token-vault",
        watch("token-vault", shutdown.clone(), async move {
            vault.run_until_stopped().await.map_err(|e| chain(&e))
        }),
    )];

    // The writer.
    let user_institution =
        file.is_some() || std::env::var_os("IDBRIDGE__INSTITUTION__NAME").is_some();
    let mut writer_sources = sources(
        writer::config::DEFAULTS,
        file,
        &db_url("writer.sqlite"),
        &prefix,
        &orcid,
    )
    .and_then(|s| s.set("writer.vault.url", vault_url.as_str()))
    .and_then(|s| s.set("writer.vault.caller_token", writer_token.expose_secret()))
    .map_err(config_error("writer"))?;
    if !user_institution {
        for (key, value) in DEMO_INSTITUTION {
            writer_sources = writer_sources
                .set(key, value)
                .map_err(config_error("writer"))?;
        }
    }
    // The writer's HTTP API gets one caller per start, whose token is written (0600) to a
    // file in the data directory for the operator to use with curl.
    let api_token = devkeys::caller_token()?;
    let portal_writer_token = devkeys::caller_token()?;
    let api_token_file = data_dir.join("keys").join("writer-api-token");
    devkeys::replace_secret_file(&api_token_file, &api_token)?;
    let writer_sources = writer_sources
        .set(
            "writer.http.callers",
            vec![
                json!({
                    "name": "operator",
                    "token_sha256": token_vault::token_sha256_hex(api_token.expose_secret()),
                    "rights": ["hr-events:write", "items:read"],
                }),
                json!({
                    "name": "portal",
                    "token_sha256": token_vault::token_sha256_hex(portal_writer_token.expose_secret()),
                    "rights": ["items:read", "invitations:read", "invitations:manage"],
                }),
            ],
        )
        .map_err(config_error("writer"))?;
    let writer_deps = || writer::Dependencies {
        bus: Some(bus.clone()),
        shutdown: Some(shutdown.clone()),
        ..writer::Dependencies::default()
    };
    let writer_config = |listen: &str| {
        writer::config::WriterConfig::from_sources(
            &writer_sources
                .clone()
                .set("writer.http.listen", listen)
                .map_err(config_error("writer"))?,
        )
        .map_err(config_error("writer"))
    };
    let writer_error = |e: writer::StartupError| Error::Service {
        service: "writer",
        message: chain(&e),
    };
    let writer_app =
        match writer::Application::build_with(writer_config(WRITER_LISTEN)?, writer_deps()).await {
            Ok(app) => app,
            Err(writer::StartupError::Bind { .. }) => {
                writer::Application::build_with(writer_config("127.0.0.1:0")?, writer_deps())
                    .await
                    .map_err(writer_error)?
            }
            Err(e) => return Err(writer_error(e)),
        };
    let writer_api = writer_app
        .http_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let ledger = writer_app.writer().ledger();
    tasks.push((
        "writer",
        watch("writer", shutdown.clone(), async move {
            writer_app.run_until_stopped().await;
            Ok(())
        }),
    ));

    // The reader.
    let reader_config = reader::config::ReaderConfig::from_sources(
        &sources(
            reader::config::DEFAULTS,
            file,
            &db_url("reader.sqlite"),
            &prefix,
            &orcid,
        )
        .and_then(|s| s.set("reader.vault.url", vault_url.as_str()))
        .and_then(|s| s.set("reader.vault.caller_token", reader_token.expose_secret()))
        .map_err(config_error("reader"))?,
    )
    .map_err(config_error("reader"))?;
    let reader_app = reader::Application::build_with(
        reader_config,
        reader::Dependencies {
            bus: Some(bus.clone()),
            shutdown: Some(shutdown.clone()),
            ..reader::Dependencies::default()
        },
    )
    .await
    .map_err(|e| Error::Service {
        service: "reader",
        message: chain(&e),
    })?;
    tasks.push((
        "reader",
        watch("reader", shutdown.clone(), async move {
            reader_app.run_until_stopped().await;
            Ok(())
        }),
    ));

    // The webhook receiver: PostgreSQL only.
    let webhooks = if postgres {
        let (url, task) = start_receiver(
            file,
            &db_url("webhook-receiver.sqlite"),
            &prefix,
            &orcid,
            &vault_url,
            &receiver_token,
            &data_dir,
            &bus,
            &shutdown,
        )
        .await?;
        tasks.push(("webhook-receiver", task));
        Some(url)
    } else {
        None
    };

    // The portal, on the port chosen first (the demo client's redirect URI names it).
    let portal_url = format!("http://127.0.0.1:{portal_port}");
    let mut portal_sources = sources(
        portal::config::DEFAULTS,
        file,
        &db_url("portal.sqlite"),
        &prefix,
        &orcid,
    )
    .and_then(|s| s.set("portal.host", "127.0.0.1"))
    .and_then(|s| s.set("portal.port", portal_port))
    .and_then(|s| s.set("portal.public_url", portal_url.as_str()))
    .and_then(|s| s.set("portal.vault.url", vault_url.as_str()))
    .and_then(|s| {
        s.set(
            "portal.vault.caller_token",
            portal_vault_token.expose_secret(),
        )
    })
    .and_then(|s| {
        s.set(
            "portal.vault.handoff_key",
            format!("{HANDOFF_ID}:{}", keys.handoff_public),
        )
    })
    .map_err(config_error("portal"))?;
    if let Some(url) = &writer_api {
        portal_sources = portal_sources
            .set("portal.writer.url", url.as_str())
            .and_then(|s| {
                s.set(
                    "portal.writer.caller_token",
                    portal_writer_token.expose_secret(),
                )
            })
            .map_err(config_error("portal"))?;
    }
    if !user_institution {
        for (key, value) in DEMO_PORTAL_TEXT {
            portal_sources = portal_sources
                .set(key, value)
                .map_err(config_error("portal"))?;
        }
    }
    let portal_config = portal::config::PortalConfig::from_sources(&portal_sources)
        .map_err(config_error("portal"))?;
    drop(portal_listener);
    let portal_app = portal::Application::build_with(
        portal_config,
        portal::Dependencies {
            bus: Some(bus.clone()),
            shutdown: Some(shutdown.clone()),
            ..portal::Dependencies::default()
        },
    )
    .await
    .map_err(|e| Error::Service {
        service: "portal",
        message: chain(&e),
    })?;
    tasks.push((
        "portal",
        watch("portal", shutdown.clone(), async move {
            portal_app.run_until_stopped().await.map_err(|e| chain(&e))
        }),
    ));

    // `/metrics` of everything in this process (no collectors: those are `serve`'s).
    for (service, _) in &tasks {
        idbridge_platform::metrics::build_info(env!("CARGO_PKG_VERSION"), service);
    }
    let admin_state = crate::admin::AdminState::new(Vec::new());
    let admin = crate::admin::AdminServer::start(ADMIN_LISTEN, admin_state.clone())
        .or_else(|_| crate::admin::AdminServer::start("127.0.0.1:0", admin_state))
        .inspect_err(|e| tracing::warn!(error = %e, "no /metrics"))
        .ok();
    let metrics_url = admin
        .as_ref()
        .map(|a| format!("http://127.0.0.1:{}/metrics", a.port));

    Ok(Stack {
        portal_url,
        metrics_url,
        admin,
        bus,
        shutdown,
        sim: match orcid {
            Orcid::Sim(sim) => Some(sim),
            Orcid::Real { .. } => None,
        },
        vault_url,
        handoff: (keys.handoff_public, HANDOFF_ID),
        ledger,
        data_dir,
        writer_api,
        writer_api_token_file: api_token_file,
        researchers,
        redirect_uri,
        webhooks,
        tasks,
    })
}

fn print_banner(stack: &Stack, out: &mut impl Write) {
    let _ = writeln!(out, "idbridge is up");
    let _ = writeln!(
        out,
        "  portal            {}   (sign in as a demo researcher, press Connect)",
        stack.portal_url
    );
    match &stack.sim {
        Some(sim) => {
            let _ = writeln!(
                out,
                "  ORCID simulator   {}   (demo client {DEMO_CLIENT_ID}, redirect {})",
                sim.base_url(),
                stack.redirect_uri
            );
        }
        None => {
            let _ = writeln!(out, "  ORCID             the real registry");
        }
    }
    let _ = writeln!(out, "  token vault API   {}", stack.vault_url);
    match &stack.writer_api {
        Some(url) => {
            let _ = writeln!(
                out,
                "  writer API        {url}   (caller token in {})",
                stack.writer_api_token_file.display()
            );
        }
        None => {
            let _ = writeln!(out, "  writer            consuming HR and work events");
        }
    }
    let _ = writeln!(
        out,
        "  reader            reading connected records (\"record updated\")"
    );
    match &stack.webhooks {
        Some(url) => {
            let _ = writeln!(out, "  webhooks          on: the receiver at {url}");
        }
        None => {
            let _ = writeln!(
                out,
                "  webhooks          off (the receiver needs PostgreSQL: --database-url); the reader's daily sweep reads records"
            );
        }
    }
    if let Some(url) = &stack.metrics_url {
        let _ = writeln!(out, "  metrics           {url}   (Prometheus text)");
    }
    let _ = writeln!(out, "  data              {}", stack.data_dir.display());
    if let Some(sim) = &stack.sim {
        let _ = writeln!(
            out,
            "demo researchers at the simulator (password {DEMO_PASSWORD}):"
        );
        for r in &stack.researchers {
            let _ = writeln!(
                out,
                "  {:<16} {}  {}",
                format!("{} {}", r.given, r.family),
                r.orcid,
                r.email
            );
        }
        let _ = writeln!(out, "try:");
        if let Some(r) = stack.researchers.first() {
            let _ = writeln!(
                out,
                "  curl {}/_sim/records/{}          # a demo researcher's record",
                sim.base_url(),
                r.orcid
            );
        }
        if let Some(url) = &stack.writer_api {
            let _ = writeln!(
                out,
                "  curl -H \"Authorization: Bearer $(cat {})\" {url}/api/v1/items   # the writer's ledger",
                stack.writer_api_token_file.display()
            );
        }
        let _ = writeln!(
            out,
            "  idbridge up --demo                 # the scripted tour: connect, hire, leave, a work, read back"
        );
    }
    if stack.sim.is_none() || !stack.researchers.is_empty() {
        let _ = writeln!(out, "Ctrl-C stops everything.");
    }
    let _ = out.flush();
}

/// `idbridge up [--demo]`. Returns the exit code.
///
/// # Errors
/// The start failed.
pub async fn up(args: &UpArgs, out: &mut impl Write) -> Result<u8, Error> {
    let config =
        IdbridgeConfig::load(args.config.config.as_deref()).map_err(|source| Error::Config {
            what: "idbridge",
            source,
        })?;
    let _telemetry = idbridge_platform::telemetry::init_with_writer(
        &idbridge_platform::telemetry::TelemetryConfig {
            format: idbridge_platform::telemetry::LogFormat::Compact,
            ..crate::serve::quiet_lapin(&config.telemetry)
        },
        std::io::stderr,
    )?;
    if let Err(e) = idbridge_platform::metrics::install() {
        tracing::warn!(error = %e, "no Prometheus recorder");
    }
    // `up` is the laptop stack: its log lines go to stderr and no span is exported (that
    // is `idbridge serve`'s job). Say so instead of ignoring the setting silently.
    if idbridge_platform::telemetry::otlp_traces_url(&config.telemetry).is_some() {
        tracing::warn!(
            "an OTLP endpoint is configured, but `idbridge up` exports no spans (use `idbridge serve`)"
        );
    }
    let stack = start(args, &config).await?;
    print_banner(&stack, out);
    let code = if args.demo {
        if stack.sim.is_none() {
            let _ = writeln!(
                out,
                "--demo needs the simulator (leave out the ORCID credentials)"
            );
            exit::FAILED
        } else {
            match crate::demo::run(&stack, out).await {
                Ok(()) => exit::OK,
                Err(e) => {
                    let _ = writeln!(out, "the demo failed: {}", chain(&e));
                    exit::FAILED
                }
            }
        }
    } else {
        let requested = crate::serve::cancel_on_signal(stack.shutdown.clone())?;
        stack.shutdown.cancelled().await;
        if requested.load(Ordering::SeqCst) {
            exit::OK
        } else {
            exit::FAILED
        }
    };
    let failures = stack.stop().await;
    for f in &failures {
        let _ = writeln!(out, "stopped with an error: {f}");
    }
    let _ = writeln!(out, "idbridge stopped");
    Ok(if failures.is_empty() {
        code
    } else {
        exit::FAILED
    })
}
