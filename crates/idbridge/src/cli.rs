//! The command line (clap). Every subcommand has `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// idbridge: connects a research institution to ORCID.
///
/// `idbridge up` runs everything in one process on embedded defaults; `idbridge serve`
/// runs the named services for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "idbridge", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every service in one process: SQLite under ./data, the in-process bus, orcid-sim on
    /// loopback with a demo client and demo researchers. Runs until Ctrl-C (or, with
    /// --demo, runs a scripted tour and exits). Logs go to stderr; no spans are exported
    /// over OTLP (`idbridge serve` does that).
    Up(UpArgs),
    /// Runs the named services (for Kubernetes) with an admin server: /healthz, /readyz,
    /// /metrics. SIGTERM or SIGINT stops them gracefully.
    Serve(ServeArgs),
    /// Applies the services' database migrations, each on its configured database (every
    /// service, or the named ones). The webhook receiver needs PostgreSQL: on SQLite it is
    /// skipped unless named.
    Migrate(MigrateArgs),
    /// Encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// HR events: import a CSV file, or send event envelopes from a JSON file.
    #[command(subcommand)]
    Hr(HrCommand),
    /// Parked messages (dead letters) of a service: list, replay.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The writer's ledger: items by state and writes per day, or every item as CSV.
    Report(ReportArgs),
    /// ORCID webhooks of the connected iDs (the webhook receiver's registrations).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

/// `idbridge migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only these services (default: every one).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<ServiceName>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `idbridge webhooks …`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Registers every connection's webhook at ORCID again (after changing
    /// webhooks.public_url or webhooks.callback_key, or to repair lost ones). Idempotent.
    /// Prints created, already registered and failed (with reasons); exit 1 when any failed.
    Reregister(ConfigArg),
}

/// `idbridge report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Days of activity to show.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Every item as CSV (person, iD, section, key, put code, state, last error) instead.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `--config FILE`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// A TOML file over the embedded defaults (every service reads its own sections);
    /// IDBRIDGE__SECTION__KEY environment variables override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A service `serve` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServiceName {
    /// The token vault (its internal API and the "iD connected" consumer).
    TokenVault,
    /// The writer (HR and work events become ORCID items).
    Writer,
    /// The reader (reads connected records, publishes "record updated").
    Reader,
    /// The webhook receiver (registers ORCID webhooks, turns callbacks into "record
    /// changed"; PostgreSQL only).
    WebhookReceiver,
    /// The researcher portal (sign in, connect an ORCID iD, see it, disconnect).
    Portal,
}

impl ServiceName {
    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenVault => "token-vault",
            Self::Writer => "writer",
            Self::Reader => "reader",
            Self::WebhookReceiver => "webhook-receiver",
            Self::Portal => "portal",
        }
    }
}

/// `idbridge serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The services to run in this process.
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<ServiceName>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `idbridge up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run the scripted tour: connect three demo researchers, send HR and work events, wait
    /// until they are written, print what landed in ORCID, and exit.
    #[arg(long)]
    pub demo: bool,
    /// Where the SQLite files and the development keys live.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite files (every service's tables in this database).
    #[arg(
        long,
        value_name = "URL",
        env = "IDBRIDGE__DATABASE__URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// RabbitMQ instead of the in-process bus.
    #[arg(
        long,
        value_name = "URL",
        env = "IDBRIDGE__BUS__AMQP_URL",
        hide_env_values = true
    )]
    pub amqp_url: Option<String>,
    /// Real ORCID instead of the simulator: the member client id ...
    #[arg(
        long,
        value_name = "ID",
        env = "IDBRIDGE__ORCID__CLIENT_ID",
        hide_env_values = true,
        requires = "orcid_client_secret"
    )]
    pub orcid_client_id: Option<String>,
    /// ... and its secret.
    #[arg(
        long,
        value_name = "SECRET",
        env = "IDBRIDGE__ORCID__CLIENT_SECRET",
        hide_env_values = true,
        requires = "orcid_client_id"
    )]
    pub orcid_client_secret: Option<String>,
    /// With real ORCID: `sandbox` or `production`.
    #[arg(
        long,
        value_name = "REGISTRY",
        env = "IDBRIDGE__ORCID__REGISTRY",
        hide_env_values = true,
        default_value = "sandbox"
    )]
    pub orcid_registry: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `idbridge keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wraps every stored token under the vault's active key-encryption key (after adding
    /// a new key and making it active). Prints what was done and what remains; retire the old
    /// key only when `remaining` is 0.
    Rotate(ConfigArg),
}

/// `idbridge hr …`.
#[derive(Debug, Subcommand)]
pub enum HrCommand {
    /// Imports a CSV file in the columns of ORCID's affiliation upload plus `person-id`:
    /// prints a report per row and publishes the good rows as HR events.
    Import(HrImportArgs),
    /// Publishes HR events from a JSON file (one envelope or event, or an array of them)
    /// after schema validation.
    Send(HrSendArgs),
}

/// `idbridge hr import`.
#[derive(Debug, Args)]
pub struct HrImportArgs {
    /// The CSV file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only show what would be written; publish nothing (needs no broker).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `idbridge hr send`.
#[derive(Debug, Args)]
pub struct HrSendArgs {
    /// The JSON file.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `idbridge dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Lists a service's parked messages with their reasons (leaves them parked).
    List(DlqListArgs),
    /// Puts parked messages back on the queue they came from, attempts reset.
    Replay(DlqReplayArgs),
}

/// `idbridge dlq list`.
#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// The service (`writer`, `token-vault`, `reader`, `webhook-receiver`).
    #[arg(value_name = "SERVICE")]
    pub service: ServiceName,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}

/// `idbridge dlq replay`.
#[derive(Debug, Args)]
pub struct DlqReplayArgs {
    /// The service (`writer`, `token-vault`, `reader`, `webhook-receiver`).
    #[arg(value_name = "SERVICE")]
    pub service: ServiceName,
    /// Only these message ids (default: every parked message).
    #[arg(long = "id", value_name = "MESSAGE_ID")]
    pub ids: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
}
