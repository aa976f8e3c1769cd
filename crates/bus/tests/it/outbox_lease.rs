//! The outbox relay's lease on PostgreSQL and RabbitMQ: a relay that dies in the middle of a
//! batch (its process frozen, then killed) leaves its rows to another relay within seconds,
//! a live relay whose publish waits for its confirm keeps its rows by renewing the lease,
//! stops its batch when a renewal finds rows taken, and releases them when a publish hangs
//! past its time limit.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bus::{
    Bus, BusError, ConsumerHandle, ServiceSpec, Topology,
    outbox::{Outbox, OutboxRelay, RelayConfig},
};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use serde_json::json;
use tokio::{net::TcpStream, sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    BrokerProxy, amqp_bus, amqp_url, config, message, postgres, prefix, tables, wait_for,
};
use crate::outbox_relay::{Received, collect};

/// A TCP proxy to RabbitMQ that can freeze: frozen, it forwards nothing either way, as a
/// stopped (SIGSTOP) process neither sends nor reads.
struct FreezableProxy {
    proxy: BrokerProxy,
    frozen: watch::Sender<bool>,
}

impl FreezableProxy {
    async fn start() -> Self {
        let (frozen, watching) = watch::channel(false);
        let proxy = BrokerProxy::start(move |client, server| {
            let (client, server) = (Arc::new(client), Arc::new(server));
            vec![
                tokio::spawn(pump(client.clone(), server.clone(), watching.clone())),
                tokio::spawn(pump(server, client, watching.clone())),
            ]
        })
        .await;
        Self { proxy, frozen }
    }

    /// `TEST_AMQP_URL` through this proxy.
    fn url(&self) -> String {
        self.proxy.url()
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
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

/// Whether the frozen relay opens its publishing channel before the proxy freezes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Opened: its publish hangs waiting for the confirm.
    Warm,
    /// Not yet: its publish hangs opening the channel.
    Cold,
}

impl TwoRelays {
    /// The frozen relay's bus gives up on a publish after `publish_timeout`.
    async fn start(publish_timeout: Duration) -> Self {
        let prefix = prefix();
        let bus = amqp_bus(&prefix).await;
        let proxy = FreezableProxy::start().await;
        let mut frozen_config = config(&proxy.url());
        frozen_config.publish_timeout = publish_timeout;
        let frozen_bus = Bus::amqp(frozen_config, &prefix).await.unwrap();
        let test_db = postgres().await;
        let listener = ServiceSpec::new("listener").bind("events", "#");
        let topology = Topology::new().service(listener.clone());
        bus.declare(&topology).await.unwrap();
        let (consumer, received) = collect(&bus, &listener).await;
        let outbox = Outbox::new(&tables());
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

    async fn record(&self, rows: usize) {
        let txn = self.test_db.db.begin().await.unwrap();
        for n in 0..rows {
            self.outbox
                .record(&txn, &message("events", "item.written", json!({"n": n})))
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
    }

    /// Records `rows` rows and starts `relay_once` of a relay whose process is frozen while
    /// it publishes the batch; returns once it leased every row (its first publish is then
    /// hanging, where `lane` says).
    async fn freeze_a_relay_mid_batch(
        &self,
        config: RelayConfig,
        rows: usize,
        lane: Lane,
    ) -> JoinHandle<Result<usize, BusError>> {
        let dying = OutboxRelay::new(
            self.test_db.db.clone(),
            self.frozen_bus.clone(),
            self.outbox.clone(),
            config,
        );
        if lane == Lane::Warm {
            self.record(1).await;
            assert_eq!(dying.relay_once().await.unwrap(), 1, "the warm-up row");
            wait_for("the warm-up row to arrive", || async {
                (self.received.lock().unwrap().len() == 1).then_some(())
            })
            .await;
            self.received.lock().unwrap().clear();
        }
        self.record(rows).await;
        self.proxy.freeze(true);
        let task = tokio::spawn(async move { dying.relay_once().await });
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

/// The default time a publish may wait for its confirm.
fn default_publish_timeout() -> Duration {
    bus::AmqpConfig::new(&amqp_url()).publish_timeout
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
    let setup = TwoRelays::start(default_publish_timeout()).await;
    let db = setup.test_db.db.clone();
    let dying = setup
        .freeze_a_relay_mid_batch(RelayConfig::default(), rows, Lane::Cold)
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

/// A relay whose publish waits longer than a lease for its confirm (the broker does not
/// answer) renews its lease meanwhile: another relay takes none of its rows while it lives.
#[tokio::test]
async fn a_relay_keeps_its_rows_by_renewing_the_lease_while_a_publish_hangs() {
    let lease = Duration::from_secs(6);
    let config = RelayConfig {
        lease,
        poll_interval: Duration::from_millis(20),
        ..RelayConfig::default()
    };
    let rows = 3;
    let setup = TwoRelays::start(default_publish_timeout()).await;
    let db = setup.test_db.db.clone();
    let stuck = setup
        .freeze_a_relay_mid_batch(config.clone(), rows, Lane::Warm)
        .await;
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

/// Each outbox row by `seq`: its lease owner and whether it is marked sent.
async fn row_states(db: &DatabaseConnection) -> Vec<(i64, Option<String>, bool)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT seq, lease_owner, sent_at IS NOT NULL AS sent FROM {} ORDER BY seq",
            tables().outbox
        ),
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| {
        (
            row.try_get("", "seq").unwrap(),
            row.try_get("", "lease_owner").unwrap(),
            row.try_get("", "sent").unwrap(),
        )
    })
    .collect()
}

/// The earliest `lease_until` of the rows `owner` leased.
async fn earliest_expiry(db: &DatabaseConnection, owner: &str) -> Option<DateTime<Utc>> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT MIN(lease_until) AS until FROM {} WHERE lease_owner = '{owner}'",
                tables().outbox
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "until").unwrap()
}

async fn sql(db: &DatabaseConnection, statement: String) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), statement))
        .await
        .unwrap();
}

