//! The outbox relay's lease on PostgreSQL and RabbitMQ: a relay that dies in the middle of a
//! batch (its process frozen, then killed) leaves its rows to another relay within seconds,
//! and a live relay whose publish hangs keeps its rows by renewing the lease.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bus::{
    Bus, ConsumerHandle, ConsumerOptions, Delivery, Outcome, ServiceSpec, Topology, handler_fn,
    outbox::{Outbox, OutboxRelay, RelayConfig},
};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use serde_json::json;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    amqp_bus, amqp_bus_at, amqp_url, message, postgres, prefix, tables, wait_for,
};

/// A TCP proxy to RabbitMQ that can freeze: frozen, it forwards nothing either way, as a
/// stopped (SIGSTOP) process neither sends nor reads.
struct FreezableProxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FreezableProxy {
    async fn start() -> Self {
        let broker = url::Url::parse(&amqp_url()).unwrap();
        let upstream = format!(
            "{}:{}",
            broker.host_str().unwrap(),
            broker.port().unwrap_or(5672)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client, server) = (Arc::new(client), Arc::new(server));
                tokio::spawn(pump(client.clone(), server.clone(), watching.clone()));
                tokio::spawn(pump(server, client, watching.clone()));
            }
        });
        Self { addr, frozen, task }
    }

    /// `TEST_AMQP_URL` through this proxy.
    fn url(&self) -> String {
        let mut url = url::Url::parse(&amqp_url()).unwrap();
        url.set_ip_host(self.addr.ip()).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards bytes from `from` to `to`, holding them while frozen.
async fn pump(from: Arc<TcpStream>, to: Arc<TcpStream>, mut frozen: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() || from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            if frozen.wait_for(|f| !*f).await.is_err() || to.writable().await.is_err() {
                return;
            }
            match to.try_write(chunk) {
                Ok(written) => chunk = &chunk[written..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

type Received = Arc<Mutex<Vec<Delivery>>>;

async fn collect(bus: &Bus, service: &ServiceSpec) -> (ConsumerHandle, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let consumer = bus
        .consume(
            service,
            ConsumerOptions::default(),
            handler_fn(move |d: Delivery| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(d);
                    Outcome::Ack
                }
            }),
        )
        .await
        .unwrap();
    (consumer, received)
}

/// The outbox rows leased and not sent: how many, and their earliest `lease_until`.
async fn leased(db: &DatabaseConnection) -> (i64, Option<DateTime<Utc>>) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n, MIN(lease_until) AS until FROM {} WHERE lease_owner IS NOT NULL AND sent_at IS NULL",
                tables().outbox
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "n").unwrap(),
        row.try_get("", "until").unwrap(),
    )
}

/// Every message id exactly once.
fn assert_once(received: &Received, n: usize) {
    let mut copies: HashMap<String, usize> = HashMap::new();
    for d in received.lock().unwrap().iter() {
        *copies.entry(d.envelope.message_id.to_string()).or_default() += 1;
    }
    assert_eq!(copies.len(), n, "{copies:?}");
    assert!(
        copies.values().all(|c| *c == 1),
        "published twice: {copies:?}"
    );
}

/// A setup of two relays on one outbox: `dying` publishes through a proxy the test freezes,
/// `survivor` straight to the broker.
struct TwoRelays {
    test_db: crate::helpers::TestDb,
    proxy: FreezableProxy,
    frozen_bus: Bus,
    bus: Bus,
    topology: Topology,
    consumer: ConsumerHandle,
    received: Received,
    outbox: Outbox,
}

