//! Running the built binary, temporary directories, per-test databases and bus prefixes,
//! a probe queue on the HR exchange.

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