/// A renewal that finds rows of the batch taken by another relay stops the batch: the
/// publish in flight completes and is marked sent (although that row was taken too, so its
/// new owner's next renewal stops that relay's batch), the rows not yet published are
/// released, and the taken row not published stays the other relay's.
#[tokio::test]
async fn a_relay_stops_its_batch_when_a_renewal_finds_rows_taken() {
    let lease = Duration::from_secs(3);
    let config = RelayConfig {
        lease,
        ..RelayConfig::default()
    };
    let rows = 3;
    let setup = TwoRelays::start(default_publish_timeout()).await;
    let db = setup.test_db.db.clone();
    let relay = setup
        .freeze_a_relay_mid_batch(config, rows, Lane::Warm)
        .await;
    let table = tables().outbox;
    let leased_rows = row_states(&db).await;
    let [
        (in_flight, Some(ref owner), false),
        (stolen, _, false),
        (last, _, false),
    ] = leased_rows[leased_rows.len() - rows..]
    else {
        panic!("three rows leased by one relay: {leased_rows:?}");
    };
    sql(
        &db,
        format!("UPDATE {table} SET lease_owner = 'thief' WHERE seq IN ({in_flight}, {stolen})"),
    )
    .await;
    // One renewal after the theft: the relay's rows get a later expiry.
    let before = earliest_expiry(&db, owner).await.expect("a lease expiry");
    wait_for("a renewal after the theft", || async {
        let now = earliest_expiry(&db, owner).await;
        now.is_some_and(|now| now > before).then_some(())
    })
    .await;

    setup.proxy.freeze(false);
    let published = relay.await.unwrap().unwrap();
    assert_eq!(published, 1, "only the publish in flight went out");
    wait_for("the published row to arrive", || async {
        (setup.received.lock().unwrap().len() == 1).then_some(())
    })
    .await;
    let states = row_states(&db).await;
    let state = |seq: i64| states.iter().find(|s| s.0 == seq).cloned().unwrap();
    assert_eq!(
        state(in_flight),
        (in_flight, None, true),
        "published: marked sent, although taken"
    );
    assert_eq!(
        state(stolen),
        (stolen, Some("thief".to_owned()), false),
        "the taken row is left to its new owner"
    );
    assert_eq!(state(last), (last, None, false), "not published: released");
    setup.stop().await;
}

/// A relay whose publish hangs past the bus's publish timeout (here while opening its
/// channel on a connection that stopped answering) stops the batch and releases its rows
/// at once: another relay publishes them without waiting for a lease to run out, and no
/// row counts an attempt.
#[tokio::test]
async fn a_relay_whose_publish_hangs_past_its_timeout_releases_its_rows() {
    let publish_timeout = Duration::from_secs(2);
    let config = RelayConfig {
        lease: Duration::from_secs(3),
        ..RelayConfig::default()
    };
    let rows = 3;
    let setup = TwoRelays::start(publish_timeout).await;
    let db = setup.test_db.db.clone();
    let stuck = setup
        .freeze_a_relay_mid_batch(config.clone(), rows, Lane::Cold)
        .await;
    let result = stuck.await.unwrap();
    // The bus's own timeout, not the relay's last-resort limit.
    assert!(
        matches!(result, Err(BusError::PublishTimeout(t)) if t == publish_timeout),
        "{result:?}"
    );
    assert_eq!(leased(&db).await.0, 0, "every row released");
    let refused = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM {} WHERE attempts > 0",
                tables().outbox
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(refused, 0, "a timeout counts no attempt");

    let other = OutboxRelay::new(db.clone(), setup.bus.clone(), setup.outbox.clone(), config);
    assert_eq!(other.relay_once().await.unwrap(), rows);
    wait_for("the rows to arrive", || async {
        (setup.received.lock().unwrap().len() >= rows).then_some(())
    })
    .await;
    assert_once(&setup.received, rows);
    setup.stop().await;
}