impl TwoRelays {
    async fn start(rows: usize) -> Self {
        let prefix = prefix();
        let bus = amqp_bus(&prefix).await;
        let proxy = FreezableProxy::start().await;
        let frozen_bus = amqp_bus_at(&proxy.url(), &prefix).await;
        let test_db = postgres().await;
        let listener = ServiceSpec::new("listener").bind("events", "#");
        let topology = Topology::new().service(listener.clone());
        bus.declare(&topology).await.unwrap();
        let (consumer, received) = collect(&bus, &listener).await;
        let outbox = Outbox::new(&tables());
        let txn = test_db.db.begin().await.unwrap();
        for n in 0..rows {
            outbox
                .record(&txn, &message("events", "item.written", json!({"n": n})))
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
        Self {
            test_db,
            proxy,
            frozen_bus,
            bus,
            topology,
            consumer,
            received,
            outbox,
        }
    }

    /// Starts `relay_once` of a relay whose process is frozen while it publishes the batch;
    /// returns once it leased every row (its first publish is then hanging).
    async fn freeze_a_relay_mid_batch(&self, config: RelayConfig, rows: usize) -> JoinHandle<()> {
        self.proxy.freeze(true);
        let dying = OutboxRelay::new(
            self.test_db.db.clone(),
            self.frozen_bus.clone(),
            self.outbox.clone(),
            config,
        );
        let task = tokio::spawn(async move {
            let _ = dying.relay_once().await;
        });
        let db = &self.test_db.db;
        wait_for("the frozen relay to lease the batch", || async {
            (leased(db).await.0 == i64::try_from(rows).unwrap()).then_some(())
        })
        .await;
        task
    }

    async fn stop(self) {
        self.consumer.stop().await;
        self.bus.delete(&self.topology).await.unwrap();
        self.bus.close().await;
        // The frozen bus's connection is left to die with the proxy.
        drop(self.frozen_bus);
        drop(self.proxy);
        self.test_db.drop().await;
    }
}

/// The writer killed while its relay was publishing HR events: with the default lease the
/// rows left leased by the dead relay reach another relay (or the restarted service)
/// within seconds, each once.
#[tokio::test]
async fn rows_leased_by_a_relay_that_died_are_published_by_another_within_the_lease() {
    let defaults = RelayConfig::default();
    assert!(
        defaults.lease <= Duration::from_secs(10),
        "a dead relay's rows wait a whole lease for another relay: {:?} is too long",
        defaults.lease
    );
    let rows = 5;
    let setup = TwoRelays::start(rows).await;
    let db = setup.test_db.db.clone();
    let dying = setup
        .freeze_a_relay_mid_batch(RelayConfig::default(), rows)
        .await;
    // SIGKILL: the relay is gone, its lease stays in the table.
    dying.abort();
    let _ = dying.await;
    assert_eq!(
        setup.received.lock().unwrap().len(),
        0,
        "nothing got through the frozen proxy"
    );

    let shutdown = CancellationToken::new();
    let survivor = OutboxRelay::new(
        db.clone(),
        setup.bus.clone(),
        setup.outbox.clone(),
        RelayConfig::default(),
    )
    .spawn(shutdown.clone());
    // `wait_for` gives up after 30 s: far longer than the default lease, far shorter than
    // the minute a dead relay's rows used to wait.
    wait_for(
        "the surviving relay to publish the dead relay's rows",
        || async { (setup.received.lock().unwrap().len() >= rows).then_some(()) },
    )
    .await;
    wait_for("the rows to be marked sent", || async {
        (setup.outbox.pending(&db).await.unwrap() == 0).then_some(())
    })
    .await;
    assert_once(&setup.received, rows);

    shutdown.cancel();
    survivor.await.unwrap();
    setup.stop().await;
}

/// A relay whose publish hangs for several leases (the broker does not confirm) renews its
/// lease meanwhile: another relay takes none of its rows while it lives.
#[tokio::test]
async fn a_relay_keeps_its_rows_by_renewing_the_lease_while_a_publish_hangs() {
    let lease = Duration::from_secs(3);
    let config = RelayConfig {
        lease,
        poll_interval: Duration::from_millis(20),
        ..RelayConfig::default()
    };
    let rows = 3;
    let setup = TwoRelays::start(rows).await;
    let db = setup.test_db.db.clone();
    let stuck = setup.freeze_a_relay_mid_batch(config.clone(), rows).await;
    let (_, first) = leased(&db).await;
    let first = first.expect("a lease expiry");

    // Past the first expiry the rows are still leased, to a later time.
    let renewed = wait_for("the lease to be renewed past its first expiry", || async {
        let (n, until) = leased(&db).await;
        let until = until.expect("a lease expiry");
        (Utc::now() > first && until > first).then_some((n, until))
    })
    .await;
    assert_eq!(
        renewed.0,
        i64::try_from(rows).unwrap(),
        "every row still leased"
    );
    let other = OutboxRelay::new(
        db.clone(),
        setup.bus.clone(),
        setup.outbox.clone(),
        config.clone(),
    );
    assert_eq!(
        other.relay_once().await.unwrap(),
        0,
        "another relay took rows of a live relay's batch"
    );
    assert_eq!(setup.received.lock().unwrap().len(), 0);

    // Once it is gone, the other relay publishes them when its last renewal runs out.
    stuck.abort();
    let _ = stuck.await;
    let shutdown = CancellationToken::new();
    let survivor = other.spawn(shutdown.clone());
    wait_for("the other relay to publish the rows", || async {
        (setup.received.lock().unwrap().len() >= rows).then_some(())
    })
    .await;
    wait_for("the rows to be marked sent", || async {
        (setup.outbox.pending(&db).await.unwrap() == 0).then_some(())
    })
    .await;
    assert_once(&setup.received, rows);

    shutdown.cancel();
    survivor.await.unwrap();
    setup.stop().await;
}
