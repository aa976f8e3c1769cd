//! Running the built binary, temporary directories, per-test databases and bus prefixes,
//! a probe queue on the HR exchange, the configuration file of `idbridge serve`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bus::events::exchanges;
use bus::{
    AmqpConfig, Bus, ConsumerHandle, ConsumerOptions, Delivery, Outcome, ServiceSpec, Topology,
    handler_fn,
};
use sea_orm::{ConnectionTrait, Database};
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

/// Generous: the suite shares two cores.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_idbridge")
}

/// A command for the binary with no `IDBRIDGE__…` variables inherited.
pub fn idbridge(args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.to_uppercase().starts_with("IDBRIDGE__") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info");
    command
}

/// `idbridge serve <services…> --config <file>`.
pub fn serve_command(services: &[&str], file: &Path) -> Command {
    let mut args = vec!["serve"];
    args.extend_from_slice(services);
    args.extend(["--config", file.to_str().expect("utf-8")]);
    idbridge(&args)
}

/// Output of a finished run.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs to completion, failing the test after `deadline`.
pub fn run(mut command: Command, deadline: Duration) -> Run {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the idbridge binary starts");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(deadline) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(id.to_string())
                .status();
            panic!("idbridge did not finish within {deadline:?}");
        }
    };
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running process whose stdout lines arrive on a channel.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the idbridge binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line containing `needle`, waiting up to [`DEADLINE`].
    pub fn wait_line(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line with {needle:?} within {DEADLINE:?}; stdout so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// The admin server's URL from `serve`'s first line (`idbridge admin listening on
    /// http://…`). Blocks the thread: call it on a multi-threaded runtime.
    pub fn admin_url(&mut self) -> String {
        let line = tokio::task::block_in_place(|| self.wait_line("idbridge admin listening on "));
        line.split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("the admin URL")
            .to_owned()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits for the exit, killing the process after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                panic!("idbridge did not exit within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("idbridge-it-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A researcher Josiah Carberry registered at the orcid-sim at `sim_url` with `email`;
/// their iD.
pub async fn sim_researcher(sim_url: &str, email: &str) -> String {
    let user: serde_json::Value = reqwest::Client::new()
        .post(format!("{sim_url}/_sim/users"))
        .json(
            &serde_json::json!({"given-names": "Josiah", "family-name": "Carberry",
            "email": email, "password": "pw-pw-pw-pw"}),
        )
        .send()
        .await
        .expect("create a researcher")
        .json()
        .await
        .expect("JSON");
    user["orcid"].as_str().expect("an iD").to_owned()
}

/// A port that was free on 127.0.0.1 when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// What the vault lets the writer and the reader do.
const TOKEN_READER_RIGHTS: &str = r#"["token:read", "connections:list", "connections:revoke"]"#;

/// The `idbridge.toml` of `idbridge serve`: the sections every test shares (admin, database,
/// bus, ORCID, telemetry, the vault on a free port with fresh keys, the institution) and
/// those of the services a test adds, each with its vault caller.
pub struct ServeConfig {
    db_url: String,
    prefix: String,
    sim_url: String,
    client_id: String,
    client_secret: String,
    vault_port: u16,
    kek: SecretString,
    handoff: SecretString,
    callback_key: SecretString,
    sample_seconds: Option<u64>,
    /// `[vault.callers.<name>]`: name, caller token, rights.
    callers: Vec<(&'static str, String, &'static str)>,
    /// The services' sections, then the test's own tables, as written.
    sections: Vec<String>,
}

impl ServeConfig {
    pub fn new(
        db_url: &str,
        prefix: &str,
        sim_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        let (handoff, _) = token_vault::handoff::generate_handoff_key().expect("hand-off key");
        Self {
            db_url: db_url.to_owned(),
            prefix: prefix.to_owned(),
            sim_url: sim_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            vault_port: free_port(),
            kek: idbridge_crypto::KeyRing::generate_key().expect("key"),
            handoff,
            callback_key: idbridge_crypto::KeyRing::generate_key().expect("key"),
            sample_seconds: None,
            callers: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// `admin.sample_seconds`.
    pub fn sample_seconds(mut self, seconds: u64) -> Self {
        self.sample_seconds = Some(seconds);
        self
    }

    /// The vault's hand-off key (private part) instead of a fresh one.
    pub fn handoff(mut self, key: &SecretString) -> Self {
        self.handoff = key.clone();
        self
    }

    /// The writer, its HTTP API on `listen`, calling the vault with `caller_token`.
    pub fn writer(self, caller_token: &str, listen: &str) -> Self {
        let tables = format!("[writer]\npartitions = 2\n\n[writer.http]\nlisten = \"{listen}\"\n");
        self.service(
            "writer",
            TOKEN_READER_RIGHTS,
            caller_token,
            "writer",
            tables,
        )
    }

    /// The reader, calling the vault with `caller_token`.
    pub fn reader(self, caller_token: &str) -> Self {
        let tables = "[reader]\npartitions = 2\n".to_owned();
        self.service(
            "reader",
            TOKEN_READER_RIGHTS,
            caller_token,
            "reader",
            tables,
        )
    }

    /// The webhook receiver, at `public_url` for ORCID and listening on `listen`, calling
    /// the vault with `caller_token`.
    pub fn webhook_receiver(self, caller_token: &str, public_url: &str, listen: &str) -> Self {
        let tables = format!(
            r#"[webhooks]
public_url = "{public_url}"
callback_key = "{callback_key}"
partitions = 2

[webhooks.http]
listen = "{listen}"
"#,
            callback_key = self.callback_key(),
        );
        let rights = r#"["client-token:read"]"#;
        self.service("webhook-receiver", rights, caller_token, "webhooks", tables)
    }

    /// A service: its `tables`, then `[<section>.vault]` for calling the vault with
    /// `caller_token`, which the vault knows as `caller` with `rights`.
    fn service(
        mut self,
        caller: &'static str,
        rights: &'static str,
        caller_token: &str,
        section: &str,
        tables: String,
    ) -> Self {
        let vault = format!(
            "[{section}.vault]\nurl = \"http://127.0.0.1:{}\"\ncaller_token = \"{caller_token}\"\n",
            self.vault_port
        );
        self.callers.push((caller, caller_token.to_owned(), rights));
        self.sections.push(format!("{tables}\n{vault}"));
        self
    }

    /// Tables of the test's own (TOML, as written), after the others.
    pub fn table(mut self, toml: &str) -> Self {
        self.sections.push(toml.to_owned());
        self
    }

    /// The vault's key (`vault.keys`), to look for where it must not be.
    pub fn kek(&self) -> &str {
        self.kek.expose_secret()
    }

    /// The vault's hand-off key (`vault.handoff_keys`).
    pub fn handoff_key(&self) -> &str {
        self.handoff.expose_secret()
    }

    /// The receiver's callback key (`webhooks.callback_key`).
    pub fn callback_key(&self) -> &str {
        self.callback_key.expose_secret()
    }

    pub fn text(&self) -> String {
        let sample = self
            .sample_seconds
            .map(|s| format!("sample_seconds = {s}\n"))
            .unwrap_or_default();
        let mut text = format!(
            r#"
[admin]
listen = "127.0.0.1:0"
{sample}
[database]
url = "{db_url}"

[bus]
amqp_url = "{amqp}"
prefix = "{prefix}"

[orcid]
registry = "{sim_url}"
client_id = "{client_id}"
client_secret = "{client_secret}"

[telemetry]
format = "compact"

[vault]
port = {vault_port}
keys = "k1:{kek}"
active_key = "k1"
handoff_keys = "hk1:{handoff}"
"#,
            db_url = self.db_url,
            amqp = amqp_url(),
            prefix = self.prefix,
            sim_url = self.sim_url,
            client_id = self.client_id,
            client_secret = self.client_secret,
            vault_port = self.vault_port,
            kek = self.kek(),
            handoff = self.handoff_key(),
        );
        for (name, token, rights) in &self.callers {
            text.push_str(&format!(
                "\n[vault.callers.{name}]\ntoken_sha256 = \"{}\"\nrights = {rights}\n",
                token_vault::token_sha256_hex(token)
            ));
        }
        for section in &self.sections {
            text.push('\n');
            text.push_str(section);
        }
        text.push_str(
            r#"
[institution]
name = "Boston University"
city = "Boston"
country = "US"
disambiguated_id = "https://ror.org/05qwgg493"
"#,
        );
        text
    }

    /// Writes `idbridge.toml` into `dir`.
    pub fn write(&self, dir: &TempDir) -> PathBuf {
        dir.write("idbridge.toml", self.text().as_bytes())
    }
}

/// A fresh bus prefix so parallel tests never share a queue.
pub fn prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

pub async fn amqp_bus(prefix: &str) -> Bus {
    Bus::amqp(AmqpConfig::new(&amqp_url()), prefix)
        .await
        .unwrap_or_else(|e| {
            panic!("these tests need RabbitMQ at TEST_AMQP_URL (./scripts/test.sh starts it): {e}")
        })
}

/// A fresh, empty PostgreSQL database; dropped by [`drop_database`].
pub async fn create_database() -> (String, String) {
    let admin_url = database_url();
    let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("these tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL): {e}")
    });
    let name = format!("test_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    let _ = admin.close().await;
    let (base, _) = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .expect("TEST_DATABASE_URL has a database path");
    (format!("{base}/{name}"), name)
}

pub async fn drop_database(name: &str) {
    let admin = Database::connect(&database_url()).await.expect("admin");
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    let _ = admin.close().await;
}

/// A queue of its own bound to `hr.*` on the HR exchange; deliveries arrive on the channel.
pub struct HrProbe {
    pub bus: Bus,
    pub spec: ServiceSpec,
    pub consumer: ConsumerHandle,
    pub deliveries: tokio::sync::mpsc::UnboundedReceiver<Delivery>,
}

impl HrProbe {
    pub async fn new(prefix: &str) -> Self {
        let bus = amqp_bus(prefix).await;
        let spec = ServiceSpec::new("probe").bind(exchanges::HR, "hr.*");
        bus.declare(
            &Topology::new()
                .exchange(exchanges::HR)
                .service(spec.clone()),
        )
        .await
        .expect("declare the probe");
        let (tx, deliveries) = tokio::sync::mpsc::unbounded_channel();
        let consumer = bus
            .consume(
                &spec,
                ConsumerOptions::default(),
                handler_fn(move |d: Delivery| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(d);
                        Outcome::Ack
                    }
                }),
            )
            .await
            .expect("consume");
        Self {
            bus,
            spec,
            consumer,
            deliveries,
        }
    }

    /// The next `n` deliveries, failing after [`DEADLINE`].
    pub async fn take(&mut self, n: usize) -> Vec<Delivery> {
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout(DEADLINE, self.deliveries.recv()).await {
                Ok(Some(d)) => got.push(d),
                _ => panic!(
                    "only {} of {n} messages arrived on the HR exchange",
                    got.len()
                ),
            }
        }
        got
    }

    /// Nothing more arrives within a short while.
    pub async fn assert_no_more(&mut self) {
        if let Ok(Some(d)) =
            tokio::time::timeout(Duration::from_millis(500), self.deliveries.recv()).await
        {
            panic!("unexpected message {}", d.routing_key);
        }
    }

    pub async fn finish(self) {
        self.consumer.stop().await;
        let _ = self
            .bus
            .delete(&Topology::new().exchange(exchanges::HR).service(self.spec))
            .await;
        self.bus.close().await;
    }
}
